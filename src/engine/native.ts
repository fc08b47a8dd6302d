/**
 * The optional native engine (native/src/*.c): an MLP's forward pass with dropout, backward pass
 * and optimizer update in float32 SIMD kernels, spread over a thread pool. Loading never throws:
 * without the addon the library uses the TF.js engine and `nativeStatus()` says why.
 *
 * Where the addon comes from, first found first:
 *   1. native/build/ of the package: built by npm's install script (`npm ci` in a clone,
 *      `npm install` / `npm rebuild siamese-lab` where npm runs dependencies' scripts);
 *   2. the cache, ~/.cache/siamese-lab/<version>-<platform>-<arch>-<cpu>-<sources>/: built there on
 *      first use when neither exists (npm 11 does not run a dependency's install script until the
 *      user approves it) and a C compiler does.
 * An addon built with -march=native for another CPU, or from other sources, is not loaded.
 * SIAMESE_NATIVE_DIR=DIR loads DIR/siamese.node and nothing else (no fallback, no first-use build):
 * a build for another instruction set (SIAMESE_MARCH) under test, or one the user made.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { homedir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { cacheKey, cpuFingerprint, sourceHash } from '../../native/cpu.mjs';
import { NativeUnavailableError } from '../errors.ts';
import { type BatchKernels, useBatchKernels } from '../losses/batchKernels.ts';
import { SQUARED_DISTANCE_FLOOR } from '../model/siamese.ts';
import type { NamedTensor } from '../model/weights.ts';
import type { Rng } from '../rng.ts';

/** The addon's functions (see native/src/addon.c); the batch losses' kernels are batchKernels.ts'. */
export interface NativeAddon extends BatchKernels {
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
  /**
   * The batch kernels' workspace (one per thread, native/src/addon.c): the bytes it holds now, and
   * how many times it was allocated (both for the tests)
   */
  workspaceBytes(): number;
  workspaceAllocations(): number;
  /** y = exp(x) (op 0), log(x) (op 1), or in float32 exp(x) (op 2): native/src/vmath.c, for the tests */
  vmath(op: 0 | 1, x: Float64Array, y: Float64Array): void;
  vmath(op: 2, x: Float32Array, y: Float32Array): void;
  info(): string;
}

/** An opaque handle to a native model (a Node-API external). */
export type NativeHandle = { readonly __native: unique symbol };

/** What native/build.mjs records next to an addon (build-info.json). */
export interface NativeBuildInfo {
  compiler?: string;
  march?: string;
  cpu?: string;
  cpuFingerprint?: string;
  sources?: string;
  node?: string;
  napi?: string;
  builtAt?: string;
}

/**
 * Why the native engine is not in use: disabled (SIAMESE_NATIVE=0), missing (never built),
 * build-failed (no compiler, no Node headers, a compile error), other-cpu (built for another
 * instruction set), stale (built from other sources), load-failed.
 */
export type NativeUnavailable = 'disabled' | 'missing' | 'build-failed' | 'other-cpu' | 'stale' | 'load-failed';

export interface NativeStatus {
  available: boolean;
  /** why it is not available, or what was loaded (one line) */
  detail: string;
  /** instruction set and register tile, e.g. {"isa":"avx512","vectorWidth":16,...} */
  info?: { isa: string; vectorWidth: number; tile: string };
  /** the addon loaded (or the last one tried) */
  path?: string;
  /** where the loaded addon came from: the package's native/build, the cache, built just now, or SIAMESE_NATIVE_DIR */
  origin?: 'package' | 'cache' | 'built-now' | 'env';
  /** its build-info.json */
  build?: NativeBuildInfo;
  /** when not available: why, and the one command that fixes it */
  reason?: NativeUnavailable;
  fix?: string;
}

/** The addon's interface version (native/src/addon.c, js_info): bumped with every change of its exports. */
const NATIVE_ABI = 12;

/** The package's root: src/engine/ and dist/engine/ both sit two levels below it. */
const PACKAGE_ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const PACKAGE_BUILD = join(PACKAGE_ROOT, 'native', 'build');
const BUILD_SCRIPT = join(PACKAGE_ROOT, 'native', 'build.mjs');
/** A failed first-use build leaves this in its cache folder, so that later runs do not retry it. */
const FAILED_MARK = 'build-failed.txt';
/** Longer than any build: a lock this old was left by a builder that died. */
const LOCK_STALE_MS = 5 * 60_000;

function packageVersion(): string {
  try {
    return (JSON.parse(readFileSync(join(PACKAGE_ROOT, 'package.json'), 'utf8')) as { version?: string }).version ?? '0';
  } catch {
    return '0';
  }
}

/** The cache folder for this package version, platform, CPU and sources ($SIAMESE_CACHE_DIR/...). */
export function nativeCacheDir(): string {
  const base = process.env['SIAMESE_CACHE_DIR'] ?? join(process.env['XDG_CACHE_HOME'] || join(homedir(), '.cache'), 'siamese-lab');
  return join(base, cacheKey(packageVersion()));
}

/** A clone (sources present) rebuilds with npm's script; an installed package with npm rebuild. */
function rebuildCommand(): string {
  return existsSync(join(PACKAGE_ROOT, 'src')) ? 'npm run build:native' : 'npm rebuild siamese-lab';
}

interface Loaded {
  addon: NativeAddon | null;
  status: NativeStatus;
}

let loaded: Loaded | null = null;

function readBuildInfo(dir: string): NativeBuildInfo | undefined {
  try {
    return JSON.parse(readFileSync(join(dir, 'build-info.json'), 'utf8')) as NativeBuildInfo;
  } catch {
    return undefined;
  }
}

/** Load the addon in dir, or say why not (null: there is none). */
function tryDir(dir: string, origin: NativeStatus['origin']): Loaded | null {
  const path = join(dir, 'siamese.node');
  if (!existsSync(path)) return null;
  const build = readBuildInfo(dir);
  const fail = (reason: NativeUnavailable, detail: string): Loaded => ({
    addon: null,
    status: { available: false, detail, path, build, reason, fix: origin === 'env' ? `node native/build.mjs --out ${dir}, or unset SIAMESE_NATIVE_DIR` : rebuildCommand() },
  });
  // Built with -march=native: refuse a build made on a CPU with another instruction set rather
  // than crash on an unknown instruction.
  if (build?.march === 'native' && build.cpuFingerprint !== undefined && build.cpuFingerprint !== cpuFingerprint()) {
    return fail('other-cpu', `${path} was built for another CPU (${build.cpu ?? '?'})`);
  }
  if (build?.sources !== undefined && build.sources !== sourceHash()) {
    return fail('stale', `${path} was built from other sources than native/src`);
  }
  try {
    const addon = createRequire(import.meta.url)(path) as NativeAddon;
    const info = JSON.parse(addon.info()) as NativeStatus['info'] & { abi: number };
    if (info.abi !== NATIVE_ABI) return fail('stale', `${path} has ABI ${info.abi}, expected ${NATIVE_ABI}`);
    // the batch losses run their products in it from now on (the same bits as without)
    useBatchKernels(addon);
    return { addon, status: { available: true, detail: `${path} (${info.isa})`, info, path, origin, build } };
  } catch (e) {
    return fail('load-failed', `${path} failed to load: ${(e as Error).message.split('\n')[0]}`);
  }
}

/**
 * Build the addon into the cache folder with native/build.mjs, saying so on stderr (the first run
 * after an install without scripts waits for it, about 10 to 30 seconds).
 */
function buildIntoCache(dir: string): Loaded {
  const failed = join(dir, FAILED_MARK);
  const known = (): Loaded | null => {
    if (!existsSync(failed)) return null;
    const why = readFileSync(failed, 'utf8').trim();
    return { addon: null, status: { available: false, detail: `not built: ${why} (${failed})`, reason: 'build-failed', fix: fixFor(why) } };
  };
  const before = known();
  if (before) return before;
  // One builder at a time (compare's worker threads, two commands at once): the others wait for
  // its addon or its failure. A lock older than the longest build is a crashed builder's.
  const lock = `${dir}.lock`;
  try {
    mkdirSync(dirname(dir), { recursive: true });
    try {
      mkdirSync(lock);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      const deadline = Date.now() + LOCK_STALE_MS;
      const nap = new Int32Array(new SharedArrayBuffer(4));
      while (existsSync(lock) && Date.now() < deadline && Date.now() - statSync(lock, { throwIfNoEntry: false })!.mtimeMs < LOCK_STALE_MS) Atomics.wait(nap, 0, 0, 250);
      const done = tryDir(dir, 'cache') ?? known();
      if (done) return done;
      rmSync(lock, { recursive: true, force: true });
      mkdirSync(lock);
    }
  } catch {
    // no lock to be had (an unwritable cache): build anyway, the build fails or renames in whole
  }
  try {
    return buildLocked(dir, failed);
  } finally {
    rmSync(lock, { recursive: true, force: true });
  }
}

/** The build itself, with native/build.mjs, saying so on stderr. */
function buildLocked(dir: string, failed: string): Loaded {
  process.stderr.write(`siamese-lab: building the native engine for this CPU into ${dir} (first use, about 10-30 s)\n`);
  let why: string;
  try {
    execFileSync(process.execPath, [BUILD_SCRIPT, '--out', dir, '--strict'], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, SIAMESE_REQUIRE_NATIVE: '1' } });
    const r = tryDir(dir, 'built-now');
    if (r?.addon) {
      process.stderr.write(`siamese-lab: native engine built (${r.status.info?.isa ?? '?'})\n`);
      return r;
    }
    why = r ? r.status.detail : 'the build left no addon';
  } catch (e) {
    // build.mjs says why in one line: "siamese-lab: native engine not built (REASON); ..."
    const out = String((e as { stdout?: Buffer }).stdout ?? '') + String((e as { stderr?: Buffer }).stderr ?? '');
    why = /not built \((.*)\); training/.exec(out)?.[1] ?? (out.trim().split('\n')[0] || (e as Error).message.split('\n')[0]!);
  }
  try {
    mkdirSync(dir, { recursive: true });
    writeFileSync(failed, `${why}\n`);
  } catch {
    // an unwritable cache: the next run tries again
  }
  return { addon: null, status: { available: false, detail: `not built: ${why}`, reason: 'build-failed', fix: fixFor(why) } };
}

function fixFor(why: string): string {
  return /compiler|headers|node_api/.test(why)
    ? `install a C compiler and Node's headers (Debian: apt-get install build-essential), then ${rebuildCommand()}`
    : rebuildCommand();
}

function load(): Loaded {
  if (loaded) return loaded;
  if (process.env['SIAMESE_NATIVE'] === '0') {
    loaded = { addon: null, status: { available: false, detail: 'disabled by SIAMESE_NATIVE=0', reason: 'disabled', fix: 'unset SIAMESE_NATIVE' } };
    return loaded;
  }
  const chosen = process.env['SIAMESE_NATIVE_DIR'];
  if (chosen) {
    // the one folder asked for: a missing or refused addon there is reported, never replaced
    loaded = tryDir(resolve(chosen), 'env') ?? {
      addon: null,
      status: {
        available: false,
        detail: `no addon at ${join(resolve(chosen), 'siamese.node')} (SIAMESE_NATIVE_DIR)`,
        path: join(resolve(chosen), 'siamese.node'),
        reason: 'missing',
        fix: `node native/build.mjs --out ${resolve(chosen)}, or unset SIAMESE_NATIVE_DIR`,
      },
    };
    return loaded;
  }
  const pkg = tryDir(PACKAGE_BUILD, 'package');
  if (pkg?.addon) return (loaded = pkg);
  const dir = nativeCacheDir();
  const cached = tryDir(dir, 'cache');
  if (cached?.addon) return (loaded = cached);
  if (process.env['SIAMESE_NATIVE_BUILD'] === '0') {
    loaded = pkg ?? cached ?? {
      addon: null,
      status: { available: false, detail: 'not built (first-use build disabled by SIAMESE_NATIVE_BUILD=0)', reason: 'missing', fix: rebuildCommand() },
    };
    return loaded;
  }
  const built = buildIntoCache(dir);
  // when the build failed, the package's own addon (for another CPU, stale) says more
  loaded = built.addon || !pkg ? built : { addon: null, status: { ...pkg.status, detail: `${pkg.status.detail}; ${built.status.detail}`, fix: built.status.fix } };
  return loaded;
}

export function nativeStatus(): NativeStatus {
  return load().status;
}

export function nativeAvailable(): boolean {
  return load().addon !== null;
}

let noted = false;

/**
 * One line on stderr, once per thread, when training falls back to TF.js because the addon is
 * missing, failed to build or was built for another CPU (not when it was disabled on purpose).
 */
export function noteTfjsFallback(): void {
  const st = load().status;
  if (noted || st.available || st.reason === 'disabled') return;
  noted = true;
  process.stderr.write(`siamese-lab: training on the TF.js engine (about 25x slower): ${st.detail}; fix: ${st.fix ?? rebuildCommand()} (see \`siamese doctor\`)\n`);
}

/** The loaded addon, for the network classes (throws where it is not available). */
export function nativeAddon(): NativeAddon {
  const { addon, status } = load();
  if (!addon) throw new NativeUnavailableError(`the native engine is not available: ${status.detail}`);
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
    if (!addon) throw new NativeUnavailableError(`the native engine is not available: ${status.detail}`);
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
