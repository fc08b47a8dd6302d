/**
 * L_pos(D) and L_neg(D) of a loss spec for the page's loss-shape view, sampled like the report's
 * chart (experiments/compare.ts lossShape: D = 0, 0.01, ..., 1.5, values capped at 4). Not
 * imported from there: compare.ts brings the data loaders, the worker pool and the trainer with
 * it (about 50 MB more server memory and seconds of start-up) for a ten-line loop.
 */
import { parseLossSpec } from '../experiments/lossSpec.ts';
import { createLoss } from '../losses/registry.ts';

const CAP = 4;

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
  const d = Array.from({ length: 151 }, (_, i) => i / 100);
  let clipped = false;
  const cap = (v: number): number => {
    if (!(v <= CAP)) {
      clipped = true;
      return CAP;
    }
    return Math.round(v * 1e6) / 1e6;
  };
  const pos = d.map((x) => cap(loss.pos(x)));
  const neg = d.map((x) => cap(loss.neg(x)));
  let label = spec.label;
  if (loss.kind === 'triplet') label += ' [pos: vs D_ap at D_an = 1; neg: vs D_an at D_ap = 0]';
  if (clipped) label += ` (values above ${CAP} drawn at ${CAP})`;
  return { loss: spec.id, label, formula: loss.formula, params: { ...loss.params }, d, pos, neg };
}
