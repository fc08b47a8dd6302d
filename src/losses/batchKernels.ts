/**
 * Where the batch losses' O(n²·dim) work runs. batch.ts computes it in TypeScript; when the
 * native engine's addon is loaded (src/engine/native.ts plugs its kernels in here), it runs in
 * the addon instead, whole and in one call per step: the pair-based losses (multi-similarity,
 * nt-xent, supcon, circle) in native/src/batchpair.c (float32 products, float64 per-pair
 * arithmetic), the class-weight losses (arcface, cosface, proxy-anchor) in native/src/batchproxy.c
 * (float64 cosines and loss, float32 back-projections; the trainer's batch accuracy for them from
 * float32 cosines, in the same call). Both agree with the TypeScript reference within a
 * tolerance, not its bits (docs/batch-losses.md, "Speed"; test/losses/batchPairNative.test.ts and
 * batchProxyNative.test.ts). The float64 product kernels of native/src/batchsim.c sum in the same
 * order and round the same way as batch.ts: the same bits.
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
  /**
   * A class-weight loss's whole step: the loss of x [n, dim] (n = labels.length) against the class
   * weights w [classes, dim], dL/dx into grad and dL/dw into wgrad. kind 0: arcface (p1 the margin
   * in radians, p2 the scale), 1: cosface (margin, scale), 2: proxy-anchor (margin, alpha). With
   * acc (one value), also the batch's accuracy into acc[0], as batchCosineAccuracy gives it.
   */
  batchProxyLoss(
    kind: number,
    p1: number,
    p2: number,
    x: Float32Array,
    labels: Int32Array,
    w: Float32Array,
    dim: number,
    grad: Float32Array,
    wgrad: Float32Array,
    acc: Float64Array | undefined,
  ): number;
  /**
   * The best-threshold accuracy over the pairs i < j of x [n, dim] ranked by their cosines, computed
   * in float32 (written to cos [n, n] where given: pass undefined otherwise); −1 where x holds an
   * infinite or NaN value
   */
  batchCosineAccuracy(x: Float32Array, dim: number, labels: Int32Array, cos: Float32Array | undefined): number;
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
