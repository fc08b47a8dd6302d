/**
 * Barnes-Hut t-SNE (van der Maaten 2014), with the defaults and schedule of scikit-learn's
 * `TSNE(method='barnes_hut')`, so that results and quality compare directly:
 *
 * - input affinities from the exact k nearest neighbours, k = min(n - 1, floor(3 * perplexity)),
 *   a binary search per point on the Gaussian precision to hit the perplexity, then
 *   P = (P + P^T) / sum;
 * - repulsion from a 2-D quadtree (flat typed arrays) with the Barnes-Hut criterion
 *   cell width / distance < theta, applied per group of nearby points with the distance to the
 *   group's bounding box, so every point gets at least the per-point accuracy (see repulsion);
 * - early exaggeration (12, for 250 iterations) with momentum 0.5, then momentum 0.8;
 *   per-coordinate gains (delta-bar-delta: +0.2 / x0.8, at least 0.01); update and gains
 *   restart when the exaggeration ends, as in scikit-learn;
 * - learning rate 'auto' = max(n / earlyExaggeration / 4, 50), scikit-learn's rule (1.2+):
 *   small data keep the classic 50..200 range, large data get the larger steps they need;
 * - 1000 iterations in all; no early stop on stalled progress (scikit-learn checks that every
 *   50 iterations, and rarely triggers it with these settings);
 * - PCA initialisation (top two principal components, scaled so that the first coordinate has
 *   standard deviation 1e-4), or N(0, 1e-4^2) from the seeded Rng.
 *
 * Everything is float64 and seeded: the same input, options and seed give the same layout.
 * Three ways to run it, in the style of umap-js: `runTsne(...)` all at once (the callback may
 * stop it), or `new Tsne(opts)`, `initialize(...)`, then `step()` until done.
 */
import { DataError, UsageError } from '../errors.ts';
import { knn } from '../eval/knn.ts';
import { Rng } from '../rng.ts';

export interface TsneOptions {
  /** effective number of neighbours; > 0 and < rows. Default 30 */
  perplexity?: number;
  /** Barnes-Hut accuracy, 0 = exact repulsion (O(n^2)). Default 0.5 */
  theta?: number;
  /** total iterations, exaggeration phase included. Default 1000 */
  iterations?: number;
  /** factor on P during the first phase. Default 12 */
  earlyExaggeration?: number;
  /** length of the first phase. Default 250 */
  exaggerationIterations?: number;
  /** step size, or 'auto' = max(rows / earlyExaggeration / 4, 50). Default 'auto' */
  learningRate?: number | 'auto';
  /**
   * starting layout: 'pca', 'random', or a layout [rows, 2] to start from (a warm start: the
   * layout of similar data, e.g. the previous epoch's, so that successive layouts stay
   * comparable; pair it with exaggerationIterations 0 and fewer iterations). Default 'pca'
   */
  init?: 'pca' | 'random' | Float32Array | Float64Array;
  /** seeds the random initialisation and the PCA start vectors. Default 0 */
  seed?: number;
  /** output dimensions; only 2 is supported (the tree is a quadtree) */
  dims?: 2;
}

interface ResolvedOptions {
  perplexity: number;
  theta: number;
  iterations: number;
  earlyExaggeration: number;
  exaggerationIterations: number;
  learningRate: number | 'auto';
  init: 'pca' | 'random' | Float32Array | Float64Array;
  seed: number;
}

/** the perplexity when none is given (scikit-learn's and bhtsne's) */
export const DEFAULT_PERPLEXITY = 30;

const DEFAULTS: ResolvedOptions = {
  perplexity: DEFAULT_PERPLEXITY,
  theta: 0.5,
  iterations: 1000,
  earlyExaggeration: 12,
  exaggerationIterations: 250,
  learningRate: 'auto',
  init: 'pca',
  seed: 0,
};

const MOMENTUM_EARLY = 0.5;
const MOMENTUM_LATE = 0.8;
const MIN_GAIN = 0.01;

/**
 * The symmetric, normalised P, stored once per pair: CSR rows of the upper triangle
 * (row i holds the j > i with p_ij > 0, in increasing order). The full matrix sums to 1.
 */
interface SparseP {
  rowPtr: Int32Array;
  col: Int32Array;
  val: Float64Array;
}

export class Tsne {
  private readonly opts: ResolvedOptions;
  private n = 0;
  private P: SparseP | undefined;
  private Y: Float64Array = new Float64Array(0);
  private update: Float64Array = new Float64Array(0);
  private gains: Float64Array = new Float64Array(0);
  private grad: Float64Array = new Float64Array(0);
  private lr = 0;
  private iter = 0;
  private tree = new QuadTree();
  private lastZ = NaN;

  constructor(opts: TsneOptions = {}) {
    this.opts = resolveOptions(opts);
  }

  /** Computes the input affinities and the starting layout. `data` is [rows, cols] row-major. */
  initialize(data: Float32Array, rows: number, cols: number): void {
    if (!Number.isInteger(rows) || !Number.isInteger(cols) || rows < 1 || cols < 1) {
      throw new UsageError(`t-SNE: rows and cols must be positive integers, got ${rows} x ${cols}`);
    }
    if (data.length !== rows * cols) {
      throw new UsageError(`t-SNE: data has ${data.length} values, expected ${rows} x ${cols} = ${rows * cols}`);
    }
    const { perplexity } = this.opts;
    if (rows < 2 || perplexity >= rows) {
      throw new UsageError(`t-SNE: perplexity must be below the number of rows (${rows}), got ${perplexity}; use a smaller perplexity or more points`);
    }
    for (let i = 0; i < data.length; i++) {
      if (!Number.isFinite(data[i]!)) {
        throw new DataError(`t-SNE: the input has a non-finite value at row ${Math.floor(i / cols)}, column ${i % cols}`);
      }
    }
    data = inRange(data);
    const o = this.opts;
    this.n = rows;
    this.P = inputAffinities(data, rows, cols, perplexity);
    if (!this.P.val.every(Number.isFinite)) {
      throw new DataError('t-SNE: the input affinities are not finite (distances between rows overflow); rescale the input');
    }
    if (typeof o.init !== 'string') {
      if (o.init.length !== 2 * rows) throw new UsageError(`t-SNE: the starting layout has ${o.init.length} values, expected ${rows} x 2 = ${2 * rows}`);
      if (!o.init.every(Number.isFinite)) throw new UsageError('t-SNE: the starting layout has a non-finite value');
      this.Y = Float64Array.from(o.init);
    } else {
      this.Y = o.init === 'pca' ? pcaInit(data, rows, cols, new Rng(o.seed)) : randomInit(rows, new Rng(o.seed));
      if (!this.Y.every(Number.isFinite)) throw new DataError('t-SNE: the PCA start is not finite; rescale the input or use random init');
    }
    this.update = new Float64Array(2 * rows);
    this.gains = new Float64Array(2 * rows).fill(1);
    this.grad = new Float64Array(2 * rows);
    this.lr = o.learningRate === 'auto' ? Math.max(rows / o.earlyExaggeration / 4, 50) : o.learningRate;
    this.iter = 0;
  }

  /** Total number of iterations this run will do. */
  get iterations(): number {
    return this.opts.iterations;
  }

  /** One gradient-descent iteration; returns the number of iterations done (a no-op once finished). */
  step(): number {
    const P = this.P;
    if (!P) throw new UsageError('t-SNE: call initialize(data, rows, cols) before step()');
    const o = this.opts;
    if (this.iter >= o.iterations) return this.iter;
    const early = this.iter < o.exaggerationIterations;
    if (this.iter === o.exaggerationIterations && this.iter > 0) {
      // scikit-learn runs the two phases as separate descents: velocity and gains restart.
      this.update.fill(0);
      this.gains.fill(1);
    }
    const exaggeration = early ? o.earlyExaggeration : 1;
    const momentum = early ? MOMENTUM_EARLY : MOMENTUM_LATE;
    this.lastZ = gradient(this.Y, this.n, P, exaggeration, o.theta, this.tree, this.grad);
    const { Y, update, gains, grad, lr } = this;
    for (let c = 0; c < Y.length; c++) {
      const g = grad[c]!;
      let gain = gains[c]!;
      // delta-bar-delta: grow the step where the gradient keeps the direction we are moving in
      gain = update[c]! * g < 0 ? gain + 0.2 : gain * 0.8;
      if (gain < MIN_GAIN) gain = MIN_GAIN;
      gains[c] = gain;
      const u = momentum * update[c]! - lr * gain * g;
      update[c] = u;
      Y[c]! += u;
    }
    // The layout is the output: never hand back (or write) NaN coordinates as a success.
    for (let c = 0; c < Y.length; c++) {
      if (!Number.isFinite(Y[c]!)) {
        throw new DataError(`t-SNE: the layout became non-finite at iteration ${this.iter + 1} (point ${c >> 1}); try a smaller learning rate or rescale the input`);
      }
    }
    return ++this.iter;
  }

  /** The current layout, [rows, 2] row-major (a copy). */
  getEmbedding(): Float32Array {
    const out = Float32Array.from(this.Y);
    if (!out.every(Number.isFinite)) throw new DataError('t-SNE: the layout does not fit in float32; rescale the input');
    return out;
  }

  /**
   * KL(P || Q) of the current layout against the true (not exaggerated) P, with the
   * normalisation Z from the last gradient's Barnes-Hut estimate: approximate, like
   * scikit-learn's reported value. NaN before the first step.
   */
  klDivergence(): number {
    const P = this.P;
    if (!P || !Number.isFinite(this.lastZ)) return NaN;
    const { rowPtr, col, val } = P;
    const Y = this.Y;
    let kl = 0;
    for (let i = 0; i < this.n; i++) {
      const xi = Y[2 * i]!, yi = Y[2 * i + 1]!;
      for (let e = rowPtr[i]!; e < rowPtr[i + 1]!; e++) {
        const j = col[e]!;
        const p = val[e]!;
        if (p <= 0) continue;
        const dx = xi - Y[2 * j]!, dy = yi - Y[2 * j + 1]!;
        const q = 1 / (1 + dx * dx + dy * dy) / this.lastZ;
        kl += p * Math.log(p / Math.max(q, 1e-300));
      }
    }
    return 2 * kl; // each pair is stored once and counts twice
  }
}

/** Runs t-SNE to the end, or until `onStep` returns false; returns the [rows, 2] layout. */
export function runTsne(
  data: Float32Array, rows: number, cols: number, opts: TsneOptions = {},
  onStep?: (iteration: number, total: number) => boolean | void,
): Float32Array {
  const tsne = new Tsne(opts);
  tsne.initialize(data, rows, cols);
  const total = tsne.iterations;
  for (let it = 0; it < total; ) {
    it = tsne.step();
    if (onStep && onStep(it, total) === false) break;
  }
  return tsne.getEmbedding();
}

/**
 * The input, scaled by a power of two (exact in floating point) when its largest magnitude is
 * beyond 2^+-40: squared distances are kept as float32, which overflows near 1.8e19^2 and loses
 * everything below 1e-19^2. t-SNE does not depend on the input's scale (each point's Gaussian
 * width is calibrated to the perplexity), so this changes nothing but the range.
 */
function inRange(data: Float32Array): Float32Array {
  let max = 0;
  for (let i = 0; i < data.length; i++) {
    const a = Math.abs(data[i]!);
    if (a > max) max = a;
  }
  if (max === 0 || (max <= 2 ** 40 && max >= 2 ** -40)) return data;
  const scale = 2 ** -Math.floor(Math.log2(max));
  return data.map((x) => x * scale);
}

function resolveOptions(opts: TsneOptions): ResolvedOptions {
  const o: ResolvedOptions = { ...DEFAULTS };
  for (const [key, value] of Object.entries(opts)) {
    if (value !== undefined) (o as unknown as Record<string, unknown>)[key] = value;
  }
  const bad = (what: string, got: unknown): never => {
    throw new UsageError(`t-SNE: ${what}, got ${String(got)}`);
  };
  if (opts.dims !== undefined && opts.dims !== 2) bad('dims must be 2 (the repulsion uses a quadtree)', opts.dims);
  if (typeof o.perplexity !== 'number' || !(o.perplexity > 0) || !Number.isFinite(o.perplexity)) bad('perplexity must be a positive number', o.perplexity);
  if (typeof o.theta !== 'number' || !(o.theta >= 0) || !Number.isFinite(o.theta)) bad('theta must be a number >= 0 (0 = exact)', o.theta);
  if (!Number.isInteger(o.iterations) || o.iterations < 1) bad('iterations must be a positive integer', o.iterations);
  if (typeof o.earlyExaggeration !== 'number' || !(o.earlyExaggeration > 0) || !Number.isFinite(o.earlyExaggeration)) bad('earlyExaggeration must be a positive number', o.earlyExaggeration);
  if (!Number.isInteger(o.exaggerationIterations) || o.exaggerationIterations < 0) bad('exaggerationIterations must be an integer >= 0', o.exaggerationIterations);
  if (o.learningRate !== 'auto' && (typeof o.learningRate !== 'number' || !(o.learningRate > 0) || !Number.isFinite(o.learningRate))) bad("learningRate must be a positive number or 'auto'", o.learningRate);
  if (o.init !== 'pca' && o.init !== 'random' && !(o.init instanceof Float32Array || o.init instanceof Float64Array)) {
    bad("init must be 'pca', 'random' or a Float32Array/Float64Array layout", o.init);
  }
  if (!Number.isInteger(o.seed)) bad('seed must be an integer', o.seed);
  return o;
}

// ---------------------------------------------------------------------------------------------
// Input affinities

/**
 * The largest perplexity that fits n points: the affinities take floor(3 x perplexity)
 * neighbours per point, and a point has n − 1.
 */
export function maxPerplexity(n: number): number {
  return (n - 1) / 3;
}

/**
 * Conditional p_{j|i} over the k nearest neighbours with the Gaussian precision beta_i found by
 * bisection so that the entropy is log(perplexity) (natural log, squared distances, as in
 * scikit-learn); then symmetrised and normalised to sum 1.
 */
function inputAffinities(data: Float32Array, n: number, cols: number, perplexity: number): SparseP {
  const k = Math.min(n - 1, Math.floor(3 * perplexity));
  // Fewer rows than columns: row against row directly, in O(rows^2) memory; the blocked kNN
  // would pack the whole matrix again as float64 (a 3 x 4,000,000 input: 128 MB more).
  const { indices, sqDistances } = cols > n ? wideNeighbours(data, n, cols, k) : knn(data, cols, k);
  const cond = new Float64Array(n * k);
  const target = Math.log(perplexity);
  for (let i = 0; i < n; i++) {
    const o = i * k;
    // Distances relative to the nearest: the normalised P is unchanged and exp never underflows.
    const d0 = sqDistances[o]!;
    let beta = 1, lo = -Infinity, hi = Infinity;
    for (let iter = 0; iter < 100; iter++) {
      let sum = 0, sumDP = 0;
      for (let j = 0; j < k; j++) {
        const d = sqDistances[o + j]! - d0;
        const p = Math.exp(-d * beta);
        cond[o + j] = p;
        sum += p;
        sumDP += d * p;
      }
      const entropy = Math.log(sum) + (beta * sumDP) / sum;
      const diff = entropy - target;
      if (Math.abs(diff) <= 1e-5) break;
      if (diff > 0) {
        lo = beta;
        beta = hi === Infinity ? beta * 2 : (beta + hi) / 2;
      } else {
        hi = beta;
        beta = lo === -Infinity ? beta / 2 : (beta + lo) / 2;
      }
    }
    let sum = 0;
    for (let j = 0; j < k; j++) sum += cond[o + j]!;
    for (let j = 0; j < k; j++) cond[o + j]! /= sum;
  }
  return symmetrise(indices, cond, n, k);
}

/**
 * The k nearest rows of each row (squared Euclidean, ties to the smaller index, as knn gives),
 * by direct differences: for short, wide matrices, where the n^2 * cols work is small and
 * the extra memory is n doubles.
 */
function wideNeighbours(data: Float32Array, n: number, cols: number, k: number): { indices: Int32Array; sqDistances: Float32Array } {
  const indices = new Int32Array(n * k);
  const sqDistances = new Float32Array(n * k);
  const dist = new Float64Array(n);
  const order = new Int32Array(n - 1);
  for (let i = 0; i < n; i++) {
    const oi = i * cols;
    for (let j = 0; j < n; j++) {
      if (j === i) continue;
      let s = 0;
      for (let c = 0, oj = j * cols; c < cols; c++) {
        const t = data[oi + c]! - data[oj + c]!;
        s += t * t;
      }
      dist[j] = s;
    }
    for (let j = 0, m = 0; j < n; j++) if (j !== i) order[m++] = j;
    order.sort((a, b) => dist[a]! - dist[b]! || a - b);
    for (let e = 0; e < k; e++) {
      indices[i * k + e] = order[e]!;
      sqDistances[i * k + e] = dist[order[e]!]!;
    }
  }
  return { indices, sqDistances };
}

/** P + P^T, divided by its total, as the upper triangle in CSR form. */
function symmetrise(indices: Int32Array, cond: Float64Array, n: number, k: number): SparseP {
  // Bucket each pair under its smaller index.
  const count = new Int32Array(n + 1);
  for (let i = 0; i < n; i++) {
    for (let e = i * k; e < i * k + k; e++) count[Math.min(i, indices[e]!) + 1]!++;
  }
  for (let i = 0; i < n; i++) count[i + 1]! += count[i]!;
  const fill = count.slice(0, n);
  const bCol = new Int32Array(n * k);
  const bVal = new Float64Array(n * k);
  for (let i = 0; i < n; i++) {
    for (let e = i * k; e < i * k + k; e++) {
      const j = indices[e]!;
      const a = Math.min(i, j);
      bCol[fill[a]!] = Math.max(i, j);
      bVal[fill[a]!++] = cond[e]!;
    }
  }
  // Merge each bucket (a pair seen from both ends adds up) with a dense accumulator.
  const acc = new Float64Array(n);
  const seen = new Int32Array(n).fill(-1);
  const rowPtr = new Int32Array(n + 1);
  const col = new Int32Array(n * k);
  const val = new Float64Array(n * k);
  let out = 0;
  let total = 0;
  for (let a = 0; a < n; a++) {
    rowPtr[a] = out;
    const begin = out;
    for (let e = count[a]!; e < count[a + 1]!; e++) {
      const b = bCol[e]!;
      if (seen[b] !== a) {
        seen[b] = a;
        col[out++] = b;
      }
      acc[b]! += bVal[e]!;
    }
    col.subarray(begin, out).sort();
    for (let e = begin; e < out; e++) {
      const b = col[e]!;
      val[e] = acc[b]!;
      total += 2 * acc[b]!;
      acc[b] = 0;
    }
  }
  rowPtr[n] = out;
  for (let e = 0; e < out; e++) val[e]! /= total;
  return { rowPtr, col: col.slice(0, out), val: val.slice(0, out) };
}

// ---------------------------------------------------------------------------------------------
// Initial layouts

function randomInit(n: number, rng: Rng): Float64Array {
  const Y = new Float64Array(2 * n);
  for (let i = 0; i < Y.length; i++) Y[i] = 1e-4 * rng.normal();
  return Y;
}

/**
 * Projection on the top two principal components, scaled so that the first coordinate has
 * standard deviation 1e-4, as scikit-learn does. The components come from subspace iteration
 * (two vectors, Gram-Schmidt, then a 2x2 Rayleigh-Ritz step to order them) on the smaller of
 * the two matrices the centred data X define, so memory and time scale with min(rows, cols):
 * - cols <= rows: the covariance X^T X (cols x cols); the loadings are its eigenvectors;
 * - cols > rows: the Gram matrix X X^T (rows x rows), whose eigenvectors a_k are the scores up to
 *   scale (X v_k = sqrt(lambda_k) a_k with v_k = X^T a_k / sqrt(lambda_k)); a 3 x 4,000,000
 *   matrix needs a 3 x 3 matrix, not 4,000,000 x 4,000,000.
 * Each component's sign makes its largest loading positive, so the result is deterministic and
 * the same whichever matrix found it.
 */
function pcaInit(data: Float32Array, n: number, d: number, rng: Rng): Float64Array {
  const mean = new Float64Array(d);
  for (let i = 0; i < n; i++) for (let c = 0; c < d; c++) mean[c]! += data[i * d + c]!;
  for (let c = 0; c < d; c++) mean[c]! /= n;
  const Y = new Float64Array(2 * n);
  if (d <= n) {
    // Covariance (unnormalised: the scale does not change the eigenvectors), upper triangle.
    const C = new Float64Array(d * d);
    const row = new Float64Array(d);
    for (let i = 0; i < n; i++) {
      for (let c = 0; c < d; c++) row[c] = data[i * d + c]! - mean[c]!;
      for (let a = 0; a < d; a++) {
        const ra = row[a]!;
        if (ra === 0) continue;
        const o = a * d;
        for (let b = a; b < d; b++) C[o + b]! += ra * row[b]!;
      }
    }
    for (let a = 0; a < d; a++) for (let b = 0; b < a; b++) C[a * d + b] = C[b * d + a]!;
    const [pc1, pc2] = topTwo(C, d, rng);
    for (const pc of [pc1, pc2]) fixSign(pc, pc);
    for (let i = 0; i < n; i++) {
      let y1 = 0, y2 = 0;
      for (let t = 0; t < d; t++) {
        const x = data[i * d + t]! - mean[t]!;
        y1 += x * pc1[t]!;
        y2 += x * pc2[t]!;
      }
      Y[2 * i] = y1;
      Y[2 * i + 1] = y2;
    }
  } else {
    // Gram matrix of the centred rows, upper triangle, one row of X at a time against the rest.
    const G = new Float64Array(n * n);
    for (let i = 0; i < n; i++) {
      for (let j = i; j < n; j++) {
        let s = 0;
        for (let c = 0, oi = i * d, oj = j * d; c < d; c++) s += (data[oi + c]! - mean[c]!) * (data[oj + c]! - mean[c]!);
        G[i * n + j] = s;
      }
    }
    for (let a = 0; a < n; a++) for (let b = 0; b < a; b++) G[a * n + b] = G[b * n + a]!;
    const [a1, a2] = topTwo(G, n, rng);
    const loadings = new Float64Array(d);
    for (const [k, a] of [[0, a1], [1, a2]] as const) {
      // scores X v = G a / |X^T a|; the loadings X^T a only decide the sign
      loadings.fill(0);
      for (let i = 0; i < n; i++) {
        const w = a[i]!;
        if (w === 0) continue;
        for (let c = 0, o = i * d; c < d; c++) loadings[c]! += w * (data[o + c]! - mean[c]!);
      }
      const norm = Math.sqrt(dot(loadings, loadings));
      const Ga = matVec(G, a, n);
      const flip = fixSign(loadings, a) ? -1 : 1;
      for (let i = 0; i < n; i++) Y[2 * i + k] = norm > 0 ? (flip * Ga[i]!) / norm : 0;
    }
  }
  let s1 = 0, s2 = 0;
  for (let i = 0; i < n; i++) {
    const y1 = Y[2 * i]!;
    s1 += y1;
    s2 += y1 * y1;
  }
  const variance = s2 / n - (s1 / n) ** 2;
  if (!(variance > 0)) return randomInit(n, rng); // constant data: nothing to project
  const scale = 1e-4 / Math.sqrt(variance);
  for (let i = 0; i < Y.length; i++) Y[i]! *= scale;
  return Y;
}

/**
 * The two leading eigenvectors of the symmetric m x m matrix A (row-major), ordered by
 * eigenvalue: subspace iteration from two seeded random vectors until the plane stops moving,
 * then Rayleigh-Ritz on the plane.
 */
function topTwo(A: Float64Array, m: number, rng: Rng): [Float64Array, Float64Array] {
  let u: Float64Array = Float64Array.from({ length: m }, () => rng.normal());
  let v: Float64Array = Float64Array.from({ length: m }, () => rng.normal());
  orthonormalise(u, v);
  for (let iter = 0; iter < 1000; iter++) {
    const u2 = matVec(A, u, m);
    const v2 = matVec(A, v, m);
    orthonormalise(u2, v2);
    // Converged when the new vectors span the old plane (projection residual below 1e-10).
    const change = residual(u2, u, v) + residual(v2, u, v);
    u = u2;
    v = v2;
    if (change < 1e-20) break;
  }
  // Rayleigh-Ritz on the plane: the 2x2 projected matrix, diagonalised by a rotation.
  const Au = matVec(A, u, m), Av = matVec(A, v, m);
  const a = dot(u, Au), b = dot(u, Av), c = dot(v, Av);
  const angle = 0.5 * Math.atan2(2 * b, a - c);
  const cs = Math.cos(angle), sn = Math.sin(angle);
  const e1 = new Float64Array(m), e2 = new Float64Array(m);
  for (let t = 0; t < m; t++) {
    e1[t] = cs * u[t]! + sn * v[t]!;
    e2[t] = -sn * u[t]! + cs * v[t]!;
  }
  return [e1, e2];
}

/**
 * The sign rule: the loading of largest magnitude (the first, on ties) must be positive. When
 * it is not, `target` is negated in place. Returns whether it was.
 */
function fixSign(loadings: Float64Array, target: Float64Array): boolean {
  let big = 0;
  for (let t = 0; t < loadings.length; t++) if (Math.abs(loadings[t]!) > Math.abs(big)) big = loadings[t]!;
  if (!(big < 0)) return false;
  for (let t = 0; t < target.length; t++) target[t] = -target[t]!;
  return true;
}

function matVec(C: Float64Array, x: Float64Array, d: number): Float64Array {
  const y = new Float64Array(d);
  for (let a = 0; a < d; a++) {
    let s = 0;
    for (let b = 0, o = a * d; b < d; b++) s += C[o + b]! * x[b]!;
    y[a] = s;
  }
  return y;
}

function dot(x: Float64Array, y: Float64Array): number {
  let s = 0;
  for (let i = 0; i < x.length; i++) s += x[i]! * y[i]!;
  return s;
}

/** Gram-Schmidt on two vectors (in place); a vector that vanishes is left at zero. */
function orthonormalise(u: Float64Array, v: Float64Array): void {
  const nu = Math.sqrt(dot(u, u));
  if (nu > 0) for (let i = 0; i < u.length; i++) u[i]! /= nu;
  const p = dot(u, v);
  for (let i = 0; i < v.length; i++) v[i]! -= p * u[i]!;
  const nv = Math.sqrt(dot(v, v));
  if (nv > 0) for (let i = 0; i < v.length; i++) v[i]! /= nv;
}

/** Squared norm of the part of unit vector x outside span(u, v) (u, v orthonormal). */
function residual(x: Float64Array, u: Float64Array, v: Float64Array): number {
  const a = dot(x, u), b = dot(x, v);
  return Math.max(0, 1 - a * a - b * b);
}

// ---------------------------------------------------------------------------------------------
// Gradient

/**
 * dC/dy_i = 4 (exaggeration * sum_j p_ij q_ij (y_i - y_j) - sum_j q_ij^2 (y_i - y_j) / Z),
 * with q_ij = 1 / (1 + |y_i - y_j|^2) unnormalised and Z = sum_{i != j} q_ij. The attraction
 * runs over the sparse P; the repulsion and Z come from the quadtree. Returns Z.
 */
function gradient(
  Y: Float64Array, n: number, P: SparseP, exaggeration: number, theta: number, tree: QuadTree,
  grad: Float64Array,
): number {
  tree.build(Y, n);
  const Z = tree.repulsion(Y, n, theta, grad); // grad <- sum_j q_ij^2 (y_i - y_j)
  // grad <- 4 (exaggeration * attraction - grad / Z); each stored pair acts on both ends.
  const { rowPtr, col, val } = P;
  const rep = -4 / Z;
  const att = 4 * exaggeration;
  for (let c = 0; c < 2 * n; c++) grad[c]! *= rep;
  for (let i = 0; i < n; i++) {
    const xi = Y[2 * i]!, yi = Y[2 * i + 1]!;
    let fx = 0, fy = 0;
    for (let e = rowPtr[i]!, end = rowPtr[i + 1]!; e < end; e++) {
      const j = col[e]!;
      const dx = xi - Y[2 * j]!, dy = yi - Y[2 * j + 1]!;
      const m = (att * val[e]!) / (1 + dx * dx + dy * dy);
      fx += m * dx;
      fy += m * dy;
      grad[2 * j]! -= m * dx;
      grad[2 * j + 1]! -= m * dy;
    }
    grad[2 * i]! += fx;
    grad[2 * i + 1]! += fy;
  }
  return Z;
}

/** Points per group: one interaction list serves a whole group (see QuadTree.repulsion). */
const GROUP_SIZE = 64;

/**
 * A point quadtree in flat typed arrays (no per-node objects), rebuilt every iteration.
 * Node t: node[4t..4t+3] = centre of mass x, y, point count, squared cell width;
 * child[t] = first of its four children (consecutive) or -1 for a leaf; first[t] = a leaf's
 * first point (-1 when empty), next[i] chains points that share a leaf (coincident points,
 * or cells too small to split). After the build, `order` lists the points leaf by leaf in
 * depth-first order and node t's points are order[start[t] .. start[t] + count).
 */
class QuadTree {
  private cap = 0;
  private size = 0;
  private node: Float64Array = new Float64Array(0);
  private child: Int32Array = new Int32Array(0);
  private first: Int32Array = new Int32Array(0);
  private start: Int32Array = new Int32Array(0);
  private next: Int32Array = new Int32Array(0);
  private order: Int32Array = new Int32Array(0);
  private stack: Int32Array = new Int32Array(64);
  private groups: Int32Array = new Int32Array(64);
  // The interaction list of the current group: far cells (centre of mass, count).
  private farX: Float64Array = new Float64Array(256);
  private farY: Float64Array = new Float64Array(256);
  private farC: Float64Array = new Float64Array(256);

  build(Y: Float64Array, n: number): void {
    if (this.next.length < n) {
      this.next = new Int32Array(n);
      this.order = new Int32Array(n);
    }
    if (this.cap === 0) this.grow(Math.max(16, 4 * n));
    let minX = Infinity, minY = Infinity, maxX = -Infinity, maxY = -Infinity;
    for (let i = 0; i < n; i++) {
      const x = Y[2 * i]!, y = Y[2 * i + 1]!;
      if (x < minX) minX = x;
      if (x > maxX) maxX = x;
      if (y < minY) minY = y;
      if (y > maxY) maxY = y;
    }
    // A square root cell slightly larger than the bounding box.
    const width = Math.max(maxX - minX, maxY - minY, 1e-12) * (1 + 1e-6);
    const rootCx = (minX + maxX) / 2, rootCy = (minY + maxY) / 2;
    const minHalf = width * 1e-12;
    this.size = 1;
    this.reset(0, width * width);
    let node = this.node, child = this.child, first = this.first;
    const next = this.next;
    for (let i = 0; i < n; i++) {
      const x = Y[2 * i]!, y = Y[2 * i + 1]!;
      let t = 0, cx = rootCx, cy = rootCy, half = width / 2;
      for (;;) {
        node[4 * t]! += x;
        node[4 * t + 1]! += y;
        node[4 * t + 2]!++;
        const c = child[t]!;
        if (c >= 0) {
          half /= 2;
          const right = x >= cx, up = y >= cy;
          cx += right ? half : -half;
          cy += up ? half : -half;
          t = c + (right ? 1 : 0) + (up ? 2 : 0);
          continue;
        }
        const f = first[t]!;
        if (f < 0) {
          first[t] = i;
          next[i] = -1;
          break;
        }
        const fx = Y[2 * f]!, fy = Y[2 * f + 1]!;
        if ((fx === x && fy === y) || half < minHalf) {
          // Coincident (or unsplittable): share the leaf.
          next[i] = f;
          first[t] = i;
          break;
        }
        // Split: move the leaf's points (all at one spot) into the right child, then insert i
        // again from this node (its sums already include i: undo them, the loop redoes them).
        const base = this.alloc4(half * half);
        node = this.node;
        child = this.child;
        first = this.first;
        child[t] = base;
        const q = base + (fx >= cx ? 1 : 0) + (fy >= cy ? 2 : 0);
        const cnt = node[4 * t + 2]! - 1;
        node[4 * q] = fx * cnt;
        node[4 * q + 1] = fy * cnt;
        node[4 * q + 2] = cnt;
        first[q] = f;
        first[t] = -1;
        node[4 * t]! -= x;
        node[4 * t + 1]! -= y;
        node[4 * t + 2]!--;
      }
    }
    // Sums to centres of mass; point ranges in depth-first order (parents before children,
    // as the children of t are allocated after t).
    const start = this.start, order = this.order;
    start[0] = 0;
    for (let t = 0; t < this.size; t++) {
      const cnt = node[4 * t + 2]!;
      if (cnt > 0) {
        node[4 * t]! /= cnt;
        node[4 * t + 1]! /= cnt;
      }
      const c = child[t]!;
      if (c >= 0) {
        let s = start[t]!;
        for (let q = c; q < c + 4; q++) {
          start[q] = s;
          s += node[4 * q + 2]!;
        }
      } else {
        let s = start[t]!;
        for (let p = first[t]!; p >= 0; p = next[p]!) order[s++] = p;
      }
    }
  }

  /**
   * out[2i..] = sum_j q_ij^2 (y_i - y_j) over all j != i; returns Z = sum_{i != j} q_ij.
   *
   * Barnes-Hut applied per group rather than per point: the points are cut into groups (the
   * largest cells with at most GROUP_SIZE points), and for each group one walk of the tree
   * collects the cells that are far enough for every point of the group, i.e. width^2 <
   * theta^2 * d^2 with d the distance from the cell's centre of mass to the group's bounding
   * box (a cell that fails is opened; a leaf is exact anyway). Every point therefore meets
   * the per-point criterion or better, and the group's points then run through the list in a
   * tight loop, plus an exact sum within the group. Same accuracy guarantee, a few times
   * faster than one branchy walk per point.
   */
  repulsion(Y: Float64Array, n: number, theta: number, out: Float64Array): number {
    const node = this.node, child = this.child, start = this.start, order = this.order;
    const theta2 = theta * theta;
    let Z = 0;
    // Groups, in depth-first order.
    let groups = this.groups, ng = 0;
    let stack = this.stack, sp = 0;
    stack[sp++] = 0;
    while (sp > 0) {
      const t = stack[--sp]!;
      const c = child[t]!;
      if (c < 0 || node[4 * t + 2]! <= GROUP_SIZE) {
        if (ng === groups.length) groups = this.groups = growInt(groups);
        groups[ng++] = t;
        continue;
      }
      if (sp + 4 > stack.length) stack = this.stack = growInt(stack);
      for (let q = c + 3; q >= c; q--) if (node[4 * q + 2]! > 0) stack[sp++] = q;
    }

    for (let gi = 0; gi < ng; gi++) {
      const g = groups[gi]!;
      const g0 = start[g]!, g1 = g0 + node[4 * g + 2]!;
      let minX = Infinity, maxX = -Infinity, minY = Infinity, maxY = -Infinity;
      for (let a = g0; a < g1; a++) {
        const p = order[a]!;
        const x = Y[2 * p]!, y = Y[2 * p + 1]!;
        if (x < minX) minX = x;
        if (x > maxX) maxX = x;
        if (y < minY) minY = y;
        if (y > maxY) maxY = y;
      }
      // The group's interaction list.
      let farX = this.farX, farY = this.farY, farC = this.farC, nf = 0;
      sp = 0;
      stack[sp++] = 0;
      while (sp > 0) {
        const t = stack[--sp]!;
        if (t === g) continue; // the group itself: summed exactly below
        const o = 4 * t;
        const cx = node[o]!, cy = node[o + 1]!;
        const c = child[t]!;
        if (c >= 0) {
          const ex = cx < minX ? minX - cx : cx > maxX ? cx - maxX : 0;
          const ey = cy < minY ? minY - cy : cy > maxY ? cy - maxY : 0;
          // An ancestor of the group is always opened (with theta > 0.7 it could pass the test,
          // and the group's own points would then be counted twice).
          const ancestor = start[t]! <= g0 && g0 < start[t]! + node[o + 2]!;
          if (ancestor || node[o + 3]! >= theta2 * (ex * ex + ey * ey)) {
            if (sp + 4 > stack.length) stack = this.stack = growInt(stack);
            if (node[4 * c + 2]! > 0) stack[sp++] = c;
            if (node[4 * c + 6]! > 0) stack[sp++] = c + 1;
            if (node[4 * c + 10]! > 0) stack[sp++] = c + 2;
            if (node[4 * c + 14]! > 0) stack[sp++] = c + 3;
            continue;
          }
        }
        if (nf === farX.length) {
          farX = this.farX = growFloat(farX);
          farY = this.farY = growFloat(farY);
          farC = this.farC = growFloat(farC);
        }
        farX[nf] = cx;
        farY[nf] = cy;
        farC[nf++] = node[o + 2]!;
      }
      for (let a = g0; a < g1; a++) {
        const i = order[a]!;
        const xi = Y[2 * i]!, yi = Y[2 * i + 1]!;
        let fx = 0, fy = 0, z = 0;
        for (let e = 0; e < nf; e++) {
          const dx = xi - farX[e]!, dy = yi - farY[e]!;
          const q = 1 / (1 + dx * dx + dy * dy);
          const cq = farC[e]! * q;
          z += cq;
          fx += cq * q * dx;
          fy += cq * q * dy;
        }
        for (let b = g0; b < g1; b++) {
          if (b === a) continue;
          const j = order[b]!;
          const dx = xi - Y[2 * j]!, dy = yi - Y[2 * j + 1]!;
          const q = 1 / (1 + dx * dx + dy * dy);
          z += q;
          fx += q * q * dx;
          fy += q * q * dy;
        }
        out[2 * i] = fx;
        out[2 * i + 1] = fy;
        Z += z;
      }
    }
    return Z;
  }

  private reset(t: number, w2: number): void {
    const o = 4 * t;
    this.node[o] = 0;
    this.node[o + 1] = 0;
    this.node[o + 2] = 0;
    this.node[o + 3] = w2;
    this.child[t] = -1;
    this.first[t] = -1;
  }

  /** Four fresh children of squared width w2; returns the first index. */
  private alloc4(w2: number): number {
    if (this.size + 4 > this.cap) this.grow(2 * this.cap);
    const base = this.size;
    this.size += 4;
    for (let q = 0; q < 4; q++) this.reset(base + q, w2);
    return base;
  }

  private grow(cap: number): void {
    const node = new Float64Array(4 * cap);
    node.set(this.node.subarray(0, 4 * this.size));
    const child = new Int32Array(cap);
    child.set(this.child.subarray(0, this.size));
    const first = new Int32Array(cap);
    first.set(this.first.subarray(0, this.size));
    this.node = node;
    this.child = child;
    this.first = first;
    this.start = new Int32Array(cap);
    this.cap = cap;
  }
}

function growInt(a: Int32Array): Int32Array {
  const b = new Int32Array(2 * a.length);
  b.set(a);
  return b;
}

function growFloat(a: Float64Array): Float64Array {
  const b = new Float64Array(2 * a.length);
  b.set(a);
  return b;
}
