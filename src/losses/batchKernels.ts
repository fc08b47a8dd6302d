/**
 * Where the batch losses' O(n²·dim) work runs. batch.ts computes it in TypeScript; when the
 * native engine's addon is loaded (src/engine/native.ts plugs its kernels in here), it runs in
 * the addon instead. The class-weight losses' products run in float64 SIMD kernels
 * (native/src/batchsim.c) that sum in the same order and round the same way as batch.ts: the
 * same bits. The pair-based losses (multi-similarity, nt-xent, supcon, circle) run whole in one
 * call (native/src/batchpair.c: float32 products, float64 per-pair arithmetic): within a
 * tolerance of the TypeScript reference, not its bits (docs/batch-losses.md, "Speed").
 */

/** The addon's batch-loss kernels (see native/src/addon.c for the argument checks). */
export interface BatchKernels {
  /** u = rows of x over their norms, norms = max(|x_i|, 1e-12) */
  batchNormalize(x: Float32Array, rows: number, dim: number, u: Float64Array, norms: Float64Array): void;
  /** s = a bᵀ (a [ra, dim], b [rb, dim]; the same array twice: symmetric) */
  batchSimilarities(a: Float64Array, ra: number, b: Float64Array, rb: number, dim: number, s: Float64Array): void;
  /** out = dL/dx from g = dL/dS [n, n] (g is overwritten with G + Gᵀ, zero diagonal) */
  batchPairBackward(g: Float64Array, n: number, u: Float64Array, norms: Float64Array, dim: number, out: Float32Array): void;
  /** grad, wgrad = dL/dx, dL/dw from g = dL/dC [n, classes] */
  batchProxyBackward(
    g: Float64Array,
    n: number,
    classes: number,
    eu: Float64Array,
    enorms: Float64Array,
    wu: Float64Array,
    wnorms: Float64Array,
    dim: number,
    grad: Float32Array,
    wgrad: Float32Array,
  ): void;
  /** s_ij = x_i·x_j / (|x_i| |x_j|) of float32 rows, sums in order (the trainer's batch accuracy) */
  batchRawCosines(x: Float32Array, n: number, dim: number, s: Float64Array): void;
  /**
   * A pair-based batch loss whole (kind 0 multi-similarity [alpha, beta, base], 1 nt-xent
   * [temperature], 2 supcon [temperature], 3 circle [m, gamma]): returns the loss, fills grad
   * (dL/dx, n x dim) and sims (the cosine similarities, n x n), n = labels.length.
   */
  batchPairLoss(kind: number, params: Float64Array, x: Float32Array, labels: Int32Array, dim: number, grad: Float32Array, sims: Float64Array): number;
  /** the best-threshold accuracy over the pairs i < j of s [n, n] ranked by −s (train/batchAccuracy.ts' pairSweep); −1 where s holds a NaN */
  batchPairAccuracy(s: Float64Array, labels: Int32Array): number;
}

let kernels: BatchKernels | null = null;

/** Plug in (or, with null, take out) the native kernels; returns the ones in place before. */
export function useBatchKernels(k: BatchKernels | null): BatchKernels | null {
  const before = kernels;
  kernels = k;
  return before;
}

/** The native kernels, or null: the TypeScript reference runs. */
export function batchKernels(): BatchKernels | null {
  return kernels;
}
