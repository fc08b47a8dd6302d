/**
 * The jobs of a comparison, as plain serialisable requests, and the code that runs one. A worker
 * thread (worker.ts) runs them; so can the calling thread (tests, debugging). Jobs exchange files,
 * not big arrays: a training job writes its run directory, a distance job `distances.json` in
 * the run directory, a t-SNE job one JSON file. The caller reads those files afterwards, so
 * resumed and freshly trained runs are summarised by the same code.
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { Dataset } from '../data/dataset.ts';
import { type DataSpec, loadDataset, resolveDataSpec } from '../data/registry.ts';
import { initBackend } from '../engine/backend.ts';
import { DataError } from '../errors.ts';
import { writeFileAtomic } from '../io/atomic.ts';
import { buildNetwork } from '../model/build.ts';
import { loadWeights } from '../model/load.ts';
import { resolveConfig, type TrainConfig } from '../train/config.ts';
import { DISTANCES_FILE as EPOCH_DISTANCES_FILE } from '../train/epochDistances.ts';
import { EMBEDDINGS_FILE } from '../train/epochEmbeddings.ts';
import { trainRun } from '../train/run.ts';
import { readJson, RUN_FILES, RunDir } from '../train/runDir.ts';
import { type BatchInfo, type EpochLog, Training } from '../train/trainer.ts';
import { runTsne } from '../viz/tsne.ts';

/** Test pair distances kept per run (results.json): a sample per class of pair, rounded. */
export interface DistanceSample {
  /** test pairs in all */
  pairs: number;
  /** the cap per class that was applied (0 = all) */
  perClass: number;
  pos: number[];
  neg: number[];
}

export const DISTANCES_FILE = 'distances.json';

export interface TsneParams {
  perplexity: number;
  iterations: number;
  seed: number;
  theta: number;
}

export type JobRequest =
  | {
      type: 'train';
      /** the run directory */
      out: string;
      config: TrainConfig;
      /** the shared initial weights of this seed */
      resetWeights: string;
      /** continue from the run directory's checkpoint */
      resume: boolean;
      retrieval: boolean;
      /** pairs per class kept in distances.json */
      distanceSample: number;
      /** test images whose embeddings are stored every epoch (0 or absent: none) */
      snapshotPoints?: number;
      /** after each epoch, emit the run's files (a queue worker stores them for a takeover) */
      snapshot?: boolean;
    }
  | { type: 'distances'; runDir: string; distanceSample: number }
  | {
      type: 'tsne';
      /** weights to embed with (a safetensors file or a run directory) */
      weights: string;
      config: TrainConfig;
      /** test images to embed */
      indices: number[];
      params: TsneParams;
      /** where to write { params, indices, points } */
      out: string;
      /** stored next to the points, so a cached layout is reused only for the same request */
      key: string;
    };

export type JobEvent =
  | { type: 'batch'; info: BatchInfo }
  | { type: 'epoch'; log: EpochLog }
  | { type: 'tsne'; iteration: number; total: number }
  /**
   * The run directory's files right after an epoch's checkpoint (train jobs with snapshot): the
   * rewritten ones (SNAPSHOT_FILES) whole, and the length of the append-only embeddings.bin at
   * that moment (absent: the run has none); its bytes up to there do not change afterwards.
   */
  | { type: 'snapshot'; epoch: number; files: Record<string, Uint8Array>; embeddingsBytes?: number };

export interface JobResult {
  status: 'finished' | 'interrupted';
  /** training: epochs done */
  epochs?: number;
  /** a queue job's: the fleet worker that ran it (host:pid) */
  worker?: string;
}

export interface JobContext {
  emit(event: JobEvent): void;
  /** polled between batches and t-SNE iterations */
  shouldStop(): boolean;
  /** the data set a job's config names (undefined: MNIST), loaded once per thread and spec */
  dataset(spec: DataSpec | undefined): Promise<Dataset>;
}

/**
 * A dataset getter that loads each data set once (keyed by its resolved spec) and reuses it.
 * A failed load is not kept, so a later job may try again (e.g. after the files were fixed).
 */
export function cachedDatasets(load: (spec: DataSpec | undefined) => Promise<Dataset> = (s) => loadDataset(s)): (spec: DataSpec | undefined) => Promise<Dataset> {
  const cache = new Map<string, Promise<Dataset>>();
  return (spec) => {
    const resolved = spec === undefined ? undefined : resolveDataSpec(spec);
    const key = JSON.stringify(resolved ?? { name: 'mnist' });
    let p = cache.get(key);
    if (!p) {
      p = load(resolved);
      cache.set(key, p);
      p.catch(() => cache.delete(key));
    }
    return p;
  };
}

export async function runJob(req: JobRequest, ctx: JobContext): Promise<JobResult> {
  switch (req.type) {
    case 'train':
      return trainJob(req, ctx);
    case 'distances':
      // the run's own data set, as its manifest records it
      await writeDistances(req.runDir, req.distanceSample, await ctx.dataset(runConfigOf(req.runDir).data));
      return { status: 'finished' };
    case 'tsne':
      return tsneJob(req, ctx);
  }
}

async function trainJob(req: Extract<JobRequest, { type: 'train' }>, ctx: JobContext): Promise<JobResult> {
  // compare checked that a resumed run's manifest holds this same config (data set included)
  const dataset = await ctx.dataset(req.config.data);
  let lastBatch = 0;
  const res = await trainRun({
    config: req.resume ? { epochs: req.config.epochs } : req.config,
    out: req.out,
    dataset,
    resetWeights: req.resume ? undefined : req.resetWeights,
    resume: req.resume,
    retrieval: req.retrieval,
    snapshotPoints: req.snapshotPoints ?? 0,
    onBatch: (info) => {
      // a few updates a second are plenty for a progress display
      const now = performance.now();
      if (now - lastBatch >= 200 || info.batch === info.batches) {
        lastBatch = now;
        ctx.emit({ type: 'batch', info });
      }
    },
    onEpoch: (log) => {
      ctx.emit({ type: 'epoch', log });
      // read while training waits for this callback, so the files belong to one epoch
      if (req.snapshot) ctx.emit({ type: 'snapshot', epoch: log.epoch, files: readRunFiles(req.out), ...embeddingsBytes(req.out) });
    },
    shouldStop: ctx.shouldStop,
  });
  if (res.status === 'finished') await writeDistances(req.out, req.distanceSample, dataset);
  return { status: res.status, epochs: res.epochs };
}

/**
 * The files of a run directory that are rewritten whole after each epoch, and that a resume
 * elsewhere needs besides embeddings.bin (which only grows, so it travels by its new bytes).
 */
export const SNAPSHOT_FILES: readonly string[] = [...Object.values(RUN_FILES), EPOCH_DISTANCES_FILE];

/** Every file of a run directory that a resume elsewhere needs to end as an uninterrupted run. */
export const RESUME_FILES: readonly string[] = [...SNAPSHOT_FILES, EMBEDDINGS_FILE];

function readRunFiles(dir: string): Record<string, Uint8Array> {
  const out: Record<string, Uint8Array> = {};
  for (const f of SNAPSHOT_FILES) {
    const p = join(dir, f);
    if (existsSync(p)) out[f] = readFileSync(p);
  }
  return out;
}

function embeddingsBytes(dir: string): { embeddingsBytes?: number } {
  const p = join(dir, EMBEDDINGS_FILE);
  return existsSync(p) ? { embeddingsBytes: statSync(p).size } : {};
}

/** Rebuild a training (no steps) from a run directory's manifest and trained weights. */
async function loadTrained(runDir: string, dataset: Dataset): Promise<Training> {
  return trainingWith(runDir, runConfigOf(runDir), dataset);
}

function runConfigOf(runDir: string): TrainConfig {
  return resolveConfig(new RunDir(runDir).readManifest().config);
}

async function trainingWith(weights: string, config: TrainConfig, dataset: Dataset): Promise<Training> {
  await initBackend('wasm');
  const net = buildNetwork(config, dataset.train.height, dataset.train.width, dataset.train.channels);
  return new Training(dataset, config, await loadWeights(weights, net));
}

/**
 * distances.json: the test pair distances of the trained weights, split into positive and
 * negative pairs, at most `perClass` of each (the first ones in the recipe's shuffled order,
 * so a uniform sample; 0 = all), rounded to 1e-4.
 */
export async function writeDistances(runDir: string, perClass: number, dataset: Dataset): Promise<DistanceSample> {
  const t = await loadTrained(runDir, dataset);
  try {
    const { distances, labels } = t.evaluate();
    const pos: number[] = [];
    const neg: number[] = [];
    const cap = perClass > 0 ? perClass : Infinity;
    for (let i = 0; i < distances.length; i++) {
      const v = Math.round(distances[i]! * 1e4) / 1e4;
      if (labels[i] === 1) {
        if (pos.length < cap) pos.push(v);
      } else if (neg.length < cap) neg.push(v);
    }
    const sample: DistanceSample = { pairs: distances.length, perClass, pos, neg };
    await writeFileAtomic(join(runDir, DISTANCES_FILE), JSON.stringify(sample) + '\n');
    return sample;
  } finally {
    t.dispose();
  }
}

export function readDistances(runDir: string, perClass: number): DistanceSample | undefined {
  const p = join(runDir, DISTANCES_FILE);
  if (!existsSync(p)) return undefined;
  try {
    const d = readJson(p) as DistanceSample;
    if (d.perClass !== perClass || !Array.isArray(d.pos) || !Array.isArray(d.neg)) return undefined;
    return d;
  } catch {
    return undefined;
  }
}

/** A t-SNE layout written by a t-SNE job. */
export interface TsneFile {
  key: string;
  params: TsneParams;
  indices: number[];
  /** [x0, y0, x1, y1, ...], rounded to 1e-3 */
  points: number[];
}

async function tsneJob(req: Extract<JobRequest, { type: 'tsne' }>, ctx: JobContext): Promise<JobResult> {
  const dataset = await ctx.dataset(req.config.data);
  if (req.indices.some((i) => !(Number.isInteger(i) && i >= 0 && i < dataset.test.n))) {
    throw new DataError(`t-SNE: an index is outside the test split (0..${dataset.test.n - 1})`);
  }
  const t = await trainingWith(req.weights, req.config, dataset);
  let emb: Float32Array;
  try {
    emb = t.embed(dataset.test, req.indices);
  } finally {
    t.dispose();
  }
  let stopped = false;
  let last = 0;
  const layout = runTsne(emb, req.indices.length, req.config.embeddingDim, req.params, (iteration, total) => {
    const now = performance.now();
    if (now - last >= 200 || iteration === total) {
      last = now;
      ctx.emit({ type: 'tsne', iteration, total });
    }
    if (ctx.shouldStop()) {
      stopped = true;
      return false;
    }
  });
  if (stopped) return { status: 'interrupted' };
  const file: TsneFile = {
    key: req.key,
    params: req.params,
    indices: req.indices,
    points: Array.from(layout, (v) => Math.round(v * 1e3) / 1e3),
  };
  await writeFileAtomic(req.out, JSON.stringify(file) + '\n');
  return { status: 'finished' };
}
