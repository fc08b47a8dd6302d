import * as tf from '@tensorflow/tfjs-core';
import { type ImageSplit, type Dataset, classCount, imagesAsFloat } from '../data/dataset.ts';
import { makePairs, makeRandomTriplets, type PairSet, permutePairs, slicePairs } from '../data/pairs.ts';
import { gatherRows } from '../engine/gather.ts';
import { createOptimizer, type Optimizer } from '../engine/optimizers.ts';
import { TrainingError, UsageError } from '../errors.ts';
import { createLoss } from '../losses/registry.ts';
import { classBalancedBatches, createMiner, type Miner } from '../mining/index.ts';
import type { Loss } from '../losses/types.ts';
import { buildNetwork } from '../model/build.ts';
import { rngDropout } from '../model/dropout.ts';
import type { BaseNetwork } from '../model/network.ts';
import { pairDistance, pairDistancesHost } from '../model/siamese.ts';
import type { NamedTensor } from '../model/weights.ts';
import { Rng, type RngState } from '../rng.ts';
import type { TrainConfig } from './config.ts';

/** One line of the epoch log (written as JSON lines into the run directory). */
export interface EpochLog {
  epoch: number;
  loss: number;
  /** running accuracy over the epoch's training batches (dropout on), D < threshold */
  trainAccuracy: number;
  testAccuracy: number;
  seconds: number;
  pairsPerSecond: number;
  /** with a miner: mean tuples kept per batch */
  minedPerBatch?: number;
}

/** Progress of one batch, for progress bars; return false from the callback to stop the epoch. */
export interface BatchInfo {
  epoch: number;
  batch: number;
  batches: number;
  loss: number;
  pairsPerSecond: number;
}

/** Everything needed to continue a run exactly where it stopped. */
export interface TrainState {
  epoch: number;
  weights: NamedTensor[];
  optimizer: NamedTensor[];
  rng: { shuffle: RngState; dropout: RngState };
  history: EpochLog[];
}

export interface EvalResult {
  /** test pair distances, in test pair order */
  distances: Float32Array;
  labels: Uint8Array;
  accuracy: number;
}

/**
 * A training run of a Siamese network: data, pairs, model, loss and optimizer, stepped epoch by
 * epoch. The library's training loop: it returns its history and never prints.
 */
export class Training {
  readonly config: TrainConfig;
  readonly network: BaseNetwork;
  readonly loss: Loss;
  readonly dataset: Dataset;
  readonly trainPairs: PairSet;
  readonly testPairs: PairSet;
  readonly numClasses: number;
  private readonly vars: tf.Variable[];
  private readonly optimizer: Optimizer;
  private readonly miner: Miner | null;
  private shuffleRng: Rng;
  private dropoutRng: Rng;
  private epochsDone = 0;
  readonly history: EpochLog[] = [];

  /**
   * @param initialWeights start from these (the seed's --reset_weights); otherwise fresh
   *   Glorot-uniform weights from the run seed.
   */
  constructor(dataset: Dataset, config: TrainConfig, initialWeights?: readonly NamedTensor[]) {
    this.config = config;
    this.dataset = dataset;
    this.loss = createLoss(config.loss, config.lossParams);
    this.network = buildNetwork(config, dataset.train.height, dataset.train.width, dataset.train.channels);
    this.numClasses = classCount(dataset.train.labels);
    this.miner = null;
    if (config.miner) {
      const margin = this.loss.params['margin'];
      this.miner = createMiner(config.miner, {
        margin: typeof margin === 'number' ? margin : undefined,
        squared: this.loss.kind === 'triplet' ? this.loss.params['squared'] !== 'false' : false,
      });
      if (this.miner.kind !== this.loss.kind) {
        throw new UsageError(`miner "${config.miner}" yields ${this.miner.kind}s, but loss "${config.loss}" needs ${this.loss.kind}s`);
      }
    }
    // Separate streams, so that e.g. changing the loss never changes the pair order or init.
    const root = new Rng(config.seed);
    const initRng = root.fork();
    this.shuffleRng = root.fork();
    this.dropoutRng = root.fork();
    const pairRng = new Rng(config.pairSeed);
    const train = makePairs(dataset.train.labels, this.numClasses, pairRng.fork());
    const test = makePairs(dataset.test.labels, classCount(dataset.test.labels), pairRng.fork());
    this.trainPairs = config.trainPairs > 0 ? slicePairs(train, config.trainPairs) : train;
    this.testPairs = config.testPairs > 0 ? slicePairs(test, config.testPairs) : test;
    const weights = initialWeights ? checkWeights(this.network, initialWeights) : this.network.initWeights(initRng);
    this.vars = weights.map((w) => tf.variable(tf.tensor(w.data, w.shape), true, `${w.name}`));
    this.optimizer = createOptimizer(config.optimizer, { learningRate: config.learningRate });
  }

  get epoch(): number {
    return this.epochsDone;
  }

  getWeights(): NamedTensor[] {
    const specs = this.network.weightSpecs();
    return this.vars.map((v, i) => ({ name: specs[i]!.name, shape: [...v.shape], data: v.dataSync() as Float32Array }));
  }

  getState(): TrainState {
    return {
      epoch: this.epochsDone,
      weights: this.getWeights(),
      optimizer: this.optimizer.getState(),
      rng: { shuffle: this.shuffleRng.getState(), dropout: this.dropoutRng.getState() },
      history: this.history.map((h) => ({ ...h })),
    };
  }

  setState(s: TrainState): void {
    const w = checkWeights(this.network, s.weights);
    w.forEach((t, i) => this.vars[i]!.assign(tf.tensor(t.data, t.shape)));
    this.optimizer.setState(s.optimizer);
    this.shuffleRng.setState(s.rng.shuffle);
    this.dropoutRng.setState(s.rng.dropout);
    this.epochsDone = s.epoch;
    this.history.length = 0;
    this.history.push(...s.history);
  }

  /** Train one epoch; the callback sees each batch and may return false to stop early (no log then). */
  runEpoch(onBatch?: (info: BatchInfo) => boolean | void): EpochLog | null {
    const epoch = this.epochsDone + 1;
    const t0 = performance.now();
    const plan = this.epochPlan();
    let lossSum = 0;
    let correct = 0;
    let seen = 0;
    let minedSum = 0;
    for (let b = 0; b < plan.batches; b++) {
      const r = plan.step(b);
      if (!Number.isFinite(r.loss)) {
        throw new TrainingError(
          `training diverged: the loss became ${r.loss} at epoch ${epoch}, batch ${b + 1}` +
            ` (loss ${this.config.loss}, learning rate ${this.optimizer.config['learningRate']}); try a lower --lr`,
        );
      }
      lossSum += r.loss * r.count;
      correct += r.correct;
      seen += r.count;
      minedSum += r.mined ?? 0;
      if (onBatch) {
        const secs = (performance.now() - t0) / 1000;
        const go = onBatch({ epoch, batch: b + 1, batches: plan.batches, loss: lossSum / seen, pairsPerSecond: seen / secs });
        if (go === false) return null;
      }
    }
    this.checkWeightsFinite(epoch);
    const trainSeconds = (performance.now() - t0) / 1000;
    const evalRes = this.evaluate();
    const log: EpochLog = {
      epoch,
      loss: lossSum / seen,
      trainAccuracy: correct / seen,
      testAccuracy: evalRes.accuracy,
      seconds: (performance.now() - t0) / 1000,
      pairsPerSecond: seen / trainSeconds,
    };
    if (this.config.miner) log.minedPerBatch = minedSum / plan.batches;
    this.history.push(log);
    this.epochsDone = epoch;
    return log;
  }

  /** Embeddings of images (no dropout), [indices.length, embeddingDim]. */
  embed(split: ImageSplit, indices?: ArrayLike<number>, chunk = 2000): Float32Array {
    const idx = indices ?? Int32Array.from({ length: split.n }, (_, i) => i);
    const dim = this.network.embeddingDim;
    const out = new Float32Array(idx.length * dim);
    const inSize = this.network.inputSize;
    const buf = new Float32Array(Math.min(chunk, idx.length) * inSize);
    for (let s = 0; s < idx.length; s += chunk) {
      const e = Math.min(idx.length, s + chunk);
      const part = Array.prototype.slice.call(idx, s, e) as number[];
      const x = imagesAsFloat(split, part, buf.subarray(0, (e - s) * inSize));
      const emb = tf.tidy(() => this.network.apply(tf.tensor2d(x, [e - s, inSize]), this.vars, null));
      out.set(emb.dataSync(), s * dim);
      emb.dispose();
    }
    return out;
  }

  /** Test pair distances and accuracy at the configured threshold. */
  evaluate(pairs: PairSet = this.testPairs, split: ImageSplit = this.dataset.test, embeddings?: Float32Array): EvalResult {
    const emb = embeddings ?? this.embed(split);
    const distances = pairDistancesHost(emb, this.network.embeddingDim, pairs.a, pairs.b);
    let correct = 0;
    for (let i = 0; i < pairs.length; i++) if ((distances[i]! < this.config.threshold ? 1 : 0) === pairs.y[i]) correct++;
    return { distances, labels: pairs.y, accuracy: correct / pairs.length };
  }

  dispose(): void {
    this.vars.forEach((v) => v.dispose());
    this.optimizer.dispose();
  }

  /** The batches of one epoch and the function that trains on batch b. */
  private epochPlan(): { batches: number; step: (b: number) => StepResult } {
    const bs = this.config.batchSize;
    if (this.miner) {
      const labels = this.dataset.train.labels;
      const perClass = this.config.perClass > 0 ? this.config.perClass : Math.max(2, Math.floor(bs / this.numClasses));
      const classes = Math.max(2, Math.min(this.numClasses, Math.floor(bs / perClass)));
      const batches = classBalancedBatches(labels, perClass, classes, this.shuffleRng);
      return { batches: batches.length, step: (b) => this.minedStep(batches[b]!) };
    }
    if (this.loss.kind === 'pair') {
      const perm = this.shuffleRng.shuffle(Int32Array.from({ length: this.trainPairs.length }, (_, i) => i));
      const pairs = permutePairs(this.trainPairs, perm);
      const batches = Math.ceil(pairs.length / bs);
      return { batches, step: (b) => this.pairStep(pairs, b * bs, Math.min(pairs.length, (b + 1) * bs)) };
    }
    const trip = makeRandomTriplets(this.dataset.train.labels, this.numClasses, this.shuffleRng);
    const batches = Math.ceil(trip.length / bs);
    return { batches, step: (b) => this.tripletStep(trip, b * bs, Math.min(trip.length, (b + 1) * bs)) };
  }

  private pairStep(p: PairSet, s: number, e: number): StepResult {
    const n = e - s;
    const split = this.dataset.train;
    const inSize = this.network.inputSize;
    const x = new Float32Array(2 * n * inSize);
    imagesAsFloat(split, p.a.subarray(s, e), x.subarray(0, n * inSize));
    imagesAsFloat(split, p.b.subarray(s, e), x.subarray(n * inSize));
    const yArr = new Float32Array(n);
    for (let i = 0; i < n; i++) yArr[i] = p.y[s + i]!;
    const loss = this.loss;
    if (loss.kind !== 'pair') throw new Error('pairStep needs a pair loss');
    const dropout = rngDropout(this.dropoutRng);
    let dist: tf.Tensor1D | null = null;
    const { value, grads } = tf.tidy(() => {
      const xt = tf.tensor2d(x, [2 * n, inSize]);
      const yt = tf.tensor1d(yArr);
      return tf.variableGrads(() => {
        // Both sides through the base in one pass: one larger matMul is cheaper than two.
        const emb = this.network.apply(xt, this.vars, dropout);
        const d = pairDistance(tf.slice(emb, [0, 0], [n, -1]), tf.slice(emb, [n, 0], [n, -1]));
        dist = tf.keep(d);
        return tf.mean(loss.perPair(d, yt)) as tf.Scalar;
      }, this.vars);
    });
    this.optimizer.apply(this.vars, this.vars.map((v) => grads[v.name]!));
    const lossVal = value.dataSync()[0]!;
    const dv = (dist as tf.Tensor1D | null)!.dataSync();
    let correct = 0;
    for (let i = 0; i < n; i++) if ((dv[i]! < this.config.threshold ? 1 : 0) === p.y[s + i]) correct++;
    value.dispose();
    (dist as tf.Tensor1D | null)!.dispose();
    tf.dispose(grads);
    return { loss: lossVal, count: n, correct };
  }

  private tripletStep(t: { anchors: Int32Array; positives: Int32Array; negatives: Int32Array }, s: number, e: number): StepResult {
    const n = e - s;
    const split = this.dataset.train;
    const inSize = this.network.inputSize;
    const x = new Float32Array(3 * n * inSize);
    imagesAsFloat(split, t.anchors.subarray(s, e), x.subarray(0, n * inSize));
    imagesAsFloat(split, t.positives.subarray(s, e), x.subarray(n * inSize, 2 * n * inSize));
    imagesAsFloat(split, t.negatives.subarray(s, e), x.subarray(2 * n * inSize));
    const loss = this.loss;
    if (loss.kind !== 'triplet') throw new Error('tripletStep needs a triplet loss');
    const dropout = rngDropout(this.dropoutRng);
    let dists: tf.Tensor1D[] = [];
    const { value, grads } = tf.tidy(() => {
      const xt = tf.tensor2d(x, [3 * n, inSize]);
      return tf.variableGrads(() => {
        const emb = this.network.apply(xt, this.vars, dropout);
        const a = tf.slice(emb, [0, 0], [n, -1]);
        const dap = pairDistance(a, tf.slice(emb, [n, 0], [n, -1]));
        const dan = pairDistance(a, tf.slice(emb, [2 * n, 0], [n, -1]));
        dists = [tf.keep(dap), tf.keep(dan)];
        return tf.mean(loss.perTriplet(dap, dan)) as tf.Scalar;
      }, this.vars);
    });
    this.optimizer.apply(this.vars, this.vars.map((v) => grads[v.name]!));
    const lossVal = value.dataSync()[0]!;
    // A triplet is two pairs: (a, p) same, (a, n) different; accuracy counts both.
    const dap = dists[0]!.dataSync();
    const dan = dists[1]!.dataSync();
    let correct = 0;
    for (let i = 0; i < n; i++) {
      if (dap[i]! < this.config.threshold) correct++;
      if (dan[i]! >= this.config.threshold) correct++;
    }
    value.dispose();
    tf.dispose(dists);
    tf.dispose(grads);
    return { loss: lossVal, count: n, correct: correct / 2 };
  }

  /** One class-balanced batch of images: embed, mine tuples from the batch, train on them. */
  private minedStep(batch: Int32Array): StepResult {
    const n = batch.length;
    const inSize = this.network.inputSize;
    const x = imagesAsFloat(this.dataset.train, batch);
    const labels = new Int32Array(n);
    for (let i = 0; i < n; i++) labels[i] = this.dataset.train.labels[batch[i]!]!;
    const miner = this.miner!;
    const loss = this.loss;
    const dim = this.network.embeddingDim;
    const dropout = rngDropout(this.dropoutRng);
    let kept = 0;
    let correct = 0;
    let count = 0;
    const { value, grads } = tf.tidy(() => {
      const xt = tf.tensor2d(x, [n, inSize]);
      return tf.variableGrads(() => {
        const emb = this.network.apply(xt, this.vars, dropout);
        // Mining reads the batch's embeddings (with this step's dropout) on the host.
        const host = emb.dataSync() as Float32Array;
        const th = this.config.threshold;
        if (miner.kind === 'triplet' && loss.kind === 'triplet') {
          const { indices } = miner.mine(host, dim, labels);
          kept = indices.anchors.length;
          if (kept === 0) return tf.mul(tf.sum(emb), 0) as tf.Scalar;
          const a = gatherRows(emb, indices.anchors);
          const dap = pairDistance(a, gatherRows(emb, indices.positives));
          const dan = pairDistance(a, gatherRows(emb, indices.negatives));
          const dp = dap.dataSync();
          const dn = dan.dataSync();
          for (let i = 0; i < kept; i++) correct += (dp[i]! < th ? 1 : 0) + (dn[i]! >= th ? 1 : 0);
          count = 2 * kept;
          return tf.mean(loss.perTriplet(dap, dan)) as tf.Scalar;
        }
        if (miner.kind === 'pair' && loss.kind === 'pair') {
          const { indices } = miner.mine(host, dim, labels);
          kept = indices.a.length;
          if (kept === 0) return tf.mul(tf.sum(emb), 0) as tf.Scalar;
          const d = pairDistance(gatherRows(emb, indices.a), gatherRows(emb, indices.b));
          const dv = d.dataSync();
          for (let i = 0; i < kept; i++) correct += (dv[i]! < th ? 1 : 0) === indices.y[i] ? 1 : 0;
          count = kept;
          return tf.mean(loss.perPair(d, tf.tensor1d(Float32Array.from(indices.y)))) as tf.Scalar;
        }
        throw new Error('miner and loss kinds differ');
      }, this.vars);
    });
    if (kept > 0) this.optimizer.apply(this.vars, this.vars.map((v) => grads[v.name]!));
    const lossVal = value.dataSync()[0]!;
    value.dispose();
    tf.dispose(grads);
    // Accuracy over the mined tuples' pairs; "count" is in images for the pairs/s figure.
    return { loss: lossVal, count: n, correct: count > 0 ? (correct / count) * n : 0, mined: kept };
  }

  private checkWeightsFinite(epoch: number): void {
    const bad = tf.tidy(() => tf.addN(this.vars.map((v) => tf.sum(tf.cast(tf.logicalNot(tf.isFinite(v)), 'float32')))).dataSync()[0]!);
    if (bad > 0) {
      throw new TrainingError(`training diverged: ${bad} weights became NaN or Inf in epoch ${epoch}; try a lower --lr`);
    }
  }
}

interface StepResult {
  loss: number;
  count: number;
  correct: number;
  mined?: number;
}

/** Weights must match the network's names' order and shapes exactly. */
export function checkWeights(net: BaseNetwork, weights: readonly NamedTensor[]): NamedTensor[] {
  const specs = net.weightSpecs();
  if (weights.length !== specs.length) {
    throw new UsageError(`the weights hold ${weights.length} tensors, the ${net.kind} base network needs ${specs.length}`);
  }
  specs.forEach((s, i) => {
    const w = weights[i]!;
    if (w.shape.join(',') !== s.shape.join(',')) {
      throw new UsageError(`weight ${s.name}: expected shape [${s.shape.join(',')}], found [${w.shape.join(',')}] (${w.name})`);
    }
  });
  return [...weights];
}
