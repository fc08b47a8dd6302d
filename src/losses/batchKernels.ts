/**
 * Where the batch losses' O(n²·dim) work runs. batch.ts computes it in TypeScript; when the
 * native engine's addon is loaded (src/engine/native.ts plugs its kernels in here), it runs in
 * the addon instead, whole and in one call per step: the pair-based losses (multi-similarity,
 * nt-xent, supcon, circle) in native/src/batchpair.c (float32 products, float64 per-pair
 * arithmetic), the class-weight losses (arcface, cosface, proxy-anchor) in native/src/batchproxy.c
 * (float64 cosines and loss, float32 back-projections; the trainer's batch accuracy for them from
 * float32 cosines, in the same call). Both agree with the TypeScript reference within a
 * tolerance, not its bits (docs/batch-losses.md, "Speed"; test/losses/batchPairNative.test.ts and
 * batchProxyNative.test.ts). Both give the trainer's batch accuracy from the same native sweep
 * (native/src/batchsweep.c) when asked.
 */

/** The addon's batch-loss kernels (see native/src/addon.c for the argument checks). */
export interface BatchKernels {
  /**
   * A pair-based batch loss whole (kind 0 multi-similarity [alpha, beta, base], 1 nt-xent
   * [temperature], 2 supcon [temperature], 3 circle [m, gamma]): returns the loss, fills grad
   * (dL/dx, n x dim) and, where given, sims (the cosine similarities, n x n; null or undefined:
   * not written, the results the same), n = labels.length. With acc (one
   * value), also the best-threshold accuracy over the pairs i < j ranked by those similarities
   * into acc[0] (train/batchAccuracy.ts' pairSweep, exactly), or −1 where one is NaN.
   */
  batchPairLoss(
    kind: number,
    params: Float64Array,
    x: Float32Array,
    labels: Int32Array,
    dim: number,
    grad: Float32Array,
    sims: Float64Array | null | undefined,
    acc: Float64Array | undefined,
  ): number;
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
