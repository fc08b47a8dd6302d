/**
 * Collect a comparison's results from its run folders: every run's history, evaluation and
 * distances, summaries over seeds with confidence intervals, paired tests between losses with
 * Holm's correction (worded by viz/pairedVerdicts.ts), loss shapes, t-SNE layouts, machine facts.
 */
import { existsSync, readFileSync } from 'node:fs';
import { availableParallelism, cpus } from 'node:os';
import { join } from 'node:path';
import { type Dataset } from '../data/dataset.ts';
import { splitLabels } from '../data/split.ts';
import type { Evaluation } from '../eval/evaluate.ts';
import { readJson, RunDir, toolVersion } from '../train/runDir.ts';
import type { EpochLog } from '../train/trainer.ts';
import { type DistanceSample, readDistances } from './jobs.ts';
import { type LossSpec } from './lossSpec.ts';
import { accuracyAtOf } from '../eval/accuracyAt.ts';
import type { CompareResults, LossSummary, PairedComparison, RunSummary, Stat, TsneResult } from './results.ts';
import { type PairedTTest, pairedTTest, summarise, summariseFraction } from '../stats.ts';
import { holmFamilies, type PairedMeasure, type PairedTest } from '../viz/pairedVerdicts.ts';
import { fullPairCount, runKey, type StoredGrid, trainPairCount } from './grid.ts';
import { lossShape } from './lossShape.ts';
import { readTsne, type TsnePlan, tsneKey } from './tsnePlan.ts';

export interface RunFiles {
  lossId: string;
  seed: number;
  runDir: string;
  history: EpochLog[];
  evaluation: Evaluation;
  distances: DistanceSample;
}

function readRun(out: string, lossId: string, seed: number, distanceSample: number): RunFiles | undefined {
  const runDir = join(out, 'runs', runKey(lossId, seed));
  const run = new RunDir(runDir);
  if (!run.exists('manifest') || !run.exists('result')) return undefined;
  if (run.readManifest().status !== 'finished') return undefined;
  const r = readJson(run.file('result')) as { history?: EpochLog[]; evaluation?: Evaluation };
  const distances = readDistances(runDir, distanceSample);
  if (!r.evaluation || !Array.isArray(r.history) || !distances) return undefined;
  return { lossId, seed, runDir, history: r.history, evaluation: r.evaluation, distances };
}

export function buildResults(a: {
  out: string;
  grid: StoredGrid;
  dataset: Dataset;
  tsne: TsnePlan | undefined;
  notes: string[];
  workers: number;
  /** the jobs ran on the workers of a queue (`workers` counts them), not on this machine */
  queue?: boolean;
  wallSeconds: number;
}): CompareResults {
  const { spec } = a.grid;
  const runs: RunFiles[] = [];
  for (const l of spec.losses) {
    for (const seed of spec.seeds) {
      const r = readRun(a.out, l.id, seed, a.grid.distanceSample);
      if (r) runs.push(r);
    }
  }
  const runSummaries: RunSummary[] = runs.map((r) => ({
    lossId: r.lossId,
    seed: r.seed,
    runDir: r.runDir,
    history: r.history,
    evaluation: r.evaluation,
    distances: { pos: r.distances.pos, neg: r.distances.neg },
  }));
  const summary = spec.losses
    .map((l) => lossSummary(l, runs.filter((r) => r.lossId === l.id)))
    .filter((s): s is LossSummary => s !== undefined);
  const comparisons = pairedComparisons(spec.losses, runs);
  const ds = a.dataset;
  // the counts of what the runs saw: under a class split, only their own classes' images
  const seen = splitLabels(ds, spec.config.split ?? 'pairs');
  const testPairsAll = fullPairCount(seen.test);
  const results: CompareResults = {
    tool: 'siamese-lab',
    version: toolVersion(),
    createdAt: new Date().toISOString(),
    spec,
    machine: { ...machineFacts(a.workers, a.wallSeconds), ...(a.queue ? { queue: true } : {}) },
    dataset: {
      name: ds.name,
      source: ds.source,
      trainPairs: trainPairCount(spec, seen.train),
      testPairs: spec.config.testPairs > 0 ? Math.min(spec.config.testPairs, testPairsAll) : testPairsAll,
      testImages: seen.test.length,
    },
    runs: runSummaries,
    summary,
    comparisons,
    lossShapes: spec.losses.map(lossShape),
  };
  if (a.tsne) {
    const panels: TsneResult['panels'] = [];
    for (const p of a.tsne.panels) {
      if (!existsSync(p.weights)) continue;
      const f = readTsne(p.file, tsneKey(p.weights, a.tsne.params, a.tsne.indices));
      if (!f) continue;
      const panel: TsneResult['panels'][number] = { title: p.title, points: f.points };
      if (p.lossId !== undefined) panel.lossId = p.lossId;
      panels.push(panel);
    }
    if (panels.length) {
      results.tsne = { indices: a.tsne.indices, labels: a.tsne.labels, panels, params: a.tsne.params };
      if (a.tsne.requestedPerplexity !== undefined) results.tsne.requestedPerplexity = a.tsne.requestedPerplexity;
    }
  }
  if (a.notes.length) results.notes = [...a.notes];
  return results;
}

/**
 * results.json as pretty JSON, except that arrays of plain numbers (distances, t-SNE points,
 * per-seed values) stay on one line: a third of the size, and still readable.
 */
export function resultsJson(r: object): string {
  const text = JSON.stringify(r, null, 2);
  // a pretty-printed array opens with a real line break, which no JSON string can hold
  const numbers = /\[\n\s*(-?\d[\d.eE+-]*(?:,\n\s*-?\d[\d.eE+-]*)*)\n\s*\]/g;
  return text.replace(numbers, (_m, items: string) => `[${items.split(/,\n\s*/).join(', ')}]`) + '\n';
}

/** A loss's summary over its finished seeds: each measure's mean and CI, and the learning curves. */
export function lossSummary(l: Pick<LossSpec, 'id' | 'label'>, runs: readonly Pick<RunFiles, 'evaluation' | 'history'>[]): LossSummary | undefined {
  if (runs.length === 0) return undefined;
  const s = (f: (e: Evaluation) => number): Stat => summarise(runs.map((r) => f(r.evaluation)));
  // a fraction's CI also clipped to [0, 1] (`ci`), as a sweep's results.json stores it
  const frac = (f: (e: Evaluation) => number): Stat => summariseFraction(runs.map((r) => f(r.evaluation)));
  const out: LossSummary = {
    lossId: l.id,
    label: l.label,
    seeds: runs.length,
    accuracyAt: accuracyAtOf(runs[0]!.evaluation),
    accuracy: frac((e) => e.pairs.accuracy),
    bestAccuracy: frac((e) => e.pairs.best.accuracy),
    bestThreshold: s((e) => e.pairs.best.threshold),
    auc: frac((e) => e.pairs.auc),
    eer: frac((e) => e.pairs.eer.eer),
    posMean: s((e) => e.pairs.stats.pos.mean),
    posStd: s((e) => e.pairs.stats.pos.std),
    negMean: s((e) => e.pairs.stats.neg.mean),
    negStd: s((e) => e.pairs.stats.neg.std),
    posBelow04Mean: s((e) => e.pairs.stats.posBelow04.mean),
    posBelow04Std: s((e) => e.pairs.stats.posBelow04.std),
    curves: [],
  };
  if (runs.every((r) => r.evaluation.retrieval)) {
    out.precisionAt1 = frac((e) => e.retrieval!.precisionAt1);
    out.rPrecision = frac((e) => e.retrieval!.rPrecision);
    out.mapAtR = frac((e) => e.retrieval!.mapAtR);
    out.knnAccuracy = frac((e) => e.retrieval!.knnAccuracy);
  }
  const maxEpoch = Math.max(...runs.map((r) => r.history.length));
  for (let ep = 1; ep <= maxEpoch; ep++) {
    const logs = runs.map((r) => r.history.find((h) => h.epoch === ep)).filter((h): h is EpochLog => h !== undefined);
    out.curves.push({
      epoch: ep,
      loss: summarise(logs.map((h) => h.loss)),
      trainAccuracy: summarise(logs.map((h) => h.trainAccuracy)),
      testAccuracy: summarise(logs.map((h) => h.testAccuracy)),
    });
  }
  return out;
}

/** What a paired test needs of a finished run. */
export type ScoredRun = Pick<RunFiles, 'lossId' | 'seed' | 'evaluation'>;

/**
 * Which paired measures a comparison of these runs tests: pair accuracy and MAP@R, and the
 * best-threshold accuracy as well when the losses' accuracies follow different conventions (a
 * batch loss beside one with a distance scale): their `accuracy` tests then pair only losses at
 * the fixed threshold, and the best-threshold tests pair them all, like for like. Batch losses
 * alone: the best-threshold accuracy (their `accuracy`, the same values) and MAP@R.
 */
export function pairedMeasures(runs: readonly ScoredRun[]): PairedMeasure[] {
  const conventions = new Set(runs.map((r) => accuracyAtOf(r.evaluation)));
  if (conventions.size > 1) return ['accuracy', 'bestAccuracy', 'mapAtR'];
  // batch losses only: their accuracy is their best threshold's, tested and named as such
  return conventions.has('best') ? ['bestAccuracy', 'mapAtR'] : ['accuracy', 'mapAtR'];
}

/**
 * Every pair of losses, on each measure (default: pairedMeasures), tested over the seeds both
 * finished. The tests of one measure form a family: their p-values get Holm's adjustment, and a
 * difference is called significant only when its adjusted p is below 0.05 (with many losses, some
 * raw p-values fall below 0.05 by chance alone). `accuracy` pairs only two losses whose accuracies
 * follow one convention (accuracyAtOf), and beside `bestAccuracy` only two at the fixed threshold
 * (two batch losses' accuracy is their best-threshold accuracy: tested once, in that family);
 * `bestAccuracy` pairs any two.
 */
export function pairedComparisons(losses: readonly LossSpec[], runs: readonly ScoredRun[], measures: readonly PairedMeasure[] = pairedMeasures(runs)): PairedComparison[] {
  const tests: PairedTest[] = [];
  for (let i = 0; i < losses.length; i++) {
    for (let j = i + 1; j < losses.length; j++) {
      for (const measure of measures) {
        const t = pairedTest(losses[i]!, losses[j]!, runs, measure, measures.includes('bestAccuracy'));
        if (t) tests.push({ a: losses[i]!, b: losses[j]!, measure, t });
      }
    }
  }
  return holmFamilies(tests);
}

/**
 * The paired test of a against b on the seeds both finished; undefined when none, no such
 * measure, or (for `accuracy`) a pair of runs whose accuracies follow different conventions.
 */
function pairedTest(a: LossSpec, b: LossSpec, runs: readonly ScoredRun[], measure: PairedMeasure, fixedOnly: boolean): PairedTTest | undefined {
  const value = (r: ScoredRun): number | undefined =>
    measure === 'accuracy' ? r.evaluation.pairs.accuracy : measure === 'bestAccuracy' ? r.evaluation.pairs.best?.accuracy : r.evaluation.retrieval?.mapAtR;
  const va: number[] = [];
  const vb: number[] = [];
  for (const ra of runs.filter((r) => r.lossId === a.id)) {
    const rb = runs.find((r) => r.lossId === b.id && r.seed === ra.seed);
    if (rb && measure === 'accuracy') {
      const at = accuracyAtOf(ra.evaluation);
      if (at !== accuracyAtOf(rb.evaluation) || (fixedOnly && at === 'best')) continue;
    }
    const x = value(ra);
    const y = rb ? value(rb) : undefined;
    if (x !== undefined && y !== undefined && Number.isFinite(x) && Number.isFinite(y)) {
      va.push(x);
      vb.push(y);
    }
  }
  return va.length === 0 ? undefined : pairedTTest(va, vb);
}

function machineFacts(workers: number, wallSeconds: number): CompareResults['machine'] {
  let cpu = '';
  try {
    const m = /^model name\s*:\s*(.+)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'));
    cpu = m?.[1]?.trim() ?? '';
  } catch {
    // not Linux
  }
  if (!cpu) cpu = cpus()[0]?.model ?? 'unknown';
  return {
    cpu,
    cores: availableParallelism(),
    node: process.version,
    workers,
    wallSeconds: Math.round(wallSeconds * 10) / 10,
    date: new Date().toISOString(),
  };
}
