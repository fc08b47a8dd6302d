import { DataError, UsageError } from '../errors.ts';

/** Checks a batch of embeddings against its labels; returns the batch size. */
export function batchSize(emb: Float32Array, dim: number, labels: ArrayLike<number>): number {
  if (!Number.isInteger(dim) || dim < 1) throw new UsageError(`miner: dim must be a positive integer, got ${dim}`);
  const n = labels.length;
  if (emb.length !== n * dim) {
    throw new DataError(`miner: ${emb.length} embedding values do not match ${n} labels of dimension ${dim}`);
  }
  return n;
}

/**
 * All pairwise distances of a batch, [n, n] row-major, in float64: squared Euclidean when
 * `squared`, else Euclidean. Computed from differences (not the norm expansion), so they are
 * exact to rounding and the diagonal is 0.
 */
export function pairwiseDistances(emb: Float32Array, dim: number, n: number, squared: boolean): Float64Array {
  const out = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    for (let j = i + 1; j < n; j++) {
      let s = 0;
      for (let k = 0, oi = i * dim, oj = j * dim; k < dim; k++) {
        const t = emb[oi + k]! - emb[oj + k]!;
        s += t * t;
      }
      const v = squared ? s : Math.sqrt(s);
      out[i * n + j] = v;
      out[j * n + i] = v;
    }
  }
  return out;
}

export function checkMargin(margin: number): number {
  if (!Number.isFinite(margin) || margin < 0) throw new UsageError(`miner: margin must be a number >= 0, got ${margin}`);
  return margin;
}
