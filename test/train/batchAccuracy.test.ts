/**
 * The batch accuracy at the best threshold: the bucketed sweep over a batch's pairs (pairSweep)
 * against the whole sort (bestThresholdAccuracy) and a brute force over every cut, on random
 * similarities, many ties, outliers and NaN (a NaN pair is below no cut; the sweep once looped
 * forever on one). (The native sweep, on the losses' own float32 similarities, is checked in
 * test/losses/batchPairNative.test.ts and batchProxyNative.test.ts.)
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { bestThresholdAccuracy, pairSweep, sortRange } from '../../src/train/batchAccuracy.ts';
import { Rng } from '../../src/rng.ts';
import { sortAndSweep } from '../losses/batchHelpers.ts';

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

/** cosines of n gaussian rows of dim, labels drawn at random (signal 0: unrelated to the rows) */
function cosines(r: Rng, n: number, dim: number, classes: number, signal: number): { labels: Int32Array; s: Float64Array } {
  const labels = Int32Array.from({ length: n }, () => Math.floor(r.next() * classes));
  const centres = Array.from({ length: classes }, () => Array.from({ length: dim }, () => r.normal()));
  const x = Array.from({ length: n }, (_, i) => Array.from({ length: dim }, (_, k) => r.normal() + signal * centres[labels[i]!]![k]!));
  const norm = x.map((v) => Math.hypot(...v));
  const s = new Float64Array(n * n);
  for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) s[i * n + j] = x[i]!.reduce((a, v, k) => a + v * x[j]![k]!, 0) / (norm[i]! * norm[j]!);
  return { labels, s };
}

/** the trainer's batches of 120 and larger: noisy (most buckets could hold the best cut), weakly and strongly separated, tied, squeezed */
function batchesOf120(): { what: string; labels: Int32Array; s: Float64Array }[] {
  const r = new Rng(120);
  const out: { what: string; labels: Int32Array; s: Float64Array }[] = [];
  for (const [classes, signal] of [[2, 0], [10, 0], [2, 0.2], [3, 0.1], [10, 1]] as const) {
    out.push({ what: `${classes} classes, signal ${signal}`, ...cosines(r, 120, 64, classes, signal) });
  }
  // a few values, ties everywhere (−0 and +0 among them)
  const tied = cosines(r, 120, 8, 2, 0);
  out.push({ what: 'rounded to tenths, ties', labels: tied.labels, s: tied.s.map((v) => Math.round(v * 10) / 10) });
  // two outliers stretch the range: every other pair in one bucket (the radix sort's case)
  const sq = cosines(r, 120, 16, 2, 0);
  const s = sq.s.map((v) => v * 1e-9);
  s[1] = s[120] = 1;
  s[2] = s[240] = -1;
  out.push({ what: 'squeezed into one bucket', labels: sq.labels, s });
  // negative, positive and tiny values around 0
  const z = cosines(r, 90, 4, 3, 0);
  out.push({ what: 'around zero, signs and subnormals', labels: z.labels, s: z.s.map((v, i) => (i % 7 === 0 ? 0 : i % 11 === 0 ? -0 : v * 1e-310)) });
  out.push({ what: '250 rows, 30 classes, noisy', ...cosines(r, 250, 16, 30, 0) });
  return out;
}

test('pairSweep = sort-and-sweep on noisy, separated, tied and squeezed batches of 120 and more', () => {
  for (const c of batchesOf120()) assert.equal(pairSweep(c.labels, c.s), sortAndSweep(c.s, c.labels), c.what);
});

test('pairSweep = brute force with NaN and infinite similarities in a batch of 60 (the whole-sort path)', () => {
  const r = new Rng(61);
  for (const kind of ['NaN', 'Infinity', 'both'] as const) {
    const { labels, s } = cosines(r, 60, 8, 2, 0);
    for (let i = 0; i < 60; i++) {
      for (let j = i + 1; j < 60; j++) {
        const u = r.next();
        if (u < 0.05 && kind !== 'Infinity') s[i * 60 + j] = Number.NaN;
        else if (u > 0.97 && kind !== 'NaN') s[i * 60 + j] = u > 0.985 ? Infinity : -Infinity;
      }
    }
    const { d, y } = pairsOf(s, labels);
    assert.equal(pairSweep(labels, s), bruteForce(d, y), kind);
  }
});

test('pairSweep never sorts a whole noisy batch: no typed-array sort at all, every refined bucket its own', (t) => {
  // (the sweep once gave up past 8 refined buckets and sorted every pair with Float64Array's sort, 0.1 µs a value on Node 20)
  const sorted: number[] = [];
  const own = Float64Array.prototype.sort;
  t.mock.method(Float64Array.prototype, 'sort', function (this: Float64Array, ...a: [((x: number, y: number) => number)?]) {
    sorted.push(this.length);
    return own.apply(this, a);
  });
  for (const c of batchesOf120()) pairSweep(c.labels, c.s);
  assert.deepEqual(sorted, []);
});

test('sortRange: the order of Float64Array sort, for insertion-sorted and radix-sorted slices', () => {
  const r = new Rng(9);
  const specials = [0, -0, Infinity, -Infinity, Number.MIN_VALUE, -Number.MIN_VALUE, Number.MAX_VALUE, -Number.MAX_VALUE, 1, -1];
  for (const len of [0, 1, 2, 31, 32, 33, 500, 5000]) {
    const a = Float64Array.from({ length: len + 20 }, (_, i) => (i % 13 === 0 ? specials[i % specials.length]! : r.next() < 0.5 ? r.normal() : Math.round(r.normal() * 4)));
    const want = a.slice();
    want.subarray(10, 10 + len).sort();
    sortRange(a, 10, 10 + len);
    // bit for bit, −0 and +0 told apart: the same order as the typed-array sort
    assert.deepEqual(new Uint32Array(a.buffer), new Uint32Array(want.buffer), `length ${len}`);
  }
});
