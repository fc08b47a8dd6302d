/**
 * Per-epoch embeddings of a fixed subset of the test images (`embeddings.bin` in a run
 * directory), so that `serve` can show the embedding move through training.
 *
 * Layout: one append-only file.
 *   magic "SLEMBED1" (8 bytes), u32 LE n = length of the JSON header, the JSON header (UTF-8,
 *   padded with spaces to a multiple of 4 bytes): { format, version, rows, dim, encoding,
 *   indices (the subset's test-image numbers in the data set), labels (their classes) };
 *   then one fixed-size record per stored epoch: u32 epoch, u32 rows, float32 scale[rows],
 *   int8 q[rows * dim], zero padding to a multiple of 4 bytes.
 * Row r of an epoch decodes to q[r, c] * scale[r]: per-row int8 with its own scale
 * (max |x| / 127), so every value is within scale / 2 of the true one, 0.4% of the row's largest
 * coordinate. Why this: 2,000 x 128 values take 264 KB an epoch (float16: 512 KB, float32: 1 MB),
 * 5.5 MB for a 20-epoch run, and distances and t-SNE do not see an error that small.
 * Why one append-only file: records have a fixed size, so a crash mid-append leaves a short tail
 * that readers ignore (they count whole records) and a resume cuts off; a file per epoch would
 * scatter dozens of files over every run directory.
 */
import { closeSync, existsSync, fstatSync, openSync, readSync } from 'node:fs';
import * as fsp from 'node:fs/promises';
import { join } from 'node:path';
import type { Dataset } from '../data/dataset.ts';
import { stratifiedSubsetOf } from '../data/subset.ts';
import { DataError, DiskFullError } from '../errors.ts';
import { fsErrorText, writeFileAtomic } from '../io/atomic.ts';
import type { Training } from './trainer.ts';

export const EMBEDDINGS_FILE = 'embeddings.bin';
/** test images whose embeddings `train` and `compare` store per epoch, unless told otherwise */
export const DEFAULT_SNAPSHOT_POINTS = 2000;
/**
 * The subset's seed: fixed, so every run of a data set and split stores the same images (and,
 * for compare's default t-SNE seed, the same ones as its results.json panels).
 */
export const SNAPSHOT_SEED = 0;

const MAGIC = 'SLEMBED1';

export interface EmbeddingsHeader {
  /** the literal itself, not `typeof` a constant of this file, so that users of the package can name it */
  format: 'siamese-lab epoch embeddings';
  version: 1;
  rows: number;
  dim: number;
  encoding: 'int8-row-scale';
  /** the subset's test-image numbers in the data set's own test split (ascending) */
  indices: number[];
  /** their classes (the data set's own class numbers) */
  labels: number[];
}
const FORMAT: EmbeddingsHeader['format'] = 'siamese-lab epoch embeddings';

/** What a reader needs: the header, where records start, their size, and the epoch of each whole record. */
export interface EmbeddingsIndex {
  header: EmbeddingsHeader;
  dataStart: number;
  recordBytes: number;
  /** epoch of record k (ascending; gaps where a run resumed without the file) */
  epochs: number[];
}

export function recordBytes(rows: number, dim: number): number {
  return 8 + 4 * rows + Math.ceil((rows * dim) / 4) * 4;
}

/**
 * The subset's test images: `points` of the split's test classes (all, if fewer), stratified over
 * them, the same for every run of a data set and split.
 */
export function snapshotSubset(dataset: Dataset, testClasses: readonly number[], points: number): number[] {
  return stratifiedSubsetOf(dataset.test.labels, testClasses, points, SNAPSHOT_SEED);
}

/** Encode one epoch's [rows, dim] embeddings as a record. */
export function encodeRecord(epoch: number, emb: Float32Array, rows: number, dim: number): Uint8Array {
  const bytes = new Uint8Array(recordBytes(rows, dim));
  const view = new DataView(bytes.buffer);
  view.setUint32(0, epoch, true);
  view.setUint32(4, rows, true);
  const q = new Int8Array(bytes.buffer, 8 + 4 * rows, rows * dim);
  for (let r = 0; r < rows; r++) {
    let max = 0;
    for (let c = 0; c < dim; c++) max = Math.max(max, Math.abs(emb[r * dim + c]!));
    const scale = Math.fround(max / 127);
    view.setFloat32(8 + 4 * r, scale, true);
    if (scale === 0) continue;
    for (let c = 0; c < dim; c++) q[r * dim + c] = Math.max(-127, Math.min(127, Math.round(emb[r * dim + c]! / scale)));
  }
  return bytes;
}

/** Decode a record's body back to [rows, dim] float32. */
export function decodeRecord(bytes: Uint8Array, rows: number, dim: number): { epoch: number; embeddings: Float32Array } {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const q = new Int8Array(bytes.buffer, bytes.byteOffset + 8 + 4 * rows, rows * dim);
  const out = new Float32Array(rows * dim);
  for (let r = 0; r < rows; r++) {
    const scale = view.getFloat32(8 + 4 * r, true);
    for (let c = 0; c < dim; c++) out[r * dim + c] = q[r * dim + c]! * scale;
  }
  return { epoch: view.getUint32(0, true), embeddings: out };
}

/** The file's first bytes: magic, header length, header. */
export function encodeHeader(h: EmbeddingsHeader): Uint8Array {
  let json = JSON.stringify(h);
  while ((Buffer.byteLength(json) + 12) % 4 !== 0) json += ' ';
  const body = Buffer.from(json);
  const out = new Uint8Array(12 + body.length);
  out.set(Buffer.from(MAGIC), 0);
  new DataView(out.buffer).setUint32(8, body.length, true);
  out.set(body, 12);
  return out;
}

function readAt(fd: number, pos: number, length: number, path: string): Uint8Array {
  const buf = new Uint8Array(length);
  let got = 0;
  while (got < length) {
    const n = readSync(fd, buf, got, length - got, pos + got);
    if (n === 0) throw new DataError(`${path}: ends early (${pos + got} bytes)`);
    got += n;
  }
  return buf;
}

function openToRead(path: string): number {
  try {
    return openSync(path, 'r');
  } catch (e) {
    throw new DataError(`${path}: cannot read (${fsErrorText(e)})`);
  }
}

/** Header and the whole records of an embeddings file; a short last record is left out (being written). */
export function readEmbeddingsIndex(path: string): EmbeddingsIndex {
  const fd = openToRead(path);
  try {
    const size = fstatSync(fd).size;
    if (size < 12) throw new DataError(`${path}: not an embeddings file (too short)`);
    const head = readAt(fd, 0, 12, path);
    if (Buffer.from(head.subarray(0, 8)).toString('latin1') !== MAGIC) throw new DataError(`${path}: not an embeddings file (no ${MAGIC} magic)`);
    const n = new DataView(head.buffer).getUint32(8, true);
    if (12 + n > size || n > 16 << 20) throw new DataError(`${path}: header length ${n} runs past the file`);
    let h: EmbeddingsHeader;
    try {
      h = JSON.parse(Buffer.from(readAt(fd, 12, n, path)).toString('utf8')) as EmbeddingsHeader;
    } catch {
      throw new DataError(`${path}: the header is not valid JSON`);
    }
    const okInt = (x: unknown, min: number): boolean => Number.isInteger(x) && (x as number) >= min;
    if (
      h?.format !== FORMAT || h.version !== 1 || h.encoding !== 'int8-row-scale' || !okInt(h.rows, 1) || !okInt(h.dim, 1) ||
      h.rows * h.dim > 1 << 28 || !Array.isArray(h.indices) || !Array.isArray(h.labels) ||
      h.indices.length !== h.rows || h.labels.length !== h.rows || !h.indices.every((i) => okInt(i, 0)) || !h.labels.every((l) => okInt(l, 0))
    ) {
      throw new DataError(`${path}: the header is not that of a ${FORMAT} file, version 1`);
    }
    const dataStart = 12 + n;
    const rb = recordBytes(h.rows, h.dim);
    const count = Math.floor((size - dataStart) / rb);
    const epochs: number[] = [];
    for (let k = 0; k < count; k++) {
      const v = new DataView(readAt(fd, dataStart + k * rb, 8, path).buffer);
      const epoch = v.getUint32(0, true);
      if (v.getUint32(4, true) !== h.rows || (epochs.length > 0 && epoch <= epochs[epochs.length - 1]!)) {
        throw new DataError(`${path}: record ${k} is damaged (epoch ${epoch}, ${v.getUint32(4, true)} rows)`);
      }
      epochs.push(epoch);
    }
    return { header: h, dataStart, recordBytes: rb, epochs };
  } finally {
    closeSync(fd);
  }
}

/** One stored epoch's embeddings, [rows, dim] (decoded), read from the file without loading the rest. */
export function readEpochEmbeddings(path: string, index: EmbeddingsIndex, epoch: number): Float32Array {
  const k = index.epochs.indexOf(epoch);
  if (k < 0) throw new DataError(`${path}: no embeddings stored for epoch ${epoch}`);
  const fd = openToRead(path);
  try {
    const rec = readAt(fd, index.dataStart + k * index.recordBytes, index.recordBytes, path);
    return decodeRecord(rec, index.header.rows, index.header.dim).embeddings;
  } finally {
    closeSync(fd);
  }
}

/**
 * The writer a training run holds: opened once the Training is at its starting epoch (0, or the
 * checkpoint's on resume), it stores that epoch if the file lacks it, then one record per epoch.
 */
export class EpochEmbeddings {
  private constructor(
    private readonly path: string,
    private readonly local: Int32Array,
    private readonly rows: number,
    private readonly dim: number,
    private last: number,
    /** where the next record goes: written at its place, so a failed append is overwritten, never followed */
    private end: number,
  ) {}

  /**
   * Open (or create) `runDir`/embeddings.bin for a training. A new run (or one resumed without a
   * usable file) gets a new file with `points` images; a resumed run keeps its file's images and
   * drops any record beyond its checkpoint, so the file always matches the checkpoint's history.
   * points = 0 (and no file to continue): nothing is stored.
   */
  static async open(runDir: string, training: Training, source: Dataset, points: number, resume: boolean): Promise<EpochEmbeddings | undefined> {
    const path = join(runDir, EMBEDDINGS_FILE);
    const dim = training.network.embeddingDim;
    // the Training's test split holds the split's test classes only, renumbered; map to it
    const local = new Int32Array(source.test.n).fill(-1);
    const keep = new Set(training.split.testClasses);
    for (let i = 0, r = 0; i < source.test.n; i++) if (keep.has(source.test.labels[i]!)) local[i] = r++;
    let w: EpochEmbeddings | undefined;
    if (resume && existsSync(path)) {
      try {
        const idx = readEmbeddingsIndex(path);
        const { header: h } = idx;
        if (h.dim === dim && h.indices.every((i, r) => i < source.test.n && local[i]! >= 0 && source.test.labels[i] === h.labels[r])) {
          const kept = idx.epochs.filter((e) => e <= training.epoch).length;
          await fsp.truncate(path, idx.dataStart + kept * idx.recordBytes);
          const end = idx.dataStart + kept * idx.recordBytes;
          w = new EpochEmbeddings(path, Int32Array.from(h.indices, (i) => local[i]!), h.rows, dim, kept > 0 ? idx.epochs[kept - 1]! : -1, end);
        }
      } catch {
        // unreadable: start a new file below (it cannot be continued consistently)
      }
    }
    if (!w) {
      if (points <= 0) return undefined;
      const indices = snapshotSubset(source, training.split.testClasses, points);
      if (indices.length === 0) return undefined;
      const header: EmbeddingsHeader = {
        format: FORMAT, version: 1, rows: indices.length, dim, encoding: 'int8-row-scale', indices, labels: indices.map((i) => source.test.labels[i]!),
      };
      const head = encodeHeader(header);
      await writeFileAtomic(path, head);
      w = new EpochEmbeddings(path, Int32Array.from(indices, (i) => local[i]!), indices.length, dim, -1, head.length);
    }
    await w.record(training);
    return w;
  }

  /** Store the Training's current epoch (once: a second call for the same epoch does nothing). */
  async record(training: Training): Promise<void> {
    if (training.epoch <= this.last) return;
    const emb = training.embed(training.dataset.test, this.local);
    const rec = encodeRecord(training.epoch, emb, this.rows, this.dim);
    let fh: fsp.FileHandle | undefined;
    try {
      fh = await fsp.open(this.path, 'r+');
      await fh.write(rec, 0, rec.length, this.end);
    } catch (e) {
      const message = `${this.path}: cannot write (${fsErrorText(e)})`;
      throw (e as NodeJS.ErrnoException).code === 'ENOSPC' ? new DiskFullError(message) : new DataError(message);
    } finally {
      await fh?.close().catch(() => undefined);
    }
    this.end += rec.length;
    this.last = training.epoch;
  }
}
