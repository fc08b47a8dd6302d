/**
 * The reference engine: the whole step in TF.js (wasm backend) on one gradient tape — base
 * network, distances, loss, miners' gathers — and the optimizers of optimizers.ts.
 */
import * as tf from '@tensorflow/tfjs-core';
import { type ImageSplit, imagesAsFloat } from '../data/dataset.ts';
import type { Loss } from '../losses/types.ts';
import type { Miner } from '../mining/index.ts';
import { rngDropout } from '../model/dropout.ts';
import type { BaseNetwork } from '../model/network.ts';
import { pairDistance } from './distance.ts';
import type { NamedTensor } from '../model/weights.ts';
import type { Rng } from '../rng.ts';
import type { Batch, EmbeddingTail, EngineSetup, StepOutput, TrainEngine } from './engine.ts';
import { applyNetwork } from './forward.ts';
import { gatherRows } from './gather.ts';
import { createOptimizer, type Optimizer } from './optimizers.ts';

export interface TfjsEngineOptions extends EngineSetup {
  /** rows per forward pass when embedding */
  embedChunk?: number;
}

export class TfjsEngine implements TrainEngine {
  readonly name = 'tfjs' as const;
  readonly threads = 1;
  readonly detail: string;
  private readonly network: BaseNetwork;
  private readonly loss: Loss;
  private readonly vars: tf.Variable[];
  private readonly optimizer: Optimizer;
  private readonly keepGradients: boolean;
  private readonly embedChunk: number;
  private grads: NamedTensor[] | null = null;

  constructor(o: TfjsEngineOptions) {
    this.network = o.network;
    this.loss = o.loss;
    this.optimizer = createOptimizer(o.optimizer, { ...o.optimizerOptions, ...(o.learningRate !== undefined ? { learningRate: o.learningRate } : {}) });
    // unnamed variables: several trainings may live in one process
    this.vars = o.weights.map((w) => tf.variable(tf.tensor(w.data, w.shape), true));
    this.keepGradients = o.keepGradients ?? false;
    this.embedChunk = o.embedChunk ?? 2000;
    this.detail = `TF.js ${tf.getBackend()} backend`;
  }

  get optimizerConfig(): Readonly<Record<string, number | boolean | string>> {
    return this.optimizer.config;
  }

  step(split: ImageSplit, batch: Batch, dropout: Rng): StepOutput {
    switch (batch.kind) {
      case 'pairs':
        return this.pairStep(split, batch.rows, batch.y, dropout);
      case 'triplets':
        return this.tripletStep(split, batch.rows, dropout);
      case 'mined':
        return this.minedStep(split, batch.rows, batch.labels, batch.miner, dropout);
      case 'embedding':
        return this.embeddingStep(split, batch.rows, batch.tail, dropout);
    }
  }

  private apply(grads: tf.NamedTensorMap): void {
    const g = this.vars.map((v) => grads[v.name]!);
    if (this.keepGradients) this.grads = this.named(g.map((t) => t.dataSync() as Float32Array));
    this.optimizer.apply(this.vars, g);
  }

  private named(data: Float32Array[]): NamedTensor[] {
    const specs = this.network.weightSpecs();
    return data.map((d, i) => ({ name: specs[i]!.name, shape: [...specs[i]!.shape], data: d.slice() }));
  }

  private pairStep(split: ImageSplit, rows: Int32Array, y: Uint8Array, dropoutRng: Rng): StepOutput {
    const n = y.length;
    const inSize = this.network.inputSize;
    const x = imagesAsFloat(split, rows);
    const yArr = Float32Array.from(y);
    const loss = this.loss;
    if (loss.kind !== 'pair') throw new Error('a pair batch needs a pair loss');
    const dropout = rngDropout(dropoutRng);
    let dist: tf.Tensor1D | null = null;
    const { value, grads } = tf.tidy(() => {
      const xt = tf.tensor2d(x, [2 * n, inSize]);
      const yt = tf.tensor1d(yArr);
      return tf.variableGrads(() => {
        // Both sides through the base in one pass: one larger matMul is cheaper than two.
        const emb = applyNetwork(this.network, xt, this.vars, dropout);
        const d = pairDistance(tf.slice(emb, [0, 0], [n, -1]), tf.slice(emb, [n, 0], [n, -1]));
        dist = tf.keep(d);
        return tf.mean(loss.perPair(d, yt) as tf.Tensor1D) as tf.Scalar;
      }, this.vars);
    });
    this.apply(grads);
    const lossVal = value.dataSync()[0]!;
    const d = (dist as tf.Tensor1D | null)!.dataSync() as Float32Array;
    value.dispose();
    (dist as tf.Tensor1D | null)!.dispose();
    tf.dispose(grads);
    return { loss: lossVal, d, y };
  }

  private tripletStep(split: ImageSplit, rows: Int32Array, dropoutRng: Rng): StepOutput {
    const n = rows.length / 3;
    const inSize = this.network.inputSize;
    const x = imagesAsFloat(split, rows);
    const loss = this.loss;
    if (loss.kind !== 'triplet') throw new Error('a triplet batch needs a triplet loss');
    const dropout = rngDropout(dropoutRng);
    let dists: tf.Tensor1D[] = [];
    const { value, grads } = tf.tidy(() => {
      const xt = tf.tensor2d(x, [3 * n, inSize]);
      return tf.variableGrads(() => {
        const emb = applyNetwork(this.network, xt, this.vars, dropout);
        const a = tf.slice(emb, [0, 0], [n, -1]);
        const dap = pairDistance(a, tf.slice(emb, [n, 0], [n, -1]));
        const dan = pairDistance(a, tf.slice(emb, [2 * n, 0], [n, -1]));
        dists = [tf.keep(dap), tf.keep(dan)];
        return tf.mean(loss.perTriplet(dap, dan) as tf.Tensor1D) as tf.Scalar;
      }, this.vars);
    });
    this.apply(grads);
    const lossVal = value.dataSync()[0]!;
    const dap = dists[0]!.dataSync() as Float32Array;
    const dan = dists[1]!.dataSync() as Float32Array;
    value.dispose();
    tf.dispose(dists);
    tf.dispose(grads);
    return { loss: lossVal, dap, dan };
  }

  /** One class-balanced batch of images: embed, mine tuples from the batch, train on them. */
  private minedStep(split: ImageSplit, rows: Int32Array, labels: Int32Array, miner: Miner, dropoutRng: Rng): StepOutput {
    const n = rows.length;
    const inSize = this.network.inputSize;
    const x = imagesAsFloat(split, rows);
    const loss = this.loss;
    const dim = this.network.embeddingDim;
    const dropout = rngDropout(dropoutRng);
    let kept = 0;
    const out: StepOutput = { loss: 0 };
    const { value, grads } = tf.tidy(() => {
      const xt = tf.tensor2d(x, [n, inSize]);
      return tf.variableGrads(() => {
        const emb = applyNetwork(this.network, xt, this.vars, dropout);
        // Mining reads the batch's embeddings (with this step's dropout) on the host.
        const host = emb.dataSync() as Float32Array;
        if (miner.kind === 'triplet' && loss.kind === 'triplet') {
          const { indices } = miner.mine(host, dim, labels);
          kept = indices.anchors.length;
          if (kept === 0) return tf.mul(tf.sum(emb), 0) as tf.Scalar;
          const a = gatherRows(emb, indices.anchors);
          const dap = pairDistance(a, gatherRows(emb, indices.positives));
          const dan = pairDistance(a, gatherRows(emb, indices.negatives));
          out.dap = dap.dataSync() as Float32Array;
          out.dan = dan.dataSync() as Float32Array;
          return tf.mean(loss.perTriplet(dap, dan) as tf.Tensor1D) as tf.Scalar;
        }
        if (miner.kind === 'pair' && loss.kind === 'pair') {
          const { indices } = miner.mine(host, dim, labels);
          kept = indices.a.length;
          if (kept === 0) return tf.mul(tf.sum(emb), 0) as tf.Scalar;
          const d = pairDistance(gatherRows(emb, indices.a), gatherRows(emb, indices.b));
          out.d = d.dataSync() as Float32Array;
          out.y = indices.y;
          return tf.mean(loss.perPair(d, tf.tensor1d(Float32Array.from(indices.y))) as tf.Tensor1D) as tf.Scalar;
        }
        throw new Error('miner and loss kinds differ');
      }, this.vars);
    });
    if (kept > 0) this.apply(grads);
    else if (this.keepGradients) this.grads = this.named(this.vars.map((v) => new Float32Array(v.size)));
    out.loss = value.dataSync()[0]!;
    out.kept = kept;
    value.dispose();
    tf.dispose(grads);
    return out;
  }

  /**
   * A batch whose loss the host computes: on the tape, Σ emb ⊙ G with G = dL/d(emb) from the
   * host has the gradient G, so the weights get exactly dL/dW; the loss reported is the host's.
   */
  private embeddingStep(split: ImageSplit, rows: Int32Array, tail: EmbeddingTail, dropoutRng: Rng): StepOutput {
    const n = rows.length;
    const inSize = this.network.inputSize;
    const x = imagesAsFloat(split, rows);
    const dropout = rngDropout(dropoutRng);
    let loss = 0;
    const { value, grads } = tf.tidy(() => {
      const xt = tf.tensor2d(x, [n, inSize]);
      return tf.variableGrads(() => {
        const emb = applyNetwork(this.network, xt, this.vars, dropout);
        const r = tail(emb.dataSync() as Float32Array);
        loss = r.loss;
        return tf.sum(tf.mul(emb, tf.tensor(r.grad, emb.shape))) as tf.Scalar;
      }, this.vars);
    });
    this.apply(grads);
    value.dispose();
    tf.dispose(grads);
    return { loss };
  }

  embed(split: ImageSplit, indices: ArrayLike<number>): Float32Array {
    const dim = this.network.embeddingDim;
    const chunk = this.embedChunk;
    const out = new Float32Array(indices.length * dim);
    const inSize = this.network.inputSize;
    const buf = new Float32Array(Math.min(chunk, indices.length) * inSize);
    for (let s = 0; s < indices.length; s += chunk) {
      const e = Math.min(indices.length, s + chunk);
      const part = Array.prototype.slice.call(indices, s, e) as number[];
      const x = imagesAsFloat(split, part, buf.subarray(0, (e - s) * inSize));
      const emb = tf.tidy(() => applyNetwork(this.network, tf.tensor2d(x, [e - s, inSize]), this.vars, null));
      out.set(emb.dataSync(), s * dim);
      emb.dispose();
    }
    return out;
  }

  getWeights(): NamedTensor[] {
    const specs = this.network.weightSpecs();
    return this.vars.map((v, i) => ({ name: specs[i]!.name, shape: [...v.shape], data: v.dataSync() as Float32Array }));
  }

  setWeights(weights: readonly NamedTensor[]): void {
    weights.forEach((t, i) => {
      const v = tf.tensor(t.data, t.shape);
      this.vars[i]!.assign(v);
      v.dispose();
    });
  }

  getOptimizerState(): NamedTensor[] {
    return this.optimizer.getState();
  }

  setOptimizerState(state: readonly NamedTensor[]): void {
    this.optimizer.setState(state);
  }

  nonFiniteWeights(): number {
    return tf.tidy(() => tf.addN(this.vars.map((v) => tf.sum(tf.cast(tf.logicalNot(tf.isFinite(v)), 'float32')))).dataSync()[0]!);
  }

  lastGradients(): NamedTensor[] | null {
    return this.grads;
  }

  dispose(): void {
    this.vars.forEach((v) => v.dispose());
    this.optimizer.dispose();
  }
}
