import type { Tensor2D } from '../tensor.ts';
import type { Rng } from '../rng.ts';
import type { NamedTensor, TensorSpec } from './weights.ts';

/** Supplies dropout masks (already scaled by 1/(1 − rate)) of a given shape, or null outside training. */
export type DropoutMasks = (rows: number, cols: number, rate: number) => Tensor2D;

/**
 * One layer of a base network, as data: the engines (src/engine) run it. Layers with weights
 * (dense, convReluPool) take the next two weights in weightSpecs() order, kernel then bias.
 */
export type Layer =
  /** y = x·W + b, with a ReLU when relu; x [n, inputs], W [inputs, units] */
  | { readonly type: 'dense'; readonly inputs: number; readonly units: number; readonly relu: boolean }
  /** rows [n, height·width·channels] viewed as images [n, height, width, channels] (NHWC) */
  | { readonly type: 'image'; readonly height: number; readonly width: number; readonly channels: number }
  /** maxPool2x2(relu(conv_kxk_valid(x, W) + b)), W [k, k, cIn, filters]; inputGradient false for the first block */
  | { readonly type: 'convReluPool'; readonly kernelSize: number; readonly filters: number; readonly inputGradient: boolean }
  /** images back to rows [n, features] */
  | { readonly type: 'flatten'; readonly features: number }
  /** inverted dropout on rows, training only (rate > 0) */
  | { readonly type: 'dropout'; readonly rate: number };

/**
 * A base network G(x): images [n, inputSize] in [0, 1] to embeddings [n, embeddingDim], described
 * as data (its layers and weights); engine/forward.ts's applyNetwork runs it on TF.js, the native
 * engine runs MLPs.
 */
export interface BaseNetwork {
  readonly kind: 'mlp' | 'cnn';
  readonly inputSize: number;
  readonly embeddingDim: number;
  /** the config that rebuilds it, recorded in manifests */
  readonly config: Readonly<Record<string, number | string | number[]>>;
  /** the layers, input to embedding */
  readonly layers: readonly Layer[];
  /** names and shapes of the weights, in order */
  weightSpecs(): TensorSpec[];
  /** fresh weights: Glorot-uniform kernels, zero biases (Keras' defaults) */
  initWeights(rng: Rng): NamedTensor[];
}

/** Glorot (Xavier) uniform: U(−l, l), l = sqrt(6 / (fanIn + fanOut)). */
export function glorotUniform(rng: Rng, fanIn: number, fanOut: number, size: number): Float32Array {
  const limit = Math.sqrt(6 / (fanIn + fanOut));
  const out = new Float32Array(size);
  for (let i = 0; i < size; i++) out[i] = (2 * rng.next() - 1) * limit;
  return out;
}
