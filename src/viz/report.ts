/**
 * The comparison report: `report.html` (one self-contained file: every picture inlined as a
 * data-URI SVG, inline CSS, no scripts, no fonts or anything else fetched), `report.md`
 * (GitHub-flavoured, pictures in `figures/`), and `figures/*.svg|png`. Built only from a
 * `CompareResults` (results.json), plus the test images for the t-SNE thumbnails and the test
 * labels for the polar plot's classes, so `siamese report` can rebuild it without retraining.
 */
import { randomBytes } from 'node:crypto';
import { statSync } from 'node:fs';
import { mkdir, readdir, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { classCount } from '../data/dataset.ts';
import type { Dataset } from '../data/dataset.ts';
import { loadMnist } from '../data/mnist.ts';
import { loadDataset } from '../data/registry.ts';
import { makePairs, slicePairs } from '../data/pairs.ts';
import { parseSplit, resolveSplit, splitLabels, subsetLabels } from '../data/split.ts';
import { DataError } from '../errors.ts';
import { type AccuracyAt, lossAccuracyAt } from '../eval/accuracyAt.ts';
import type { CompareResults, LossSummary, PairedComparison, Stat } from '../experiments/results.ts';
import { fsErrorText, writeFileAtomic } from '../io/atomic.ts';
import { mkdirFailure } from '../io/lock.ts';
import { describeLosses } from '../losses/registry.ts';
import { count } from '../words.ts';
import { Rng } from '../rng.ts';
import {
  accuracyChart,
  classWord,
  displaySeed,
  distanceHistogramChart,
  learningCurveChart,
  lossLabels,
  lossShapeChart,
  type PairClasses,
  polarChart,
  REFERENCE_ACCURACY,
  referenceKey,
  tsneChart,
} from './charts.ts';
import { renderVegaLite, svgToPng, type VegaLiteSpec } from './render.ts';
import { type Bounds, boundedWithCi, CLIPPED_CI_NOTE, FRACTION, fractionWithCi, isClipped, NON_NEGATIVE } from './ciText.ts';

/** The test split as the report needs it: raw images (thumbnails) and labels (polar classes). */
export interface TestSplit {
  images: Uint8Array;
  labels: Uint8Array;
  n: number;
  width: number;
  height: number;
}

export interface ReportOptions {
  /**
   * The test split the results were computed on. Default: MNIST's, loaded with `loadMnist()`
   * when `results.dataset.name` is "mnist"; `null`: go without (no thumbnails, no polar plot).
   */
  testSplit?: TestSplit | null;
  /** zoom of figures/*.png relative to the SVGs (default 2) */
  pngScale?: number;
}

export interface ReportFiles {
  /** path of report.html */
  html: string;
  /** path of report.md */
  md: string;
  /** paths of the figure files written (SVG and PNG) */
  pictures: string[];
  /** what the report had to leave out, and why */
  notes: string[];
}

/** The seed's distance figures (its README): positive pairs with D < 0.4 only, all negative pairs. */
const SEED_DISTANCES: Record<'contrastive' | 'yukawa', { pos: [number, number]; neg: [number, number] }> = {
  contrastive: { pos: [0.03, 0.046], neg: [1.171, 0.199] },
  yukawa: { pos: [0.052, 0.058], neg: [0.795, 0.104] },
};

/** The losses' own default parameters, under which the seed's figures were obtained. */
const REFERENCE_PARAMS: Record<'contrastive' | 'yukawa', Record<string, number>> = {
  contrastive: { margin: 1 },
  yukawa: { kappa: 10, power: 3 },
};

// ---------------------------------------------------------------------------------------------
// formatting

const isNum = (x: unknown): x is number => typeof x === 'number' && Number.isFinite(x);

function fixed(x: unknown, digits: number): string {
  return isNum(x) ? x.toFixed(digits) : '—';
}

/** Records whether a table showed some interval clipped to its bounds (then a note says so). */
interface Clips {
  clipped: boolean;
}

/**
 * "97.34% ± 0.12" (a fraction shown in percent; CI left out when undefined), or "78.49% (42.55 to
 * 100)" where mean ± half-width would pass 0% or 100% (ciText.ts).
 */
function pctStat(s: Stat | undefined, clips?: Clips): string {
  if (!s || !isNum(s.mean)) return '—';
  if (clips && isClipped(s.mean, s.ci95, FRACTION)) clips.clipped = true;
  return fractionWithCi(s.mean, isNum(s.ci95) ? s.ci95 : undefined);
}

/** mean ± CI in `digits`, clipped to `bounds` where it would pass them (a fraction's [0, 1], a distance's 0) */
function numStat(s: Stat | undefined, digits: number, bounds: Bounds, clips?: Clips): string {
  if (!s || !isNum(s.mean)) return '—';
  if (clips && isClipped(s.mean, s.ci95, bounds)) clips.clipped = true;
  return boundedWithCi(s.mean, isNum(s.ci95) ? s.ci95 : undefined, { bounds, digits });
}

function perSeed(s: Stat | undefined, f: (x: number) => string): string {
  if (!s || s.values.length === 0) return '—';
  return s.values.map((v) => (isNum(v) ? f(v) : '—')).join(', ');
}

/** "mean D 0.123 ± 0.004, std 0.098": distance mean (CI over seeds) and the mean within-run std. */
function distCell(mean: Stat, std: Stat, clips?: Clips): string {
  if (!isNum(mean.mean)) return '—';
  return `${numStat(mean, 3, NON_NEGATIVE, clips)} (std ${fixed(std.mean, 3)})`;
}

/** "+0.71" / "-0.20", never "-0.00". */
function signed(x: number, digits: number): string {
  if (!isNum(x)) return '—';
  const t = Math.abs(x).toFixed(digits);
  return `${x < 0 && Number(t) !== 0 ? '-' : '+'}${t}`;
}

function pValue(p: number | undefined): string {
  if (!isNum(p)) return '—';
  return p < 0.001 ? '< 0.001' : p.toFixed(3);
}

/** "p = 0.012" or "p < 0.001" (never "p = < 0.001"). */
function pIs(name: string, p: number | undefined): string {
  const v = pValue(p);
  return v.startsWith('<') ? `${name} ${v}` : `${name} = ${v}`;
}

function duration(seconds: number): string {
  if (!isNum(seconds)) return '—';
  const s = Math.round(seconds);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  return h > 0 ? `${h} h ${m} min ${s % 60} s` : m > 0 ? `${m} min ${s % 60} s` : `${s} s`;
}

export function escapeHtml(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&#39;');
}

/**
 * Text safe inside a GitHub-flavoured markdown paragraph or table cell, and still readable as
 * plain text: only what markdown would take for markup is escaped. "<" becomes "&lt;" only where
 * it could open an HTML tag, comment or autolink, "&" only where it would form a character
 * reference, ">" only at the start (a block quote); "p < 0.001" stays as it is.
 */
export function escapeMd(s: string): string {
  return s
    .replace(/\r?\n/g, ' ')
    .replace(/&(?=#?[A-Za-z0-9]+;)/g, '&amp;')
    .replace(/<(?=[A-Za-z/!?])/g, '&lt;')
    .replace(/([\\`*_[\]|#~])/g, '\\$1')
    .replace(/^(\s*)>/, '$1\\>');
}

// ---------------------------------------------------------------------------------------------
// document model: a few block kinds, rendered to HTML and to markdown by the same code

type Block =
  | { kind: 'h'; level: 1 | 2 | 3; text: string }
  | { kind: 'p'; text: string; cls?: string }
  | { kind: 'list'; items: string[] }
  | { kind: 'table'; head: string[]; rows: (string[] | { section: string })[]; caption?: string }
  | { kind: 'figure'; name: string; title: string; caption: string; svg: string; width: number; height: number };

function svgSize(svg: string): { width: number; height: number } {
  const m = /<svg[^>]*\swidth="([\d.]+)"[^>]*\sheight="([\d.]+)"/.exec(svg);
  return m ? { width: Math.round(Number(m[1])), height: Math.round(Number(m[2])) } : { width: 800, height: 400 };
}

const CSS = `
:root { color-scheme: light; }
body { font-family: "DejaVu Sans", "Liberation Sans", Arial, Helvetica, sans-serif; color: #1b1b1b; background: #fff; margin: 0; line-height: 1.45; }
main { max-width: 1180px; margin: 0 auto; padding: 24px 28px 64px; }
h1 { font-size: 1.7em; margin: 0.2em 0 0.3em; }
h2 { font-size: 1.3em; margin-top: 1.8em; border-bottom: 1px solid #ddd; padding-bottom: 0.2em; }
h3 { font-size: 1.08em; margin-top: 1.4em; }
p.meta { color: #555; margin-top: 0; }
table { border-collapse: collapse; margin: 0.6em 0 1em; font-size: 0.9em; }
th, td { border: 1px solid #d6d6d6; padding: 4px 8px; text-align: left; vertical-align: top; }
th { background: #f3f4f6; }
tr.section td { background: #fafafa; font-weight: bold; }
td.num { font-variant-numeric: tabular-nums; white-space: nowrap; }
code { font-family: "DejaVu Sans Mono", "Liberation Mono", monospace; font-size: 0.92em; background: #f3f4f6; padding: 0 3px; border-radius: 3px; }
figure { margin: 1.2em 0 2em; }
figure img { display: block; max-width: 100%; height: auto; border: 1px solid #eee; }
figcaption { color: #444; font-size: 0.92em; margin-top: 0.4em; max-width: 900px; }
.note { color: #555; font-size: 0.92em; }
`;

/** Short numeric cells are kept on one line (and in tabular figures). */
function looksNumeric(s: string): boolean {
  return s.length <= 36 && /^[-+<>±]?\s?[\d.—]/.test(s);
}

function toHtml(title: string, blocks: Block[]): string {
  const out: string[] = [];
  for (const b of blocks) {
    switch (b.kind) {
      case 'h':
        out.push(`<h${b.level}>${escapeHtml(b.text)}</h${b.level}>`);
        break;
      case 'p':
        out.push(`<p${b.cls ? ` class="${b.cls}"` : ''}>${escapeHtml(b.text)}</p>`);
        break;
      case 'list':
        out.push(`<ul>\n${b.items.map((i) => `<li>${escapeHtml(i)}</li>`).join('\n')}\n</ul>`);
        break;
      case 'table': {
        const head = `<tr>${b.head.map((h) => `<th>${escapeHtml(h)}</th>`).join('')}</tr>`;
        const rows = b.rows.map((r) =>
          Array.isArray(r)
            ? `<tr>${r.map((c, i) => `<td${i > 0 && looksNumeric(c) ? ' class="num"' : ''}>${escapeHtml(c)}</td>`).join('')}</tr>`
            : `<tr class="section"><td colspan="${b.head.length}">${escapeHtml(r.section)}</td></tr>`,
        );
        const caption = b.caption ? `<caption class="note">${escapeHtml(b.caption)}</caption>` : '';
        out.push(`<table>${caption}\n<thead>${head}</thead>\n<tbody>\n${rows.join('\n')}\n</tbody></table>`);
        break;
      }
      case 'figure': {
        const uri = `data:image/svg+xml;base64,${Buffer.from(b.svg, 'utf8').toString('base64')}`;
        out.push(
          `<figure id="fig-${escapeHtml(b.name)}"><img src="${uri}" width="${b.width}" height="${b.height}" alt="${escapeHtml(b.title)}">` +
            `<figcaption>${escapeHtml(b.caption)}</figcaption></figure>`,
        );
        break;
      }
    }
  }
  return [
    '<!doctype html>',
    '<html lang="en">',
    '<head>',
    '<meta charset="utf-8">',
    // nothing may be fetched: every picture is a data: URI, the style is inline, there are no scripts
    `<meta http-equiv="Content-Security-Policy" content="default-src 'none'; img-src data:; style-src 'unsafe-inline'">`,
    '<meta name="viewport" content="width=device-width, initial-scale=1">',
    `<title>${escapeHtml(title)}</title>`,
    `<style>${CSS}</style>`,
    '</head>',
    '<body><main>',
    ...out,
    '</main></body>',
    '</html>',
    '',
  ].join('\n');
}

function toMarkdown(blocks: Block[]): string {
  const out: string[] = [];
  for (const b of blocks) {
    switch (b.kind) {
      case 'h':
        out.push(`${'#'.repeat(b.level)} ${escapeMd(b.text)}`);
        break;
      case 'p':
        out.push(b.cls === 'note' ? `_${escapeMd(b.text)}_` : escapeMd(b.text));
        break;
      case 'list':
        out.push(b.items.map((i) => `- ${escapeMd(i)}`).join('\n'));
        break;
      case 'table': {
        const lines = [`| ${b.head.map(escapeMd).join(' | ')} |`, `|${b.head.map(() => ' --- ').join('|')}|`];
        for (const r of b.rows) {
          lines.push(Array.isArray(r) ? `| ${r.map(escapeMd).join(' | ')} |` : `| **${escapeMd(r.section)}** |${' |'.repeat(b.head.length - 1)}`);
        }
        if (b.caption) out.push(`_${escapeMd(b.caption)}_`);
        out.push(lines.join('\n'));
        break;
      }
      case 'figure':
        out.push(`![${escapeMd(b.title)}](figures/${b.name}.png)\n\n${escapeMd(b.caption)} ([SVG](figures/${b.name}.svg))`);
        break;
    }
  }
  return out.join('\n\n') + '\n';
}

// ---------------------------------------------------------------------------------------------
// test split and polar classes

/**
 * The class (label of the first image) of every positive and every negative test pair, in
 * test-pair order, rebuilt from the pair recipe exactly as training draws it: generator
 * `Rng(pairSeed)`, whose first fork made the train pairs and second fork the test pairs, then
 * the first `testPairs` pairs when that is set. `run.distances.pos/neg` hold the distances of
 * these pairs in the same order (all of them, or the first N as a sample).
 */
export function testPairClasses(labels: Uint8Array, pairSeed: number, testPairs: number, split = 'pairs'): PairClasses {
  // under a class split the runs drew their test pairs from the test classes alone, renumbered
  // 0..k-1 (data/split.ts): rebuild them from those, and give back the data set's class ids
  const s = resolveSplit(parseSplit(split), classCount(labels));
  const seen = s.kind === 'pairs' ? labels : subsetLabels(labels, s.testClasses).labels;
  const ids = s.kind === 'pairs' ? undefined : s.testClasses;
  const rng = new Rng(pairSeed);
  rng.fork(); // the train pairs' generator
  const all = makePairs(seen, classCount(seen), rng.fork());
  const pairs = testPairs > 0 ? slicePairs(all, testPairs) : all;
  const pos: number[] = [];
  const neg: number[] = [];
  for (let i = 0; i < pairs.length; i++) {
    const c = seen[pairs.a[i]!]!;
    (pairs.y[i] === 1 ? pos : neg).push(ids ? ids[c]! : c);
  }
  return { pos, neg };
}

/**
 * The test split of the comparison's own data set (spec.config.data; MNIST when unset), for the
 * thumbnails and the polar plot; null with a note when it cannot be loaded or is not the one
 * results.json describes.
 */
async function defaultTestSplit(results: CompareResults, notes: string[]): Promise<TestSplit | null> {
  const spec = results.spec.config.data;
  const name = results.dataset.name;
  if (spec === undefined && name.toLowerCase() !== 'mnist') {
    notes.push(`The test images of data set "${name}" were not given: no thumbnails on the t-SNE panels and no polar plot.`);
    return null;
  }
  let ds: Dataset;
  try {
    ds = spec === undefined ? await loadMnist() : await loadDataset(spec);
  } catch (e) {
    notes.push(`The test images of data set "${name}" could not be loaded (${(e as Error).message.split('\n')[0]}): no thumbnails and no polar plot.`);
    return null;
  }
  // results.json counts the test images of its runs' test classes (files written before that
  // counted the whole test split)
  const seenImages = splitLabels(ds, results.spec.config.split ?? 'pairs').test.length;
  if (ds.name !== name || (isNum(results.dataset.testImages) && results.dataset.testImages !== seenImages && results.dataset.testImages !== ds.test.n)) {
    notes.push(`results.json speaks of ${count(results.dataset.testImages, 'test image')} of ${name}, the data found has ${count(ds.test.n, 'test image')} of ${ds.name}: no thumbnails and no polar plot.`);
    return null;
  }
  return ds.test;
}

// ---------------------------------------------------------------------------------------------
// content

function formulaOf(loss: string): string {
  return describeLosses().find((d) => d.name === loss)?.description ?? '(formula not in the registry)';
}

function paramsText(params: Record<string, unknown>): string {
  const parts = Object.entries(params)
    .filter(([, v]) => v !== undefined && v !== null)
    .map(([k, v]) => `${k} = ${String(v)}`);
  return parts.length ? parts.join(', ') : 'defaults';
}

function whatWasRun(results: CompareResults): Block[] {
  const c = results.spec.config;
  const m = results.machine;
  const d = results.dataset;
  const labels = lossLabels(results);
  const blocks: Block[] = [
    { kind: 'h', level: 2, text: 'What was run' },
    {
      kind: 'table',
      head: ['loss', 'name', 'parameters', 'miner', 'formula (Y = 1: same class; D: embedding distance)'],
      rows: results.spec.losses.map((l) => [labels.get(l.id) ?? l.id, l.loss, paramsText(l.params), l.miner ?? 'none', formulaOf(l.loss)]),
    },
    {
      kind: 'list',
      items: [
        `Seeds: ${results.spec.seeds.join(', ')} (${results.spec.seeds.length}); every loss starts from the same initial weights per seed.`,
        `Training: ${count(c.epochs, 'epoch')}, batch ${c.batchSize}, optimizer ${c.optimizer}${c.learningRate !== undefined ? `, learning rate ${c.learningRate}` : ' (its default learning rate)'}, dropout ${c.dropout}.`,
        `Network: ${c.base} base network, ${c.embeddingDim}-d embedding; decision threshold D < ${c.threshold} means "same".`,
        `Data: ${d.name} (${d.source}); ${count(d.trainPairs, 'train pair')}, ${count(d.testPairs, 'test pair')}, ${count(d.testImages, 'test image')}; pair seed ${c.pairSeed}.`,
        m.queue
          ? `Machine: the jobs ran on ${m.workers} worker${m.workers === 1 ? '' : 's'} of a Redis queue; coordinated on ${m.cpu}, ${count(m.cores, 'core')}, Node ${m.node}.`
          : `Machine: ${m.cpu}, ${count(m.cores, 'core')}, Node ${m.node}, ${m.workers} worker${m.workers === 1 ? '' : 's'}.`,
        `Date: ${m.date}; results written ${results.createdAt} by ${results.tool} ${results.version}; wall time ${duration(m.wallSeconds)}.`,
      ],
    },
  ];
  return blocks;
}

function resultsTable(results: CompareResults): Block[] {
  const labels = lossLabels(results);
  const sums = results.spec.losses.map((l) => results.summary.find((s) => s.lossId === l.id)).filter((s): s is LossSummary => !!s);
  const t = results.spec.config.threshold;
  const row = (name: string, f: (s: LossSummary) => string): string[] => [name, ...sums.map(f)];
  // a batch loss's accuracy is its best threshold's (no absolute distance scale): never in the D < t row
  const atBest = (s: LossSummary): boolean => lossAccuracyAt(results, s) === 'best';
  const mixed = sums.some(atBest);
  const fixedOnly = (f: (s: LossSummary) => string) => (s: LossSummary): string => (atBest(s) ? 'n/a: no distance scale, see best threshold' : f(s));
  const clips: Clips = { clipped: false };
  const rows: (string[] | { section: string })[] = [
    { section: 'Test pair accuracy (mean ± 95% CI over seeds)' },
    row(`accuracy at D < ${t}`, fixedOnly((s) => pctStat(s.accuracy, clips))),
    // (the label as before when every loss has a distance scale: committed reports rebuild as they were)
    row(mixed ? `accuracy at D < ${t}, per seed (%)` : 'accuracy per seed (%)', fixedOnly((s) => perSeed(s.accuracy, (v) => (100 * v).toFixed(2)))),
    row(`best-threshold accuracy (in-sample, optimistic${mixed ? '; every loss alike' : ''})`, (s) => pctStat(s.bestAccuracy, clips)),
    row('best threshold D', (s) => numStat(s.bestThreshold, 3, NON_NEGATIVE, clips)),
    row('ROC AUC', (s) => numStat(s.auc, 4, FRACTION, clips)),
    row('equal error rate', (s) => pctStat(s.eer, clips)),
    { section: 'Test pair distances, all pairs (unfiltered): mean D ± 95% CI (std of D)' },
    row('positive (same-class) pairs', (s) => distCell(s.posMean, s.posStd, clips)),
    row('negative (different-class) pairs', (s) => distCell(s.negMean, s.negStd, clips)),
    { section: "The seed's filtered view: positive pairs with D < 0.4 only" },
    row('positive pairs, D < 0.4 only', (s) => distCell(s.posBelow04Mean, s.posBelow04Std, clips)),
  ];
  if (sums.some((s) => s.mapAtR || s.precisionAt1)) {
    rows.push(
      { section: 'Retrieval on the test images (mean ± 95% CI)' },
      row('precision@1', (s) => pctStat(s.precisionAt1, clips)),
      row('R-precision', (s) => pctStat(s.rPrecision, clips)),
      row('MAP@R', (s) => pctStat(s.mapAtR, clips)),
      row('kNN accuracy', (s) => pctStat(s.knnAccuracy, clips)),
    );
  }
  return [
    { kind: 'h', level: 2, text: 'Results' },
    {
      kind: 'table',
      head: ['measure', ...sums.map((s) => `${labels.get(s.lossId) ?? s.lossId} (${s.seeds} seed${s.seeds === 1 ? '' : 's'})`)],
      rows,
    },
    {
      kind: 'p',
      cls: 'note',
      text:
        `CI: 95% confidence interval of the mean over seeds (t distribution).${clips.clipped ? ` ${CLIPPED_CI_NOTE}` : ''} Distance std: the standard deviation of D within a run, averaged over seeds. ` +
        'The seed reported positive-pair distances over pairs with D < 0.4 only; the unfiltered figures include every positive pair.' +
        (mixed
          ? ` ${sums.filter(atBest).map((s) => labels.get(s.lossId) ?? s.lossId).join(', ')}: no absolute distance scale (L2-normalised embeddings, a batch loss), so a fixed threshold means nothing; ` +
            'their pair accuracy is at the best threshold only, and the best-threshold row sets every loss side by side.'
          : ''),
    },
  ];
}

function comparisonBlocks(results: CompareResults): Block[] {
  const labels = lossLabels(results);
  const name = (id: string): string => labels.get(id) ?? id;
  const measureName = (m: PairedComparison['measure']): string =>
    m === 'bestAccuracy' || (m === 'accuracy' && allBest)
      ? 'best-threshold test pair accuracy'
      : m === 'accuracy'
        ? `test pair accuracy${mixed ? ` at D < ${results.spec.config.threshold}` : ''}`
        : 'MAP@R';
  const at = new Map<string, AccuracyAt>(results.summary.map((s) => [s.lossId, lossAccuracyAt(results, s)]));
  const mixed = new Set(at.values()).size > 1;
  // batch losses only: an `accuracy` test (compare wrote those before it named them) is of best-threshold accuracies
  const allBest = at.size > 0 && [...at.values()].every((x) => x === 'best');
  // a file written before accuracy tests kept to one convention may pair two: say so at the verdict
  const unlike = (c: PairedComparison): string =>
    c.measure === 'accuracy' && at.has(c.a) && at.has(c.b) && at.get(c.a) !== at.get(c.b)
      ? ` (not like for like: ${name(at.get(c.a) === 'best' ? c.a : c.b)}'s accuracy is at its best threshold, ${name(at.get(c.a) === 'best' ? c.b : c.a)}'s at D < ${results.spec.config.threshold})`
      : '';
  const blocks: Block[] = [{ kind: 'h', level: 2, text: 'Paired comparisons' }];
  if (results.comparisons.length === 0) {
    blocks.push({ kind: 'p', text: 'No paired comparisons (they need at least two losses run on the same seeds).' });
    return blocks;
  }
  blocks.push({
    kind: 'list',
    items: results.comparisons.map((c) => {
      const diff = signed(100 * c.meanDiff, 2);
      return (
        `${name(c.a)} minus ${name(c.b)}, ${measureName(c.measure)}: ${diff} percentage points on average over ${c.seeds} paired seeds ` +
        `(95% CI ± ${fixed(isNum(c.ci95) ? 100 * c.ci95 : NaN, 2)}; paired t = ${fixed(c.t, 2)}, ${pIs('p', c.p)}` +
        `${c.pHolm !== undefined && (c.tests ?? 0) > 1 ? `; ${pIs('Holm-adjusted p', c.pHolm)} over ${c.tests} tests of this measure` : ''}). Verdict: ${c.verdict}${unlike(c)}.`
      );
    }),
  });
  blocks.push({
    kind: 'p',
    cls: 'note',
    text:
      'p is the two-sided paired t-test of each pair alone. The tests of one measure are run together, so their p-values ' +
      'also get Holm\'s correction (Holm p); a difference is called significant when its Holm p is below 0.05.' +
      (mixed
        ? ` Test pair accuracy at D < ${results.spec.config.threshold} is tested only between two losses with a distance scale; the best-threshold accuracy between every two, the batch losses included.`
        : ''),
  });
  blocks.push({
    kind: 'table',
    head: ['a', 'b', 'measure', 'mean a − b (pp)', '95% CI (pp)', 't', 'p', 'Holm p', 'seeds', 'verdict'],
    rows: results.comparisons.map((c) => [
      name(c.a),
      name(c.b),
      measureName(c.measure),
      signed(100 * c.meanDiff, 2),
      isNum(c.ci95) ? `± ${(100 * c.ci95).toFixed(2)}` : '—',
      fixed(c.t, 2),
      pValue(c.p),
      pValue(c.pHolm),
      String(c.seeds),
      `${c.verdict}${unlike(c)}`,
    ]),
  });
  return blocks;
}

function sameAsReference(key: 'contrastive' | 'yukawa', params: Record<string, unknown>): boolean {
  return Object.entries(REFERENCE_PARAMS[key]).every(([k, v]) => params[k] === undefined || Number(params[k]) === v);
}

function seedComparisonBlocks(results: CompareResults): Block[] {
  const labels = lossLabels(results);
  const epochs = results.spec.config.epochs;
  const blocks: Block[] = [
    { kind: 'h', level: 2, text: "Beside the seed's reported figures" },
    {
      kind: 'p',
      text:
        "The seed's README reports single informal runs after 20 epochs: contrastive 97.37% and Yukawa 98.10% test pair accuracy. " +
        'An independent re-implementation, 3 seeds each, gave contrastive 97.34% ± 0.12 and Yukawa 98.05% ± 0.05 after 20 epochs.',
    },
  ];
  const acc: string[][] = [];
  const dist: string[][] = [];
  const clips: Clips = { clipped: false };
  for (const l of results.spec.losses) {
    const key = l.miner ? undefined : referenceKey(l.loss);
    const s = results.summary.find((x) => x.lossId === l.id);
    if (!key || !s) continue;
    const ref = REFERENCE_ACCURACY[key];
    const label = labels.get(l.id) ?? l.id;
    const caveats: string[] = [];
    if (epochs !== 20) caveats.push(`this study ran ${count(epochs, 'epoch')}, the references 20`);
    // the references trained and tested the MLP on every MNIST digit, with every train pair
    const cfg = results.spec.config;
    if (results.dataset.name.toLowerCase() !== 'mnist') caveats.push(`this study's data set is ${results.dataset.name}, the references' MNIST`);
    if ((cfg.split ?? 'pairs') !== 'pairs') caveats.push(`this study tests on classes it never trained on (--split ${cfg.split}), the references on the classes they trained on`);
    if (cfg.trainPairs > 0) caveats.push(`this study trained on the first ${cfg.trainPairs} train pairs, the references on all`);
    if (cfg.base !== undefined && cfg.base !== 'mlp') caveats.push(`this study's base network is ${cfg.base}, the references' the MLP`);
    if (!sameAsReference(key, l.params)) caveats.push('parameters differ from the seed\'s');
    // the references trained as the seed did: batch 128, RMSprop at its default rate, 128-d, dropout 0.1
    if (cfg.batchSize !== undefined && cfg.batchSize !== 128) caveats.push(`this study's batch is ${cfg.batchSize}, the references' 128`);
    if (cfg.optimizer !== undefined && cfg.optimizer.toLowerCase() !== 'rmsprop') caveats.push(`this study's optimizer is ${cfg.optimizer}, the references' RMSprop`);
    else if (cfg.learningRate !== undefined && cfg.learningRate !== 0.001) caveats.push(`this study's learning rate is ${cfg.learningRate}, the references' 0.001`);
    if (cfg.embeddingDim !== undefined && cfg.embeddingDim !== 128) caveats.push(`this study's embedding has ${cfg.embeddingDim} dimensions, the references' 128`);
    if (cfg.dropout !== undefined && cfg.dropout !== 0.1) caveats.push(`this study's dropout is ${cfg.dropout}, the references' 0.1`);
    // the references' accuracy is at D < 0.5; this study's at its own --threshold
    if (cfg.threshold !== 0.5) caveats.push(`this study's accuracy is at D < ${cfg.threshold}, the references' at D < 0.5`);
    let diffText = '—';
    let verdict = '—';
    if (isNum(s.accuracy.mean)) {
      const diff = s.accuracy.mean - ref.independent.mean;
      const sd = isNum(s.accuracy.std) ? s.accuracy.std : 0;
      const noise = 2 * Math.sqrt(sd * sd + ref.independent.spread ** 2);
      diffText = `${signed(100 * diff, 2)} pp`;
      verdict = `${Math.abs(diff) <= noise ? 'within' : 'outside'} seed-to-seed noise`;
    }
    if (caveats.length) verdict += ` (not directly comparable: ${caveats.join('; ')})`;
    acc.push([
      label,
      `${(100 * ref.seed).toFixed(2)}%`,
      `${(100 * ref.independent.mean).toFixed(2)}% ± ${(100 * ref.independent.spread).toFixed(2)}`,
      `${pctStat(s.accuracy, clips)} (${count(s.seeds, 'seed')}, ${count(epochs, 'epoch')})`,
      diffText,
      verdict,
    ]);
    const sd = SEED_DISTANCES[key];
    dist.push([
      label,
      `${sd.pos[0].toFixed(3)} (std ${sd.pos[1].toFixed(3)})`,
      distCell(s.posBelow04Mean, s.posBelow04Std, clips),
      distCell(s.posMean, s.posStd, clips),
      `${sd.neg[0].toFixed(3)} (std ${sd.neg[1].toFixed(3)})`,
      distCell(s.negMean, s.negStd, clips),
    ]);
  }
  if (acc.length === 0) {
    blocks.push({ kind: 'p', text: "This study ran neither of the seed's losses (contrastive, Yukawa) without a miner, so there is nothing to set beside them." });
    return blocks;
  }
  blocks.push(
    {
      kind: 'table',
      head: ['loss', "seed's README (1 run)", 'independent (3 seeds)', 'this study (mean ± 95% CI)', 'this study − independent', 'verdict'],
      rows: acc,
      caption:
        results.spec.config.threshold === 0.5
          ? 'Test pair accuracy at D < 0.5'
          : `Test pair accuracy: the references at D < 0.5, this study at D < ${results.spec.config.threshold}`,
    },
    {
      kind: 'p',
      cls: 'note',
      text: `"Within seed-to-seed noise": the difference is at most twice the combined spread √(sd_ours² + sd_ref²), sd_ours being the standard deviation over this study's seeds.${clips.clipped ? ` ${CLIPPED_CI_NOTE}` : ''}`,
    },
    {
      kind: 'table',
      head: ['loss', "seed: positive, D < 0.4 only", 'ours: positive, D < 0.4 only', 'ours: positive, all (unfiltered)', 'seed: negative', 'ours: negative, all'],
      rows: dist,
      caption: 'Test pair distances: mean D (std of D)',
    },
  );
  return blocks;
}

/**
 * What the figures draw at most, so that the report's memory stays bounded whatever the size of
 * results.json (a Vega mark costs about a kilobyte: a t-SNE panel of 2,000 points with its
 * thumbnails took ~7 MB, 800 panels 5.7 GB). Past these, the figures show a part and say so.
 */
export const REPORT_LIMITS = {
  /** t-SNE panels drawn (the first ones: before training, then the losses in order) */
  tsnePanels: 9,
  /** points per t-SNE panel (an even subsample of the embedded test images) */
  tsnePoints: 2000,
  /** learning-curve epochs drawn over all losses (evenly spaced, first and last kept) */
  curvePoints: 1500,
  /** loss-shape samples per loss */
  shapePoints: 400,
  /** test pair distances per kind over all runs of the displayed seed (histograms, polar plot) */
  distances: 40000,
} as const;

/** `count` indices spread evenly over 0..n−1, the first and the last included. */
function evenPick(n: number, count: number): number[] {
  if (n <= count) return Array.from({ length: n }, (_, i) => i);
  if (count <= 1) return [n - 1];
  return Array.from({ length: count }, (_, i) => Math.round((i * (n - 1)) / (count - 1)));
}

/**
 * A view of `results` cut down to REPORT_LIMITS for the figures (tables and verdicts use the
 * full results), with a note for each cut.
 */
export function boundForFigures(results: CompareResults, notes: string[]): CompareResults {
  const L = REPORT_LIMITS;
  const r: CompareResults = { ...results };
  const t = results.tsne;
  if (t) {
    let panels = t.panels;
    if (panels.length > L.tsnePanels) {
      notes.push(`t-SNE: ${panels.length} panels in results.json, the first ${L.tsnePanels} are drawn.`);
      panels = panels.slice(0, L.tsnePanels);
    }
    let { indices, labels } = t;
    if (indices.length > L.tsnePoints) {
      const pick = evenPick(indices.length, L.tsnePoints);
      notes.push(`t-SNE: ${indices.length} points per panel in results.json, an even subsample of ${pick.length} is drawn.`);
      indices = pick.map((i) => t.indices[i]!);
      labels = pick.map((i) => t.labels[i]!);
      panels = panels.map((p) => ({ ...p, points: pick.flatMap((i) => [p.points[2 * i]!, p.points[2 * i + 1]!]) }));
    }
    if (panels !== t.panels || indices !== t.indices) r.tsne = { ...t, indices, labels, panels };
  }
  const epochs = results.summary.reduce((s, x) => s + (Array.isArray(x.curves) ? x.curves.length : 0), 0);
  if (epochs > L.curvePoints) {
    const per = Math.max(2, Math.floor(L.curvePoints / Math.max(1, results.summary.length)));
    notes.push(`Learning curves: ${epochs} loss-epoch points in results.json, at most ${per} evenly spaced epochs per loss are drawn.`);
    r.summary = results.summary.map((x) => ({ ...x, curves: evenPick(x.curves.length, per).map((i) => x.curves[i]!) }));
  }
  if (results.lossShapes.some((x) => x.d.length > L.shapePoints)) {
    notes.push(`Loss shapes: more than ${L.shapePoints} samples per loss in results.json, ${L.shapePoints} evenly spaced ones are drawn.`);
    r.lossShapes = results.lossShapes.map((x) => {
      if (x.d.length <= L.shapePoints) return x;
      const pick = evenPick(x.d.length, L.shapePoints);
      return { ...x, d: pick.map((i) => x.d[i]!), pos: pick.map((i) => x.pos[i]!), neg: pick.map((i) => x.neg[i]!) };
    });
  }
  // distances: each run keeps a prefix of its test pairs (compare's own sampling), which the
  // histograms and the polar plot both accept as a uniform sample
  const seed = displaySeed(results);
  const shown = results.runs.filter((x) => x.seed === seed);
  for (const kind of ['pos', 'neg'] as const) {
    const total = shown.reduce((s, x) => s + x.distances[kind].length, 0);
    if (total <= L.distances) continue;
    const per = Math.max(100, Math.floor(L.distances / Math.max(1, shown.length)));
    notes.push(
      `Distances: ${total} ${kind === 'pos' ? 'positive' : 'negative'} pair distances for seed ${seed} in results.json, ` +
        `the first ${per} test pairs of each run are drawn.`,
    );
    r.runs = (r.runs === results.runs ? results.runs.map((x) => ({ ...x })) : r.runs).map((x) =>
      x.seed === seed ? { ...x, distances: { ...x.distances, [kind]: x.distances[kind].slice(0, per) } } : x,
    );
  }
  return r;
}

interface FigureSpec {
  name: string;
  title: string;
  caption: string;
  spec: VegaLiteSpec;
}

function figureSpecs(results: CompareResults, split: TestSplit | null, notes: string[]): FigureSpec[] {
  const figs: FigureSpec[] = [];
  const seed = displaySeed(results);
  const w = classWord(results);
  const labels = lossLabels(results);
  const atBest = results.summary.filter((s) => lossAccuracyAt(results, s) === 'best').map((s) => labels.get(s.lossId) ?? s.lossId);
  if (atBest.length < results.summary.length) {
    figs.push({
      name: 'accuracy',
      title: 'Test pair accuracy per loss',
      caption:
        `Mean test pair accuracy (D < ${results.spec.config.threshold}) per loss with its 95% confidence interval over seeds; ticks are the individual seeds; black marks are the seed's README figure and the independent re-implementation's${results.spec.config.threshold === 0.5 ? '' : ', both at D < 0.5'}.` +
        (atBest.length ? ` Not drawn: ${atBest.join(', ')} (no absolute distance scale: see the best-threshold figure).` : ''),
      spec: accuracyChart(results),
    });
  }
  if (atBest.length) {
    figs.push({
      name: 'best-accuracy',
      title: 'Best-threshold test pair accuracy per loss',
      caption: 'Mean test pair accuracy at the best threshold on the test pairs (in-sample, optimistic) per loss, every loss alike, with its 95% confidence interval over seeds; ticks are the individual seeds.',
      spec: accuracyChart(results, { measure: 'bestAccuracy' }),
    });
  }
  if (results.summary.some((s) => s.mapAtR)) {
    figs.push({
      name: 'map-at-r',
      title: 'Retrieval MAP@R per loss',
      caption: 'Mean MAP@R on the test images (retrieval by embedding distance) with its 95% confidence interval over seeds; ticks are the individual seeds.',
      spec: accuracyChart(results, { measure: 'mapAtR' }),
    });
  }
  figs.push({
    name: 'learning-curves',
    title: 'Learning curves',
    caption:
      'Per epoch: training loss, running train accuracy (dropout on) and test pair accuracy, mean over seeds with a 95% confidence band.' +
      (atBest.length === results.summary.length
        ? " The test accuracy of every loss is at each epoch's best threshold (no absolute distance scale)."
        : atBest.length
          ? ` The test accuracy of ${atBest.join(', ')} is at each epoch's best threshold (no absolute distance scale), the others' at D < ${results.spec.config.threshold}.`
          : ''),
    spec: learningCurveChart(results),
  });
  // the dashed line (ring) is D = threshold: the decision of the losses with a distance scale only
  const fixedNames = results.summary.filter((s) => lossAccuracyAt(results, s) !== 'best').map((s) => labels.get(s.lossId) ?? s.lossId);
  const t = results.spec.config.threshold;
  const dashed = (correct: string): string => {
    if (atBest.length === 0) return ` ${correct}.`;
    const one = atBest.length === 1;
    const batch = `${atBest.join(', ')}: no absolute distance scale, so the dashed D = ${t} is not where ${one ? 'it calls' : 'they call'} a pair "same" (${one ? 'its' : 'their'} best threshold: see the table).`;
    return correct && fixedNames.length ? ` ${correct} for ${fixedNames.join(', ')}. ${batch}` : ` ${batch}`;
  };
  figs.push(
    {
      name: 'distances-positive',
      title: 'Positive pair distances',
      caption: `Distances of all positive (same-${w}) test pairs of seed ${seed}, one curve per loss.${dashed('Left of the dashed threshold is correct')}`,
      spec: distanceHistogramChart(results, 'pos', { seed }),
    },
    {
      name: 'distances-negative',
      title: 'Negative pair distances',
      caption: `Distances of all negative (different-${w}) test pairs of seed ${seed}, one curve per loss.${dashed('Right of the dashed threshold is correct')}`,
      spec: distanceHistogramChart(results, 'neg', { seed }),
    },
  );
  if (results.lossShapes.length > 0) {
    figs.push({
      name: 'loss-shapes',
      title: 'Loss shapes',
      caption: 'The per-pair loss each loss charges at distance D: L_pos for same-class pairs, L_neg for different-class pairs, D in [0, 1.5].',
      spec: lossShapeChart(results),
    });
  } else notes.push('results.json has no loss shapes: no loss-shape chart.');
  if (results.tsne) {
    const images = split ? { images: split.images, width: split.width, height: split.height } : undefined;
    if (split && results.tsne.indices.some((i) => i >= split.n)) {
      throw new DataError(`t-SNE indices go beyond the ${split.n} test images given: the results belong to another data set`);
    }
    figs.push({
      name: 'tsne',
      title: 't-SNE of the test embeddings',
      caption: `t-SNE of the test embeddings before training and after each loss (seed ${results.tsne.params.seed}), coloured by ${w}${images ? `, with ${w} thumbnails over a spread-out subset of points` : ''}.`,
      spec: tsneChart(results, { images }),
    });
    if (!images) notes.push('The t-SNE panels have no thumbnails: the test images were not available.');
  } else notes.push('results.json has no t-SNE: no t-SNE panels.');
  const polarBase = `The seed's polar plot for seed ${seed}: each ${w} has a sector (angle), each test pair is a dot at radius D`;
  const polarCaption =
    atBest.length === results.summary.length
      ? `${polarBase}.${dashed('')}`
      : `${polarBase}; positive pairs should sit inside the dashed threshold ring, negative pairs outside${atBest.length ? ` for ${fixedNames.join(', ')}.${dashed('')}` : '.'}`;
  const polar = polarClasses(results, split, seed, notes);
  if (polar) {
    figs.push({
      name: 'polar',
      title: 'Polar view of pair distances',
      caption: polarCaption,
      spec: polarChart(results, polar, { seed }),
    });
  }
  return figs;
}

/** The pair classes for the polar plot, or null (with a note) when they cannot be rebuilt. */
function polarClasses(results: CompareResults, split: TestSplit | null, seed: number, notes: string[]): PairClasses | null {
  if (!split) {
    notes.push('No polar plot: it needs the test labels to know each pair\'s class.');
    return null;
  }
  const cfg = results.spec.config;
  if (!Number.isInteger(cfg.pairSeed) || !Number.isInteger(cfg.testPairs)) {
    notes.push('No polar plot: results.json does not give the pair seed and test pair count needed to rebuild the test pairs.');
    return null;
  }
  let classes: PairClasses;
  try {
    classes = testPairClasses(split.labels, cfg.pairSeed, cfg.testPairs, cfg.split ?? 'pairs');
  } catch (e) {
    notes.push(`No polar plot: the test pairs could not be rebuilt (${(e as Error).message}).`);
    return null;
  }
  const runs = results.runs.filter((r) => r.seed === seed);
  // a run keeps all its test pair distances or the first ones in test-pair order (a sample)
  const bad = runs.find((r) => r.distances.pos.length > classes.pos.length || r.distances.neg.length > classes.neg.length);
  if (runs.length === 0 || bad) {
    notes.push(
      `No polar plot: results.json holds ${bad ? `${bad.distances.pos.length} positive / ${bad.distances.neg.length} negative` : 'no'} distances for seed ${seed}, ` +
        `more than the ${classes.pos.length} / ${classes.neg.length} test pairs rebuilt here, so the pairs' classes are unknown.`,
    );
    return null;
  }
  return classes;
}

// ---------------------------------------------------------------------------------------------

/** `.figures.<pid>.<hex>.tmp`: the folder a build writes its pictures into before the swap. */
const FIG_TMP = /^\.figures\.(\d+)\.[0-9a-f]+\.(tmp|old)$/;

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Picture folders left by builds that died before their swap (their process is gone). */
async function removeDeadTemporaries(outDir: string): Promise<void> {
  let entries: string[];
  try {
    entries = await readdir(outDir);
  } catch {
    return;
  }
  for (const f of entries) {
    const m = FIG_TMP.exec(f);
    if (m && (Number(m[1]) === process.pid ? false : !alive(Number(m[1])))) await rm(join(outDir, f), { recursive: true, force: true });
  }
}

/**
 * Put the freshly written picture folder in place of figures/: the old folder is renamed aside,
 * the new one renamed in, and the old one removed. Files in the old folder that are not pictures
 * (.svg, .png) are not the report's: they move into the new folder. figures/ is thus always
 * either the old complete set or the new one, never a half-written mix.
 */
async function swapFigures(tmp: string, figDir: string): Promise<void> {
  const old = `${tmp.replace(/\.tmp$/, '')}.old`;
  let hadOld = true;
  try {
    await rename(figDir, old);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    hadOld = false;
  }
  try {
    await rename(tmp, figDir);
  } catch (e) {
    if (hadOld) await rename(old, figDir).catch(() => undefined);
    throw e;
  }
  if (!hadOld) return;
  for (const f of await readdir(old)) {
    if (!/\.(svg|png)$/.test(f)) await rename(join(old, f), join(figDir, f)).catch(() => undefined);
  }
  await rm(old, { recursive: true, force: true });
}

/**
 * Build report.html, report.md and figures/ in `outDir` from `results`. Returns the paths
 * written and notes on anything left out. Throws DataError when the inputs do not fit.
 */
export async function buildReport(results: CompareResults, outDir: string, opts: ReportOptions = {}): Promise<ReportFiles> {
  // what the comparison itself left out or adjusted comes first
  const notes: string[] = [...(results.notes ?? [])];
  const split = opts.testSplit === undefined ? await defaultTestSplit(results, notes) : opts.testSplit;
  if (split && split.images.length !== split.n * split.width * split.height) {
    throw new DataError(`test split: ${split.images.length} image bytes for ${split.n} images of ${split.width}x${split.height}`);
  }
  const figDir = join(outDir, 'figures');
  // a file of that name would be renamed aside by the swap and left hidden there
  if (statSync(figDir, { throwIfNoEntry: false })?.isDirectory() === false) {
    throw new DataError(`${figDir}: a file, where the report puts its figures folder; move it away and run again`);
  }
  await removeDeadTemporaries(outDir);
  // pictures go to a folder of their own first, which replaces figures/ once complete
  const tmpDir = join(outDir, `.figures.${process.pid}.${randomBytes(6).toString('hex')}.tmp`);
  try {
    await mkdir(tmpDir, { recursive: true });
  } catch (e) {
    throw new DataError(`${figDir}: cannot create the figures directory: ${mkdirFailure(tmpDir, e)}`);
  }
  try {
    return await writeReport(results, outDir, opts, notes, split, tmpDir, figDir);
  } finally {
    await rm(tmpDir, { recursive: true, force: true }).catch(() => undefined);
  }
}

async function writeReport(
  results: CompareResults,
  outDir: string,
  opts: ReportOptions,
  notes: string[],
  split: TestSplit | null,
  tmpDir: string,
  figDir: string,
): Promise<ReportFiles> {

  const figures = figureSpecs(boundForFigures(results, notes), split, notes);
  const pictures: string[] = [];
  const figureBlocks: Block[] = [];
  for (const f of figures) {
    const svg = await renderVegaLite(f.spec);
    const png = svgToPng(svg, { scale: opts.pngScale ?? 2 });
    await writeFigure(join(tmpDir, `${f.name}.svg`), svg);
    await writeFigure(join(tmpDir, `${f.name}.png`), png);
    pictures.push(join(figDir, `${f.name}.svg`), join(figDir, `${f.name}.png`));
    figureBlocks.push({ kind: 'h', level: 3, text: f.title }, { kind: 'figure', name: f.name, title: f.title, caption: f.caption, svg, ...svgSize(svg) });
  }

  const title = `siamese-lab: ${count(results.spec.losses.length, 'loss', 'losses')} compared on ${results.dataset.name}`;
  const blocks: Block[] = [
    { kind: 'h', level: 1, text: title },
    {
      kind: 'p',
      cls: 'meta',
      text: `${count(results.spec.seeds.length, 'seed')} × ${count(results.spec.losses.length, 'loss', 'losses')}, ${count(results.spec.config.epochs, 'epoch')} each; ${results.machine.date}; wall time ${duration(results.machine.wallSeconds)}.`,
    },
    ...whatWasRun(results),
    ...resultsTable(results),
    ...comparisonBlocks(results),
    ...seedComparisonBlocks(results),
    { kind: 'h', level: 2, text: 'Charts' },
    ...figureBlocks,
    { kind: 'h', level: 2, text: 'Notes' },
    {
      kind: 'list',
      items: [
        ...notes,
        `Data: ${results.dataset.source}.${results.dataset.name.toLowerCase() === 'mnist' ? ' MNIST is by Yann LeCun, Corinna Cortes and Christopher J. C. Burges.' : ''}`,
        'Pictures: Vega-Lite and Vega (SVG), resvg with the DejaVu fonts (PNG).',
      ],
    },
  ];

  const htmlPath = join(outDir, 'report.html');
  const mdPath = join(outDir, 'report.md');
  try {
    await swapFigures(tmpDir, figDir);
  } catch (e) {
    throw new DataError(`${figDir}: cannot put the new figures in place (${fsErrorText(e)})`);
  }
  await writeFileAtomic(htmlPath, toHtml(title, blocks));
  await writeFileAtomic(mdPath, toMarkdown(blocks));
  return { html: htmlPath, md: mdPath, pictures, notes };
}

async function writeFigure(path: string, data: string | Uint8Array): Promise<void> {
  try {
    await writeFile(path, data);
  } catch (e) {
    throw new DataError(`${path}: cannot write the figure (${fsErrorText(e)})`);
  }
}
