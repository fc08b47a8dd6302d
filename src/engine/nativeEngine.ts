/**
 * The native engine: the base network (forward with dropout, backward, optimizer update) in the
 * addon's SIMD kernels on `threads` cores; distances, losses and miners on the host, on the
 * [rows, embeddingDim] embeddings (lossTail.ts). Same dropout masks, same optimizer arithmetic
 * and the same checkpoint format as the TF.js engine.
 */
import { availableParallelism } from 'node:os';
import { isMainThread } from 'node:worker_threads';
import type { ImageSplit } from '../data/dataset.ts';
import { NativeUnavailableError, UsageError } from '../errors.ts';
import type { Loss } from '../losses/types.ts';
import type { Miner } from '../mining/index.ts';
import type { BaseNetwork } from '../model/network.ts';
import { SQUARED_DISTANCE_FLOOR } from '../model/siamese.ts';
import type { NamedTensor } from '../model/weights.ts';
import type { Rng } from '../rng.ts';
import type { Batch, EngineSetup, StepOutput, TrainEngine } from './engine.ts';
import { pairLossGrad, type PairLossGrad, tripletLossGrad, type TripletLossGrad } from './lossTail.ts';
import { NativeMlp, type NativeNet, NativeOpt, nativeDistances, nativeStatus, type NativeInputMode, type NativeSchedule, type NativeStores } from './native.ts';
import { NativeCnn } from './nativeCnn.ts';
import { createOptimizer, type OptimizerOptions } from './optimizers.ts';

export interface NativeEngineOptions extends EngineSetup {
  /** 0 = automatic: every core on the main thread, 1 in a worker thread */
  threads?: number;
}

/** The base networks the native engine runs. */
export const NATIVE_BASES: readonly string[] = ['mlp', 'cnn'];

/** Whether the native engine can run this network (an MLP or the CNN) here (the addon loaded). */
export function nativeSupports(network: BaseNetwork): boolean {
  return NATIVE_BASES.includes(network.kind) && nativeStatus().available;
}

/**
 * The optimizers of optimizers.ts, with their state in native memory: the same hyperparameters
 * (read from the TF.js optimizer's config), the same float32 operation order, the same state names.
 */
class NativeOptimizer {
  readonly config: Readonly<Record<string, number | boolean | string>>;
  readonly kind: NativeOpt;
  /** slot names in TF.js' order (`v.0`, `v.1`, ... in a state) */
  readonly slotNames: string[];
  private readonly coef: Float32Array;
  private step = 0;
  /** TF.js creates its slots at the first update: before that a state holds none */
  private live = false;

  constructor(name: string, opts: OptimizerOptions) {
    const ref = createOptimizer(name, opts);
    this.config = ref.config;
    ref.dispose();
    const c = this.config;
    const num = (k: string): number => c[k] as number;
    switch (ref.name) {
      case 'rmsprop':
        this.kind = NativeOpt.RmsProp;
        this.slotNames = ['v'];
        this.coef = Float32Array.of(num('rho'), 1 - num('rho'), num('learningRate'), num('epsilon'));
        break;
      case 'adam':
        this.kind = NativeOpt.Adam;
        this.slotNames = ['m', 'v'];
        this.coef = Float32Array.of(num('beta1'), 1 - num('beta1'), num('beta2'), 1 - num('beta2'), 0, num('epsilon'));
        break;
      case 'sgd':
        this.kind = num('momentum') === 0 ? NativeOpt.Sgd : c['nesterov'] ? NativeOpt.Nesterov : NativeOpt.Momentum;
        this.slotNames = this.kind === NativeOpt.Sgd ? [] : ['u'];
        this.coef = Float32Array.of(num('learningRate'), num('momentum'));
        break;
      case 'adagrad':
        this.kind = NativeOpt.Adagrad;
        this.slotNames = ['a'];
        this.coef = Float32Array.of(num('learningRate'), num('epsilon'));
        break;
      default:
        throw new UsageError(`optimizer ${ref.name} has no native form`);
    }
  }

  /** Coefficients of the next update (advances Adam's step count). */
  next(): Float32Array {
    this.live = this.slotNames.length > 0;
    if (this.kind === NativeOpt.Adam) {
      this.step++;
      const lr = this.config['learningRate'] as number;
      const b1 = this.config['beta1'] as number;
      const b2 = this.config['beta2'] as number;
      // as optimizers.ts computes it, in float64, then rounded once
      this.coef[4] = (lr * Math.sqrt(1 - b2 ** this.step)) / (1 - b1 ** this.step);
    }
    return this.coef;
  }

  /** shapes: the parameters' shapes (weightSpecs() order) */
  getState(m: NativeNet, shapes: readonly (readonly number[])[]): NamedTensor[] {
    const out: NamedTensor[] = [];
    if (this.live) {
      this.slotNames.forEach((n, s) => {
        for (let i = 0; i < m.paramCount; i++) out.push({ name: `${n}.${i}`, shape: [...shapes[i]!], data: m.getSlot(s, i) });
      });
    }
    if (this.kind === NativeOpt.Adam) out.push({ name: 'step', shape: [1], data: Float32Array.of(this.step) });
    return out;
  }

  setState(m: NativeNet, state: readonly NamedTensor[]): void {
    m.zeroSlots();
    this.live = false;
    this.slotNames.forEach((n, s) => {
      for (const t of state) {
        const dot = t.name.lastIndexOf('.');
        if (dot < 0 || t.name.slice(0, dot) !== n) continue;
        const i = Number(t.name.slice(dot + 1));
        if (!Number.isInteger(i) || i < 0 || i >= m.paramCount || t.data.length !== m.paramSize(i)) {
          throw new UsageError(`optimizer state ${t.name} does not fit the network`);
        }
        m.setSlot(s, i, t.data);
        this.live = true;
      }
    });
    if (this.kind === NativeOpt.Adam) this.step = state.find((t) => t.name === 'step')?.data[0] ?? 0;
  }
}

const iota = (from: number, n: number): Int32Array => Int32Array.from({ length: n }, (_, i) => from + i);

/**
 * Numbered scratch arrays that grow and are handed out as views: a typed array of more than
 * 64 bytes costs microseconds to allocate (its memory lives outside V8's heap), several per step
 * add up against a step of well under a millisecond, and each is garbage to collect later. A
 * view is valid until the engine's next step.
 */
class Scratch {
  private readonly a32: Float32Array[] = [];
  private readonly a64: Float64Array[] = [];
  private readonly i32a: Int32Array[] = [];

  i32(slot: number, n: number): Int32Array {
    let b = this.i32a[slot];
    if (!b || b.length < n) this.i32a[slot] = b = new Int32Array(Math.max(n, 2 * (b?.length ?? 0)));
    return b.subarray(0, n);
  }

  f32(slot: number, n: number): Float32Array {
    let b = this.a32[slot];
    if (!b || b.length < n) this.a32[slot] = b = new Float32Array(Math.max(n, 2 * (b?.length ?? 0)));
    return b.subarray(0, n);
  }

  f64(slot: number, n: number): Float64Array {
    let b = this.a64[slot];
    if (!b || b.length < n) this.a64[slot] = b = new Float64Array(Math.max(n, 2 * (b?.length ?? 0)));
    return b.subarray(0, n);
  }
}

export class NativeEngine implements TrainEngine {
  readonly name = 'native' as const;
  /** the network in native memory; mlp: the same where it is an MLP (its schedules and run-ahead) */
  private readonly net: NativeNet;
  private readonly mlp: NativeMlp | null;
  private readonly network: BaseNetwork;
  private readonly loss: Loss;
  private readonly opt: NativeOptimizer;
  private readonly pairGrad: PairLossGrad | null = null;
  private readonly tripletGrad: TripletLossGrad | null = null;
  /** closed-form loss derivative (true) or TF.js on the distances (false) */
  readonly fusedLoss: boolean = false;
  private readonly keepGradients: boolean;
  private grads: NamedTensor[] | null = null;
  private readonly dim: number;
  private embBuf = new Float32Array(0);
  /** per-step scratch (distances, squared sums, loss derivatives), reused: see Scratch */
  private readonly scratch = new Scratch();
  /** the pairs whose distances the last tail differentiated, and dL/dD / D of each */
  private tail: { ia: Int32Array; ib: Int32Array; coef: Float32Array } = { ia: new Int32Array(0), ib: new Int32Array(0), coef: new Float32Array(0) };
  private iotaCache = new Map<number, Int32Array>();
  /** run the next step's first layer ahead when the caller tells its rows (see setRunAhead) */
  private aheadOn = true;

  constructor(o: NativeEngineOptions) {
    if (!NATIVE_BASES.includes(o.network.kind)) throw new UsageError(`the native engine runs ${NATIVE_BASES.join(' and ')} base networks, not ${o.network.kind}`);
    const status = nativeStatus();
    if (!status.available) throw new NativeUnavailableError(`the native engine is not available: ${status.detail}`);
    this.network = o.network;
    this.loss = o.loss;
    const rate = Number(o.network.config['dropout'] ?? 0);
    // 0 = automatic: every core for a run on the main thread; one inside a worker thread, where
    // runs train side by side (compare's pool) and more would oversubscribe the cores
    const threads = o.threads && o.threads > 0 ? o.threads : isMainThread ? availableParallelism() : 1;
    this.opt = new NativeOptimizer(o.optimizer, { ...o.optimizerOptions, ...(o.learningRate !== undefined ? { learningRate: o.learningRate } : {}) });
    if (o.network.kind === 'cnn') {
      this.mlp = null;
      this.net = createCnn(o.network, rate, threads);
    } else {
      const specs = o.network.weightSpecs();
      const widths = [specs[0]!.shape[0]!];
      for (let i = 0; i < specs.length; i += 2) widths.push(specs[i]!.shape[1]!);
      this.mlp = new NativeMlp(widths, rate, threads);
      this.net = this.mlp;
    }
    this.net.setWeights(o.weights);
    this.dim = o.network.embeddingDim;
    this.keepGradients = o.keepGradients ?? false;
    if (o.loss.kind === 'pair') {
      const c = pairLossGrad(o.loss);
      this.pairGrad = c.fn;
      this.fusedLoss = c.fused;
    } else if (o.loss.kind === 'triplet') {
      const c = tripletLossGrad(o.loss);
      this.tripletGrad = c.fn;
      this.fusedLoss = c.fused;
    }
  }

  get threads(): number {
    return this.net.threads;
  }

  get detail(): string {
    const info = nativeStatus().info;
    return `native ${info?.isa ?? ''} kernels, ${this.threads} thread${this.threads === 1 ? '' : 's'}, loss ${this.fusedLoss ? 'closed form' : 'via TF.js'}`;
  }

  get optimizerConfig(): Readonly<Record<string, number | boolean | string>> {
    return this.opt.config;
  }

  setThreads(n: number): void {
    this.net.setThreads(n);
  }

  /**
   * The first layer's path: 'auto' (default) skips the zero pixels of sparse input such as
   * MNIST, 'dense' and 'sparse' force one; the results are the same bits. Returns whether this
   * build has the sparse path.
   */
  setInputMode(mode: NativeInputMode): boolean {
    return this.mlp?.setInputMode(mode) ?? false;
  }

  /**
   * How two threads share a step: 'auto' (default) times splitting every phase against roles
   * (with each of their stores, see setStores) and keeps the fastest, 'split' and 'roles' force
   * one (see NativeMlp.setSchedule); the same bits either way.
   */
  setSchedule(schedule: NativeSchedule): void {
    this.mlp?.setSchedule(schedule);
  }

  /** How roles hand rows over: 'auto' (default, timed), 'plain' or 'streamed' (see NativeMlp.setStores). */
  setStores(stores: NativeStores): void {
    this.mlp?.setStores(stores);
  }

  /**
   * Whether a step told the next step's rows starts on them early (the default): on two threads
   * in roles, the first layer of the next step then overlaps the end of this one. The same bits
   * either way; off, for comparisons.
   */
  setRunAhead(on: boolean): void {
    this.aheadOn = on;
  }

  private range(from: number, n: number): Int32Array {
    const key = from * 2 ** 26 + n;
    let r = this.iotaCache.get(key);
    if (!r) {
      if (this.iotaCache.size > 16) this.iotaCache.clear();
      r = iota(from, n);
      this.iotaCache.set(key, r);
    }
    return r;
  }

  step(split: ImageSplit, batch: Batch, dropout: Rng, next?: Int32Array): StepOutput {
    const rows = batch.rows;
    const inDim = split.height * split.width * split.channels;
    const size = rows.length * this.dim;
    if (this.embBuf.length !== size) this.embBuf = new Float32Array(size);
    const emb = this.net.forwardTrain(split.images, inDim, rows, dropout, this.embBuf);
    let out: StepOutput;
    switch (batch.kind) {
      case 'pairs': {
        const n = batch.y.length;
        out = this.pairTail(emb, this.range(0, n), this.range(n, n), batch.y);
        break;
      }
      case 'triplets': {
        const n = rows.length / 3;
        out = this.tripletTail(emb, this.range(0, n), this.range(n, n), this.range(2 * n, n));
        break;
      }
      case 'embedding': {
        // the host loss gives dL/d(embeddings) whole: the plain backward pass takes it
        const r = batch.tail(emb);
        if (next && this.aheadOn) this.mlp?.setNext(split.images, inDim, next);
        this.net.backward(r.grad, this.opt.kind, this.opt.next(), true);
        if (this.keepGradients) this.grads = this.readGrads();
        return { loss: r.loss };
      }
      case 'mined': {
        out = this.mined(emb, batch.labels, batch.miner);
        if (out.kept === 0) {
          if (this.keepGradients) this.grads = this.zeroGrads();
          return out;
        }
        break;
      }
    }
    // the tail left (ia, ib, coef) in the scratch: the threads build dL/d(embeddings) themselves
    const t = this.tail;
    // the next step's first layer can start on the second core while this backward pass ends
    if (next && this.aheadOn) this.mlp?.setNext(split.images, inDim, next);
    this.net.backwardPairs(t.ia, t.ib, t.coef, this.opt.kind, this.opt.next(), true);
    if (this.keepGradients) this.grads = this.readGrads();
    return out;
  }

  /** dL/dD / D per pair, 0 where the distance floor is active (tf.maximum passes no gradient there) */
  private coefficients(d: Float32Array, sq: Float64Array, g: Float64Array, out: Float32Array): void {
    for (let i = 0; i < d.length; i++) out[i] = sq[i]! >= SQUARED_DISTANCE_FLOOR && g[i] !== 0 ? g[i]! / d[i]! : 0;
  }

  private pairTail(emb: Float32Array, ia: Int32Array, ib: Int32Array, y: Uint8Array): StepOutput {
    if (!this.pairGrad) throw new Error('a pair batch needs a pair loss');
    const n = ia.length;
    const sq = this.scratch.f64(0, n);
    const d = nativeDistances(emb, this.dim, ia, ib, sq, this.scratch.f32(0, n));
    const r = this.pairGrad(d, y, this.scratch.f64(1, n));
    const coef = this.scratch.f32(2, n);
    this.coefficients(d, sq, r.grad, coef);
    this.tail = { ia, ib, coef };
    return { loss: r.value, d, y };
  }

  private tripletTail(emb: Float32Array, ia: Int32Array, ip: Int32Array, ineg: Int32Array): StepOutput {
    if (!this.tripletGrad) throw new Error('a triplet batch needs a triplet loss');
    const n = ia.length;
    const sqp = this.scratch.f64(0, n);
    const sqn = this.scratch.f64(1, n);
    const dap = nativeDistances(emb, this.dim, ia, ip, sqp, this.scratch.f32(0, n));
    const dan = nativeDistances(emb, this.dim, ia, ineg, sqn, this.scratch.f32(1, n));
    const r = this.tripletGrad(dap, dan, { gap: this.scratch.f64(2, n), gan: this.scratch.f64(3, n) });
    // (a, p) pairs, then (a, n) pairs: the order in which the gradient sums them
    const coef = this.scratch.f32(2, 2 * n);
    this.coefficients(dap, sqp, r.gap, coef.subarray(0, n));
    this.coefficients(dan, sqn, r.gan, coef.subarray(n));
    const pa = this.scratch.i32(0, 2 * n);
    const pb = this.scratch.i32(1, 2 * n);
    pa.set(ia);
    pa.set(ia, n);
    pb.set(ip);
    pb.set(ineg, n);
    this.tail = { ia: pa, ib: pb, coef };
    return { loss: r.value, dap, dan };
  }

  private mined(emb: Float32Array, labels: Int32Array, miner: Miner): StepOutput {
    const loss = this.loss;
    if (miner.kind === 'triplet' && loss.kind === 'triplet') {
      const { indices } = miner.mine(emb, this.dim, labels);
      const kept = indices.anchors.length;
      if (kept === 0) return { loss: 0, kept };
      return { ...this.tripletTail(emb, indices.anchors, indices.positives, indices.negatives), kept };
    }
    if (miner.kind === 'pair' && loss.kind === 'pair') {
      const { indices } = miner.mine(emb, this.dim, labels);
      const kept = indices.a.length;
      if (kept === 0) return { loss: 0, kept };
      return { ...this.pairTail(emb, indices.a, indices.b, indices.y), kept };
    }
    throw new Error('miner and loss kinds differ');
  }

  private readGrads(): NamedTensor[] {
    const specs = this.network.weightSpecs();
    return specs.map((s, i) => ({ name: s.name, shape: [...s.shape], data: this.net.getGrad(i) }));
  }

  private zeroGrads(): NamedTensor[] {
    return this.network.weightSpecs().map((s) => ({ name: s.name, shape: [...s.shape], data: new Float32Array(s.shape.reduce((a, b) => a * b, 1)) }));
  }

  embed(split: ImageSplit, indices: ArrayLike<number>): Float32Array {
    const rows = indices instanceof Int32Array ? indices : Int32Array.from(indices as ArrayLike<number>);
    return this.net.embed(split.images, split.height * split.width * split.channels, rows);
  }

  getWeights(): NamedTensor[] {
    return this.network.weightSpecs().map((s, i) => ({ name: s.name, shape: [...s.shape], data: this.net.getParam(i) }));
  }

  setWeights(weights: readonly NamedTensor[]): void {
    this.net.setWeights(weights);
  }

  getOptimizerState(): NamedTensor[] {
    return this.opt.getState(this.net, this.network.weightSpecs().map((w) => w.shape));
  }

  setOptimizerState(state: readonly NamedTensor[]): void {
    this.opt.setState(this.net, state);
  }

  nonFiniteWeights(): number {
    return this.net.nonFinite();
  }

  lastGradients(): NamedTensor[] | null {
    return this.grads;
  }

  dispose(): void {
    this.net.dispose();
  }
}

/** The CNN of src/model/cnn.ts in native memory; a shape the native kernels cannot take is refused in one line. */
function createCnn(network: BaseNetwork, rate: number, threads: number): NativeCnn {
  const c = network.config;
  const shape = {
    height: Number(c['height']),
    width: Number(c['width']),
    channels: Number(c['channels']),
    kernelSize: Number(c['kernelSize']),
    filters: (c['filters'] as number[]).map(Number),
    embeddingDim: network.embeddingDim,
  };
  try {
    return new NativeCnn(shape, rate, threads);
  } catch (e) {
    throw new UsageError(`the native engine cannot run this cnn: ${(e as Error).message.split('\n')[0]}`);
  }
}
