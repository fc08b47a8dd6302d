/**
 * Import of Keras 2.x HDF5 weight files (`model.save_weights('x.h5')` / `model.save('x.h5')`),
 * so that a Keras user's initial or trained weights load into our networks unchanged.
 *
 * Keras' layout: the root (or `/model_weights` for a whole saved model) has a `layer_names`
 * attribute listing the layers in model order; each layer group has a `weight_names` attribute
 * and the weights at `<layer>/<weight name>`, e.g. `dense_1/dense_1/kernel:0`, or for a nested
 * model `model_1/dense_1/kernel:0`. Dense kernels are `[in, out]`, row-major: the same layout as
 * our own kernels, so nothing is transposed. Files without these attributes are read by walking
 * the tree and ordering layers by name (`dense_2` before `dense_10`).
 *
 * HDF5 is read with h5wasm (the HDF5 C library in WebAssembly), always in a worker thread:
 * on a corrupt file the library can leak state or abort the whole WebAssembly instance, which
 * would poison every later read in the process. A worker that misbehaves is simply replaced.
 */
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import { rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { DataError, UsageError } from '../errors.ts';
import { fsErrorText, readFileBytes, removeStaleTemps, writeFileAtomic } from '../io/atomic.ts';
import type { NamedTensor, TensorSpec } from './weights.ts';

/** Name and shape the receiving network expects, in its own naming (`dense_1.kernel`, ...). */
export type ExpectedTensor = TensorSpec;

const HDF5_SIGNATURE = [0x89, 0x48, 0x44, 0x46, 0x0d, 0x0a, 0x1a, 0x0a]; // \x89HDF\r\n\x1a\n
const DEFAULT_TIMEOUT_MS = 60_000;
// Each HDF5 error leaks a little state inside h5wasm: a worker that has seen this many errors is
// replaced before it aborts (measured: the first abort after about 2,200 errors; an abort is
// handled anyway, as a failed request and a new worker). Starting a worker costs about 0.5 s of
// CPU, so replacing it more often than needed is what made fuzzing slow.
const RECYCLE_AFTER_ERRORS = 1000;

// The worker's own file (plain JavaScript, next to this one in src/ and in a compiled build).
const WORKER_URL = new URL('./hdf5Worker.js', import.meta.url);
// Memory the worker may use: a Keras weight file of the networks here is a few MB; these leave
// room for HDF5's own caches and keep a hostile file's declared sizes from costing more.
const MAX_WASM_BYTES = 160 * 2 ** 20;
const WORKER_LIMITS = { maxOldGenerationSizeMb: 64, maxYoungGenerationSizeMb: 16, stackSizeMb: 4 };

// ---------- messages exchanged with the worker ----------

interface ListedDataset {
  path: string;
  shape: number[] | null;
  float: boolean;
  dtype: string;
}
interface Listing {
  root: string;
  layerNames: string[] | null;
  layers: { name: string; weightNames: string[] | null }[];
  datasets: ListedDataset[];
}
interface WriteLayer {
  name: string;
  weights: { kind: string; shape: number[]; data: Float32Array }[];
}
type Request =
  | { op: 'list'; path: string }
  | { op: 'read'; path: string; items: { dataset: string; count: number }[] }
  | { op: 'write'; path: string; layers: WriteLayer[] };
type Reply = { ok: true; result: unknown } | { ok: false; error: string; aborted: boolean };

/** HDF5's error stack is many lines; its last "minor:" line is the useful reason. */
function hdf5Reason(raw: string, aborted: boolean): string {
  if (aborted) return 'the HDF5 library aborted';
  const minors = [...raw.matchAll(/minor: (.+)/g)];
  const last = minors.length > 0 ? minors[minors.length - 1]![1]!.trim() : raw.split('\n')[0]!.trim();
  return (last.charAt(0).toLowerCase() + last.slice(1)).slice(0, 200);
}

/** Thrown inside this module when an HDF5 request fails; callers turn it into a DataError. */
class Hdf5Failure extends Error {
  /** fatal: the worker is gone or wedged (crash, exit, timeout) and must be replaced */
  constructor(
    message: string,
    readonly fatal = false,
  ) {
    super(message);
  }
}

/** One h5wasm instance in a worker thread, replaced when it times out, dies or has seen many errors. */
class Hdf5Worker {
  private worker: Worker | null = null;
  private starting: Promise<Worker> | null = null;
  private errors = 0;
  private queue: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly timeoutMs: number,
    private readonly maxWasmBytes: number,
  ) {}

  private start(): Promise<Worker> {
    if (this.worker) return Promise.resolve(this.worker);
    if (this.starting) return this.starting;
    this.starting = new Promise<Worker>((resolve, reject) => {
      const w = new Worker(WORKER_URL, {
        workerData: { h5wasmUrl: import.meta.resolve('h5wasm/node'), maxWasmBytes: this.maxWasmBytes },
        resourceLimits: WORKER_LIMITS,
        // HDF5 and emscripten write diagnostics to stderr; the library never prints
        stdout: true,
        stderr: true,
      });
      w.stdout.resume();
      w.stderr.resume();
      const fail = (why: string): void => {
        this.starting = null;
        void w.terminate();
        reject(new Error(`cannot start the HDF5 reader (h5wasm): ${why}`));
      };
      const onStartError = (e: Error): void => fail(e.message);
      const onStartExit = (code: number): void => fail(`the worker exited with code ${code}`);
      w.once('error', onStartError);
      w.once('exit', onStartExit);
      w.once('message', (m: { ready: boolean; error?: string }) => {
        w.off('error', onStartError);
        w.off('exit', onStartExit);
        if (!m.ready) return fail(m.error ?? 'unknown error');
        this.worker = w;
        this.starting = null;
        // while idle: an error or exit must not crash the host; the next call starts a new worker
        w.on('error', () => undefined);
        w.on('exit', () => {
          if (this.worker === w) this.worker = null;
        });
        w.unref();
        resolve(w);
      });
    });
    return this.starting;
  }

  private async drop(): Promise<void> {
    const w = this.worker;
    this.worker = null;
    this.errors = 0;
    if (w) await w.terminate();
  }

  /** Run one request; requests are serialised (one WebAssembly instance, one thread). */
  call(req: Request): Promise<unknown> {
    const run = this.queue.then(() => this.callNow(req));
    this.queue = run.catch(() => undefined);
    return run;
  }

  private async callNow(req: Request): Promise<unknown> {
    const w = await this.start();
    w.ref(); // keep the process alive while we wait for the answer
    let timer: NodeJS.Timeout | undefined;
    try {
      const reply = await new Promise<Reply>((resolve, reject) => {
        const cleanup = (): void => {
          w.off('message', onMessage);
          w.off('error', onError);
          w.off('exit', onExit);
        };
        const onMessage = (m: Reply): void => {
          cleanup();
          resolve(m);
        };
        const onError = (e: Error): void => {
          cleanup();
          reject(new Hdf5Failure(`the HDF5 reader crashed (${e.message})`, true));
        };
        const onExit = (code: number): void => {
          cleanup();
          reject(new Hdf5Failure(`the HDF5 reader exited (code ${code})`, true));
        };
        w.on('message', onMessage);
        w.once('error', onError);
        w.once('exit', onExit);
        timer = setTimeout(() => {
          cleanup();
          reject(new Hdf5Failure(`timed out after ${this.timeoutMs / 1000} s (a corrupt file can make HDF5 loop)`, true));
        }, this.timeoutMs);
        w.postMessage(req);
      });
      if (reply.ok) return reply.result;
      if (reply.aborted || ++this.errors >= RECYCLE_AFTER_ERRORS) await this.drop();
      throw new Hdf5Failure(hdf5Reason(reply.error, reply.aborted));
    } catch (e) {
      if (!(e instanceof Hdf5Failure) || e.fatal) await this.drop();
      throw e;
    } finally {
      clearTimeout(timer);
      this.worker?.unref();
    }
  }

  close(): Promise<void> {
    return this.queue.then(() => this.drop());
  }
}

// ---------- finding the weights in a listing ----------

interface FileWeight {
  kind: string; // "kernel", "bias", ...
  dataset: string; // path from the root of the file
  shape: number[] | null;
  float: boolean;
  dtype: string;
}
interface FileLayer {
  name: string;
  weights: FileWeight[];
}

/** "kernel:0" -> "kernel" */
function weightKind(weightName: string): string {
  const base = weightName.slice(weightName.lastIndexOf('/') + 1);
  return base.replace(/:\d+$/, '');
}

/** Natural order: dense_2 before dense_10. */
function naturalCompare(a: string, b: string): number {
  return a.localeCompare(b, 'en', { numeric: true });
}

function kindRank(kind: string): number {
  return kind === 'kernel' ? 0 : kind === 'bias' ? 1 : 2;
}

function layersFromListing(listing: Listing, file: string): FileLayer[] {
  const prefix = listing.root ? listing.root + '/' : '';
  const byPath = new Map(listing.datasets.map((d) => [d.path, d]));
  const layers: FileLayer[] = [];
  const hasAttrs = listing.layerNames !== null && listing.layers.some((l) => (l.weightNames ?? []).length > 0);
  if (hasAttrs) {
    // Keras' own order: layer_names, then weight_names inside each layer. A nested model
    // (model_1 holding dense_1..3) lists several Dense layers under one group.
    for (const l of listing.layers) {
      for (const wn of l.weightNames ?? []) {
        const path = `${l.name}/${wn}`;
        const d = byPath.get(path);
        if (!d) throw new DataError(`${file}: layer ${l.name} lists weight ${wn}, but the file has no dataset ${prefix}${path}`);
        const slash = wn.lastIndexOf('/');
        const sub = slash > 0 ? wn.slice(0, slash).split('/').pop()! : l.name;
        const last = layers[layers.length - 1];
        const w = { kind: weightKind(wn), dataset: prefix + path, shape: d.shape, float: d.float, dtype: d.dtype };
        if (last && last.name === sub) last.weights.push(w);
        else layers.push({ name: sub, weights: [w] });
      }
    }
  } else {
    // No attributes: group datasets by their parent group, named after its last component.
    const groups = new Map<string, FileWeight[]>();
    for (const d of listing.datasets) {
      const slash = d.path.lastIndexOf('/');
      const parent = slash > 0 ? d.path.slice(0, slash) : '';
      const list = groups.get(parent) ?? [];
      list.push({ kind: weightKind(d.path), dataset: prefix + d.path, shape: d.shape, float: d.float, dtype: d.dtype });
      groups.set(parent, list);
    }
    const named = [...groups].map(([parent, weights]) => ({
      parent,
      name: parent.slice(parent.lastIndexOf('/') + 1) || '(root)',
      weights: weights.sort((a, b) => kindRank(a.kind) - kindRank(b.kind) || naturalCompare(a.kind, b.kind)),
    }));
    named.sort((a, b) => naturalCompare(a.name, b.name) || naturalCompare(a.parent, b.parent));
    for (const n of named) layers.push({ name: n.name, weights: n.weights });
  }
  return layers;
}

function shapeText(shape: readonly number[] | null): string {
  return shape === null ? 'scalar' : `[${shape.join(',')}]`;
}

/** Split our names (`dense_1.kernel`) into layers, keeping the order. */
function expectedLayers(expected: readonly ExpectedTensor[]): { name: string; weights: { kind: string; spec: ExpectedTensor }[] }[] {
  const out: { name: string; weights: { kind: string; spec: ExpectedTensor }[] }[] = [];
  for (const spec of expected) {
    const dot = spec.name.lastIndexOf('.');
    const layer = dot > 0 ? spec.name.slice(0, dot) : spec.name;
    const kind = dot > 0 ? spec.name.slice(dot + 1) : spec.name;
    const last = out[out.length - 1];
    if (last && last.name === layer) last.weights.push({ kind, spec });
    else out.push({ name: layer, weights: [{ kind, spec }] });
  }
  return out;
}

/** Pair the file's layers with the expected ones, in order; any mismatch is a one-line DataError. */
function matchLayers(file: string, layers: FileLayer[], expected: readonly ExpectedTensor[]): { w: FileWeight; spec: ExpectedTensor }[] {
  const want = expectedLayers(expected);
  const names = (ls: { name: string }[]): string => ls.map((l) => l.name).join(', ');
  if (layers.length === 0) throw new DataError(`${file}: no layer weights found in this HDF5 file`);
  if (layers.length !== want.length) {
    throw new DataError(
      `${file}: the file has ${layers.length} layers with weights (${names(layers)}), the base network expects ${want.length} (${names(want)})`,
    );
  }
  const pairs: { w: FileWeight; spec: ExpectedTensor }[] = [];
  for (let i = 0; i < layers.length; i++) {
    const got = layers[i]!;
    const exp = want[i]!;
    const gotKinds = got.weights.map((w) => w.kind).join(', ');
    const expKinds = exp.weights.map((w) => w.kind).join(', ');
    if (gotKinds !== expKinds) {
      throw new DataError(`${file}: layer ${got.name} has weights ${gotKinds}, the base network expects ${expKinds}`);
    }
    for (let j = 0; j < got.weights.length; j++) {
      const w = got.weights[j]!;
      const spec = exp.weights[j]!.spec;
      if (!w.float) throw new DataError(`${file}: layer ${got.name} ${w.kind} has dtype ${w.dtype}, expected float32`);
      const same = w.shape !== null && w.shape.length === spec.shape.length && w.shape.every((d, k) => d === spec.shape[k]);
      if (!same) {
        throw new DataError(
          `${file}: layer ${got.name} ${w.kind} has shape ${shapeText(w.shape)}, the base network expects ${shapeText(spec.shape)}`,
        );
      }
      pairs.push({ w, spec });
    }
  }
  return pairs;
}

// ---------- signature ----------

/** HDF5 puts its signature at 0, or after a user block at 512, 1024, 2048, ... bytes. */
function hasSignatureAt(fd: number, size: number): boolean {
  const buf = Buffer.alloc(8);
  for (let at = 0; at + 8 <= size; at = at === 0 ? 512 : at * 2) {
    if (fs.readSync(fd, buf, 0, 8, at) === 8 && HDF5_SIGNATURE.every((b, i) => buf[i] === b)) return true;
  }
  return false;
}

/** True when `path` is a readable file that starts like an HDF5 file (signature only). */
export function isKerasH5(path: string): boolean {
  let fd: number | undefined;
  try {
    fd = fs.openSync(path, 'r');
    return hasSignatureAt(fd, fs.fstatSync(fd).size);
  } catch {
    return false;
  } finally {
    if (fd !== undefined) fs.closeSync(fd);
  }
}

function checkSignature(path: string): void {
  let fd: number;
  try {
    fd = fs.openSync(path, 'r');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new DataError(code === 'ENOENT' ? `${path}: no such file` : `${path}: cannot read (${fsErrorText(e)})`);
  }
  try {
    const st = fs.fstatSync(fd);
    if (!st.isFile()) throw new DataError(`${path}: not a regular file`);
    if (!hasSignatureAt(fd, st.size)) {
      throw new DataError(`${path}: not an HDF5 file (no HDF5 signature); Keras weights are saved with model.save_weights('weights.h5')`);
    }
  } finally {
    fs.closeSync(fd);
  }
}

// ---------- public API ----------

function checkExpected(expected: readonly ExpectedTensor[]): void {
  if (expected.length === 0) throw new UsageError('readKerasWeights: the expected tensor list is empty');
  for (const e of expected) {
    if (!e.shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
      throw new UsageError(`readKerasWeights: expected tensor ${e.name} has a bad shape ${shapeText(e.shape)}`);
    }
  }
}

/**
 * A reusable Keras HDF5 reader: one h5wasm worker for many files (tests, batch conversions).
 * Call close() when done. For a single file, readKerasWeights is simpler.
 */
export class KerasH5Reader {
  private readonly hdf5: Hdf5Worker;

  /** maxMemoryBytes: the WebAssembly heap the HDF5 library may grow to (default 160 MB) */
  constructor(options: { timeoutMs?: number; maxMemoryBytes?: number } = {}) {
    this.hdf5 = new Hdf5Worker(options.timeoutMs ?? DEFAULT_TIMEOUT_MS, options.maxMemoryBytes ?? MAX_WASM_BYTES);
  }

  /** See readKerasWeights. */
  async readWeights(path: string, expected: readonly ExpectedTensor[]): Promise<NamedTensor[]> {
    checkExpected(expected);
    checkSignature(path);
    let listing: Listing;
    try {
      listing = (await this.hdf5.call({ op: 'list', path })) as Listing;
    } catch (e) {
      if (e instanceof Hdf5Failure) throw new DataError(`${path}: not a readable HDF5 file (${e.message})`);
      throw e;
    }
    const pairs = matchLayers(path, layersFromListing(listing, path), expected);
    let arrays: Float32Array[];
    try {
      const items = pairs.map((p) => ({ dataset: p.w.dataset, count: p.spec.shape.reduce((a, b) => a * b, 1) }));
      arrays = (await this.hdf5.call({ op: 'read', path, items })) as Float32Array[];
    } catch (e) {
      if (e instanceof Hdf5Failure) throw new DataError(`${path}: cannot read the weight data (${e.message})`);
      throw e;
    }
    return pairs.map((p, i) => ({ name: p.spec.name, shape: [...p.spec.shape], data: arrays[i]! }));
  }

  /** See writeKerasH5. */
  async writeWeights(path: string, tensors: readonly NamedTensor[]): Promise<void> {
    const layers: WriteLayer[] = [];
    for (const t of tensors) {
      const dot = t.name.lastIndexOf('.');
      if (dot <= 0 || /[/.]/.test(t.name.slice(0, dot)) || t.name.slice(dot + 1) === '') {
        throw new UsageError(`writeKerasH5: tensor name '${t.name}' is not of the form <layer>.<weight>, e.g. dense_1.kernel`);
      }
      if (t.shape.reduce((a, b) => a * b, 1) !== t.data.length) {
        throw new UsageError(`writeKerasH5: tensor ${t.name} has shape ${shapeText(t.shape)} but ${t.data.length} values`);
      }
      const layer = t.name.slice(0, dot);
      const w = { kind: t.name.slice(dot + 1), shape: [...t.shape], data: t.data.slice() };
      const last = layers[layers.length - 1];
      if (last && last.name === layer) last.weights.push(w);
      else if (layers.some((l) => l.name === layer)) throw new UsageError(`writeKerasH5: the weights of layer ${layer} are not together`);
      else layers.push({ name: layer, weights: [w] });
    }
    // h5wasm writes to a path itself; write a scratch file, then move the bytes into place atomically
    const tmp = tmpdir();
    removeStaleScratch(tmp);
    const scratch = join(tmp, `${SCRATCH_PREFIX}${process.pid}-${randomBytes(6).toString('hex')}.h5`);
    // a failure here is the temporary folder's, not the output's: say so
    const tmpFailure = (why: string): DataError =>
      new DataError(`cannot write the temporary HDF5 file in ${tmp} (${why}); free space there or set TMPDIR to a writable folder`);
    try {
      try {
        fs.writeFileSync(scratch, '', { flag: 'wx' });
      } catch (e) {
        throw tmpFailure(fsErrorText(e));
      }
      try {
        await this.hdf5.call({ op: 'write', path: scratch, layers });
      } catch (e) {
        if (e instanceof Hdf5Failure) throw tmpFailure(tooLittleSpace(tmp, layers) ? 'no space left on device' : `HDF5: ${e.message}`);
        throw e;
      }
      let bytes: Uint8Array;
      try {
        bytes = await readFileBytes(scratch);
      } catch (e) {
        throw tmpFailure((e as Error).message);
      }
      await writeFileAtomic(path, bytes);
    } finally {
      // never let the cleanup's own error (TMPDIR is not a folder, ...) hide the real one
      await rm(scratch, { force: true }).catch(() => undefined);
    }
  }

  close(): Promise<void> {
    return this.hdf5.close();
  }
}

/** h5wasm reports a full disk as a generic HDF5 error: tell it by the free space left. */
function tooLittleSpace(dir: string, layers: readonly WriteLayer[]): boolean {
  try {
    const st = fs.statfsSync(dir);
    const needed = layers.reduce((s, l) => s + l.weights.reduce((t, w) => t + 4 * w.data.length, 0), 0) + (1 << 20);
    return st.bavail * st.bsize < needed;
  } catch {
    return false;
  }
}

const SCRATCH_PREFIX = 'siamese-keras-';
const SCRATCH_NAME = /^siamese-keras-(\d+)-[0-9a-f]{12}\.h5$/;

/** Remove the scratch files of exports that were killed mid-write (their pid is no longer running). */
export function removeStaleScratch(dir: string): string[] {
  return removeStaleTemps(dir, SCRATCH_NAME);
}

/**
 * Read a Keras 2.x HDF5 weight file (whole Siamese model or base network alone) and map its
 * layers, in model order, onto `expected` (our names and shapes, e.g. `dense_1.kernel` [784,128],
 * `dense_1.bias` [128], ...). Names need not match (Keras may number a model's layers dense_4..6);
 * order, weight kinds (kernel, bias) and shapes must. Any mismatch, a non-HDF5 file or a corrupt
 * one is a DataError naming the file and the problem.
 */
export async function readKerasWeights(path: string, expected: readonly ExpectedTensor[]): Promise<NamedTensor[]> {
  const reader = new KerasH5Reader();
  try {
    return await reader.readWeights(path, expected);
  } finally {
    await reader.close();
  }
}

/**
 * Write weights named `<layer>.<weight>` (`dense_1.kernel`, `dense_1.bias`, ...) as a Keras 2
 * weight file of a base network: `layer_names`, `weight_names`, `<layer>/<layer>/kernel:0`.
 * Written atomically. Meant for `model.load_weights()` in Keras 2; checked here by reading it back.
 */
export async function writeKerasH5(path: string, tensors: readonly NamedTensor[]): Promise<void> {
  const reader = new KerasH5Reader();
  try {
    await reader.writeWeights(path, tensors);
  } finally {
    await reader.close();
  }
}
