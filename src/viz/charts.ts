/**
 * Chart builders: each reads a `CompareResults` (the serialisable output of `siamese compare`)
 * and returns a Vega-Lite spec; `render.ts` turns specs into SVG and PNG. Every chart colours a
 * loss the same way (`lossColors`), names its units, and raises the legend's label limit so
 * long loss labels are not cut.
 *
 * Fractions (accuracies, rates) are stored as 0..1 in the results and drawn as percentages.
 */
import { DataError } from '../errors.ts';
import { lossAccuracyAt } from '../eval/accuracyAt.ts';
import type { CompareResults, LossSummary, RunSummary, Stat } from '../experiments/results.ts';
import { count } from '../words.ts';
import { encodePng, pngDataUri } from './png.ts';
import type { VegaLiteSpec } from './render.ts';
import { boundedInterval, type Bounds, fractionWithCi } from './ciText.ts';

/** A fraction's bounds in percent: its CI bars and bands stop there. */
const PERCENT: Bounds = { lo: 0, hi: 100 };

/** Font stack named in every chart: resvg has DejaVu Sans loaded; browsers fall back along the list. */
export const CHART_FONT_STACK = 'DejaVu Sans, Liberation Sans, Arial, Helvetica, sans-serif';

const SCHEMA = 'https://vega.github.io/schema/vega-lite/v6.json';

/** One colour per loss, in the order of `spec.losses` (Tableau 10). */
export const LOSS_PALETTE = [
  '#4c78a8', '#f58518', '#54a24b', '#e45756', '#72b7b2', '#b279a2', '#eeca3b', '#9d755d', '#ff9da6', '#bab0ac',
];

/** The digit colours of the t-SNE panels (d3's category10, the usual "digit" palette). */
export const DIGIT_PALETTE = [
  '#1f77b4', '#ff7f0e', '#2ca02c', '#d62728', '#9467bd', '#8c564b', '#e377c2', '#7f7f7f', '#bcbd22', '#17becf',
];

/** Positive / negative pair colours of the polar plot (Okabe-Ito bluish green and vermilion). */
export const PAIR_COLORS = { pos: '#009e73', neg: '#d55e00' };

/** The seed's and the independent re-implementation's figures (the seed's README; the re-implementation's 3-seed means), 20 epochs, as fractions. */
export const REFERENCE_ACCURACY: Record<'contrastive' | 'yukawa', { seed: number; independent: { mean: number; spread: number; seeds: number } }> = {
  contrastive: { seed: 0.9737, independent: { mean: 0.9734, spread: 0.0012, seeds: 3 } },
  yukawa: { seed: 0.981, independent: { mean: 0.9805, spread: 0.0005, seeds: 3 } },
};

/** The loss names that refer to the seed's two losses (`potential` is the seed's name for Yukawa). */
export function referenceKey(loss: string): 'contrastive' | 'yukawa' | undefined {
  if (loss === 'contrastive') return 'contrastive';
  if (loss === 'yukawa' || loss === 'potential') return 'yukawa';
  return undefined;
}

const BASE_CONFIG = {
  font: CHART_FONT_STACK,
  aria: false,
  background: 'white',
  padding: 8,
  title: { fontSize: 15, subtitleFontSize: 12, subtitleColor: '#444', anchor: 'start', offset: 10 },
  axis: { labelFontSize: 11, titleFontSize: 12, titleFontWeight: 'normal', labelLimit: 300 },
  header: { labelFontSize: 13, titleFontSize: 13 },
  legend: { labelFontSize: 12, titleFontSize: 12, labelLimit: 600, symbolLimit: 60, titleLimit: 600 },
  view: { stroke: '#cccccc' },
  concat: { spacing: 24 },
};

function topLevel(title: string, subtitle: string | string[] | undefined, body: Record<string, unknown>): VegaLiteSpec {
  const none = subtitle === undefined || (Array.isArray(subtitle) && subtitle.length === 0);
  return {
    $schema: SCHEMA,
    title: none ? { text: title } : { text: title, subtitle },
    config: BASE_CONFIG,
    ...body,
  };
}

// ---------------------------------------------------------------------------------------------
// shared helpers

/** Non-null finite number or NaN (results.json stores NaN as null). */
function num(x: number | null | undefined): number {
  return typeof x === 'number' && Number.isFinite(x) ? x : NaN;
}

/** Display label of every loss entry, made unique (the id is appended when two labels clash). */
export function lossLabels(results: CompareResults): Map<string, string> {
  const count = new Map<string, number>();
  for (const l of results.spec.losses) count.set(l.label, (count.get(l.label) ?? 0) + 1);
  const out = new Map<string, string>();
  for (const l of results.spec.losses) out.set(l.id, count.get(l.label)! > 1 ? `${l.label} [${l.id}]` : l.label);
  return out;
}

/** The colour scale every loss-coloured chart uses: domain = labels in spec order. */
export function lossColors(results: CompareResults): { domain: string[]; range: string[] } {
  const labels = [...lossLabels(results).values()];
  return { domain: labels, range: labels.map((_, i) => LOSS_PALETTE[i % LOSS_PALETTE.length]!) };
}

function labelOf(results: CompareResults, lossId: string): string {
  return lossLabels(results).get(lossId) ?? lossId;
}

function lossColor(results: CompareResults, title = 'loss'): Record<string, unknown> {
  return {
    field: 'loss',
    type: 'nominal',
    title,
    scale: lossColors(results),
    sort: lossColors(results).domain,
    legend: { labelLimit: 600, orient: 'right', symbolOpacity: 1, symbolStrokeWidth: 2.5 },
  };
}

/** The seed whose single runs are drawn: seed 0 when it was run, else the first seed. */
export function displaySeed(results: CompareResults): number {
  const seeds = results.spec.seeds;
  if (seeds.includes(0)) return 0;
  if (seeds.length > 0) return seeds[0]!;
  const r = results.runs[0];
  if (!r) throw new DataError('results have no runs to draw');
  return r.seed;
}

/** One run per loss entry (spec order) for the given seed; losses without that run are left out. */
function runsForSeed(results: CompareResults, seed: number): { loss: string; run: RunSummary }[] {
  const out: { loss: string; run: RunSummary }[] = [];
  for (const l of results.spec.losses) {
    const run = results.runs.find((r) => r.lossId === l.id && r.seed === seed);
    if (run) out.push({ loss: labelOf(results, l.id), run });
  }
  return out;
}

const pct = (x: number): number => 100 * x;

/** "digit" for MNIST-like digit data, "class" for anything else (e.g. Fashion-MNIST). */
export function classWord(results: CompareResults): 'digit' | 'class' {
  const name = results.dataset.name.toLowerCase();
  return name.includes('fashion') || !(name.includes('mnist') || name === 'synthetic') ? 'class' : 'digit';
}

function fmt(x: number, digits: number): string {
  return Number.isFinite(x) ? x.toFixed(digits) : '—';
}

// ---------------------------------------------------------------------------------------------
// 1. distance histograms

export interface HistogramOptions {
  /** which seed's runs to draw (default: `displaySeed`) */
  seed?: number;
  /** bin width in distance units (default 0.02) */
  binWidth?: number;
  width?: number;
  height?: number;
}

/**
 * The x range of the histograms: wide enough for the typical loss (the median over losses of
 * each loss's 99th-percentile distance, plus a quarter), at least 1.5, never past the largest
 * distance. Why not simply the largest: a scale-free loss (a mined triplet loss spreads pairs
 * over D = 0..25) would squeeze every other loss into the first few bins.
 */
function distanceExtent(results: CompareResults, seed: number): number {
  let max = 0;
  const p99: number[] = [];
  for (const { run } of runsForSeed(results, seed)) {
    const all = [...run.distances.pos, ...run.distances.neg].filter(Number.isFinite).sort((a, b) => a - b);
    if (all.length === 0) continue;
    max = Math.max(max, all[all.length - 1]!);
    p99.push(all[Math.min(all.length - 1, Math.floor(0.99 * all.length))]!);
  }
  p99.sort((a, b) => a - b);
  const typical = p99.length ? p99[Math.floor((p99.length - 1) / 2)]! * 1.25 : max;
  return Math.max(1.5, Math.ceil(Math.min(max, typical) * 10 + 1e-9) / 10);
}

/**
 * Overlaid histograms of the positive (`kind = 'pos'`) or negative test pair distances, one
 * outlined, lightly filled step curve per loss, as the share of that loss's pairs per bin.
 * Both kinds share one x range so the two charts compare directly.
 */
export function distanceHistogramChart(results: CompareResults, kind: 'pos' | 'neg', opts: HistogramOptions = {}): VegaLiteSpec {
  const seed = opts.seed ?? displaySeed(results);
  const runs = runsForSeed(results, seed);
  if (runs.length === 0) throw new DataError(`results have no runs of seed ${seed} to draw distances from`);
  const binWidth = opts.binWidth ?? 0.02;
  const xmax = distanceExtent(results, seed);
  const bins = Math.round(xmax / binWidth);
  const values: { loss: string; d: number; share: number }[] = [];
  const clipped: string[] = [];
  const labels = lossLabels(results);
  for (const { loss, run } of runs) {
    const ds = run.distances[kind];
    const counts = new Array<number>(bins).fill(0);
    let over = 0;
    for (const d of ds) {
      if (!Number.isFinite(d)) continue;
      if (d >= xmax) {
        over++;
        continue;
      }
      counts[Math.min(bins - 1, Math.max(0, Math.floor(d / binWidth)))]!++;
    }
    if (over > 0) clipped.push(`${labels.get(loss) ?? loss} ${fmt((100 * over) / Math.max(1, ds.length), 0)}%`);
    const n = Math.max(1, ds.length);
    for (let b = 0; b < bins; b++) values.push({ loss, d: b * binWidth, share: (100 * counts[b]!) / n });
    values.push({ loss, d: bins * binWidth, share: 0 });
  }
  const threshold = results.spec.config.threshold;
  // a batch loss calls pairs "same" below its own best threshold (no distance scale), not below this line
  const atBest = results.summary.filter((s) => lossAccuracyAt(results, s) === 'best').map((s) => labelOf(results, s.lossId));
  const thresholdLine =
    atBest.length === 0
      ? `decision threshold D = ${threshold} (pairs left of it are called "same")`
      : atBest.length === results.summary.length
        ? `decision threshold D = ${threshold} of losses with a distance scale (none here: ${atBest.join(', ')} call pairs "same" below their own best threshold)`
        : `decision threshold D = ${threshold} of losses with a distance scale (pairs left of it are called "same"; ${atBest.join(', ')}: ${atBest.length === 1 ? 'its' : 'their'} own best threshold)`;
  const w = classWord(results);
  const what = kind === 'pos' ? `Positive (same-${w}) pairs` : `Negative (different-${w}) pairs`;
  const x = { field: 'd', type: 'quantitative', title: 'pair distance D (embedding units)', scale: { domain: [0, xmax], nice: false } };
  const y = { field: 'share', type: 'quantitative', title: `share of ${kind === 'pos' ? 'positive' : 'negative'} pairs per bin (%)` };
  return topLevel(
    `${what}: test distance histogram, seed ${seed}`,
    [
      `bin width ${binWidth}; dashed line: ${thresholdLine}`,
      ...(clipped.length ? [`pairs at D ≥ ${xmax} are off the chart (shares are of all pairs): ${clipped.join(', ')}`] : []),
    ],
    {
      width: opts.width ?? 560,
      height: opts.height ?? 260,
      layer: [
        {
          data: { values },
          mark: { type: 'area', interpolate: 'step-after', opacity: 0.18 },
          // overlaid, not stacked: each loss's fill starts at zero
          encoding: { x, y: { ...y, stack: null }, color: lossColor(results) },
        },
        {
          data: { values },
          mark: { type: 'line', interpolate: 'step-after', strokeWidth: 1.8 },
          encoding: { x, y, color: lossColor(results) },
        },
        {
          data: { values: [{ t: threshold }] },
          mark: { type: 'rule', strokeDash: [5, 4], color: '#333', strokeWidth: 1.2 },
          encoding: { x: { field: 't', type: 'quantitative' } },
        },
      ],
    },
  );
}

// ---------------------------------------------------------------------------------------------
// 2. loss shapes

/** Dash patterns of curves drawn over an identical one: solid first, then dashed, dotted, ... */
const DASHES: number[][] = [[1, 0], [7, 4], [2, 3], [9, 3, 2, 3], [1, 6]];

/** compare's note on a shape whose stored samples were capped, e.g. " (values above 4 drawn at 4)" */
const STORED_CAP_NOTE = /\s*\(values above ([0-9.]+) drawn at \1\)/;

/** "a", "a and b", "a, b and c" */
function listed(items: readonly string[]): string {
  return items.length < 2 ? (items[0] ?? '') : `${items.slice(0, -1).join(', ')} and ${items[items.length - 1]}`;
}

/**
 * The per-pair loss as a function of distance: L_pos(D) (same-digit pairs) and L_neg(D)
 * (different digits) for every loss, D in [0, 1.5]. Singular terms (Yukawa's exp(−κD)/D) are
 * clipped at a cap chosen from the data; the subtitle says so. Curves that coincide (contrastive's
 * D² is also coulomb's and power's L_pos) would hide one another: they are drawn with dash
 * patterns, and the subtitle names them.
 */
export function lossShapeChart(results: CompareResults, opts: { width?: number; height?: number } = {}): VegaLiteSpec {
  if (results.lossShapes.length === 0) throw new DataError('results have no loss shapes to draw');
  type Row = { loss: string; d: number; v: number; term: 'pos' | 'neg'; dash: string };
  const values: Row[] = [];
  const all: number[] = [];
  // compare may append a reading note to a shape's label (e.g. what a triplet loss is drawn against)
  const readingNotes: string[] = [];
  // the cap compare stored the samples at: a value there only says "this high or higher"
  let storedCap = Infinity;
  const curves: { loss: string; term: 'pos' | 'neg'; rows: Row[] }[] = [];
  for (const s of results.lossShapes) {
    const loss = lossLabels(results).get(s.loss) ?? s.label;
    const specLabel = results.spec.losses.find((l) => l.id === s.loss)?.label;
    const capNote = STORED_CAP_NOTE.exec(s.label);
    if (capNote) storedCap = Math.min(storedCap, Number(capNote[1]));
    if (specLabel !== undefined && s.label !== specLabel && s.label.startsWith(specLabel)) {
      const note = s.label.slice(specLabel.length).replace(STORED_CAP_NOTE, '').trim();
      if (note) readingNotes.push(`${loss}: ${note}`);
    }
    for (const term of ['pos', 'neg'] as const) {
      const ys = s[term];
      const rows: Row[] = [];
      for (let i = 0; i < s.d.length; i++) {
        const d = num(s.d[i]);
        const v = num(ys[i]);
        if (!Number.isFinite(d) || !Number.isFinite(v)) continue;
        rows.push({ loss, d, v, term, dash: '0' });
        all.push(v);
      }
      values.push(...rows);
      curves.push({ loss, term, rows });
    }
  }
  all.sort((a, b) => a - b);
  // a cap that keeps the bulk of every curve in view: the 90th percentile, with headroom; never
  // above the stored cap, so that the one caption below is true of every curve
  const q = all.length ? all[Math.min(all.length - 1, Math.floor(0.9 * all.length))]! : 1;
  const cap = Math.min(Math.max(1, Math.ceil(q * 1.25 * 2) / 2), storedCap);
  const floor = Math.min(0, all[0] ?? 0);
  // values far outside the view would become huge pixel coordinates (which also trip the PNG
  // rasteriser): hold them just above the cut, where the clip hides them
  let clipped = false;
  for (const row of values) {
    if (row.v > cap || row.v >= storedCap) {
      row.v = cap * 1.05;
      clipped = true;
    }
  }

  // curves that draw the same line: the first stays solid, the others get dash patterns
  const coincident: string[] = [];
  for (const term of ['pos', 'neg'] as const) {
    const left = curves.filter((c) => c.term === term);
    while (left.length) {
      const first = left.shift()!;
      const same = left.filter((c) => sameCurve(first.rows, c.rows));
      if (same.length === 0) continue;
      same.forEach((c, k) => {
        for (const r of c.rows) r.dash = String((k + 1) % DASHES.length);
        left.splice(left.indexOf(c), 1);
      });
      coincident.push(`same L_${term}(D): ${listed([first.loss, ...same.map((c) => c.loss)])} (dashed over one another)`);
    }
  }
  const panel = (term: 'pos' | 'neg', title: string): Record<string, unknown> => ({
    title: { text: title, fontSize: 13 },
    width: opts.width ?? 320,
    height: opts.height ?? 240,
    data: { values },
    transform: [{ filter: { field: 'term', equal: term } }],
    mark: { type: 'line', strokeWidth: 2, clip: true },
    encoding: {
      x: { field: 'd', type: 'quantitative', title: 'pair distance D', scale: { domain: [0, 1.5], nice: false } },
      y: { field: 'v', type: 'quantitative', title: 'per-pair loss', scale: { domain: [floor, cap], nice: false } },
      color: lossColor(results),
      strokeDash: { field: 'dash', type: 'nominal', scale: { domain: DASHES.map((_, i) => String(i)), range: DASHES }, legend: null },
    },
  });
  return topLevel(
    'Loss shapes: what each loss charges a pair at distance D',
    [...(clipped ? [`y axis cut at ${cap}: curves that leave the top go higher (singular at D → 0)`] : []), ...coincident, ...readingNotes],
    {
      hconcat: [
        panel('pos', `L_pos(D): same-${classWord(results)} pairs (Y = 1)`),
        panel('neg', `L_neg(D): different-${classWord(results)} pairs (Y = 0)`),
      ],
      resolve: { scale: { color: 'shared' } },
    },
  );
}

/** Two sampled curves that would draw one line: the same points, to well below a pixel. */
function sameCurve(a: readonly { d: number; v: number }[], b: readonly { d: number; v: number }[]): boolean {
  return a.length === b.length && a.every((p, i) => p.d === b[i]!.d && Math.abs(p.v - b[i]!.v) <= 1e-9 + 1e-6 * Math.abs(p.v));
}

// ---------------------------------------------------------------------------------------------
// 3. learning curves

/** Mean line and 95%-CI band over seeds, per loss and epoch: training loss, train and test accuracy. */
export function learningCurveChart(results: CompareResults, opts: { width?: number; height?: number } = {}): VegaLiteSpec {
  type Row = { loss: string; epoch: number; mean: number; lo: number; hi: number };
  const rows = { loss: [] as Row[], trainAccuracy: [] as Row[], testAccuracy: [] as Row[] };
  let seedCount = 0;
  for (const s of results.summary) {
    const loss = labelOf(results, s.lossId);
    seedCount = Math.max(seedCount, s.seeds);
    for (const c of s.curves) {
      for (const key of ['loss', 'trainAccuracy', 'testAccuracy'] as const) {
        const st = c[key];
        const scale = key === 'loss' ? 1 : 100;
        const mean = num(st.mean) * scale;
        if (!Number.isFinite(mean)) continue;
        const ci = num(st.ci95) * scale;
        const half = Number.isFinite(ci) ? ci : 0;
        // an accuracy's band stays within [0, 100]: with few seeds mean ± half-width can pass it
        const { lo, hi } = boundedInterval(mean, half, key === 'loss' ? { lo: -Infinity, hi: Infinity } : PERCENT);
        rows[key].push({ loss, epoch: c.epoch, mean, lo, hi });
      }
    }
  }
  if (rows.loss.length + rows.testAccuracy.length === 0) throw new DataError('results have no learning curves to draw');
  const atBest = results.summary.filter((s) => lossAccuracyAt(results, s) === 'best').map((s) => labelOf(results, s.lossId));
  const logLoss = rows.loss.length > 0 && rows.loss.every((r) => r.lo > 0);
  const panel = (data: Row[], title: string, yTitle: string, log: boolean): Record<string, unknown> => {
    const x = { field: 'epoch', type: 'quantitative', title: 'epoch', axis: { tickMinStep: 1, format: 'd' } };
    const yScale = log ? { type: 'log' } : { zero: false };
    return {
      title: { text: title, fontSize: 13 },
      width: opts.width ?? 250,
      height: opts.height ?? 220,
      data: { values: data },
      layer: [
        {
          mark: { type: 'area', opacity: 0.2 },
          encoding: {
            x,
            y: { field: 'lo', type: 'quantitative', title: yTitle, scale: yScale },
            y2: { field: 'hi' },
            color: lossColor(results),
          },
        },
        {
          mark: { type: 'line', strokeWidth: 2, point: { size: 18 } },
          encoding: { x, y: { field: 'mean', type: 'quantitative', title: yTitle, scale: yScale }, color: lossColor(results) },
        },
      ],
    };
  };
  return topLevel(
    `Learning curves: mean over ${seedCount} seed${seedCount === 1 ? '' : 's'} per loss`,
    [
      seedCount > 1 ? 'band: 95% confidence interval of the mean over seeds' : 'one seed: no band',
      ...(atBest.length > 0 && atBest.length === results.summary.length
        ? // batch losses only: no accuracy here is at D < threshold (train: each batch's best threshold)
          ['pair accuracy: share of pairs matching the label at the best threshold (no absolute distance scale); losses are in their own units']
        : [
            `pair accuracy: share of pairs with (D < ${results.spec.config.threshold}) matching the label; losses are in their own units`,
            ...(atBest.length ? [`test accuracy of ${atBest.join(', ')}: at each epoch's best threshold (no absolute distance scale)`] : []),
          ]),
    ],
    {
      hconcat: [
        panel(rows.loss, logLoss ? 'Training loss (log scale)' : 'Training loss', 'batch-mean loss', logLoss),
        panel(rows.trainAccuracy, 'Train accuracy (dropout on)', 'pair accuracy (%)', false),
        panel(rows.testAccuracy, 'Test accuracy', 'pair accuracy (%)', false),
      ],
      resolve: { scale: { color: 'shared' } },
    },
  );
}

// ---------------------------------------------------------------------------------------------
// 4. t-SNE panels

/** The test split's raw images, for thumbnails: `n` images of `height` x `width` bytes (0..255). */
export interface TestImages {
  images: Uint8Array;
  width: number;
  height: number;
}

export interface TsneChartOptions {
  /** test images for the digit thumbnails; without them the panels have points only */
  images?: TestImages;
  /** thumbnails per panel (default 40) */
  thumbnails?: number;
  /** panel size in pixels (default 300) */
  size?: number;
  /** panels per row (default 3) */
  columns?: number;
}

/**
 * Greedy farthest-point sampling of `k` points from interleaved 2-D coordinates: start at the
 * point farthest from the centroid, then repeatedly add the point farthest from those chosen.
 * Deterministic (ties go to the lower index).
 */
export function farthestPointSample(xy: ArrayLike<number>, k: number): number[] {
  const n = Math.floor(xy.length / 2);
  if (n === 0 || k <= 0) return [];
  let cx = 0;
  let cy = 0;
  for (let i = 0; i < n; i++) {
    cx += xy[2 * i]!;
    cy += xy[2 * i + 1]!;
  }
  cx /= n;
  cy /= n;
  const minD = new Float64Array(n);
  let first = 0;
  let best = -1;
  for (let i = 0; i < n; i++) {
    const d = (xy[2 * i]! - cx) ** 2 + (xy[2 * i + 1]! - cy) ** 2;
    if (d > best) {
      best = d;
      first = i;
    }
  }
  const chosen = [first];
  for (let i = 0; i < n; i++) minD[i] = (xy[2 * i]! - xy[2 * first]!) ** 2 + (xy[2 * i + 1]! - xy[2 * first + 1]!) ** 2;
  while (chosen.length < Math.min(k, n)) {
    let next = -1;
    let far = -1;
    for (let i = 0; i < n; i++) {
      if (minD[i]! > far) {
        far = minD[i]!;
        next = i;
      }
    }
    if (far <= 0) break; // only duplicates of chosen points are left
    chosen.push(next);
    for (let i = 0; i < n; i++) {
      const d = (xy[2 * i]! - xy[2 * next]!) ** 2 + (xy[2 * i + 1]! - xy[2 * next + 1]!) ** 2;
      if (d < minD[i]!) minD[i] = d;
    }
  }
  return chosen;
}

/** A digit thumbnail as a data-URI PNG: dark ink on a nearly opaque white card. */
export function thumbnailDataUri(images: TestImages, index: number): string {
  const size = images.width * images.height;
  const n = Math.floor(images.images.length / size);
  if (!Number.isInteger(index) || index < 0 || index >= n) {
    throw new DataError(`t-SNE thumbnail: test image ${index} does not exist (the split has ${n} images)`);
  }
  const src = images.images.subarray(index * size, (index + 1) * size);
  const rgba = new Uint8Array(size * 4);
  for (let i = 0; i < size; i++) {
    const ink = 255 - src[i]!;
    rgba[4 * i] = ink;
    rgba[4 * i + 1] = ink;
    rgba[4 * i + 2] = ink;
    rgba[4 * i + 3] = 235;
  }
  return pngDataUri(encodePng(rgba, images.width, images.height, 'rgba'));
}

/**
 * t-SNE of the test subset, one panel per stage (before training, then after each loss),
 * points coloured by digit, with digit thumbnails over a spread-out subset of each panel's
 * points (farthest-point sampling), framed in their digit's colour.
 */
export function tsneChart(results: CompareResults, opts: TsneChartOptions = {}): VegaLiteSpec {
  const t = results.tsne;
  if (!t) throw new DataError('results have no t-SNE to draw');
  const n = t.indices.length;
  if (t.labels.length !== n) throw new DataError(`t-SNE: ${n} indices but ${t.labels.length} labels`);
  const size = opts.size ?? 300;
  const thumbs = opts.thumbnails ?? 40;
  const thumbPx = Math.max(14, Math.round(size / 15));
  const uriCache = new Map<number, string>();
  const digitDomain = Array.from({ length: 10 }, (_, i) => String(i));
  const extraDigits = [...new Set(t.labels.map(String))].filter((d) => !digitDomain.includes(d)).sort();
  const color = {
    field: 'digit',
    type: 'nominal',
    title: classWord(results),
    scale: { domain: [...digitDomain, ...extraDigits], range: DIGIT_PALETTE },
    legend: { labelLimit: 600, symbolType: 'circle', symbolSize: 90 },
  };
  const panels = t.panels.map((p) => {
    if (p.points.length !== 2 * n) {
      throw new DataError(`t-SNE panel "${p.title}": ${p.points.length} coordinates for ${n} points (expected ${2 * n})`);
    }
    const points = Array.from({ length: n }, (_, i) => ({ x: p.points[2 * i]!, y: p.points[2 * i + 1]!, digit: String(t.labels[i]) }));
    let xmin = Infinity;
    let xmax = -Infinity;
    let ymin = Infinity;
    let ymax = -Infinity;
    for (const q of points) {
      xmin = Math.min(xmin, q.x);
      xmax = Math.max(xmax, q.x);
      ymin = Math.min(ymin, q.y);
      ymax = Math.max(ymax, q.y);
    }
    // pad by half a thumbnail so edge thumbnails stay inside the panel
    const padX = ((xmax - xmin || 1) * (thumbPx / 2 + 2)) / size;
    const padY = ((ymax - ymin || 1) * (thumbPx / 2 + 2)) / size;
    const x = { field: 'x', type: 'quantitative', axis: null, scale: { domain: [xmin - padX, xmax + padX], nice: false, zero: false } };
    const y = { field: 'y', type: 'quantitative', axis: null, scale: { domain: [ymin - padY, ymax + padY], nice: false, zero: false } };
    const layer: Record<string, unknown>[] = [
      {
        data: { values: points },
        mark: { type: 'circle', size: 14, opacity: 0.75 },
        encoding: { x, y, color },
      },
    ];
    if (opts.images && thumbs > 0) {
      const images = opts.images;
      const pick = farthestPointSample(p.points, thumbs).map((i) => {
        const index = t.indices[i]!;
        let url = uriCache.get(index);
        if (url === undefined) {
          url = thumbnailDataUri(images, index);
          uriCache.set(index, url);
        }
        return { x: points[i]!.x, y: points[i]!.y, digit: points[i]!.digit, url };
      });
      layer.push(
        {
          data: { values: pick },
          mark: { type: 'image', width: thumbPx, height: thumbPx },
          encoding: { x, y, url: { field: 'url', type: 'nominal' } },
        },
        {
          data: { values: pick },
          mark: { type: 'square', filled: false, size: (thumbPx + 2) ** 2, strokeWidth: 1.5, opacity: 1 },
          encoding: { x, y, color },
        },
      );
    }
    return { title: { text: p.title, fontSize: 13 }, width: size, height: size, layer };
  });
  const { perplexity, iterations, seed } = t.params;
  const subtitle = [
    `${count(n, 'test image')}; perplexity ${Number(perplexity.toFixed(2))}, ${count(iterations, 'iteration')}, t-SNE seed ${seed}; axes are arbitrary t-SNE units`,
    opts.images && thumbs > 0 ? `thumbnails: ${thumbs} spread-out points per panel (farthest-point sampling), framed in their ${classWord(results)}'s colour` : 'no thumbnails: the test images were not available',
  ];
  return topLevel(`t-SNE of the test embeddings, coloured by ${classWord(results)}`, subtitle, {
    concat: panels,
    columns: Math.min(opts.columns ?? 3, Math.max(1, panels.length)),
    resolve: { scale: { x: 'independent', y: 'independent', color: 'shared' } },
  });
}

// ---------------------------------------------------------------------------------------------
// 5. polar distance plot

/**
 * The class (label of the pair's first image) of every positive and every negative test pair,
 * in test-pair order. A run's `distances.pos/neg` are these pairs' distances in the same order,
 * all of them or the first ones (a sample), so distance i has class i.
 */
export interface PairClasses {
  pos: ArrayLike<number>;
  neg: ArrayLike<number>;
}

export interface PolarOptions {
  seed?: number;
  /** at most this many pairs per class and kind per panel (evenly strided; default 80) */
  perClass?: number;
  size?: number;
  columns?: number;
}

/**
 * The seed's polar plot: angle = class of the pair (10 sectors, 0 at the top, clockwise),
 * radius = pair distance D, positive and negative pairs in two colours; one panel per loss.
 * Rings mark D = threshold (dashed), 1 and 1.5.
 */
export function polarChart(results: CompareResults, classes: PairClasses, opts: PolarOptions = {}): VegaLiteSpec {
  const seed = opts.seed ?? displaySeed(results);
  const runs = runsForSeed(results, seed);
  if (runs.length === 0) throw new DataError(`results have no runs of seed ${seed} to draw`);
  const perClass = opts.perClass ?? 80;
  const size = opts.size ?? 300;
  // one sector per class that has pairs, labelled with its class id: every class on the seed's
  // plot, the test classes alone (e.g. 5-9) under a class split
  let maxClass = 0;
  for (const kind of ['pos', 'neg'] as const) for (let i = 0; i < classes[kind].length; i++) maxClass = Math.max(maxClass, classes[kind][i]!);
  const present = new Uint8Array(maxClass + 1);
  for (const kind of ['pos', 'neg'] as const) for (let i = 0; i < classes[kind].length; i++) present[classes[kind][i]!] = 1;
  const sectorIds: number[] = [];
  present.forEach((p, c) => {
    if (p) sectorIds.push(c);
  });
  while (sectorIds.length < 2) sectorIds.push(sectorIds.length ? sectorIds[sectorIds.length - 1]! + 1 : 0);
  const sectorOf = new Map(sectorIds.map((c, i) => [c, i]));
  const numClasses = sectorIds.length;
  const sector = (2 * Math.PI) / numClasses;
  const threshold = results.spec.config.threshold;
  const w = classWord(results);
  const posLabel = `positive (same ${w})`;
  const negLabel = `negative (different ${w}s)`;
  const color = {
    field: 'pair',
    type: 'nominal',
    title: 'test pair',
    scale: { domain: [posLabel, negLabel], range: [PAIR_COLORS.pos, PAIR_COLORS.neg] },
    legend: { labelLimit: 600, symbolOpacity: 1 },
  };
  // Each panel has its own radius: a scale-free loss (mined triplets spread pairs to D ≈ 25) would
  // otherwise shrink every other loss to a dot in the middle.
  const charts = runs.map(({ loss, run }) => {
    let rmax = 1.5;
    const values: { x: number; y: number; pair: string }[] = [];
    for (const kind of ['pos', 'neg'] as const) {
      const ds = run.distances[kind];
      const cls = classes[kind];
      if (cls.length < ds.length) {
        throw new DataError(`polar plot: ${loss} seed ${seed} has ${count(ds.length, `${kind} distance`)} but only ${count(cls.length, 'class', 'classes')}`);
      }
      const byClass: number[][] = Array.from({ length: numClasses }, () => []);
      for (let i = 0; i < ds.length; i++) if (Number.isFinite(ds[i])) byClass[sectorOf.get(cls[i]!)!]!.push(ds[i]!);
      byClass.forEach((list, c) => {
        const m = Math.min(perClass, list.length);
        for (let j = 0; j < m; j++) {
          const r = list[Math.floor((j * list.length) / m)]!;
          rmax = Math.max(rmax, r);
          // spread the class's pairs across the middle 80% of its sector
          const theta = (c + 0.1 + (0.8 * (j + 0.5)) / m) * sector;
          values.push({ x: r * Math.sin(theta), y: r * Math.cos(theta), pair: kind === 'pos' ? posLabel : negLabel });
        }
      });
    }
    const R = Math.ceil(rmax * 10) / 10;
    const lim = R * 1.16;
    const rings = [threshold, 1, 1.5, ...(R > 3 ? [Math.floor(R)] : [])].filter((r, i, arr) => r <= R && arr.indexOf(r) === i);
    const ringPts: { ring: string; x: number; y: number; o: number }[] = [];
    for (const r of rings) {
      for (let k = 0; k <= 120; k++) {
        const ang = (k / 120) * 2 * Math.PI;
        ringPts.push({ ring: String(r), x: r * Math.sin(ang), y: r * Math.cos(ang), o: k });
      }
    }
    const spokes = Array.from({ length: numClasses }, (_, c) => ({ x: 0, y: 0, x2: R * Math.sin(c * sector), y2: R * Math.cos(c * sector) }));
    const labels = Array.from({ length: numClasses }, (_, c) => ({
      x: R * 1.08 * Math.sin((c + 0.5) * sector),
      y: R * 1.08 * Math.cos((c + 0.5) * sector),
      text: String(sectorIds[c]),
    }));
    // ring labels sit just inside their ring, right of the top spoke (the digit labels are outside);
    // on a wide panel only the outer ring is labelled, the inner ones would overlap
    const labelled = R > 3 ? rings.slice(-1) : rings;
    const ringLabels = labelled.map((r) => ({ x: 0.02 * R, y: r, text: r === threshold ? `D = ${r} (threshold)` : `D = ${r}` }));
    const x = { field: 'x', type: 'quantitative', axis: null, scale: { domain: [-lim, lim], nice: false, zero: false } };
    const y = { field: 'y', type: 'quantitative', axis: null, scale: { domain: [-lim, lim], nice: false, zero: false } };
    return {
      title: { text: R > 3 ? `${loss} (radius to D = ${R})` : loss, fontSize: 13 },
      width: size,
      height: size,
      layer: [
        { data: { values: spokes }, mark: { type: 'rule', color: '#bbbbbb', strokeWidth: 0.8 }, encoding: { x, y, x2: { field: 'x2' }, y2: { field: 'y2' } } },
        {
          data: { values: ringPts },
          mark: { type: 'line', color: '#888888', strokeWidth: 0.9 },
          encoding: {
            x,
            y,
            detail: { field: 'ring', type: 'nominal' },
            order: { field: 'o', type: 'quantitative' },
            strokeDash: { field: 'ring', type: 'nominal', legend: null, scale: { domain: rings.map(String), range: rings.map((r) => (r === threshold ? [4, 3] : [1, 0])) } },
          },
        },
        { data: { values }, mark: { type: 'circle', size: 10, opacity: 0.55 }, encoding: { x, y, color } },
        { data: { values: labels }, mark: { type: 'text', fontSize: 13, fontWeight: 'bold', color: '#222222' }, encoding: { x, y, text: { field: 'text' } } },
        { data: { values: ringLabels }, mark: { type: 'text', fontSize: 10, align: 'left', baseline: 'top', dy: 2, color: '#333333' }, encoding: { x, y, text: { field: 'text' } } },
      ],
    };
  });
  return topLevel(
    `Polar view of test pair distances, seed ${seed}: angle = ${w}, radius = D`,
    `each ${w}'s sector holds up to ${perClass} positive and ${perClass} negative pairs (${w} of the pair's first image), spread across the sector`,
    {
      concat: charts,
      columns: Math.min(opts.columns ?? 3, charts.length),
      resolve: { scale: { color: 'shared', strokeDash: 'independent' } },
    },
  );
}

// ---------------------------------------------------------------------------------------------
// 6. accuracy per loss

export type SummaryMeasure = 'accuracy' | 'bestAccuracy' | 'auc' | 'mapAtR' | 'precisionAt1';

const MEASURE_TITLES: Record<SummaryMeasure, { title: string; axis: string }> = {
  accuracy: { title: 'Test pair accuracy per loss', axis: 'test pair accuracy (%, D < threshold)' },
  bestAccuracy: { title: 'Best-threshold test pair accuracy per loss', axis: 'test pair accuracy at the best threshold (%, in-sample)' },
  auc: { title: 'ROC AUC per loss', axis: 'ROC AUC (%)' },
  mapAtR: { title: 'Retrieval MAP@R per loss', axis: 'MAP@R on the test images (%)' },
  precisionAt1: { title: 'Retrieval precision@1 per loss', axis: 'precision@1 on the test images (%)' },
};

function statOf(s: LossSummary, m: SummaryMeasure): Stat | undefined {
  return s[m];
}

/**
 * Mean per loss with its 95% CI over seeds as an error bar, every seed's value as a tick, and
 * (for accuracy) the seed's README figure and the independent re-implementation's mean ± spread.
 */
export function accuracyChart(results: CompareResults, opts: { measure?: SummaryMeasure; width?: number } = {}): VegaLiteSpec {
  const measure = opts.measure ?? 'accuracy';
  const rows: { loss: string; mean: number; lo: number; hi: number; text: string }[] = [];
  const seeds: { loss: string; v: number }[] = [];
  const refs: { loss: string; v: number; lo: number; hi: number; source: string }[] = [];
  const seedRef = "seed's README (1 run, 20 epochs)";
  const indRef = 'independent re-implementation (mean ± spread, 3 seeds, 20 epochs)';
  for (const s of results.summary) {
    const st = statOf(s, measure);
    // a batch loss has no accuracy at D < threshold (evaluate.ts gives its best threshold's)
    if (!st || (measure === 'accuracy' && lossAccuracyAt(results, s) === 'best')) continue;
    const loss = labelOf(results, s.lossId);
    const mean = pct(num(st.mean));
    if (!Number.isFinite(mean)) continue;
    const ci = pct(num(st.ci95));
    const half = Number.isFinite(ci) ? ci : 0;
    // the bar is the interval clipped to [0, 100] and the label says so where it is (ciText.ts)
    const { lo, hi } = boundedInterval(mean, half, PERCENT);
    rows.push({ loss, mean, lo, hi, text: fractionWithCi(num(st.mean), num(st.ci95), '') });
    for (const v of st.values) if (Number.isFinite(num(v))) seeds.push({ loss, v: pct(num(v)) });
    const entry = results.spec.losses.find((l) => l.id === s.lossId);
    const key = entry && !entry.miner ? referenceKey(entry.loss) : undefined;
    if (measure === 'accuracy' && key) {
      const ref = REFERENCE_ACCURACY[key];
      refs.push({ loss, v: pct(ref.seed), lo: pct(ref.seed), hi: pct(ref.seed), source: seedRef });
      const m = pct(ref.independent.mean);
      const h = pct(ref.independent.spread);
      refs.push({ loss, v: m, lo: m - h, hi: m + h, source: indRef });
    }
  }
  if (rows.length === 0) throw new DataError(`results have no ${measure} figures to draw`);
  const domain = lossColors(results).domain.filter((l) => rows.some((r) => r.loss === l));
  const yEnc = { field: 'loss', type: 'nominal', title: null, sort: domain, axis: { labelLimit: 600, labelFontSize: 12 } };
  const xTitle = MEASURE_TITLES[measure].axis;
  const xs = [...rows.flatMap((r) => [r.lo, r.hi]), ...seeds.map((s) => s.v), ...refs.flatMap((r) => [r.lo, r.hi])];
  const span = Math.max(...xs) - Math.min(...xs) || 1;
  // every measure here is a percentage: pad the range, but never past 0 or 100
  const xDomain = [Math.max(0, Math.min(...xs) - 0.12 * span), Math.min(100, Math.max(...xs) + 0.12 * span)];
  const x = (field: string): Record<string, unknown> => ({ field, type: 'quantitative', title: xTitle, scale: { domain: xDomain, nice: false, zero: false } });
  const seedCount = Math.max(...results.summary.map((s) => s.seeds));
  const layer: Record<string, unknown>[] = [
    { data: { values: rows }, mark: { type: 'rule', strokeWidth: 2.5, clip: true }, encoding: { y: yEnc, x: x('lo'), x2: { field: 'hi' }, color: lossColor(results) } },
    { data: { values: seeds }, mark: { type: 'tick', thickness: 1.5, size: 16, opacity: 0.8 }, encoding: { y: yEnc, x: x('v'), color: lossColor(results) } },
    { data: { values: rows }, mark: { type: 'point', filled: true, size: 110, opacity: 1 }, encoding: { y: yEnc, x: x('mean'), color: lossColor(results) } },
    {
      data: { values: rows },
      mark: { type: 'text', align: 'center', dy: -15, fontSize: 11, color: '#222222' },
      encoding: { y: yEnc, x: x('mean'), text: { field: 'text' } },
    },
  ];
  if (refs.length > 0) {
    const shape = { field: 'source', type: 'nominal', title: 'reference', scale: { domain: [seedRef, indRef], range: ['diamond', 'square'] }, legend: { labelLimit: 600, orient: 'bottom', direction: 'vertical' } };
    layer.push(
      { data: { values: refs.filter((r) => r.source === indRef) }, mark: { type: 'rule', color: '#555555', strokeWidth: 1, yOffset: 9 }, encoding: { y: yEnc, x: x('lo'), x2: { field: 'hi' } } },
      { data: { values: refs }, mark: { type: 'point', filled: false, color: '#111111', size: 70, strokeWidth: 1.5, yOffset: 9 }, encoding: { y: yEnc, x: x('v'), shape } },
    );
  }
  return topLevel(
    `${MEASURE_TITLES[measure].title}, ${seedCount} seed${seedCount === 1 ? '' : 's'}`,
    `dot: mean; bar: 95% CI over seeds; ticks: each seed${refs.length ? '; black marks (offset below): reference figures' : ''}`,
    {
      width: opts.width ?? 560,
      height: { step: refs.length ? 56 : 40 },
      layer,
      resolve: { legend: { shape: 'independent' } },
    },
  );
}
