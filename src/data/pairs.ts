import { DataError } from '../errors.ts';
import type { Rng } from '../rng.ts';

/** Index pairs into one split; y = 1 means "same class". */
export interface PairSet {
  a: Int32Array;
  b: Int32Array;
  y: Uint8Array;
  length: number;
}

/** Indices of each class, in data set order. */
export function classIndices(labels: Uint8Array, numClasses: number): Int32Array[] {
  const counts = new Array<number>(numClasses).fill(0);
  for (const l of labels) counts[l]!++;
  const out = counts.map((c) => new Int32Array(c));
  const fill = new Array<number>(numClasses).fill(0);
  for (let i = 0; i < labels.length; i++) out[labels[i]!]![fill[labels[i]!]!++] = i;
  return out;
}

/**
 * The pair recipe of Keras' mnist_siamese example (the seed's): with n = min class size − 1,
 * for each class d and i < n, the positive (idx[d][i], idx[d][i+1]) then the negative
 * (idx[d][i], idx[dn][i]) with dn = (d + r) mod K, r uniform in 1..K−1; then a shuffle.
 * MNIST train gives 108,400 pairs, test 17,820.
 */
export function makePairs(labels: Uint8Array, numClasses: number, rng: Rng): PairSet {
  const idx = classIndices(labels, numClasses);
  const n = Math.min(...idx.map((c) => c.length)) - 1;
  if (numClasses < 2 || n < 1) throw new DataError(`pairs need at least 2 classes with 2 images each`);
  const len = 2 * numClasses * n;
  const a = new Int32Array(len);
  const b = new Int32Array(len);
  const y = new Uint8Array(len);
  let k = 0;
  for (let d = 0; d < numClasses; d++) {
    for (let i = 0; i < n; i++) {
      a[k] = idx[d]![i]!;
      b[k] = idx[d]![i + 1]!;
      y[k++] = 1;
      const dn = (d + 1 + rng.int(numClasses - 1)) % numClasses;
      a[k] = idx[d]![i]!;
      b[k] = idx[dn]![i]!;
      y[k++] = 0;
    }
  }
  const perm = rng.shuffle(Int32Array.from({ length: len }, (_, i) => i));
  return permutePairs({ a, b, y, length: len }, perm);
}

export function permutePairs(p: PairSet, perm: Int32Array): PairSet {
  const a = new Int32Array(perm.length);
  const b = new Int32Array(perm.length);
  const y = new Uint8Array(perm.length);
  for (let i = 0; i < perm.length; i++) {
    a[i] = p.a[perm[i]!]!;
    b[i] = p.b[perm[i]!]!;
    y[i] = p.y[perm[i]!]!;
  }
  return { a, b, y, length: perm.length };
}

/** The first `count` pairs (a slice for quick runs and tests). */
export function slicePairs(p: PairSet, count: number): PairSet {
  const c = Math.min(count, p.length);
  return { a: p.a.slice(0, c), b: p.b.slice(0, c), y: p.y.slice(0, c), length: c };
}

/** Anchor/positive/negative index triplets into one split. */
export interface TripletSet {
  anchors: Int32Array;
  positives: Int32Array;
  negatives: Int32Array;
  length: number;
}

/**
 * Random valid triplets: each image once as anchor per epoch (in a shuffled order), a random other
 * image of its class as positive, a random image of another class as negative.
 */
export function makeRandomTriplets(labels: Uint8Array, numClasses: number, rng: Rng): TripletSet {
  const idx = classIndices(labels, numClasses);
  const n = labels.length;
  const anchors = rng.shuffle(Int32Array.from({ length: n }, (_, i) => i));
  const positives = new Int32Array(n);
  const negatives = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const c = labels[anchors[i]!]!;
    const same = idx[c]!;
    if (same.length < 2) throw new DataError(`class ${c} has fewer than 2 images: no positive for a triplet`);
    let p: number;
    do p = same[rng.int(same.length)]!;
    while (p === anchors[i]);
    positives[i] = p;
    const other = (c + 1 + rng.int(numClasses - 1)) % numClasses;
    const pool = idx[other]!;
    negatives[i] = pool[rng.int(pool.length)]!;
  }
  return { anchors, positives, negatives, length: n };
}
