/**
 * Helpers of the serve tests: served folders written the way `siamese train` and `compare`
 * write them, the page bundle built once if missing, and raw HTTP requests (fetch would
 * normalise "..", which is exactly what the traversal tests must send).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { appendFileSync, existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { type IncomingMessage, request } from 'node:http';
import { join } from 'node:path';
import { runSweep, type SweepResults } from '../../src/experiments/sweep.ts';
import { WEB_DIR } from '../../src/serve/server.ts';
import { type EpochDistances, histogramOf } from '../../src/train/epochDistances.ts';
import { writeBandsIdx } from '../data/datasets.ts';

/** Build dist/web with `npm run build:web`'s script when it is missing or older than src/web. */
export function ensureWebBuilt(): void {
  const built = join(WEB_DIR, 'app.js');
  if (existsSync(built) && existsSync(join(WEB_DIR, 'index.html'))) {
    const at = statSync(built).mtimeMs;
    // the page bundles modules from outside src/web too (the sweep's verdict, stats): any source counts
    const src = join(WEB_DIR, '..', '..', 'src');
    if ((readdirSync(src, { recursive: true }) as string[]).every((f) => statSync(join(src, f)).mtimeMs <= at)) return;
  }
  const r = spawnSync(process.execPath, ['src/web/build.mjs'], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`build:web failed: ${r.stderr}`);
}

export interface FakeRun {
  loss: string;
  params: Record<string, number | string>;
  seed: number;
  epochs: number;
  status?: 'running' | 'finished' | 'interrupted' | 'failed';
  epochsDone?: number;
}

/** manifest.json as train/run.ts writes it (the fields the server reads, and valid otherwise). */
export function writeManifest(dir: string, r: FakeRun): void {
  mkdirSync(dir, { recursive: true });
  const manifest = {
    tool: 'siamese-lab',
    version: '0.1.0',
    createdAt: '2025-01-02T03:04:05.000Z',
    updatedAt: '2025-01-02T03:04:05.000Z',
    status: r.status ?? 'running',
    epochsDone: r.epochsDone ?? 0,
    config: { loss: r.loss, epochs: r.epochs, batchSize: 128, seed: r.seed, pairSeed: 0, trainPairs: 2000, testPairs: 0, embeddingDim: 128, dropout: 0.1, threshold: 0.5, optimizer: 'rmsprop', base: 'mlp' },
    network: {},
    loss: { name: r.loss, formula: '', params: r.params },
    optimizer: { name: 'rmsprop' },
    dataset: { name: 'synthetic', source: 'test', trainChecksum: 'x', testChecksum: 'y' },
    packages: {},
    node: process.version,
  };
  writeFileSync(join(dir, 'manifest.json'), JSON.stringify(manifest, null, 2));
}

/** One epoch line of log.jsonl, values a simple function of the epoch (the test's oracle). */
export function epochLine(epoch: number): Record<string, number> {
  return { epoch, loss: 0.1 / epoch, trainAccuracy: 0.8 + 0.01 * epoch, testAccuracy: 0.79 + 0.01 * epoch, seconds: 2, pairsPerSecond: 1000 };
}

export function appendEpoch(dir: string, epoch: number): void {
  appendFileSync(join(dir, 'log.jsonl'), JSON.stringify(epochLine(epoch)) + '\n');
}

/**
 * Made-up test pair distances for an epoch (labels: 1 = positive): positives closer and
 * negatives farther as the epoch grows, `shift` moving both (another seed), and one negative at
 * D = 9, beyond every range the tests use (an overflow count).
 */
export function distanceSample(epoch: number, shift = 0): { d: number[]; y: number[] } {
  const d: number[] = [];
  const y: number[] = [];
  for (let i = 0; i < 200; i++) {
    const u = ((i * 37) % 200) / 200;
    d.push(Math.fround(0.1 + shift + u * (1.5 / epoch)));
    y.push(1);
    d.push(Math.fround(0.6 + shift + u * 0.8 + 0.15 * epoch));
    y.push(0);
  }
  d.push(9);
  y.push(0);
  return { d, y };
}

/** One line of distances.jsonl for an epoch, binned by the trainer's own histogramOf. */
export function distanceLine(epoch: number, dmax = 4, shift = 0): EpochDistances {
  const { d, y } = distanceSample(epoch, shift);
  return histogramOf(d, y, epoch, dmax);
}

export function appendDistances(dir: string, epoch: number, dmax = 4, shift = 0): void {
  appendFileSync(join(dir, 'distances.jsonl'), JSON.stringify(distanceLine(epoch, dmax, shift)) + '\n');
}

export interface RawResponse {
  status: number;
  body: string;
}

/** GET a path exactly as given (no URL normalisation) from 127.0.0.1:port. */
/** GET a JSON route of the server on `port`: status 200 asserted (with the body's start), body parsed. */
export async function getJson<T>(port: number, path: string): Promise<T> {
  const r = await rawGet(port, path);
  assert.equal(r.status, 200, `${path}: ${r.body.slice(0, 200)}`);
  return JSON.parse(r.body) as T;
}

export function rawGet(port: number, path: string, headers: Record<string, string> = {}): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, method: 'GET', headers }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.setTimeout(10_000, () => req.destroy(new Error(`GET ${path}: timed out`)));
    req.end();
  });
}

/**
 * A real sweep, as small as the protocol allows (8 classes of 12x12 images, 2 losses x 3 trials
 * x 2 folds + 2 x 2 final seeds, 1 epoch on 200 pairs; about 10 s): its folder and results.json.
 */
export async function tinySweep(dir: string): Promise<{ out: string; results: SweepResults }> {
  const data = join(dir, 'data');
  writeBandsIdx(data);
  const out = join(dir, 'sweep');
  const r = await runSweep({ data: { name: 'idx', dir: data }, trials: 3, folds: 2, seeds: 2, epochs: 1, trainPairs: 200, workers: 2, out });
  if (r.status !== 'finished' || !r.results || r.failures.length > 0) throw new Error(`the tiny sweep did not finish: ${JSON.stringify(r.failures)}`);
  return { out, results: JSON.parse(readFileSync(join(out, 'results.json'), 'utf8')) as SweepResults };
}

export interface Received {
  event: string;
  bytes: number;
  data: string;
}

/** A raw event-stream client: every event with its size on the wire. */
/**
 * Calls onBlock for each complete server-sent-events block of res, with its event name, data line
 * and size in bytes (parsed by hand: the tests and `bench/serveWire.ts` count each block's bytes
 * on the wire, which an EventSource client hides). Listeners added after this one see a chunk's
 * blocks already handled.
 */
export function onSseBlocks(res: IncomingMessage, onBlock: (event: string | undefined, data: string | undefined, bytes: number) => void): void {
  let buf = Buffer.alloc(0);
  res.on('data', (c: Buffer) => {
    buf = Buffer.concat([buf, c]);
    let i: number;
    while ((i = buf.indexOf('\n\n')) >= 0) {
      const block = buf.subarray(0, i + 2).toString('utf8');
      buf = buf.subarray(i + 2);
      onBlock(/^event: (.*)$/m.exec(block)?.[1], /^data: (.*)$/m.exec(block)?.[1], Buffer.byteLength(block));
    }
  });
}

export async function listen(port: number): Promise<{ events: Received[]; next(pred: (e: Received) => boolean, what: string): Promise<Received>; close(): void }> {
  const events: Received[] = [];
  const res = await new Promise<IncomingMessage>((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path: '/api/events' }, resolve);
    req.on('error', reject);
    req.end();
  });
  let wake: (() => void) | undefined;
  onSseBlocks(res, (event, data, bytes) => {
    if (event && data) events.push({ event, bytes, data });
  });
  res.on('data', () => wake?.());
  let seen = 0;
  /** the next event (after those already taken) that `pred` accepts; bounded: 20 s */
  const next = async (pred: (e: Received) => boolean, what: string): Promise<Received> => {
    const deadline = Date.now() + 20_000;
    for (let n = 0; n < 200; n++) {
      const i = events.findIndex((e, j) => j >= seen && pred(e));
      if (i >= 0) {
        seen = i + 1;
        return events[i]!;
      }
      if (Date.now() > deadline) break;
      await new Promise<void>((resolve) => {
        wake = resolve;
        setTimeout(resolve, 200);
      });
    }
    throw new Error(`no ${what} (events: ${events.slice(seen).map((e) => e.event).join(', ')})`);
  };
  return { events, next, close: () => res.destroy() };
}
