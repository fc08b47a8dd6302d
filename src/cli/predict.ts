import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { DataError } from '../errors.ts';
import type { Evaluation } from '../eval/evaluate.ts';
import type { TrainConfig } from '../train/config.ts';
import { predict } from '../train/run.ts';
import { formatEvaluation } from './format.ts';

export interface PredictCommandOptions {
  weights?: string;
  config: Partial<TrainConfig>;
  retrieval?: boolean;
}

/** `siamese predict`: the seed's accuracy line, then the distance statistics and other measures. */
export async function predictCommand(o: PredictCommandOptions): Promise<Evaluation> {
  const weights = o.weights ?? latestRun('runs');
  const e = await predict({ weights, config: o.config, retrieval: o.retrieval });
  process.stdout.write(`weights: ${weights}\n${formatEvaluation(e)}\n`);
  return e;
}

/** The seed's predict takes no path: use the most recently finished run under runs/. */
function latestRun(root: string): string {
  const dirs = existsSync(root)
    ? readdirSync(root)
        .map((d) => join(root, d))
        .filter((d) => existsSync(join(d, 'weights.safetensors')))
    : [];
  if (dirs.length === 0) throw new DataError(`no --weights given and no trained run under ${root}/; train first or pass --weights FILE_OR_RUN_DIR`);
  return dirs.sort((a, b) => statSync(join(b, 'weights.safetensors')).mtimeMs - statSync(join(a, 'weights.safetensors')).mtimeMs)[0]!;
}
