import { batchSize, checkMargin, pairwiseDistances } from './distances.ts';
import type { MinerOptions, MinerStats, TripletIndices } from './types.ts';

export interface BatchAllOptions extends MinerOptions {
  /**
   * Keep only triplets with a positive loss, d(a,p) − d(a,n) + margin > 0 (batch-all as in
   * Hermans, Beyer, Leibe 2017); otherwise keep every valid triplet (the seed's naive way).
   * Default false.
   */
  positiveLossOnly?: boolean;
}

/** Default margin and distance of the triplet miners: the seed's triplet loss (0.85, squared). */
export const TRIPLET_MINER_DEFAULTS = { margin: 0.85, squared: true } as const;

/**
 * Every valid triplet of the batch: a ≠ p with the same label, n with a different label,
 * ordered by anchor, then positive, then negative (all ascending). With `positiveLossOnly`,
 * only those with d(a,p) − d(a,n) + margin > 0, where d is squared Euclidean unless
 * `squared: false`. Stats: candidates = valid triplets, kept = triplets returned.
 */
export function batchAllTriplets(
  emb: Float32Array,
  dim: number,
  labels: ArrayLike<number>,
  opts: BatchAllOptions = {},
): { indices: TripletIndices; stats: MinerStats } {
  const n = batchSize(emb, dim, labels);
  const margin = checkMargin(opts.margin ?? TRIPLET_MINER_DEFAULTS.margin);
  const filter = opts.positiveLossOnly ?? false;
  const dist = filter ? pairwiseDistances(emb, dim, n, opts.squared ?? TRIPLET_MINER_DEFAULTS.squared) : null;

  // Exact count of valid triplets: Σ_a (same(a) − 1)·(n − same(a)).
  const same = new Int32Array(n);
  for (let a = 0; a < n; a++) for (let b = 0; b < n; b++) if (labels[a] === labels[b]) same[a]!++;
  let candidates = 0;
  for (let a = 0; a < n; a++) candidates += (same[a]! - 1) * (n - same[a]!);

  const anchors = new Int32Array(candidates);
  const positives = new Int32Array(candidates);
  const negatives = new Int32Array(candidates);
  let kept = 0;
  for (let a = 0; a < n; a++) {
    const la = labels[a];
    for (let p = 0; p < n; p++) {
      if (p === a || labels[p] !== la) continue;
      for (let q = 0; q < n; q++) {
        if (labels[q] === la) continue;
        if (dist && !(dist[a * n + p]! - dist[a * n + q]! + margin > 0)) continue;
        anchors[kept] = a;
        positives[kept] = p;
        negatives[kept] = q;
        kept++;
      }
    }
  }
  return {
    indices: {
      anchors: anchors.slice(0, kept),
      positives: positives.slice(0, kept),
      negatives: negatives.slice(0, kept),
    },
    stats: { kept, candidates },
  };
}
