import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { DataError, UsageError } from '../errors.ts';
import type { Evaluation } from '../eval/evaluate.ts';
import { createLoss } from '../losses/registry.ts';
import type { TrainConfig } from '../train/config.ts';
import { RunDir } from '../train/runDir.ts';
import { predict } from '../train/run.ts';
import { formatEvaluation } from './format.ts';

export interface PredictCommandOptions {
  weights?: string;
  /** without weights: the newest run of this loss (the seed's `--train=False --loss=NAME`) */
  loss?: string;
  config: Partial<TrainConfig>;
  retrieval?: boolean;
}

/** `siamese predict`: the seed's accuracy line, then the distance statistics and other measures. */
export async function predictCommand(o: PredictCommandOptions): Promise<Evaluation> {
  if (o.weights !== undefined && o.loss !== undefined) {
    throw new UsageError('give --weights (those weights) or --loss (the newest run of that loss), not both');
  }
  const weights = o.weights ?? latestRun('runs', o.loss);
  const e = await predict({ weights, config: o.config, retrieval: o.retrieval });
  process.stdout.write(`weights: ${weights}\n${formatEvaluation(e)}\n`);
  return e;
}

/** `potential` is the registry's alias of `yukawa`: a run of either is a run of both. */
const sameLoss = (a: string, b: string): boolean => (a === 'potential' ? 'yukawa' : a) === (b === 'potential' ? 'yukawa' : b);

/** The seed's predict takes no path: use the most recently finished run under runs/ (of `loss`, if given). */
function latestRun(root: string, loss?: string): string {
  if (loss !== undefined && loss !== 'custom') createLoss(loss); // an unknown name is a usage error, not "no run"
  const dirs = existsSync(root)
    ? readdirSync(root)
        .map((d) => join(root, d))
        .filter((d) => existsSync(join(d, 'weights.safetensors')))
        .filter((d) => loss === undefined || sameLoss(runLoss(d) ?? '', loss))
    : [];
  if (dirs.length === 0) {
    const what = loss === undefined ? 'no trained run' : `no trained run of loss ${loss}`;
    throw new DataError(`no --weights given and ${what} under ${root}/; train first or pass --weights FILE_OR_RUN_DIR`);
  }
  return dirs.sort((a, b) => statSync(join(b, 'weights.safetensors')).mtimeMs - statSync(join(a, 'weights.safetensors')).mtimeMs)[0]!;
}

function runLoss(dir: string): string | undefined {
  try {
    return new RunDir(dir).readManifest().config.loss;
  } catch {
    return undefined; // bare weights without a manifest: no loss to match
  }
}
