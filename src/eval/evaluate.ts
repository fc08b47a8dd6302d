import type { Training } from '../train/trainer.ts';
import { type PairMetrics, pairMetrics } from './pairs.ts';
import { type RetrievalMetrics, retrievalMetrics } from './retrieval.ts';

/** Every measure of a trained model on the test split. */
export interface Evaluation {
  /** test pair measures: accuracy at the threshold (the seed's measure), best threshold, AUC, EER, distance stats */
  pairs: PairMetrics;
  /** retrieval on the test embeddings (Musgrave et al. 2020) */
  retrieval?: RetrievalMetrics;
}

export interface EvaluateOptions {
  retrieval?: boolean;
}

export function evaluateTraining(t: Training, opts: EvaluateOptions = {}): Evaluation {
  const emb = t.embed(t.dataset.test);
  const { distances, labels } = t.evaluate(t.testPairs, t.dataset.test, emb);
  const pairs = pairMetrics(distances, labels, t.config.threshold);
  if (t.loss.kind === 'batch') {
    // no absolute distance scale: the fixed threshold means nothing, report the best one (and say so)
    pairs.accuracy = pairs.best.accuracy;
    pairs.threshold = pairs.best.threshold;
    pairs.thresholdFrom = 'best';
  }
  const out: Evaluation = { pairs };
  if (opts.retrieval ?? true) out.retrieval = retrievalMetrics(emb, t.network.embeddingDim, t.dataset.test.labels);
  return out;
}
