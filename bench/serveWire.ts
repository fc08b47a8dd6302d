/**
 * What `siamese serve` sends to one page while a run trains: the bytes of the event stream
 * (log, distances and runs events apart) while a run's log.jsonl and distances.jsonl grow to
 * EPOCHS epochs, each epoch written the trainer's way (the whole file to a temporary name,
 * renamed over the old one), one epoch at a time, each waited for on the stream. The page has
 * read the run's log and distances once at the start (counted apart). Bytes, not time: the
 * numbers do not depend on the machine's load.
 *
 *   npm run bench:serve-wire [-- --epochs 200]
 */
import { mkdirSync, mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { get, type IncomingMessage } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startServer } from '../src/serve/server.ts';
import { distanceLine, writeManifest } from '../test/serve/helpers.ts';

const at = process.argv.indexOf('--epochs');
const EPOCHS = at > 0 ? Number(process.argv[at + 1]) : 200;

/** an epoch line as the trainer writes one (full-precision numbers, engine and threads) */
const logLine = (e: number): string =>
  JSON.stringify({ epoch: e, loss: 0.3 / Math.sqrt(e) + 0.01 * Math.sin(e), trainAccuracy: 1 - 0.2 / Math.sqrt(e), testAccuracy: 1 - 0.25 / Math.sqrt(e), seconds: 1.234567 + e / 1000, pairsPerSecond: 123456.789 / (1 + e / 997), engine: 'native', threads: 1 }) + '\n';
const distLine = (e: number): string => JSON.stringify(distanceLine(e, 4)) + '\n';

function replace(path: string, text: string): void {
  writeFileSync(`${path}.tmp`, text);
  renameSync(`${path}.tmp`, path);
}

const fetchText = (port: number, path: string): Promise<string> =>
  new Promise((resolve, reject) => {
    get({ host: '127.0.0.1', port, path }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve(body));
    }).on('error', reject);
  });

async function main(): Promise<void> {
  const base = mkdtempSync(join(tmpdir(), 'siamese-bench-wire-'));
  const run = join(base, 'runs', 'yukawa-seed0');
  mkdirSync(run, { recursive: true });
  writeManifest(run, { loss: 'yukawa', params: { kappa: 10, power: 3 }, seed: 0, epochs: EPOCHS });
  let log = '';
  let dist = '';
  replace(join(run, 'log.jsonl'), log);
  replace(join(run, 'distances.jsonl'), dist);
  const served = await startServer({ dirs: [join(base, 'runs')], port: 0, pollMs: 200 });
  const bytes = new Map<string, number>();
  const texts: { event: string; data: string }[] = [];
  const res = await new Promise<IncomingMessage>((resolve, reject) => get({ host: '127.0.0.1', port: served.port, path: '/api/events' }, resolve).on('error', reject));
  let wake: (() => void) | undefined;
  let buf = Buffer.alloc(0);
  res.on('data', (c: Buffer) => {
    buf = Buffer.concat([buf, c]);
    let i: number;
    while ((i = buf.indexOf('\n\n')) >= 0) {
      const block = buf.subarray(0, i + 2).toString('utf8');
      buf = buf.subarray(i + 2);
      const event = /^event: (.*)$/m.exec(block)?.[1] ?? 'comment';
      bytes.set(event, (bytes.get(event) ?? 0) + Buffer.byteLength(block));
      texts.push({ event, data: /^data: (.*)$/m.exec(block)?.[1] ?? '' });
    }
    wake?.();
  });
  /** wait (bounded) for a `what` event that carries epoch e */
  const waitFor = async (what: string, e: number): Promise<void> => {
    const re = new RegExp(`"epoch":${e}[,}]`);
    const deadline = Date.now() + 20_000;
    while (!texts.some((t) => t.event === what && re.test(t.data))) {
      if (Date.now() > deadline) throw new Error(`no ${what} event with epoch ${e}`);
      await new Promise<void>((r) => {
        wake = r;
        setTimeout(r, 100);
      });
    }
    texts.length = 0;
  };
  try {
    // the page opens, draws the run: its log and distances once (an empty file each)
    const id = encodeURIComponent('0:yukawa-seed0');
    const initial = (await fetchText(served.port, `/api/logs?run=${id}`)).length + (await fetchText(served.port, `/api/distances?run=${id}`)).length;
    const t0 = Date.now();
    for (let e = 1; e <= EPOCHS; e++) {
      dist += distLine(e);
      replace(join(run, 'distances.jsonl'), dist);
      log += logLine(e);
      replace(join(run, 'log.jsonl'), log);
      await waitFor('log', e);
    }
    const seconds = (Date.now() - t0) / 1000;
    // a page opening now: the whole files once
    const late = (await fetchText(served.port, `/api/logs?run=${id}`)).length + (await fetchText(served.port, `/api/distances?run=${id}`)).length;
    const kb = (n: number): string => `${(n / 1024).toFixed(1)} KiB`;
    console.log(`bench serve-wire: ${new Date().toISOString()}, ${EPOCHS} epochs in ${seconds.toFixed(1)} s`);
    console.log(`files at the end: log.jsonl ${kb(log.length)} (${(log.length / EPOCHS).toFixed(0)} B a line), distances.jsonl ${kb(dist.length)} (${(dist.length / EPOCHS).toFixed(0)} B a line)`);
    console.log(`event stream to one page while they grew: log events ${kb(bytes.get('log') ?? 0)}, distances events ${kb(bytes.get('distances') ?? 0)}, runs events ${kb(bytes.get('runs') ?? 0)}`);
    console.log(`the page's first read of both (empty files): ${initial} B; a page opening at the end reads ${kb(late)}`);
  } finally {
    res.destroy();
    await served.close();
    rmSync(base, { recursive: true, force: true });
  }
}

await main();
