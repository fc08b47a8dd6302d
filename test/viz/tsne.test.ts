import { test } from 'node:test';
import assert from 'node:assert/strict';
import { runTsne, Tsne } from '../../src/viz/tsne.ts';
import { trustworthiness } from '../../src/eval/trustworthiness.ts';
import { knn } from '../../src/eval/knn.ts';
import { DataError, UsageError } from '../../src/errors.ts';
import { Rng } from '../../src/rng.ts';

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
