import { TRIPLET_MINER_DEFAULTS } from './batchAll.ts';
import { batchSize, checkMargin, pairwiseDistances } from './distances.ts';
import type { MinerOptions, MinerStats, TripletIndices } from './types.ts';

/**
 * Semi-hard mining (Schroff, Kalenichenko, Philbin 2015, FaceNet): for each positive pair
 * (a, p), a ≠ p, the negatives inside the band d(a,p) < d(a,n) < d(a,p) + margin are farther
 * than the positive (so not the hardest) but still violate the margin. Of those, this picks
 * ONE: the hardest semi-hard negative, i.e. the smallest d(a,n) in the band (equal distances:
 * the lower index). A pair with no negative in the band yields no triplet (no fallback).
 * Distances are squared Euclidean unless `squared: false`, as in the loss the triplets feed.
 * Output in (anchor, positive) order. Stats: candidates = positive pairs (a, p),
 * kept = those that found a semi-hard negative.
 */
export function semiHardTriplets(
  emb: Float32Array,
  dim: number,
  labels: ArrayLike<number>,
  opts: MinerOptions = {},
): { indices: TripletIndices; stats: MinerStats } {
  const n = batchSize(emb, dim, labels);
  const margin = checkMargin(opts.margin ?? TRIPLET_MINER_DEFAULTS.margin);
  const dist = pairwiseDistances(emb, dim, n, opts.squared ?? TRIPLET_MINER_DEFAULTS.squared);
  const anchors: number[] = [];
  const positives: number[] = [];
  const negatives: number[] = [];
  let candidates = 0;
  for (let a = 0; a < n; a++) {
    for (let p = 0; p < n; p++) {
      if (p === a || labels[p] !== labels[a]) continue;
      candidates++;
      const dap = dist[a * n + p]!;
      let best = -1;
      for (let q = 0; q < n; q++) {
        if (labels[q] === labels[a]) continue;
        const daq = dist[a * n + q]!;
        if (daq > dap && daq < dap + margin && (best < 0 || daq < dist[a * n + best]!)) best = q;
      }
      if (best >= 0) {
        anchors.push(a);
        positives.push(p);
        negatives.push(best);
      }
    }
  }
  return {
    indices: {
      anchors: Int32Array.from(anchors),
      positives: Int32Array.from(positives),
      negatives: Int32Array.from(negatives),
    },
    stats: { kept: anchors.length, candidates },
  };
}
