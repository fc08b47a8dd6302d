/**
 * Batch losses: losses of a whole labelled batch of embeddings (the metric-learning field's
 * baselines, with the names, defaults, reducers and distance of pytorch-metric-learning 2.9).
 * They read cosine similarities of L2-normalised embeddings, s_ij = û_i·û_j with
 * û = e / max(|e|, 1e-12), and return the loss with its default reduction and its exact
 * gradient with respect to the raw (unnormalised) embeddings, all on the host in float64. When
 * the native addon is loaded (batchKernels.ts), the pair-based losses and the class-weight losses
 * each run whole in one native call (float32 products where they do not change the loss beyond a
 * stated tolerance): within a tolerance of the reference here, which stays the fallback.
 *
 * Three of them (arcface, cosface, proxy-anchor) own one learnable vector per class, `weights`
 * (classes x dim, row-major, normalised inside the loss as well); they return its gradient too.
 */
import { DataError, UsageError } from '../errors.ts';
import type { Rng } from '../rng.ts';
import { type BatchKernels, batchKernels } from './batchKernels.ts';

export interface BatchLossResult {
  loss: number;
  /** dL/d(embeddings), [n, dim] */
  grad: Float32Array;
  /** dL/d(weights), [classes, dim], for the losses that own class weights */
  weightsGrad?: Float32Array;
  /**
   * the embeddings' cosine similarities [n, n] (float64), where the loss computed them anyway
   * (the pair-based losses): the trainer's batch accuracy reads them instead of recomputing
   * (left out where the workspace says `similarities: false` and the accuracy came with the loss)
   */
  similarities?: Float64Array;
  /**
   * the batch's best-threshold pair accuracy (as train/batchAccuracy.ts' pairSweep gives it on the
   * similarities, batchPairAccuracy on the embeddings), where the workspace asked for it and the
   * loss computed it in the same native call
   */
  accuracy?: number;
}

export interface BatchLoss {
  readonly kind: 'batch';
  readonly name: string;
  readonly formula: string;
  readonly params: Readonly<Record<string, number | string>>;
  /** whether the loss owns learnable class weights/proxies */
  readonly classWeights: boolean;
  /**
   * The loss of one batch. `labels` are class indices; with class weights they must be in
   * [0, weights.length / dim). `weights` is required exactly when `classWeights`. With a
   * `workspace`, the result's arrays are the workspace's: valid until its next use.
   */
  compute(emb: ArrayLike<number>, labels: ArrayLike<number>, dim: number, weights?: ArrayLike<number>, workspace?: BatchWorkspace): BatchLossResult;
  /** fresh class weights for `classes` classes (PML's initialisation for this loss) */
  initWeights?(classes: number, dim: number, rng: Rng): Float32Array;
  /**
   * For plots: the loss of a three-point batch in the plane, anchor and positive of class 0 and
   * a negative of class 1. pos(d): positive at Euclidean distance d from the anchor (0..2),
   * negative orthogonal to the anchor (distance √2); neg(d): positive on the anchor, negative at
   * distance d. Class weights, when the loss has them, point at the anchor and at the
   * orthogonal direction.
   */
  pos(d: number): number;
  neg(d: number): number;
}

/**
 * Arrays that compute may reuse call after call (the trainer passes one, batch after batch):
 * allocating ~100 KB arrays every step costs more than the products that fill them (fresh
 * pages, and the garbage collector). Without one, every result is fresh arrays.
 */
export class BatchWorkspace {
  private readonly f64 = new Map<string, Float64Array>();
  private readonly f32 = new Map<string, Float32Array>();
  /**
   * whether the caller wants the batch's accuracy too: the native step (pair or class-weight)
   * then computes it in the same call, as BatchLossResult.accuracy
   */
  readonly accuracy: boolean;
  /**
   * false: the caller reads the similarities only where the accuracy did not come with the loss
   * (a NaN similarity): the native pair step then writes no float64 copy of S (n x n) for it
   */
  readonly similarities: boolean;

  constructor(opts: { accuracy?: boolean; similarities?: boolean } = {}) {
    this.accuracy = opts.accuracy ?? false;
    this.similarities = opts.similarities ?? true;
  }

  /** the array `key` of `size` values (its old values, or zeros where new) */
  float64(key: string, size: number): Float64Array {
    let a = this.f64.get(key);
    if (a?.length !== size) this.f64.set(key, (a = new Float64Array(size)));
    return a;
  }

  float32(key: string, size: number): Float32Array {
    let a = this.f32.get(key);
    if (a?.length !== size) this.f32.set(key, (a = new Float32Array(size)));
    return a;
  }
}

/** A fresh array, or the workspace's zeroed */
function zeros64(ws: BatchWorkspace | undefined, key: string, size: number): Float64Array {
  return ws ? ws.float64(key, size).fill(0) : new Float64Array(size);
}

/** The gradient of L with respect to a similarity matrix, filled by each loss. */
export interface SimilarityGrad {
  loss: number;
  /** dL/dS, [rows, cols] (rows = embeddings; cols = embeddings or class weights): the g given */
  g: Float64Array;
}

/** The L2 floor of F.normalize (PML normalises with it). */
export const NORM_EPSILON = 1e-12;

/** Rows of x normalised: û (float64) and the norms actually divided by. */
export function normalizeRows(x: ArrayLike<number>, rows: number, dim: number): { u: Float64Array; norms: Float64Array } {
  const u = new Float64Array(rows * dim);
  const norms = new Float64Array(rows);
  for (let i = 0; i < rows; i++) {
    const o = i * dim;
    let s = 0;
    for (let k = 0; k < dim; k++) s += x[o + k]! * x[o + k]!;
    const nrm = Math.max(Math.sqrt(s), NORM_EPSILON);
    norms[i] = nrm;
    for (let k = 0; k < dim; k++) u[o + k] = x[o + k]! / nrm;
  }
  return { u, norms };
}

/** S = A Bᵀ for row-major A [ra, dim], B [rb, dim]; symmetric when A is B (computed once per pair). */
export function similarities(a: Float64Array, ra: number, b: Float64Array, rb: number, dim: number): Float64Array {
  const s = new Float64Array(ra * rb);
  const same = a === b;
  const d4 = dim & ~3;
  for (let i = 0; i < ra; i++) {
    const oi = i * dim;
    for (let j = same ? i : 0; j < rb; j++) {
      const oj = j * dim;
      // four partial sums: the dependency chain of one sum is what bounds this loop
      let t0 = 0;
      let t1 = 0;
      let t2 = 0;
      let t3 = 0;
      let k = 0;
      for (; k < d4; k += 4) {
        t0 += a[oi + k]! * b[oj + k]!;
        t1 += a[oi + k + 1]! * b[oj + k + 1]!;
        t2 += a[oi + k + 2]! * b[oj + k + 2]!;
        t3 += a[oi + k + 3]! * b[oj + k + 3]!;
      }
      for (; k < dim; k++) t0 += a[oi + k]! * b[oj + k]!;
      const t = t0 + t1 + (t2 + t3);
      s[i * rb + j] = t;
      if (same) s[j * rb + i] = t;
    }
  }
  return s;
}

/** The transpose of a row-major [rows, cols] matrix. */
function transpose(x: Float64Array, rows: number, cols: number): Float64Array {
  const t = new Float64Array(rows * cols);
  for (let i = 0; i < rows; i++) for (let j = 0; j < cols; j++) t[j * rows + i] = x[i * cols + j]!;
  return t;
}

/**
 * Back through normalisation: given dL/dû per row, dL/dx = (g − (g·û)û) / |x| (where the floor
 * is active, |x| < 1e-12, F.normalize divides by the constant: g / 1e-12).
 */
export function backNormalize(gu: Float64Array, u: Float64Array, norms: Float64Array, rows: number, dim: number): Float32Array {
  const out = new Float32Array(rows * dim);
  for (let i = 0; i < rows; i++) {
    const o = i * dim;
    const nrm = norms[i]!;
    let dot = 0;
    if (nrm > NORM_EPSILON) for (let k = 0; k < dim; k++) dot += gu[o + k]! * u[o + k]!;
    for (let k = 0; k < dim; k++) out[o + k] = (gu[o + k]! - dot * u[o + k]!) / nrm;
  }
  return out;
}

/** a typed array or an array (what ArrayLike<number> stands for at run time) */
const isNumbers = (x: unknown): boolean => ArrayBuffer.isView(x) || Array.isArray(x);
const typeName = (x: unknown): string => (x === null ? 'null' : Array.isArray(x) ? 'an array' : typeof x === 'object' ? (x.constructor?.name ?? 'an object') : typeof x);

/** Checks the batch's types and shape; returns its size. */
export function checkBatch(name: string, emb: ArrayLike<number>, labels: ArrayLike<number>, dim: number): number {
  // the public lossOnBatch passes what its caller gave: a wrong type is named here, in one line,
  // not met as a TypeError inside a kernel
  if (!isNumbers(emb)) throw new DataError(`${name}: the embeddings must be a Float32Array (or an array of numbers), got ${typeName(emb)}`);
  if (!isNumbers(labels)) throw new DataError(`${name}: the labels must be an Int32Array (or an array of numbers), got ${typeName(labels)}`);
  if (!Number.isInteger(dim) || dim < 1) {
    // "got 3" for the string "3" would read as a contradiction
    const got = typeof dim === 'number' ? String(dim) : `${JSON.stringify(dim) ?? String(dim)} (a ${typeName(dim)})`;
    throw new UsageError(`${name}: dim must be a positive integer, got ${got}`);
  }
  const n = labels.length;
  if (emb.length !== n * dim) throw new DataError(`${name}: ${emb.length} embedding values do not match ${n} labels of dimension ${dim}`);
  return n;
}

/** labels handed to the native class-weight step as the Int32Array it takes */
let labelScratch = new Int32Array(0);

/** The native kernels, where they are loaded and the arrays are the float32 they take. */
function nativeFor(...xs: (ArrayLike<number> | undefined)[]): BatchKernels | null {
  const k = batchKernels();
  return k && xs.every((x) => x instanceof Float32Array) ? k : null;
}

/** The pair-based losses the addon computes whole (batchKernels.ts, batchPairLoss), with their parameters in its order. */
export interface NativePairLoss {
  kind: 0 | 1 | 2 | 3;
  params: readonly number[];
}

/** labels as the Int32Array the addon takes, or null where they are not all int32 values */
function int32Labels(labels: ArrayLike<number>): Int32Array | null {
  if (labels instanceof Int32Array) return labels;
  const out = new Int32Array(labels.length);
  for (let i = 0; i < labels.length; i++) {
    out[i] = labels[i]!;
    if (out[i] !== labels[i]) return null;
  }
  return out;
}

/**
 * A loss on the embedding-embedding similarity matrix: `onSim(S, labels, n, g)` gives L and
 * dL/dS, added into g (n x n zeros) (S symmetric with a unit diagonal, which no loss reads).
 * With `native`, float32 embeddings go to the addon's whole-loss kernel where it is loaded
 * (one call: normalisation, S, the per-pair arithmetic, the gradient); `onSim` is the reference.
 */
export function pairwiseBatchLoss(
  name: string,
  onSim: (s: Float64Array, labels: ArrayLike<number>, n: number, g: Float64Array) => SimilarityGrad,
  native?: NativePairLoss,
): BatchLoss['compute'] {
  const pair = native ? { kind: native.kind, params: Float64Array.from(native.params) } : null;
  return (emb, labels, dim, _weights, ws) => {
    const n = checkBatch(name, emb, labels, dim);
    // no embeddings, no pairs: a zero loss (as pytorch-metric-learning gives), not a mean over none
    if (n === 0) return { loss: 0, grad: new Float32Array(0), similarities: new Float64Array(0) };
    const k = pair ? nativeFor(emb) : null;
    // (the addon's limits: 46340 labels, n x dim below 2^29; past them, or with labels that are
    // not int32 values, the reference)
    const lab = k && n > 0 && n <= 46340 && n * dim < 2 ** 29 ? int32Labels(labels) : null;
    if (k && pair && lab) {
      const simsOf = (): Float64Array => (ws ? ws.float64('similarities', n * n) : new Float64Array(n * n));
      const grad = ws ? ws.float32('grad', n * dim) : new Float32Array(n * dim);
      const acc = ws?.accuracy ? ws.float64('accuracy', 1) : undefined;
      // without a reader for S (the accuracy comes with the loss) the addon writes no copy of it
      const skip = acc !== undefined && ws?.similarities === false;
      const s = skip ? null : simsOf();
      const loss = k.batchPairLoss(pair.kind, pair.params, emb as Float32Array, lab, dim, grad, s, acc);
      if (acc && acc[0]! >= 0) return s ? { loss, grad, similarities: s, accuracy: acc[0]! } : { loss, grad, accuracy: acc[0]! };
      // −1: a similarity is NaN, and the caller sweeps S in TypeScript: the same call again for it
      // (the same bits: one build, one thread), where the first one wrote none
      if (s) return { loss, grad, similarities: s };
      const again = simsOf();
      return { loss: k.batchPairLoss(pair.kind, pair.params, emb as Float32Array, lab, dim, grad, again, undefined), grad, similarities: again };
    }
    const { u, norms } = normalizeRows(emb, n, dim);
    const s = similarities(u, n, u, n, dim);
    const { loss, g } = onSim(s, labels, n, zeros64(ws, 'g', n * n));
    // dL/dû = (G + Gᵀ) Û with a zero diagonal: rows of the symmetric matrix times the columns of Û
    for (let i = 0; i < n; i++) {
      g[i * n + i] = 0;
      for (let j = i + 1; j < n; j++) {
        const c = g[i * n + j]! + g[j * n + i]!;
        g[i * n + j] = c;
        g[j * n + i] = c;
      }
    }
    const gu = similarities(g, n, transpose(u, n, dim), dim, n);
    return { loss, grad: backNormalize(gu, u, norms, n, dim), similarities: s };
  };
}

/** A class-weight loss's native step (batchKernels.ts, batchProxyLoss): its kind and two parameters. */
export interface ProxyNative {
  kind: 0 | 1 | 2;
  p1: number;
  p2: number;
}

/**
 * A loss on the embedding-class-weight similarity matrix (cosines to the normalised class
 * weights): `onSim(C, labels, n, classes, g)` gives L and dL/dC, added into g (n x classes zeros).
 * With the native kernels loaded and float32 inputs, `native` runs the same loss whole in the
 * addon instead (one call: normalisation, C, the loss, both gradients); onSim is its reference.
 */
export function proxyBatchLoss(
  name: string,
  onSim: (c: Float64Array, labels: ArrayLike<number>, n: number, classes: number, g: Float64Array) => SimilarityGrad,
  native?: ProxyNative,
): BatchLoss['compute'] {
  return (emb, labels, dim, weights, ws) => {
    const n = checkBatch(name, emb, labels, dim);
    if (!weights) throw new UsageError(`${name} needs its class weights (classes x dim)`);
    if (!isNumbers(weights)) throw new DataError(`${name}: the class weights must be a Float32Array (or an array of numbers), got ${typeName(weights)}`);
    if (weights.length === 0 || weights.length % dim !== 0) {
      throw new DataError(`${name}: ${weights.length} class weight values are not a whole number of rows of dimension ${dim}`);
    }
    const classes = weights.length / dim;
    for (let i = 0; i < n; i++) {
      const y = labels[i]!;
      if (!Number.isInteger(y) || y < 0 || y >= classes) throw new DataError(`${name}: label ${y} is not a class index in [0, ${classes})`);
    }
    // no embeddings: a zero loss (as pytorch-metric-learning gives), not a mean over none; the
    // class weights, which nothing pulled, a zero gradient
    if (n === 0) return { loss: 0, grad: new Float32Array(0), weightsGrad: new Float32Array(classes * dim) };
    // (the addon's limits: n and classes up to 2^20, n x dim and classes x dim below 2^29; past them the reference)
    const fits = n > 0 && n <= 2 ** 20 && classes <= 2 ** 20 && n * dim < 2 ** 29 && classes * dim < 2 ** 29 && n * classes < 2 ** 31;
    const k = native && fits ? nativeFor(emb, weights) : null;
    if (k && native) {
      let lab: Int32Array;
      if (labels instanceof Int32Array) lab = labels;
      else {
        if (labelScratch.length !== n) labelScratch = new Int32Array(n);
        lab = labelScratch;
        for (let i = 0; i < n; i++) lab[i] = labels[i]!;
      }
      const grad = ws ? ws.float32('grad', n * dim) : new Float32Array(n * dim);
      const weightsGrad = ws ? ws.float32('weightsGrad', classes * dim) : new Float32Array(classes * dim);
      // (the addon sweeps at most 46340 rows' pairs, 2^31 of them; past that the caller's own sweep)
      const acc = ws?.accuracy && n <= 46340 ? ws.float64('accuracy', 1) : undefined;
      let loss: number;
      try {
        loss = k.batchProxyLoss(native.kind, native.p1, native.p2, emb as Float32Array, lab, weights as Float32Array, dim, grad, weightsGrad, acc);
      } catch (e) {
        // the addon checks its own copy of the labels: one out of range there was changed by
        // another thread (a SharedArrayBuffer) after the check above
        if (e instanceof RangeError) throw new DataError(`${name}: ${e.message}`);
        throw e;
      }
      // −1: a row is not finite, and the caller sweeps in TypeScript
      return acc && acc[0]! >= 0 ? { loss, grad, weightsGrad, accuracy: acc[0]! } : { loss, grad, weightsGrad };
    }
    const e = normalizeRows(emb, n, dim);
    const w = normalizeRows(weights, classes, dim);
    const c = similarities(e.u, n, w.u, classes, dim);
    const { loss, g } = onSim(c, labels, n, classes, zeros64(ws, 'g', n * classes));
    const gu = new Float64Array(n * dim);
    const gw = new Float64Array(classes * dim);
    for (let i = 0; i < n; i++) {
      const oi = i * dim;
      for (let j = 0; j < classes; j++) {
        const v = g[i * classes + j]!;
        if (v === 0) continue;
        const oj = j * dim;
        for (let k = 0; k < dim; k++) {
          gu[oi + k]! += v * w.u[oj + k]!;
          gw[oj + k]! += v * e.u[oi + k]!;
        }
      }
    }
    return { loss, grad: backNormalize(gu, e.u, e.norms, n, dim), weightsGrad: backNormalize(gw, w.u, w.norms, classes, dim) };
  };
}

/** log(Σ exp(x_k)) over the listed values (plus a 0 term with addOne), and each softmax weight into w. */
export function logSumExp(x: Float64Array, count: number, addOne: boolean, w: Float64Array): number {
  let m = addOne ? 0 : -Infinity;
  for (let k = 0; k < count; k++) if (x[k]! > m) m = x[k]!;
  if (m === -Infinity) return -Infinity;
  let s = addOne ? Math.exp(-m) : 0;
  for (let k = 0; k < count; k++) s += Math.exp(x[k]! - m);
  const v = m + Math.log(s);
  for (let k = 0; k < count; k++) w[k] = Math.exp(x[k]! - v);
  return v;
}

/**
 * The mean of the per-anchor losses above 0 (pytorch-metric-learning's AvgNonZeroReducer), and
 * g's rows (anchor i's gradient by the similarities, n × n) scaled to match in place: 1/count
 * for a counted anchor, 0 for the others.
 */
export function avgNonZero(per: Float64Array, g: Float64Array, n: number): { loss: number; g: Float64Array } {
  let count = 0;
  let total = 0;
  for (let i = 0; i < n; i++) {
    // a NaN anchor loss (a NaN or infinite embedding) makes the loss NaN, so the trainer stops
    // the run, where "above 0" would silently drop it
    if (Number.isNaN(per[i])) return { loss: NaN, g };
    if (per[i]! > 0) {
      count++;
      total += per[i]!;
    }
  }
  for (let i = 0; i < n; i++) {
    const f = per[i]! > 0 ? 1 / count : 0;
    for (let j = 0; j < n; j++) g[i * n + j]! *= f;
  }
  return { loss: count > 0 ? total / count : 0, g };
}

/** The plot batch of BatchLoss.pos/neg (see there), in 2-d. */
export function planeShape(loss: Pick<BatchLoss, 'compute' | 'classWeights'>): { pos(d: number): number; neg(d: number): number } {
  const at = (dp: number, dn: number): number => {
    const angle = (d: number): number => 2 * Math.asin(Math.min(Math.max(d, 0), 2) / 2);
    const tp = angle(dp);
    const tn = angle(dn);
    const emb = Float32Array.of(1, 0, Math.cos(tp), Math.sin(tp), Math.cos(tn), -Math.sin(tn));
    const labels = Int32Array.of(0, 0, 1);
    return loss.compute(emb, labels, 2, loss.classWeights ? Float32Array.of(1, 0, 0, -1) : undefined).loss;
  };
  return { pos: (d) => at(d, Math.SQRT2), neg: (d) => at(0, d) };
}
