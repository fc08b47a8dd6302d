/**
 * The paired tests of a comparison in words: each measure's tests adjusted together with Holm's
 * correction, and each worded as a verdict (significant only on a Holm p below 0.05). Compare and
 * sweep word their new tests here; readResults, beside it, corrects with withHolm the tests of a
 * results.json written before the correction, so that every reader of a file gets the same verdicts.
 */
import type { LossSpec } from '../experiments/lossSpec.ts';
import type { PairedComparison } from '../experiments/results.ts';
import { holmAdjust, type PairedTTest } from '../stats.ts';
import { formatP } from '../words.ts';

const pts = (x: number): string => `${x >= 0 ? '+' : '−'}${Math.abs(100 * x).toFixed(2)}`;
const fmtP = (p: number): string => formatP(p);

export type PairedMeasure = PairedComparison['measure'];

/** The two losses of a test: their ids, and the labels the verdict names. */
type Side = Pick<LossSpec, 'id' | 'label'>;

export interface PairedTest {
  a: Side;
  b: Side;
  measure: PairedMeasure;
  t: PairedTTest;
}

/** The measure in the verdicts' words. */
export const measureWords = (m: PairedMeasure): string => (m === 'mapAtR' ? 'MAP@R' : m === 'bestAccuracy' ? 'best-threshold accuracy' : 'accuracy');

/** The tests of each measure adjusted together (Holm), each worded as a comparison. */
export function holmFamilies(tests: readonly PairedTest[]): PairedComparison[] {
  const adjusted = new Map<PairedTest, number>();
  for (const measure of new Set(tests.map((x) => x.measure))) {
    // a single pair of runs is no test: it does not enter the family
    const family = tests.filter((x) => x.measure === measure && x.t.degenerate !== 'one-pair');
    holmAdjust(family.map((x) => x.t.p)).forEach((p, i) => adjusted.set(family[i]!, p));
  }
  return tests.map((x) => {
    const family = tests.filter((y) => y.measure === x.measure && y.t.degenerate !== 'one-pair').length;
    return comparisonOf(x, adjusted.get(x) ?? x.t.p, family);
  });
}

/**
 * The comparisons of a results.json written before Holm's correction (no `pHolm`): the same
 * tests, rebuilt from their stored statistics, with each measure's family adjusted and the
 * verdicts worded as pairedComparisons words them now. Such a file's verdicts called a difference
 * significant on its raw p alone (with 5 losses, 10 tests a measure), while the report rebuilt
 * from it says only a Holm p below 0.05 is. Comparisons that all carry `pHolm` come back as they are.
 */
export function withHolm(losses: readonly Pick<LossSpec, 'id' | 'label'>[], stored: readonly PairedComparison[]): PairedComparison[] {
  if (stored.every((c) => typeof c.pHolm === 'number')) return [...stored];
  // NaN is stored as null
  const num = (v: unknown): number => (typeof v === 'number' ? v : NaN);
  const side = (id: string): Side => losses.find((l) => l.id === id) ?? { id, label: id };
  return holmFamilies(
    stored.map((c) => {
      const n = num(c.seeds);
      const t = { n, df: Math.max(0, n - 1), meanDiff: num(c.meanDiff), std: NaN, ci95: num(c.ci95), t: num(c.t), p: num(c.p) };
      // pairedTTest's degenerate cases, as they are stored: one seed (t 0, p 1); no spread (t 0, CI 0)
      const degenerate = n === 1 ? ('one-pair' as const) : t.t === 0 && t.ci95 === 0 ? ('zero-variance' as const) : undefined;
      return { a: side(c.a), b: side(c.b), measure: c.measure, t: degenerate ? { ...t, degenerate } : t };
    }),
  );
}

/** "p = 0.004" or, in a family of several tests, "p = 0.004, Holm-adjusted p = 0.012 over 3 tests". */
export function pWords(p: number, pHolm: number, tests: number): string {
  return tests > 1 ? `${fmtP(p)}, Holm-adjusted ${fmtP(pHolm)} over ${tests} tests` : fmtP(p);
}

function comparisonOf({ a, b, measure, t }: PairedTest, pHolm: number, tests: number): PairedComparison {
  const what = measureWords(measure);
  const seeds = `${t.n} seed${t.n === 1 ? '' : 's'}`;
  const [better, worse] = t.meanDiff >= 0 ? [a.label, b.label] : [b.label, a.label];
  const by = `${Math.abs(100 * t.meanDiff).toFixed(2)} points`;
  const ps = pWords(t.p, pHolm, tests);
  let verdict: string;
  if (t.degenerate === 'one-pair') {
    verdict = `one seed only, no test: ${a.label} − ${b.label} = ${pts(t.meanDiff)} points of ${what}`;
  } else if (t.degenerate === 'zero-variance') {
    verdict =
      t.meanDiff === 0
        ? `identical ${what} on every seed (${seeds})`
        : `${better} > ${worse} in ${what} by ${by} on every seed, the same difference each time (${seeds})`;
  } else if (pHolm < 0.05) {
    verdict = `${better} > ${worse} in ${what} by ${by} ± ${(100 * t.ci95).toFixed(2)} (${ps}, ${seeds})`;
  } else {
    const raw = t.p < 0.05 ? ' after correcting for multiple tests' : '';
    verdict = `no significant difference in ${what}${raw}: ${a.label} − ${b.label} = ${pts(t.meanDiff)} ± ${(100 * t.ci95).toFixed(2)} points (${ps}, ${seeds})`;
  }
  return { a: a.id, b: b.id, measure, meanDiff: t.meanDiff, ci95: t.ci95, t: t.t, p: t.p, pHolm, tests, seeds: t.n, verdict };
}
