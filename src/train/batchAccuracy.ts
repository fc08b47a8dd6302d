/**
 * Pair accuracy at the best threshold (in-sample): of a test set's pair distances, and of every
 * pair of a training batch (the batch losses' per-step accuracy, from the similarities).
 */
import { batchKernels } from '../losses/batchKernels.ts';
import { sortRange } from '../sortFloat64.ts';

export { sortRange };

/**
 * The accuracy of "same class" = D < t at the best t (in-sample): positives' and negatives'
 * distances sorted, then one sweep over the cut points (ties move together). The batch losses'
 * test accuracy every epoch (17,820 MNIST pairs): radix-sorted (sortRange), NaN set aside at
 * each side's end, where Float64Array sort puts them: the same arrays, the same result.
 */
export function bestThresholdAccuracy(d: ArrayLike<number>, y: ArrayLike<number>): number {
  let np = 0;
  for (let i = 0; i < d.length; i++) if (y[i]) np++;
  const pos = new Float64Array(np);
  const neg = new Float64Array(d.length - np);
  let a = 0;
  let b = 0;
  let pNaN = pos.length;
  let nNaN = neg.length;
  for (let i = 0; i < d.length; i++) {
    const v = d[i]!;
    if (y[i]) {
      if (v !== v) pos[--pNaN] = v;
      else pos[a++] = v;
    } else if (v !== v) neg[--nNaN] = v;
    else neg[b++] = v;
  }
  sortRange(pos, 0, a);
  sortRange(neg, 0, b);
  return sweepBest(pos, neg);
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
const scratch = {
  keys: new Float64Array(0),
  same: new Uint8Array(0),
  bucket: new Int32Array(0),
  posC: new Int32Array(0),
  negC: new Int32Array(0),
  /** per refined bucket k: its slots' starts in posV and negV (k + 1: the ends), the pairs right at the cut below it, the write cursors */
  pAt: new Int32Array(0),
  nAt: new Int32Array(0),
  from: new Int32Array(0),
  pW: new Int32Array(0),
  nW: new Int32Array(0),
  /** bucket -> its k, or -1 where it is not refined */
  mark: new Int32Array(0),
  posV: new Float64Array(0),
  negV: new Float64Array(0),
  sims: new Float64Array(0),
};

function grown<T extends Float64Array | Uint8Array | Int32Array | Uint32Array>(a: T, n: number, make: (n: number) => T): T {
  return a.length >= n ? a : make(n);
}

const int32s = (k: number) => new Int32Array(k);
const float64s = (k: number) => new Float64Array(k);

/**
 * bestThresholdAccuracy over every pair i < j of a batch, ranked by −S_ij (S [n, n], only i < j
 * read; higher: more alike), without sorting all n²/2 values: they go into buckets by value (a
 * monotone map, so a bucket's values all lie below the next bucket's), the cuts between buckets
 * are counted exactly, and only the buckets that could hold a better cut are sorted and swept,
 * however many (on a noisy batch most can: the sweep once gave up past 8 and sorted everything).
 * The same result as the sorted sweep, in O(P) passes plus the refined buckets' sorts (a few
 * values each, O(P log P) at worst: sortRange). (The native pair losses sweep their own
 * similarities in the same call, native/src/batchsweep.c; this runs where they did not: the
 * TypeScript losses, NaN.)
 */
export function pairSweep(labels: Int32Array, sims: Float64Array): number {
  const m = (labels.length * (labels.length - 1)) / 2;
  const n = labels.length;
  if (m === 0) return 0;
  const keys = (scratch.keys = grown(scratch.keys, m, float64s));
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
  const bucket = (scratch.bucket = grown(scratch.bucket, m, int32s));
  const posC = (scratch.posC = grown(scratch.posC, buckets, int32s));
  const negC = (scratch.negC = grown(scratch.negC, buckets, int32s));
  posC.fill(0, 0, buckets);
  negC.fill(0, 0, buckets);
  const top = buckets - 1;
  for (let t = 0; t < m; t++) {
    // (0 <= the product <= buckets: | 0 truncates as floor does)
    const f = ((keys[t]! - lo) * scale) | 0;
    const b = f < top ? f : top;
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
  // a cut inside bucket b can be right on at most all of its pairs besides the others' best:
  // those buckets get slots, in order, in posV and negV
  const mark = (scratch.mark = grown(scratch.mark, buckets, int32s));
  const pAt = (scratch.pAt = grown(scratch.pAt, buckets + 1, int32s));
  const nAt = (scratch.nAt = grown(scratch.nAt, buckets + 1, int32s));
  const from = (scratch.from = grown(scratch.from, buckets, int32s));
  let refined = 0;
  let ps = 0;
  let ns = 0;
  below = 0;
  above = m - np;
  for (let b = 0; b < buckets; b++) {
    const pc = posC[b]!;
    const nc = negC[b]!;
    if (below + pc + above > best) {
      // the cut below the bucket: its negatives right, its positives not yet
      from[refined] = below + above;
      pAt[refined] = ps;
      nAt[refined] = ns;
      ps += pc;
      ns += nc;
      mark[b] = refined++;
    } else mark[b] = -1;
    below += pc;
    above -= nc;
  }
  if (refined === 0) return best / m;
  pAt[refined] = ps;
  nAt[refined] = ns;
  const posV = (scratch.posV = grown(scratch.posV, ps, float64s));
  const negV = (scratch.negV = grown(scratch.negV, ns, float64s));
  const pW = (scratch.pW = grown(scratch.pW, refined, int32s));
  const nW = (scratch.nW = grown(scratch.nW, refined, int32s));
  pW.set(pAt.subarray(0, refined));
  nW.set(nAt.subarray(0, refined));
  for (let t = 0; t < m; t++) {
    const k = mark[bucket[t]!]!;
    if (k < 0) continue;
    if (same[t]) posV[pW[k]!++] = keys[t]!;
    else negV[nW[k]!++] = keys[t]!;
  }
  for (let k = 0; k < refined; k++) {
    sortRange(posV, pAt[k]!, pAt[k + 1]!);
    sortRange(negV, nAt[k]!, nAt[k + 1]!);
    const got = sweepRange(posV, pAt[k]!, pAt[k + 1]!, negV, nAt[k]!, nAt[k + 1]!, from[k]!);
    if (got > best) best = got;
  }
  return best / m;
}

/**
 * sweepFrom on pos[p0, p1) and neg[q0, q1), both sorted, no NaN: the most pairs right at any cut,
 * from `correct` right with the cut below all of them.
 */
function sweepRange(pos: Float64Array, p0: number, p1: number, neg: Float64Array, q0: number, q1: number, correct: number): number {
  let best = correct;
  let i = p0;
  let j = q0;
  while (i < p1 || j < q1) {
    const t = Math.min(i < p1 ? pos[i]! : Infinity, j < q1 ? neg[j]! : Infinity);
    while (i < p1 && pos[i] === t) (i++, correct++);
    while (j < q1 && neg[j] === t) (j++, correct--);
    if (correct > best) best = correct;
  }
  return best;
}

/**
 * The sorted sweep of the first m keys (pairSweep's way where it cannot bucket: NaN, one value,
 * an infinite range). A NaN pair is below no cut: a NaN positive never right, a NaN negative
 * always; the others radix-sorted and swept.
 */
function sortedSweep(keys: Float64Array, same: Uint8Array, m: number, np: number): number {
  const pos = (scratch.posV = grown(scratch.posV, np, float64s));
  const neg = (scratch.negV = grown(scratch.negV, m - np, float64s));
  let a = 0;
  let b = 0;
  for (let t = 0; t < m; t++) {
    const v = keys[t]!;
    if (v !== v) continue;
    if (same[t]) pos[a++] = v;
    else neg[b++] = v;
  }
  sortRange(pos, 0, a);
  sortRange(neg, 0, b);
  // the cut below everything: every negative right, the NaN ones included
  return sweepRange(pos, 0, a, neg, 0, b, m - np) / m;
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
