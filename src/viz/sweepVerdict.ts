/**
 * The sweep's verdict in plain words, from its results alone (no Node imports: `serve`'s page
 * renders it too): the ranking by test MAP@R tuned and at the defaults, whether tuning changed
 * it, the seed's question (Yukawa against contrastive) when both ran, then the differences that
 * hold after Holm's correction as a compact list. The paired-test section of the report keeps
 * every test; this says what matters once.
 */
import type { PairedComparison } from '../experiments/results.ts';
import { formatP } from '../words.ts';

/** What the verdict reads of a sweep's results (SweepResults has it all). */
export interface VerdictInput {
  losses: { id: string; label: string; loss: string; fixed: Record<string, number | string>; test: { mapAtR: { mean: number } }; untuned: { test: { mapAtR: { mean: number } } } }[];
  comparisons: { tuned: PairedComparison[]; untuned: PairedComparison[] };
  ranking: { tuned: string[]; untuned: string[] };
}

export interface SweepVerdict {
  /** a few sentences: the rankings, whether tuning changed them, Yukawa against contrastive */
  summary: string;
  /** e.g. "in 15 tests per measure, 5 seeds": said once for both lists */
  family: string;
  /** one line per significant MAP@R difference, tuned and at the defaults */
  tuned: string[];
  untuned: string[];
  /** false with one loss: no pair to test, so no list of differences (the summary says so) */
  compared: boolean;
}

const pct = (x: number): string => `${(100 * x).toFixed(2)}%`;
const significant = (c: PairedComparison): boolean => c.measure === 'mapAtR' && c.seeds > 1 && Number.isFinite(c.pHolm ?? c.p) && (c.pHolm ?? c.p) < 0.05;
/** Holm's p in a family of several tests, else the raw one; "p = n/a" where the file has none (NaN) */
const pOf = (c: PairedComparison): string => {
  const holm = (c.tests ?? 1) > 1 && c.pHolm !== undefined && c.pHolm !== null;
  const p = holm ? c.pHolm! : c.p;
  return Number.isFinite(p) ? formatP(p, holm ? 'Holm p' : 'p') : 'p = n/a';
};

/** "nt-xent > contrastive: +6.61 ± 1.63 points MAP@R, Holm p = 0.005" */
function differenceLine(c: PairedComparison, label: (id: string) => string): string {
  const [better, worse] = c.meanDiff >= 0 ? [c.a, c.b] : [c.b, c.a];
  const ci = Number.isFinite(c.ci95) && c.ci95 > 0 ? ` ± ${(100 * c.ci95).toFixed(2)}` : '';
  const p = pOf(c);
  return `${label(better)} > ${label(worse)}: +${Math.abs(100 * c.meanDiff).toFixed(2)}${ci} points MAP@R, ${p}`;
}

/** "in 15 tests per measure, 5 seeds" (ranges where the lists differ). */
function familyWords(list: readonly PairedComparison[]): string {
  const span = (v: number[], unit: string): string => {
    const lo = Math.min(...v);
    const hi = Math.max(...v);
    return `${lo === hi ? lo : `${lo}-${hi}`} ${unit}${hi === 1 ? '' : 's'}`;
  };
  // a pair with one seed is no test (its p is n/a): not counted as one
  const all = list.filter((c) => c.measure === 'mapAtR');
  const m = all.filter((c) => c.seeds > 1);
  if (m.length === 0) return all.length > 0 ? 'no paired tests: one seed' : 'no paired tests';
  return `${span(m.map((c) => c.tests ?? 1), 'test')} of MAP@R, ${span(m.map((c) => c.seeds), 'seed')}`;
}

/** The seed's pair without a miner: the first plain contrastive and Yukawa entries. */
function seedPair(r: VerdictInput): { c: VerdictInput['losses'][number]; y: VerdictInput['losses'][number] } | undefined {
  const plain = (name: string): VerdictInput['losses'][number] | undefined => r.losses.find((l) => l.loss === name && l.fixed['miner'] === undefined);
  const c = plain('contrastive');
  const y = plain('yukawa');
  return c && y ? { c, y } : undefined;
}

function yukawaWords(r: VerdictInput, label: (id: string) => string): string | undefined {
  const pair = seedPair(r);
  if (!pair) return undefined;
  const { c, y } = pair;
  const one = (list: readonly PairedComparison[], yv: number, cv: number, where: string): string => {
    const t = list.find((x) => x.measure === 'mapAtR' && ((x.a === y.id && x.b === c.id) || (x.a === c.id && x.b === y.id)));
    const values = `${pct(yv)} against ${pct(cv)} ${where}`;
    if (!t) return `${values} (not tested)`;
    if (t.seeds < 2) return `${values} (one seed: no test)`;
    const p = pOf(t);
    if (!significant(t)) return `${values}, no significant difference (${p})`;
    const yAhead = (t.a === y.id ? t.meanDiff : -t.meanDiff) > 0;
    return `${values}, ${yAhead ? label(y.id) : label(c.id)} ahead by ${Math.abs(100 * t.meanDiff).toFixed(2)} points (${p})`;
  };
  const name = label(y.id);
  return (
    `${name.charAt(0).toUpperCase()}${name.slice(1)} against ${label(c.id)}, test MAP@R: ${one(r.comparisons.tuned, y.test.mapAtR.mean, c.test.mapAtR.mean, 'tuned')}; ` +
    `${one(r.comparisons.untuned, y.untuned.test.mapAtR.mean, c.untuned.test.mapAtR.mean, 'at the defaults')}.`
  );
}

export function sweepVerdict(r: VerdictInput): SweepVerdict {
  const labels = new Map(r.losses.map((l) => [l.id, l.label]));
  const label = (id: string): string => labels.get(id) ?? id;
  const order = (ids: readonly string[]): string => ids.map(label).join(' > ');
  const { tuned, untuned } = r.ranking;
  const tunedSig = r.comparisons.tuned.filter(significant).map((c) => differenceLine(c, label));
  const untunedSig = r.comparisons.untuned.filter(significant).map((c) => differenceLine(c, label));
  const family = familyWords([...r.comparisons.tuned, ...r.comparisons.untuned]);
  if (tuned.length < 2) return { summary: 'One loss only: nothing to rank or compare.', family, tuned: tunedSig, untuned: untunedSig, compared: false };
  const words: string[] = [];
  if (tuned.join() === untuned.join()) words.push(`Ranking by test MAP@R, tuned and at the defaults alike: ${order(tuned)}. Tuning did not change it.`);
  else words.push(`Ranking by test MAP@R, tuned: ${order(tuned)}; at the defaults: ${order(untuned)}. Tuning changed it.`);
  const none = tunedSig.length === 0 && untunedSig.length === 0;
  const tested = [...r.comparisons.tuned, ...r.comparisons.untuned].some((c) => c.measure === 'mapAtR' && c.seeds > 1);
  words.push(
    !tested && family === 'no paired tests: one seed'
      ? 'With one seed per loss no difference can be tested: the order may be chance.'
      : none
        ? "No difference in MAP@R is significant after Holm's correction: the order may be chance."
        : "Only the differences listed below are significant after Holm's correction; the rest of the order may be chance.",
  );
  const y = yukawaWords(r, label);
  if (y) words.push(y);
  return { summary: words.join(' '), family, tuned: tunedSig, untuned: untunedSig, compared: true };
}

/** The heading of the list of significant differences. */
export const differencesHeading = (v: SweepVerdict): string => `Significant differences in MAP@R after Holm's correction (${v.family}):`;

/**
 * The heading and the list under it, as the terminal, the report and serve show them: one line
 * per significant difference, tuned first, or one "none" line. Undefined with one loss: nothing
 * was compared, and the summary has said so.
 */
export function verdictDifferences(v: SweepVerdict): { heading: string; items: string[] } | undefined {
  if (!v.compared) return undefined;
  const items = [...v.tuned.map((x) => `tuned: ${x}`), ...v.untuned.map((x) => `at the defaults: ${x}`)];
  return { heading: differencesHeading(v), items: items.length ? items : ['none, tuned or at the defaults'] };
}

/** The verdict in one paragraph: results.json's `ranking.verdict`. */
export function verdictText(v: SweepVerdict): string {
  if (!v.compared) return v.summary;
  const list = (xs: string[]): string => (xs.length ? xs.join('; ') : 'none');
  return `${v.summary} ${differencesHeading(v)} tuned: ${list(v.tuned)}; at the defaults: ${list(v.untuned)}.`;
}
