import type * as tf from '@tensorflow/tfjs-core';
import type { Rng } from '../rng.ts';
import type { NamedTensor, TensorSpec } from './weights.ts';

/** Supplies dropout masks (already scaled by 1/(1 − rate)) of a given shape, or null outside training. */
export type DropoutMasks = (rows: number, cols: number, rate: number) => tf.Tensor2D;

/** A base network G(x): images [n, inputSize] in [0, 1] to embeddings [n, embeddingDim]. */
export interface BaseNetwork {
  readonly kind: 'mlp' | 'cnn';
  readonly inputSize: number;
  readonly embeddingDim: number;
  /** the config that rebuilds it, recorded in manifests */
  readonly config: Readonly<Record<string, number | string | number[]>>;
  /** names and shapes of the weights, in order */
  weightSpecs(): TensorSpec[];
  /** fresh weights: Glorot-uniform kernels, zero biases (Keras' defaults) */
  initWeights(rng: Rng): NamedTensor[];
  /** forward pass over weight tensors in weightSpecs() order; dropout only when masks are given */
  apply(x: tf.Tensor2D, weights: readonly tf.Tensor[], dropout: DropoutMasks | null): tf.Tensor2D;
}

/** Glorot (Xavier) uniform: U(−l, l), l = sqrt(6 / (fanIn + fanOut)). */
export function glorotUniform(rng: Rng, fanIn: number, fanOut: number, size: number): Float32Array {
  const limit = Math.sqrt(6 / (fanIn + fanOut));
  const out = new Float32Array(size);
  for (let i = 0; i < size; i++) out[i] = (2 * rng.next() - 1) * limit;
  return out;
}
