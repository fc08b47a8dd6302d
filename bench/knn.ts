/**
 * Benchmark: exact k-NN and the retrieval metrics on 10,000 x 10,000 points of 128 dimensions
 * (the size of MNIST's test embeddings), one thread.
 *
 *   npm run bench:knn
 */
import { cpus, loadavg } from 'node:os';
import { knn } from '../src/eval/knn.ts';
import { retrievalMetrics } from '../src/eval/retrieval.ts';
import { Rng } from '../src/rng.ts';

const n = 10_000;
const dim = 128;
const rng = new Rng(0);
// ten Gaussian clusters, so the retrieval metrics have something to find
const labels = Int32Array.from({ length: n }, (_, i) => i % 10);
const centres = Float32Array.from({ length: 10 * dim }, () => rng.normal());
const x = new Float32Array(n * dim);
for (let i = 0; i < n; i++) for (let j = 0; j < dim; j++) x[i * dim + j] = centres[labels[i]! * dim + j]! + 1.5 * rng.normal();

function timed<T>(f: () => T): { value: T; wall: number; cpu: number } {
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  const value = f();
  const c = process.cpuUsage(c0);
  return { value, wall: (performance.now() - t0) / 1000, cpu: (c.user + c.system) / 1e6 };
}

console.log(`bench knn: ${new Date().toISOString()}`);
console.log(`machine: ${cpus()[0]?.model.trim()}, ${cpus().length} cores, node ${process.version}, load ${loadavg().map((l) => l.toFixed(2)).join(' ')}`);
console.log(`data: ${n} x ${dim} float32, 10 clusters`);
const k10 = timed(() => knn(x, dim, 10));
const k100 = timed(() => knn(x, dim, 100));
const ret = timed(() => retrievalMetrics(x, dim, labels));
console.log('');
console.log('| task | wall s | CPU s |');
console.log('|---|---|---|');
console.log(`| exact 10-NN of every point (10,000 x 10,000) | ${k10.wall.toFixed(2)} | ${k10.cpu.toFixed(2)} |`);
console.log(`| exact 100-NN of every point | ${k100.wall.toFixed(2)} | ${k100.cpu.toFixed(2)} |`);
console.log(`| retrieval metrics (P@1, R-precision, MAP@R with R = 1,000, 10-NN accuracy) | ${ret.wall.toFixed(2)} | ${ret.cpu.toFixed(2)} |`);
const r = ret.value;
console.log(`\nretrieval: P@1 ${(100 * r.precisionAt1).toFixed(2)}%, R-precision ${(100 * r.rPrecision).toFixed(2)}%, MAP@R ${(100 * r.mapAtR).toFixed(2)}%, kNN ${(100 * r.knnAccuracy).toFixed(2)}%`);
