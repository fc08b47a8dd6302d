/**
 * Pair accuracy at the best threshold (in-sample): of a test set's pair distances, and of every
 * pair of a training batch (the batch losses' per-step accuracy, from the similarities).
 */
import { batchKernels } from '../losses/batchKernels.ts';

/**
 * The accuracy of "same class" = D < t at the best t (in-sample): positives' and negatives'
 * distances sorted, then one sweep over the cut points (ties move together).
 */
export function bestThresholdAccuracy(d: ArrayLike<number>, y: ArrayLike<number>): number {
  let np = 0;
  for (let i = 0; i < d.length; i++) if (y[i]) np++;
  const pos = new Float64Array(np);
  const neg = new Float64Array(d.length - np);
  for (let i = 0, a = 0, b = 0; i < d.length; i++) {
    if (y[i]) pos[a++] = d[i]!;
    else neg[b++] = d[i]!;
  }
  return sweepBest(pos.sort(), neg.sort());
}

function sweepBest(pos: Float64Array, neg: Float64Array): number {
  const total = pos.length + neg.length;
  if (total === 0) return 0;
  // threshold below everything: every pair called "different"
  return sweepFrom(pos, neg, neg.length) / total;
}

/**
 * The most pairs right at any cut of sorted pos and neg, starting from `correct` right with the
 * cut below all of them: a cut passing a positive gains it, passing a negative loses it. NaN
 * values (sorted last) are below no cut: a NaN positive is never right, a NaN negative always.
 */
function sweepFrom(pos: Float64Array, neg: Float64Array, correct: number): number {
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
  return best;
}

/**
 * pairSweep's arrays, reused call after call (they never leave it): fresh ~100 KB arrays every
 * step cost more than the sweep.
 */
const scratch = { keys: new Float64Array(0), same: new Uint8Array(0), bucket: new Int32Array(0), posC: new Int32Array(0), negC: new Int32Array(0), sims: new Float64Array(0) };

function grown<T extends Float64Array | Uint8Array | Int32Array>(a: T, n: number, make: (n: number) => T): T {
  return a.length >= n ? a : make(n);
}

/** Buckets refined one by one at most; past that a whole sort is as cheap. */
const MAX_REFINED = 8;

/**
 * bestThresholdAccuracy over every pair i < j of a batch, ranked by −S_ij (S [n, n], only i < j
 * read; higher: more alike), without sorting all n²/2 values: they go into buckets by value (a
 * monotone map, so a bucket's values all lie below the next bucket's), the cuts between buckets
 * are counted exactly, and only the buckets that could hold a better cut (few, near the best
 * one) are sorted and swept. The same result as the sorted sweep. (The native pair losses sweep
 * their own similarities in the same call, native/src/batchsweep.c; this runs where they did
 * not: the TypeScript losses, NaN.)
 */
export function pairSweep(labels: Int32Array, sims: Float64Array): number {
  const m = (labels.length * (labels.length - 1)) / 2;
  const n = labels.length;
  if (m === 0) return 0;
  const keys = (scratch.keys = grown(scratch.keys, m, (k) => new Float64Array(k)));
  const same = (scratch.same = grown(scratch.same, m, (k) => new Uint8Array(k)));
  let lo = Infinity;
  let hi = -Infinity;
  let np = 0;
  let nan = false;
  for (let i = 0, t = 0; i < n; i++) {
    const li = labels[i];
    const o = i * n;
    for (let j = i + 1; j < n; j++, t++) {
      // sorted on −s, the order of a distance
      const v = -sims[o + j]!;
      keys[t] = v;
      if (v !== v) nan = true;
      if (v < lo) lo = v;
      if (v > hi) hi = v;
      const p = labels[j] === li ? 1 : 0;
      same[t] = p;
      np += p;
    }
  }
  // about four pairs a bucket
  const buckets = Math.min(1 << 12, 2 ** Math.ceil(Math.log2(Math.max(2, m / 4))));
  const scale = buckets / (hi - lo);
  // NaN keys, one value only, or a range too small or too large to divide: sort them all
  if (nan || !(scale > 0 && scale < Infinity)) return sortedSweep(keys, same, m, np);
  const bucket = (scratch.bucket = grown(scratch.bucket, m, (k) => new Int32Array(k)));
  const posC = (scratch.posC = grown(scratch.posC, buckets, (k) => new Int32Array(k)));
  const negC = (scratch.negC = grown(scratch.negC, buckets, (k) => new Int32Array(k)));
  posC.fill(0, 0, buckets);
  negC.fill(0, 0, buckets);
  for (let t = 0; t < m; t++) {
    const b = Math.min(buckets - 1, Math.floor((keys[t]! - lo) * scale));
    bucket[t] = b;
    if (same[t]) posC[b]!++;
    else negC[b]!++;
  }
  // cuts between buckets: the positives below and the negatives above
  let best = m - np;
  let below = 0;
  let above = m - np;
  for (let b = 0; b < buckets; b++) {
    below += posC[b]!;
    above -= negC[b]!;
    if (below + above > best) best = below + above;
  }
  // a cut inside bucket b can be right on at most all of its pairs besides the others' best
  const refine: number[] = [];
  below = 0;
  above = m - np;
  for (let b = 0; b < buckets; b++) {
    if (below + posC[b]! + above > best) refine.push(b, below + above);
    below += posC[b]!;
    above -= negC[b]!;
  }
  if (refine.length / 2 > MAX_REFINED) return sortedSweep(keys, same, m, np);
  for (let r = 0; r < refine.length; r += 2) {
    const b = refine[r]!;
    const pos = new Float64Array(posC[b]!);
    const neg = new Float64Array(negC[b]!);
    for (let t = 0, a = 0, c = 0; t < m; t++) {
      if (bucket[t] !== b) continue;
      if (same[t]) pos[a++] = keys[t]!;
      else neg[c++] = keys[t]!;
    }
    // the cut below the bucket: its negatives right, its positives not yet
    const got = sweepFrom(pos.sort(), neg.sort(), refine[r + 1]!);
    if (got > best) best = got;
  }
  return best / m;
}

/** The sorted sweep of the first m keys (pairSweep's way around its buckets). */
function sortedSweep(keys: Float64Array, same: Uint8Array, m: number, np: number): number {
  const pos = new Float64Array(np);
  const neg = new Float64Array(m - np);
  for (let t = 0, a = 0, b = 0; t < m; t++) {
    if (same[t]) pos[a++] = keys[t]!;
    else neg[b++] = keys[t]!;
  }
  return sweepBest(pos.sort(), neg.sort());
}

/**
 * Best-threshold accuracy over every pair of a batch, on L2-normalised embeddings (D² = 2 − 2s).
 * With the native kernels loaded the cosines are float32 (the network's GEMM; the TypeScript
 * below is float64): the two can differ only where two pairs' cosines lie within float32
 * rounding of each other. Where x holds a NaN or an infinity, the TypeScript runs.
 */
export function batchPairAccuracy(emb: Float32Array, labels: Int32Array, dim: number): number {
  const n = labels.length;
  const k = batchKernels();
  // (the addon's limits: 46340 rows, n x dim below 2^29; past them the TypeScript)
  if (k && n > 0 && n <= 46340 && n * dim < 2 ** 29) {
    const r = k.batchCosineAccuracy(emb, dim, labels, undefined);
    if (r >= 0) return r;
  }
  const s = (scratch.sims = grown(scratch.sims, n * n, (k) => new Float64Array(k)));
  const norms = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    let q = 0;
    for (let k = 0, o = i * dim; k < dim; k++) q += emb[o + k]! * emb[o + k]!;
    norms[i] = Math.max(Math.sqrt(q), 1e-12);
  }
  // the order of 2 − 2s is the order of −s: no square root needed
  for (let i = 0; i < n; i++) {
    for (let j = i + 1; j < n; j++) {
      let q = 0;
      for (let k = 0, oi = i * dim, oj = j * dim; k < dim; k++) q += emb[oi + k]! * emb[oj + k]!;
      s[i * n + j] = q / (norms[i]! * norms[j]!);
    }
  }
  return pairSweep(labels, s);
}
