/**
 * The runs view's columns (web/runs.ts): what each shows of a run, and a group's mean ± 95% CI in
 * the column's unit. No DOM, so that tests run it in Node as the page does.
 */
import { fractionWithCi } from '../viz/ciText.ts';
import { duration, fixed, pct } from './numbers.ts';
import { meanCi, type RunInfo } from './state.ts';

export interface Column {
  key: string;
  title: string;
  /** numeric columns: the value, how to print it, and which end is best */
  value?: (r: RunInfo) => number | null;
  show?: (x: number | null) => string;
  better?: 'max' | 'min';
  text?: (r: RunInfo) => string;
  /** the column's values follow the run's accuracy convention: best marks only among runs of one */
  byConvention?: boolean;
  /** a fraction shown in percent: a group's interval is clipped to [0, 100] */
  percent?: boolean;
}

/** A group's mean ± CI in a numeric column's own unit: a percent column's CI in points, a time's in seconds. */
export function statText(c: Column, s: { mean: number; ci: number }): string {
  const show = c.show!;
  // a percent column's interval clipped to [0, 100] where mean ± half-width would pass it (ciText.ts)
  if (c.percent && Number.isFinite(s.mean)) return fractionWithCi(s.mean, s.ci, '');
  return show(s.mean) + (Number.isFinite(s.ci) ? ` ± ${show === duration ? `${s.ci.toFixed(1)} s` : show(s.ci)}` : '');
}

/** The text of a group row's cell in the column `key`, for these runs' values (meanCi). */
export function groupCellText(key: string, values: readonly (number | null)[]): string {
  const c = COLUMNS.find((x) => x.key === key);
  if (!c?.show) throw new Error(`no numeric column ${key}`);
  const s = meanCi(values);
  return s.n > 0 ? statText(c, s) : '–';
}

/** how a batch loss's pair accuracy is marked: at its best threshold, not at D < threshold */
export const AT_BEST = ' ᵇ';
export const AT_BEST_TIP = 'at the best threshold on the test pairs (in-sample): a batch loss has no absolute distance scale; not comparable with the others\' D < threshold';

const paramsText = (r: RunInfo): string =>
  Object.entries(r.params)
    .filter(([, v]) => v !== undefined)
    .map(([k, v]) => `${k}=${String(v)}`)
    .join(', ');

export const COLUMNS: Column[] = [
  // a sweep trial's runs are its folds (all seed 0): the fold tells them apart
  { key: 'label', title: 'loss', text: (r) => (r.sweep?.kind === 'trial' ? `${r.label} · fold ${r.sweep.fold + 1}` : r.label) },
  { key: 'params', title: 'parameters', text: paramsText },
  { key: 'seed', title: 'seed', value: (r) => r.seed, show: (x) => fixed(x, 0) },
  { key: 'status', title: 'status', text: (r) => r.status },
  { key: 'epoch', title: 'epoch', text: (r) => `${r.epochsDone}/${r.epochs ?? '?'}` },
  { key: 'pairAccuracy', title: 'pair acc. %', value: (r) => r.pairAccuracy, show: (x) => pct(x), percent: true, better: 'max', byConvention: true },
  { key: 'mapAtR', title: 'MAP@R %', value: (r) => r.mapAtR, show: (x) => pct(x), percent: true, better: 'max' },
  { key: 'testAccuracy', title: 'test acc. %', value: (r) => r.testAccuracy, show: (x) => pct(x), percent: true, better: 'max', byConvention: true },
  { key: 'lastLoss', title: 'loss', value: (r) => r.lastLoss, show: (x) => fixed(x, 4), better: 'min' },
  { key: 'pairsPerSecond', title: 'pairs/s', value: (r) => r.pairsPerSecond, show: (x) => fixed(x, 0), better: 'max' },
  { key: 'seconds', title: 'time', value: (r) => r.seconds, show: duration, better: 'min' },
];
