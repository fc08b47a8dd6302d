/**
 * Sweep: parallel coordinates of every run, one axis per numeric loss parameter found in the
 * folders, then seed, pair accuracy, MAP@R and test accuracy; one line per run, coloured by
 * loss. Drag along an axis to brush a range (click the axis to clear it); the runs inside every
 * brush stay coloured and are listed, best MAP@R first, with their parameters.
 */
import { clear, colorOf, h, message, pct } from './dom.ts';
import { groups, type RunInfo, state } from './state.ts';

const SVG = 'http://www.w3.org/2000/svg';
const W = 960;
const H = 320;
const TOP = 30;
const BOTTOM = 30;
const SIDE = 60;

interface Axis {
  key: string;
  title: string;
  value: (r: RunInfo) => number | null;
  lo: number;
  hi: number;
  x: number;
}

const brushes = new Map<string, [number, number]>();

function svg<K extends keyof SVGElementTagNameMap>(tag: K, attrs: Record<string, string | number>): SVGElementTagNameMap[K] {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  return el;
}

function axesOf(runs: readonly RunInfo[]): Axis[] {
  const paramKeys = [...new Set(runs.flatMap((r) => Object.entries(r.params).filter(([, v]) => typeof v === 'number').map(([k]) => k)))].sort();
  const defs: Omit<Axis, 'lo' | 'hi' | 'x'>[] = [
    ...paramKeys.map((k) => ({ key: `param.${k}`, title: k, value: (r: RunInfo) => (typeof r.params[k] === 'number' ? (r.params[k] as number) : null) })),
    { key: 'seed', title: 'seed', value: (r) => r.seed },
    { key: 'pairAccuracy', title: 'pair acc. %', value: (r) => r.pairAccuracy },
    { key: 'mapAtR', title: 'MAP@R %', value: (r) => r.mapAtR },
    { key: 'testAccuracy', title: 'test acc. %', value: (r) => r.testAccuracy },
  ];
  const axes: Axis[] = [];
  for (const d of defs) {
    const v = runs.map(d.value).filter((x): x is number => x !== null && Number.isFinite(x));
    if (v.length === 0) continue;
    let lo = Math.min(...v);
    let hi = Math.max(...v);
    if (hi - lo < 1e-12) {
      const pad = Math.abs(lo) > 0 ? Math.abs(lo) * 0.01 : 0.5;
      lo -= pad;
      hi += pad;
    }
    axes.push({ ...d, lo, hi, x: 0 });
  }
  axes.forEach((a, i) => (a.x = axes.length === 1 ? W / 2 : SIDE + (i * (W - 2 * SIDE)) / (axes.length - 1)));
  return axes;
}

const yOf = (a: Axis, v: number): number => TOP + (1 - (v - a.lo) / (a.hi - a.lo)) * (H - TOP - BOTTOM);
const vOf = (a: Axis, y: number): number => a.lo + (1 - (y - TOP) / (H - TOP - BOTTOM)) * (a.hi - a.lo);
const fmt = (a: Axis, v: number): string => (a.key === 'pairAccuracy' || a.key === 'mapAtR' || a.key === 'testAccuracy' ? pct(v) : a.key === 'seed' ? v.toFixed(0) : String(Math.round(v * 1e4) / 1e4));

function inside(r: RunInfo, axes: readonly Axis[]): boolean {
  for (const a of axes) {
    const b = brushes.get(a.key);
    if (!b) continue;
    const v = a.value(r);
    if (v === null || v < b[0] || v > b[1]) return false;
  }
  return true;
}

export function renderSweep(root: HTMLElement): void {
  clear(root);
  const runs = state.runs;
  if (runs.length === 0) {
    root.append(message('no runs yet'));
    return;
  }
  const axes = axesOf(runs);
  for (const k of [...brushes.keys()]) if (!axes.some((a) => a.key === k)) brushes.delete(k);
  const color = new Map<string, string>();
  for (const g of groups(runs)) for (const r of g.runs) color.set(r.id, colorOf(g.color));

  const chart = svg('svg', { width: W, height: H, viewBox: `0 0 ${W} ${H}`, 'data-testid': 'sweep' });
  const lines = svg('g', {});
  chart.append(lines);
  const draw = (): void => {
    lines.replaceChildren();
    for (const r of runs) {
      let d = '';
      let pen = false;
      for (const a of axes) {
        const v = a.value(r);
        if (v === null || !Number.isFinite(v)) {
          pen = false;
          continue;
        }
        d += `${pen ? 'L' : 'M'}${a.x.toFixed(1)},${yOf(a, v).toFixed(1)}`;
        pen = true;
      }
      const on = inside(r, axes);
      lines.append(svg('path', { d, fill: 'none', stroke: on ? color.get(r.id)! : '#ccd', 'stroke-width': on ? 2 : 1, 'stroke-opacity': on ? 0.9 : 0.5, 'data-run': r.id, 'data-in': on ? 1 : 0 }));
    }
    list();
  };

  for (const a of axes) {
    const g = svg('g', { 'data-axis': a.key });
    g.append(svg('line', { x1: a.x, x2: a.x, y1: TOP, y2: H - BOTTOM, stroke: '#66707c' }));
    const title = svg('text', { x: a.x, y: TOP - 12, 'text-anchor': 'middle', 'font-size': 12, 'font-weight': 600 });
    title.textContent = a.title;
    const hiT = svg('text', { x: a.x + 6, y: TOP + 4, 'font-size': 10, fill: '#66707c' });
    hiT.textContent = fmt(a, a.hi);
    const loT = svg('text', { x: a.x + 6, y: H - BOTTOM + 4, 'font-size': 10, fill: '#66707c' });
    loT.textContent = fmt(a, a.lo);
    const band = svg('rect', { x: a.x - 10, y: TOP, width: 20, height: H - TOP - BOTTOM, fill: 'transparent', style: 'cursor: ns-resize' });
    const brushRect = svg('rect', { x: a.x - 8, width: 16, y: 0, height: 0, fill: 'rgba(42,98,201,0.25)', stroke: '#2a62c9', 'pointer-events': 'none', 'data-brush': a.key });
    const showBrush = (): void => {
      const b = brushes.get(a.key);
      if (!b) {
        brushRect.setAttribute('height', '0');
        return;
      }
      const y0 = yOf(a, b[1]);
      const y1 = yOf(a, b[0]);
      brushRect.setAttribute('y', String(y0));
      brushRect.setAttribute('height', String(Math.max(1, y1 - y0)));
      brushRect.setAttribute('data-lo', String(b[0]));
      brushRect.setAttribute('data-hi', String(b[1]));
    };
    showBrush();
    band.addEventListener('mousedown', (e) => {
      const top = chart.getBoundingClientRect().top;
      // a drag that starts or ends within a few pixels of an axis end reaches it (max or min included)
      const snap = (y: number): number => (y - TOP < 4 ? TOP : H - BOTTOM - y < 4 ? H - BOTTOM : y);
      const start = snap(e.clientY - top);
      let moved = false;
      const move = (m: MouseEvent): void => {
        const y = snap(Math.min(H - BOTTOM, Math.max(TOP, m.clientY - top)));
        if (Math.abs(y - start) < 3) return;
        moved = true;
        const [v0, v1] = [vOf(a, start), vOf(a, y)];
        brushes.set(a.key, [Math.min(v0, v1), Math.max(v0, v1)]);
        showBrush();
        draw();
      };
      const up = (): void => {
        window.removeEventListener('mousemove', move);
        window.removeEventListener('mouseup', up);
        if (!moved) {
          brushes.delete(a.key);
          showBrush();
          draw();
        }
      };
      window.addEventListener('mousemove', move);
      window.addEventListener('mouseup', up);
      e.preventDefault();
    });
    g.append(title, hiT, loT, band, brushRect);
    chart.append(g);
  }
  const out = h('div', { 'data-testid': 'sweep-list' });
  const list = (): void => {
    const chosen = runs.filter((r) => inside(r, axes)).sort((a, b) => (b.mapAtR ?? -1) - (a.mapAtR ?? -1) || (b.pairAccuracy ?? -1) - (a.pairAccuracy ?? -1));
    clear(out);
    out.append(h('h2', {}, `${chosen.length} of ${runs.length} runs in the brushes${brushes.size === 0 ? ' (drag along an axis to brush)' : ''}`));
    const ol = h('ol');
    for (const r of chosen.slice(0, 20)) {
      const params = Object.entries(r.params).map(([k, v]) => `${k}=${String(v)}`).join(', ');
      ol.append(h('li', { 'data-run': r.id }, `${r.label} seed ${r.seed ?? '?'}${params ? ` (${params})` : ''}: MAP@R ${pct(r.mapAtR)}, pair acc. ${pct(r.pairAccuracy)}`));
    }
    out.append(ol);
  };
  const legend = h('div', { class: 'legend' });
  for (const g of groups(runs)) {
    const s = h('span', {}, g.label);
    s.style.setProperty('--c', colorOf(g.color));
    legend.append(s);
  }
  root.append(legend, h('div', { class: 'chart' }, chart), out);
  draw();
}
