/**
 * `sweep`: the protocol of Musgrave, Belongie and Lim, "A Metric Learning Reality Check" (2020),
 * per loss:
 *
 * 1. the classes are split class-disjointly into training and test classes (--split, default
 *    `classes`); the test classes are seen only in step 4;
 * 2. the training classes form K validation groups (sorted, dealt round-robin; with fewer than
 *    2K classes, K pairs of classes that overlap between folds: foldGroups); a trial trains K
 *    times, each time on the training classes minus one group (the training split's images) and
 *    validates on that group (the test split's images of those training classes): its score is
 *    the mean validation MAP@R;
 * 3. N trials, chosen by tpe.ts (a quasi-random start, then a tree-structured Parzen estimator)
 *    from the scores of the trials before;
 * 4. the best trial's parameters are trained S times (seeds 0..S-1) on all the training classes
 *    and tested on the test classes; so are the loss's defaults (the untuned comparison); and the
 *    best trial's K fold models are tested on the test classes, one by one (mean) and
 *    concatenated (one K x dim embedding).
 *
 * The sweep directory:
 *   sweep.json                         the definition (losses and spaces, protocol, config)
 *   initial-seed<S>.safetensors        initial weights shared by every training of seed S
 *   runs/<lossId>/trial<NN>/fold<K>/   one run directory per fold of a trial (seed 0)
 *   runs/<lossId>/tuned-seed<S>/       the best parameters, all training classes
 *   runs/<lossId>/default-seed<S>/     the loss's defaults, all training classes
 *   results.json, report.md, report.html
 *
 * Deterministic and resumable: a trial's parameters are a pure function of the search seed, the
 * trial number and the scores before it (tpe.ts), and every score is read back from its run
 * directory. Run the same command again after an interruption: finished trainings are reused,
 * interrupted ones resume from their checkpoints, and the search replays its history and goes on
 * exactly where it stopped.
 */
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { isDeepStrictEqual } from 'node:util';
import { join } from 'node:path';
import { classCount, type Dataset } from '../data/dataset.ts';
import { type DataSpec, loadDataset, sameDataFolder } from '../data/registry.ts';
import { groupsOverlap, parseSplit, resolveSplit } from '../data/split.ts';
import type { EngineChoice } from '../engine/engine.ts';
import { initBackend } from '../engine/backend.ts';
import { DataError, UsageError } from '../errors.ts';
import type { Evaluation } from '../eval/evaluate.ts';
import { type RetrievalMetrics, retrievalMetrics } from '../eval/retrieval.ts';
import { writeFileAtomic, writeJsonAtomic } from '../io/atomic.ts';
import { lockOutput, refuseDataOverlap } from '../io/lock.ts';
import { embedSplit, sharedInitialWeights } from '../train/run.ts';
import { DEFAULT_SNAPSHOT_POINTS } from '../train/epochEmbeddings.ts';
import { resolveConfig, type TrainConfig } from '../train/config.ts';
import { readJson, RunDir, toolVersion } from '../train/runDir.ts';
import { createLoss } from '../losses/registry.ts';
import { pairedComparisons, resultsJson, type ScoredRun } from './collect.ts';
import type { CompareCallbacks, CompareJob } from './compare.ts';
import { experimentConfig, type ExperimentOptions, gridQueueName, runState, settingDifferences } from './grid.ts';
import type { Executor } from './executor.ts';
import type { JobRequest } from './jobs.ts';
import { WorkerPool } from './pool.ts';
import { calibrate, type Estimate, estimatePlan, type TrainingWork, trainingWork } from './estimate.ts';
import { folderOwner, QueueExecutor, queueableEmbeddings } from './queue/coordinator.ts';
import { jobDataOf } from './queue/payload.ts';
import { type AccuracyAt, accuracyAtOf } from '../eval/accuracyAt.ts';
import type { PairedComparison } from './results.ts';
import { parseSweepList, type SweepLossSpec, trialSettings } from './searchSpec.ts';
import { summariseFraction } from '../stats.ts';
import { sweepVerdict, verdictText } from '../viz/sweepVerdict.ts';
import { type Observation, suggest } from './tpe.ts';

/** The default losses: the seed's pair, each with its natural range. */
export const DEFAULT_SWEEP_LOSSES = 'contrastive:margin=0.2..2,yukawa:kappa=1..40:log;power=1..4';

/** `--quick`: 2 losses, 4 trials, 2 folds, 2 seeds, 1 short epoch. */
export const QUICK_SWEEP = { trials: 4, folds: 2, seeds: 2, epochs: 1, trainPairs: 2000 } as const;

export interface SweepOptions extends ExperimentOptions {
  /** sweep specs (searchSpec.ts); default DEFAULT_SWEEP_LOSSES */
  losses?: string;
  /** trials per loss; default 30 */
  trials?: number;
  /** cross-validation folds; default 4 (fewer than 2 x folds training classes: overlapping pairs, see foldGroups) */
  folds?: number;
  /** final seeds; default 5 */
  seeds?: number;
  /** seeds the search (with each loss's id); default 0 */
  searchSeed?: number;
  /** classes (default), classes=C1,C2,...; `pairs` is refused (the protocol needs unseen classes) */
  split?: string;
  /** default runs/sweep */
  out?: string;
  quick?: boolean;
}

/** sweep.json: everything that decides the trainings (a resumed sweep must match it). */
export interface SweepDefinition {
  losses: SweepLossSpec[];
  trials: number;
  folds: number;
  seeds: number;
  searchSeed: number;
  /** the training config every run shares (loss, seed, split and lr set per run) */
  config: Omit<TrainConfig, 'loss' | 'lossParams' | 'seed' | 'miner' | 'split'>;
  split: string;
  trainClasses: number[];
  testClasses: number[];
  /** the validation classes of each fold (original class ids) */
  groups: number[][];
}

interface StoredSweep {
  tool: 'siamese-lab';
  kind: 'sweep';
  version: string;
  createdAt: string;
  definition: SweepDefinition;
}

export interface Measure {
  mean: number;
  /** 95% CI [low, high] (t over the values: seeds, or folds in foldModels.separate; the mean twice for one value), clipped to [0, 1] */
  ci: [number, number];
  ci95: number;
  std: number;
  values: number[];
}

export interface FoldScore {
  fold: number;
  validationClasses: number[];
  /** null: the training failed (the message says why) */
  mapAtR: number | null;
  runDir: string;
  error?: string;
}

export interface Trial {
  trial: number;
  params: Record<string, number>;
  validation: { mapAtR: number | null; folds: FoldScore[] };
}

export interface SeedScore {
  seed: number;
  runDir: string;
  mapAtR: number;
  precisionAt1: number;
  rPrecision: number;
  knnAccuracy: number;
  /** pair accuracy by the loss's convention (accuracyAt) */
  accuracy: number;
  /** pair accuracy at the best threshold (in-sample), every loss: `pairs.best.accuracy` */
  bestAccuracy: number;
  auc: number;
}

export interface TestMeasures {
  mapAtR: Measure;
  precisionAt1: Measure;
  rPrecision: Measure;
  knnAccuracy: Measure;
  /**
   * pair accuracy on test-class pairs by the loss's convention: at the fixed threshold
   * (D < config.threshold) or, for a batch loss, at the best one (accuracyAt; see results.ts)
   */
  accuracy: Measure;
  /** 'threshold' or 'best': how `accuracy` is measured (absent in files written before it) */
  accuracyAt?: AccuracyAt;
  /**
   * pair accuracy at the best threshold on the test pairs (in-sample, optimistic), every loss:
   * the one to set losses side by side (absent in files written before it)
   */
  bestAccuracy?: Measure;
  auc: Measure;
  /** per seed (files written before bestAccuracy lack it there) */
  seeds: (Omit<SeedScore, 'bestAccuracy'> & { bestAccuracy?: number })[];
}

export interface RetrievalSummary {
  mapAtR: number;
  precisionAt1: number;
  rPrecision: number;
  knnAccuracy: number;
}

export interface SweepLossResult {
  id: string;
  label: string;
  loss: string;
  spec: string;
  /** the fixed settings (and learning rate, when fixed) */
  fixed: Record<string, number | string>;
  space: SweepLossSpec['space'];
  trials: Trial[];
  best: { trial: number; params: Record<string, number>; validation: Trial['validation'] };
  /** the best parameters, trained on all training classes, tested on the test classes */
  test: TestMeasures;
  /** the best trial's fold models on the test classes */
  foldModels: { separate: { mapAtR: Measure; precisionAt1: Measure; rPrecision: Measure; folds: RetrievalSummary[] }; concatenated: RetrievalSummary & { dim: number } };
  /**
   * the untuned comparison: the fixed settings with the loss's defaults for the searched ones.
   * `sameAsTuned`: a loss with nothing to search, whose defaults are its tuned settings: the same
   * trainings (tuned-seed<S>), trained once, their numbers given twice (sharesFinals)
   */
  untuned: { test: TestMeasures; sameAsTuned?: true };
}

export interface SweepResults {
  tool: 'siamese-lab';
  kind: 'sweep';
  version: string;
  createdAt: string;
  dataset: { name: string; source: string };
  split: { spec: string; trainClasses: number[]; testClasses: number[] };
  protocol: { trials: number; folds: number; seeds: number; searchSeed: number; groups: number[][]; config: SweepDefinition['config'] };
  losses: SweepLossResult[];
  /**
   * paired tests over the final seeds, Holm-corrected per measure: MAP@R and the best-threshold
   * pair accuracy (files written before that tested `accuracy`, whatever its convention)
   */
  comparisons: { tuned: PairedComparison[]; untuned: PairedComparison[] };
  ranking: { tuned: string[]; untuned: string[]; changed: boolean; verdict: string };
  /**
   * the invocation that trained: cores, workers, its wall time, trainings in all and trained by
   * it. An invocation that finds every training done and only summarises keeps the facts of the
   * results.json it replaces (when that one trained) and says so in `summarisedAgain`.
   */
  machine: {
    cores: number;
    /** local threads; with `queue`, the queue's workers that ran this invocation's trainings */
    workers: number;
    /** the trainings ran on the workers of a Redis queue (cores are the coordinator's) */
    queue?: boolean;
    wallSeconds: number;
    trainings: number;
    trainedNow: number;
    node: string;
    /** this results.json was summarised again from the stored runs, nothing retrained: its wall time */
    summarisedAgain?: { wallSeconds: number; node: string; version: string };
  };
}

export interface SweepOutcome {
  status: 'finished' | 'interrupted';
  out: string;
  results?: SweepResults;
  resultsPath?: string;
  /** trainings that failed (their trials score nothing; tuned/untuned failures leave a loss out) */
  failures: { key: string; message: string }[];
  trained: number;
  reused: number;
}

/** What the CLI prints before the work starts. */
export interface SweepPlan {
  definition: SweepDefinition;
  trainings: number;
  finished: number;
  /** this machine's worker threads; 0 through a queue (the fleet's workers train, how many is theirs to say) */
  workers: number;
  /** the Redis queue the trainings go to (the fleet's workers, not local threads, run them) */
  queue?: string;
  /** seconds on this machine (estimate.seconds), or undefined when it could not be measured */
  estimateSeconds?: number;
  /** the estimate and what it rests on (the costs measured here) */
  estimate?: Estimate;
  notes: string[];
  /** the losses (ids) whose tuned seeds stand for the default ones: nothing to search (sharesFinals) */
  sharedFinals: string[];
}

export interface SweepCallbacks extends CompareCallbacks {
  onSweepPlan?: (plan: SweepPlan) => void;
}

const SWEEP_FILE = 'sweep.json';
const RESULTS_FILE = 'results.json';
/** every trial and fold trains with this seed (its initial weights shared): trials differ only by their parameters */
const SEARCH_TRAIN_SEED = 0;

class Interrupted extends Error {}

/**
 * The validation groups of K folds. With at least 2K training classes: a partition, the sorted
 * classes dealt round-robin into K groups. With fewer (MNIST's 5 training classes and the default
 * 4 folds), no partition has K groups of 2: each fold validates on 2 classes and trains on the
 * others (leave-2-classes-out), the K pairs being adjacent classes in the sorted order taken
 * every other position, so that they are distinct and each class is validated on about equally
 * often (0-4, K = 4: {0,1} {2,3} {4,0} {1,2}). Groups then overlap between folds, never with
 * their own fold's training classes. At most as many folds as classes; the caller checks.
 */
export function foldGroups(trainClasses: readonly number[], folds: number): number[][] {
  const sorted = [...trainClasses].sort((a, b) => a - b);
  const n = sorted.length;
  if (n >= 2 * folds) {
    const groups: number[][] = Array.from({ length: folds }, () => []);
    sorted.forEach((c, i) => groups[i % folds]!.push(c));
    return groups;
  }
  // starts 0, 2, 4, ... (mod n: for odd n that walk reaches every start); for even n the second
  // round takes the odd starts
  return Array.from({ length: folds }, (_, k) => {
    const start = (2 * k + (n % 2 === 0 ? Math.floor((2 * k) / n) : 0)) % n;
    return [sorted[start]!, sorted[(start + 1) % n]!].sort((a, b) => a - b);
  });
}

/** The split text of fold k: train on the training classes outside group k, validate on group k. */
export function foldSplit(trainClasses: readonly number[], group: readonly number[]): string {
  const train = trainClasses.filter((c) => !group.includes(c));
  return `train=${train.join(',')};test=${group.join(',')}`;
}

/** The search seed of one loss: the sweep's seed and the loss id, so adding a loss changes no other's trials. */
export function lossSearchSeed(searchSeed: number, id: string): number {
  return (searchSeed * 1000003 + createHash('sha256').update(id).digest().readUInt32LE(0)) >>> 0;
}

export const trialKey = (id: string, trial: number, fold: number): string => `${id}/trial${String(trial).padStart(2, '0')}/fold${fold}`;
const trialDir = (out: string, id: string, trial: number, fold: number): string => join(out, 'runs', trialKey(id, trial, fold));
const finalDir = (out: string, id: string, kind: 'tuned' | 'default', seed: number): string => join(out, 'runs', id, `${kind}-seed${seed}`);
const initialPath = (out: string, seed: number): string => join(out, `initial-seed${seed}.safetensors`);

/**
 * The trials of one loss: --trials, or 1 for a loss with nothing to search (every trial would
 * train the same settings from the same seed and initial weights, and score the same).
 */
export const lossTrials = (def: Pick<SweepDefinition, 'trials'>, l: { space: readonly unknown[] }): number => (l.space.length > 0 ? def.trials : 1);

/**
 * Whether a loss's default final trainings are its tuned ones: with nothing to search the best
 * trial's parameters are the spec's fixed values, and the "defaults" are those same fixed values
 * (only searched parameters fall back to the loss's defaults), so both would train the same
 * config from the same seeds and initial weights. Decided on the resolved training configs, not
 * on the names; a searched loss never shares (its best is known only after the search, and the
 * plan counts its trainings before).
 */
export function sharesFinals(def: SweepDefinition, l: SweepLossSpec): boolean {
  if (l.space.length > 0) return false;
  return isDeepStrictEqual(trainConfig(def, l, {}, def.split, 0), trainConfig(def, l, undefined, def.split, 0));
}

/** The losses (ids) whose default final trainings are their tuned ones (sharesFinals). */
const sharedFinalIds = (def: SweepDefinition): string[] => def.losses.filter((l) => sharesFinals(def, l)).map((l) => l.spec.id);

/** The kinds of final training a loss runs: tuned, and default unless those are the tuned ones (sharesFinals). */
const finalKinds = (def: SweepDefinition, l: SweepLossSpec): readonly ('tuned' | 'default')[] => (sharesFinals(def, l) ? ['tuned'] : ['tuned', 'default']);

/** The final trainings of one loss: its tuned seeds, and its default seeds unless they are the tuned ones (sharesFinals). */
export const finalTrainings = (def: SweepDefinition, l: SweepLossSpec): number => finalKinds(def, l).length * def.seeds;

/** Every training of a sweep: per loss its trials' folds and its final seeds (finalTrainings). */
export const sweepTrainings = (def: SweepDefinition): number => def.losses.reduce((n, l) => n + lossTrials(def, l) * def.folds + finalTrainings(def, l), 0);

function intIn(name: string, v: number, lo: number, hi: number): number {
  if (!Number.isInteger(v) || v < lo || v > hi) throw new UsageError(`${name} must be an integer from ${lo} to ${hi}, got ${v}`);
  return v;
}

/** The definition from the options, with its notes (folds that overlap). */
export function resolveDefinition(opts: SweepOptions, ds: Dataset): { definition: SweepDefinition; notes: string[] } {
  const q = opts.quick ? QUICK_SWEEP : undefined;
  const notes: string[] = [];
  const losses = parseSweepList(opts.losses ?? DEFAULT_SWEEP_LOSSES);
  const trials = intIn('--trials', opts.trials ?? q?.trials ?? 30, 1, 1000);
  const seeds = intIn('--seeds', opts.seeds ?? q?.seeds ?? 5, 1, 100);
  const searchSeed = intIn('--search-seed', opts.searchSeed ?? 0, 0, 2 ** 31 - 1);
  const splitSpec = parseSplit(opts.split ?? 'classes');
  if (splitSpec.kind === 'pairs') throw new UsageError('sweep needs class-disjoint classes: --split classes or classes=C1,C2,... (not pairs)');
  const split = resolveSplit(splitSpec, classCount(ds.train.labels));
  // each validation group needs 2 classes (MAP@R within one class is trivially 1), each fold 2
  // training classes; with fewer than 2K classes the groups are pairs that overlap (foldGroups)
  const n = split.trainClasses.length;
  if (n < 4) throw new UsageError(`sweep needs at least 4 training classes for 2 folds; --split gives ${n}`);
  const folds = opts.folds !== undefined ? intIn('--folds', opts.folds, 2, 1000) : (q?.folds ?? 4);
  if (folds > n) {
    throw new UsageError(`--folds ${folds} needs at least ${folds} training classes (a pair of classes to validate on per fold); the split has ${n}: use --folds ${n} or fewer`);
  }
  const groups = foldGroups(split.trainClasses, folds);
  if (groupsOverlap(groups)) {
    const pairs = groups.map((g) => `{${g.join(',')}}`).join(' ');
    notes.push(
      `${folds} folds on ${n} training classes: too few for ${folds} disjoint groups of 2, so each fold validates on 2 classes and trains on the other ${n - 2} (validation pairs ${pairs})`,
    );
  }
  for (const l of losses) if (l.space.length === 0 && trials > 1) notes.push(`${l.spec.id} has no parameter to search: 1 trial, not ${trials}`);
  const full = experimentConfig(opts, q);
  if (full.epochs < 1) throw new UsageError('--epochs must be at least 1');
  const { loss: _l, lossParams: _p, seed: _s, miner: _m, split: _sp, ...config } = full;
  return {
    definition: {
      losses,
      trials,
      folds,
      seeds,
      searchSeed,
      config,
      split: opts.split === undefined ? 'classes' : String(opts.split).trim(),
      trainClasses: split.trainClasses,
      testClasses: split.testClasses,
      groups,
    },
    notes,
  };
}

/** The definition without the settings that change only speed, for the resume check. */
function essenceOf(d: SweepDefinition): Record<string, unknown> {
  const { engine: _e, threads: _t, ...config } = d.config;
  return { ...d, config, losses: d.losses.map((l) => ({ ...l, text: undefined })) };
}
const essence = (d: SweepDefinition): string => JSON.stringify(essenceOf(d));

/** The settings two definitions differ in, in words (`folds: 2 there, 4 here`), for the refusal. */
function differences(stored: SweepDefinition, def: SweepDefinition): string {
  // the config's keys in its place, beside the protocol's (groups follow from folds: not named)
  const flat = (o: Record<string, unknown>): Record<string, unknown> =>
    Object.fromEntries(Object.entries(o).flatMap(([k, v]) => (k === 'config' ? Object.entries(v as object) : [[k, v]])));
  // the data set is shown whole: its folder is what tells two data sets apart
  const short = (v: string | undefined, key: string): string => (v === undefined ? 'unset' : v.length > 40 && key !== 'data' ? 'another value' : v);
  return settingDifferences(flat(essenceOf(stored)), flat(essenceOf(def)), new Set(['groups']))
    .map((d) => `${d.key}: ${short(d.there, d.key)} there, ${short(d.now, d.key)} here`)
    .join('; ');
}

export function trainConfig(def: SweepDefinition, l: SweepLossSpec, x: Record<string, number> | undefined, split: string, seed: number): TrainConfig {
  const s = x ? trialSettings(l, x) : { lossParams: { ...l.spec.params }, learningRate: l.learningRate };
  return resolveConfig({
    ...def.config,
    loss: l.spec.loss,
    lossParams: s.lossParams,
    miner: l.spec.miner,
    seed,
    split,
    learningRate: s.learningRate ?? def.config.learningRate,
  });
}

/**
 * The sweep.json already in `out`, checked against this definition (a different sweep is
 * refused), and the definition to go on with: this one, with the recorded data folder where the
 * options name that folder another way (a link to it, another spelling: the same data, as for
 * train --resume), so that sweep.json and the runs' manifests keep the name they were given first.
 */
function storedSweep(out: string, def: SweepDefinition): { stored?: StoredSweep; definition: SweepDefinition } {
  const sweepPath = join(out, SWEEP_FILE);
  if (!existsSync(sweepPath)) return { definition: def };
  const stored = readJson(sweepPath) as Partial<StoredSweep>;
  if (stored.tool !== 'siamese-lab' || stored.kind !== 'sweep' || !stored.definition) throw new DataError(`${sweepPath}: not a sweep written by siamese-lab`);
  const recorded = stored.definition.config?.data;
  if (sameDataFolder(recorded, def.config.data)) def = { ...def, config: { ...def.config, data: recorded } };
  if (essence(stored.definition) !== essence(def)) {
    const diff = differences(stored.definition, def);
    throw new UsageError(`${out} holds a sweep with other settings (${diff ? `${diff}; ` : ''}see ${sweepPath}); run the command that started it, or use another --out`);
  }
  return { stored: stored as StoredSweep, definition: def };
}

function sweepJob(def: SweepDefinition, key: string, label: string, runDir: string, lossId: string, seed: number): CompareJob & { runDir: string; seed: number } {
  return { key, kind: 'train', label, lossId, seed, runDir, epochs: def.config.epochs, startEpoch: 0 };
}

/** The workers a sweep runs on: at most the trainings that can run at once (every loss's folds, or its final seeds). */
function sweepWorkers(def: SweepDefinition, requested: number | undefined): number {
  const maxWorkers = requested ?? availableParallelism();
  if (!Number.isInteger(maxWorkers) || maxWorkers < 1) throw new UsageError(`workers must be an integer >= 1, got ${maxWorkers}`);
  return Math.max(1, Math.min(maxWorkers, def.losses.length * Math.max(def.folds, def.seeds * 2)));
}

/** The epochs an interrupted run has kept (it resumes from there); 0 for none, or for a folder the resume will judge. */
function epochsDone(runDir: string): number {
  const r = new RunDir(runDir);
  if (!r.exists('manifest') || !r.exists('checkpoint')) return 0;
  try {
    return r.readManifest().epochsDone;
  } catch {
    return 0;
  }
}

/** Every training of a sweep, in plan order: the trials' folds, then each loss's final runs. */
function* sweepRuns(def: SweepDefinition, out: string): Generator<{ job: CompareJob & { runDir: string; seed: number }; l: SweepLossSpec; split: string; snapshotImages: number }> {
  for (const l of def.losses) {
    const id = l.spec.id;
    for (let t = 0; t < lossTrials(def, l); t++) {
      for (const [k, group] of def.groups.entries()) {
        const job = sweepJob(def, trialKey(id, t, k), `${id} trial ${t + 1} fold ${k + 1}`, trialDir(out, id, t, k), id, SEARCH_TRAIN_SEED);
        yield { job, l, split: foldSplit(def.trainClasses, group), snapshotImages: 0 };
      }
    }
    for (const kind of finalKinds(def, l)) {
      for (let s = 0; s < def.seeds; s++) {
        yield { job: sweepJob(def, `${id}/${kind}-seed${s}`, `${id} ${kind} seed ${s}`, finalDir(out, id, kind, s), id, s), l, split: def.split, snapshotImages: DEFAULT_SNAPSHOT_POINTS };
      }
    }
  }
}

/**
 * Every training of the sweep, finished on disk or still to run, and what each of those will do
 * (its own split: a fold trains on the training classes outside its group and validates on that
 * group's test images). Reads the output folder, writes nothing.
 */
export function sweepJobs(def: SweepDefinition, out: string, ds: Dataset): { planned: CompareJob[]; reusedKeys: string[]; work: (TrainingWork & { key: string })[] } {
  const planned: CompareJob[] = [];
  const reusedKeys: string[] = [];
  const work: (TrainingWork & { key: string })[] = [];
  const sizes = new Map<string, { trainLabels: Uint8Array; testImages: number }>();
  const finishedOnDisk = (dir: string): boolean => {
    const r = new RunDir(dir);
    return r.exists('manifest') && r.exists('result') && r.readManifest().status === 'finished';
  };
  const add = (job: CompareJob & { runDir: string; seed: number }, l: SweepLossSpec, split: string, snapshotImages: number): void => {
    if (finishedOnDisk(job.runDir)) {
      reusedKeys.push(job.key);
      return;
    }
    planned.push(job);
    const config = trainConfig(def, l, undefined, split, job.seed);
    const kind = createLoss(l.spec.loss, l.spec.params).kind;
    const epochs = def.config.epochs - epochsDone(job.runDir);
    work.push({ key: job.key, ...trainingWork(ds, l.spec.id, config, kind, { epochs, snapshotImages, retrieval: true }, sizes) });
  };
  for (const r of sweepRuns(def, out)) add(r.job, r.l, r.split, r.snapshotImages);
  return { planned, reusedKeys, work };
}

/**
 * The time of the trainings still to run: each loss with work left is calibrated here (calibrate()
 * in estimate.ts) on the threads a worker uses. Undefined when the calibration fails: the sweep
 * runs without an estimate rather than not at all.
 */
async function sweepEstimate(
  def: SweepDefinition,
  ds: Dataset,
  work: readonly TrainingWork[],
  workers: number,
  threads: number,
  loadSeconds: number,
): Promise<Estimate | undefined> {
  try {
    // a worker starts the backend and loads the data set, as this process did
    const b0 = performance.now();
    await initBackend('wasm');
    const backendSeconds = (performance.now() - b0) / 1000;
    const ids = new Set(work.map((w) => w.lossId));
    // the most steps a training of each loss runs: past LATE_STEP its later step cost is measured too
    const steps = new Map<string, number>();
    for (const w of work) steps.set(w.lossId, Math.max(steps.get(w.lossId) ?? 0, w.epochs * w.batchesPerEpoch));
    const losses = def.losses
      .filter((l) => ids.has(l.spec.id))
      .map((l) => ({ id: l.spec.id, config: trainConfig(def, l, undefined, def.split, 0), steps: steps.get(l.spec.id) ?? 0 }));
    const costs = await calibrate(ds, losses, threads, loadSeconds + backendSeconds);
    return estimatePlan(work, costs, workers);
  } catch {
    return undefined;
  }
}

/**
 * `sweep --plan`: the plan and its estimate, as the sweep would print them, and nothing else: no
 * file is written (an existing output folder is read to count its finished trainings).
 */
export async function planSweep(opts: SweepOptions = {}): Promise<SweepPlan> {
  const t0 = performance.now();
  const out = opts.out ?? join('runs', 'sweep');
  // the refusal the sweep itself would give, before the data are read (runSweep)
  if (opts.data?.dir !== undefined) refuseDataOverlap(out, opts.data.dir);
  const dataset = await loadDataset(opts.data);
  const loadSeconds = (performance.now() - t0) / 1000;
  const resolved = resolveDefinition(opts, dataset);
  const { notes } = resolved;
  const { definition: def } = storedSweep(out, resolved.definition);
  const { planned, reusedKeys, work } = sweepJobs(def, out, dataset);
  // through a queue the fleet's workers train, as runSweep plans it: this machine's threads count for nothing
  const workers = opts.queue ? 0 : sweepWorkers(def, opts.workers);
  const plan: SweepPlan = { definition: def, trainings: sweepTrainings(def), finished: reusedKeys.length, workers, notes, sharedFinals: sharedFinalIds(def) };
  if (opts.queue) plan.queue = opts.queue.url.replace(/\/\/[^@/]*@/, '//');
  else if (planned.length > 0) {
    const e = await sweepEstimate(def, dataset, work, workers, workers > 1 ? 1 : 0, loadSeconds);
    if (e) {
      plan.estimate = e;
      plan.estimateSeconds = e.seconds;
    }
  }
  return plan;
}

/** Run a sweep (taking the output folder's lock). */
export async function runSweep(opts: SweepOptions = {}, callbacks: SweepCallbacks = {}): Promise<SweepOutcome> {
  const t0 = performance.now();
  const out = opts.out ?? join('runs', 'sweep');
  // an output folder that is, lies inside or holds the data set folder is refused first, as the
  // lock would (train and compare lock before they read the data): read first, a folder there
  // (this sweep's own, from an earlier start) would be taken for one more class of a class-folder
  // data set, and the refusal would speak of a class with no images instead
  if (opts.data?.dir !== undefined) refuseDataOverlap(out, opts.data.dir);
  // every option checked before anything is written (the lock creates the folder)
  const dataset = await loadDataset(opts.data);
  // what each worker will do again when it starts: part of the estimate
  const loadSeconds = (performance.now() - t0) / 1000;
  // Check, then lock, and not the reverse: the class split, folds and losses are checked from the
  // options and the data set alone, never from the folder, so another sweep writing there cannot
  // change the answer, and a bad --split or --folds gets the same refusal (nothing created)
  // whether or not the folder is in use. All that depends on the folder is read under the lock:
  // the stored sweep.json that must match (storedSweep) and the runs already there.
  const resolved = resolveDefinition(opts, dataset);
  const lock = lockOutput(out, { command: 'sweep', holds: 'sweep', dataDir: opts.data?.dir });
  try {
    return await runSweepLocked({ ...opts, out }, callbacks, dataset, resolved, t0, loadSeconds);
  } finally {
    lock.release();
  }
}

async function runSweepLocked(
  opts: SweepOptions & { out: string },
  callbacks: SweepCallbacks,
  dataset: Dataset,
  resolved: ReturnType<typeof resolveDefinition>,
  t0: number,
  loadSeconds: number,
): Promise<SweepOutcome> {
  const { out } = opts;
  const sweepPath = join(out, SWEEP_FILE);
  const { notes } = resolved;
  const kept = storedSweep(out, resolved.definition);
  const def = kept.definition;
  const createdAt = kept.stored?.createdAt ?? new Date().toISOString();
  // the final runs store embeddings: refused at once if the queue cannot carry them
  if (opts.queue) for (const l of def.losses) queueableEmbeddings(DEFAULT_SNAPSHOT_POINTS, trainConfig(def, l, undefined, def.split, 0));
  const queue = opts.queue
    ? await QueueExecutor.open({
        url: opts.queue.url,
        name: opts.queue.name ?? gridQueueName({ sweep: essence(def) }).replace(/^compare-/, 'sweep-'),
        data: jobDataOf(dataset),
        shape: { classes: dataset.classes.length, testImages: dataset.test.labels.length },
        owner: folderOwner(out),
        log: opts.onQueueLog,
      })
    : undefined;
  try {
    const stored: StoredSweep = { tool: 'siamese-lab', kind: 'sweep', version: toolVersion(), createdAt, definition: def };
    await writeJsonAtomic(sweepPath, stored);
    const seedsNeeded = [...new Set([SEARCH_TRAIN_SEED, ...Array.from({ length: def.seeds }, (_, i) => i)])];
    for (const seed of seedsNeeded) await sharedInitialWeights(initialPath(out, seed), { ...def.config, seed }, dataset);
    // a training the queue cannot carry (its initial weights over a job's limit) refuses the
    // sweep before any job is enqueued; the jobs are planned as the search goes, so each loss's
    // first run stands for its runs (every run of a seed starts from the same weights file)
    queue?.check(
      def.losses.map((l) => ({
        label: `${l.spec.id} seed ${SEARCH_TRAIN_SEED}`,
        req: {
          type: 'train', out, config: trainConfig(def, l, undefined, def.split, SEARCH_TRAIN_SEED), resetWeights: initialPath(out, SEARCH_TRAIN_SEED),
          resume: false, retrieval: true, distanceSample: 0, snapshotPoints: DEFAULT_SNAPSHOT_POINTS,
        },
      })),
    );

    // ---- plan ------------------------------------------------------------------------------
    const trainings = sweepTrainings(def);
    const trainJob = (key: string, label: string, runDir: string, lossId: string, seed: number): CompareJob => sweepJob(def, key, label, runDir, lossId, seed);
    // results a crash left both in place and in Redis: dropped from Redis before the runs are read
    if (queue) for (const r of sweepRuns(def, out)) await queue.settle(r.job.runDir);
    const { planned, reusedKeys, work } = sweepJobs(def, out, dataset);
    // this machine's threads: the local pool's size; through a queue the fleet's workers train,
    // with threads of their own (worker.ts)
    const workers = queue ? 0 : sweepWorkers(def, opts.workers);
    const threads = workers > 1 ? 1 : 0;
    /** the fleet workers (host:pid) that ran this invocation's queue jobs */
    const fleet = new Set<string>();
    const plan: SweepPlan = { definition: def, trainings, finished: reusedKeys.length, workers, notes, sharedFinals: sharedFinalIds(def) };
    if (opts.queue) plan.queue = opts.queue.url.replace(/\/\/[^@/]*@/, '//');
    if (planned.length > 0 && callbacks.onSweepPlan && !opts.queue) {
      const e = await sweepEstimate(def, dataset, work, workers, threads, loadSeconds);
      if (e) {
        plan.estimate = e;
        plan.estimateSeconds = e.seconds;
      }
    }
    // the progress display's ETA until each training reports its own count
    for (const j of planned) j.batchesPerEpoch = work.find((w) => w.key === j.key)?.batchesPerEpoch;
    callbacks.onSweepPlan?.(plan);
    callbacks.onPlan?.({ jobs: planned, reused: reusedKeys, workers, runs: trainings });

    // ---- run -------------------------------------------------------------------------------
    const pool: Executor | undefined = planned.length === 0 ? (await queue?.close(), undefined) : (queue ?? new WorkerPool(workers));
    let interrupted = false;
    const onAbort = (): void => {
      interrupted = true;
      pool?.requestStop();
    };
    if (opts.signal?.aborted) onAbort();
    opts.signal?.addEventListener('abort', onAbort);
    const failures: SweepOutcome['failures'] = [];
    let trained = 0;
    const jobOf = new Map([...planned].map((j) => [j.key, j]));

    /**
     * Train (or reuse) one run; resolves to the error message when it failed, undefined when finished.
     * Only the final runs store per-epoch embeddings: hundreds of trials would write gigabytes.
     */
    const train = async (job: CompareJob, config: TrainConfig, runDir: string, seed: number, snapshotPoints = 0): Promise<string | undefined> => {
      const state = runState(runDir, config, dataset);
      if (state.kind === 'finished') return undefined;
      if (interrupted || !pool) throw new Interrupted();
      const req: JobRequest = {
        type: 'train',
        out: runDir,
        // a queue job's threads are its worker's to choose
        config: queue ? config : { ...config, threads },
        resetWeights: initialPath(out, seed),
        resume: state.kind === 'resume',
        retrieval: true,
        distanceSample: 0,
        snapshotPoints,
      };
      const started = { t: performance.now() };
      const j: CompareJob = { ...(jobOf.get(job.key) ?? job), startEpoch: state.epochsDone };
      try {
        const r = await pool.run(req, {
          onStart: (slot) => {
            started.t = performance.now();
            callbacks.onJobStart?.(j, slot);
          },
          onEvent: (ev, slot) => callbacks.onJobEvent?.(j, ev, slot),
          onRequeue: (slot) => callbacks.onJobRequeue?.(j, slot),
        });
        if (r.worker !== undefined) fleet.add(r.worker);
        callbacks.onJobEnd?.(j, { status: r.status, seconds: (performance.now() - started.t) / 1000 });
        if (r.status === 'interrupted') {
          interrupted = true;
          throw new Interrupted();
        }
        trained++;
        return undefined;
      } catch (e) {
        if (e instanceof Interrupted || interrupted) throw new Interrupted();
        const message = e instanceof Error ? e.message.split('\n')[0]! : String(e);
        failures.push({ key: job.key, message });
        callbacks.onJobEnd?.(j, { status: 'failed', seconds: (performance.now() - started.t) / 1000, message });
        return message;
      }
    };

    const searchLoss = async (l: SweepLossSpec): Promise<Trial[]> => {
      const id = l.spec.id;
      const history: Observation[] = [];
      const trials: Trial[] = [];
      const seed = lossSearchSeed(def.searchSeed, id);
      for (let t = 0; t < lossTrials(def, l); t++) {
        const params = l.space.length ? suggest(l.space, history, { seed }) : {};
        const folds = await Promise.all(
          def.groups.map(async (group, k): Promise<FoldScore> => {
            const runDir = trialDir(out, id, t, k);
            const job = trainJob(trialKey(id, t, k), `${id} trial ${t + 1} fold ${k + 1}`, runDir, id, SEARCH_TRAIN_SEED);
            const error = await train(job, trainConfig(def, l, params, foldSplit(def.trainClasses, group), SEARCH_TRAIN_SEED), runDir, SEARCH_TRAIN_SEED);
            const score: FoldScore = { fold: k, validationClasses: group, mapAtR: error ? null : mapAtROf(runDir), runDir };
            if (error) score.error = error;
            return score;
          }),
        );
        const ok = folds.every((f) => f.mapAtR !== null);
        const mapAtR = ok ? folds.reduce((a, f) => a + f.mapAtR!, 0) / folds.length : null;
        trials.push({ trial: t, params, validation: { mapAtR, folds } });
        history.push({ params, score: mapAtR ?? NaN });
      }
      return trials;
    };

    const finals = async (l: SweepLossSpec, best: Record<string, number> | undefined): Promise<void> => {
      const id = l.spec.id;
      const jobs: Promise<unknown>[] = [];
      for (const kind of finalKinds(def, l)) {
        if (kind === 'tuned' && !best) continue;
        for (let s = 0; s < def.seeds; s++) {
          const runDir = finalDir(out, id, kind, s);
          const job = trainJob(`${id}/${kind}-seed${s}`, `${id} ${kind} seed ${s}`, runDir, id, s);
          jobs.push(train(job, trainConfig(def, l, kind === 'tuned' ? best : undefined, def.split, s), runDir, s, DEFAULT_SNAPSHOT_POINTS));
        }
      }
      await Promise.all(jobs);
    };

    const perLossTrials = new Map<string, Trial[]>();
    let results: SweepResults | undefined;
    try {
      await Promise.all(
        def.losses.map(async (l) => {
          const trials = await searchLoss(l);
          perLossTrials.set(l.spec.id, trials);
          await finals(l, bestTrial(trials)?.params);
        }),
      );
    } catch (e) {
      if (!(e instanceof Interrupted)) throw e;
      interrupted = true;
    } finally {
      opts.signal?.removeEventListener('abort', onAbort);
      await pool?.close();
    }
    if (interrupted || opts.signal?.aborted) return { status: 'interrupted', out, failures, trained, reused: reusedKeys.length };

    // ---- summarise -------------------------------------------------------------------------
    callbacks.onPhase?.('testing the fold models and summarising');
    const resultsPath = join(out, RESULTS_FILE);
    const earlier = trained === 0 ? trainingFacts(resultsPath) : undefined;
    results = await buildResults(out, def, dataset, perLossTrials, {
      cores: availableParallelism(),
      // through a queue: the fleet's workers that ran the trainings, not this machine's threads
      workers: !pool ? 0 : queue ? fleet.size : workers,
      ...(pool && queue ? { queue: true } : {}),
      wallSeconds: Math.round((performance.now() - t0) / 100) / 10,
      trainings,
      trainedNow: trained,
      node: process.version,
    });
    if (earlier) {
      // nothing trained now: keep the facts of the invocation that trained (a re-summary of the
      // same runs, e.g. after a change to how they are summarised, is not a 0-training sweep)
      // its own wall time with the fold models' embedding, which a re-summary spends most of
      const wallSeconds = Math.round((performance.now() - t0) / 100) / 10;
      results.machine = { ...earlier, summarisedAgain: { wallSeconds, node: process.version, version: toolVersion() } };
    }
    await writeFileAtomic(resultsPath, resultsJson(results));
    // the report is the command's to write (cli/sweep.ts), from these results
    return { status: 'finished', out, results, resultsPath, failures, trained, reused: reusedKeys.length };
  } finally {
    await queue?.close();
  }
}

/** The machine facts of the results.json in the folder, when it is a sweep's and trained something. */
function trainingFacts(path: string): Omit<SweepResults['machine'], 'summarisedAgain'> | undefined {
  if (!existsSync(path)) return undefined;
  try {
    const r = readJson(path) as Partial<SweepResults>;
    const m = r.machine;
    if (r.kind !== 'sweep' || !m || !(m.trainedNow > 0)) return undefined;
    const { summarisedAgain: _s, ...facts } = m;
    return facts;
  } catch {
    return undefined; // unreadable: this invocation's own facts
  }
}

/** The best trial: highest mean validation MAP@R, the earliest on a tie; undefined when none scored. */
export function bestTrial(trials: readonly Trial[]): Trial | undefined {
  let best: Trial | undefined;
  for (const t of trials) {
    if (t.validation.mapAtR === null) continue;
    if (!best || t.validation.mapAtR > best.validation.mapAtR!) best = t;
  }
  return best;
}

function evaluationOf(runDir: string): Evaluation {
  const r = readJson(new RunDir(runDir).file('result')) as { evaluation?: Evaluation };
  if (!r.evaluation?.retrieval) throw new DataError(`${runDir}: result.json has no retrieval evaluation`);
  return r.evaluation;
}

function mapAtROf(runDir: string): number | null {
  const m = evaluationOf(runDir).retrieval!.mapAtR;
  return Number.isFinite(m) ? m : null;
}

/**
 * A fraction's mean over seeds (or folds) with its 95% CI, clipped to [0, 1] (summariseFraction:
 * with 2 seeds, P@1 of 0.81 and 0.76 gives 0.43 to 1.14 unclipped). `ci95` stays the t half-width.
 */
export function fractionMeasure(values: number[]): Measure {
  return summariseFraction(values);
}
const measure = fractionMeasure;

function testMeasures(out: string, id: string, kind: 'tuned' | 'default', seeds: number): { test: TestMeasures; runs: ScoredRun[] } | undefined {
  const rows: SeedScore[] = [];
  const runs: ScoredRun[] = [];
  for (let s = 0; s < seeds; s++) {
    const runDir = finalDir(out, id, kind, s);
    const r = new RunDir(runDir);
    if (!r.exists('result') || r.readManifest().status !== 'finished') continue;
    const e = evaluationOf(runDir);
    const ret = e.retrieval!;
    rows.push({
      seed: s,
      runDir,
      mapAtR: ret.mapAtR,
      precisionAt1: ret.precisionAt1,
      rPrecision: ret.rPrecision,
      knnAccuracy: ret.knnAccuracy,
      accuracy: e.pairs.accuracy,
      bestAccuracy: e.pairs.best.accuracy,
      auc: e.pairs.auc,
    });
    runs.push({ lossId: id, seed: s, evaluation: e });
  }
  if (rows.length === 0) return undefined;
  const m = (k: keyof Omit<SeedScore, 'seed' | 'runDir'>): Measure => measure(rows.map((r) => r[k]));
  return {
    test: {
      mapAtR: m('mapAtR'),
      precisionAt1: m('precisionAt1'),
      rPrecision: m('rPrecision'),
      knnAccuracy: m('knnAccuracy'),
      accuracyAt: accuracyAtOf(runs[0]!.evaluation),
      accuracy: m('accuracy'),
      bestAccuracy: m('bestAccuracy'),
      auc: m('auc'),
      seeds: rows,
    },
    runs,
  };
}

const retrievalSummary = (r: RetrievalMetrics): RetrievalSummary => ({
  mapAtR: r.mapAtR,
  precisionAt1: r.precisionAt1,
  rPrecision: r.rPrecision,
  knnAccuracy: r.knnAccuracy,
});

/** The best trial's fold models on the test classes: each alone, and their embeddings side by side. */
async function foldModels(out: string, def: SweepDefinition, best: Trial, id: string, ds: Dataset): Promise<SweepLossResult['foldModels']> {
  const parts: { embeddings: Float32Array; dim: number; labels: Uint8Array }[] = [];
  for (let k = 0; k < def.folds; k++) {
    // the fold's own config, with the sweep's split: its test side is the test classes
    const e = await embedSplit({ weights: trialDir(out, id, best.trial, k), split: 'test', config: { split: def.split }, dataset: ds });
    parts.push({ embeddings: e.embeddings, dim: e.dim, labels: e.labels });
  }
  const labels = parts[0]!.labels;
  const n = labels.length;
  const folds = parts.map((p) => retrievalSummary(retrievalMetrics(p.embeddings, p.dim, labels)));
  const dim = parts.reduce((a, p) => a + p.dim, 0);
  const cat = new Float32Array(n * dim);
  for (let i = 0; i < n; i++) {
    let off = i * dim;
    for (const p of parts) {
      cat.set(p.embeddings.subarray(i * p.dim, (i + 1) * p.dim), off);
      off += p.dim;
    }
  }
  return {
    separate: {
      mapAtR: measure(folds.map((f) => f.mapAtR)),
      precisionAt1: measure(folds.map((f) => f.precisionAt1)),
      rPrecision: measure(folds.map((f) => f.rPrecision)),
      folds,
    },
    concatenated: { ...retrievalSummary(retrievalMetrics(cat, dim, labels)), dim },
  };
}

async function buildResults(out: string, def: SweepDefinition, ds: Dataset, trialsOf: Map<string, Trial[]>, machine: SweepResults['machine']): Promise<SweepResults> {
  await initBackend('wasm');
  const losses: SweepLossResult[] = [];
  const tunedRuns: ScoredRun[] = [];
  const untunedRuns: ScoredRun[] = [];
  for (const l of def.losses) {
    const id = l.spec.id;
    const trials = trialsOf.get(id) ?? [];
    const best = bestTrial(trials);
    const tuned = testMeasures(out, id, 'tuned', def.seeds);
    const shared = sharesFinals(def, l);
    const untuned = shared ? tuned : testMeasures(out, id, 'default', def.seeds);
    if (!best || !tuned || !untuned) continue; // every trial or final run failed: the failures say why
    tunedRuns.push(...tuned.runs);
    untunedRuns.push(...untuned.runs);
    const fixed: Record<string, number | string> = {};
    for (const [k, v] of Object.entries(l.spec.params)) if (v !== undefined) fixed[k] = typeof v === 'boolean' ? String(v) : v;
    if (l.spec.miner) fixed['miner'] = l.spec.miner;
    if (l.learningRate !== undefined) fixed['lr'] = l.learningRate;
    losses.push({
      id,
      label: l.spec.label,
      loss: l.spec.loss,
      spec: l.text,
      fixed,
      space: l.space,
      trials,
      best: { trial: best.trial, params: best.params, validation: best.validation },
      test: tuned.test,
      foldModels: await foldModels(out, def, best, id, ds),
      untuned: shared ? { test: untuned.test, sameAsTuned: true } : { test: untuned.test },
    });
  }
  const specs = def.losses.filter((l) => losses.some((x) => x.id === l.spec.id)).map((l) => l.spec);
  const rank = (f: (l: SweepLossResult) => number): string[] => [...losses].sort((a, b) => f(b) - f(a)).map((l) => l.id);
  const tunedRank = rank((l) => l.test.mapAtR.mean);
  const untunedRank = rank((l) => l.untuned.test.mapAtR.mean);
  // like for like: the best-threshold accuracy of every loss, not each loss's own convention
  const measures = ['bestAccuracy', 'mapAtR'] as const;
  const comparisons = { tuned: pairedComparisons(specs, tunedRuns, measures), untuned: pairedComparisons(specs, untunedRuns, measures) };
  const ranking = { tuned: tunedRank, untuned: untunedRank };
  return {
    tool: 'siamese-lab',
    kind: 'sweep',
    version: toolVersion(),
    createdAt: new Date().toISOString(),
    dataset: { name: ds.name, source: ds.source },
    split: { spec: def.split, trainClasses: def.trainClasses, testClasses: def.testClasses },
    protocol: { trials: def.trials, folds: def.folds, seeds: def.seeds, searchSeed: def.searchSeed, groups: def.groups, config: def.config },
    losses,
    comparisons,
    ranking: { ...ranking, changed: tunedRank.join() !== untunedRank.join(), verdict: verdictText(sweepVerdict({ losses, comparisons, ranking })) },
    machine,
  };
}

