/**
 * What the batch-loss tests share: the reference run with the native kernels taken out, the
 * largest magnitude of an array, the oracles' unit rows and dot product, and the batch
 * accuracy's oracle.
 */
import { useBatchKernels } from '../../src/losses/batchKernels.ts';

/** fn with the TypeScript reference (the addon's kernels taken out meanwhile, then put back) */
export function reference<T>(fn: () => T): T {
  const k = useBatchKernels(null);
  try {
    return fn();
  } finally {
    useBatchKernels(k);
  }
}

/** the rows of a rows x dim array scaled to length 1, as plain float64 arrays (the oracles' input) */
export function unitRows(x: Float64Array, rows: number, dim: number): number[][] {
  const out: number[][] = [];
  for (let i = 0; i < rows; i++) {
    const r = Array.from(x.subarray(i * dim, (i + 1) * dim));
    const nrm = Math.hypot(...r);
    out.push(r.map((v) => v / nrm));
  }
  return out;
}

export const dot = (a: number[], b: number[]): number => a.reduce((s, v, k) => s + v * b[k]!, 0);

/** the largest |a_i| (0 for an empty array) */
export function maxAbs(a: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]!));
  return m;
}

/**
 * The oracle of the batch accuracy (the native sweeps' and the TypeScript's): every pair i < j
 * ranked by s (higher: "same"), sorted, and the count of pairs right swept over every cut (ties
 * move together), from the cut above all (every pair "different"). Plain and slow on purpose.
 */
export function sortAndSweep(s: ArrayLike<number>, labels: Int32Array): number {
  const n = labels.length;
  const pairs: { s: number; same: boolean }[] = [];
  for (let i = 0; i < n; i++) for (let j = i + 1; j < n; j++) pairs.push({ s: s[i * n + j]!, same: labels[i] === labels[j] });
  if (pairs.length === 0) return 0;
  pairs.sort((a, b) => b.s - a.s);
  let correct = pairs.filter((p) => !p.same).length;
  let best = correct;
  for (let q = 0; q < pairs.length; ) {
    const v = pairs[q]!.s;
    for (; q < pairs.length && pairs[q]!.s === v; q++) correct += pairs[q]!.same ? 1 : -1;
    best = Math.max(best, correct);
  }
  return best / pairs.length;
}
