/**
 * The optional native engine (native/src/*.c, built by `npm ci` into native/build/siamese.node):
 * an MLP's forward pass with dropout, backward pass and optimizer update in float32 SIMD
 * kernels, spread over a thread pool. Loading never throws: without the addon the library uses
 * the TF.js engine and `nativeStatus()` says why.
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { cpus } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { SQUARED_DISTANCE_FLOOR } from '../model/siamese.ts';
import type { NamedTensor } from '../model/weights.ts';
import type { Rng } from '../rng.ts';

/** The addon's functions (see native/src/addon.c). */
export interface NativeAddon {
  create(widths: Int32Array, dropoutRate: number, threads: number): NativeHandle;
  dispose(h: NativeHandle): void;
  threads(h: NativeHandle, n: number): number;
  /** kind 0 weights, 1 gradients (read-only), 2 optimizer slot */
  param(h: NativeHandle, kind: 0 | 1 | 2, slot: number, idx: number, data: Float32Array, write: boolean): void;
  zeroSlots(h: NativeHandle): void;
  nonFinite(h: NativeHandle): number;
  inputMode(h: NativeHandle, mode: number): number;
  schedule(h: NativeHandle, schedule: number, stores: number): number;
  forwardTrain(h: NativeHandle, images: Uint8Array, inDim: number, rows: Int32Array, rng: Uint32Array, out: Float32Array): void;
  backward(h: NativeHandle, dEmb: Float32Array, optKind: number, coef: Float32Array, apply: boolean): void;
  backwardPairs(h: NativeHandle, ia: Int32Array, ib: Int32Array, k: Float32Array, optKind: number, coef: Float32Array, apply: boolean): void;
  setNext(h: NativeHandle, images: Uint8Array, inDim: number, rows: Int32Array): boolean;
  embed(h: NativeHandle, images: Uint8Array, inDim: number, rows: Int32Array, out: Float32Array): void;
  embedFloat(h: NativeHandle, x: Float32Array, out: Float32Array): void;
  distances(emb: Float32Array, dim: number, ia: Int32Array, ib: Int32Array, floor: number, d: Float32Array, sq: Float64Array): void;
  backpropDistances(
    emb: Float32Array,
    dim: number,
    ia: Int32Array,
    ib: Int32Array,
    floor: number,
    d: Float32Array,
    sq: Float64Array,
    g: Float64Array,
    gEmb: Float32Array,
  ): void;
  /** the convolutional base (native/src/cnn.h): dims [height, width, channels, kernel, embedding, filters...] */
  cnnCreate(dims: Int32Array, dropoutRate: number, threads: number): NativeHandle;
  cnnThreads(h: NativeHandle, n: number): number;
  cnnParam(h: NativeHandle, kind: 0 | 1 | 2, slot: number, idx: number, data: Float32Array, write: boolean): void;
  cnnZeroSlots(h: NativeHandle): void;
  cnnNonFinite(h: NativeHandle): number;
  cnnForwardTrain(h: NativeHandle, images: Uint8Array, inDim: number, rows: Int32Array, rng: Uint32Array, out: Float32Array): void;
  cnnBackward(h: NativeHandle, dEmb: Float32Array, optKind: number, coef: Float32Array, apply: boolean): void;
  cnnBackwardPairs(h: NativeHandle, ia: Int32Array, ib: Int32Array, k: Float32Array, optKind: number, coef: Float32Array, apply: boolean): void;
  cnnEmbed(h: NativeHandle, images: Uint8Array, inDim: number, rows: Int32Array, out: Float32Array): void;
  info(): string;
}

/** An opaque handle to a native model (a Node-API external). */
export type NativeHandle = { readonly __native: unique symbol };

export interface NativeStatus {
  available: boolean;
  /** why it is not available, or what was loaded */
  detail: string;
  /** instruction set and register tile, e.g. {"isa":"avx512","vectorWidth":16,...} */
  info?: { isa: string; vectorWidth: number; tile: string };
}

/** As native/build.mjs computes it: the sorted CPU flags (Linux), else the model name. */
function cpuFingerprint(): string {
  try {
    const flags = readFileSync('/proc/cpuinfo', 'utf8')
      .split('\n')
      .find((l) => /^(flags|Features)\s*:/.test(l));
    if (flags) {
      const list = flags.split(':')[1]!.trim().split(/\s+/).sort().join(' ');
      return createHash('sha256').update(list).digest('hex').slice(0, 16);
    }
  } catch {
    // not Linux
  }
  return cpus()[0]?.model ?? 'unknown';
}

const ADDON_PATH = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'native', 'build', 'siamese.node');

let loaded: { addon: NativeAddon | null; status: NativeStatus } | null = null;

function load(): { addon: NativeAddon | null; status: NativeStatus } {
  if (loaded) return loaded;
  if (process.env['SIAMESE_NATIVE'] === '0') {
    loaded = { addon: null, status: { available: false, detail: 'disabled by SIAMESE_NATIVE=0' } };
    return loaded;
  }
  if (!existsSync(ADDON_PATH)) {
    loaded = { addon: null, status: { available: false, detail: 'not built (run `npm run build:native`; needs a C compiler)' } };
    return loaded;
  }
  // Built with -march=native: refuse a build made on a CPU with another instruction set rather
  // than crash on an unknown instruction.
  try {
    const infoPath = join(dirname(ADDON_PATH), 'build-info.json');
    const info = JSON.parse(readFileSync(infoPath, 'utf8')) as { cpu?: string; march?: string; cpuFingerprint?: string };
    const other = info.cpuFingerprint ? info.cpuFingerprint !== cpuFingerprint() : info.cpu !== undefined && info.cpu !== cpus()[0]?.model;
    if (info.march === 'native' && other) {
      loaded = {
        addon: null,
        status: { available: false, detail: `built for another CPU (${info.cpu ?? '?'}); rebuild with \`npm run build:native\`` },
      };
      return loaded;
    }
  } catch {
    // no build info: trust the file
  }
  try {
    const addon = createRequire(import.meta.url)(ADDON_PATH) as NativeAddon;
    const info = JSON.parse(addon.info()) as NativeStatus['info'] & { abi: number };
    if (info.abi !== 6) throw new Error(`ABI ${info.abi}, expected 6 (rebuild with \`npm run build:native\`)`);
    loaded = { addon, status: { available: true, detail: `native/build/siamese.node (${info.isa})`, info } };
  } catch (e) {
    loaded = { addon: null, status: { available: false, detail: `failed to load: ${(e as Error).message.split('\n')[0]}` } };
  }
  return loaded;
}

export function nativeStatus(): NativeStatus {
  return load().status;
}

export function nativeAvailable(): boolean {
  return load().addon !== null;
}

/** The loaded addon, for the network classes (throws where it is not available). */
export function nativeAddon(): NativeAddon {
  const { addon, status } = load();
  if (!addon) throw new Error(`the native engine is not available: ${status.detail}`);
  return addon;
}

/** What the native engine needs of a network living in native memory (NativeMlp, NativeCnn). */
export interface NativeNet {
  readonly threads: number;
  readonly outDim: number;
  readonly paramCount: number;
  setThreads(n: number): void;
  paramSize(idx: number): number;
  setParam(idx: number, data: Float32Array): void;
  getParam(idx: number): Float32Array;
  getGrad(idx: number): Float32Array;
  getSlot(slot: number, idx: number): Float32Array;
  setSlot(slot: number, idx: number, data: Float32Array): void;
  zeroSlots(): void;
  nonFinite(): number;
  forwardTrain(images: Uint8Array, inDim: number, rows: Int32Array, rng: Rng, out?: Float32Array): Float32Array;
  backward(dEmb: Float32Array, optKind: NativeOpt, coef: Float32Array, apply: boolean): void;
  backwardPairs(ia: Int32Array, ib: Int32Array, k: Float32Array, optKind: NativeOpt, coef: Float32Array, apply: boolean): void;
  embed(images: Uint8Array, inDim: number, rows: Int32Array, out?: Float32Array): Float32Array;
  setWeights(ws: readonly NamedTensor[]): void;
  dispose(): void;
}

/** D between rows ia[i] and ib[i] of emb [rows, dim] (as lossTail.rowDistances, in C) */
export function nativeDistances(emb: Float32Array, dim: number, ia: Int32Array, ib: Int32Array, sq: Float64Array, out?: Float32Array): Float32Array {
  const d = out ?? new Float32Array(ia.length);
  nativeAddon().distances(emb, dim, ia, ib, SQUARED_DISTANCE_FLOOR, d, sq);
  return d;
}

/** The first layer's training paths (INPUT_AUTO, INPUT_DENSE, INPUT_SPARSE in native/src/siamese.h). */
const INPUT_MODES = ['auto', 'dense', 'sparse'] as const;
export type NativeInputMode = (typeof INPUT_MODES)[number];
/** How two threads share a step (SCHEDULE_AUTO, SCHEDULE_SPLIT, SCHEDULE_ROLES in siamese.h). */
const SCHEDULES = ['auto', 'split', 'roles'] as const;
export type NativeSchedule = (typeof SCHEDULES)[number];

const STORES = ['auto', 'plain', 'streamed'] as const;
export type NativeStores = (typeof STORES)[number];

/** The optimizer kinds the addon knows (native/src/siamese.h). */
export const enum NativeOpt {
  Sgd = 0,
  Momentum = 1,
  Nesterov = 2,
  RmsProp = 3,
  Adam = 4,
  Adagrad = 5,
}

/**
 * An MLP (Dense + ReLU layers, dropout after all but the last) living in native memory.
 * Parameters are addressed as weightSpecs() orders them: 2l = kernel of layer l, 2l + 1 = bias.
 */
export class NativeMlp implements NativeNet {
  private readonly addon: NativeAddon;
  private handle: NativeHandle | null;
  readonly widths: readonly number[];
  readonly outDim: number;
  private _threads: number;
  private nextImages: Uint8Array | null = null;

  constructor(widths: readonly number[], dropoutRate: number, threads: number) {
    const { addon, status } = load();
    if (!addon) throw new Error(`the native engine is not available: ${status.detail}`);
    this.addon = addon;
    this.widths = [...widths];
    this.outDim = widths[widths.length - 1]!;
    this.handle = addon.create(Int32Array.from(widths), dropoutRate, Math.max(1, threads));
    this._threads = addon.threads(this.handle, 0);
  }

  get threads(): number {
    return this._threads;
  }

  setThreads(n: number): void {
    this._threads = this.addon.threads(this.h, Math.max(1, n));
  }

  /**
   * The first layer's training path: 'sparse' sums only over the pixels where some image of a
   * row tile is not 0 (MNIST: 44% of them), 'dense' over all; 'auto' (the default) takes the
   * sparse path while it skips enough. Both give the same bits. Returns whether this build has
   * the sparse path (x86 with AVX-512 BW).
   */
  setInputMode(mode: NativeInputMode): boolean {
    return (this.addon.inputMode(this.h, INPUT_MODES.indexOf(mode)) & 1) === 1;
  }

  /** Whether the last training forward pass took the sparse path. */
  get lastStepSparse(): boolean {
    return (this.addon.inputMode(this.h, -1) & 2) === 2;
  }

  /**
   * How two threads share a training step: 'split' divides every phase between them, 'roles'
   * gives the first layer to one and the other layers to the other (with the first layer's rows
   * handed over in pieces), 'auto' (the default), where roles' arithmetic is about even (the
   * seed's MLP on sparse input), times both (roles with each of its stores, see setStores) in
   * blocks of steps in turn once the run is warm (after 200 steps) and keeps the fastest for
   * 2,000 steps, then times them again. Either call starts the timing over. The same bits
   * either way.
   */
  setSchedule(schedule: NativeSchedule): void {
    this.addon.schedule(this.h, SCHEDULES.indexOf(schedule), -1);
  }

  /**
   * How the two threads of roles hand rows over: 'plain' stores, 'streamed' ones (non-temporal:
   * they go past the writer's caches, which pays when the vCPUs are far apart and costs when
   * they are close), or 'auto' (the default), which times both with the schedules (above).
   * The same bits either way.
   */
  setStores(stores: NativeStores): void {
    this.addon.schedule(this.h, -1, STORES.indexOf(stores));
  }

  /** Whether the last training step ran in roles. */
  get lastStepInRoles(): boolean {
    return (this.addon.schedule(this.h, -1, -1) & 1) === 1;
  }

  /** Whether the last training step's first layer had run ahead (see setNext). */
  get lastStepRanAhead(): boolean {
    return (this.addon.schedule(this.h, -1, -1) & 2) === 2;
  }

  /** Whether the last training step ran in roles with streamed stores. */
  get lastStepStreamed(): boolean {
    return (this.addon.schedule(this.h, -1, -1) & 4) === 4;
  }

  private get h(): NativeHandle {
    if (!this.handle) throw new Error('the native model was disposed');
    return this.handle;
  }

  paramSize(idx: number): number {
    const l = idx >> 1;
    return idx % 2 === 0 ? this.widths[l]! * this.widths[l + 1]! : this.widths[l + 1]!;
  }

  get paramCount(): number {
    return 2 * (this.widths.length - 1);
  }

  setParam(idx: number, data: Float32Array): void {
    this.addon.param(this.h, 0, 0, idx, data, true);
  }

  getParam(idx: number): Float32Array {
    const out = new Float32Array(this.paramSize(idx));
    this.addon.param(this.h, 0, 0, idx, out, false);
    return out;
  }

  getGrad(idx: number): Float32Array {
    const out = new Float32Array(this.paramSize(idx));
    this.addon.param(this.h, 1, 0, idx, out, false);
    return out;
  }

  getSlot(slot: number, idx: number): Float32Array {
    const out = new Float32Array(this.paramSize(idx));
    this.addon.param(this.h, 2, slot, idx, out, false);
    return out;
  }

  setSlot(slot: number, idx: number, data: Float32Array): void {
    this.addon.param(this.h, 2, slot, idx, data, true);
  }

  zeroSlots(): void {
    this.addon.zeroSlots(this.h);
  }

  nonFinite(): number {
    return this.addon.nonFinite(this.h);
  }

  /**
   * Training forward pass of images[rows] (bytes scaled by 1/255), with dropout masks drawn from
   * `rng` exactly as rngDropout draws them (the Rng advances). Returns the embeddings.
   */
  forwardTrain(images: Uint8Array, inDim: number, rows: Int32Array, rng: Rng, out?: Float32Array): Float32Array {
    const emb = out ?? new Float32Array(rows.length * this.outDim);
    const state = Uint32Array.from(rng.getState());
    this.addon.forwardTrain(this.h, images, inDim, rows, state, emb);
    this.nextImages = null;
    rng.setState([state[0]!, state[1]!, state[2]!, state[3]!]);
    return emb;
  }

  /**
   * The rows of the next training step, told before this step's backward pass. On two threads in
   * roles, one thread then computes their first layer while the other finishes the backward pass
   * and the host prepares the next step; the next forwardTrain with the same images and rows
   * takes it over. Any other call waits for it to end first; a forward pass with other rows
   * computes its own. The same bits either way. Returns false where the rows were not taken
   * (more rows than the last step's capacity).
   */
  setNext(images: Uint8Array, inDim: number, rows: Int32Array): boolean {
    // the native side reads the images until the next forward pass: keep them alive till then
    this.nextImages = images;
    return this.addon.setNext(this.h, images, inDim, rows);
  }

  /** Backward pass of the last forward pass; updates the weights when `apply`. */
  backward(dEmb: Float32Array, optKind: NativeOpt, coef: Float32Array, apply: boolean): void {
    this.addon.backward(this.h, dEmb, optKind, coef, apply);
  }

  /**
   * The same, with dL/d(embeddings) built by the threads from pair distances: k[i] (a − b) added
   * to row ia[i], subtracted from row ib[i] (as backpropDistances does with k = dL/dD / D).
   */
  backwardPairs(ia: Int32Array, ib: Int32Array, k: Float32Array, optKind: NativeOpt, coef: Float32Array, apply: boolean): void {
    this.addon.backwardPairs(this.h, ia, ib, k, optKind, coef, apply);
  }

  embed(images: Uint8Array, inDim: number, rows: Int32Array, out?: Float32Array): Float32Array {
    const emb = out ?? new Float32Array(rows.length * this.outDim);
    this.addon.embed(this.h, images, inDim, rows, emb);
    return emb;
  }

  embedFloat(x: Float32Array, out?: Float32Array): Float32Array {
    const emb = out ?? new Float32Array((x.length / this.widths[0]!) * this.outDim);
    this.addon.embedFloat(this.h, x, emb);
    return emb;
  }

  /** D between rows ia[i] and ib[i] of emb [rows, dim] (as lossTail.rowDistances, in C) */
  distances(emb: Float32Array, dim: number, ia: Int32Array, ib: Int32Array, sq: Float64Array, out?: Float32Array): Float32Array {
    const d = out ?? new Float32Array(ia.length);
    this.addon.distances(emb, dim, ia, ib, SQUARED_DISTANCE_FLOOR, d, sq);
    return d;
  }

  /** the chain rule through D into gEmb (as lossTail.backpropDistances, in C, float32 sums) */
  backpropDistances(emb: Float32Array, dim: number, ia: Int32Array, ib: Int32Array, d: Float32Array, sq: Float64Array, g: Float64Array, gEmb: Float32Array): void {
    this.addon.backpropDistances(emb, dim, ia, ib, SQUARED_DISTANCE_FLOOR, d, sq, g, gEmb);
  }

  setWeights(ws: readonly NamedTensor[]): void {
    ws.forEach((w, i) => this.setParam(i, w.data));
  }

  dispose(): void {
    if (this.handle) this.addon.dispose(this.handle);
    this.handle = null;
  }
}
