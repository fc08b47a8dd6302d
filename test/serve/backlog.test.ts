/**
 * The event stream's memory per client is bounded: a client that connects and stops reading (a
 * suspended laptop, a stuck script) must not make the server buffer every later event for it.
 * Past its backlog it is disconnected (a page's EventSource reconnects and gets the whole table
 * again); a client that reads meanwhile keeps its stream and receives every line.
 */
import assert from 'node:assert/strict';
import { appendFileSync, mkdtempSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, it } from 'node:test';
import type { EpochLine } from '../../src/serve/scan.ts';
import { startServer } from '../../src/serve/server.ts';
import type { Chunk } from '../../src/serve/tail.ts';
import { ensureWebBuilt, epochLine, listen, writeManifest } from './helpers.ts';

const base = mkdtempSync(join(tmpdir(), 'siamese-serve-backlog-'));
after(() => rmSync(base, { recursive: true, force: true }));

it('a client that stops reading the event stream is dropped past its backlog; one that reads gets every line', { timeout: 120_000 }, async () => {
  ensureWebBuilt();
  const run = join(base, 'run');
  writeManifest(run, { loss: 'contrastive', params: { margin: 1 }, seed: 0, epochs: 1_000_000 });
  const served = await startServer({ dirs: [base], port: 0, pollMs: 100, eventBacklogBytes: 256 * 1024 });
  const stalled = connect(served.port, '127.0.0.1');
  stalled.on('error', () => {});
  await new Promise<void>((resolve) => stalled.once('connect', () => resolve()));
  stalled.write('GET /api/events HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n');
  // never read: what the server sends piles up in the kernel's buffers, then in the server's
  stalled.pause();
  const reader = await listen(served.port);
  try {
    await reader.next((e) => e.event === 'runs', 'the table');
    assert.equal(served.eventClients(), 2);
    const dropped = (): boolean => served.eventClients() === 1;
    // blocks of 5,000 epochs (about 0.6 MB of log events each); the kernel buffers of a loopback
    // socket hold a few MB, so at most 40 blocks (24 MB of events) fill them and the backlog
    let epoch = 0;
    for (let block = 0; block < 40 && !dropped(); block++) {
      let text = '';
      for (let i = 0; i < 5000; i++) text += JSON.stringify(epochLine(++epoch)) + '\n';
      appendFileSync(join(run, 'log.jsonl'), text);
      // the block's event reaches the reading client (the server has broadcast it) before the next
      let got = 0;
      while (got < epoch) {
        const e = await reader.next((x) => x.event === 'log', `the log event up to epoch ${epoch}`);
        const c = JSON.parse(e.data) as Chunk<EpochLine>;
        if (c.epochs.length > 0) got = c.epochs.at(-1)!.epoch;
      }
      assert.equal(got, epoch);
    }
    assert.ok(dropped(), `the stalled client was never dropped (${epoch} epochs of events sent)`);
    // the reader's stream goes on: one more epoch reaches it
    appendFileSync(join(run, 'log.jsonl'), JSON.stringify(epochLine(++epoch)) + '\n');
    const e = await reader.next((x) => x.event === 'log', 'the next epoch');
    assert.equal((JSON.parse(e.data) as Chunk<EpochLine>).epochs.at(-1)?.epoch, epoch);
  } finally {
    reader.close();
    stalled.destroy();
    await served.close();
  }
});
