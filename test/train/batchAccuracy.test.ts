/**
 * The batch accuracy at the best threshold: the bucketed sweep over a batch's pairs (pairSweep)
 * against the whole sort (bestThresholdAccuracy) and a brute force over every cut, on random
 * similarities, many ties, outliers and NaN (a NaN pair is below no cut; the sweep once looped
 * forever on one). (The native sweep, on the losses' own float32 similarities, is checked in
 * test/losses/batchPairNative.test.ts and batchProxyNative.test.ts.)
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { bestThresholdAccuracy, pairSweep } from '../../src/train/batchAccuracy.ts';
import { Rng } from '../../src/rng.ts';

/** the most pairs right at any cut "same class iff d ≤ t", t = −∞ or a value; NaN never ≤ t */
function bruteForce(d: number[], y: number[]): number {
  let best = 0;
  for (const t of [-Infinity, ...d.filter((v) => !Number.isNaN(v))]) {
    let c = 0;
    d.forEach((v, i) => (c += (v <= t ? 1 : 0) === y[i] ? 1 : 0));
    best = Math.max(best, c);
  }
  return d.length ? best / d.length : 0;
}

function pairsOf(s: Float64Array, labels: Int32Array): { d: number[]; y: number[] } {
  const n = labels.length;
  const d: number[] = [];
  const y: number[] = [];
  for (let i = 0; i < n; i++) for (let j = i + 1; j < n; j++) (d.push(-s[i * n + j]!), y.push(labels[i] === labels[j] ? 1 : 0));
  return { d, y };
}

test('pairSweep = the whole sort = brute force: random, tied, outlying and nearly equal similarities', () => {
  for (let trial = 0; trial < 160; trial++) {
    const r = new Rng(trial);
    const n = 2 + Math.floor(r.next() * 50);
    const labels = Int32Array.from({ length: n }, () => Math.floor(r.next() * (1 + (trial % 6))));
    const s = new Float64Array(n * n);
    for (let i = 0; i < n * n; i++) {
      const same = labels[Math.floor(i / n)] === labels[i % n];
      switch (trial % 5) {
        case 0: s[i] = r.normal(); break;
        case 1: s[i] = Math.round(r.normal() * 3) / 3; break; // a few values, many ties
        case 2: s[i] = r.next() < 0.03 ? 1e6 : r.normal() * 1e-3; break; // outliers squeeze the rest into one bucket
        case 3: s[i] = (same ? 0.4 : 0) + 0.3 * r.normal(); break;
        default: s[i] = 0.5 + (r.next() < 0.5 ? 0 : 1e-16); // two values one ulp apart
      }
    }
    const { d, y } = pairsOf(s, labels);
    const want = bruteForce(d, y);
    assert.equal(bestThresholdAccuracy(d, y), want, `trial ${trial}: sorted sweep`);
    assert.equal(pairSweep(labels, s), want, `trial ${trial}: bucketed sweep`);
  }
});

test('a NaN distance is below no cut, and the sweep ends', () => {
  // positives 0.2 and NaN, negative 0.5: best cut after 0.2 gets 0.2 and the negative right
  assert.equal(bestThresholdAccuracy([Number.NaN, 0.5, 0.2], [1, 0, 1]), 2 / 3);
  assert.equal(bestThresholdAccuracy([Number.NaN, Number.NaN], [0, 1]), 1 / 2);
  const labels = Int32Array.of(0, 0, 1);
  const s = Float64Array.of(1, Number.NaN, 0.1, Number.NaN, 1, -0.5, 0.1, -0.5, 1);
  const { d, y } = pairsOf(s, labels);
  assert.equal(pairSweep(labels, s), bruteForce(d, y));
});

test('pairSweep: no pairs gives 0', () => {
  assert.equal(pairSweep(Int32Array.of(3), Float64Array.of(1)), 0);
  assert.equal(pairSweep(new Int32Array(0), new Float64Array(0)), 0);
});
