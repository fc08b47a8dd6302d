/**
 * The per-epoch sweeps over test pair distances sort with sortRange (a radix sort) instead of
 * Node's typed-array sort (bestThresholdAccuracy) and a comparator sort of indices (eval/pairs.ts:
 * bestThreshold, rocAuc, equalErrorRate). Each is checked against the implementation it replaced,
 * copied here as it was, bit for bit, on random inputs of several sizes (around the insertion
 * sort's limit of 32 and up to MNIST's 17,820 test pairs), with many ties, and (the batch
 * accuracy takes them) NaN.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { bestThreshold, equalErrorRate, pairMetrics, rocAuc } from '../../src/eval/pairs.ts';
import { Rng } from '../../src/rng.ts';
import { bestThresholdAccuracy } from '../../src/train/batchAccuracy.ts';

// ---- the replaced implementations, as they were ---------------------------------------------

function oldBestThresholdAccuracy(d: ArrayLike<number>, y: ArrayLike<number>): number {
  let np = 0;
  for (let i = 0; i < d.length; i++) if (y[i]) np++;
  const pos = new Float64Array(np);
  const neg = new Float64Array(d.length - np);
  for (let i = 0, a = 0, b = 0; i < d.length; i++) {
    if (y[i]) pos[a++] = d[i]!;
    else neg[b++] = d[i]!;
  }
  pos.sort();
  neg.sort();
  const total = pos.length + neg.length;
  if (total === 0) return 0;
  let correct = neg.length;
  let pe = pos.length;
  while (pe > 0 && Number.isNaN(pos[pe - 1])) pe--;
  let ne = neg.length;
  while (ne > 0 && Number.isNaN(neg[ne - 1])) ne--;
  let best = correct;
  let i = 0;
  let j = 0;
  while (i < pe || j < ne) {
    const t = Math.min(i < pe ? pos[i]! : Infinity, j < ne ? neg[j]! : Infinity);
    while (i < pe && pos[i] === t) (i++, correct++);
    while (j < ne && neg[j] === t) (j++, correct--);
    if (correct > best) best = correct;
  }
  return best / total;
}

function oldSweep(d: Float32Array, y: Uint8Array) {
  const n = d.length;
  const order = new Uint32Array(n);
  for (let i = 0; i < n; i++) order[i] = i;
  order.sort((a, b) => d[a]! - d[b]!);
  const thresholds: number[] = [n > 0 ? d[order[0]!]! : 0.5];
  const posBelow: number[] = [0];
  const negBelow: number[] = [0];
  let p = 0;
  let q = 0;
  let i = 0;
  while (i < n) {
    const v = d[order[i]!]!;
    while (i < n && d[order[i]!]! === v) {
      if (y[order[i]!] === 1) p++;
      else q++;
      i++;
    }
    thresholds.push(i < n ? (v + d[order[i]!]!) / 2 : v + 1);
    posBelow.push(p);
    negBelow.push(q);
  }
  return { thresholds, posBelow, negBelow, nPos: p, nNeg: q, order };
}

function oldBestThreshold(d: Float32Array, y: Uint8Array) {
  if (d.length === 0) return { threshold: NaN, accuracy: NaN };
  const s = oldSweep(d, y);
  let best = -1;
  let at = 0;
  for (let k = 0; k < s.thresholds.length; k++) {
    const correct = s.posBelow[k]! + (s.nNeg - s.negBelow[k]!);
    if (correct > best) {
      best = correct;
      at = k;
    }
  }
  return { threshold: s.thresholds[at]!, accuracy: best / d.length };
}

function oldRocAuc(d: Float32Array, y: Uint8Array): number {
  const n = d.length;
  const { order } = oldSweep(d, y);
  let posBefore = 0;
  let wins = 0;
  let nPos = 0;
  let nNeg = 0;
  let i = 0;
  while (i < n) {
    const v = d[order[i]!]!;
    let p = 0;
    let q = 0;
    while (i < n && d[order[i]!]! === v) {
      if (y[order[i]!] === 1) p++;
      else q++;
      i++;
    }
    wins += q * posBefore + 0.5 * q * p;
    posBefore += p;
    nPos += p;
    nNeg += q;
  }
  return nPos === 0 || nNeg === 0 ? NaN : wins / (nPos * nNeg);
}

function oldEqualErrorRate(d: Float32Array, y: Uint8Array) {
  const s = oldSweep(d, y);
  if (s.nPos === 0 || s.nNeg === 0) return { eer: NaN, threshold: NaN };
  const far = (k: number): number => s.negBelow[k]! / s.nNeg;
  const frr = (k: number): number => 1 - s.posBelow[k]! / s.nPos;
  let k = 1;
  while (far(k) - frr(k) < 0) k++;
  const d0 = far(k - 1) - frr(k - 1);
  const d1 = far(k) - frr(k);
  const a = -d0 / (d1 - d0);
  return { eer: far(k - 1) + a * (far(k) - far(k - 1)), threshold: s.thresholds[k - 1]! + a * (s.thresholds[k]! - s.thresholds[k - 1]!) };
}

// ---- inputs ------------------------------------------------------------------------------

const SIZES = [0, 1, 2, 3, 31, 32, 33, 64, 100, 1000, 17_820];

/** distances of the kind a test set gives: positives smaller on average; `levels` > 0: that many distinct values (ties) */
function distances(n: number, seed: number, levels: number, posShare = 0.5): { d: Float32Array; y: Uint8Array } {
  const r = new Rng(seed);
  const d = new Float32Array(n);
  const y = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    y[i] = r.next() < posShare ? 1 : 0;
    const v = Math.abs(r.normal() * 0.3 + (y[i] ? 0.5 : 1.1));
    d[i] = levels > 0 ? Math.round(v * levels) / levels : v;
  }
  return { d, y };
}

const CASES = SIZES.flatMap((n, k) => [
  { name: `${n} continuous`, ...distances(n, 100 + k, 0) },
  { name: `${n} on 7 levels`, ...distances(n, 200 + k, 7) },
  { name: `${n} on 200 levels`, ...distances(n, 300 + k, 200) },
  { name: `${n} positives only`, ...distances(n, 400 + k, 50, 1) },
  { name: `${n} negatives only`, ...distances(n, 500 + k, 0, 0) },
  { name: `${n} all equal`, d: new Float32Array(n).fill(0.75), y: Uint8Array.from({ length: n }, (_, i) => i % 2) },
]);

test('bestThresholdAccuracy: the result of the typed-array sort it replaced, bit for bit', () => {
  for (const c of CASES) assert.equal(bestThresholdAccuracy(c.d, c.y), oldBestThresholdAccuracy(c.d, c.y), c.name);
  // NaN distances (a diverging batch loss's test set): set aside where Float64Array sort put them
  for (const n of [5, 40, 1000]) {
    const { d, y } = distances(n, 600 + n, 20);
    const withNaN = Float64Array.from(d, (v, i) => (i % 7 === 3 ? NaN : v));
    assert.equal(bestThresholdAccuracy(withNaN, y), oldBestThresholdAccuracy(withNaN, y), `${n} with NaN`);
    assert.equal(bestThresholdAccuracy(withNaN.map(() => NaN), y), oldBestThresholdAccuracy(withNaN.map(() => NaN), y), `${n} all NaN`);
  }
});

test('bestThreshold, rocAuc, equalErrorRate (alone and in pairMetrics): the results of the comparator sort they replaced, bit for bit', () => {
  for (const c of CASES) {
    assert.deepEqual(bestThreshold(c.d, c.y), oldBestThreshold(c.d, c.y), `best threshold, ${c.name}`);
    assert.ok(Object.is(rocAuc(c.d, c.y), oldRocAuc(c.d, c.y)), `auc, ${c.name}: ${rocAuc(c.d, c.y)} vs ${oldRocAuc(c.d, c.y)}`);
    assert.deepEqual(equalErrorRate(c.d, c.y), oldEqualErrorRate(c.d, c.y), `eer, ${c.name}`);
    // pairMetrics sorts once for the three
    const m = pairMetrics(c.d, c.y);
    assert.deepEqual([m.best, m.auc, m.eer], [oldBestThreshold(c.d, c.y), oldRocAuc(c.d, c.y), oldEqualErrorRate(c.d, c.y)], `pairMetrics, ${c.name}`);
  }
});

test('a hand-computed case: pairMetrics on five pairs', () => {
  // D: 0.1 (pos), 0.2 (neg), 0.2 (pos), 0.4 (pos), 0.9 (neg)
  const d = Float32Array.of(0.4, 0.2, 0.9, 0.1, 0.2);
  const y = Uint8Array.of(1, 0, 0, 1, 1);
  const m = pairMetrics(d, y);
  // cut above 0.4 (t = midpoint of 0.4 and 0.9): 3 positives right, 1 of 2 negatives right
  assert.equal(m.best.accuracy, 4 / 5);
  assert.equal(m.best.threshold, (Math.fround(0.4) + Math.fround(0.9)) / 2);
  // P(D_pos < D_neg): of 3 x 2 pairs, 0.1 beats both, 0.2 ties 0.2 and beats 0.9, 0.4 beats 0.9
  assert.equal(m.auc, (2 + 1.5 + 1) / 6);
});
