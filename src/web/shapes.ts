/**
 * Loss shapes: V_pos(D) and V_neg(D) of every loss in the served folders (from results.json, or
 * asked from the server for runs without one), and a playground: pick a loss, move its
 * parameters' sliders or type custom potentials; the server samples them with the project's own
 * loss code and safe formula parser (/api/shape), so the page never evaluates a formula itself.
 */
import uPlot from 'uplot';
import { clear, colorOf, h, message } from './dom.ts';
import { getJson, groups, state } from './state.ts';

interface Shape {
  label: string;
  d: number[];
  pos: number[];
  neg: number[];
}
interface LossInfo {
  name: string;
  description: string;
  params: Record<string, unknown>;
}

/** singular potentials (1/D at 0) would flatten the rest: the y axis stops here, as the report's chart does */
const CAP = 4.2;
const fetched = new Map<string, Shape | string>();
let losses: LossInfo[] | null = null;
let play: { name: string; params: Record<string, string>; shape: Shape | null; error: string | null } = { name: 'yukawa', params: {}, shape: null, error: null };
let charts: uPlot[] = [];
let timer: number | undefined;

function specOf(loss: string, params: Record<string, unknown>): string {
  const kv = Object.entries(params)
    .filter(([, v]) => v !== undefined && v !== null && typeof v !== 'object')
    .map(([k, v]) => `${k}=${String(v)}`);
  return kv.length > 0 ? `${loss}:${kv.join(';')}` : loss;
}

async function shapeOf(spec: string): Promise<Shape | string> {
  const r = await fetch(`/api/shape?spec=${encodeURIComponent(spec)}`);
  if (!r.ok) return `HTTP ${r.status}`;
  const body = (await r.json()) as Shape & { error?: string };
  return body.error ?? body;
}

/** The shapes to draw: results.json's, else one per group of served runs. */
function knownShapes(): { shapes: Shape[]; pending: string[]; errors: string[] } {
  const shapes: Shape[] = [];
  const pending: string[] = [];
  const errors: string[] = [];
  const covered = new Set<string>();
  for (const f of state.folders) {
    const r = state.results.get(f.id);
    if (r?.ok && r.kind === 'compare') {
      for (const s of r.results.lossShapes) shapes.push(s);
      covered.add(f.id);
    }
  }
  for (const g of groups(state.runs)) {
    const run = g.runs[0]!;
    if (run.folder && covered.has(run.folder)) continue;
    // a sweep's trials would be one shape each (hundreds): its tuned and default runs stand for it
    if (run.sweep?.kind === 'trial') continue;
    const spec = specOf(run.loss, run.params);
    const got = fetched.get(spec);
    if (got === undefined) pending.push(spec);
    else if (typeof got === 'string') errors.push(`${g.label}: ${got}`);
    else shapes.push({ ...got, label: g.label });
  }
  return { shapes, pending, errors };
}

export function renderShapes(root: HTMLElement): void {
  const { shapes, pending, errors } = knownShapes();
  if (pending.length > 0) {
    void Promise.all(pending.map(async (s) => fetched.set(s, await shapeOf(s).catch((e: Error) => e.message)))).then(() => renderShapes(root));
  }
  if (losses === null) {
    losses = [];
    void getJson<{ losses: LossInfo[] }>('/api/losses').then((r) => {
      losses = r.losses;
      renderShapes(root);
      update(root);
    });
  }
  // a slider being dragged or a formula being typed survives the redraw (an epoch may arrive meanwhile)
  const old = root.querySelector('[data-testid=playground]');
  const keep = old && document.activeElement instanceof HTMLInputElement && old.contains(document.activeElement) ? old : null;
  for (const c of charts) c.destroy();
  charts = [];
  clear(root);
  for (const e of errors) root.append(message(e));
  root.append(keep ?? playground(root));
  if (play.error) root.append(message(`playground: ${play.error}`));
  const all = play.shape ? [...shapes, { ...play.shape, label: `playground: ${play.shape.label}` }] : shapes;
  if (all.length === 0) {
    root.append(message('no losses to draw yet'));
    return;
  }
  const legend = h('div', { class: 'legend', 'data-testid': 'shapes-legend' });
  all.forEach((s, i) => {
    const isPlay = play.shape !== null && i === all.length - 1;
    const item = h('span', {}, isPlay ? `playground: ${play.name} (dashed)` : s.label);
    item.style.setProperty('--c', isPlay ? '#000' : colorOf(i));
    legend.append(item);
  });
  root.append(legend);
  const box = h('div', { class: 'charts', 'data-testid': 'shapes' });
  root.append(box);
  // each shape has its own D grid (results.json's and the server's may differ): uPlot.join aligns them
  const joined = uPlot.join(all.map((s) => [s.d, s.pos, s.neg] as uPlot.AlignedData));
  for (const [which, title] of [
    [0, 'V_pos(D): pull between positive pairs'],
    [1, 'V_neg(D): push between negative pairs'],
  ] as const) {
    const series: uPlot.Series[] = [{ label: 'D' }];
    const cols: (number | null | undefined)[][] = [joined[0] as number[]];
    all.forEach((s, i) => {
      const isPlay = play.shape !== null && i === all.length - 1;
      series.push({ label: s.label, stroke: isPlay ? '#000' : colorOf(i), width: 2, dash: isPlay ? [6, 4] : undefined, spanGaps: true, points: { show: false } });
      cols.push(joined[1 + 2 * i + which] as (number | null | undefined)[]);
    });
    const el = h('div', { class: 'chart' }, h('h3', {}, title));
    box.append(el);
    charts.push(new uPlot({ width: 440, height: 260, series, scales: { x: { time: false }, y: { range: (_u, lo, hi) => [Math.min(0, lo), Math.min(Math.max(hi, 0.1), CAP)] } }, axes: [{ label: 'D' }, {}], legend: { show: false } }, cols as uPlot.AlignedData, el));
  }
}

function playground(root: HTMLElement): HTMLElement {
  const box = h('div', { class: 'controls', 'data-testid': 'playground' }, h('strong', {}, 'Playground'));
  const select = h('select', { 'aria-label': 'loss' });
  for (const l of losses ?? []) {
    const o = h('option', { value: l.name, title: l.description }, l.name);
    o.selected = l.name === play.name;
    select.append(o);
  }
  select.addEventListener('change', () => {
    play = { name: select.value, params: {}, shape: null, error: null };
    update(root);
  });
  box.append(select);
  const info = losses?.find((l) => l.name === play.name);
  for (const [k, v] of Object.entries(info?.params ?? {})) {
    // epsilon is a numerical guard, not a shape parameter
    if (k === 'epsilon') continue;
    if (typeof v === 'number') {
      const max = v > 0 ? Math.max(2 * v, 1) : 1;
      const cur = play.params[k] ?? String(v);
      const out = h('span', {}, cur);
      const input = h('input', { type: 'range', min: 0, max, step: max / 200, value: cur, 'aria-label': k });
      input.addEventListener('input', () => {
        play.params[k] = input.value;
        out.textContent = input.value;
        schedule(root);
      });
      box.append(h('label', { class: 'slider' }, k, input, out));
    } else if (typeof v === 'string') {
      const input = h('input', { type: 'text', value: play.params[k] ?? v, 'aria-label': k });
      input.addEventListener('input', () => {
        play.params[k] = input.value;
        schedule(root);
      });
      box.append(h('label', { class: 'slider' }, `${k} =`, input));
    }
  }
  return box;
}

function schedule(root: HTMLElement): void {
  clearTimeout(timer);
  timer = window.setTimeout(() => update(root), 120);
}

function update(root: HTMLElement): void {
  const info = losses?.find((l) => l.name === play.name);
  if (!info) return;
  const params: Record<string, unknown> = { ...info.params, ...play.params };
  const name = play.name;
  void shapeOf(specOf(name, params)).then((r) => {
    if (play.name !== name) return;
    if (typeof r === 'string') play = { ...play, shape: null, error: r };
    else play = { ...play, shape: r, error: null };
    renderShapes(root);
  });
}
