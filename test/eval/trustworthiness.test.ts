import { test } from 'node:test';
import assert from 'node:assert/strict';
import { trustworthiness } from '../../src/eval/trustworthiness.ts';
import { UsageError } from '../../src/errors.ts';
import { Rng } from '../../src/rng.ts';

/** The definition, written out naively: full sorts for ranks and for embedded neighbours. */
function naive(high: Float32Array, hd: number, low: Float32Array, ld: number, k: number): number {
  const n = high.length / hd;
  const sq = (x: Float32Array, d: number, i: number, j: number) => {
    let s = 0;
    for (let c = 0; c < d; c++) s += (x[i * d + c]! - x[j * d + c]!) ** 2;
    return s;
  };
  const order = (x: Float32Array, d: number, i: number) =>
    Array.from({ length: n }, (_, j) => j)
      .filter((j) => j !== i)
      .sort((a, b) => sq(x, d, i, a) - sq(x, d, i, b) || a - b);
  let penalty = 0;
  for (let i = 0; i < n; i++) {
    const highOrder = order(high, hd, i);
    for (const j of order(low, ld, i).slice(0, k)) penalty += Math.max(0, highOrder.indexOf(j) + 1 - k);
  }
  return 1 - (2 / (n * k * (2 * n - 3 * k - 1))) * penalty;
}

test('an embedding that keeps every neighbourhood scores 1', () => {
  const rng = new Rng(1);
  const x = Float32Array.from({ length: 80 * 6 }, () => rng.normal());
  assert.equal(trustworthiness(x, 6, x, 6, 5), 1);
  // A scaled copy has the same neighbourhoods.
  assert.equal(trustworthiness(x, 6, x.map((v) => 3 * v), 6, 5), 1);
});

test('a hand-checked case: two points swapped on a line', () => {
  // Points 0 and 5 trade places. Embedded nearest neighbours and their original ranks:
  // 0 -> 4 (rank 4, excess 3), 1 -> 5 (rank 5, excess 4), 5 -> 1 (rank 4, excess 3), the
  // others keep rank 1. T = 1 - 2 / (6 * 1 * (12 - 3 - 1)) * 10 = 28/48 (sklearn agrees).
  const high = new Float32Array([0, 1, 3, 6, 10, 15]);
  const low = new Float32Array([15, 1, 3, 6, 10, 0]);
  assert.ok(Math.abs(trustworthiness(high, 1, low, 1, 1) - 28 / 48) < 1e-12);
});

test('matches the naive definition on random data, with ties', () => {
  const rng = new Rng(2);
  const n = 60;
  const high = Float32Array.from({ length: n * 5 }, () => rng.int(3)); // many equal distances
  const low = Float32Array.from({ length: n * 2 }, () => rng.normal());
  for (const k of [1, 4, 12]) {
    const got = trustworthiness(high, 5, low, 2, k);
    assert.ok(Math.abs(got - naive(high, 5, low, 2, k)) < 1e-12, `k=${k}`);
  }
});

test('validates shapes and k', () => {
  const x = new Float32Array(20 * 3);
  const y = new Float32Array(20 * 2);
  assert.throws(() => trustworthiness(x, 3, y, 2, 10), UsageError); // k must be < n/2
  assert.throws(() => trustworthiness(x, 3, y, 2, 0), UsageError);
  assert.throws(() => trustworthiness(x, 3, new Float32Array(38), 2, 3), UsageError);
  assert.throws(() => trustworthiness(x, 7, y, 2, 3), UsageError);
});
