/**
 * The sorts of the per-epoch sweeps over test pair distances: bestThresholdAccuracy (a batch
 * loss's test accuracy, every epoch) and pairMetrics (bestThreshold, rocAuc, equalErrorRate: a
 * run's evaluation), on MNIST's 17,820 test pairs (random distances, float32, half positive),
 * ms per call: the median of 9 rounds of 20 calls after 100 to warm up, the implementations'
 * rounds interleaved, in wall time and in this process's CPU time.
 *
 *   node --import tsx bench/evalSort.ts [--before BATCH_ACCURACY_TS PAIRS_TS]
 * --before: other copies of src/train/batchAccuracy.ts and src/eval/pairs.ts (e.g. those before a
 * change, copied beside the originals so that their imports resolve) timed in the same process.
 */
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Rng } from '../src/rng.ts';

type Impl = { bestThresholdAccuracy: (d: ArrayLike<number>, y: ArrayLike<number>) => number; pairMetrics: (d: Float32Array, y: Uint8Array) => unknown };
const load = async (batch: string, pairs: string): Promise<Impl> => ({
  bestThresholdAccuracy: ((await import(pathToFileURL(resolve(batch)).href)) as Impl).bestThresholdAccuracy,
  pairMetrics: ((await import(pathToFileURL(resolve(pairs)).href)) as Impl).pairMetrics,
});
const impls: [string, Impl][] = [];
const at = process.argv.indexOf('--before');
if (at >= 0) impls.push(['before', await load(process.argv[at + 1]!, process.argv[at + 2]!)]);
impls.push(['now', await load('src/train/batchAccuracy.ts', 'src/eval/pairs.ts')]);

const N = 17_820;
const r = new Rng(7);
const y = Uint8Array.from({ length: N }, (_, i) => i % 2);
const d = Float32Array.from(y, (p) => Math.abs(r.normal() * 0.3 + (p ? 0.5 : 1.1)));

/** ms per call of each function, rounds interleaved (a busy machine slows both alike): medians of 9 rounds of 20 calls */
function time(fs: (() => unknown)[]): { wall: number; cpu: number; value: unknown }[] {
  const values = fs.map((f) => {
    let v: unknown;
    for (let c = 0; c < 100; c++) v = f();
    return v;
  });
  const wall = fs.map((): number[] => []);
  const cpu = fs.map((): number[] => []);
  for (let k = 0; k < 9; k++) {
    fs.forEach((f, i) => {
      const t0 = process.hrtime.bigint();
      const c0 = process.cpuUsage();
      for (let c = 0; c < 20; c++) f();
      const c1 = process.cpuUsage(c0);
      wall[i]!.push(Number(process.hrtime.bigint() - t0) / 1e6 / 20);
      cpu[i]!.push((c1.user + c1.system) / 1e3 / 20);
    });
  }
  const median = (a: number[]): number => a.sort((x, y) => x - y)[4]!;
  return fs.map((_, i) => ({ wall: median(wall[i]!), cpu: median(cpu[i]!), value: values[i] }));
}

console.log(`${N} test pair distances, ms per call (median of 9 rounds of 20, implementations interleaved)`);
for (const what of ['bestThresholdAccuracy', 'pairMetrics'] as const) {
  const ts = time(impls.map(([, impl]) => (what === 'pairMetrics' ? () => impl.pairMetrics(d, y) : () => impl.bestThresholdAccuracy(d, y))));
  ts.forEach((t, i) => {
    const v = JSON.stringify(t.value);
    console.log(`  ${impls[i]![0].padEnd(7)} ${what.padEnd(22)} ${t.wall.toFixed(3).padStart(8)} ms wall ${t.cpu.toFixed(3).padStart(8)} ms CPU  ${v.length > 60 ? `${v.slice(0, 60)}...` : v}`);
  });
}
