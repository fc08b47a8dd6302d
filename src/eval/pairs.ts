/**
 * Pair measures from distances D and labels Y (1 = same class, 0 = different).
 * A pair is predicted "same" when its distance is BELOW the threshold (D < t), as in the seed:
 * accuracy = mean((D < 0.5) == Y).
 *
 * Measures that are undefined on the data (no positive or no negative pairs, no pairs at all)
 * come out as NaN rather than throwing, so a report can still show the rest.
 */
import { DataError } from '../errors.ts';
import { sortRange } from '../sortFloat64.ts';

export interface BestThreshold {
  threshold: number;
  accuracy: number;
}

export interface EqualErrorRate {
  /** the rate at which false accepts (negatives with D < t) equal false rejects (positives with D >= t) */
  eer: number;
  threshold: number;
}

export interface Moments {
  mean: number;
  /** population standard deviation (divides by n, numpy's default) */
  std: number;
  n: number;
}

export interface DistanceStats {
  /** all positive (same-class) pairs */
  pos: Moments;
  /** all negative pairs */
  neg: Moments;
  /** positive pairs with D < 0.4 only: the filtered view the seed's notebook reported */
  posBelow04: Moments;
}

export interface PairMetrics {
  /**
   * 'best': `accuracy` and `threshold` are the best threshold's (in-sample), for losses with no
   * absolute distance scale (the batch losses, on L2-normalised embeddings)
   */
  thresholdFrom?: 'best';
  /** number of pairs */
  n: number;
  /** the fixed decision threshold used for `accuracy` (0.5 unless given) */
  threshold: number;
  /** mean((D < threshold) == Y) */
  accuracy: number;
  /** the threshold with the highest accuracy on these pairs (an optimistic, in-sample figure) */
  best: BestThreshold;
  /** P(D_pos < D_neg), ties counted 1/2 */
  auc: number;
  eer: EqualErrorRate;
  stats: DistanceStats;
}

function check(d: Float32Array, y: Uint8Array): void {
  if (d.length !== y.length) {
    throw new DataError(`pair measures: ${d.length} distances but ${y.length} labels`);
  }
  for (let i = 0; i < d.length; i++) {
    if (!Number.isFinite(d[i]!)) throw new DataError(`pair measures: distance ${i} is ${d[i]}, not a finite number`);
    if (y[i]! > 1) throw new DataError(`pair measures: label ${i} is ${y[i]}, expected 0 or 1`);
  }
}

/** mean((d < threshold) == y); NaN for no pairs. */
export function pairAccuracy(d: Float32Array, y: Uint8Array, threshold = 0.5): number {
  check(d, y);
  let correct = 0;
  for (let i = 0; i < d.length; i++) if ((d[i]! < threshold ? 1 : 0) === y[i]) correct++;
  return d.length === 0 ? NaN : correct / d.length;
}

/**
 * The sweep shared by bestThreshold and equalErrorRate: distances sorted ascending, grouped
 * into runs of equal values. Split s (s = 0..groups) predicts "same" for the first s groups.
 * Its threshold is the midpoint between group s-1 and group s; below every distance (s = 0)
 * it is the smallest distance itself (nothing is strictly below it), above every distance
 * (s = groups) it is the largest distance + 1.
 */
interface Sweep {
  /** thresholds per split, length groups + 1 */
  thresholds: Float64Array;
  /** positives predicted "same" (D < t) per split */
  posBelow: Float64Array;
  /** negatives predicted "same" per split */
  negBelow: Float64Array;
  nPos: number;
  nNeg: number;
}

/**
 * The distinct distances ascending, each with its positives and negatives: the positives' and
 * the negatives' distances radix-sorted apart (sortRange: linear, where a comparator sort of
 * indices took about 6 ms for MNIST's 17,820 test pairs, three times per evaluation) and merged,
 * once for the three sweeps of pairMetrics.
 * Equal values form one group whatever their order, so the groups, and every measure swept over
 * them, are those of any sort. Distances are finite here (check).
 */
interface Groups {
  values: Float64Array;
  pos: Int32Array;
  neg: Int32Array;
  count: number;
}

function groups(d: Float32Array, y: Uint8Array): Groups {
  let np = 0;
  for (let i = 0; i < d.length; i++) if (y[i] === 1) np++;
  const pos = new Float64Array(np);
  const neg = new Float64Array(d.length - np);
  for (let i = 0, a = 0, b = 0; i < d.length; i++) {
    if (y[i] === 1) pos[a++] = d[i]!;
    else neg[b++] = d[i]!;
  }
  sortRange(pos, 0, pos.length);
  sortRange(neg, 0, neg.length);
  const g: Groups = { values: new Float64Array(d.length), pos: new Int32Array(d.length), neg: new Int32Array(d.length), count: 0 };
  let i = 0;
  let j = 0;
  while (i < pos.length || j < neg.length) {
    const v = Math.min(i < pos.length ? pos[i]! : Infinity, j < neg.length ? neg[j]! : Infinity);
    let p = 0;
    let q = 0;
    while (i < pos.length && pos[i] === v) (i++, p++);
    while (j < neg.length && neg[j] === v) (j++, q++);
    g.values[g.count] = v;
    g.pos[g.count] = p;
    g.neg[g.count++] = q;
  }
  return g;
}

function sweep(g: Groups): Sweep {
  const thresholds = new Float64Array(g.count + 1);
  const posBelow = new Float64Array(g.count + 1);
  const negBelow = new Float64Array(g.count + 1);
  let p = 0;
  let q = 0;
  thresholds[0] = g.count > 0 ? g.values[0]! : 0.5;
  for (let k = 0; k < g.count; k++) {
    const v = g.values[k]!;
    p += g.pos[k]!;
    q += g.neg[k]!;
    thresholds[k + 1] = k + 1 < g.count ? (v + g.values[k + 1]!) / 2 : v + 1;
    posBelow[k + 1] = p;
    negBelow[k + 1] = q;
  }
  return { thresholds, posBelow, negBelow, nPos: p, nNeg: q };
}

/**
 * The threshold that maximises pair accuracy, by an exact sweep over the sorted distances
 * (candidates: midpoints between consecutive distinct distances, and both ends). Ties between
 * equally accurate thresholds go to the smallest one. NaN fields for no pairs.
 */
export function bestThreshold(d: Float32Array, y: Uint8Array): BestThreshold {
  check(d, y);
  return bestOf(sweep(groups(d, y)), d.length);
}

function bestOf(s: Sweep, n: number): BestThreshold {
  if (n === 0) return { threshold: NaN, accuracy: NaN };
  let best = -1;
  let at = 0;
  for (let k = 0; k < s.thresholds.length; k++) {
    // correct = positives below t + negatives at or above t
    const correct = s.posBelow[k]! + (s.nNeg - s.negBelow[k]!);
    if (correct > best) {
      best = correct;
      at = k;
    }
  }
  return { threshold: s.thresholds[at]!, accuracy: best / n };
}

/**
 * ROC AUC with positives expected at SMALL distances: P(D_pos < D_neg) + P(D_pos = D_neg)/2,
 * over all positive-negative pairs (the Mann-Whitney statistic), by one sort (linear: groups).
 * NaN when there are no positives or no negatives.
 */
export function rocAuc(d: Float32Array, y: Uint8Array): number {
  check(d, y);
  return aucOf(groups(d, y));
}

function aucOf(g: Groups): number {
  // Walk the distinct distances; every negative at one beats all positives seen before it and
  // ties with the positives at it.
  let posBefore = 0;
  let wins = 0;
  let nPos = 0;
  let nNeg = 0;
  for (let k = 0; k < g.count; k++) {
    const p = g.pos[k]!;
    const q = g.neg[k]!;
    wins += q * posBefore + 0.5 * q * p;
    posBefore += p;
    nPos += p;
    nNeg += q;
  }
  return nPos === 0 || nNeg === 0 ? NaN : wins / (nPos * nNeg);
}

/**
 * Equal error rate: where the false-accept rate FAR(t) = #(neg, D < t)/#neg meets the
 * false-reject rate FRR(t) = #(pos, D >= t)/#pos. On the exact sweep FAR rises and FRR falls;
 * between the two sweep points that enclose the crossing both rates (and the threshold) are
 * interpolated linearly, and the EER is the common value there. NaN without both classes.
 */
export function equalErrorRate(d: Float32Array, y: Uint8Array): EqualErrorRate {
  check(d, y);
  return eerOf(sweep(groups(d, y)));
}

function eerOf(s: Sweep): EqualErrorRate {
  if (s.nPos === 0 || s.nNeg === 0) return { eer: NaN, threshold: NaN };
  const far = (k: number): number => s.negBelow[k]! / s.nNeg;
  const frr = (k: number): number => 1 - s.posBelow[k]! / s.nPos;
  // Split 0 has FAR 0, FRR 1: the difference FAR - FRR starts at -1 and ends at +1.
  let k = 1;
  while (far(k) - frr(k) < 0) k++;
  const d0 = far(k - 1) - frr(k - 1);
  const d1 = far(k) - frr(k);
  const a = -d0 / (d1 - d0);
  const eer = far(k - 1) + a * (far(k) - far(k - 1));
  const threshold = s.thresholds[k - 1]! + a * (s.thresholds[k]! - s.thresholds[k - 1]!);
  return { eer, threshold };
}

function moments(values: number[]): Moments {
  const n = values.length;
  if (n === 0) return { mean: NaN, std: NaN, n: 0 };
  let sum = 0;
  for (const v of values) sum += v;
  const mean = sum / n;
  let ss = 0;
  for (const v of values) ss += (v - mean) * (v - mean);
  return { mean, std: Math.sqrt(ss / n), n };
}

/**
 * Mean and population standard deviation of D over positive pairs, negative pairs, and the
 * seed's filtered view: positive pairs with D < 0.4 only (labelled as such wherever reported).
 */
export function distanceStats(d: Float32Array, y: Uint8Array): DistanceStats {
  check(d, y);
  const pos: number[] = [];
  const neg: number[] = [];
  const posLow: number[] = [];
  for (let i = 0; i < d.length; i++) {
    const v = d[i]!;
    if (y[i] === 1) {
      pos.push(v);
      if (v < 0.4) posLow.push(v);
    } else {
      neg.push(v);
    }
  }
  return { pos: moments(pos), neg: moments(neg), posBelow04: moments(posLow) };
}

/** Every pair measure at once; `threshold` is the fixed decision threshold for `accuracy`. */
export function pairMetrics(d: Float32Array, y: Uint8Array, threshold = 0.5): PairMetrics {
  const accuracy = pairAccuracy(d, y, threshold); // (checks d and y)
  // one sort for the three sweeps
  const g = groups(d, y);
  const s = sweep(g);
  return {
    n: d.length,
    threshold,
    accuracy,
    best: bestOf(s, d.length),
    auc: aucOf(g),
    eer: eerOf(s),
    stats: distanceStats(d, y),
  };
}
