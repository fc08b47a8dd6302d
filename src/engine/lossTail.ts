/**
 * The host side of a native training step: distances between embedding rows, the loss and its
 * derivative with respect to each distance, and the gradient with respect to the embeddings.
 *
 * The loss goes through TF.js on the 1-D tensor of distances (tf.valueAndGrad of the batch mean),
 * so every loss — registered, custom expression or a user's own — works unchanged. The seed's
 * losses (contrastive, Yukawa, triplet) also have closed-form derivatives here, which skip TF.js'
 * per-op overhead; each is checked against the TF.js form of the very loss object on probe
 * distances before it is used, and the TF.js form is used whenever they disagree.
 *
 * Distances follow pairDistance: D = sqrt(max(sum((a − b)²), 1e-7)); dD/da = (a − b)/D where the
 * floor is not active, 0 where it is (the gradient of tf.maximum).
 */
import * as tf from '@tensorflow/tfjs-core';
import type { PairLoss, TripletLoss } from '../losses/types.ts';
import { pairDistancesHost, SQUARED_DISTANCE_FLOOR } from '../model/siamese.ts';

/**
 * Mean loss and its derivative with respect to each pair distance. `out`, when given (of d's
 * length), may receive the derivatives: a training step calls this every batch, and a fresh
 * typed array costs microseconds.
 */
export type PairLossGrad = (d: Float32Array, y: Uint8Array, out?: Float64Array) => { value: number; grad: Float64Array };
/** Mean loss and its derivatives with respect to each D_ap and D_an (into `out`, as above). */
export type TripletLossGrad = (
  dap: Float32Array,
  dan: Float32Array,
  out?: { gap: Float64Array; gan: Float64Array },
) => { value: number; gap: Float64Array; gan: Float64Array };

/** The generic form: TF.js differentiates the loss's own tensor expression. */
export function tfPairLossGrad(loss: PairLoss): PairLossGrad {
  return (d, y) => {
    let value = 0;
    let grad = new Float64Array(0);
    tf.tidy(() => {
      const yt = tf.tensor1d(Float32Array.from(y));
      const f = tf.valueAndGrad((x: tf.Tensor) => tf.mean(loss.perPair(x as tf.Tensor1D, yt) as tf.Tensor1D) as tf.Scalar);
      const r = f(tf.tensor1d(d));
      value = r.value.dataSync()[0]!;
      grad = Float64Array.from(r.grad.dataSync());
    });
    return { value, grad };
  };
}

export function tfTripletLossGrad(loss: TripletLoss): TripletLossGrad {
  return (dap, dan) => {
    let value = 0;
    let gap = new Float64Array(0);
    let gan = new Float64Array(0);
    tf.tidy(() => {
      const f = tf.valueAndGrads((a: tf.Tensor, b: tf.Tensor) => tf.mean(loss.perTriplet(a as tf.Tensor1D, b as tf.Tensor1D) as tf.Tensor1D) as tf.Scalar);
      const r = f([tf.tensor1d(dap), tf.tensor1d(dan)]);
      value = r.value.dataSync()[0]!;
      gap = Float64Array.from(r.grads[0]!.dataSync());
      gan = Float64Array.from(r.grads[1]!.dataSync());
    });
    return { value, gap, gan };
  };
}

const numParam = (p: Readonly<Record<string, number | string>>, k: string): number | undefined =>
  typeof p[k] === 'number' ? (p[k] as number) : undefined;

/** Closed forms of the seed's pair losses, or null for any other loss. */
function closedPairLossGrad(loss: PairLoss): PairLossGrad | null {
  if (loss.name === 'contrastive') {
    const m = numParam(loss.params, 'margin');
    if (m === undefined) return null;
    return (d, y, out) => {
      const n = d.length;
      const grad = out ?? new Float64Array(n);
      let sum = 0;
      for (let i = 0; i < n; i++) {
        const D = d[i]!;
        if (y[i]) {
          sum += D * D;
          grad[i] = (2 * D) / n;
        } else {
          const h = m - D > 0 ? m - D : 0;
          sum += h * h;
          grad[i] = (-2 * h) / n;
        }
      }
      return { value: sum / n, grad };
    };
  }
  if (loss.name === 'yukawa') {
    const kappa = numParam(loss.params, 'kappa');
    const p = numParam(loss.params, 'power');
    const eps = numParam(loss.params, 'epsilon');
    if (kappa === undefined || p === undefined || eps === undefined) return null;
    return (d, y, out) => {
      const n = d.length;
      const grad = out ?? new Float64Array(n);
      let sum = 0;
      for (let i = 0; i < n; i++) {
        const D = d[i]!;
        if (y[i]) {
          sum += p === 3 ? D * D * D : D ** p;
          grad[i] = (p === 3 ? 3 * D * D : p * D ** (p - 1)) / n;
        } else {
          const e = Math.exp(-kappa * D);
          if (D >= eps) {
            sum += e / D;
            grad[i] = (-e * (kappa * D + 1)) / (D * D) / n;
          } else {
            sum += e / eps;
            grad[i] = (-kappa * e) / eps / n;
          }
        }
      }
      return { value: sum / n, grad };
    };
  }
  return null;
}

function closedTripletLossGrad(loss: TripletLoss): TripletLossGrad | null {
  if (loss.name !== 'triplet') return null;
  const m = numParam(loss.params, 'margin');
  const sq = loss.params['squared'];
  if (m === undefined || (sq !== 'true' && sq !== 'false')) return null;
  const squared = sq === 'true';
  return (dap, dan, out) => {
    const n = dap.length;
    const gap = out?.gap ?? new Float64Array(n);
    const gan = out?.gan ?? new Float64Array(n);
    let sum = 0;
    for (let i = 0; i < n; i++) {
      const a = dap[i]!;
      const b = dan[i]!;
      const v = (squared ? a * a - b * b : a - b) + m;
      gap[i] = 0;
      gan[i] = 0;
      if (v > 0) {
        sum += v;
        gap[i] = (squared ? 2 * a : 1) / n;
        gan[i] = -(squared ? 2 * b : 1) / n;
      }
    }
    return { value: sum / n, gap, gan };
  };
}

/** Probe distances: the floor, both sides of the margins, and far. */
const PROBE = Float32Array.from([3.2e-4, 1e-3, 0.01, 0.05, 0.1, 0.2, 0.3, 0.45, 0.5, 0.7, 0.84, 0.9, 0.99, 1.01, 1.2, 1.5, 2, 3]);

function close(a: ArrayLike<number>, b: ArrayLike<number>, tol: number): boolean {
  for (let i = 0; i < a.length; i++) {
    const x = a[i]!;
    const y = b[i]!;
    if (!Number.isFinite(x) || !Number.isFinite(y)) {
      if (!Object.is(x, y)) return false;
      continue;
    }
    if (Math.abs(x - y) > tol * Math.max(1e-6, Math.abs(x), Math.abs(y))) return false;
  }
  return true;
}

export interface LossGradChoice<F> {
  fn: F;
  /** closed form (true) or TF.js (false) */
  fused: boolean;
}

/** The closed form when it matches the loss's TF.js expression on probe distances, else TF.js. */
export function pairLossGrad(loss: PairLoss): LossGradChoice<PairLossGrad> {
  const generic = tfPairLossGrad(loss);
  const closed = closedPairLossGrad(loss);
  if (closed) {
    const n = PROBE.length;
    const d = Float32Array.from({ length: 2 * n }, (_, i) => PROBE[i % n]!);
    const y = Uint8Array.from({ length: 2 * n }, (_, i) => (i < n ? 1 : 0));
    const a = closed(d, y);
    const b = generic(d, y);
    if (close([a.value], [b.value], 1e-4) && close(a.grad, b.grad, 1e-4)) return { fn: closed, fused: true };
  }
  return { fn: generic, fused: false };
}

export function tripletLossGrad(loss: TripletLoss): LossGradChoice<TripletLossGrad> {
  const generic = tfTripletLossGrad(loss);
  const closed = closedTripletLossGrad(loss);
  if (closed) {
    const n = PROBE.length;
    const dap = Float32Array.from({ length: n * n }, (_, i) => PROBE[i % n]!);
    const dan = Float32Array.from({ length: n * n }, (_, i) => PROBE[Math.floor(i / n)]!);
    const a = closed(dap, dan);
    const b = generic(dap, dan);
    if (close([a.value], [b.value], 1e-4) && close(a.gap, b.gap, 1e-4) && close(a.gan, b.gan, 1e-4)) return { fn: closed, fused: true };
  }
  return { fn: generic, fused: false };
}

/** Distances between rows ia[i] and ib[i] of emb; squared sums go to `sq` (for the backward pass). */
export function rowDistances(emb: Float32Array, dim: number, ia: Int32Array, ib: Int32Array, sq: Float64Array): Float32Array {
  return pairDistancesHost(emb, dim, ia, ib, sq);
}

export function backpropDistances(
  emb: Float32Array,
  dim: number,
  ia: Int32Array,
  ib: Int32Array,
  d: Float32Array,
  sq: Float64Array,
  g: Float64Array,
  gEmb: Float64Array,
): void {
  for (let i = 0; i < ia.length; i++) {
    if (!(sq[i]! >= SQUARED_DISTANCE_FLOOR) || g[i] === 0) continue;
    const c = g[i]! / d[i]!;
    const oa = ia[i]! * dim;
    const ob = ib[i]! * dim;
    for (let j = 0; j < dim; j++) {
      const t = c * (emb[oa + j]! - emb[ob + j]!);
      gEmb[oa + j]! += t;
      gEmb[ob + j]! -= t;
    }
  }
}
