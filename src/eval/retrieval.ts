/**
 * Retrieval measures on embeddings, as defined in Musgrave, Belongie and Lim (2020),
 * "A Metric Learning Reality Check". Every item is a query against all the others (the query
 * set is the reference set, the item itself excluded), ranked by Euclidean distance.
 *
 * For a query q with label c, R = number of OTHER items labelled c, rel(i) = 1 when the i-th
 * nearest neighbour is labelled c, and P(i) = (1/i) Σ_{j<=i} rel(j):
 * - P@1          = rel(1)
 * - R-precision  = (1/R) Σ_{i=1..R} rel(i)
 * - MAP@R        = (1/R) Σ_{i=1..R} P(i)·rel(i)
 * each averaged over the queries with R >= 1 (a query alone in its class has nothing to find
 * and is left out of these three; `queries` says how many counted).
 * - kNN accuracy: the majority label among the k nearest neighbours equals the query's label
 *   (k = `knnK`, default 10); a tie between labels goes to the one whose nearest member is
 *   nearer. Averaged over ALL items.
 *
 * Neighbours at equal distance (duplicate images, a collapsed model's identical embeddings) have no
 * order of their own: P@1, R-precision and MAP@R are their expectations over every order of each
 * group of equally distant neighbours (`expectedScoresAtR`), so the data set's order never decides
 * them (a folder data set is stored class by class: ties by index would rank a query's own class
 * first). The kNN vote takes its k nearest by (squared distance, index), as `knn` does.
 * Every query needs its L = max(R, k) nearest, and R reaches ~1,100
 * on MNIST's test set; a bounded heap of that size is slow, so the full distance rows are
 * streamed (`forEachDistanceRows`, knn's kernel) and each row is cut by selection: the L-th
 * smallest distance found in O(n), then only those L neighbours sorted.
 */
import { DataError, UsageError } from '../errors.ts';
import { forEachDistanceRows } from './knn.ts';

export interface RetrievalOptions {
  /** neighbours that vote in the kNN accuracy; default 10 */
  knnK?: number;
}

export interface RetrievalMetrics {
  precisionAt1: number;
  rPrecision: number;
  mapAtR: number;
  knnAccuracy: number;
  /** the k used for kNN accuracy (after capping at n - 1) */
  k: number;
  /** items that counted for P@1, R-precision and MAP@R (those with R >= 1) */
  queries: number;
  /** number of items */
  n: number;
}

export const DEFAULT_KNN_K = 10;

/**
 * R-precision and average precision at R of one ranked list: rel[i] = 1 when the (i+1)-th
 * result is relevant, R = number of relevant items in the whole collection (>= 1); only the
 * first R results count. MAP@R is the mean of `averagePrecision` over queries.
 */
export function scoresAtR(rel: ArrayLike<number>, R: number): { rPrecision: number; averagePrecision: number } {
  let hits = 0;
  let ap = 0;
  for (let i = 0; i < R; i++) {
    if (rel[i]) {
      hits++;
      ap += hits / (i + 1); // P(i+1), counted where rel(i+1) = 1
    }
  }
  return { rPrecision: hits / R, averagePrecision: ap / R };
}

/**
 * P@1, R-precision and average precision at R of one query whose neighbours may tie, each the
 * expected value over every order of the neighbours at equal distance. `d` and `rel` are the
 * query's first R (or more) neighbours by distance (ascending) and whether each is relevant;
 * `lastGroup` is the whole group of neighbours at distance d[R − 1], which may reach past rank R:
 * its size and how many of it are relevant.
 *
 * Within a group of g neighbours, r of them relevant, at ranks a + 1 .. a + g after h relevant
 * ones, a random order gives E[rel(a + j)] = r/g and E[rel(a + j)·Σ_{k<j} rel(a + k)] =
 * (j − 1)·(r/g)·(r − 1)/(g − 1), so E[P(a + j)·rel(a + j)] = (r/g)·(h + 1 + (j − 1)(r − 1)/(g − 1))/(a + j).
 * Without ties this is scoresAtR.
 */
export function expectedScoresAtR(
  d: ArrayLike<number>,
  rel: ArrayLike<number>,
  R: number,
  lastGroup: { size: number; relevant: number },
): { precisionAt1: number; rPrecision: number; averagePrecision: number } {
  let hits = 0; // relevant neighbours in the groups before this one (whole groups: a whole number)
  let ap = 0;
  let p1 = 0;
  for (let a = 0; a < R; ) {
    let b = a;
    while (b + 1 < R && d[b + 1] === d[a]) b++;
    const inTop = b - a + 1; // this group's ranks within the first R
    let g = inTop;
    let r = 0;
    for (let i = a; i <= b; i++) r += rel[i]!;
    if (b === R - 1) {
      g = lastGroup.size;
      r = lastGroup.relevant;
    }
    const f = r / g;
    const f2 = g > 1 ? (r - 1) / (g - 1) : 0;
    for (let j = 1; j <= inTop; j++) ap += (f * (hits + 1 + (j - 1) * f2)) / (a + j);
    if (a === 0) p1 = f;
    hits += inTop * f;
    a = b + 1;
  }
  return { precisionAt1: p1, rPrecision: hits / R, averagePrecision: ap / R };
}

/**
 * P@1, R-precision, MAP@R and kNN accuracy of `emb` ([n, dim] row-major) under `labels`, every
 * item a query against the rest (see above). MNIST's test set (10,000 x 128, R up to 1,134)
 * takes about 5 CPU-seconds, a third of it in the distance kernel.
 */
export function retrievalMetrics(
  emb: Float32Array,
  dim: number,
  labels: ArrayLike<number>,
  opts: RetrievalOptions = {},
): RetrievalMetrics {
  if (!Number.isInteger(dim) || dim < 1) throw new UsageError(`retrieval: dim must be a positive integer, got ${dim}`);
  const n = labels.length;
  if (emb.length !== n * dim) {
    throw new DataError(`retrieval: ${emb.length} embedding values do not match ${n} labels of dimension ${dim}`);
  }
  const knnK = opts.knnK ?? DEFAULT_KNN_K;
  if (!Number.isInteger(knnK) || knnK < 1) throw new UsageError(`retrieval: knnK must be a positive integer, got ${knnK}`);
  if (n < 2) throw new DataError(`retrieval: need at least 2 items, got ${n}`);

  // Compact class ids and class sizes.
  const ids = new Int32Array(n);
  const idOf = new Map<number, number>();
  const sizes: number[] = [];
  for (let i = 0; i < n; i++) {
    const c = labels[i]!;
    let id = idOf.get(c);
    if (id === undefined) {
      id = sizes.length;
      idOf.set(c, id);
      sizes.push(0);
    }
    ids[i] = id;
    sizes[id]!++;
  }
  for (let i = 0; i < emb.length; i++) {
    if (!Number.isFinite(emb[i]!)) throw new DataError(`retrieval: embedding value ${i} is ${emb[i]}, not a finite number`);
  }
  let maxR = 0;
  for (const s of sizes) maxR = Math.max(maxR, s - 1);
  const kVote = Math.min(knnK, n - 1);
  const maxL = Math.max(maxR, kVote);

  let p1 = 0;
  let rp = 0;
  let map = 0;
  let queries = 0;
  let knnCorrect = 0;
  const votes = new Int32Array(sizes.length);
  const rel = new Uint8Array(maxL);
  const scratch = new Float64Array(n - 1);
  const nearD = new Float64Array(maxL);
  const nearI = new Int32Array(maxL);
  forEachDistanceRows(emb, dim, (start, end, rows) => {
    for (let q = start; q < end; q++) {
      const c = ids[q]!;
      const R = sizes[c]! - 1;
      const L = Math.max(R, kVote);
      const row = rows.subarray((q - start) * n, (q - start + 1) * n);
      nearest(row, q, L, scratch, nearD, nearI);
      if (R >= 1) {
        queries++;
        for (let i = 0; i < R; i++) rel[i] = ids[nearI[i]!] === c ? 1 : 0;
        // the whole group at the R-th distance (it may reach past rank R)
        const dR = nearD[R - 1]!;
        let size = 0;
        let relevant = 0;
        for (let j = 0; j < n; j++) {
          if (j !== q && row[j] === dR) {
            size++;
            if (ids[j] === c) relevant++;
          }
        }
        const scores = expectedScoresAtR(nearD, rel, R, { size, relevant });
        p1 += scores.precisionAt1;
        rp += scores.rPrecision;
        map += scores.averagePrecision;
      }
      // Majority vote among the kVote nearest; ties to the label met first (nearest).
      let top = 0;
      for (let i = 0; i < kVote; i++) {
        const v = ++votes[ids[nearI[i]!]!]!;
        if (v > top) top = v;
      }
      let predicted = -1;
      for (let i = 0; i < kVote && predicted < 0; i++) {
        const l = ids[nearI[i]!]!;
        if (votes[l] === top) predicted = l;
      }
      for (let i = 0; i < kVote; i++) votes[ids[nearI[i]!]!] = 0;
      if (predicted === c) knnCorrect++;
    }
  });
  return {
    precisionAt1: queries ? p1 / queries : NaN,
    rPrecision: queries ? rp / queries : NaN,
    mapAtR: queries ? map / queries : NaN,
    knnAccuracy: knnCorrect / n,
    k: kVote,
    queries,
    n,
  };
}

/**
 * The L nearest of `row` (squared distances from query q to every item), q excluded, into
 * outD/outI [0, L), ordered by (distance, index). `scratch` holds n − 1 values.
 */
function nearest(row: Float64Array, q: number, L: number, scratch: Float64Array, outD: Float64Array, outI: Int32Array): void {
  const n = row.length;
  let m = 0;
  for (let j = 0; j < n; j++) if (j !== q) scratch[m++] = row[j]!;
  const thr = selectKth(scratch, m, L - 1);
  // everything strictly nearer than the L-th distance, then ties at it by index
  let c = 0;
  for (let j = 0; j < n; j++) {
    if (j !== q && row[j]! < thr) {
      outD[c] = row[j]!;
      outI[c++] = j;
    }
  }
  for (let j = 0; j < n && c < L; j++) {
    if (j !== q && row[j] === thr) {
      outD[c] = thr;
      outI[c++] = j;
    }
  }
  sortByDistanceThenIndex(outD, outI, 0, L - 1);
}

/** The k-th smallest (0-based) of a[0, len), by quickselect with a three-way partition (reorders a). */
function selectKth(a: Float64Array, len: number, k: number): number {
  let lo = 0;
  let hi = len - 1;
  for (;;) {
    if (lo >= hi) return a[k]!;
    const x = a[lo]!;
    const y = a[(lo + hi) >>> 1]!;
    const z = a[hi]!;
    const pivot = x < y ? (y < z ? y : x < z ? z : x) : x < z ? x : y < z ? z : y;
    let lt = lo;
    let i = lo;
    let gt = hi;
    while (i <= gt) {
      const v = a[i]!;
      if (v < pivot) {
        a[i++] = a[lt]!;
        a[lt++] = v;
      } else if (v > pivot) {
        a[i] = a[gt]!;
        a[gt--] = v;
      } else {
        i++;
      }
    }
    if (k < lt) hi = lt - 1;
    else if (k > gt) lo = gt + 1;
    else return pivot;
  }
}

/** (d[a], idx[a]) < (d[b], idx[b]) */
function before(d: Float64Array, idx: Int32Array, a: number, b: number): boolean {
  return d[a]! < d[b]! || (d[a] === d[b] && idx[a]! < idx[b]!);
}

function swap(d: Float64Array, idx: Int32Array, a: number, b: number): void {
  const t = d[a]!;
  d[a] = d[b]!;
  d[b] = t;
  const u = idx[a]!;
  idx[a] = idx[b]!;
  idx[b] = u;
}

/**
 * In-place sort of d[lo..hi] with idx alongside, by (d, idx): quicksort (median of three),
 * insertion sort below 16 elements. The (d, idx) keys are all distinct (idx is).
 */
function sortByDistanceThenIndex(d: Float64Array, idx: Int32Array, lo: number, hi: number): void {
  while (hi - lo >= 16) {
    const mid = (lo + hi) >>> 1;
    // order lo, mid, hi (they then bound the scans); the pivot is parked at hi - 1
    if (before(d, idx, mid, lo)) swap(d, idx, mid, lo);
    if (before(d, idx, hi, lo)) swap(d, idx, hi, lo);
    if (before(d, idx, hi, mid)) swap(d, idx, hi, mid);
    const p = hi - 1;
    swap(d, idx, mid, p);
    let i = lo;
    let j = p;
    for (;;) {
      while (before(d, idx, ++i, p));
      while (before(d, idx, p, --j));
      if (i >= j) break;
      swap(d, idx, i, j);
    }
    swap(d, idx, i, p);
    // recurse into the smaller side, loop on the larger
    if (i - lo < hi - i) {
      sortByDistanceThenIndex(d, idx, lo, i - 1);
      lo = i + 1;
    } else {
      sortByDistanceThenIndex(d, idx, i + 1, hi);
      hi = i - 1;
    }
  }
  for (let a = lo + 1; a <= hi; a++) {
    const kd = d[a]!;
    const ki = idx[a]!;
    let b = a - 1;
    while (b >= lo && (d[b]! > kd || (d[b] === kd && idx[b]! > ki))) {
      d[b + 1] = d[b]!;
      idx[b + 1] = idx[b]!;
      b--;
    }
    d[b + 1] = kd;
    idx[b + 1] = ki;
  }
}
