import type { AccuracyAt } from '../eval/accuracyAt.ts';
import type { Evaluation } from '../eval/evaluate.ts';
import type { TrainConfig } from '../train/config.ts';
import type { EpochLog } from '../train/trainer.ts';

/**
 * The serialisable result of `siamese compare` (results.json). Charts and the report read only
 * this object, so `siamese report RUN_DIR` can rebuild them without retraining.
 */
export interface CompareResults {
  tool: 'siamese-lab';
  version: string;
  createdAt: string;
  /** the grid: losses (with their parameters) x seeds, and the shared training config */
  spec: CompareSpec;
  /**
   * machine facts: cpu model, cores, node version, workers, wall seconds. With `queue`, the jobs
   * ran on a queue's workers: `workers` counts those that ran this invocation's jobs, and cpu and
   * cores are the coordinator's (the machine that wrote this file)
   */
  machine: { cpu: string; cores: number; node: string; workers: number; wallSeconds: number; date: string; queue?: boolean };
  dataset: { name: string; source: string; trainPairs: number; testPairs: number; testImages: number };
  /** one entry per finished (loss, seed) run */
  runs: RunSummary[];
  /** per loss: mean and 95% CI over seeds of every measure */
  summary: LossSummary[];
  /** paired differences between losses over seeds (same seeds, same initial weights) */
  comparisons: PairedComparison[];
  /** 2-D t-SNE of a test subset: before training (seed 0 initial weights) and after each loss (seed 0) */
  tsne?: TsneResult;
  /** loss shapes L_pos(D), L_neg(D) sampled on [0, 1.5] for the loss-shape chart */
  lossShapes: { loss: string; label: string; d: number[]; pos: number[]; neg: number[] }[];
  /** what the comparison had to leave out or adjust (e.g. a lowered t-SNE perplexity), in words */
  notes?: string[];
}

export interface CompareSpec {
  losses: { id: string; loss: string; params: Record<string, number | string | boolean | undefined>; miner?: string; label: string }[];
  seeds: number[];
  config: Omit<TrainConfig, 'loss' | 'lossParams' | 'seed' | 'miner'>;
}

export interface RunSummary {
  /** the loss entry's id in spec.losses */
  lossId: string;
  seed: number;
  runDir: string;
  history: EpochLog[];
  evaluation: Evaluation;
  /** a histogram-ready sample of test pair distances: the first 4,000 positive and 4,000 negative
   *  test pairs in the recipe's (shuffled) order, rounded to 1e-4 */
  distances: { pos: number[]; neg: number[] };
}

/** mean, 95% CI half-width (t distribution over seeds), and per-seed values of one measure */
export interface Stat {
  mean: number;
  /**
   * the 95% CI [low, high], mean ± ci95 clipped to [0, 1]: on a comparison's summary measures that
   * are fractions (accuracy, bestAccuracy, auc, eer, precisionAt1, rPrecision, mapAtR,
   * knnAccuracy); absent on the others and in files written before it
   */
  ci?: [number, number];
  /** half-width of the t 95% CI of the mean (0 for one value) */
  ci95: number;
  std: number;
  values: number[];
}

/** How a loss's `accuracy` is measured (eval/accuracyAt.ts); `bestAccuracy` sets every loss side by side. */
export type { AccuracyAt };

export interface LossSummary {
  lossId: string;
  label: string;
  seeds: number;
  /** the convention of `accuracy` (absent in files written before it: read it from the runs, lossAccuracyAt) */
  accuracyAt?: AccuracyAt;
  /** pair accuracy by the loss's convention (accuracyAt) */
  accuracy: Stat;
  bestAccuracy: Stat;
  bestThreshold: Stat;
  auc: Stat;
  eer: Stat;
  posMean: Stat;
  posStd: Stat;
  negMean: Stat;
  negStd: Stat;
  posBelow04Mean: Stat;
  posBelow04Std: Stat;
  precisionAt1?: Stat;
  rPrecision?: Stat;
  mapAtR?: Stat;
  knnAccuracy?: Stat;
  /** per-epoch mean and band over seeds, for the learning-curve chart */
  curves: { epoch: number; loss: Stat; trainAccuracy: Stat; testAccuracy: Stat }[];
}

export interface PairedComparison {
  a: string;
  b: string;
  /**
   * 'accuracy': pair accuracy, tested only between losses of one convention (AccuracyAt; files
   * written before that rule may pair two conventions); 'bestAccuracy': best-threshold pair
   * accuracy, any two losses; 'mapAtR': retrieval MAP@R
   */
  measure: 'accuracy' | 'bestAccuracy' | 'mapAtR';
  /** mean of (a − b) over seeds, its 95% CI, paired t statistic and two-sided p-value */
  meanDiff: number;
  ci95: number;
  t: number;
  /** the raw p-value of this one test */
  p: number;
  /**
   * Holm's adjustment of p over the family of tests of this measure (every pair of losses; a
   * single pair of runs is no test and is left out, its pHolm is its p); absent in files written
   * before it existed
   */
  pHolm?: number;
  /** how many tests that family holds */
  tests?: number;
  seeds: number;
  /** plain-words verdict, e.g. "yukawa > contrastive (p = 0.004)" or "no significant difference" */
  verdict: string;
}

export interface TsneResult {
  /** indices into the test split of the embedded subset */
  indices: number[];
  labels: number[];
  /** one panel per stage: "before training", then each loss */
  panels: { title: string; lossId?: string; points: number[] }[];
  /** the settings used; the perplexity is the effective one (see requestedPerplexity) */
  params: { perplexity: number; iterations: number; seed: number; theta: number };
  /** the perplexity asked for, when it was lowered to fit the number of points */
  requestedPerplexity?: number;
}
