/**
 * The live logs of `siamese serve` on the wire: while a client holds the event stream, a run's
 * log.jsonl grows line by line (appended, and replaced by a rename as the trainer does), and
 * every `log` event must carry only the new lines, in bytes as well as in records. The page's
 * merge (web/chunks.ts, run here on the events received) must hold exactly the records of the
 * file, parsed independently with JSON.parse (the oracle). A log replaced by other content or
 * truncated comes whole with `reset`; a half-written last line is held back until complete;
 * a page that missed events asks for what follows its offset and gets only that.
 */
import assert from 'node:assert/strict';
import { appendFileSync, mkdtempSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { EpochLine } from '../../src/serve/scan.ts';
import { type Served, startServer } from '../../src/serve/server.ts';
import type { Chunk } from '../../src/serve/tail.ts';
import { at, type Held, merge } from '../../src/web/chunks.ts';
import { ensureWebBuilt, epochLine, getJson, listen, type Received, writeManifest } from './helpers.ts';

const base = mkdtempSync(join(tmpdir(), 'siamese-livelogs-'));
const runDir = join(base, 'served', 'yukawa-seed1');
const logPath = join(runDir, 'log.jsonl');
let served: Served;

const line = (epoch: number, v: Record<string, number> = epochLine(epoch)): string => JSON.stringify(v) + '\n';

/** the oracle: the file's complete lines parsed by JSON.parse, the fields a log event carries */
function fileRecords(): EpochLine[] {
  const text = readFileSync(logPath, 'utf8');
  return text
    .slice(0, text.lastIndexOf('\n') + 1)
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => {
      const o = JSON.parse(l) as EpochLine;
      return { epoch: o.epoch, loss: o.loss, trainAccuracy: o.trainAccuracy, testAccuracy: o.testAccuracy, seconds: o.seconds, pairsPerSecond: o.pairsPerSecond };
    });
}

/** the trainer's way: the whole log written to a temporary file and renamed over the old one */
function replaceLog(text: string): void {
  writeFileSync(`${logPath}.tmp`, text);
  renameSync(`${logPath}.tmp`, logPath);
}

const RUN = '0:yukawa-seed1';
const logChunk = (e: Received): Chunk<EpochLine> => JSON.parse(e.data) as Chunk<EpochLine>;

before(async () => {
  ensureWebBuilt();
  writeManifest(runDir, { loss: 'yukawa', params: { kappa: 5, power: 3 }, seed: 1, epochs: 300 });
  writeFileSync(logPath, line(1) + line(2) + line(3));
  served = await startServer({ dirs: [join(base, 'served')], port: 0, pollMs: 100 });
});

after(async () => {
  await served?.close();
  rmSync(base, { recursive: true, force: true });
});

describe('siamese serve: a growing log on the wire', () => {
  it('sends each update as the appended lines only; the merged log is the file; a half line waits; a replaced log is reset', async () => {
    const stream = await listen(served.port);
    try {
      await stream.next((e) => e.event === 'runs', 'first runs event');
      // the page draws the run: the whole log once
      const first = (await getJson<{ logs: Chunk<EpochLine>[] }>(served.port, `/api/logs?run=${encodeURIComponent(RUN)}`)).logs[0]!;
      assert.equal(first.reset, true);
      let page = merge(undefined, first) as Held<EpochLine>;
      assert.deepEqual(page.epochs, fileRecords());
      const apply = async (e: Received): Promise<void> => {
        const m = merge(page, logChunk(e));
        assert.notEqual(m, 'resync', 'no gap on a live stream');
        assert.notEqual(m, 'ignore');
        if (typeof m !== 'string') page = m;
      };
      const isLogTo = (size: number) => (e: Received): boolean => e.event === 'log' && logChunk(e).to === size;

      // 40 epochs, every other one appended in place, the others by a rename (a new inode each time)
      for (let epoch = 4; epoch <= 43; epoch++) {
        const before = statSync(logPath).size;
        const text = line(epoch);
        if (epoch % 2 === 0) appendFileSync(logPath, text);
        else replaceLog(readFileSync(logPath, 'utf8') + text);
        const e = await stream.next(isLogTo(before + text.length), `the log event of epoch ${epoch}`);
        const c = logChunk(e);
        assert.equal(c.reset, false, `epoch ${epoch}: an append, not a reset`);
        assert.equal(c.from, before);
        assert.deepEqual(c.epochs, [epochLine(epoch)], `epoch ${epoch}: the new line alone`);
        // on the wire: the line's record and a fixed envelope (the whole log is over 5 KB by now)
        assert.ok(e.bytes < text.length + 300, `epoch ${epoch}: ${e.bytes} bytes for a ${text.length}-byte line`);
        await apply(e);
        assert.deepEqual(page.epochs, fileRecords(), `epoch ${epoch}: the page holds the file's records`);
      }

      // a writer mid-append: half a line is not sent, only noted
      const size = statSync(logPath).size;
      const half = line(44);
      appendFileSync(logPath, half.slice(0, 25));
      const noted = await stream.next((e) => e.event === 'log' && logChunk(e).note !== null, 'the note of a half line');
      assert.deepEqual(logChunk(noted).epochs, []);
      assert.equal(logChunk(noted).to, size, 'the offset stays before the half line');
      assert.match(logChunk(noted).note!, /incomplete.*epoch 44/);
      await apply(noted);
      assert.deepEqual(page.epochs, fileRecords());
      appendFileSync(logPath, half.slice(25));
      const done = await stream.next(isLogTo(size + half.length), 'the completed line');
      assert.deepEqual(logChunk(done).epochs, [epochLine(44)]);
      assert.equal(logChunk(done).note, null);
      await apply(done);
      assert.deepEqual(page.epochs, fileRecords());
      assert.deepEqual(page.messages, []);

      // a run restarted in the same folder: its log replaced by other content, longer than before
      const gen = page.gen;
      const other = Array.from({ length: 50 }, (_, i) => line(i + 1, { ...epochLine(i + 1), loss: 1 + i })).join('');
      replaceLog(other);
      const reset = await stream.next((e) => e.event === 'log' && logChunk(e).reset, 'a reset after the log was replaced');
      assert.equal(logChunk(reset).from, 0);
      assert.notEqual(logChunk(reset).gen, gen);
      await apply(reset);
      assert.deepEqual(page.epochs, fileRecords());
      assert.equal(page.epochs[0]!.loss, 1);

      // truncated in place (same inode, fewer bytes): reset again (the server may see the file
      // empty between the truncation and the write: the lines then follow as an append)
      writeFileSync(logPath, line(1) + line(2));
      const cut = await stream.next((e) => e.event === 'log' && logChunk(e).reset, 'a reset after truncation');
      await apply(cut);
      const cutSize = statSync(logPath).size;
      if (page.to !== cutSize) await apply(await stream.next(isLogTo(cutSize), 'the truncated log\'s lines'));
      assert.deepEqual(page.epochs, [epochLine(1), epochLine(2)]);
      assert.deepEqual(page.epochs, fileRecords());
    } finally {
      stream.close();
    }
  });

  it('answers a page that missed events with the lines after its offset; an unknown generation gets the whole log', async () => {
    writeFileSync(logPath, line(1) + line(2) + line(3));
    const whole = (await getJson<{ logs: Chunk<EpochLine>[] }>(served.port, `/api/logs?run=${encodeURIComponent(RUN)}`)).logs[0]!;
    const page = merge(undefined, whole) as Held<EpochLine>;
    // no event stream: the page is reconnecting while two epochs are written
    appendFileSync(logPath, line(4) + line(5));
    const rest = await getJson<Chunk<EpochLine>>(served.port, `/api/log?run=${encodeURIComponent(RUN)}&at=${encodeURIComponent(at(page))}`);
    assert.equal(rest.reset, false);
    assert.equal(rest.from, page.to);
    assert.deepEqual(rest.epochs, [epochLine(4), epochLine(5)]);
    const merged = merge(page, rest) as Held<EpochLine>;
    assert.deepEqual(merged.epochs, fileRecords());
    // the same request with /api/logs' parallel at= list, and a generation of another server
    const q = `/api/logs?run=${encodeURIComponent(RUN)}&at=${encodeURIComponent(`00000000.1:${page.to}`)}`;
    const other = (await getJson<{ logs: Chunk<EpochLine>[] }>(served.port, q)).logs[0]!;
    assert.equal(other.reset, true);
    assert.deepEqual(other.epochs, fileRecords());
    // an offset that is not a line end of this generation: whole
    const odd = await getJson<Chunk<EpochLine>>(served.port, `/api/log?run=${encodeURIComponent(RUN)}&at=${encodeURIComponent(`${page.gen}:${page.to - 1}`)}`);
    assert.equal(odd.reset, true);
    assert.deepEqual(odd.epochs, fileRecords());
  });
});
