import { batchSize, checkMargin, pairwiseDistances } from './distances.ts';
import type { MinerOptions, MinerStats, PairIndices } from './types.ts';

/** Default margin and distance of the pair miner: the contrastive loss (m = 1 on plain D). */
export const PAIR_MINER_DEFAULTS = { margin: 1, squared: false } as const;

/**
 * Hard-negative pair mining for pair losses: every positive pair of the batch, plus the
 * negative pairs closer than the margin, d < margin: exactly the negatives on which the
 * contrastive loss max(m − D, 0)² is not zero. (Selection by margin, not "k hardest per
 * anchor": the number kept adapts as training separates the classes.) Each unordered pair
 * appears once, as (i, j) with i < j, in lexicographic order. d is plain Euclidean unless
 * `squared: true` (then d² < margin). Stats: candidates = all n(n−1)/2 pairs,
 * kept = pairs returned.
 */
export function hardNegativePairs(
  emb: Float32Array,
  dim: number,
  labels: ArrayLike<number>,
  opts: MinerOptions = {},
): { indices: PairIndices; stats: MinerStats } {
  const n = batchSize(emb, dim, labels);
  const margin = checkMargin(opts.margin ?? PAIR_MINER_DEFAULTS.margin);
  const dist = pairwiseDistances(emb, dim, n, opts.squared ?? PAIR_MINER_DEFAULTS.squared);
  const a: number[] = [];
  const b: number[] = [];
  const y: number[] = [];
  for (let i = 0; i < n; i++) {
    for (let j = i + 1; j < n; j++) {
      const same = labels[i] === labels[j];
      if (same || dist[i * n + j]! < margin) {
        a.push(i);
        b.push(j);
        y.push(same ? 1 : 0);
      }
    }
  }
  return {
    indices: { a: Int32Array.from(a), b: Int32Array.from(b), y: Uint8Array.from(y) },
    stats: { kept: a.length, candidates: (n * (n - 1)) / 2 },
  };
}
