/**
 * Sweep view. For each sweep folder (`siamese sweep`): parallel coordinates of the searched
 * hyperparameters against validation MAP@R, one line per trial coloured by loss (brushable);
 * the best validation MAP@R so far per loss over the trials (uPlot); and the chosen parameters
 * per loss with their test measures (mean ± 95% CI over the final seeds). The trials come from
 * results.json once the sweep has finished, and from the trial runs' result.json files while
 * it is written (a trial counts once all its folds are scored), so the view grows live.
 *
 * Runs outside sweep folders (compares, single runs) get the parallel coordinates of their own:
 * one axis per numeric loss parameter, then seed, pair accuracy, MAP@R and test accuracy.
 */
import uPlot from 'uplot';
import { clear, colorOf, fixed, h, message, pct } from './dom.ts';
import { bestThresholdWords } from '../viz/accuracyWords.ts';
import { fractionWithCi, isClipped } from '../viz/ciText.ts';
import { sweepFinalTrainings } from '../viz/sweepFinals.ts';
import { sweepVerdict, verdictDifferences } from '../viz/sweepVerdict.ts';
import { type AxisDef, parallelCoordinates } from './parallel.ts';
import { type FolderView, groups, type RunInfo, state, type SweepOutline, type SweepResults } from './state.ts';

/** brushes per chart (a folder's trials, or the runs), kept across redraws */
const brushes = new Map<string, Map<string, [number, number]>>();
let charts: uPlot[] = [];

const brushesOf = (key: string): Map<string, [number, number]> => {
  let b = brushes.get(key);
  if (!b) brushes.set(key, (b = new Map()));
  return b;
};

interface TrialRow {
  lossId: string;
  label: string;
  color: string;
  /** 0-based, as results.json numbers trials (shown 1-based) */
  trial: number;
  params: Record<string, number>;
  /** mean validation MAP@R over the folds; null until every fold is scored (or one failed) */
  mapAtR: number | null;
  foldsDone: number;
  /** every fold has ended (scored or failed): the best so far is known after this trial */
  done: boolean;
}

interface LossTrials {
  id: string;
  label: string;
  color: string;
  space: { name: string; log: boolean }[];
  trials: TrialRow[];
  /** from results.json only */
  final?: SweepResults['losses'][number];
}

const paramText = (p: Record<string, unknown>): string =>
  Object.entries(p)
    .map(([k, v]) => `${k}=${typeof v === 'number' ? Number(v.toPrecision(4)) : String(v)}`)
    .join(', ');

/** The trials of a finished sweep, as its results.json has them. */
function fromResults(res: SweepResults, outline: SweepOutline | null | undefined): LossTrials[] {
  return res.losses.map((l) => {
    const i = outline?.losses.findIndex((o) => o.id === l.id) ?? -1;
    const color = colorOf(i >= 0 ? i : res.losses.indexOf(l));
    return {
      id: l.id,
      label: l.label,
      color,
      space: l.space.map((d) => ({ name: d.name, log: d.log })),
      trials: l.trials.map((t) => ({ lossId: l.id, label: l.label, color, trial: t.trial, params: t.params, mapAtR: t.validation.mapAtR, foldsDone: t.validation.folds.filter((f) => f.mapAtR !== null).length, done: true })),
      final: l,
    };
  });
}

/** The trials of a sweep being written: its trial runs' scores, grouped by trial. */
function fromRuns(folder: FolderView, outline: SweepOutline): LossTrials[] {
  const runs = state.runs.filter((r) => r.folder === folder.id && r.sweep?.kind === 'trial');
  return outline.losses.map((l, i) => {
    const color = colorOf(i);
    const byTrial = new Map<number, RunInfo[]>();
    for (const r of runs) {
      if (r.sweep?.kind !== 'trial' || r.sweep.lossId !== l.id) continue;
      byTrial.set(r.sweep.trial, [...(byTrial.get(r.sweep.trial) ?? []), r]);
    }
    const trials = [...byTrial]
      .sort((a, b) => a[0] - b[0])
      .map(([trial, folds]): TrialRow => {
        const params: Record<string, number> = {};
        for (const d of l.space) {
          const v = folds[0]!.params[d.name];
          if (typeof v === 'number') params[d.name] = v;
        }
        const scored = folds.filter((f) => f.status === 'finished' && f.mapAtR !== null);
        // the sweep's own score: the mean over all K folds, only once each has one
        const mapAtR = scored.length === outline.folds && outline.folds > 0 ? scored.reduce((s, f) => s + f.mapAtR!, 0) / scored.length : null;
        const done = mapAtR !== null || folds.some((f) => f.status === 'failed');
        return { lossId: l.id, label: l.label, color, trial, params, mapAtR, foldsDone: scored.length, done };
      });
    return { id: l.id, label: l.label, color, space: l.space.map((d) => ({ name: d.name, log: d.log })), trials };
  });
}

/**
 * Best validation MAP@R after each of n trials: null before the first scored one, and at a trial
 * that has not ended (a sweep being written has not run its later trials yet: there is no best
 * "after" them; the chart's line bridges a trial still running between two that ended).
 */
export function bestSoFar(trials: readonly Pick<TrialRow, 'trial' | 'mapAtR' | 'done'>[], n: number): (number | null)[] {
  const byTrial = new Map(trials.map((t) => [t.trial, t]));
  let best: number | null = null;
  return Array.from({ length: n }, (_, i) => {
    const t = byTrial.get(i);
    if (t && t.mapAtR !== null && (best === null || t.mapAtR > best)) best = t.mapAtR;
    return t?.done ? best : null;
  });
}

function bestTrial(trials: readonly TrialRow[]): TrialRow | undefined {
  let best: TrialRow | undefined;
  for (const t of trials) if (t.mapAtR !== null && (!best || t.mapAtR > best.mapAtR!)) best = t;
  return best;
}

export function renderSweep(root: HTMLElement): void {
  for (const c of charts) c.destroy();
  charts = [];
  clear(root);
  const sweeps = state.folders.filter((f) => f.kind === 'sweep');
  for (const f of sweeps) renderSweepFolder(root, f);
  const others = state.runs.filter((r) => !r.sweep);
  if (others.length > 0) {
    if (sweeps.length > 0) root.append(h('h2', {}, 'Other runs'));
    renderRunsChart(root, others);
  } else if (sweeps.length === 0) {
    root.append(message('no runs yet'));
  }
}

function renderSweepFolder(root: HTMLElement, f: FolderView): void {
  const section = h('section', { 'data-sweep': f.id });
  root.append(section);
  section.append(h('h2', {}, `Sweep ${f.path}`));
  const r = state.results.get(f.id);
  if (r && !r.ok) section.append(message(`results.json: ${r.message}`));
  const res = r?.ok && r.kind === 'sweep' ? r.sweep : undefined;
  if (!res && !f.outline) {
    section.append(message('sweep.json cannot be read (yet): the trials appear once it is written'));
    return;
  }
  const losses = res ? fromResults(res, f.outline) : fromRuns(f, f.outline!);
  const planned = res ? res.protocol.trials : f.outline!.trials;
  const scored = losses.reduce((s, l) => s + l.trials.filter((t) => t.mapAtR !== null).length, 0);
  // a loss with nothing to search runs one trial (lossTrials in experiments/sweep.ts)
  const total = losses.reduce((s, l) => s + (l.space.length > 0 ? planned : 1), 0);
  section.append(
    h(
      'p',
      { class: 'note', 'data-testid': 'sweep-status' },
      res
        ? `finished: ${planned} trials per loss, ${res.protocol.folds} folds, ${res.protocol.seeds} final seeds.`
        : `running: ${scored} of ${total} trials scored (${planned} per loss, ${f.outline!.folds} folds each)${finalProgress(f)}; test measures come with results.json`,
    ),
  );
  if (res) {
    // the report's verdict, from the same results: the plain words, then the significant differences
    // (with one loss, the summary alone: nothing was compared)
    const v = sweepVerdict(res);
    const d = verdictDifferences(v);
    section.append(
      h(
        'div',
        { 'data-testid': 'sweep-verdict' },
        h('p', {}, v.summary),
        ...(d ? [h('p', {}, d.heading), h('ul', {}, ...d.items.map((x) => h('li', {}, x)))] : []),
      ),
    );
  }
  const legend = h('div', { class: 'legend' });
  for (const l of losses) {
    const s = h('span', { 'data-loss': l.id }, l.label);
    s.style.setProperty('--c', l.color);
    legend.append(s);
  }
  section.append(legend);

  // ---- parallel coordinates: searched parameters, then validation MAP@R --------------------
  const rows = losses.flatMap((l) => l.trials);
  const names: { name: string; log: boolean }[] = [];
  for (const l of losses) for (const d of l.space) if (!names.some((n) => n.name === d.name)) names.push({ ...d });
  // a parameter searched on a log scale by one loss and linearly by another: linear
  for (const n of names) n.log = losses.every((l) => l.space.every((d) => d.name !== n.name || d.log));
  const axes: AxisDef<TrialRow>[] = [
    ...names.map((n) => ({ key: `param.${n.name}`, title: n.name, log: n.log, value: (t: TrialRow) => t.params[n.name] ?? null })),
    { key: 'mapAtR', title: 'validation MAP@R %', value: (t) => t.mapAtR, format: (v) => pct(v) },
  ];
  const best = new Set(losses.map((l) => (l.final ? l.trials.find((t) => t.trial === l.final!.best.trial) : bestTrial(l.trials))).filter((t) => t !== undefined));
  const list = h('div', { 'data-testid': 'trial-list' });
  const showList = (inside: TrialRow[]): void => {
    clear(list);
    const b = brushesOf(f.id);
    const chosen = [...inside].sort((a, c) => (c.mapAtR ?? -1) - (a.mapAtR ?? -1));
    list.append(h('h3', {}, `${inside.length} of ${rows.length} trials in the brushes${b.size === 0 ? ' (drag along an axis to brush)' : ''}`));
    const ol = h('ol');
    for (const t of chosen.slice(0, 15)) ol.append(h('li', { 'data-trial': `${t.lossId}/${t.trial}` }, `${t.label} trial ${t.trial + 1} (${paramText(t.params)}): validation MAP@R ${pct(t.mapAtR)}`));
    list.append(ol);
  };
  if (rows.length === 0) section.append(message('no trial has a run folder yet'));
  else {
    const chart = parallelCoordinates<TrialRow>({
      rows,
      axes,
      id: (t) => `${t.lossId}/${t.trial}`,
      color: (t) => t.color,
      width: (t) => (best.has(t) ? 4 : 1.5),
      title: (t) => `${t.label} trial ${t.trial + 1}: ${paramText(t.params)}; validation MAP@R ${pct(t.mapAtR)}${t.mapAtR === null ? ` (${t.foldsDone} folds scored)` : ''}`,
      brushes: brushesOf(f.id),
      testid: 'sweep-trials',
      onBrush: showList,
    });
    section.append(h('div', { class: 'chart' }, h('h3', {}, 'Trials: searched parameters against validation MAP@R (thick: the best trial of each loss)'), chart), list);
  }

  // ---- best so far -------------------------------------------------------------------------
  const n = Math.max(planned, ...losses.flatMap((l) => l.trials.map((t) => t.trial + 1)));
  const curves = losses.map((l) => ({ l, best: bestSoFar(l.trials, n), each: Array.from({ length: n }, (_, i) => l.trials.find((t) => t.trial === i)?.mapAtR ?? null) }));
  const values = h('div', { class: 'legend', 'data-testid': 'best-so-far' });
  for (const c of curves) {
    const last = c.best.filter((v) => v !== null).at(-1);
    const s = h('span', { 'data-loss': c.l.id, 'data-values': c.best.map((v) => (v === null ? '' : String(v))).join(',') }, `${c.l.label}: best ${pct(last)}`);
    s.style.setProperty('--c', c.l.color);
    values.append(s);
  }
  const el = h('div', { class: 'chart' }, h('h3', {}, 'Best validation MAP@R so far (dots: each trial)'), values);
  section.append(el);
  if (n > 0 && rows.length > 0) {
    const series: uPlot.Series[] = [{ label: 'trial' }];
    const data: (number | null)[][] = [Array.from({ length: n }, (_, i) => i + 1)];
    for (const c of curves) {
      series.push({ label: `${c.l.label} best so far`, stroke: c.l.color, width: 2, spanGaps: true, points: { show: false } });
      data.push(c.best.map((v) => (v === null ? null : 100 * v)));
      series.push({ label: `${c.l.label} trials`, stroke: c.l.color, width: 0, paths: () => null, points: { show: true, size: 5, fill: c.l.color } });
      data.push(c.each.map((v) => (v === null ? null : 100 * v)));
    }
    charts.push(
      new uPlot(
        { width: 480, height: 240, series, legend: { show: false }, scales: { x: { time: false } }, axes: [{ label: 'trial', incrs: [1, 2, 5, 10, 20, 50, 100] }, { label: 'MAP@R %' }] },
        data as uPlot.AlignedData,
        el,
      ),
    );
  }

  // ---- chosen parameters and test measures ---------------------------------------------------
  const table = h('table', { class: 'runs chosen', 'data-testid': 'sweep-chosen' });
  // pair accuracy at the best threshold for every loss alike (a batch loss has no other)
  const cols = ['mapAtR', 'precisionAt1', 'rPrecision', 'knnAccuracy', 'bestAccuracy', 'auc'] as const;
  // the headers wrap to keep the table within 1280 px (style.css): a unit stays with its measure, R-precision whole
  const nb = (t: string): string => t.replaceAll(' %', '\u00a0%');
  const titles = ['test MAP@R %', 'P@1 %', 'R\u2011precision %', 'kNN acc. %', 'pair acc., best threshold %', 'AUC %'];
  const tips: Record<string, string> = { bestAccuracy: 'at the threshold that classifies the test-class pairs best (in-sample), every loss alike' };
  table.append(
    h('thead', {}, h('tr', {}, h('th', {}, 'loss'), h('th', {}, 'chosen parameters'), h('th', {}, 'trial'), h('th', { class: 'num' }, nb('validation MAP@R %')), ...titles.map((t, i) => h('th', { class: 'num', title: tips[cols[i]!] }, nb(t))), h('th', { class: 'num', title: 'the loss at its default parameters, same seeds' }, nb('defaults: MAP@R %')))),
  );
  const body = h('tbody');
  for (const l of losses) {
    const fin = l.final;
    const chosen = fin ? { trial: fin.best.trial, params: fin.best.params, mapAtR: fin.best.validation.mapAtR } : bestTrial(l.trials);
    const tr = h('tr', { 'data-loss': l.id }, h('td', {}, l.label), h('td', { 'data-col': 'params' }, chosen ? paramText(chosen.params) : '–'), h('td', { class: 'num' }, chosen ? String(chosen.trial + 1) : '–'));
    tr.append(h('td', { class: 'num', 'data-col': 'validation', 'data-value': chosen?.mapAtR ?? undefined }, pct(chosen?.mapAtR)));
    const measure = (m: { mean: number; ci95: number } | undefined, col: string): HTMLElement => {
      const at = { 'data-col': col, 'data-mean': m?.mean ?? undefined, 'data-ci': m?.ci95 ?? undefined };
      if (!m) return h('td', { class: 'num', ...at }, fin ? '–' : 'pending');
      if (!(m.ci95 > 0)) return h('td', { class: 'num', ...at }, pct(m.mean));
      const text = fractionWithCi(m.mean, m.ci95, '');
      if (!isClipped(m.mean, m.ci95)) return h('td', { class: 'num', ...at }, text);
      // a clipped interval, "97.00 (71.59 to 100)", is wider than "± 25.41": it may go under the
      // mean, whole, so that the table still fits 1280 px
      const cut = text.indexOf(' (');
      return h('td', { class: 'num wrap', ...at }, text.slice(0, cut + 1), h('span', { class: 'ci' }, text.slice(cut + 1)));
    };
    for (const c of cols) tr.append(measure(fin?.test[c], c));
    tr.append(measure(fin?.untuned.test.mapAtR, 'untunedMapAtR'));
    body.append(tr);
  }
  table.append(body);
  // the batch losses named only when the sweep has some (known once results.json is written)
  const batch = losses.filter((l) => l.final?.test.accuracyAt === 'best').map((l) => l.label);
  section.append(
    h('h3', {}, fin(losses) ? 'Chosen parameters, trained on all training classes and tested on the test classes' : 'Best parameters so far'),
    h('div', { class: 'scroll' }, table),
    h('p', { class: 'note', 'data-testid': 'sweep-chosen-note' }, `Test measures: mean ± 95% confidence interval (t distribution) over the final seeds, on classes no trial has seen; an interval that would pass 0 or 100% is shown clipped to it, as (low to high). Validation MAP@R is not comparable with test MAP@R: it is measured on the few training classes a fold holds out, test MAP@R on all the test classes, and MAP@R is higher with fewer classes. Pair accuracy is at the threshold that classifies the test-class pairs best (in-sample), ${bestThresholdWords(batch)}.`),
  );
}

/** Once the final trainings (tuned and default parameters, each over the seeds) have begun: how many ended. */
function finalProgress(f: FolderView): string {
  const runs = state.runs.filter((r) => r.folder === f.id && (r.sweep?.kind === 'tuned' || r.sweep?.kind === 'default'));
  if (runs.length === 0 || !f.outline) return '';
  const ended = runs.filter((r) => r.status === 'finished' || r.status === 'failed').length;
  return `; final trainings: ${ended} of ${sweepFinalTrainings(f.outline)} ended`;
}

const fin = (losses: readonly LossTrials[]): boolean => losses.some((l) => l.final);

/** Parallel coordinates of served runs outside sweeps: loss parameters, seed and measures. */
function renderRunsChart(root: HTMLElement, runs: readonly RunInfo[]): void {
  const paramKeys = [...new Set(runs.flatMap((r) => Object.entries(r.params).filter(([, v]) => typeof v === 'number').map(([k]) => k)))].sort();
  // a batch loss's pair and test accuracy are at its best threshold: the axes' titles say so when both kinds are drawn
  const mixed = runs.some((r) => r.pairAccuracyAt === 'best') && runs.some((r) => r.pairAccuracyAt === 'threshold');
  const atBest = mixed ? ' (batch losses: best threshold)' : '';
  const axes: AxisDef<RunInfo>[] = [
    ...paramKeys.map((k) => ({ key: `param.${k}`, title: k, value: (r: RunInfo) => (typeof r.params[k] === 'number' ? (r.params[k] as number) : null) })),
    { key: 'seed', title: 'seed', value: (r) => r.seed, format: (v) => v.toFixed(0) },
    { key: 'pairAccuracy', title: `pair acc. %${atBest}`, value: (r) => r.pairAccuracy, format: (v) => pct(v) },
    { key: 'mapAtR', title: 'MAP@R %', value: (r) => r.mapAtR, format: (v) => pct(v) },
    { key: 'testAccuracy', title: `test acc. %${atBest}`, value: (r) => r.testAccuracy, format: (v) => pct(v) },
  ];
  const color = new Map<string, string>();
  for (const g of groups(runs)) for (const r of g.runs) color.set(r.id, colorOf(g.color));
  const out = h('div', { 'data-testid': 'sweep-list' });
  const list = (inside: RunInfo[]): void => {
    const chosen = [...inside].sort((a, b) => (b.mapAtR ?? -1) - (a.mapAtR ?? -1) || (b.pairAccuracy ?? -1) - (a.pairAccuracy ?? -1));
    clear(out);
    out.append(h('h2', {}, `${chosen.length} of ${runs.length} runs in the brushes${brushesOf('runs').size === 0 ? ' (drag along an axis to brush)' : ''}`));
    const ol = h('ol');
    for (const r of chosen.slice(0, 20)) {
      const params = Object.entries(r.params)
        .map(([k, v]) => `${k}=${String(v)}`)
        .join(', ');
      ol.append(h('li', { 'data-run': r.id }, `${r.label} seed ${r.seed ?? '?'}${params ? ` (${params})` : ''}: MAP@R ${pct(r.mapAtR)}, pair acc. ${pct(r.pairAccuracy)}${r.pairAccuracyAt === 'best' ? ' (at its best threshold: a batch loss)' : ''}`));
    }
    out.append(ol);
  };
  const chart = parallelCoordinates<RunInfo>({ rows: runs, axes, id: (r) => r.id, color: (r) => color.get(r.id)!, brushes: brushesOf('runs'), testid: 'sweep', onBrush: list });
  const legend = h('div', { class: 'legend' });
  for (const g of groups(runs)) {
    const s = h('span', {}, g.label);
    s.style.setProperty('--c', colorOf(g.color));
    legend.append(s);
  }
  root.append(legend, h('div', { class: 'chart' }, chart), out);
}
