/**
 * The training engine interface: what the training loop asks of a numeric engine, one batch at
 * a time. Two engines implement it:
 *   - `tfjs`   (tfjsEngine.ts): the reference, everything in TF.js (wasm backend) on one tape;
 *   - `native` (nativeEngine.ts): the base network in the native addon's SIMD kernels on all
 *     cores, the loss and the miners unchanged on the host.
 * Both draw dropout masks from the same Rng in the same order, so with the same weights and
 * the same batch they compute the same loss and gradients (to float32 rounding).
 */
import type { ImageSplit } from '../data/dataset.ts';
import type { Loss } from '../losses/types.ts';
import type { Miner } from '../mining/index.ts';
import type { BaseNetwork } from '../model/network.ts';
import type { NamedTensor } from '../model/weights.ts';
import type { OptimizerOptions } from './optimizers.ts';
import type { Rng } from '../rng.ts';

export type EngineName = 'tfjs' | 'native';
export type EngineChoice = EngineName | 'auto';

/** One training batch, as image indices into a split. */
export type Batch =
  /** pairs (rows[i], rows[n + i]) with labels y[i] (1 = same class) */
  | { kind: 'pairs'; rows: Int32Array; y: Uint8Array }
  /** triplets (rows[i], rows[n + i], rows[2n + i]): anchor, positive, negative */
  | { kind: 'triplets'; rows: Int32Array }
  /** a class-balanced batch of images, mined for tuples on its embeddings */
  | { kind: 'mined'; rows: Int32Array; labels: Int32Array; miner: Miner }
  /**
   * a batch of images whose loss the host computes from their embeddings (batch losses): `tail`
   * gets the [rows, embeddingDim] embeddings (read during the call only) and returns the loss
   * and dL/d(embeddings), which the engine backpropagates
   */
  | { kind: 'embedding'; rows: Int32Array; tail: EmbeddingTail };

/** The host part of an embedding step: loss and gradient of a batch of embeddings. */
export type EmbeddingTail = (emb: Float32Array) => { loss: number; grad: Float32Array };

/** What one training step reports; distances are of the pairs the loss saw (an engine may reuse their arrays at its next step). */
export interface StepOutput {
  loss: number;
  /** pair steps and mined pair steps: distance and label of each pair */
  d?: Float32Array;
  y?: Uint8Array;
  /** triplet steps and mined triplet steps */
  dap?: Float32Array;
  dan?: Float32Array;
  /** mined steps: tuples the miner kept (no update when 0) */
  kept?: number;
}

export interface TrainEngine {
  readonly name: EngineName;
  /** threads the engine computes on (1 for tfjs) */
  readonly threads: number;
  /** a short description for manifests and benchmarks */
  readonly detail: string;
  /**
   * one training step: forward with dropout, loss, gradients, optimizer update. `next`, when
   * given, holds the next step's rows (read during this call only): an engine may start on
   * them early; results do not depend on it.
   */
  step(split: ImageSplit, batch: Batch, dropout: Rng, next?: Int32Array): StepOutput;
  /** embeddings without dropout, [indices.length, embeddingDim] */
  embed(split: ImageSplit, indices: ArrayLike<number>): Float32Array;
  getWeights(): NamedTensor[];
  setWeights(weights: readonly NamedTensor[]): void;
  getOptimizerState(): NamedTensor[];
  setOptimizerState(state: readonly NamedTensor[]): void;
  /** the learning rate and the other settings the optimizer runs with */
  readonly optimizerConfig: Readonly<Record<string, number | boolean | string>>;
  /** weights that are NaN or infinite */
  nonFiniteWeights(): number;
  /** gradients of the last step, in weight order (only when created with keepGradients) */
  lastGradients(): NamedTensor[] | null;
  dispose(): void;
}

/** What every engine is built from: the network, its loss, starting weights and optimizer. */
export interface EngineSetup {
  network: BaseNetwork;
  loss: Loss;
  weights: readonly NamedTensor[];
  optimizer: string;
  learningRate?: number;
  /** momentum, rho, betas, ... beyond the learning rate (defaults: Keras') */
  optimizerOptions?: OptimizerOptions;
  keepGradients?: boolean;
}

export interface EngineOptions {
  /** threads for the native engine; 0 = every core */
  threads?: number;
  /** keep a host copy of every step's gradients (tests) */
  keepGradients?: boolean;
}
