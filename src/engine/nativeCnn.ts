/**
 * The convolutional base network of src/model/cnn.ts in native memory (native/src/cnn.c):
 * k x k valid convolutions + ReLU + 2x2 max-pooling blocks, then dropout and the dense head, its
 * training step and inference in the addon's SIMD kernels on a thread pool. Parameters are
 * addressed as cnnNetwork's weightSpecs() orders them (conv_1.kernel, conv_1.bias, ...,
 * dense_1.kernel, dense_1.bias), in the same layouts (kernels HWIO).
 */
import { UsageError } from '../errors.ts';
import type { NamedTensor } from '../model/weights.ts';
import type { Rng } from '../rng.ts';
import { type NativeAddon, type NativeHandle, type NativeNet, type NativeOpt, nativeAddon } from './native.ts';

export interface NativeCnnShape {
  height: number;
  width: number;
  channels: number;
  kernelSize: number;
  /** filters of each convolution block (1 to 4 blocks) */
  filters: readonly number[];
  embeddingDim: number;
}

export class NativeCnn implements NativeNet {
  private readonly addon: NativeAddon;
  private handle: NativeHandle | null;
  readonly shape: NativeCnnShape;
  readonly outDim: number;
  private readonly sizes: number[];
  private _threads: number;

  /** Throws (one line) for a shape the network cannot take. */
  constructor(shape: NativeCnnShape, dropoutRate: number, threads: number) {
    this.addon = nativeAddon();
    this.shape = { ...shape, filters: [...shape.filters] };
    this.outDim = shape.embeddingDim;
    const { height, width, channels, kernelSize: k, filters, embeddingDim } = shape;
    this.handle = this.addon.cnnCreate(Int32Array.from([height, width, channels, k, embeddingDim, ...filters]), dropoutRate, Math.max(1, threads));
    this._threads = this.addon.cnnThreads(this.handle, 0);
    // parameter sizes in weightSpecs() order
    this.sizes = [];
    let h = height;
    let w = width;
    let cin = channels;
    for (const f of filters) {
      this.sizes.push(k * k * cin * f, f);
      h = Math.floor((h - k + 1) / 2);
      w = Math.floor((w - k + 1) / 2);
      cin = f;
    }
    this.sizes.push(h * w * cin * embeddingDim, embeddingDim);
  }

  private get h(): NativeHandle {
    if (!this.handle) throw new Error('the native model was disposed');
    return this.handle;
  }

  get threads(): number {
    return this._threads;
  }

  setThreads(n: number): void {
    this._threads = this.addon.cnnThreads(this.h, Math.max(1, n));
  }

  get paramCount(): number {
    return this.sizes.length;
  }

  paramSize(idx: number): number {
    return this.sizes[idx] ?? 0;
  }

  setParam(idx: number, data: Float32Array): void {
    this.addon.cnnParam(this.h, 0, 0, idx, data, true);
  }

  getParam(idx: number): Float32Array {
    const out = new Float32Array(this.paramSize(idx));
    this.addon.cnnParam(this.h, 0, 0, idx, out, false);
    return out;
  }

  getGrad(idx: number): Float32Array {
    const out = new Float32Array(this.paramSize(idx));
    this.addon.cnnParam(this.h, 1, 0, idx, out, false);
    return out;
  }

  getSlot(slot: number, idx: number): Float32Array {
    const out = new Float32Array(this.paramSize(idx));
    this.addon.cnnParam(this.h, 2, slot, idx, out, false);
    return out;
  }

  setSlot(slot: number, idx: number, data: Float32Array): void {
    this.addon.cnnParam(this.h, 2, slot, idx, data, true);
  }

  zeroSlots(): void {
    this.addon.cnnZeroSlots(this.h);
  }

  nonFinite(): number {
    return this.addon.cnnNonFinite(this.h);
  }

  /**
   * Training forward pass of images[rows] (bytes scaled by 1/255), with the dropout mask drawn
   * from `rng` exactly as rngDropout draws it for [rows, features] (the Rng advances). A batch
   * whose buffers would pass 2 GB is refused (UsageError) before anything is allocated.
   */
  forwardTrain(images: Uint8Array, inDim: number, rows: Int32Array, rng: Rng, out?: Float32Array): Float32Array {
    const emb = out ?? new Float32Array(rows.length * this.outDim);
    const state = Uint32Array.from(rng.getState());
    try {
      this.addon.cnnForwardTrain(this.h, images, inDim, rows, state, emb);
    } catch (e) {
      // a batch too large for the native buffers is the caller's choice (--batch-size): say so
      const msg = (e as Error).message;
      if (/over the \d+ MB limit/.test(msg)) throw new UsageError(msg);
      throw e;
    }
    rng.setState([state[0]!, state[1]!, state[2]!, state[3]!]);
    return emb;
  }

  backward(dEmb: Float32Array, optKind: NativeOpt, coef: Float32Array, apply: boolean): void {
    this.addon.cnnBackward(this.h, dEmb, optKind, coef, apply);
  }

  backwardPairs(ia: Int32Array, ib: Int32Array, k: Float32Array, optKind: NativeOpt, coef: Float32Array, apply: boolean): void {
    this.addon.cnnBackwardPairs(this.h, ia, ib, k, optKind, coef, apply);
  }

  embed(images: Uint8Array, inDim: number, rows: Int32Array, out?: Float32Array): Float32Array {
    const emb = out ?? new Float32Array(rows.length * this.outDim);
    this.addon.cnnEmbed(this.h, images, inDim, rows, emb);
    return emb;
  }

  setWeights(ws: readonly NamedTensor[]): void {
    ws.forEach((w, i) => this.setParam(i, w.data));
  }

  dispose(): void {
    if (this.handle) this.addon.dispose(this.handle);
    this.handle = null;
  }
}
