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

/**
 * The seed's predict takes no path: use the most recently trained run under runs/, looking into
 * comparison folders too (runs/compare/runs/<loss>-seed<S>/), so that `compare` then `predict`
 * works as `train` then `predict` does.
 */
export function latestRun(root: string): string {
  const found: { dir: string; mtime: number }[] = [];
  const visit = (dir: string, depth: number): void => {
    let entries;
    try {
      entries = readdirSync(dir, { withFileTypes: true });
    } catch {
      return; // unreadable folders are not runs
    }
    if (entries.some((e) => e.isFile() && e.name === 'weights.safetensors')) {
      found.push({ dir, mtime: statSync(join(dir, 'weights.safetensors')).mtimeMs });
      return;
    }
    if (depth < 3) for (const e of entries) if (e.isDirectory()) visit(join(dir, e.name), depth + 1);
  };
  if (existsSync(root)) visit(root, 0);
  if (found.length === 0) throw new DataError(`no --weights given and no trained run under ${root}/; train first or pass --weights FILE_OR_RUN_DIR`);
  // newest first; equal times (coarse file systems) fall back to the path, so the choice is stable
  found.sort((a, b) => b.mtime - a.mtime || (a.dir < b.dir ? -1 : 1));
  return found[0]!.dir;
}
