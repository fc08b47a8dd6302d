import { test } from 'node:test';
import assert from 'node:assert/strict';
import { knn } from '../../src/eval/knn.ts';
import { DataError, UsageError } from '../../src/errors.ts';
import { Rng } from '../../src/rng.ts';

/** The reference: every distance, then a stable sort by (distance, index). */
function bruteForce(refs: Float32Array, queries: Float32Array, dim: number, k: number, self: boolean) {
  const n = refs.length / dim;
  const m = queries.length / dim;
  const indices: number[][] = [];
  const dists: number[][] = [];
  for (let i = 0; i < m; i++) {
    const all: [number, number][] = [];
    for (let j = 0; j < n; j++) {
      if (self && i === j) continue;
      let s = 0;
      for (let d = 0; d < dim; d++) {
        const t = queries[i * dim + d]! - refs[j * dim + d]!;
        s += t * t;
      }
      all.push([s, j]);
    }
    all.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
    indices.push(all.slice(0, k).map((x) => x[1]));
    dists.push(all.slice(0, k).map((x) => x[0]));
  }
  return { indices, dists };
}

function rows(a: Int32Array | Float32Array, k: number): number[][] {
  const out: number[][] = [];
  for (let i = 0; i < a.length; i += k) out.push(Array.from(a.subarray(i, i + k)));
  return out;
}

/** Small integers: every distance is exact, so ties are real ties and the order is defined. */
function intData(rng: Rng, rows: number, dim: number, levels: number): Float32Array {
  return Float32Array.from({ length: rows * dim }, () => rng.int(levels));
}

test('knn matches brute force, ties and duplicates included, for both kernels and any block size', () => {
  const rng = new Rng(7);
  const cases: [n: number, dim: number, k: number][] = [
    [37, 5, 7], [9, 3, 8], [64, 128, 5], [50, 2, 49], [13, 1, 4], [101, 17, 12],
  ];
  for (const [n, dim, k] of cases) {
    const refs = intData(rng, n, dim, 3);
    const want = bruteForce(refs, refs, dim, k, true);
    for (const kernel of ['auto', 'js'] as const) {
      for (const blockSize of [4, 12, 512]) {
        const got = knn(refs, dim, k, { kernel, blockSize });
        assert.equal(got.k, k);
        assert.deepEqual(rows(got.indices, k), want.indices, `n=${n} dim=${dim} k=${k} ${kernel} ${blockSize}`);
        assert.deepEqual(rows(got.sqDistances, k), want.dists);
      }
    }
  }
});

test('knn in queries mode matches brute force and does not exclude equal indices', () => {
  const rng = new Rng(8);
  for (const [n, m, dim, k] of [[100, 23, 13, 10], [50, 11, 2, 50], [6, 9, 4, 6]] as const) {
    const refs = intData(rng, n, dim, 4);
    const queries = intData(rng, m, dim, 4);
    queries.set(refs.subarray(0, dim), 0); // query 0 duplicates reference 0: distance 0, kept
    const want = bruteForce(refs, queries, dim, k, false);
    for (const kernel of ['auto', 'js'] as const) {
      const got = knn(refs, dim, k, { queries, kernel, blockSize: 8 });
      assert.deepEqual(rows(got.indices, k), want.indices);
      assert.deepEqual(rows(got.sqDistances, k), want.dists);
    }
    assert.equal(knn(refs, dim, k, { queries }).indices[0], 0);
  }
});

test('knn on real-valued data: same neighbours as brute force, distances to float32 precision', () => {
  const rng = new Rng(9);
  const n = 300, dim = 40, k = 15;
  const refs = Float32Array.from({ length: n * dim }, () => rng.normal() * 3 + 10);
  const want = bruteForce(refs, refs, dim, k, true);
  for (const kernel of ['auto', 'js'] as const) {
    const got = knn(refs, dim, k, { kernel });
    assert.deepEqual(rows(got.indices, k), want.indices);
    for (let i = 0; i < n; i++) {
      for (let j = 0; j < k; j++) {
        const w = want.dists[i]![j]!;
        assert.ok(Math.abs(got.sqDistances[i * k + j]! - w) <= 1e-6 * w);
      }
    }
  }
});

test('exact duplicates are at distance exactly 0 and the smaller index comes first', () => {
  const rng = new Rng(10);
  const dim = 30;
  const base = Float32Array.from({ length: 20 * dim }, () => rng.normal() * 100);
  const refs = new Float32Array(40 * dim);
  refs.set(base, 0);
  refs.set(base, 20 * dim); // row i + 20 duplicates row i
  const got = knn(refs, dim, 3);
  assert.equal(got.indices[5 * 3], 25);
  assert.equal(got.sqDistances[5 * 3], 0);
  assert.equal(got.indices[25 * 3], 5);
  assert.equal(got.sqDistances[25 * 3], 0);
});

test('knn validates k and shapes with UsageError', () => {
  const refs = new Float32Array(10 * 3);
  assert.throws(() => knn(refs, 3, 0), UsageError);
  assert.throws(() => knn(refs, 3, 10), UsageError); // self mode: at most n - 1
  assert.throws(() => knn(refs, 3, 2.5), UsageError);
  assert.throws(() => knn(refs, 4, 2), UsageError);
  assert.throws(() => knn(refs, 3, 2, { queries: new Float32Array(4) }), UsageError);
  assert.equal(knn(refs, 3, 9).k, 9);
  const nan = refs.slice();
  nan[7] = NaN;
  assert.throws(() => knn(nan, 3, 2), DataError);
  assert.throws(() => knn(refs, 3, 2, { queries: new Float32Array([0, Infinity, 0]) }), DataError);
  assert.equal(knn(refs, 3, 10, { queries: new Float32Array(6) }).indices.length, 20);
});
