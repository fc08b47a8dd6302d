/**
 * Distances: histograms of the test pair distances (positive and negative pairs) per loss,
 * pooled over seeds or for one seed. Runs that record them per epoch (distances.jsonl) get an
 * epoch slider; while it stands at the newest epoch it follows the epochs training appends. A
 * compare folder whose runs have no such file (older runs, or results.json alone) shows the
 * final distances of its results.json.
 */
import uPlot from 'uplot';
import { clear, colorOf, fixed, h, message } from './dom.ts';
import { densityHistogram, finalMeans, finalRange, occupiedRange, type Pooled, poolHistograms } from './histPool.ts';
import { type CompareResults, type EpochDistances, groups, type RunInfo, state } from './state.ts';

const BINS = 40;
const count = (lists: readonly (readonly number[])[]): number => lists.reduce((s, l) => s + l.length, 0);
let charts: uPlot[] = [];
/** per section (a compare folder's id, or '' for stand-alone runs): the seed shown, 'all' = pooled */
const seedChoice = new Map<string, string>();
/** per section: the epoch chosen on the slider; absent = the newest, following new epochs */
const epochChoice = new Map<string, number>();

export function renderDistances(root: HTMLElement): void {
  for (const c of charts) c.destroy();
  charts = [];
  clear(root);
  const sections: { key: string; title: string; runs: RunInfo[] }[] = [];
  // a sweep's trial runs are many and differ by their parameters: its final runs only (the
  // trials' numbers are in the Sweep view); its results.json holds no distances
  const shown = (r: RunInfo): boolean => r.distances && r.sweep?.kind !== 'trial';
  for (const f of state.folders) {
    const runs = state.runs.filter((r) => r.folder === f.id && shown(r));
    if (runs.length > 0 || (f.kind !== 'sweep' && (f.results || f.message))) sections.push({ key: f.id, title: f.path, runs });
  }
  const alone = state.runs.filter((r) => r.folder === null && shown(r));
  if (alone.length > 0) sections.push({ key: '', title: 'runs', runs: alone });
  if (sections.length === 0) {
    root.append(message('no distances in the served folders yet: training records them after each epoch (distances.jsonl), and a finished compare holds the final ones (results.json)'));
    return;
  }
  for (const s of sections) {
    root.append(h('h2', {}, s.title));
    if (s.runs.length > 0) drawEpochs(root, s.key, s.runs);
    else drawResults(root, s.key);
  }
}

function seedSelect(root: HTMLElement, key: string, seeds: (number | null)[]): HTMLSelectElement {
  const select = h('select', { 'aria-label': 'seed', 'data-section': key }, h('option', { value: 'all' }, 'all seeds pooled'), ...seeds.map((s) => h('option', { value: String(s) }, `seed ${s ?? '?'}`)));
  select.value = seedChoice.get(key) ?? 'all';
  select.addEventListener('change', () => {
    seedChoice.set(key, select.value);
    renderDistances(root);
  });
  return select;
}

// ---- per epoch, from distances.jsonl ---------------------------------------------------------

interface EpochChart {
  el: HTMLElement;
  note: HTMLElement;
  plot: uPlot;
  byEpoch: Map<number, Pooled>;
  /** bins drawn: up to the last one any epoch fills */
  shown: number;
  seeds: number;
}

function drawEpochs(root: HTMLElement, key: string, runs: RunInfo[]): void {
  for (const r of runs) for (const m of state.distances.get(r.id)?.messages ?? []) root.append(message(`${r.path}: ${m}`));
  const seeds = [...new Set(runs.map((r) => r.seed))].sort((a, b) => (a ?? -1) - (b ?? -1));
  const choice = seedChoice.get(key) ?? 'all';
  const shown = runs.filter((r) => choice === 'all' || String(r.seed) === choice);
  const linesOf = (r: RunInfo): EpochDistances[] => state.distances.get(r.id)?.epochs ?? [];
  const epochs = [...new Set(shown.flatMap((r) => linesOf(r).map((l) => l.epoch)))].sort((a, b) => a - b);
  const select = seedSelect(root, key, seeds);
  if (epochs.length === 0) {
    const coming = shown.some((r) => !state.distances.has(r.id));
    root.append(h('div', { class: 'controls' }, select), h('p', { class: 'note' }, coming ? 'loading the histograms…' : 'no epoch recorded yet: the histograms appear when the first epoch has finished'));
    return;
  }
  const wanted = epochChoice.get(key);
  // the chosen epoch, or the last one before it when this seed choice lacks it
  let idx = epochs.length - 1;
  if (wanted !== undefined) while (idx > 0 && epochs[idx]! > wanted) idx--;
  const slider = h('input', { type: 'range', min: 0, max: epochs.length - 1, step: 1, 'aria-label': 'epoch', 'data-testid': 'epoch-slider' });
  slider.value = String(idx);
  const label = h('span', { 'data-testid': 'epoch-label' });
  root.append(
    h(
      'div',
      { class: 'controls' },
      select,
      h('label', { class: 'slider' }, 'epoch ', slider, label),
      h('span', { class: 'note' }, 'test pair distances after each epoch (distances.jsonl); share of each side\'s pairs per bin'),
    ),
  );
  const box = h('div', { class: 'charts', 'data-testid': 'distances-epochs' });
  root.append(box);
  const made: EpochChart[] = groups(shown).map((g) => {
    const lines = g.runs.flatMap(linesOf);
    const range = Math.max(...lines.map((l) => l.dmax));
    const byEpoch = new Map<number, Pooled>();
    for (const e of epochs) {
      const p = poolHistograms(lines.filter((l) => l.epoch === e), range);
      if (p) byEpoch.set(e, p);
    }
    const pooled = [...byEpoch.values()];
    const width = range / (pooled[0]?.bins ?? 1);
    const bins = Math.max(1, Math.min(pooled[0]?.bins ?? 1, Math.ceil(occupiedRange(pooled) / width - 1e-9)));
    // one y range for every epoch, so that heights compare as the slider moves
    const top = Math.max(1e-9, ...pooled.flatMap((p) => [p.pos, p.neg].flatMap((s) => s.counts.map((c) => (s.n > 0 ? c / s.n : 0)))));
    const note = h('div', { class: 'note' });
    const el = h('div', { class: 'chart', 'data-group': g.key, 'data-loss': g.runs[0]!.group }, h('h3', {}, g.label), note);
    box.append(el);
    const stepped = uPlot.paths.stepped!({ align: 1 });
    const x = Array.from({ length: bins + 1 }, (_, i) => i * width);
    const plot = new uPlot(
      {
        width: 360,
        height: 200,
        series: [
          { label: 'D' },
          { label: 'positive pairs', stroke: colorOf(g.color), fill: 'rgba(0,0,0,0.04)', paths: stepped, points: { show: false } },
          { label: 'negative pairs', stroke: '#888', dash: [4, 3], paths: stepped, points: { show: false } },
        ],
        scales: { x: { time: false }, y: { range: [0, top * 1.05] } },
        axes: [{ label: 'distance D' }, {}],
      },
      [x, x.map(() => 0), x.map(() => 0)],
      el,
    );
    charts.push(plot);
    return { el, note, plot, byEpoch, shown: bins, seeds: g.runs.length };
  });

  const show = (i: number): void => {
    const e = epochs[i]!;
    label.textContent = `${e} (${i + 1} of ${epochs.length})`;
    for (const c of made) {
      const p = c.byEpoch.get(e);
      const share = (s: Pooled['pos'] | undefined): number[] => [...Array.from({ length: c.shown }, (_, k) => (s && s.n > 0 ? s.counts[k]! / s.n : 0)), 0];
      c.plot.setData([c.plot.data[0], share(p?.pos), share(p?.neg)]);
      c.el.dataset['epoch'] = String(e);
      c.el.dataset['pos'] = p ? p.pos.counts.join(',') : '';
      c.el.dataset['neg'] = p ? p.neg.counts.join(',') : '';
      c.el.dataset['posOver'] = p ? String(p.pos.over) : '';
      c.el.dataset['negOver'] = p ? String(p.neg.over) : '';
      if (!p) {
        c.note.textContent = `epoch ${e}: not recorded for this loss`;
        continue;
      }
      const parts = [`epoch ${e}: positives mean ${fixed(p.pos.mean, 3)} (${p.pos.n}), negatives mean ${fixed(p.neg.mean, 3)} (${p.neg.n})`];
      if (p.pos.over + p.neg.over > 0) parts.push(`${p.pos.over + p.neg.over} beyond D = ${p.dmax}`);
      if (p.runs < c.seeds) parts.push(`${p.runs} of ${c.seeds} seeds at this epoch`);
      if (p.narrowOver > 0) parts.push(`${p.narrowOver} of them beyond a narrower seed's range`);
      if (p.skipped > 0) parts.push(`${p.skipped} seeds on another grid left out`);
      c.note.textContent = parts.join('; ');
    }
  };
  slider.addEventListener('input', () => {
    const i = Number(slider.value);
    // at the right end the slider follows the epochs still to come
    if (i === epochs.length - 1) epochChoice.delete(key);
    else epochChoice.set(key, epochs[i]!);
    show(i);
  });
  show(idx);
}

// ---- final, from results.json ----------------------------------------------------------------

function drawResults(root: HTMLElement, key: string): void {
  const r = state.results.get(key);
  if (!r) {
    root.append(h('p', { class: 'note' }, 'loading results.json…'));
    return;
  }
  if (!r.ok) {
    root.append(message(`results.json: ${r.message}`));
    return;
  }
  if (r.kind === 'compare') drawFolder(root, key, r.results);
}

function drawFolder(root: HTMLElement, key: string, res: CompareResults): void {
  const seeds = [...new Set(res.runs.map((r) => r.seed))].sort((a, b) => a - b);
  const choice = seedChoice.get(key) ?? 'all';
  root.append(h('div', { class: 'controls' }, seedSelect(root, key, seeds), h('span', { class: 'note' }, 'final test pair distances (results.json); density per unit distance')));
  const runs = res.runs.filter((r) => choice === 'all' || String(r.seed) === choice);
  const max = finalRange(runs.map((r) => r.distances));
  const x = Array.from({ length: BINS }, (_, i) => (i * max) / BINS);
  const box = h('div', { class: 'charts', 'data-testid': 'distances' });
  root.append(box);
  res.spec.losses.forEach((l, li) => {
    const mine = runs.filter((r) => r.lossId === l.id);
    if (mine.length === 0) return;
    const pos = mine.map((r) => r.distances.pos);
    const neg = mine.map((r) => r.distances.neg);
    const m = finalMeans(mine);
    const dens = [densityHistogram(pos, max, BINS), densityHistogram(neg, max, BINS)];
    // the drawn densities and range, for a check against results.json
    const el = h(
      'div',
      { class: 'chart', 'data-loss': l.id, 'data-max': max, 'data-pos': dens[0]!.join(','), 'data-neg': dens[1]!.join(',') },
      h('h3', {}, l.label),
      h('div', { class: 'note' }, `positives: mean ${fixed(m.pos, 3)}, negatives: mean ${fixed(m.neg, 3)} (${count(pos)} + ${count(neg)} pairs)`),
    );
    box.append(el);
    const stepped = uPlot.paths.stepped!({ align: 1 });
    charts.push(
      new uPlot(
        {
          width: 360,
          height: 200,
          series: [
            { label: 'D' },
            { label: 'positive pairs', stroke: colorOf(li), fill: 'rgba(0,0,0,0.04)', paths: stepped, points: { show: false } },
            { label: 'negative pairs', stroke: '#888', dash: [4, 3], paths: stepped, points: { show: false } },
          ],
          scales: { x: { time: false } },
          axes: [{ label: 'distance D' }, {}],
        },
        [x, dens[0]!, dens[1]!],
        el,
      ),
    );
  });
}
