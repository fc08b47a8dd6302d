/**
 * The t-SNE panels of a comparison: which test images (a stratified subset), which weights
 * (before training and each loss's first-seed run), the perplexity small data allow, and the
 * layouts already computed (reused when weights and settings are unchanged).
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { classCount, type Dataset } from '../data/dataset.ts';
import { stratifiedSubset, stratifiedSubsetOf } from '../data/subset.ts';
import { parseSplit, resolveSplit } from '../data/split.ts';
import { resolveConfig, type TrainConfig } from '../train/config.ts';
import { readJson } from '../train/runDir.ts';
import { type TsneFile, type TsneParams } from './jobs.ts';
import { count } from '../words.ts';
import { maxPerplexity } from '../viz/tsne.ts';
import type { CompareSpec } from './results.ts';
import { ensureDir, initialPath, runKey, type StoredGrid } from './grid.ts';

export interface TsnePanelPlan {
  name: string;
  title: string;
  lossId?: string;
  weights: string;
  file: string;
}

export interface TsnePlan {
  indices: number[];
  labels: number[];
  config: TrainConfig;
  panels: TsnePanelPlan[];
  /** the grid's settings, with the perplexity lowered to fit the points actually embedded */
  params: TsneParams;
  /** the grid's perplexity, when it had to be lowered */
  requestedPerplexity?: number;
}

// the subset moved to data/ (training's snapshots take it too); its old home still exports it
export { stratifiedSubset };

/** Fewer test images than this: no t-SNE (a layout of a handful of points shows nothing). */
export const MIN_TSNE_ROWS = 10;

export { maxPerplexity } from '../viz/tsne.ts';

/** The t-SNE plan, or a note saying why there is none (too few test images). */
export function planTsne(out: string, spec: CompareSpec, grid: StoredGrid, ds: Dataset): { plan?: TsnePlan; note?: string } {
  const seed0 = spec.seeds[0]!;
  if (ds.test.n < MIN_TSNE_ROWS) {
    return { note: `No t-SNE: the test split of ${ds.name} has ${ds.test.n} image${ds.test.n === 1 ? '' : 's'}, fewer than ${MIN_TSNE_ROWS}.` };
  }
  // under a class-disjoint split, the panels show the held-out test classes only
  // (the same draw as the runs' embeddings.bin: with the default seed, the same images)
  const testClasses = resolveSplit(parseSplit(spec.config.split ?? 'pairs'), classCount(ds.train.labels)).testClasses;
  const indices = stratifiedSubsetOf(ds.test.labels, testClasses, grid.tsne.points, grid.tsne.params.seed);
  const requested = grid.tsne.params.perplexity;
  const params: TsneParams = { ...grid.tsne.params, perplexity: Math.min(requested, maxPerplexity(indices.length)) };
  const panels: TsnePanelPlan[] = [
    { name: 'before', title: `before training (seed ${seed0} initial weights)`, weights: initialPath(out, seed0), file: join(out, 'tsne', 'before.json') },
    ...spec.losses.map((l) => ({
      name: l.id,
      title: `${l.label} (seed ${seed0})`,
      lossId: l.id,
      weights: join(out, 'runs', runKey(l.id, seed0), 'weights.safetensors'),
      file: join(out, 'tsne', `${l.id}.json`),
    })),
  ];
  ensureDir(join(out, 'tsne'));
  const plan: TsnePlan = { indices, labels: indices.map((i) => ds.test.labels[i]!), config: resolveConfig({ ...spec.config, seed: seed0 }), panels, params };
  if (params.perplexity === requested) return { plan };
  plan.requestedPerplexity = requested;
  const note =
    `t-SNE perplexity lowered from ${requested} to ${params.perplexity.toFixed(2)}: ${count(indices.length, 'test image')} are embedded, ` +
    `and the perplexity must stay at most (points − 1) / 3.`;
  return { plan, note };
}

/** Identifies a layout: the weights' bytes, the settings and the subset. */
export function tsneKey(weights: string, params: TsneParams, indices: number[]): string {
  const h = createHash('sha256');
  h.update(readFileSync(weights));
  h.update(JSON.stringify([params, indices]));
  return h.digest('hex');
}

export function readTsne(file: string, key: string): TsneFile | undefined {
  if (!existsSync(file)) return undefined;
  try {
    const f = readJson(file) as TsneFile;
    return f.key === key && Array.isArray(f.points) ? f : undefined;
  } catch {
    return undefined;
  }
}
