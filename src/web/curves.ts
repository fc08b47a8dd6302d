/**
 * Curves view, live: loss, train and test accuracy per epoch, one line per loss (mean over its
 * seeds) with a band (mean ± 95% CI), or one line per seed. Redrawn in place (uPlot setData)
 * when an event brings a new epoch; the charts are rebuilt only when the set of lines changes.
 * It asks for the logs of the runs it draws, and for those alone (a sweep's trials once ticked).
 */
import uPlot from 'uplot';
import { alpha, clear, colorOf, h, message } from './dom.ts';
import { needLogs } from './logs.ts';
import { boundedInterval } from '../viz/ciText.ts';
import { epochsOf, groups, meanCi, type RunInfo, state } from './state.ts';

type Metric = 'loss' | 'trainAccuracy' | 'testAccuracy';
const METRICS: { key: Metric; title: string }[] = [
  { key: 'loss', title: 'training loss' },
  { key: 'trainAccuracy', title: 'train accuracy (dropout on)' },
  { key: 'testAccuracy', title: 'test pair accuracy' },
];

let perSeed = false;
/** a sweep's trial runs (a group per trial: dozens of lines) are drawn only on request */
let showTrials = false;

/** the runs drawn: all, or all but sweep trials */
const drawn = (): RunInfo[] => (showTrials ? state.runs : state.runs.filter((r) => r.sweep?.kind !== 'trial'));
let charts: uPlot[] = [];
let layoutKey = '';

interface Line {
  /** the group (loss entry) it belongs to */
  group: string;
  label: string;
  color: string;
  /** per epoch 1..E: the line and, for group means, its band */
  values: (number | null)[][];
  band: boolean;
}

function lines(metric: Metric, maxEpoch: number): Line[] {
  const out: Line[] = [];
  for (const g of groups(drawn())) {
    const color = colorOf(g.color);
    const per = g.runs.map((r) => {
      const byEpoch = new Map(epochsOf(r).map((e) => [e.epoch, e[metric]]));
      return Array.from({ length: maxEpoch }, (_, i) => {
        const v = byEpoch.get(i + 1);
        return v !== undefined && Number.isFinite(v) ? v : null;
      });
    });
    if (perSeed) {
      g.runs.forEach((r, i) => out.push({ group: g.key, label: `${g.label} seed ${r.seed ?? '?'}`, color, values: [per[i]!], band: false }));
    } else {
      const mean: (number | null)[] = [];
      const lo: (number | null)[] = [];
      const hi: (number | null)[] = [];
      for (let e = 0; e < maxEpoch; e++) {
        const s = meanCi(per.map((p) => p[e] ?? null));
        mean.push(s.n > 0 ? s.mean : null);
        const ci = Number.isFinite(s.ci) ? s.ci : 0;
        // an accuracy's band stays within [0, 1] (with few seeds mean ± half-width can pass it), as in the report
        const iv = metric === 'loss' ? { lo: s.mean - ci, hi: s.mean + ci } : boundedInterval(s.mean, ci);
        lo.push(s.n > 0 ? iv.lo : null);
        hi.push(s.n > 0 ? iv.hi : null);
      }
      out.push({ group: g.key, label: `${g.label} (${g.runs.length} seed${g.runs.length === 1 ? '' : 's'})`, color, values: [mean, hi, lo], band: true });
    }
  }
  return out;
}

function chartData(metric: Metric, maxEpoch: number): { data: uPlot.AlignedData; ls: Line[] } {
  const ls = lines(metric, maxEpoch);
  const x = Array.from({ length: maxEpoch }, (_, i) => i + 1);
  return { data: [x, ...ls.flatMap((l) => l.values)] as uPlot.AlignedData, ls };
}

export function renderCurves(root: HTMLElement): void {
  const runs = drawn();
  needLogs(runs);
  const maxEpoch = Math.max(0, ...runs.map((r) => Math.max(0, ...epochsOf(r).map((e) => e.epoch))));
  const key = `${perSeed}|${runs.map((r) => `${r.group}:${r.id}`).join(',')}|${maxEpoch > 0}`;
  if (key === layoutKey && charts.length === METRICS.length) {
    const all = METRICS.map((m) => chartData(m.key, maxEpoch));
    all.forEach((c, i) => charts[i]!.setData(c.data));
    updateLegend(root, all.map((c) => c.ls));
    return;
  }
  for (const c of charts) c.destroy();
  charts = [];
  layoutKey = key;
  clear(root);
  const toggle = h('input', { type: 'checkbox', id: 'per-seed' });
  toggle.checked = perSeed;
  toggle.addEventListener('change', () => {
    perSeed = toggle.checked;
    renderCurves(root);
  });
  const controls = h('div', { class: 'controls' }, h('label', {}, toggle, ' one line per seed (otherwise: mean over seeds with its 95% CI band)'));
  const trials = state.runs.filter((r) => r.sweep?.kind === 'trial').length;
  if (trials > 0) {
    const t = h('input', { type: 'checkbox', id: 'sweep-trials' });
    t.checked = showTrials;
    t.addEventListener('change', () => {
      showTrials = t.checked;
      renderCurves(root);
    });
    controls.append(h('label', {}, t, ` the sweeps' trials too (${trials} runs, a line per trial)`));
  }
  root.append(controls);
  if (maxEpoch === 0) {
    // the table counts epochs whose lines are on their way: no "none yet" meanwhile
    const coming = runs.filter((r) => r.epochsDone > 0 && !r.history && !state.logs.has(r.id)).length;
    root.append(message(coming > 0 ? `loading the logs of ${coming} run${coming === 1 ? '' : 's'}…` : 'no epoch logged yet: the curves appear with the first finished epoch'));
    return;
  }
  root.append(h('div', { class: 'legend', 'data-testid': 'curves-legend' }));
  const box = h('div', { class: 'charts' });
  root.append(box);
  const all = METRICS.map((m) => chartData(m.key, maxEpoch));
  for (const [mi, m] of METRICS.entries()) {
    const { data, ls } = all[mi]!;
    const series: uPlot.Series[] = [{ label: 'epoch' }];
    const bands: uPlot.Band[] = [];
    for (const l of ls) {
      series.push({ label: l.label, stroke: l.color, width: l.band ? 2 : 1, spanGaps: true, points: { show: maxEpoch <= 30 } });
      if (l.band) {
        const hiIdx = series.length;
        series.push({ label: `${l.label} upper`, stroke: 'transparent', spanGaps: true, points: { show: false } });
        series.push({ label: `${l.label} lower`, stroke: 'transparent', spanGaps: true, points: { show: false } });
        bands.push({ series: [hiIdx, hiIdx + 1], fill: alpha(l.color, 0.18) });
      }
    }
    // a batch loss's accuracies are at its best threshold (no distance scale): said where both kinds share a chart
    const mixed = m.key !== 'loss' && runs.some((r) => r.pairAccuracyAt === 'best') && runs.some((r) => r.pairAccuracyAt === 'threshold');
    const note = mixed ? ` (${groups(runs).filter((g) => g.runs[0]!.pairAccuracyAt === 'best').map((g) => g.label).join(', ')}: at the best threshold, the others at D < threshold)` : '';
    const el = h('div', { class: 'chart', 'data-metric': m.key }, h('h3', {}, m.title + note));
    box.append(el);
    charts.push(
      new uPlot(
        {
          width: 440,
          height: 240,
          series,
          bands,
          legend: { show: false },
          scales: { x: { time: false } },
          axes: [{ label: 'epoch', incrs: [1, 2, 5, 10, 20, 50, 100, 200, 500] }, {}],
        },
        data,
        el,
      ),
    );
  }
  updateLegend(root, all.map((c) => c.ls));
}

/**
 * A span per group: its runs and latest epoch, and (data-curve-loss, -trainaccuracy,
 * -testaccuracy) the values its line(s) are drawn with, epoch 1 first, lines apart by ";".
 */
function updateLegend(root: HTMLElement, drawnLines: Line[][]): void {
  const legend = root.querySelector<HTMLElement>('[data-testid=curves-legend]');
  if (!legend) return;
  clear(legend);
  for (const g of groups(drawn())) {
    const last = Math.max(0, ...g.runs.map((r) => Math.max(0, ...epochsOf(r).map((e) => e.epoch))));
    const s = h('span', { 'data-group': g.key, 'data-epochs': last }, `${g.label}: ${g.runs.length} run${g.runs.length === 1 ? "" : "s"}, latest epoch ${last}`);
    METRICS.forEach((m, i) => {
      const mine = drawnLines[i]!.filter((l) => l.group === g.key);
      s.setAttribute(`data-curve-${m.key.toLowerCase()}`, mine.map((l) => l.values[0]!.map((v) => (v === null ? '' : String(v))).join(',')).join(';'));
    });
    s.style.setProperty('--c', colorOf(g.color));
    legend.append(s);
  }
}
