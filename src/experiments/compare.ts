/**
 * `compare`: train every loss of a list with every seed of a list, from identical initial
 * weights per seed, on worker threads; summarise over seeds with confidence intervals and paired
 * tests; add loss shapes and t-SNE projections; write results.json (the command then builds
 * the report from it: the experiments never draw).
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
import { existsSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { loadDataset } from '../data/registry.ts';
import { TrainingError, UsageError } from '../errors.ts';
import { writeFileAtomic, writeJsonAtomic } from '../io/atomic.ts';
import { finishFileSet, singleFileStaging } from '../io/fileSet.ts';
import { lockOutput } from '../io/lock.ts';
import { DISTANCES_FILE, type JobEvent, type JobRequest, type JobResult, readDistances } from './jobs.ts';
import { type LossSpec } from './lossSpec.ts';
import type { Executor } from './executor.ts';
import { WorkerPool } from './pool.ts';
import { folderOwner, QueueExecutor, queueableEmbeddings } from './queue/coordinator.ts';
import { jobDataOf } from './queue/payload.ts';
import type { CompareResults } from './results.ts';
import { summarise } from '../stats.ts';
import { type CompareOptions, ensureDir, ensureInitialWeights, estimateBatches, GRID_FILE, gridQueueName, initialPath, resolveGrid, runConfig, runKey, runState } from './grid.ts';
import { planTsne, readTsne, type TsnePanelPlan, tsneKey } from './tsnePlan.ts';
import { buildResults, resultsJson } from './collect.ts';

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
  /** the job left display line `slot` unfinished, waiting again for a queue's worker (executor.ts, onRequeue) */
  onJobRequeue?: (job: CompareJob, slot: number) => void;
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
}

const RESULTS_FILE = 'results.json';

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


/** Like `compare`, with the whole outcome: interruption, failures, reused runs. */
export async function runCompare(opts: CompareOptions = {}, callbacks: CompareCallbacks = {}): Promise<CompareOutcome> {
  const out = opts.out ?? join('runs', 'compare');
  // one writer per comparison folder, taken before the stored grid is read
  const lock = lockOutput(out, { command: opts.resume ? 'compare --resume' : 'compare', holds: opts.resume ? undefined : 'comparison', dataDir: opts.data?.dir });
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
  // a grid whose embeddings the queue cannot carry is refused before anything happens
  if (opts.queue) for (const l of spec.losses) queueableEmbeddings(grid.snapshotPoints ?? 0, runConfig(spec, l, spec.seeds[0]!));
  // connect first: a queue that cannot be reached is one line, before anything is planned or written
  const queue = opts.queue
    ? await QueueExecutor.open({
        url: opts.queue.url,
        name: opts.queue.name ?? gridQueueName(grid),
        data: jobDataOf(dataset),
        shape: { classes: dataset.classes.length, testImages: dataset.test.labels.length },
        owner: folderOwner(out),
        log: opts.onQueueLog,
      })
    : undefined;
  // everything after the connection closes it, however it ends (closing twice is harmless)
  try {

    ensureDir(out);
    await writeJsonAtomic(join(out, GRID_FILE), grid);
    for (const seed of spec.seeds) await ensureInitialWeights(out, spec, seed, dataset);

    // ---- plan -------------------------------------------------------------------------------
    // a lone file a queue job's collect left half-done (io/fileSet.ts), before it is read: through
    // the queue, settled (its job dropped from Redis); without, completed or undone like a run folder's set
    const settleLone = async (path: string): Promise<void> => {
      if (queue) await queue.settleFile(path);
      else if (existsSync(dirname(path))) finishFileSet(dirname(path), singleFileStaging(basename(path)));
    };
    const jobs: { job: CompareJob; req: JobRequest }[] = [];
    const reused: string[] = [];
    const trainSet = new Set<string>();
    const perEpoch = (spec_: LossSpec): number => estimateBatches(spec_, spec, dataset);
    for (const seed of spec.seeds) {
      for (const l of spec.losses) {
        const key = runKey(l.id, seed);
        const runDir = join(out, 'runs', key);
        const config = runConfig(spec, l, seed);
        // a result a crash left both in place and in Redis: dropped from Redis before the run is read
        await queue?.settle(runDir);
        await settleLone(join(runDir, DISTANCES_FILE));
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
            // a grid written before runs stored embeddings goes on as it was: without them
            snapshotPoints: grid.snapshotPoints ?? 0,
          },
        });
      }
    }

    const notes: string[] = [];
    const tsnePlan = grid.tsne.points > 0 ? planTsne(out, spec, grid, dataset) : undefined;
    if (tsnePlan?.note) notes.push(tsnePlan.note);
    const tsne = tsnePlan?.plan;
    // a layout a crash left both in place and in Redis: dropped from Redis before it is read
    if (tsne) for (const p of tsne.panels) await settleLone(p.file);
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

    // a job the queue cannot carry refuses the whole plan, before anything is enqueued
    queue?.check(jobs.map(({ job, req }) => ({ label: job.label, req })));
    const maxWorkers = opts.workers ?? availableParallelism();
    if (!Number.isInteger(maxWorkers) || maxWorkers < 1) throw new UsageError(`workers must be an integer >= 1, got ${maxWorkers}`);
    const later = tsne ? tsne.panels.filter((p) => p.lossId !== undefined && trainSet.has(runKey(p.lossId, spec.seeds[0]!))).length : 0;
    // this machine's threads: the local pool's size; through a queue the fleet's workers run the
    // jobs, with threads of their own (worker.ts), and this machine's cores count for nothing
    const workers = queue ? 0 : Math.max(1, Math.min(maxWorkers, jobs.length + later));
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
    /** the fleet workers (host:pid) that ran this invocation's queue jobs */
    const fleet = new Set<string>();
    // runs side by side on the local pool take one thread each (the native engine would otherwise
    // use every core); a queue job's threads are its worker's to choose
    const threads = workers > 1 ? 1 : 0;
    const launch = ({ job, req }: { job: CompareJob; req: JobRequest }): void => {
      if (!queue && (req.type === 'train' || req.type === 'tsne')) req = { ...req, config: { ...req.config, threads } };
      const started = { t: performance.now() };
      const done = pool!
        .run(req, {
          onStart: (slot) => {
            started.t = performance.now();
            callbacks.onJobStart?.(job, slot);
          },
          onEvent: (ev, slot) => callbacks.onJobEvent?.(job, ev, slot),
          onRequeue: (slot) => callbacks.onJobRequeue?.(job, slot),
        })
        .then(
          (r: JobResult) => {
            const seconds = (performance.now() - started.t) / 1000;
            if (r.worker !== undefined) fleet.add(r.worker);
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
    const results = buildResults({
      out, grid, dataset, tsne, notes,
      // through a queue: the fleet's workers that ran the jobs, not this machine's threads
      workers: !pool ? 0 : queue ? fleet.size : workers,
      ...(pool && queue ? { queue: true } : {}),
      wallSeconds: (performance.now() - t0) / 1000,
    });
    const resultsPath = join(out, RESULTS_FILE);
    await writeFileAtomic(resultsPath, resultsJson(results));

    // the report is the command's to build (cli/compare.ts), from these results
    return { status: 'finished', out, results, resultsPath, failures, trained, reused };
  } finally {
    await queue?.close();
  }
}
