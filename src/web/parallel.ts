/**
 * Parallel coordinates in SVG, for any rows: one vertical axis per measure, one polyline per
 * row (passing by the axes it has no value on). Drag along an axis to brush a range (a click on it clears the brush); rows outside any
 * brush turn grey and `onBrush` hears the rows left inside. An axis may be logarithmic (a
 * learning rate searched from 1e-4 to 1e-2). Brushes live in the caller's map, so they survive
 * a redraw brought by new data.
 */

const SVG = 'http://www.w3.org/2000/svg';
const W = 960;
const H = 320;
const TOP = 30;
const BOTTOM = 30;
const SIDE = 80;

export interface AxisDef<T> {
  key: string;
  title: string;
  value: (row: T) => number | null;
  /** log-scaled (every value must be positive) */
  log?: boolean;
  format?: (v: number) => string;
}

interface Axis<T> extends AxisDef<T> {
  /** in axis units (log10 for a log axis) */
  lo: number;
  hi: number;
  x: number;
}

export interface ParallelOptions<T> {
  rows: readonly T[];
  axes: readonly AxisDef<T>[];
  id: (row: T) => string;
  color: (row: T) => string;
  /** stroke width of a row inside the brushes (default 2) */
  width?: (row: T) => number;
  /** a title shown when hovering a line */
  title?: (row: T) => string;
  /** the brushes, keyed by axis key: [low, high] in data units */
  brushes: Map<string, [number, number]>;
  testid: string;
  onBrush?: (inside: T[]) => void;
}

function svg<K extends keyof SVGElementTagNameMap>(tag: K, attrs: Record<string, string | number>): SVGElementTagNameMap[K] {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  return el;
}

const round = (v: number): string => String(Math.abs(v) >= 1e-3 || v === 0 ? Math.round(v * 1e4) / 1e4 : Number(v.toPrecision(3)));

export function parallelCoordinates<T>(o: ParallelOptions<T>): SVGSVGElement {
  const unit = (a: AxisDef<T>, v: number): number => (a.log ? Math.log10(v) : v);
  const data = (a: AxisDef<T>, u: number): number => (a.log ? 10 ** u : u);
  const valueOf = (a: AxisDef<T>, r: T): number | null => {
    const v = a.value(r);
    return v === null || !Number.isFinite(v) || (a.log && v <= 0) ? null : v;
  };
  const axes: Axis<T>[] = [];
  for (const d of o.axes) {
    const v = o.rows.map((r) => valueOf(d, r)).filter((x): x is number => x !== null).map((x) => unit(d, x));
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
  for (const k of [...o.brushes.keys()]) if (!axes.some((a) => a.key === k)) o.brushes.delete(k);

  const yOf = (a: Axis<T>, v: number): number => TOP + (1 - (unit(a, v) - a.lo) / (a.hi - a.lo)) * (H - TOP - BOTTOM);
  const vOf = (a: Axis<T>, y: number): number => data(a, a.lo + (1 - (y - TOP) / (H - TOP - BOTTOM)) * (a.hi - a.lo));
  const fmt = (a: Axis<T>, v: number): string => (a.format ? a.format(v) : round(v));
  const inside = (r: T): boolean => {
    for (const a of axes) {
      const b = o.brushes.get(a.key);
      if (!b) continue;
      const v = valueOf(a, r);
      if (v === null || v < b[0] || v > b[1]) return false;
    }
    return true;
  };

  const chart = svg('svg', { width: W, height: H, viewBox: `0 0 ${W} ${H}`, 'data-testid': o.testid });
  const lines = svg('g', {});
  chart.append(lines);
  const draw = (): void => {
    lines.replaceChildren();
    const kept: T[] = [];
    // the rows inside the brushes last, so they are drawn over the grey ones
    const order = [...o.rows].sort((a, b) => Number(inside(a)) - Number(inside(b)));
    for (const r of order) {
      // an axis the row has no value on (a parameter another loss has) is passed by, not a break
      let d = '';
      for (const a of axes) {
        const v = valueOf(a, r);
        if (v === null) continue;
        d += `${d === '' ? 'M' : 'L'}${a.x.toFixed(1)},${yOf(a, v).toFixed(1)}`;
      }
      const on = inside(r);
      if (on) kept.push(r);
      const path = svg('path', { d, fill: 'none', stroke: on ? o.color(r) : '#ccd', 'stroke-width': on ? (o.width?.(r) ?? 2) : 1, 'stroke-opacity': on ? 0.9 : 0.5, 'data-run': o.id(r), 'data-in': on ? 1 : 0 });
      if (o.title) {
        const t = svg('title', {});
        t.textContent = o.title(r);
        path.append(t);
      }
      lines.append(path);
    }
    o.onBrush?.(o.rows.filter((r) => kept.includes(r)));
  };

  for (const a of axes) {
    const g = svg('g', { 'data-axis': a.key });
    g.append(svg('line', { x1: a.x, x2: a.x, y1: TOP, y2: H - BOTTOM, stroke: '#66707c' }));
    const title = svg('text', { x: a.x, y: TOP - 12, 'text-anchor': 'middle', 'font-size': 12, 'font-weight': 600 });
    title.textContent = a.log ? `${a.title} (log)` : a.title;
    const hiT = svg('text', { x: a.x + 6, y: TOP + 4, 'font-size': 10, fill: '#66707c' });
    hiT.textContent = fmt(a, data(a, a.hi));
    const loT = svg('text', { x: a.x + 6, y: H - BOTTOM + 4, 'font-size': 10, fill: '#66707c' });
    loT.textContent = fmt(a, data(a, a.lo));
    const band = svg('rect', { x: a.x - 10, y: TOP, width: 20, height: H - TOP - BOTTOM, fill: 'transparent', style: 'cursor: ns-resize' });
    const brushRect = svg('rect', { x: a.x - 8, width: 16, y: 0, height: 0, fill: 'rgba(42,98,201,0.25)', stroke: '#2a62c9', 'pointer-events': 'none', 'data-brush': a.key });
    const showBrush = (): void => {
      const b = o.brushes.get(a.key);
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
        o.brushes.set(a.key, [Math.min(v0, v1), Math.max(v0, v1)]);
        showBrush();
        draw();
      };
      const up = (): void => {
        window.removeEventListener('mousemove', move);
        window.removeEventListener('mouseup', up);
        if (!moved) {
          o.brushes.delete(a.key);
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
  draw();
  return chart;
}
