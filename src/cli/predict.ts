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
  process.stdout.write(`weights: ${weights}\n${formatEvaluation(e, e.split)}\n`);
  return e;
}

/** `potential` is the registry's alias of `yukawa`: a run of either is a run of both. */
const sameLoss = (a: string, b: string): boolean => (a === 'potential' ? 'yukawa' : a) === (b === 'potential' ? 'yukawa' : b);

/**
 * The seed's predict takes no path: use the most recently trained run under runs/ (of `loss`, if
 * given), looking into comparison folders too (runs/compare/runs/<loss>-seed<S>/), so that
 * `compare` then `predict` works as `train` then `predict` does.
 */
export function latestRun(root: string, loss?: string): string {
  if (loss !== undefined && loss !== 'custom') createLoss(loss); // an unknown name is a usage error, not "no run"
  const found: { dir: string; mtime: number }[] = [];
  const visit = (dir: string, depth: number): void => {
    let entries;
    try {
      entries = readdirSync(dir, { withFileTypes: true });
    } catch {
      return; // unreadable folders are not runs
    }
    if (entries.some((e) => e.isFile() && e.name === 'weights.safetensors')) {
      if (loss === undefined || sameLoss(runLoss(dir) ?? '', loss)) found.push({ dir, mtime: statSync(join(dir, 'weights.safetensors')).mtimeMs });
      return;
    }
    if (depth < 3) for (const e of entries) if (e.isDirectory()) visit(join(dir, e.name), depth + 1);
  };
  if (existsSync(root)) visit(root, 0);
  if (found.length === 0) {
    const what = loss === undefined ? 'no trained run' : `no trained run of loss ${loss}`;
    throw new DataError(`no --weights given and ${what} under ${root}/; train first or pass --weights FILE_OR_RUN_DIR`);
  }
  // newest first; equal times (coarse file systems) fall back to the path, so the choice is stable
  found.sort((a, b) => b.mtime - a.mtime || (a.dir < b.dir ? -1 : 1));
  return found[0]!.dir;
}

function runLoss(dir: string): string | undefined {
  try {
    return new RunDir(dir).readManifest().config.loss;
  } catch {
    return undefined; // bare weights without a manifest: no loss to match
  }
}
