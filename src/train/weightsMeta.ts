/**
 * What a weights file records of its training, in its safetensors `__metadata__` (string to
 * string, the format's place for it), so that a file copied out of its run folder (a "bare" file)
 * is evaluated as the folder is: a batch loss's embeddings are L2-normalised and its pair accuracy
 * is taken at the best threshold, and the split decides the test classes.
 *
 * `siamese-lab.config` (the run's whole config as JSON) is what the commands read; the other keys
 * say the same in words for a reader of the file (Python's `safe_open(...).metadata()`).
 */
import { existsSync, statSync } from 'node:fs';
import { DataError } from '../errors.ts';
import { readSafetensors } from '../io/safetensors.ts';
import { NORM_EPSILON } from '../losses/batch.ts';
import { createLoss } from '../losses/registry.ts';
import { normalisesEmbeddings } from '../losses/types.ts';
import type { TrainConfig } from './config.ts';

export const CONFIG_KEY = 'siamese-lab.config';

/** The metadata entries that describe how weights trained under `config` are evaluated. */
export function weightsMetadata(config: TrainConfig): Record<string, string> {
  const loss = createLoss(config.loss, config.lossParams);
  const batch = normalisesEmbeddings(loss);
  const params: Record<string, string> = Object.keys(config.lossParams).length > 0 ? { 'loss-params': JSON.stringify(config.lossParams) } : {};
  return {
    loss: config.loss,
    ...params,
    embeddings: batch ? `l2-normalised: row / max(|row|, ${NORM_EPSILON})` : 'not normalised',
    distance: 'euclidean',
    'pair-threshold': batch ? 'best (a batch loss sets no absolute distance scale)' : `D < ${config.threshold}`,
    split: config.split ?? 'pairs',
    base: config.base,
    'embedding-dim': String(config.embeddingDim),
    [CONFIG_KEY]: JSON.stringify(configToRecord(config)),
  };
}

/**
 * The config as recorded: without the engine and its threads, which change how fast the weights
 * were computed, not what they are (a run trained locally and on a queue worker writes the same bytes).
 */
function configToRecord(config: TrainConfig): Partial<TrainConfig> {
  const { engine: _engine, threads: _threads, ...rest } = config;
  return rest;
}

/** The config a safetensors weights file records (header only); undefined for one without, or another format. */
export async function readRecordedConfig(path: string): Promise<Partial<TrainConfig> | undefined> {
  if (!existsSync(path) || statSync(path).isDirectory()) return undefined;
  // Keras files carry no siamese-lab record (the signature test loadWeights uses)
  const { isKerasH5 } = await import('../model/keras.ts');
  if (isKerasH5(path)) return undefined;
  let metadata: Record<string, string>;
  try {
    ({ metadata } = await readSafetensors(path, { only: () => false }));
  } catch {
    return undefined; // not a readable safetensors file: loadWeights says why
  }
  return configFromMetadata(metadata, path);
}

/** The config a weights file's metadata records, or undefined for a file without one (older, or another tool's). */
export function configFromMetadata(metadata: Record<string, string>, file: string): Partial<TrainConfig> | undefined {
  // a checkpoint holds its config under its own key (runDir.ts)
  const text = metadata[CONFIG_KEY] ?? (metadata['format'] === 'siamese-lab-checkpoint' ? metadata['config'] : undefined);
  if (text === undefined) return undefined;
  let c: unknown;
  try {
    c = JSON.parse(text);
  } catch {
    throw new DataError(`${file}: its ${CONFIG_KEY} metadata is not valid JSON; give the run folder, or remove that entry`);
  }
  if (typeof c !== 'object' || c === null || Array.isArray(c) || typeof (c as { loss?: unknown }).loss !== 'string') {
    throw new DataError(`${file}: its ${CONFIG_KEY} metadata is not a training config; give the run folder, or remove that entry`);
  }
  return c as Partial<TrainConfig>;
}

/** The one-line warning for a file that records nothing: what was assumed, under the config resolved. */
export function assumedWarning(file: string, config: TrainConfig): string {
  return (
    `${file} does not record how it was trained (written by another tool or an older siamese-lab): ` +
    `assumed a pair loss (embeddings not normalised, pair accuracy at D < ${config.threshold}), ` +
    `split ${config.split ?? 'pairs'}, base ${config.base}` +
    `${config.embeddingDim === 128 ? '' : ` (${config.embeddingDim}-d)`}; ` +
    "a batch loss's weights give other numbers than their run folder: give the run folder instead"
  );
}
