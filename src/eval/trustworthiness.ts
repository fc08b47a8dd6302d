/**
 * Trustworthiness of an embedding (Venna and Kaski 2001), the definition of
 * sklearn.manifold.trustworthiness:
 *
 *   T(k) = 1 - 2 / (n k (2n - 3k - 1)) * sum_i sum_{j in U_i^k} max(0, r(i, j) - k)
 *
 * where U_i^k are the k nearest neighbours of i in the embedding and r(i, j) is the rank of j
 * among i's neighbours in the original space (1 = nearest). T = 1 when every embedded
 * neighbour is also a true k-neighbour; points pulled in from far away cost their excess rank.
 *
 * Ranks are exact: every row of the high-dimensional distance matrix is computed (blocked, never
 * held whole). Equal distances are ranked by index, as a stable sort would.
 */
import { UsageError } from '../errors.ts';
import { forEachDistanceRows, knn } from './knn.ts';

export function trustworthiness(
  high: Float32Array, highDim: number, low: Float32Array, lowDim: number, k = 10,
): number {
  if (!Number.isInteger(highDim) || highDim < 1 || high.length % highDim !== 0) {
    throw new UsageError(`trustworthiness: ${high.length} values do not split into rows of ${highDim}`);
  }
  if (!Number.isInteger(lowDim) || lowDim < 1 || low.length % lowDim !== 0) {
    throw new UsageError(`trustworthiness: ${low.length} values do not split into rows of ${lowDim}`);
  }
  const n = high.length / highDim;
  if (low.length / lowDim !== n) {
    throw new UsageError(`trustworthiness: ${n} original rows but ${low.length / lowDim} embedded rows`);
  }
  // The normalisation is positive only below n/2 (sklearn has the same bound).
  if (!Number.isInteger(k) || k < 1 || k >= n / 2) {
    throw new UsageError(`trustworthiness: k must be an integer in 1..${Math.ceil(n / 2) - 1} for ${n} points, got ${k}`);
  }

  const lowNn = knn(low, lowDim, k).indices;
  const thrD = new Float64Array(k);
  const thrI = new Int32Array(k);
  const hist = new Float64Array(k + 1);
  let penalty = 0;

  forEachDistanceRows(high, highDim, (start, end, d) => {
    for (let i = start; i < end; i++) {
      const row = (i - start) * n;
      // The embedded neighbours' original distances, sorted by (distance, index).
      for (let q = 0; q < k; q++) {
        const j = lowNn[i * k + q]!;
        const dj = d[row + j]!;
        let p = q;
        while (p > 0 && (thrD[p - 1]! > dj || (thrD[p - 1] === dj && thrI[p - 1]! > j))) {
          thrD[p] = thrD[p - 1]!;
          thrI[p] = thrI[p - 1]!;
          p--;
        }
        thrD[p] = dj;
        thrI[p] = j;
      }
      // hist[p] counts the points that come before thresholds p..k-1 but not before p-1, so
      // rank(threshold q) = 1 + hist[0] + ... + hist[q].
      hist.fill(0);
      const maxD = thrD[k - 1]!, maxI = thrI[k - 1]!;
      for (let l = 0; l < n; l++) {
        if (l === i) continue;
        const dl = d[row + l]!;
        if (dl > maxD || (dl === maxD && l >= maxI)) continue; // after every threshold: most points
        let p = 0;
        while (thrD[p]! < dl || (thrD[p] === dl && thrI[p]! <= l)) p++;
        hist[p]!++;
      }
      let before = 0;
      for (let q = 0; q < k; q++) {
        before += hist[q]!;
        const rank = 1 + before;
        if (rank > k) penalty += rank - k;
      }
    }
  });

  return 1 - (2 / (n * k * (2 * n - 3 * k - 1))) * penalty;
}
