/**
 * L_pos(D) and L_neg(D) of a loss spec for the page's loss-shape view: the report's own samples
 * (experiments/lossShape.ts), with the loss's formula and parameters for the playground.
 */
import { parseLossSpec } from '../experiments/lossSpec.ts';
import { lossShape } from '../experiments/lossShape.ts';
import { createLoss } from '../losses/registry.ts';

export interface ShapeSample {
  loss: string;
  label: string;
  formula: string;
  params: Record<string, unknown>;
  d: number[];
  pos: number[];
  neg: number[];
}

/** Throws UsageError (one line, with the column of a formula error) for a bad spec. */
export function sampleShape(specText: string): ShapeSample {
  const spec = parseLossSpec(specText);
  const loss = createLoss(spec.loss, spec.params);
  const { label, d, pos, neg } = lossShape(spec);
  return { loss: spec.id, label, formula: loss.formula, params: { ...loss.params }, d, pos, neg };
}
