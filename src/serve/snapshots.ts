/**
 * The explorer's per-epoch data for `siamese serve`: the embeddings a run stored every epoch
 * (train/epochEmbeddings.ts), their nearest neighbours in the full embedding space, and their
 * 2-D layouts. Each epoch is laid out by the project's t-SNE starting from the previous epoch's
 * layout (a warm start), so the points move coherently from epoch to epoch; the first stored
 * epoch starts from PCA. Layouts are computed on first request, in a worker thread (the server
 * keeps answering), and kept in memory up to a bound (least recently used go first). Nothing
 * is written: serve is read-only.
 */
import { statSync } from 'node:fs';
import type { Worker } from 'node:worker_threads';
import { DataError } from '../errors.ts';
import { startTsWorker } from '../experiments/pool.ts';
import { type EmbeddingsIndex, readEmbeddingsIndex, readEpochEmbeddings } from '../train/epochEmbeddings.ts';
import type { LayoutJob, LayoutReply } from './layoutWorker.ts';

/** t-SNE perplexity of the maps (lowered for small subsets: it must stay below (rows - 1) / 3) */
const PERPLEXITY = 30;

/** A small least-recently-used map. */
class Lru<V> {
  private readonly m = new Map<string, V>();
  constructor(private readonly max: number) {}
  get(k: string): V | undefined {
    const v = this.m.get(k);
    if (v !== undefined) {
      this.m.delete(k);
      this.m.set(k, v);
    }
    return v;
  }
  set(k: string, v: V): void {
    this.m.delete(k);
    this.m.set(k, v);
    while (this.m.size > this.max) this.m.delete(this.m.keys().next().value!);
  }
}

export interface Neighbour {
  /** row in the subset */
  i: number;
  /** Euclidean distance in the embedding space */
  d: number;
}

export class Snapshots {
  /** per file: its index, for the stat signature it was read at */
  private readonly indexes = new Lru<{ sig: string; index: EmbeddingsIndex }>(256);
  /** decoded epochs (1 MB each for 2,000 x 128) */
  private readonly decoded = new Lru<Float32Array>(8);
  /** layouts (16 KB each for 2,000 points): 400 = several runs' whole trainings */
  private readonly layouts: Lru<Float32Array>;
  private readonly pending = new Map<string, Promise<Float32Array>>();
  private worker: Worker | undefined;
  private nextId = 0;
  private readonly waiting = new Map<number, { resolve: (p: Float32Array) => void; reject: (e: Error) => void }>();

  constructor(maxLayouts = 400) {
    this.layouts = new Lru(maxLayouts);
  }

  /** The file's header and stored epochs (read again when the file changed). */
  index(file: string): EmbeddingsIndex {
    let sig: string;
    try {
      const s = statSync(file);
      sig = `${s.ino}:${s.size}:${s.mtimeMs}`;
    } catch {
      throw new DataError('this run stores no per-epoch embeddings (no embeddings.bin)');
    }
    const got = this.indexes.get(file);
    if (got && got.sig === sig) return got.index;
    const index = readEmbeddingsIndex(file);
    this.indexes.set(file, { sig, index });
    return index;
  }

  /** The identity of a file's content: stable while it grows by appends, new when it is rewritten. */
  private fileKey(file: string, idx: EmbeddingsIndex): string {
    let ino = 0;
    try {
      ino = statSync(file).ino;
    } catch {
      // gone since index(): the key only has to differ from a rewritten file's
    }
    return `${file}|${ino}|${idx.dataStart}|${idx.header.rows}|${idx.header.dim}`;
  }

  embeddings(file: string, epoch: number): { index: EmbeddingsIndex; data: Float32Array } {
    const index = this.index(file);
    if (!index.epochs.includes(epoch)) throw new DataError(`no embeddings stored for epoch ${epoch} (stored: ${index.epochs.join(', ') || 'none'})`);
    const key = `${this.fileKey(file, index)}|${epoch}`;
    let data = this.decoded.get(key);
    if (!data) {
      data = readEpochEmbeddings(file, index, epoch);
      this.decoded.set(key, data);
    }
    return { index, data };
  }

  /** The k nearest rows of row `i` at `epoch` in the full embedding space (brute force), nearest first. */
  neighbours(file: string, epoch: number, i: number, k: number): Neighbour[] {
    const { index, data } = this.embeddings(file, epoch);
    const { rows, dim } = index.header;
    if (!Number.isInteger(i) || i < 0 || i >= rows) throw new DataError(`point ${i} is not in the subset (0..${rows - 1})`);
    const out: Neighbour[] = [];
    for (let j = 0; j < rows; j++) {
      if (j === i) continue;
      let s = 0;
      for (let c = 0; c < dim; c++) {
        const d = data[i * dim + c]! - data[j * dim + c]!;
        s += d * d;
      }
      out.push({ i: j, d: Math.sqrt(s) });
    }
    out.sort((a, b) => a.d - b.d || a.i - b.i);
    return out.slice(0, k);
  }

  /**
   * The 2-D layout of `epoch`: every earlier stored epoch is laid out first (each warm-started
   * from the one before), unless already in memory; concurrent requests share the work.
   */
  async layout(file: string, epoch: number): Promise<Float32Array> {
    const index = this.index(file);
    const upto = index.epochs.indexOf(epoch);
    if (upto < 0) throw new DataError(`no embeddings stored for epoch ${epoch} (stored: ${index.epochs.join(', ') || 'none'})`);
    const base = this.fileKey(file, index);
    let prev: Float32Array | undefined;
    for (let k = 0; k <= upto; k++) {
      const e = index.epochs[k]!;
      const key = `${base}|${e}`;
      const cached = this.layouts.get(key);
      if (cached) {
        prev = cached;
        continue;
      }
      let p = this.pending.get(key);
      if (!p) {
        const init = prev;
        const { data } = this.embeddings(file, e);
        p = this.compute(data, index.header.rows, index.header.dim, init).finally(() => this.pending.delete(key));
        this.pending.set(key, p);
        p.then((pts) => this.layouts.set(key, pts), () => undefined);
      }
      prev = await p;
    }
    return prev!;
  }

  private compute(data: Float32Array, rows: number, dim: number, init: Float32Array | undefined): Promise<Float32Array> {
    const perplexity = Math.min(PERPLEXITY, (rows - 1) / 3);
    if (!(perplexity > 0) || rows < 4) return Promise.reject(new DataError(`too few points to lay out (${rows})`));
    const w = this.ensureWorker();
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.waiting.set(id, { resolve, reject });
      // copies: the cached arrays stay usable here
      w.postMessage({ id, data: data.slice(), rows, dim, perplexity, init: init?.slice() } satisfies LayoutJob);
    });
  }

  private ensureWorker(): Worker {
    if (this.worker) return this.worker;
    const w = startTsWorker(new URL('./layoutWorker.ts', import.meta.url), {});
    // an idle layout thread must not keep `serve` (or a test) alive
    w.unref();
    w.on('message', (m: LayoutReply) => {
      const p = this.waiting.get(m.id);
      if (!p) return;
      this.waiting.delete(m.id);
      if ('error' in m) p.reject(new DataError(`t-SNE: ${m.error}`));
      else p.resolve(m.points);
    });
    const fail = (e: Error): void => {
      if (this.worker === w) this.worker = undefined;
      for (const p of this.waiting.values()) p.reject(new DataError(`the layout thread failed: ${e.message.split('\n')[0]}`));
      this.waiting.clear();
    };
    w.on('error', fail);
    w.on('exit', (code) => fail(new Error(`exited with code ${code}`)));
    this.worker = w;
    return w;
  }

  async close(): Promise<void> {
    const w = this.worker;
    this.worker = undefined;
    if (w) await w.terminate();
  }
}
