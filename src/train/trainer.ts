import { type ImageSplit, type Dataset, classCount } from '../data/dataset.ts';
import { applySplit, type ClassSplit, parseSplit, resolveSplit } from '../data/split.ts';
import { makePairs, makeRandomTriplets, type PairSet, permutePairs, slicePairs } from '../data/pairs.ts';
import { backendReady } from '../engine/backend.ts';
import type { Batch, EngineName, EngineOptions, StepOutput, TrainEngine } from '../engine/engine.ts';
import { createEngine } from '../engine/select.ts';
import { DataError, TrainingError, UsageError } from '../errors.ts';
import { createLoss } from '../losses/registry.ts';
import { classBalancedBatches, createMiner, type Miner } from '../mining/index.ts';
import { type BatchLoss, type BatchLossResult, BatchWorkspace, NORM_EPSILON } from '../losses/batch.ts';
import { type Loss, normalisesEmbeddings } from '../losses/types.ts';
import { buildNetwork } from '../model/build.ts';
import type { BaseNetwork } from '../model/network.ts';
import { pairDistancesHost } from '../model/siamese.ts';
import { countNonFinite, type NamedTensor } from '../model/weights.ts';
import { Rng, type RngState } from '../rng.ts';
import { batchPairAccuracy, bestThresholdAccuracy, pairSweep } from './batchAccuracy.ts';
import { ClassWeights, PROXY_LR_FACTOR } from './classWeights.ts';
import type { TrainConfig } from './config.ts';
import { balancedShape } from './epochBatches.ts';

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
  /**
   * batch losses: the accuracies are at the best threshold (in-sample), as those losses set no
   * absolute distance scale (distances of L2-normalised embeddings)
   */
  accuracyAt?: 'best-threshold';
  /** the numeric engine that trained this epoch, and its threads */
  engine?: EngineName;
  threads?: number;
}

/**
 * Progress of one batch, for progress bars. The callback's return value is ignored: stop an epoch
 * with an AbortSignal (EpochOptions.signal), never by returning something.
 */
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
  /** arcface, cosface, proxy-anchor: class weights and their optimizer's state */
  lossState?: NamedTensor[];
}

/** How an epoch may be stopped early. */
export interface EpochOptions {
  /**
   * Checked before every batch: once aborted, the epoch stops after the batch in progress and
   * runEpoch returns null. The Training is then halfway through an epoch (weights partly
   * updated, `epoch` unchanged): it refuses to go on until setState() restores a saved state.
   */
  signal?: AbortSignal;
}

export interface AsyncEpochOptions extends EpochOptions {
  /**
   * Give the event loop a turn (signal handlers, timers, I/O) at least this often, in
   * milliseconds of training (default 20). It changes nothing in the numbers.
   */
  yieldEveryMs?: number;
}

/** Why training cannot go on: NaN/Inf, a loss exploding by orders of magnitude, or a collapsed embedding. */
export type DivergenceKind = 'non-finite' | 'exploding' | 'collapsed';

/** Training diverged or collapsed; carries what a caller needs to say how to go on. */
export class DivergenceError extends TrainingError {
  constructor(
    message: string,
    readonly kind: DivergenceKind,
    /** the epoch (1-based) in which it happened: its weights are not kept */
    readonly epoch: number,
    /** the optimizer's learning rate at the time */
    readonly learningRate: number,
  ) {
    super(message);
  }
}

/** A batch loss above this many times the run's first batch loss (at least 0.01) is an explosion. */
export const LOSS_EXPLOSION_FACTOR = 1e8;
/** Every test distance below threshold / this: the embedding has collapsed to one point. */
export const COLLAPSE_FRACTION = 1000;

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
  /** which classes train and which test (the data set above is already restricted to them) */
  readonly split: ClassSplit;
  /** the learnable class weights of arcface, cosface and proxy-anchor */
  readonly classWeights: ClassWeights | null = null;
  /** the numeric engine (tfjs or native) that runs the steps */
  readonly engine: TrainEngine;
  private readonly miner: Miner | null;
  private shuffleRng: Rng;
  private dropoutRng: Rng;
  private epochsDone = 0;
  /** an epoch was stopped halfway: the weights are neither epoch N's nor N+1's */
  private midEpoch = false;
  /** the first batch loss this object saw: the scale against which an explosion is measured */
  private firstLoss: number | undefined;
  private nextBuf = new Int32Array(0);
  private rowsBuf = new Int32Array(0);
  /**
   * the batch loss's arrays, reused batch after batch (each step reads its result before the
   * next); the accuracy from the loss's own call, the similarities only where it gave none (NaN)
   */
  private readonly batchWorkspace = new BatchWorkspace({ accuracy: true, similarities: false });
  readonly history: EpochLog[] = [];
  /** the test evaluation that ended the last epoch trained (its pair distances feed per-epoch records) */
  lastTest: (EvalResult & { epoch: number }) | undefined;

  /**
   * @param initialWeights start from these (the seed's --reset_weights); otherwise fresh
   *   Glorot-uniform weights from the run seed.
   * @param engineOptions engine settings beyond the config (tests: keepGradients)
   */
  constructor(source: Dataset, config: TrainConfig, initialWeights?: readonly NamedTensor[], engineOptions: EngineOptions = {}) {
    if (!backendReady()) {
      throw new UsageError('the TF.js backend has not started: call `await initBackend()` (from siamese-lab) before creating a Training');
    }
    this.config = config;
    this.split = resolveSplit(parseSplit(config.split ?? 'pairs'), classCount(source.train.labels));
    const dataset = applySplit(source, this.split);
    this.dataset = dataset;
    this.loss = createLoss(config.loss, config.lossParams);
    this.network = buildNetwork(config, dataset.train.height, dataset.train.width, dataset.train.channels);
    this.numClasses = classCount(dataset.train.labels);
    this.miner = null;
    if (config.miner && this.loss.kind === 'batch') {
      throw new UsageError(`loss "${config.loss}" takes whole class-balanced batches: drop --miner ${config.miner}`);
    }
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
    const classWeightsRng = root.fork(); // after the others: their streams stay as they were
    const pairRng = new Rng(config.pairSeed);
    const train = makePairs(dataset.train.labels, this.numClasses, pairRng.fork());
    const test = makePairs(dataset.test.labels, classCount(dataset.test.labels), pairRng.fork());
    this.trainPairs = config.trainPairs > 0 ? slicePairs(train, config.trainPairs) : train;
    this.testPairs = config.testPairs > 0 ? slicePairs(test, config.testPairs) : test;
    const weights = initialWeights ? checkFinite(checkWeights(this.network, initialWeights), 'the initial weights') : this.network.initWeights(initRng);
    this.engine = createEngine({
      engine: config.engine ?? 'auto',
      threads: engineOptions.threads ?? config.threads ?? 0,
      keepGradients: engineOptions.keepGradients,
      network: this.network,
      loss: this.loss,
      weights,
      optimizer: config.optimizer,
      learningRate: config.learningRate,
    });
    if (this.loss.kind === 'batch' && this.loss.classWeights) this.classWeights = this.createClassWeights(this.loss, classWeightsRng);
  }

  /**
   * The class weights' learning rate in use (proxy-lr, or 100x the network's when it is 0, the
   * default); undefined for a loss without class weights. The manifest records it.
   */
  proxyLearningRate?: number;

  /** Class weights of a batch loss, with proxy-lr or 100x the network's learning rate. */
  private createClassWeights(loss: BatchLoss, rng: Rng): ClassWeights {
    const given = Number(loss.params['proxy-lr'] ?? 0);
    const lr = given > 0 ? given : PROXY_LR_FACTOR * Number(this.engine.optimizerConfig['learningRate']);
    this.proxyLearningRate = lr;
    return new ClassWeights(loss, this.numClasses, this.network.embeddingDim, rng, this.config.optimizer, lr);
  }

  get epoch(): number {
    return this.epochsDone;
  }

  getWeights(): NamedTensor[] {
    return this.engine.getWeights();
  }

  getState(): TrainState {
    this.checkNotMidEpoch();
    return {
      epoch: this.epochsDone,
      weights: this.getWeights(),
      optimizer: this.engine.getOptimizerState(),
      rng: { shuffle: this.shuffleRng.getState(), dropout: this.dropoutRng.getState() },
      history: this.history.map((h) => ({ ...h })),
      ...(this.classWeights ? { lossState: this.classWeights.getState() } : {}),
    };
  }

  setState(s: TrainState): void {
    this.engine.setWeights(checkFinite(checkWeights(this.network, s.weights), 'the saved state'));
    this.engine.setOptimizerState(s.optimizer);
    this.shuffleRng.setState(s.rng.shuffle);
    this.dropoutRng.setState(s.rng.dropout);
    if (this.classWeights) {
      if (!s.lossState) throw new UsageError(`the checkpoint holds no class weights for loss ${this.config.loss}`);
      this.classWeights.setState(s.lossState);
    }
    this.epochsDone = s.epoch;
    this.history.length = 0;
    this.history.push(...s.history);
    this.midEpoch = false;
  }

  /**
   * Train one epoch. The callback sees each batch (its return value is ignored); abort
   * `opts.signal` to stop early: null is returned then (no log). Synchronous: nothing else runs
   * on this thread meanwhile (see runEpochAsync).
   */
  runEpoch(onBatch?: (info: BatchInfo) => unknown, opts: EpochOptions = {}): EpochLog | null {
    const steps = this.epochSteps(onBatch, opts.signal);
    for (;;) {
      const r = steps.next();
      if (r.done) return r.value;
    }
  }

  /**
   * runEpoch, giving the event loop a turn every `yieldEveryMs` of training, so that a signal
   * handler or a timer can abort `opts.signal` before the next batch. Same numbers, bit for bit.
   */
  async runEpochAsync(onBatch?: (info: BatchInfo) => unknown, opts: AsyncEpochOptions = {}): Promise<EpochLog | null> {
    const every = opts.yieldEveryMs ?? 20;
    const steps = this.epochSteps(onBatch, opts.signal);
    let last = performance.now();
    for (;;) {
      const r = steps.next();
      if (r.done) return r.value;
      if (performance.now() - last >= every) {
        await new Promise<void>((res) => setImmediate(res));
        last = performance.now();
      }
    }
  }

  /** One epoch as a sequence of batches: suspends after each, returns the log (null when aborted). */
  private *epochSteps(onBatch: ((info: BatchInfo) => unknown) | undefined, signal: AbortSignal | undefined): Generator<void, EpochLog | null> {
    this.checkNotMidEpoch();
    // checked before the plan: an epoch aborted before its start leaves no trace (the plan shuffles)
    if (signal?.aborted) return null;
    const epoch = this.epochsDone + 1;
    const t0 = performance.now();
    const plan = this.epochPlan();
    let lossSum = 0;
    let correct = 0;
    let seen = 0;
    let minedSum = 0;
    for (let b = 0; b < plan.batches; b++) {
      if (b > 0 && signal?.aborted) {
        this.midEpoch = true;
        return null;
      }
      const r = plan.step(b);
      if (!Number.isFinite(r.loss)) {
        throw this.diverged('non-finite', `training diverged: the loss became ${r.loss} at epoch ${epoch}, batch ${b + 1}`, epoch);
      }
      this.firstLoss ??= Math.abs(r.loss);
      // Without NaN, a loss that grows by orders of magnitude has left any useful region (a
      // learning rate of 10 reaches 1e14 in one epoch, then the ReLUs die and every embedding is 0).
      const scale = Math.max(this.firstLoss, 0.01);
      if (Math.abs(r.loss) > LOSS_EXPLOSION_FACTOR * scale) {
        throw this.diverged(
          'exploding',
          `training diverged: the loss exploded to ${r.loss.toPrecision(3)} (from ${this.firstLoss.toPrecision(3)} at its first batch) at epoch ${epoch}, batch ${b + 1}`,
          epoch,
        );
      }
      // Weights can turn NaN while the loss still looks finite (the distance guard max(·, 1e-7)
      // swallows NaN in C): scan them every batch on the native engine (~0.03 ms against a ~1 ms
      // step), every 16th batch on TF.js (a scan there costs a few tensor ops and a sync).
      if (this.engine.name === 'native' || b % 16 === 15 || b === plan.batches - 1) this.checkWeightsFinite(epoch, b + 1);
      lossSum += r.loss * r.count;
      correct += r.correct;
      seen += r.count;
      minedSum += r.mined ?? 0;
      if (onBatch) {
        const secs = (performance.now() - t0) / 1000;
        onBatch({ epoch, batch: b + 1, batches: plan.batches, loss: lossSum / seen, pairsPerSecond: seen / secs });
      }
      yield;
    }
    const trainSeconds = (performance.now() - t0) / 1000;
    const evalRes = this.evaluate();
    this.checkNotCollapsed(evalRes.distances, epoch);
    this.lastTest = { ...evalRes, epoch };
    const log: EpochLog = {
      epoch,
      loss: lossSum / seen,
      trainAccuracy: correct / seen,
      testAccuracy: evalRes.accuracy,
      seconds: (performance.now() - t0) / 1000,
      pairsPerSecond: seen / trainSeconds,
    };
    if (this.config.miner) log.minedPerBatch = minedSum / plan.batches;
    if (this.loss.kind === 'batch') log.accuracyAt = 'best-threshold';
    log.engine = this.engine.name;
    log.threads = this.engine.threads;
    this.history.push(log);
    this.epochsDone = epoch;
    return log;
  }

  /** Embeddings of images (no dropout), [indices.length, embeddingDim]. */
  embed(split: ImageSplit, indices?: ArrayLike<number>): Float32Array {
    const emb = this.engine.embed(split, indices ?? Int32Array.from({ length: split.n }, (_, i) => i));
    // batch losses compare L2-normalised embeddings: so do every measure and every export
    if (normalisesEmbeddings(this.loss)) normalizeInPlace(emb, this.network.embeddingDim);
    return emb;
  }

  /** Test pair distances and accuracy at the configured threshold. */
  evaluate(pairs: PairSet = this.testPairs, split: ImageSplit = this.dataset.test, embeddings?: Float32Array): EvalResult {
    const emb = embeddings ?? this.embed(split);
    const distances = pairDistancesHost(emb, this.network.embeddingDim, pairs.a, pairs.b);
    if (this.loss.kind === 'batch') return { distances, labels: pairs.y, accuracy: bestThresholdAccuracy(distances, pairs.y) };
    let correct = 0;
    for (let i = 0; i < pairs.length; i++) if ((distances[i]! < this.config.threshold ? 1 : 0) === pairs.y[i]) correct++;
    return { distances, labels: pairs.y, accuracy: correct / pairs.length };
  }

  dispose(): void {
    this.engine.dispose();
  }

  /** The batches of one epoch and the function that trains on batch b. */
  private epochPlan(): { batches: number; step: (b: number) => StepResult } {
    const bs = this.config.batchSize;
    if (this.loss.kind === 'batch') return this.batchLossPlan(this.loss);
    if (this.miner) {
      const labels = this.dataset.train.labels;
      const { perClass, classes } = balancedShape(bs, this.config.perClass, this.numClasses);
      let batches = classBalancedBatches(labels, perClass, classes, this.shuffleRng);
      // --train-pairs N: a pair is two images, so a mined epoch of a slice sees about 2N images
      if (this.config.trainPairs > 0) batches = batches.slice(0, Math.ceil((2 * this.config.trainPairs) / (perClass * classes)));
      return { batches: batches.length, step: (b) => this.minedStep(batches[b]!, batches[b + 1]) };
    }
    if (this.loss.kind === 'pair') {
      const perm = this.shuffleRng.shuffle(Int32Array.from({ length: this.trainPairs.length }, (_, i) => i));
      const pairs = permutePairs(this.trainPairs, perm);
      const batches = Math.ceil(pairs.length / bs);
      const cols = [pairs.a, pairs.b];
      return {
        batches,
        step: (b) => this.pairStep(pairs, b * bs, Math.min(pairs.length, (b + 1) * bs), this.nextRows(cols, b + 1, bs)),
      };
    }
    let trip = makeRandomTriplets(this.dataset.train.labels, this.numClasses, this.shuffleRng);
    // A triplet holds two pairs, so a --train-pairs slice of N allows N/2 triplets (a full epoch:
    // 60,000 triplets against 108,400 pairs).
    if (this.config.trainPairs > 0) {
      const m = Math.min(trip.length, Math.ceil(this.config.trainPairs / 2));
      trip = { anchors: trip.anchors.slice(0, m), positives: trip.positives.slice(0, m), negatives: trip.negatives.slice(0, m), length: m };
    }
    const batches = Math.ceil(trip.length / bs);
    const cols = [trip.anchors, trip.positives, trip.negatives];
    return { batches, step: (b) => this.tripletStep(trip, b * bs, Math.min(trip.length, (b + 1) * bs), this.nextRows(cols, b + 1, bs)) };
  }

  private pairStep(p: PairSet, s: number, e: number, next?: Int32Array): StepResult {
    const n = e - s;
    const rows = tupleRows([p.a, p.b], s, e, this.batchRows(2 * n));
    const y = p.y.subarray(s, e);
    const r = this.run({ kind: 'pairs', rows, y }, next);
    const th = this.config.threshold;
    const d = r.d!;
    let correct = 0;
    for (let i = 0; i < n; i++) if ((d[i]! < th ? 1 : 0) === y[i]) correct++;
    return { loss: r.loss, count: n, correct };
  }

  private tripletStep(
    t: { anchors: Int32Array; positives: Int32Array; negatives: Int32Array },
    s: number,
    e: number,
    next?: Int32Array,
  ): StepResult {
    const n = e - s;
    const rows = tupleRows([t.anchors, t.positives, t.negatives], s, e, this.batchRows(3 * n));
    const r = this.run({ kind: 'triplets', rows }, next);
    // A triplet is two pairs: (a, p) same, (a, n) different; accuracy counts both.
    const th = this.config.threshold;
    const dap = r.dap!;
    const dan = r.dan!;
    let correct = 0;
    for (let i = 0; i < n; i++) {
      if (dap[i]! < th) correct++;
      if (dan[i]! >= th) correct++;
    }
    return { loss: r.loss, count: n, correct: correct / 2 };
  }

  /** One class-balanced batch of images: embed, mine tuples from the batch, train on them. */
  private minedStep(batch: Int32Array, next?: Int32Array): StepResult {
    const n = batch.length;
    const labels = new Int32Array(n);
    for (let i = 0; i < n; i++) labels[i] = this.dataset.train.labels[batch[i]!]!;
    const r = this.run({ kind: 'mined', rows: batch, labels, miner: this.miner! }, next);
    const th = this.config.threshold;
    let correct = 0;
    let count = 0;
    if (r.dap && r.dan) {
      for (let i = 0; i < r.dap.length; i++) correct += (r.dap[i]! < th ? 1 : 0) + (r.dan[i]! >= th ? 1 : 0);
      count = 2 * r.dap.length;
    } else if (r.d && r.y) {
      for (let i = 0; i < r.d.length; i++) correct += (r.d[i]! < th ? 1 : 0) === r.y[i] ? 1 : 0;
      count = r.d.length;
    }
    // Accuracy over the mined tuples' pairs; "count" is in images for the pairs/s figure.
    return { loss: r.loss, count: n, correct: count > 0 ? (correct / count) * n : 0, mined: r.kept ?? 0 };
  }

  /** Class-balanced batches as the miners draw them, each trained on a batch loss whole. */
  private batchLossPlan(loss: BatchLoss): { batches: number; step: (b: number) => StepResult } {
    const batches = this.classBalancedPlan();
    return { batches: batches.length, step: (b) => this.batchLossStep(loss, batches[b]!, batches[b + 1]) };
  }

  /** The class-balanced batches of one epoch (the miners' recipe and --train-pairs slice). */
  private classBalancedPlan(): Int32Array[] {
    const bs = this.config.batchSize;
    const { perClass, classes } = balancedShape(bs, this.config.perClass, this.numClasses);
    const batches = classBalancedBatches(this.dataset.train.labels, perClass, classes, this.shuffleRng);
    return this.config.trainPairs > 0 ? batches.slice(0, Math.ceil((2 * this.config.trainPairs) / (perClass * classes))) : batches;
  }

  /**
   * One batch of a batch loss: the engine embeds it, the host computes the loss and its gradient
   * (and the class weights' gradient), the engine backpropagates; then the class weights step.
   * Accuracy: the batch's pairs at their best threshold.
   */
  private batchLossStep(loss: BatchLoss, batch: Int32Array, next?: Int32Array): StepResult {
    const n = batch.length;
    const dim = this.network.embeddingDim;
    const labels = new Int32Array(n);
    for (let i = 0; i < n; i++) labels[i] = this.dataset.train.labels[batch[i]!]!;
    let res: BatchLossResult | null = null;
    let accuracy = 0;
    const tail = (emb: Float32Array): { loss: number; grad: Float32Array } => {
      res = loss.compute(emb, labels, dim, this.classWeights?.weights, this.batchWorkspace);
      accuracy = res.accuracy ?? (res.similarities ? pairSweep(labels, res.similarities) : batchPairAccuracy(emb, labels, dim));
      return res;
    };
    const r = this.run({ kind: 'embedding', rows: batch, tail }, next);
    const wg = (res as BatchLossResult | null)?.weightsGrad;
    if (this.classWeights && wg) this.classWeights.apply(wg);
    return { loss: r.loss, count: n, correct: accuracy * n };
  }

  /** The image rows of the next batch: one array reused batch after batch (engines read it during the step only). */
  private batchRows(n: number): Int32Array {
    if (this.rowsBuf.length !== n) this.rowsBuf = new Int32Array(n);
    return this.rowsBuf;
  }

  /**
   * The image rows of batch b of tuples (columns cols, batches of bs), as pairStep and
   * tripletStep lay them out, in a second reused array; undefined past the last batch. The
   * engine may start on them while it finishes the batch before.
   */
  private nextRows(cols: readonly Int32Array[], b: number, bs: number): Int32Array | undefined {
    const len = cols[0]!.length;
    const s = b * bs;
    if (s >= len) return undefined;
    const e = Math.min(len, s + bs);
    const size = cols.length * (e - s);
    if (this.nextBuf.length !== size) this.nextBuf = new Int32Array(size);
    return tupleRows(cols, s, e, this.nextBuf);
  }

  private run(batch: Batch, next?: Int32Array): StepOutput {
    return this.engine.step(this.dataset.train, batch, this.dropoutRng, next);
  }

  private checkWeightsFinite(epoch: number, batch: number): void {
    const bad = this.engine.nonFiniteWeights();
    if (bad > 0) throw this.diverged('non-finite', `training diverged: ${bad} weights became NaN or Inf at epoch ${epoch}, batch ${batch}`, epoch);
  }

  /**
   * A network whose test images all land on (nearly) one point has collapsed: its accuracy is the
   * share of one pair label, and it does not recover (dead ReLUs). The floor of the distance
   * (sqrt 1e-7) is far below the limit, so a true collapse is never missed.
   */
  private checkNotCollapsed(distances: Float32Array, epoch: number): void {
    const limit = this.config.threshold / COLLAPSE_FRACTION;
    let max = 0;
    for (let i = 0; i < distances.length; i++) if (distances[i]! > max) max = distances[i]!;
    if (distances.length > 1 && max < limit) {
      throw this.diverged(
        'collapsed',
        `training collapsed: after epoch ${epoch} every test image embeds to the same point (all ${distances.length} test distances below ${limit.toPrecision(2)})`,
        epoch,
      );
    }
  }

  private diverged(kind: DivergenceKind, what: string, epoch: number): DivergenceError {
    const lr = Number(this.engine.optimizerConfig['learningRate']);
    return new DivergenceError(`${what} (loss ${this.config.loss}, learning rate ${lr}); lower the learning rate`, kind, epoch, lr);
  }

  private checkNotMidEpoch(): void {
    if (this.midEpoch) {
      throw new UsageError('an epoch of this training was stopped halfway: restore a state saved by getState() with setState() before going on');
    }
  }
}

/** Weights that hold NaN or Inf cannot be trained: say so (not "diverged": nothing was trained yet). */
function checkFinite(weights: NamedTensor[], what: string): NamedTensor[] {
  const { count, first } = countNonFinite(weights);
  if (count > 0) throw new DataError(`${what} hold ${count} NaN or Inf values (first in ${first}): training cannot start from them`);
  return weights;
}

/** Tuples s..e of columns cols (pairs: a, b; triplets: anchor, positive, negative) as image rows, one column after the other, into rows. */
function tupleRows(cols: readonly Int32Array[], s: number, e: number, rows: Int32Array): Int32Array {
  cols.forEach((c, i) => rows.set(c.subarray(s, e), i * (e - s)));
  return rows;
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

/** Rows scaled to unit length in place (F.normalize's floor, NORM_EPSILON; the ONNX export's too). */
function normalizeInPlace(x: Float32Array, dim: number): void {
  for (let o = 0; o < x.length; o += dim) {
    let s = 0;
    for (let k = 0; k < dim; k++) s += x[o + k]! * x[o + k]!;
    const inv = 1 / Math.max(Math.sqrt(s), NORM_EPSILON);
    for (let k = 0; k < dim; k++) x[o + k]! *= inv;
  }
}

export { bestThresholdAccuracy };
