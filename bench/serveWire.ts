/**
 * What `siamese serve` sends to one page while a run trains: the bytes of the event stream
 * (log, distances and runs events apart) while a run's log.jsonl and distances.jsonl grow to
 * EPOCHS epochs, each epoch written the trainer's way (the whole file to a temporary name,
 * renamed over the old one), one epoch at a time, each waited for on the stream. The page has
 * read the run's log and distances once at the start (counted apart). Bytes, not time: the
 * numbers do not depend on the machine's load.
 *
 * Then a many-runs case: a compare folder of RUNS runs (START epochs logged each, 20 by default) served by
 * `siamese serve` in a child process, while two "workers" write an epoch each, in turn, to
 * the runs one after another (log.jsonl and manifest.json replaced by a rename, as the trainer
 * does). Per epoch written: the bytes of the runs-table events (`runs`, `rows`) one page gets,
 * the bytes the server process read (rchar of /proc/PID/io: its file reads and the few bytes
 * of requests) and its CPU time (utime + stime of /proc/PID/stat, 10 ms ticks: a mean).
 *
 *   npm run bench:serve-wire [-- --epochs 200] [-- --runs 100] [-- --steps 40] [-- --start 20]
 */
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { get, type IncomingMessage } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startServer } from '../src/serve/server.ts';
import { distanceLine, onSseBlocks, writeManifest } from '../test/serve/helpers.ts';

const at = process.argv.indexOf('--epochs');
const EPOCHS = at > 0 ? Number(process.argv[at + 1]) : 200;
const opt = (name: string, d: number): number => {
  const i = process.argv.indexOf(name);
  return i > 0 ? Number(process.argv[i + 1]) : d;
};
const RUNS = opt('--runs', 100);
const STEPS = opt('--steps', 40);
/** epochs each run has logged when the server starts */
const START = opt('--start', 20);

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
  onSseBlocks(res, (name, data, size) => {
    const event = name ?? 'comment';
    bytes.set(event, (bytes.get(event) ?? 0) + size);
    texts.push({ event, data: data ?? '' });
  });
  res.on('data', () => wake?.());
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

/** The many-runs case (see the top): the runs table's events and the server's reads per epoch written. */
async function manyRuns(): Promise<void> {
  const base = mkdtempSync(join(tmpdir(), 'siamese-bench-rows-'));
  const cmp = join(base, 'sweep', 'cmp');
  const losses = ['contrastive', 'yukawa', 'triplet', 'softplus'];
  mkdirSync(cmp, { recursive: true });
  writeFileSync(join(cmp, 'compare.json'), JSON.stringify({ spec: { losses: losses.map((l) => ({ id: l, label: l, loss: l, params: {} })) } }));
  const runs: { dir: string; id: string; seed: number; loss: string; log: string; epoch: number }[] = [];
  for (let i = 0; i < RUNS; i++) {
    const loss = losses[i % losses.length]!;
    const seed = Math.floor(i / losses.length);
    const dir = join(cmp, 'runs', `${loss}-seed${seed}`);
    writeManifest(dir, { loss, params: {}, seed, epochs: 100, epochsDone: START });
    let log = '';
    for (let e = 1; e <= START; e++) log += logLine(e);
    replace(join(dir, 'log.jsonl'), log);
    runs.push({ dir, id: `0:cmp/runs/${loss}-seed${seed}`, seed, loss, log, epoch: START });
  }
  const child = spawn(process.execPath, ['bin/siamese.js', 'serve', join(base, 'sweep'), '--port', '0'], { stdio: ['ignore', 'pipe', 'inherit'] });
  const pid = child.pid!;
  const ioRead = (): number => Number(/rchar: (\d+)/.exec(readFileSync(`/proc/${pid}/io`, 'utf8'))![1]);
  const cpuMs = (): number => {
    const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    return ((Number(f[11]) + Number(f[12])) * 1000) / 100;
  };
  try {
    const port = await new Promise<number>((resolve, reject) => {
      let out = '';
      child.stdout!.on('data', (c: Buffer) => {
        out += c.toString();
        const m = /:(\d+)\//.exec(out);
        if (m) resolve(Number(m[1]));
      });
      child.on('exit', (code) => reject(new Error(`serve exited (${code})`)));
    });
    const bytes = new Map<string, number>();
    /** the newest epochsDone each run's row was seen with, in any runs-table event */
    const seen = new Map<string, number>();
    let rowBytes = 0;
    const res = await new Promise<IncomingMessage>((resolve, reject) => get({ host: '127.0.0.1', port, path: '/api/events' }, resolve).on('error', reject));
    let wake: (() => void) | undefined;
    onSseBlocks(res, (name, data, size) => {
      const event = name ?? 'comment';
      bytes.set(event, (bytes.get(event) ?? 0) + size);
      if (event === 'runs' || event === 'rows') {
        const p = JSON.parse(data!) as { runs?: { id: string; epochsDone: number }[]; upsert?: { row: { id: string; epochsDone: number } }[] };
        const rows = p.runs ?? (p.upsert ?? []).map((u) => u.row);
        for (const r of rows) seen.set(r.id, r.epochsDone);
        if (p.runs && rowBytes === 0) rowBytes = JSON.stringify(p.runs).length / p.runs.length;
      }
    });
    res.on('data', () => wake?.());
    const waitRow = async (id: string, epoch: number): Promise<void> => {
      const deadline = Date.now() + 30_000;
      while ((seen.get(id) ?? 0) < epoch) {
        if (Date.now() > deadline) throw new Error(`no runs event with ${id} at epoch ${epoch}`);
        await new Promise<void>((r) => {
          wake = r;
          setTimeout(r, 100);
        });
      }
    };
    await waitRow(runs[0]!.id, START);
    bytes.clear();
    const read0 = ioRead();
    const cpu0 = cpuMs();
    let written = 0;
    for (let s = 0; s < STEPS; s++) {
      // two workers: an epoch each, on the next two runs in turn
      const now = [runs[(2 * s) % RUNS]!, runs[(2 * s + 1) % RUNS]!];
      for (const r of now) {
        r.epoch++;
        r.log += logLine(r.epoch);
        replace(join(r.dir, 'log.jsonl'), r.log);
        writeManifest(r.dir, { loss: r.loss, params: {}, seed: r.seed, epochs: 100, epochsDone: r.epoch });
        written++;
      }
      for (const r of now) await waitRow(r.id, r.epoch);
    }
    const read = ioRead() - read0;
    const cpu = cpuMs() - cpu0;
    const table = (bytes.get('runs') ?? 0) + (bytes.get('rows') ?? 0);
    const kb = (n: number): string => `${(n / 1024).toFixed(1)} KiB`;
    console.log(`bench serve-wire, ${RUNS} runs (a row: ${rowBytes.toFixed(0)} B), ${written} epochs written by 2 workers:`);
    console.log(`  runs-table events to one page: ${kb(table)} in all, ${kb(table / written)} an epoch (runs ${kb(bytes.get('runs') ?? 0)}, rows ${kb(bytes.get('rows') ?? 0)}); log events ${kb(bytes.get('log') ?? 0)}`);
    console.log(`  server process: read ${kb(read / written)} an epoch (logs of ${kb(runs[0]!.log.length)} and up), CPU ${(cpu / written).toFixed(1)} ms an epoch (${cpu} ms in all, 10 ms ticks)`);
    res.destroy();
  } finally {
    child.kill('SIGINT');
    await new Promise((r) => child.once('exit', r));
    rmSync(base, { recursive: true, force: true });
  }
}

await main();
if (RUNS > 0) await manyRuns();
