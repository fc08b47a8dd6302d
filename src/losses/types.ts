import type { Tensor1D } from '../tensor.ts';
import type { BatchLoss } from './batch.ts';

export type { BatchLoss } from './batch.ts';

/**
 * A pair loss maps distances D (>= 0) and labels Y (1 = same class, 0 = different) to one loss
 * per pair. It is a pair of potentials: L = Y * pos(D) + (1 - Y) * neg(D).
 * `perPair` is the engine form (differentiable tensors); `pos`/`neg` are the same potentials
 * as plain scalar functions, for plots and tests.
 */
export interface PairLoss {
  readonly kind: 'pair';
  /** registry name, e.g. "yukawa" */
  readonly name: string;
  /** human-readable formula, e.g. "Y·D³ + (1−Y)·exp(−10D)/D" */
  readonly formula: string;
  /** the resolved parameters (defaults filled in), recorded in manifests */
  readonly params: Readonly<Record<string, number | string>>;
  perPair(d: Tensor1D, y: Tensor1D): Tensor1D;
  pos(d: number): number;
  neg(d: number): number;
}

/**
 * A triplet loss maps anchor-positive and anchor-negative distances to one loss per triplet.
 * For plotting, `pos(d)` is the loss as a function of D_ap with D_an = 1 held, and `neg(d)` the
 * loss as a function of D_an with D_ap = 0 held.
 */
export interface TripletLoss {
  readonly kind: 'triplet';
  readonly name: string;
  readonly formula: string;
  readonly params: Readonly<Record<string, number | string>>;
  perTriplet(dap: Tensor1D, dan: Tensor1D): Tensor1D;
  /** scalar form, for tests and plots */
  value(dap: number, dan: number): number;
  pos(d: number): number;
  neg(d: number): number;
}

/** Pair and triplet losses see tuples of distances; batch losses a whole labelled batch (batch.ts). */
export type Loss = PairLoss | TripletLoss | BatchLoss;

/**
 * Whether a run trained with this loss gives out L2-normalised embeddings. The batch losses
 * compare cosines of normalised embeddings, so for them every embedding a run gives out (its
 * measures, `embed`, `predict`, the ONNX model) is divided by its length, floored at
 * NORM_EPSILON (batch.ts), as the loss saw it.
 */
export function normalisesEmbeddings(loss: Loss): boolean {
  return loss.kind === 'batch';
}

/** Distances below this are clamped where a potential is singular (1/D, log D, sqrt). */
export const DISTANCE_EPSILON = 1e-7;
