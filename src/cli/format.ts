import type { ClassSplit } from '../data/split.ts';
import type { Evaluation } from '../eval/evaluate.ts';

const f3 = (x: number): string => x.toFixed(3);
const pct = (x: number): string => `${(100 * x).toFixed(2)}%`;

/**
 * The seed's prediction printout, then every other measure, each labelled; under a class-disjoint
 * split, which classes they are on (every test measure uses the test classes alone).
 */
export function formatEvaluation(e: Evaluation, split?: ClassSplit): string {
  const p = e.pairs;
  const s = p.stats;
  const lines = [
    `* Accuracy on test set: ${pct(p.accuracy)}`,
    ...(split?.kind === 'classes'
      ? [`  test classes: ${split.testClasses.join(', ')} (class-disjoint split; trained on ${split.trainClasses.join(', ')})`]
      : []),
    p.thresholdFrom === 'best'
      ? `  test pairs: ${p.n} (at the best threshold D < ${f3(p.threshold)}, in-sample: this loss sets no absolute distance scale)`
      : `  test pairs: ${p.n} (threshold D < ${p.threshold})`,
    `  positive pairs, all:       mean D ${f3(s.pos.mean)}  std ${f3(s.pos.std)}  (n=${s.pos.n})`,
    `  positive pairs, D < 0.4:   mean D ${f3(s.posBelow04.mean)}  std ${f3(s.posBelow04.std)}  (n=${s.posBelow04.n}; the seed's filtered view)`,
    `  negative pairs, all:       mean D ${f3(s.neg.mean)}  std ${f3(s.neg.std)}  (n=${s.neg.n})`,
    `  best threshold: ${f3(p.best.threshold)} gives ${pct(p.best.accuracy)} (in-sample)`,
    `  ROC AUC ${p.auc.toFixed(4)}, equal error rate ${pct(p.eer.eer)} at D = ${f3(p.eer.threshold)}`,
  ];
  if (e.retrieval) {
    const r = e.retrieval;
    lines.push(
      `  retrieval (test images): precision@1 ${pct(r.precisionAt1)}, R-precision ${pct(r.rPrecision)}, ` +
        `MAP@R ${pct(r.mapAtR)}, ${r.k}-NN accuracy ${pct(r.knnAccuracy)}`,
    );
  }
  return lines.join('\n');
}
