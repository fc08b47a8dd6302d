/**
 * The TypeScript batch-accuracy sweep (src/train/batchAccuracy.ts, pairSweep: what runs without
 * the addon, or where a similarity is NaN) on a batch of 120, µs per call: the median of 9
 * rounds of 400 calls after 400 to warm up, per batch kind, in wall time and in this process's CPU
 * time (less moved by other processes on a shared machine). Noisy batches (labels unrelated to
 * the rows: most buckets could hold the best cut) are its worst case; the trainer's batch (10
 * classes with a signal) its usual one.
 *
 *   node --import tsx bench/pairSweep.ts [--impl PATH]
 * --impl: another copy of batchAccuracy.ts to time (e.g. the one before a change), same output.
 */
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Rng } from '../src/rng.ts';

const arg = process.argv.indexOf('--impl');
const path = arg >= 0 ? resolve(process.argv[arg + 1]!) : new URL('../src/train/batchAccuracy.ts', import.meta.url).pathname;
const { pairSweep } = (await import(pathToFileURL(path).href)) as { pairSweep: (l: Int32Array, s: Float64Array) => number };

/** cosines of n gaussian rows of dim (row i pulled toward its class's centre by `signal`) */
function batch(n: number, dim: number, classes: number, signal: number, seed: number): { labels: Int32Array; sims: Float64Array } {
  const r = new Rng(seed);
  const labels = Int32Array.from({ length: n }, () => Math.floor(r.next() * classes));
  const centres = Array.from({ length: classes }, () => Float64Array.from({ length: dim }, () => r.normal()));
  const x = Array.from({ length: n }, (_, i) => Float64Array.from({ length: dim }, (_, k) => r.normal() + signal * centres[labels[i]!]![k]!));
  const norm = x.map((v) => Math.sqrt(v.reduce((a, b) => a + b * b, 0)));
  const sims = new Float64Array(n * n);
  for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) sims[i * n + j] = x[i]!.reduce((a, v, k) => a + v * x[j]![k]!, 0) / (norm[i]! * norm[j]!);
  return { labels, sims };
}

const KINDS: [string, ReturnType<typeof batch>][] = [
  ['noisy, 2 classes', batch(120, 128, 2, 0, 1)],
  ['noisy, 10 classes', batch(120, 128, 10, 0, 2)],
  ['2 classes, signal 0.2', batch(120, 128, 2, 0.2, 3)],
  ['10 classes, signal 1 (a trainer batch)', batch(120, 128, 10, 1, 4)],
];

console.log(`pairSweep of ${path.replace(/.*\/(?=[^/]+\/[^/]+$)/, '')}, 120 rows (7140 pairs), µs per call (median of 9 rounds of 400)`);
for (const [name, { labels, sims }] of KINDS) {
  let acc = 0;
  for (let c = 0; c < 400; c++) acc = pairSweep(labels, sims);
  const wall: number[] = [];
  const cpu: number[] = [];
  for (let r = 0; r < 9; r++) {
    const t0 = process.hrtime.bigint();
    const c0 = process.cpuUsage();
    for (let c = 0; c < 400; c++) pairSweep(labels, sims);
    const c1 = process.cpuUsage(c0);
    wall.push(Number(process.hrtime.bigint() - t0) / 1e3 / 400);
    cpu.push((c1.user + c1.system) / 400);
  }
  wall.sort((a, b) => a - b);
  cpu.sort((a, b) => a - b);
  console.log(`  ${name.padEnd(40)} ${wall[4]!.toFixed(1).padStart(7)} µs wall ${cpu[4]!.toFixed(1).padStart(7)} µs CPU  (accuracy ${acc.toFixed(6)})`);
}
