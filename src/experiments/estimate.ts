/**
 * The time a grid of trainings (a sweep, a comparison) will take here, announced before it starts.
 *
 * Two halves, kept apart so that the arithmetic is tested without a clock:
 * - the work, from the plan alone: per training its epochs, its batches per epoch (counted as the
 *   training will count them, under its own class split: a fold trains on a part of the training
 *   classes), the test images it evaluates after every epoch and at the end;
 * - the costs, measured by a short calibration on this machine (calibrate(): a few steps of every
 *   loss after a warm-up, one evaluation, one retrieval on a sample, one epoch's files written).
 * The trainings are shared over the workers as the pool runs them: each worker takes the next job.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Dataset } from '../data/dataset.ts';
import { splitLabels } from '../data/split.ts';
import { retrievalMetrics } from '../eval/retrieval.ts';
import { writeFileAtomic } from '../io/atomic.ts';
import type { TrainConfig } from '../train/config.ts';
import { epochBatches, epochKind } from '../train/epochBatches.ts';
import { RunDir } from '../train/runDir.ts';
import { Training } from '../train/trainer.ts';

/** One training still to run, as the plan knows it. */
export interface TrainingWork {
  /** the loss whose step cost applies */
  lossId: string;
  /** epochs still to train */
  epochs: number;
  batchesPerEpoch: number;
  /** test images embedded (with their pairs' distances) after every epoch and in the final evaluation */
  testImages: number;
  /** images embedded after every epoch for the stored embeddings (a comparison's or sweep's final runs) */
  snapshotImages: number;
  /** the final evaluation computes the retrieval measures (every pair of test images) */
  retrieval: boolean;
}

/** What the parts of a training cost on this machine, in seconds. */
export interface Costs {
  /** one training step, by loss id: early in a training, past the warm-up (steps 21 to 28) */
  step: Readonly<Record<string, number>>;
  /**
   * one step later in a training (steps LATE_STEP + 1 to LATE_STEP + 8), by loss id, where a
   * training runs that long: a loss whose miner keeps only the tuples that still violate the
   * margin (batch-all) does less work as it learns (on MNIST 16 ms a step at step 21, 5.7 ms at
   * step 101 and 5.3 ms on average over 20 epochs). Absent: `step` throughout.
   */
  stepLate?: Readonly<Record<string, number>>;
  /** embedding one test image and its share of the test pairs' distances */
  evalImage: number;
  /** the retrieval measures, per pair of test images (they rank every image against every other) */
  retrievalPair: number;
  /** the files one epoch writes and syncs (checkpoint, weights, log, distances, manifest) */
  epochFiles: number;
  /** a training's start: its split, pairs and engine, and its first files */
  setup: number;
  /** a worker's start (loading the data set), once per worker, side by side */
  workerStart: number;
  /**
   * the share of a core the calibration's computations got (processor over wall time, at most 1):
   * below 1 when other programs were running
   */
  share: number;
}

/**
 * The steps a training runs at the early cost: its first LATE_STEP; the rest cost `stepLate`
 * (calibrate() measures it at the step after these).
 */
export const LATE_STEP = 100;

/**
 * The seconds one training takes on one worker: its set-up; its steps (the first LATE_STEP at the
 * early cost, the others at the later one); per epoch the test images (and snapshot images) it
 * embeds and its files; the final evaluation (embedding and, with retrieval, every pair of test
 * images); then the distance sample the job writes (the trained model loaded again, a set-up, and
 * its test images embedded once more).
 */
export function trainingSeconds(w: TrainingWork, c: Costs): number {
  const step = c.step[w.lossId];
  if (step === undefined) throw new Error(`estimate: no step cost for loss "${w.lossId}"`);
  const late = c.stepLate?.[w.lossId] ?? step;
  const steps = w.epochs * w.batchesPerEpoch;
  const early = Math.min(steps, LATE_STEP);
  const epoch = (w.testImages + w.snapshotImages) * c.evalImage + c.epochFiles;
  const final = w.testImages * c.evalImage + (w.retrieval ? w.testImages * w.testImages * c.retrievalPair : 0);
  const distances = c.setup + w.testImages * c.evalImage;
  return c.setup + early * step + (steps - early) * late + w.epochs * epoch + final + distances;
}

export interface Estimate {
  /** wall seconds with the cores to itself: the workers' start, then the trainings' seconds shared over the workers */
  seconds: number;
  /** wall seconds if every worker gets the share of a core the calibration got (the load of the moment lasting) */
  loadedSeconds: number;
  /** the trainings' seconds on one worker, summed */
  trainingSeconds: number;
  workers: number;
  costs: Costs;
  /**
   * by loss id, the seconds a step over its trainings as the estimate counts them (the first
   * LATE_STEP steps of each at `step`, the rest at `stepLate`, weighted by their numbers): the
   * figure the plan prints. Absent (made by hand): `costs.step`.
   */
  stepMean?: Readonly<Record<string, number>>;
}

/**
 * The trainings shared over the workers: each worker takes the next training when it is free, so
 * the wall time is their sum over the workers, but never less than the longest one.
 */
export function estimatePlan(work: readonly TrainingWork[], costs: Costs, workers: number): Estimate {
  if (!Number.isInteger(workers) || workers < 1) throw new Error(`estimate: workers must be an integer >= 1, got ${workers}`);
  let sum = 0;
  let longest = 0;
  const stepTotals = new Map<string, { steps: number; seconds: number }>();
  for (const w of work) {
    const s = trainingSeconds(w, costs);
    sum += s;
    longest = Math.max(longest, s);
    const steps = w.epochs * w.batchesPerEpoch;
    const early = Math.min(steps, LATE_STEP);
    const t = stepTotals.get(w.lossId) ?? { steps: 0, seconds: 0 };
    t.steps += steps;
    t.seconds += early * costs.step[w.lossId]! + (steps - early) * (costs.stepLate?.[w.lossId] ?? costs.step[w.lossId]!);
    stepTotals.set(w.lossId, t);
  }
  // a loss whose trainings run no step (none left) keeps its measured cost
  const stepMean = { ...costs.step };
  for (const [id, t] of stepTotals) if (t.steps > 0) stepMean[id] = t.seconds / t.steps;
  const used = Math.min(workers, work.length);
  const trainings = Math.max(sum / used, longest);
  const seconds = work.length === 0 ? 0 : costs.workerStart + trainings;
  const loadedSeconds = work.length === 0 ? 0 : costs.workerStart + trainings / Math.min(1, Math.max(costs.share, 0.05));
  return { seconds, loadedSeconds, trainingSeconds: sum, workers: used, costs, stepMean };
}

/** The training labels (renumbered 0..k-1) and the test image count of a split, without copying images. */
export function splitSizes(ds: Dataset, split: string): { trainLabels: Uint8Array; testImages: number } {
  const s = splitLabels(ds, split);
  return { trainLabels: s.train, testImages: s.test.length };
}

/** One training's work: its batches per epoch under its split, and its test images. */
export function trainingWork(
  ds: Dataset,
  lossId: string,
  config: TrainConfig,
  lossKind: 'pair' | 'triplet' | 'batch',
  opts: { epochs: number; snapshotImages: number; retrieval: boolean },
  cache = new Map<string, { trainLabels: Uint8Array; testImages: number }>(),
): TrainingWork {
  const split = config.split ?? 'pairs';
  let sizes = cache.get(split);
  if (!sizes) cache.set(split, (sizes = splitSizes(ds, split)));
  return {
    lossId,
    epochs: opts.epochs,
    batchesPerEpoch: epochBatches(config, epochKind(lossKind, config.miner), sizes.trainLabels),
    // the whole test split, whatever config.testPairs: the trainer embeds every test image after
    // each epoch and in the final evaluation (retrieval ranks them all); testPairs only shortens
    // the list of pairs whose distances it then reads
    testImages: sizes.testImages,
    snapshotImages: Math.min(opts.snapshotImages, sizes.testImages),
    retrieval: opts.retrieval,
  };
}

/**
 * Steps run before the timed ones: the first steps allocate, compile and fault pages in. A loss
 * whose miner or tail runs in JavaScript (semihard, batch-hard, batch-all) runs unoptimised code
 * for its first dozen or so steps while V8 compiles it on its helper threads: on MNIST, steps 5
 * to 12 of triplet + semihard took 4.3 to 5.7 ms of processor time (1.1 to 1.5 ms of it on V8's
 * threads) against 2.7 to 2.9 ms once warm (bench/threadUse.ts). After 20 steps that is over.
 */
export const WARMUP_STEPS = 20;
/** Steps timed per loss. */
export const TIMED_STEPS = 8;
/** Test images the retrieval is timed on (it grows with their square: scaled from there). */
export const RETRIEVAL_SAMPLE = 1000;

/** This process's processor seconds (every thread): what a computation costs, however long others held the cores meanwhile. */
const cpuSeconds = (): number => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
};
const wallSeconds = (): number => performance.now() / 1000;

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

/**
 * One step's cost from the clock's readings before the first step and after each step: the
 * median of the steps after the warm-up (a step that met a garbage collection does not count for
 * eight; one in hundreds does in a real epoch). An epoch shorter than the warm-up: its steps as
 * they are.
 */
export function stepCost(readings: readonly number[], warmup = WARMUP_STEPS): number {
  if (readings.length < 2) throw new Error('estimate: no step was timed');
  const steps = readings.slice(1).map((x, k) => x - readings[k]!);
  return median(steps.length > warmup ? steps.slice(warmup) : steps);
}

/**
 * The costs, measured here: every loss trains WARMUP_STEPS + TIMED_STEPS batches of its first
 * epoch (fewer when the epoch is shorter) on the threads a worker will use; the first loss's
 * Training also times one evaluation, the retrieval on RETRIEVAL_SAMPLE images and one epoch's
 * files (written to a temporary folder and removed). A loss whose trainings run past LATE_STEP
 * steps (`steps`) also trains on to LATE_STEP + TIMED_STEPS and times the last ones: its later
 * step cost (stepLate). About a second for six losses on MNIST, two with the later costs;
 * batch-all, whose first steps cost 15 to 50 ms, adds about a second.
 *
 * On one thread (several workers) the computations are timed in processor time, not wall time:
 * on a machine that other programs share, a step that waited for a core would count the wait
 * (a 3 ms step measured 8 to 28 ms here under a load of 8), and the sweep is then estimated for
 * this machine with its cores to itself. The files are timed in wall time (the disk's syncs are
 * waits), the faster of three rounds. On several threads (one worker) everything is wall time.
 * The backend must be started. `workerStart`: what loading the data set took in this process.
 * `warmup`: steps before the timed ones (the default; another count for bench/threadUse.ts).
 */
export async function calibrate(
  ds: Dataset,
  losses: readonly { id: string; config: TrainConfig; steps?: number }[],
  threads: number,
  workerStart: number,
  warmup = WARMUP_STEPS,
): Promise<Costs> {
  const clock = threads === 1 ? cpuSeconds : wallSeconds;
  // processor and wall time of the computations, for the share of a core they got
  const spent = { cpu: 0, wall: 0 };
  const step: Record<string, number> = {};
  const stepLate: Record<string, number> = {};
  let setup = 0;
  // the first Training's data set, already split: the others start from it (a split copies and
  // hashes the images, a fifth of a second that the first one has measured)
  let split: Dataset | undefined;
  let evalImage = 0;
  let retrievalPair = 0;
  let epochFiles = 0;
  for (const [i, l] of losses.entries()) {
    const mark = { cpu: cpuSeconds(), wall: wallSeconds() };
    const c0 = clock();
    const t = split ? new Training(split, { ...l.config, split: 'pairs', threads }) : new Training(ds, { ...l.config, threads });
    if (!split) setup = clock() - c0;
    split ??= t.dataset;
    try {
      const state = t.getState();
      // the first epoch's readings give the early cost; where a training of this loss runs past
      // LATE_STEP steps, the steps after it give the later one (through as many epochs as it takes)
      const late = (l.steps ?? 0) > LATE_STEP;
      const stopAt = late ? LATE_STEP + TIMED_STEPS : warmup + TIMED_STEPS;
      const times: number[] = [];
      const lateSteps: number[] = [];
      let count = 0;
      for (let epoch = 0; count < stopAt; epoch++) {
        const stop = new AbortController();
        let last = clock();
        if (epoch === 0) times.push(last);
        const before = count;
        const onBatch = (): void => {
          const now = clock();
          count++;
          if (epoch === 0 && count <= warmup + TIMED_STEPS) times.push(now);
          if (count > LATE_STEP) lateSteps.push(now - last);
          last = now;
          if (count >= stopAt) stop.abort();
        };
        if (epoch === 0) t.runEpoch(onBatch, { signal: stop.signal });
        else {
          // a later epoch that fails (a training that diverges or collapses) costs only the later step cost
          try {
            t.runEpoch(onBatch, { signal: stop.signal });
          } catch {
            lateSteps.length = 0;
            break;
          }
        }
        if (!late || count === before || t.epoch >= t.config.epochs) break;
      }
      step[l.id] = stepCost(times, warmup);
      if (lateSteps.length > 0) stepLate[l.id] = median(lateSteps);
      spent.cpu += cpuSeconds() - mark.cpu;
      spent.wall += wallSeconds() - mark.wall;
      if (i > 0) continue;
      // the epoch ran to its end (a short one) or was aborted: back to the start, then evaluate twice (the first warms up)
      t.setState(state);
      t.evaluate();
      const e0 = clock();
      const emb = t.embed(t.dataset.test);
      t.evaluate(t.testPairs, t.dataset.test, emb);
      evalImage = (clock() - e0) / t.dataset.test.n;
      const m = Math.min(RETRIEVAL_SAMPLE, t.dataset.test.n);
      const dim = t.network.embeddingDim;
      const sample = { emb: emb.subarray(0, m * dim), labels: t.dataset.test.labels.subarray(0, m) };
      // twice: the first run compiles its loops
      retrievalMetrics(sample.emb, dim, sample.labels);
      const r0 = clock();
      retrievalMetrics(sample.emb, dim, sample.labels);
      retrievalPair = (clock() - r0) / (m * m);
      epochFiles = await timeEpochFiles(t);
    } finally {
      t.dispose();
    }
  }
  // a training starts with what the constructor does (split, pairs, engine) and its first files
  // on several threads processor time exceeds wall time: no share to tell
  const share = threads === 1 && spent.wall > 0 ? Math.min(1, spent.cpu / spent.wall) : 1;
  return { step, stepLate, evalImage, retrievalPair, epochFiles, setup: setup + epochFiles, workerStart, share };
}

/** One epoch's files, as trainRun writes them, in a temporary folder: the fastest of three rounds. */
async function timeEpochFiles(t: Training): Promise<number> {
  const dir = mkdtempSync(join(tmpdir(), 'siamese-estimate-'));
  try {
    const run = new RunDir(dir);
    const rounds: number[] = [];
    for (let k = 0; k < 3; k++) {
      const t0 = performance.now();
      await run.writeCheckpoint(t.getState(), t.config);
      await run.writeWeights('weights', t.getWeights());
      await run.writeLog(t.history);
      // the distance histograms and the manifest: a few kilobytes each
      await writeFileAtomic(join(dir, 'distances.jsonl'), 'x'.repeat(14000));
      await writeFileAtomic(join(dir, 'manifest.json'), 'x'.repeat(1800));
      rounds.push((performance.now() - t0) / 1000);
    }
    return Math.min(...rounds);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** "0.62 ms" */
const ms = (s: number): string => `${(s * 1000).toFixed(s < 0.001 ? 2 : 1)} ms`;

/**
 * A later step cost worth naming beside the mean: one that differs from the early one by more
 * than this fraction (batch-all: 16 ms early, 5.7 ms later; the others within a few percent).
 */
const LATE_APART = 0.1;

/**
 * The basis of an estimate in a few words: the step costs (the range of the losses' mean costs a
 * step, as the estimate counts them: estimatePlan's stepMean; where a loss's later cost differs
 * from its early one, both beside), the files, the workers.
 */
export function estimateBasis(e: Estimate): string {
  const mean = e.stepMean ?? e.costs.step;
  const steps = Object.entries(mean).sort((a, b) => a[1] - b[1]);
  const apart = (id: string): string | undefined => {
    const early = e.costs.step[id];
    const late = e.costs.stepLate?.[id];
    if (early === undefined || late === undefined || Math.abs(late - early) <= LATE_APART * early) return undefined;
    return `${ms(early)} for the first ${LATE_STEP} steps, ${ms(late)} after`;
  };
  const one = (id: string): string => {
    const a = apart(id);
    return a ? `${id}: ${a}` : id;
  };
  const avg = (id: string): string => (apart(id) ? ' on average' : '');
  const only = steps.length === 1 ? apart(steps[0]![0]) : undefined;
  const range =
    steps.length === 0
      ? ''
      : steps.length === 1
        ? `${ms(steps[0]![1])} a step${only ? ` on average (${only})` : ''}`
        : `${ms(steps[0]![1])} a step${avg(steps[0]![0])} (${one(steps[0]![0])}) to ${ms(steps.at(-1)![1])}${avg(steps.at(-1)![0])} (${one(steps.at(-1)![0])})`;
  const busy = e.costs.share < BUSY_SHARE ? `; other programs left the measurement ${Math.round(100 * e.costs.share)}% of a core` : '';
  return `measured here: ${range}, ${ms(e.costs.epochFiles)} of files an epoch; ${e.workers} ${e.workers === 1 ? 'worker' : 'workers'}${busy}`;
}

/** Below this share of a core, the machine is busy enough for the estimate to say so. */
export const BUSY_SHARE = 0.8;

/** "about 29 min", or, on a busy machine, "about 29 min with the cores to itself, 51 min if the load of the moment lasts". */
export function estimateWords(e: Estimate, duration: (s: number) => string): string {
  if (e.costs.share >= BUSY_SHARE) return `about ${duration(e.seconds)}`;
  return `about ${duration(e.seconds)} with the cores to itself, ${duration(e.loadedSeconds)} if the load of the moment lasts`;
}
