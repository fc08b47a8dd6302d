/** Shared by the miner tests (not a test file): seeded batches and brute-force distances. */
import { Rng } from '../../src/rng.ts';

export interface Batch {
  emb: Float32Array;
  dim: number;
  labels: number[];
}

/** n items in `classes` classes, each class around its own centre, seeded. */
export function randomBatch(seed: number, n = 24, classes = 4, dim = 3): Batch {
  const rng = new Rng(seed);
  const centres = Array.from({ length: classes }, () => Array.from({ length: dim }, () => rng.normal()));
  const labels = Array.from({ length: n }, (_, i) => (i < classes ? i : rng.int(classes)));
  rng.shuffle(labels);
  const emb = new Float32Array(n * dim);
  for (let i = 0; i < n; i++) for (let c = 0; c < dim; c++) emb[i * dim + c] = centres[labels[i]!]![c]! + 0.7 * rng.normal();
  return { emb, dim, labels };
}

/** Distance between items i and j, the slow way. */
export function dist(b: Batch, i: number, j: number, squared: boolean): number {
  let s = 0;
  for (let c = 0; c < b.dim; c++) s += (b.emb[i * b.dim + c]! - b.emb[j * b.dim + c]!) ** 2;
  return squared ? s : Math.sqrt(s);
}

/** Triplet index arrays as strings "a,p,n" in order, for deepEqual. */
export function tripletList(t: { anchors: Int32Array; positives: Int32Array; negatives: Int32Array }): string[] {
  return Array.from(t.anchors, (a, i) => `${a},${t.positives[i]},${t.negatives[i]}`);
}

export const SEEDS = [1, 2, 3, 4, 5, 6];
