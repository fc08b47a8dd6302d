/**
 * A loss's potentials for plots: L_pos(D) and L_neg(D) at D = 0, 0.01, ..., 1.5, capped at
 * LOSS_SHAPE_CAP (the label says so). The report's chart, `siamese losses --plot` and the serve
 * page's playground all draw these. Its own light file: the server imports it without the
 * experiments layer's loaders, pool and trainer.
 */
import { createLoss } from '../losses/registry.ts';
import type { LossSpec } from './lossSpec.ts';
import type { CompareResults } from './results.ts';

/** values above this are drawn at it (Yukawa's 1/D at 0 would flatten everything) */
export const LOSS_SHAPE_CAP = 4;

/** L_pos(D), L_neg(D) at D = 0, 0.01, ..., 1.5, capped at LOSS_SHAPE_CAP (the label says so). */
export function lossShape(l: LossSpec): CompareResults['lossShapes'][number] {
  const loss = createLoss(l.loss, l.params);
  const d = Array.from({ length: 151 }, (_, i) => Math.round(i) / 100);
  let clipped = false;
  const cap = (v: number): number => {
    if (!(v <= LOSS_SHAPE_CAP)) {
      clipped = true;
      return LOSS_SHAPE_CAP;
    }
    return Math.round(v * 1e6) / 1e6;
  };
  const pos = d.map((x) => cap(loss.pos(x)));
  const neg = d.map((x) => cap(loss.neg(x)));
  let label = l.label;
  if (loss.kind === 'triplet') label += ' [pos: vs D_ap at D_an = 1; neg: vs D_an at D_ap = 0]';
  if (loss.kind === 'batch') label += ' [3-point batch: pos vs D_ap, negative at D = √2; neg vs D_an, positive at D = 0]';
  if (clipped) label += ` (values above ${LOSS_SHAPE_CAP} drawn at ${LOSS_SHAPE_CAP})`;
  return { loss: l.id, label, d, pos, neg };
}
