import { test } from 'node:test';
import assert from 'node:assert/strict';
import { runTsne, Tsne } from '../../src/viz/tsne.ts';
import { trustworthiness } from '../../src/eval/trustworthiness.ts';
import { knn } from '../../src/eval/knn.ts';
import { DataError, UsageError } from '../../src/errors.ts';
import { Rng } from '../../src/rng.ts';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { encodeNpy, readNpy } from '../../src/io/npy.ts';
import { siameseMeasured } from '../io/child.ts';

/** Six seeded Gaussian clusters in 50-d: centres ~ N(0, 3^2 I), points ~ centre + N(0, I). */
function clusters(n: number, dim: number, k: number, seed: number): { x: Float32Array; labels: Int32Array } {
  const rng = new Rng(seed);
  const centres = Float32Array.from({ length: k * dim }, () => 3 * rng.normal());
  const x = new Float32Array(n * dim);
  const labels = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    labels[i] = i % k;
    for (let d = 0; d < dim; d++) x[i * dim + d] = centres[labels[i]! * dim + d]! + rng.normal();
  }
  return { x, labels };
}

/** Mean share of each point's 10 nearest 2-D neighbours that carry its label. */
function labelAgreement(y: Float32Array, labels: Int32Array, k = 10): number {
  const { indices } = knn(y, 2, k);
  let same = 0;
  for (let i = 0; i < labels.length; i++) {
    for (let j = 0; j < k; j++) if (labels[indices[i * k + j]!] === labels[i]) same++;
  }
  return same / (labels.length * k);
}

const data = clusters(600, 50, 6, 11);

test('t-SNE keeps neighbourhoods and separates clusters', () => {
  const y = runTsne(data.x, 600, 50, { seed: 1 });
  assert.equal(y.length, 1200);
  assert.ok(y.every(Number.isFinite));
  const t = trustworthiness(data.x, 50, y, 2, 10);
  assert.ok(t > 0.9, `trustworthiness@10 ${t}`);
  const agree = labelAgreement(y, data.labels);
  assert.ok(agree > 0.95, `2-D kNN label agreement ${agree}`);
});

test('the same seed gives the same layout; the step API matches runTsne', () => {
  const opts = { seed: 5, iterations: 300, init: 'random' as const };
  const a = runTsne(data.x, 600, 50, opts);
  const b = runTsne(data.x, 600, 50, opts);
  assert.deepEqual(a, b);
  const c = runTsne(data.x, 600, 50, { ...opts, seed: 6 });
  assert.notDeepEqual(a, c);

  const t = new Tsne(opts);
  t.initialize(data.x, 600, 50);
  let it = 0;
  while (it < t.iterations) it = t.step();
  assert.equal(t.step(), 300); // finished: no more steps
  assert.deepEqual(t.getEmbedding(), a);
  assert.ok(t.klDivergence() > 0 && Number.isFinite(t.klDivergence()));
});

test('PCA initialisation is deterministic and the callback can stop the run', () => {
  const calls: number[] = [];
  const y = runTsne(data.x, 600, 50, { iterations: 400 }, (iter, total) => {
    calls.push(iter);
    assert.equal(total, 400);
    return iter < 20;
  });
  assert.deepEqual(calls, Array.from({ length: 20 }, (_, i) => i + 1));
  const again = runTsne(data.x, 600, 50, { iterations: 20 });
  assert.deepEqual(y, again);
});

test('small, duplicated and exact-repulsion inputs stay finite', () => {
  const rng = new Rng(3);
  const base = Float32Array.from({ length: 8 * 4 }, () => rng.normal());
  const dup = new Float32Array(40 * 4);
  for (let i = 0; i < 40; i++) dup.set(base.subarray((i % 8) * 4, (i % 8) * 4 + 4), i * 4);
  assert.ok(runTsne(dup, 40, 4, { perplexity: 5, iterations: 300 }).every(Number.isFinite));
  assert.ok(runTsne(new Float32Array(10 * 3), 10, 3, { perplexity: 3, iterations: 100 }).every(Number.isFinite));
  assert.ok(runTsne(base, 8, 4, { perplexity: 2, theta: 0, iterations: 300 }).every(Number.isFinite));
});

test('options and inputs are validated', () => {
  const x = new Float32Array(20 * 3).map((_, i) => i % 7);
  const bad: object[] = [
    { perplexity: 20 }, { perplexity: 0 }, { perplexity: NaN }, { theta: -0.1 }, { iterations: 0 },
    { iterations: 2.5 }, { earlyExaggeration: 0 }, { exaggerationIterations: -1 },
    { learningRate: -1 }, { learningRate: 'fast' }, { init: 'spectral' }, { seed: 1.5 }, { dims: 3 },
  ];
  for (const opts of bad) {
    assert.throws(() => runTsne(x, 20, 3, opts as never), UsageError, JSON.stringify(opts));
  }
  assert.throws(() => runTsne(x, 21, 3), UsageError);
  assert.throws(() => new Tsne().step(), UsageError);
  const nan = x.slice();
  nan[5] = NaN;
  assert.throws(() => runTsne(nan, 20, 3, { perplexity: 5 }), DataError);
});

/** Eigenvalues and eigenvectors (columns of V) of a small symmetric matrix, by cyclic Jacobi rotations. */
function jacobiEigen(A: Float64Array, m: number): { values: Float64Array; V: Float64Array } {
  const a = Float64Array.from(A);
  const V = new Float64Array(m * m);
  for (let i = 0; i < m; i++) V[i * m + i] = 1;
  for (let sweep = 0; sweep < 100; sweep++) {
    let off = 0;
    for (let p = 0; p < m; p++) for (let q = p + 1; q < m; q++) off += a[p * m + q]! ** 2;
    if (off < 1e-30) break;
    for (let p = 0; p < m; p++) {
      for (let q = p + 1; q < m; q++) {
        const apq = a[p * m + q]!;
        if (apq === 0) continue;
        const theta = (a[q * m + q]! - a[p * m + p]!) / (2 * apq);
        const t = Math.sign(theta || 1) / (Math.abs(theta) + Math.sqrt(theta * theta + 1));
        const c = 1 / Math.sqrt(t * t + 1), s = t * c;
        for (let k = 0; k < m; k++) {
          const akp = a[k * m + p]!, akq = a[k * m + q]!;
          a[k * m + p] = c * akp - s * akq;
          a[k * m + q] = s * akp + c * akq;
        }
        for (let k = 0; k < m; k++) {
          const apk = a[p * m + k]!, aqk = a[q * m + k]!;
          a[p * m + k] = c * apk - s * aqk;
          a[q * m + k] = s * apk + c * aqk;
        }
        for (let k = 0; k < m; k++) {
          const vkp = V[k * m + p]!, vkq = V[k * m + q]!;
          V[k * m + p] = c * vkp - s * vkq;
          V[k * m + q] = s * vkp + c * vkq;
        }
      }
    }
  }
  return { values: Float64Array.from({ length: m }, (_, i) => a[i * m + i]!), V };
}

/** The PCA start by the book: covariance, full eigendecomposition, largest loading positive, sd(first) = 1e-4. */
function pcaOracle(x: Float32Array, n: number, d: number): Float64Array {
  const mean = new Float64Array(d);
  for (let i = 0; i < n; i++) for (let c = 0; c < d; c++) mean[c]! += x[i * d + c]! / n;
  const C = new Float64Array(d * d);
  for (let i = 0; i < n; i++) {
    for (let a = 0; a < d; a++) for (let b = 0; b < d; b++) C[a * d + b]! += (x[i * d + a]! - mean[a]!) * (x[i * d + b]! - mean[b]!);
  }
  const { values, V } = jacobiEigen(C, d);
  const order = Array.from({ length: d }, (_, i) => i).sort((p, q) => values[q]! - values[p]!);
  const y = new Float64Array(2 * n);
  for (let k = 0; k < 2; k++) {
    const col = order[k]!;
    const v = Float64Array.from({ length: d }, (_, t) => V[t * d + col]!);
    let big = 0;
    for (const w of v) if (Math.abs(w) > Math.abs(big)) big = w;
    if (big < 0) v.forEach((w, t) => (v[t] = -w));
    for (let i = 0; i < n; i++) {
      let s = 0;
      for (let t = 0; t < d; t++) s += (x[i * d + t]! - mean[t]!) * v[t]!;
      y[2 * i + k] = s;
    }
  }
  let s1 = 0, s2 = 0;
  for (let i = 0; i < n; i++) {
    s1 += y[2 * i]!;
    s2 += y[2 * i]! ** 2;
  }
  const scale = 1e-4 / Math.sqrt(s2 / n - (s1 / n) ** 2);
  return y.map((v) => v * scale);
}

test('the PCA start matches a full eigendecomposition, for tall and for wide (rows < columns) inputs', () => {
  for (const [n, d, seed] of [[40, 6, 1], [60, 12, 2], [8, 30, 3], [12, 25, 4], [20, 21, 5]] as const) {
    const rng = new Rng(seed);
    // distinct column scales: well separated eigenvalues, so the components are unique
    const x = Float32Array.from({ length: n * d }, (_, i) => rng.normal() * (1 + 0.7 * (i % d)));
    const t = new Tsne({ perplexity: 2 });
    t.initialize(x, n, d);
    const got = t.getEmbedding();
    const want = pcaOracle(x, n, d);
    for (let i = 0; i < 2 * n; i++) {
      assert.ok(Math.abs(got[i]! - want[i]!) <= 1e-6 * 1e-4, `${n}x${d}: coordinate ${i}: ${got[i]} vs ${want[i]}`);
    }
  }
});

test('huge and tiny finite inputs give the same clusters as unit-scale ones; a layout that overflows is refused', () => {
  const small = clusters(120, 8, 3, 9);
  for (const scale of [1e20, 1e-25]) {
    const x = small.x.map((v) => v * scale);
    const y = runTsne(x, 120, 8, { seed: 1, iterations: 400, perplexity: 10 });
    assert.ok(y.every(Number.isFinite), `scale ${scale}: non-finite layout`);
    assert.ok(labelAgreement(y, small.labels) > 0.95, `scale ${scale}: clusters lost`);
  }
  assert.throws(() => runTsne(small.x, 120, 8, { learningRate: 1e308, iterations: 300, perplexity: 10 }), (e: unknown) => e instanceof DataError && /non-finite/.test(e.message));
});

test('siamese tsne on a 3 x 4,000,000 matrix (perplexity 0.5) and on 20 x 10,000 finishes in bounded memory', { timeout: 300_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'tsne-wide-'));
  try {
    for (const [n, d, perplexity] of [[3, 4_000_000, 0.5], [20, 10_000, 3]] as const) {
      const rng = new Rng(n);
      const x = Float32Array.from({ length: n * d }, () => rng.normal());
      writeFileSync(join(dir, 'x.npy'), encodeNpy({ dtype: 'float32', shape: [n, d], data: x }));
      const r = siameseMeasured(['tsne', '--in', join(dir, 'x.npy'), '--out', join(dir, 'y.npy'), '--perplexity', String(perplexity), '--iterations', '50']);
      assert.equal(r.code, 0, r.stderr);
      assert.ok(r.peakMB < 300, `${n} x ${d}: peak RSS ${r.peakMB.toFixed(0)} MB`);
      const y = await readNpy(join(dir, 'y.npy'));
      assert.deepEqual(y.shape, [n, 2]);
      assert.ok((y.data as Float32Array).every(Number.isFinite));
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a warm start from the previous layout moves the points less than a fresh layout does', () => {
  // "epoch" B: the same clusters, every point nudged (as one epoch of training moves an embedding)
  const a = clusters(300, 20, 5, 3);
  const rng = new Rng(8);
  const b = a.x.map((v) => v + 0.15 * rng.normal());
  const opts = { perplexity: 20, iterations: 500, seed: 1 };
  const ya = runTsne(a.x, 300, 20, opts);
  const cold = runTsne(b, 300, 20, opts);
  const warm = runTsne(b, 300, 20, { ...opts, init: ya, exaggerationIterations: 0, iterations: 250 });
  const moved = (y: Float32Array): number => {
    let s = 0;
    for (let i = 0; i < 300; i++) s += Math.hypot(y[2 * i]! - ya[2 * i]!, y[2 * i + 1]! - ya[2 * i + 1]!);
    return s / 300;
  };
  const spread = moved(new Float32Array(600)); // mean distance of the layout's points from 0: its scale
  assert.ok(moved(warm) < 0.25 * moved(cold), `warm ${moved(warm).toFixed(2)}, cold ${moved(cold).toFixed(2)}, scale ${spread.toFixed(2)}`);
  assert.ok(moved(warm) < 0.3 * spread, `warm ${moved(warm).toFixed(2)} against scale ${spread.toFixed(2)}`);
  // and it is still a good layout of B
  assert.ok(labelAgreement(warm, a.labels) > 0.95);
  // the given layout is the start: zero iterations' worth of change is none at all
  const t = new Tsne({ ...opts, init: ya, iterations: 1 });
  t.initialize(b, 300, 20);
  assert.deepEqual(t.getEmbedding(), ya);
  assert.throws(() => new Tsne({ init: new Float32Array(5) }).initialize(b, 300, 20), /starting layout has 5 values/);
  assert.throws(() => new Tsne({ init: new Float32Array(600).fill(NaN) }).initialize(b, 300, 20), UsageError);
});
