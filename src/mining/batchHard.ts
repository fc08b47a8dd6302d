import { TRIPLET_MINER_DEFAULTS } from './batchAll.ts';
import { batchSize, pairwiseDistances } from './distances.ts';
import type { MinerOptions, MinerStats, TripletIndices } from './types.ts';

/**
 * Batch-hard mining (Hermans, Beyer, Leibe 2017): for each anchor, its hardest positive (the
 * same-label item at the LARGEST distance) and its hardest negative (the other-label item at
 * the SMALLEST distance); one triplet per anchor, in anchor order. Equal distances go to the
 * lower index. Anchors without a positive or without a negative in the batch are skipped.
 * The margin plays no part in the choice. Distances are squared Euclidean unless
 * `squared: false` (the order, hence the choice, is the same either way).
 * Stats: candidates = anchors in the batch, kept = triplets returned.
 */
export function batchHardTriplets(
  emb: Float32Array,
  dim: number,
  labels: ArrayLike<number>,
  opts: MinerOptions = {},
): { indices: TripletIndices; stats: MinerStats } {
  const n = batchSize(emb, dim, labels);
  const dist = pairwiseDistances(emb, dim, n, opts.squared ?? TRIPLET_MINER_DEFAULTS.squared);
  const anchors: number[] = [];
  const positives: number[] = [];
  const negatives: number[] = [];
  for (let a = 0; a < n; a++) {
    let hp = -1;
    let hn = -1;
    for (let j = 0; j < n; j++) {
      if (j === a) continue;
      const dj = dist[a * n + j]!;
      if (labels[j] === labels[a]) {
        if (hp < 0 || dj > dist[a * n + hp]!) hp = j;
      } else if (hn < 0 || dj < dist[a * n + hn]!) {
        hn = j;
      }
    }
    if (hp >= 0 && hn >= 0) {
      anchors.push(a);
      positives.push(hp);
      negatives.push(hn);
    }
  }
  return {
    indices: {
      anchors: Int32Array.from(anchors),
      positives: Int32Array.from(positives),
      negatives: Int32Array.from(negatives),
    },
    stats: { kept: anchors.length, candidates: n },
  };
}
