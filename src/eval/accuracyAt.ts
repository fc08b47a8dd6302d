/**
 * The two conventions of pair accuracy: 'threshold', at the fixed D < config.threshold (the
 * seed's measure, for losses with an absolute distance scale); 'best', at the best threshold on
 * the test pairs themselves (in-sample), for the batch losses, which set no absolute distance
 * scale (evaluate.ts). Two accuracies of different conventions measure different things; the
 * best-threshold accuracy (`pairs.best.accuracy`) exists for every loss and sets them side by side.
 */
import type { Evaluation } from './evaluate.ts';

export type AccuracyAt = 'threshold' | 'best';

/** The convention of a run's `pairs.accuracy` (evaluate.ts marks the best threshold's). */
export const accuracyAtOf = (e: Pick<Evaluation, 'pairs'>): AccuracyAt => (e.pairs.thresholdFrom === 'best' ? 'best' : 'threshold');

/** A loss's convention: its summary's, or (files written before it) its runs'. */
export function lossAccuracyAt(
  r: { runs: readonly { lossId: string; evaluation: Pick<Evaluation, 'pairs'> }[] },
  s: { lossId: string; accuracyAt?: AccuracyAt },
): AccuracyAt {
  if (s.accuracyAt) return s.accuracyAt;
  const run = r.runs.find((x) => x.lossId === s.lossId);
  // a results.json is read with only the fields the report draws checked: no evaluation, no mark
  return (run?.evaluation as Partial<Pick<Evaluation, 'pairs'>> | undefined)?.pairs?.thresholdFrom === 'best' ? 'best' : 'threshold';
}
