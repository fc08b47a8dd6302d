/**
 * Distances: histograms of the test pair distances (positive and negative pairs) per loss,
 * pooled over seeds or for one seed, from a compare folder's results.json. Training does not
 * record per-epoch distances yet, so there is no epoch slider: these are the final distances.
 */
import uPlot from 'uplot';
import { clear, colorOf, fixed, h, message } from './dom.ts';
import { type CompareResults, state } from './state.ts';

const BINS = 40;
let charts: uPlot[] = [];
let seedChoice = 'all';

function histogram(values: readonly number[], max: number): number[] {
  const counts = new Array<number>(BINS).fill(0);
  for (const v of values) counts[Math.min(BINS - 1, Math.max(0, Math.floor((v / max) * BINS)))]! += 1;
  // density, so positive and negative samples of different sizes compare
  const width = max / BINS;
  return counts.map((c) => (values.length > 0 ? c / (values.length * width) : 0));
}

export function renderDistances(root: HTMLElement): void {
  for (const c of charts) c.destroy();
  charts = [];
  clear(root);
  // a sweep's results.json holds no distances: its numbers are in the Sweep view
  const folders = state.folders.filter((f) => f.kind !== 'sweep' && (f.results || f.message));
  if (folders.length === 0) {
    root.append(message('no results.json in the served folders: the distances of a compare appear when it has finished'));
    return;
  }
  for (const f of folders) {
    const r = state.results.get(f.id);
    root.append(h('h2', {}, f.path));
    if (!r) {
      root.append(h('p', { class: 'note' }, 'loading results.json…'));
      continue;
    }
    if (!r.ok) {
      root.append(message(`results.json: ${r.message}`));
      continue;
    }
    if (r.kind === 'compare') drawFolder(root, r.results);
  }
}

function drawFolder(root: HTMLElement, res: CompareResults): void {
  const seeds = [...new Set(res.runs.map((r) => r.seed))].sort((a, b) => a - b);
  const select = h('select', { 'aria-label': 'seed' }, h('option', { value: 'all' }, 'all seeds pooled'), ...seeds.map((s) => h('option', { value: String(s) }, `seed ${s}`)));
  select.value = seedChoice;
  select.addEventListener('change', () => {
    seedChoice = select.value;
    renderDistances(root);
  });
  root.append(h('div', { class: 'controls' }, select, h('span', { class: 'note' }, 'final test pair distances (results.json); density per unit distance')));
  const runs = res.runs.filter((r) => seedChoice === 'all' || String(r.seed) === seedChoice);
  const max = Math.max(1e-9, ...runs.flatMap((r) => [...r.distances.pos, ...r.distances.neg]).filter(Number.isFinite)) * 1.0001;
  const x = Array.from({ length: BINS }, (_, i) => (i * max) / BINS);
  const box = h('div', { class: 'charts', 'data-testid': 'distances' });
  root.append(box);
  res.spec.losses.forEach((l, li) => {
    const mine = runs.filter((r) => r.lossId === l.id);
    if (mine.length === 0) return;
    const pos = mine.flatMap((r) => r.distances.pos);
    const neg = mine.flatMap((r) => r.distances.neg);
    const s = res.summary.find((x) => x.lossId === l.id);
    const el = h(
      'div',
      { class: 'chart', 'data-loss': l.id },
      h('h3', {}, l.label),
      h('div', { class: 'note' }, `positives: mean ${fixed(s?.posMean.mean, 3)}, negatives: mean ${fixed(s?.negMean.mean, 3)} (${pos.length} + ${neg.length} pairs)`),
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
        [x, histogram(pos, max), histogram(neg, max)],
        el,
      ),
    );
  });
}
