/**
 * Embedding explorer: the t-SNE layouts stored in a compare's results.json (before training and
 * after each loss), two side by side on canvases with linked hover and selection. Click: the k
 * nearest points in the 2-D layout; drag: box selection with its class composition.
 */
import { alpha, clear, colorOf, h, message } from './dom.ts';
import { type CompareResults, getJson, state } from './state.ts';

type Tsne = NonNullable<CompareResults['tsne']>;
const SIZE = 440;
const PAD = 12;
const K = 10;

interface MapView {
  canvas: HTMLCanvasElement;
  tip: HTMLElement;
  panel: number;
  /** screen coordinates of each point, at the current zoom and pan */
  sx: Float32Array;
  sy: Float32Array;
  /** screen coordinates at zoom 1: sx = bx * k + tx */
  bx: Float32Array;
  by: Float32Array;
  zoom: { k: number; tx: number; ty: number };
  /** the points drawn once per selection state; hovering only copies it and draws rings */
  layer: HTMLCanvasElement;
  layerVersion: number;
}

/** bumped when what the points look like changes (selection, focus); hover does not */
let version = 0;

let folderId = '';
let choice: [number, number] = [0, 1];
let hover: number | null = null;
let focus: number | null = null;
let neighbours: { i: number; d: number }[] = [];
let selected = new Set<number>();
let frame = 0;
let maps: MapView[] = [];
let tsne: Tsne | null = null;

/** the subset's test images (server: /api/images), or why there are none */
type Images = { ok: true; height: number; width: number; pixels: Uint8Array } | { ok: false; message: string };
let images: Images | null = null;
let imagesFor: Tsne | null = null;

function loadImages(root: HTMLElement, folder: string, t: Tsne): void {
  if (imagesFor === t) return;
  imagesFor = t;
  images = null;
  void getJson<{ ok: true; height: number; width: number; pixels: string } | { ok: false; message: string }>(`/api/images?folder=${encodeURIComponent(folder)}`)
    .then((r) => {
      if (r.ok) {
        const bin = atob(r.pixels);
        const px = new Uint8Array(bin.length);
        for (let i = 0; i < bin.length; i++) px[i] = bin.charCodeAt(i);
        return { ok: true as const, height: r.height, width: r.width, pixels: px };
      }
      return r;
    })
    .catch((e: Error) => ({ ok: false as const, message: e.message }))
    .then((r) => {
      if (imagesFor !== t) return;
      images = r;
      if (shownTip) fillTip(shownTip.tip, t, shownTip.i);
      const note = root.querySelector<HTMLElement>('[data-testid=images-note]');
      if (note) note.textContent = r.ok ? '' : `digit images: ${r.message}`;
      describe(root);
    });
}

/** the tooltip on screen, filled again when the images arrive after the hover */
let shownTip: { tip: HTMLElement; i: number } | null = null;

function fillTip(tip: HTMLElement, t: Tsne, i: number): void {
  tip.replaceChildren(`test image #${t.indices[i]} · class ${t.labels[i]}`);
  const th = thumbnail(i, 3);
  if (th) tip.append(h('br'), th);
  shownTip = { tip, i };
}

/** The k-th subset image as a small canvas (dark ink on white), or null without images. */
export function thumbnail(k: number, scale = 2): HTMLCanvasElement | null {
  if (!images?.ok) return null;
  const { height: hh, width: ww, pixels } = images;
  const c = document.createElement('canvas');
  c.width = ww;
  c.height = hh;
  c.className = 'thumb';
  c.dataset['index'] = String(k);
  c.style.width = `${ww * scale}px`;
  c.style.height = `${hh * scale}px`;
  const ctx = c.getContext('2d');
  if (!ctx) return null;
  const img = ctx.createImageData(ww, hh);
  for (let p = 0; p < ww * hh; p++) {
    const v = 255 - pixels[k * ww * hh + p]!;
    img.data[4 * p] = img.data[4 * p + 1] = img.data[4 * p + 2] = v;
    img.data[4 * p + 3] = 255;
  }
  ctx.putImageData(img, 0, 0);
  return c;
}

export function renderEmbedding(root: HTMLElement): void {
  clear(root);
  maps = [];
  const withTsne = state.folders.filter((f) => {
    const r = state.results.get(f.id);
    return r?.ok && r.kind === 'compare' && r.results.tsne;
  });
  const broken = state.folders.map((f) => [f, state.results.get(f.id)] as const).filter(([, r]) => r && !r.ok);
  for (const [f, r] of broken) if (r && !r.ok) root.append(message(`${f.path}: results.json: ${r.message}`));
  if (withTsne.length === 0) {
    root.append(message('no t-SNE layouts: they come with a finished compare (results.json, --tsne-points above 0)'));
    return;
  }
  if (!withTsne.some((f) => f.id === folderId)) folderId = withTsne[0]!.id;
  const r = state.results.get(folderId);
  if (!r?.ok || r.kind !== 'compare' || !r.results.tsne) return;
  if (tsne !== r.results.tsne) {
    tsne = r.results.tsne;
    hover = focus = null;
    neighbours = [];
    selected = new Set();
    choice = [0, Math.min(1, tsne.panels.length - 1)];
    version++;
  }
  const t = tsne;
  const controls = h('div', { class: 'controls' });
  if (withTsne.length > 1) {
    const fs = h('select', { 'aria-label': 'folder' }, ...withTsne.map((f) => h('option', { value: f.id }, f.path)));
    fs.value = folderId;
    fs.addEventListener('change', () => {
      folderId = fs.value;
      renderEmbedding(root);
    });
    controls.append(fs);
  }
  for (const side of [0, 1] as const) {
    const s = h('select', { 'aria-label': side === 0 ? 'left map' : 'right map' }, ...t.panels.map((p, i) => h('option', { value: String(i) }, p.title)));
    s.value = String(choice[side]);
    s.addEventListener('change', () => {
      choice[side] = Number(s.value);
      renderEmbedding(root);
    });
    controls.append(s);
  }
  root.append(controls);
  const legend = h('div', { class: 'legend' });
  for (const c of [...new Set(t.labels)].sort((a, b) => a - b)) {
    const s = h('span', {}, `class ${c}`);
    s.style.setProperty('--c', colorOf(c));
    legend.append(s);
  }
  root.append(legend);
  const box = h('div', { class: 'maps' });
  root.append(box);
  for (const panel of choice) box.append(makeMap(t, panel, root));
  root.append(h('div', { class: 'note', 'data-testid': 'images-note' }));
  root.append(h('div', { 'data-testid': 'selection' }));
  root.append(h('p', { class: 'note' }, `${t.labels.length} test images, t-SNE perplexity ${t.params.perplexity}, ${t.params.iterations} iterations, seed ${t.params.seed}. Hover: the same image in both maps. Click: its ${K} nearest points in the map. Drag: select a box. Wheel: zoom; shift-drag or middle-drag: pan; double-click: whole map.`));
  loadImages(root, folderId, t);
  describe(root);
  draw();
}

function makeMap(t: Tsne, panel: number, root: HTMLElement): HTMLElement {
  const pts = t.panels[panel]!.points;
  const n = pts.length / 2;
  let x0 = Infinity, x1 = -Infinity, y0 = Infinity, y1 = -Infinity;
  for (let i = 0; i < n; i++) {
    x0 = Math.min(x0, pts[2 * i]!); x1 = Math.max(x1, pts[2 * i]!);
    y0 = Math.min(y0, pts[2 * i + 1]!); y1 = Math.max(y1, pts[2 * i + 1]!);
  }
  const scale = (SIZE - 2 * PAD) / Math.max(x1 - x0, y1 - y0, 1e-9);
  const bx = new Float32Array(n);
  const by = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    bx[i] = PAD + (pts[2 * i]! - x0) * scale;
    by[i] = PAD + (pts[2 * i + 1]! - y0) * scale;
  }
  const sx = Float32Array.from(bx);
  const sy = Float32Array.from(by);
  const dpr = window.devicePixelRatio || 1;
  const canvas = h('canvas', { width: SIZE * dpr, height: SIZE * dpr, 'data-panel': panel });
  canvas.style.width = canvas.style.height = `${SIZE}px`;
  const tip = h('div', { class: 'tip' });
  const layer = document.createElement('canvas');
  layer.width = canvas.width;
  layer.height = canvas.height;
  const view: MapView = { canvas, tip, panel, sx, sy, bx, by, zoom: { k: 1, tx: 0, ty: 0 }, layer, layerVersion: -1 };
  maps.push(view);
  /** a new zoom or pan: the screen coordinates follow and the points layer is drawn again */
  const setZoom = (k: number, tx: number, ty: number): void => {
    view.zoom = { k, tx, ty };
    canvas.dataset['zoom'] = `${k},${tx},${ty}`;
    for (let i = 0; i < n; i++) {
      sx[i] = bx[i]! * k + tx;
      sy[i] = by[i]! * k + ty;
    }
    view.layerVersion = -1;
    hover = null;
    tip.style.display = 'none';
    shownTip = null;
    schedule();
  };
  canvas.addEventListener(
    'wheel',
    (e) => {
      e.preventDefault();
      const [x, y] = pos(e);
      const { k, tx, ty } = view.zoom;
      const k2 = Math.min(64, Math.max(1, k * Math.exp(-e.deltaY / 300)));
      // the point under the cursor stays under it
      setZoom(k2, x - ((x - tx) / k) * k2, y - ((y - ty) / k) * k2);
    },
    { passive: false },
  );
  canvas.addEventListener('dblclick', () => setZoom(1, 0, 0));
  let pan: { x: number; y: number; tx: number; ty: number } | null = null;

  const nearest = (px: number, py: number, within: number): number | null => {
    let best = -1;
    let bd = within * within;
    for (let i = 0; i < n; i++) {
      const d = (sx[i]! - px) ** 2 + (sy[i]! - py) ** 2;
      if (d < bd) { bd = d; best = i; }
    }
    return best < 0 ? null : best;
  };
  let drag: { x: number; y: number } | null = null;
  let box: [number, number, number, number] | null = null;
  const pos = (e: MouseEvent): [number, number] => {
    const r = canvas.getBoundingClientRect();
    return [e.clientX - r.left, e.clientY - r.top];
  };
  canvas.addEventListener('mousedown', (e) => {
    const [x, y] = pos(e);
    // shift-drag or the middle button pans; a plain drag selects a box
    if (e.shiftKey || e.button === 1) {
      pan = { x, y, tx: view.zoom.tx, ty: view.zoom.ty };
      e.preventDefault();
      return;
    }
    drag = { x, y };
  });
  canvas.addEventListener('mousemove', (e) => {
    const [x, y] = pos(e);
    if (pan) {
      setZoom(view.zoom.k, pan.tx + x - pan.x, pan.ty + y - pan.y);
      return;
    }
    if (drag && Math.abs(x - drag.x) + Math.abs(y - drag.y) > 4) {
      box = [Math.min(drag.x, x), Math.min(drag.y, y), Math.max(drag.x, x), Math.max(drag.y, y)];
      boxes.set(view, box);
    }
    const i = nearest(x, y, 8);
    if (i !== hover) {
      hover = i;
      if (i === null) {
        tip.style.display = 'none';
        shownTip = null;
      }
      else {
        tip.style.display = 'block';
        tip.style.left = `${sx[i]! + 8}px`;
        tip.style.top = `${sy[i]! + 8}px`;
        fillTip(tip, t, i);
      }
    }
    schedule();
  });
  canvas.addEventListener('mouseleave', () => {
    hover = null;
    tip.style.display = 'none';
    shownTip = null;
    drag = null;
    pan = null;
    schedule();
  });
  canvas.addEventListener('mouseup', (e) => {
    const [x, y] = pos(e);
    if (pan) {
      pan = null;
      return;
    }
    if (box) {
      const [a, b, c, d] = box;
      selected = new Set();
      for (let i = 0; i < n; i++) if (sx[i]! >= a && sx[i]! <= c && sy[i]! >= b && sy[i]! <= d) selected.add(i);
      focus = null;
      neighbours = [];
    } else {
      focus = nearest(x, y, 12);
      neighbours = [];
      if (focus !== null) {
        const f = focus;
        const fx = pts[2 * f]!;
        const fy = pts[2 * f + 1]!;
        const all: { i: number; d: number }[] = [];
        for (let i = 0; i < n; i++) if (i !== f) all.push({ i, d: Math.hypot(pts[2 * i]! - fx, pts[2 * i + 1]! - fy) });
        all.sort((p, q) => p.d - q.d);
        neighbours = all.slice(0, K);
      }
      if (focus === null) selected = new Set();
    }
    drag = null;
    box = null;
    boxes.delete(view);
    version++;
    describe(root);
    schedule();
  });
  return h('div', { class: 'map' }, h('div', { class: 'note' }, t.panels[panel]!.title), canvas, tip);
}

/** the points ordered by bucket (class * 2 + faded), reused between draws: every frame of a pan draws all of them */
let order = new Uint32Array(0);

function drawPoints(m: MapView, labels: readonly number[], near: ReadonlySet<number>, dpr: number): void {
  const ctx = m.layer.getContext('2d');
  if (!ctx) return;
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  ctx.clearRect(0, 0, SIZE, SIZE);
  const dim = selected.size > 0 || focus !== null;
  const n = m.sx.length;
  if (order.length < n) order = new Uint32Array(n);
  // a counting sort by bucket: then one path and one fill per class and shade (not a fillStyle
  // change and a fill per point); points off the canvas (zoomed in) are left out of the path
  const bucket = (i: number): number => 2 * labels[i]! + (dim && !selected.has(i) && !near.has(i) && i !== focus ? 1 : 0);
  const counts: number[] = [];
  for (let i = 0; i < n; i++) {
    const b = bucket(i);
    counts[b] = (counts[b] ?? 0) + 1;
  }
  const start: number[] = [];
  let at = 0;
  for (let b = 0; b < counts.length; b++) {
    start[b] = at;
    at += counts[b] ?? 0;
  }
  const next = [...start];
  for (let i = 0; i < n; i++) order[next[bucket(i)]!++] = i;
  for (let b = 0; b < counts.length; b++) {
    if (!counts[b]) continue;
    ctx.fillStyle = fill(b >> 1, (b & 1) === 1);
    ctx.beginPath();
    for (let k = start[b]!; k < start[b]! + counts[b]!; k++) {
      const i = order[k]!;
      const x = m.sx[i]!;
      const y = m.sy[i]!;
      if (x < -2 || x > SIZE + 2 || y < -2 || y > SIZE + 2) continue;
      ctx.rect(x - 2, y - 2, 4, 4);
    }
    ctx.fill();
  }
}

const fills = new Map<string, string>();
function fill(label: number, faded: boolean): string {
  const key = `${label}${faded ? 'f' : ''}`;
  let f = fills.get(key);
  if (!f) fills.set(key, (f = alpha(colorOf(label), faded ? 0.3 : 0.9)));
  return f;
}

const boxes = new Map<MapView, [number, number, number, number]>();

function schedule(): void {
  if (frame) return;
  frame = requestAnimationFrame(() => {
    frame = 0;
    draw();
  });
}

function draw(): void {
  if (!tsne) return;
  const labels = tsne.labels;
  const dpr = window.devicePixelRatio || 1;
  const near = new Set(neighbours.map((n) => n.i));
  for (const m of maps) {
    const ctx = m.canvas.getContext('2d');
    if (!ctx) continue;
    if (m.layerVersion !== version) {
      drawPoints(m, labels, near, dpr);
      m.layerVersion = version;
    }
    ctx.setTransform(1, 0, 0, 1, 0, 0);
    ctx.clearRect(0, 0, m.canvas.width, m.canvas.height);
    ctx.drawImage(m.layer, 0, 0);
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    const ring = (i: number, r: number, color: string): void => {
      ctx.beginPath();
      ctx.arc(m.sx[i]!, m.sy[i]!, r, 0, 2 * Math.PI);
      ctx.strokeStyle = color;
      ctx.lineWidth = 2;
      ctx.stroke();
    };
    for (const i of near) ring(i, 5, '#1d232b');
    if (focus !== null) ring(focus, 8, '#e15759');
    if (hover !== null) ring(hover, 7, '#000');
    const b = boxes.get(m);
    if (b) {
      ctx.strokeStyle = '#2a62c9';
      ctx.lineWidth = 1;
      ctx.strokeRect(b[0], b[1], b[2] - b[0], b[3] - b[1]);
    }
  }
}

function describe(root: HTMLElement): void {
  const out = root.querySelector<HTMLElement>('[data-testid=selection]');
  if (!out || !tsne) return;
  const t = tsne;
  clear(out);
  if (focus !== null) {
    out.append(h('h2', {}, `Test image #${t.indices[focus]} (class ${t.labels[focus]}): ${K} nearest in the map`));
    const list = h('ol', { 'data-testid': 'neighbours' });
    const self = thumbnail(focus, 3);
    if (self) out.append(self);
    for (const n of neighbours) list.append(h('li', {}, thumbnail(n.i), ` #${t.indices[n.i]} · class ${t.labels[n.i]} · map distance ${n.d.toFixed(2)}`));
    out.append(list);
  } else if (selected.size > 0) {
    const counts = new Map<number, number>();
    for (const i of selected) counts.set(t.labels[i]!, (counts.get(t.labels[i]!) ?? 0) + 1);
    out.append(h('h2', {}, `${selected.size} points selected`));
    const list = h('ul', { 'data-testid': 'composition' });
    for (const [c, k] of [...counts].sort((a, b) => b[1] - a[1])) list.append(h('li', {}, `class ${c}: ${k} (${((100 * k) / selected.size).toFixed(1)} %)`));
    out.append(list);
  }
}
