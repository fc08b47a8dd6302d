import { Rng } from '../rng.ts';
import { classCount } from './dataset.ts';
import { classIndices } from './pairs.ts';

/**
 * A class-stratified subset of `n` items: each class gets its share of n (largest remainders
 * round), drawn by a seeded shuffle of the class; returned in ascending index order. The same
 * labels, n and seed give the same subset (compare's t-SNE panels, training's snapshots).
 */
export function stratifiedSubset(labels: Uint8Array, n: number, seed: number): number[] {
  if (n >= labels.length) return Array.from({ length: labels.length }, (_, i) => i);
  const k = classCount(labels);
  const byClass = classIndices(labels, k);
  const exact = byClass.map((c) => (n * c.length) / labels.length);
  const quota = exact.map(Math.floor);
  let left = n - quota.reduce((s, q) => s + q, 0);
  const order = exact.map((e, c) => [e - Math.floor(e), c] as const).sort((x, y) => y[0] - x[0] || x[1] - y[1]);
  for (const [, c] of order) {
    if (left-- <= 0) break;
    quota[c]!++;
  }
  const rng = new Rng(seed);
  const out: number[] = [];
  byClass.forEach((members, c) => {
    const shuffled = rng.fork().shuffle(Int32Array.from(members));
    for (let i = 0; i < quota[c]!; i++) out.push(shuffled[i]!);
  });
  return out.sort((a, b) => a - b);
}

/**
 * `stratifiedSubset` of the items whose label is one of `classes` only: n of them (all, when there
 * are fewer), each class its share of those items, in ascending index order. With every class
 * given it is `stratifiedSubset` itself; under a class-disjoint split it gives n test-class
 * items, where filtering the whole set's subset would keep only their share of n.
 */
export function stratifiedSubsetOf(labels: Uint8Array, classes: readonly number[], n: number, seed: number): number[] {
  const keep = new Set(classes);
  const members: number[] = [];
  for (let i = 0; i < labels.length; i++) if (keep.has(labels[i]!)) members.push(i);
  if (members.length === labels.length) return stratifiedSubset(labels, n, seed);
  // the members relabelled 0..k-1 in class order (stratifiedSubset wants contiguous labels)
  const present = [...new Set(members.map((i) => labels[i]!))].sort((a, b) => a - b);
  const rank = new Map(present.map((c, r) => [c, r]));
  const sub = stratifiedSubset(Uint8Array.from(members, (i) => rank.get(labels[i]!)!), n, seed);
  return sub.map((j) => members[j]!);
}
