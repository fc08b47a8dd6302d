/**
 * Embedding explorer: two maps side by side, each either a run's embedding through training
 * (the subset it stored every epoch, laid out by the server per epoch, warm-started from the
 * epoch before) or a t-SNE layout of a compare's results.json (before training, after each
 * loss). Points are linked by test-image number: hovering or selecting one image marks it in
 * both maps. An epoch slider and play button move the run maps through training (the points
 * glide from one layout to the next). Click: the k nearest images, in the full embedding space
 * for a run map (the server's brute force), in the 2-D layout for a results.json map. Drag: a
 * box selection and its class composition. Each map zooms on its own: wheel about the pointer,
 * shift-drag or the middle button pans, double-click shows the whole map again.
 */
import { alpha, clear, colorOf, h, message } from './dom.ts';
import { type CompareResults, getJson, state } from './state.ts';

type Tsne = NonNullable<CompareResults['tsne']>;
const SIZE = 440;
const PAD = 12;
const K = 10;
/** how long the points take to glide to the next epoch's layout */
const MOVE_MS = 450;
/** time per epoch while playing (after its layouts are there) */
const PLAY_MS = 900;
/** the deepest zoom: a 440 px map shows 1/64 of its width */
const MAX_ZOOM = 64;

/** A map's zoom and pan: a point at (x, y) unzoomed is drawn at (x * k + tx, y * k + ty). */
interface Zoom {
  k: number;
  tx: number;
  ty: number;
}

/** What one map can show. */
interface Source {
  /** 'run:<id>' or 'panel:<folder>:<n>' */
  key: string;
  title: string;
  /** /api/images?... of this subset */
  imagesUrl: string;
  /** a run's per-epoch embeddings */
  run?: string;
  /** a results.json panel */
  tsne?: Tsne;
  panel?: number;
}

interface RunDetail {
  indices: number[];
  labels: number[];
  epochs: number[];
  dim: number;
}

interface MapView {
  src: Source;
  indices: number[];
  labels: number[];
  /** test-image number -> row */
  rowOf: Map<number, number>;
  canvas: HTMLCanvasElement;
  tip: HTMLElement;
  note: HTMLElement;
  /** the layout drawn (data coordinates), for map distances */
  pts: ArrayLike<number> | null;
  /** the epoch drawn (run maps), null before the first layout arrives */
  shown: number | null;
  /** the epoch wanted (run maps) */
  wanted: number | null;
  /** unzoomed screen coordinates now (the layout fitted into the square), and the glide under way */
  bx: Float32Array;
  by: Float32Array;
  from: { x: Float32Array; y: Float32Array; tx: Float32Array; ty: Float32Array; t0: number } | null;
  /** screen coordinates as drawn: bx, by zoomed and panned; hover, boxes and rings use these */
  sx: Float32Array;
  sy: Float32Array;
  zoom: Zoom;
  /** where the zoom is kept: it outlives a redraw of the view (an epoch, new results) */
  zoomKey: string;
  /** each row's class as 0, 1, ... (the labels sorted): the drawing's bucket */
  cls: Uint16Array;
  classes: number[];
  layer: HTMLCanvasElement;
  layerVersion: number;
}

/** bumped when what the points look like changes (selection, focus); hover does not */
let version = 0;
let frame = 0;
let maps: MapView[] = [];
let choice: [string, string] = ['', ''];
let epoch = 0;
let playing = false;
/** linked by test-image number */
let hover: number | null = null;
let focus: { id: number; map: MapView } | null = null;
let neighbours: { id: number; d: number }[] = [];
let nearKind: 'map' | 'embedding' = 'map';
let selected = new Set<number>();
/**
 * What a click changed it from: a double-click's first click has selected (or cleared) before
 * the dblclick event says it was one, and the double-click only resets the zoom, so it undoes it.
 */
let beforeClick: { focus: { id: number; map: MapView } | null; neighbours: { id: number; d: number }[]; nearKind: 'map' | 'embedding'; selected: Set<number> } | null = null;
const labelOf = new Map<number, number>();
let rootEl: HTMLElement | null = null;
/** each map's zoom, by side and source: a map shown again keeps it, another source starts whole */
const zooms = new Map<string, Zoom>();

/** runs that store per-epoch embeddings (/api/snapshots); null until asked */
let snapRuns: { id: string; epochs: number[] }[] | null = null;
let snapLoading = false;
const details = new Map<string, RunDetail | Promise<void>>();
/** runs whose embeddings.bin cannot be read, and why */
const runErrors = new Map<string, string>();
/** layouts per run and epoch: the points, or why there are none */
const layouts = new Map<string, Promise<Float32Array | string>>();

type Images = { ok: true; height: number; width: number; pixels: Uint8Array } | { ok: false; message: string };
const images = new Map<string, Images | null>();

function loadImages(src: Source, indices: number[]): void {
  if (images.has(src.imagesUrl)) return;
  images.set(src.imagesUrl, null);
  void getJson<{ ok: true; height: number; width: number; pixels: string } | { ok: false; message: string }>(src.imagesUrl)
    .then((r): Images => {
      if (!r.ok) return r;
      const bin = atob(r.pixels);
      const px = new Uint8Array(bin.length);
      for (let i = 0; i < bin.length; i++) px[i] = bin.charCodeAt(i);
      return { ok: true, height: r.height, width: r.width, pixels: px };
    })
    .catch((e: Error): Images => ({ ok: false, message: e.message }))
    .then((r) => {
      images.set(src.imagesUrl, r);
      imageRows.set(src.imagesUrl, new Map(indices.map((id, row) => [id, row])));
      if (shownTip) fillTip(shownTip.tip, shownTip.map, shownTip.id);
      const note = rootEl?.querySelector<HTMLElement>('[data-testid=images-note]');
      if (note && !r.ok) note.textContent = `digit images: ${r.message}`;
      describe();
    });
}
const imageRows = new Map<string, Map<number, number>>();

/** the tooltip on screen, filled again when the images arrive after the hover */
let shownTip: { tip: HTMLElement; map: MapView; id: number } | null = null;

function fillTip(tip: HTMLElement, m: MapView, id: number): void {
  tip.replaceChildren(`test image #${id} · class ${labelOf.get(id)}`);
  const th = thumbnail(m.src, id, 3);
  if (th) tip.append(h('br'), th);
  shownTip = { tip, map: m, id };
}

/** Test image `id` of a source's subset as a small canvas (dark ink on white), or null without images. */
function thumbnail(src: Source, id: number, scale = 2): HTMLCanvasElement | null {
  const im = images.get(src.imagesUrl);
  const row = imageRows.get(src.imagesUrl)?.get(id);
  if (!im?.ok || row === undefined) return null;
  const { height: hh, width: ww, pixels } = im;
  const c = document.createElement('canvas');
  c.width = ww;
  c.height = hh;
  c.className = 'thumb';
  c.dataset['index'] = String(id);
  c.style.width = `${ww * scale}px`;
  c.style.height = `${hh * scale}px`;
  const ctx = c.getContext('2d');
  if (!ctx) return null;
  const img = ctx.createImageData(ww, hh);
  for (let p = 0; p < ww * hh; p++) {
    const v = 255 - pixels[row * ww * hh + p]!;
    img.data[4 * p] = img.data[4 * p + 1] = img.data[4 * p + 2] = v;
    img.data[4 * p + 3] = 255;
  }
  ctx.putImageData(img, 0, 0);
  return c;
}

function runTitle(id: string): string {
  const r = state.runs.find((x) => x.id === id);
  return r ? `${r.label}${r.seed === null ? '' : ` seed ${r.seed}`} (${r.path})` : id;
}

function sourcesNow(): { runs: Source[]; panels: { folder: string; list: Source[] }[] } {
  const runs = (snapRuns ?? []).map((r): Source => ({ key: `run:${r.id}`, title: runTitle(r.id), imagesUrl: `/api/images?run=${encodeURIComponent(r.id)}`, run: r.id }));
  const panels = state.folders
    .map((f) => [f, state.results.get(f.id)] as const)
    .filter(([, r]) => r?.ok && r.kind === 'compare' && r.results.tsne)
    .map(([f, r]) => {
      const t = (r as { ok: true; results: CompareResults }).results.tsne!;
      return {
        folder: f.path,
        list: t.panels.map((p, n): Source => ({ key: `panel:${f.id}:${n}`, title: p.title, imagesUrl: `/api/images?folder=${encodeURIComponent(f.id)}`, tsne: t, panel: n })),
      };
    });
  return { runs, panels };
}

function loadSnapRuns(): void {
  if (snapLoading) return;
  snapLoading = true;
  void getJson<{ runs: { id: string; epochs: number[] }[] }>('/api/snapshots')
    .then((r) => r.runs, () => [])
    .then((runs) => {
      snapRuns = runs;
      snapLoading = false;
      if (rootEl) renderEmbedding(rootEl);
    });
}

function detailOf(run: string): RunDetail | undefined {
  const d = details.get(run);
  if (d && !(d instanceof Promise)) return d;
  if (!d) {
    details.set(
      run,
      getJson<({ ok: true } & RunDetail) | { ok: false; message: string }>(`/api/snapshots?run=${encodeURIComponent(run)}`)
        .then((r) => {
          if (!r.ok) throw new Error(r.message);
          if (r.epochs.length === 0) throw new Error('no epoch stored yet');
          details.set(run, { indices: r.indices, labels: r.labels, epochs: r.epochs, dim: r.dim });
        })
        .catch((e: Error) => {
          details.delete(run);
          snapRuns = (snapRuns ?? []).filter((x) => x.id !== run);
          runErrors.set(run, e.message);
        })
        .then(() => {
          if (rootEl) renderEmbedding(rootEl);
        }),
    );
  }
  return undefined;
}

function layoutOf(run: string, e: number): Promise<Float32Array | string> {
  const key = `${run}|${e}`;
  let p = layouts.get(key);
  if (!p) {
    p = getJson<{ ok: true; points: number[] } | { ok: false; message: string }>(`/api/layout?run=${encodeURIComponent(run)}&epoch=${e}`)
      .then((r) => (r.ok ? Float32Array.from(r.points) : r.message), (err: Error) => err.message);
    // a failure is not kept: asking again may succeed (a file being written)
    void p.then((v) => typeof v === 'string' && layouts.delete(key));
    layouts.set(key, p);
  }
  return p;
}

/** The stored epoch a run map shows for the slider's epoch: the last one at or before it. */
function storedEpoch(d: RunDetail, e: number): number {
  let best = d.epochs[0]!;
  for (const x of d.epochs) if (x <= e) best = x;
  return best;
}

/** Every epoch of the run maps shown, ascending. */
function sliderEpochs(): number[] {
  const s = new Set<number>();
  for (const m of maps) {
    const d = m.src.run === undefined ? undefined : details.get(m.src.run);
    if (d && !(d instanceof Promise)) for (const e of d.epochs) s.add(e);
  }
  return [...s].sort((a, b) => a - b);
}

export function renderEmbedding(root: HTMLElement): void {
  rootEl = root;
  clear(root);
  maps = [];
  playing = false;
  if (snapRuns === null) {
    // which runs store embeddings decides the default maps: known before anything is drawn
    loadSnapRuns();
    root.append(message('loading…'));
    return;
  }
  for (const [run, why] of runErrors) root.append(message(`${runTitle(run)}: embeddings.bin: ${why}`));
  const broken = state.folders.map((f) => [f, state.results.get(f.id)] as const).filter(([, r]) => r && !r.ok);
  for (const [f, r] of broken) if (r && !r.ok) root.append(message(`${f.path}: results.json: ${r.message}`));
  const { runs, panels } = sourcesNow();
  const all = [...runs, ...panels.flatMap((p) => p.list)];
  if (all.length === 0) {
    root.append(message('no embeddings to show: runs store them every epoch (train and compare, --snapshot-points above 0), and a finished compare has t-SNE layouts (results.json, --tsne-points above 0)'));
    return;
  }
  // defaults: two runs through training (of different losses when there are), else the first results.json maps
  if (!choice.every((c) => all.some((s) => s.key === c))) {
    if (runs.length > 0) {
      const first = runs[0]!;
      const group = (s: Source): string | undefined => state.runs.find((r) => r.id === s.run)?.group;
      const second = runs.find((s) => s !== first && group(s) !== group(first)) ?? runs[1] ?? first;
      choice = [first.key, second.key];
    } else {
      const list = panels[0]!.list;
      choice = [list[0]!.key, list[Math.min(1, list.length - 1)]!.key];
    }
    hover = focus = beforeClick = null;
    neighbours = [];
    selected = new Set();
    epoch = 0;
    version++;
  }
  const chosen = choice.map((k) => all.find((s) => s.key === k)!);
  // a run's subset and epochs come first
  if (chosen.some((s) => s.run && !detailOf(s.run))) {
    root.append(message('loading the stored embeddings…'));
    return;
  }

  const controls = h('div', { class: 'controls' });
  choice.forEach((key, side) => {
    const s = h('select', { 'aria-label': side === 0 ? 'left map' : 'right map' });
    if (runs.length > 0) s.append(h('optgroup', { label: 'runs through training' }, ...runs.map((r) => h('option', { value: r.key }, r.title))));
    for (const p of panels) s.append(h('optgroup', { label: `${p.folder} (results.json)` }, ...p.list.map((r) => h('option', { value: r.key }, r.title))));
    s.value = key;
    s.addEventListener('change', () => {
      choice[side] = s.value;
      focus = beforeClick = null;
      neighbours = [];
      version++;
      renderEmbedding(root);
    });
    controls.append(s);
  });
  root.append(controls);

  const labels = new Set<number>();
  const box = h('div', { class: 'maps' });
  for (const [side, src] of chosen.entries()) {
    const m = makeMap(src, side);
    m.labels.forEach((l, i) => {
      labels.add(l);
      labelOf.set(m.indices[i]!, l);
    });
    box.append(m.canvas.parentElement!);
  }
  const epochs = sliderEpochs();
  if (epochs.length > 0) {
    if (epoch < epochs[0]! || epoch > epochs.at(-1)!) epoch = epochs[0]!;
    root.append(epochControls(epochs));
  }
  const legend = h('div', { class: 'legend' });
  for (const c of [...labels].sort((a, b) => a - b)) {
    const s = h('span', {}, `class ${c}`);
    s.style.setProperty('--c', colorOf(c));
    legend.append(s);
  }
  root.append(legend, box);
  root.append(h('div', { class: 'note', 'data-testid': 'images-note' }));
  root.append(h('div', { 'data-testid': 'selection' }));
  const about = chosen.map((s) =>
    s.tsne
      ? `${s.title}: t-SNE perplexity ${s.tsne.params.perplexity}, ${s.tsne.params.iterations} iterations, seed ${s.tsne.params.seed}; click: the ${K} nearest points in the map.`
      : `${s.title}: ${(details.get(s.run!) as RunDetail).indices.length} test images, each epoch laid out by t-SNE from the previous epoch's map; click: the ${K} nearest in the ${(details.get(s.run!) as RunDetail).dim}-d embedding.`,
  );
  root.append(h('p', { class: 'note' }, ...about.flatMap((a) => [a, h('br')]), 'Hover: the same image in both maps. Drag: select a box. Wheel: zoom; shift-drag or middle-drag: pan; double-click: whole map.'));
  for (const m of maps) if (m.src.run) showEpoch(m, false);
  describe();
  draw();
}

function epochControls(epochs: number[]): HTMLElement {
  const slider = h('input', { type: 'range', min: epochs[0]!, max: epochs.at(-1)!, step: 1, value: epoch, 'aria-label': 'epoch' });
  const label = h('span', { 'data-testid': 'epoch' }, `epoch ${epoch}`);
  const play = h('button', { 'data-testid': 'play', type: 'button' }, '▶ play');
  slider.addEventListener('input', () => {
    playing = false;
    play.textContent = '▶ play';
    setEpoch(Number(slider.value));
  });
  play.addEventListener('click', () => {
    playing = !playing;
    play.textContent = playing ? '❚❚ pause' : '▶ play';
    if (playing) void playLoop(slider, play);
  });
  return h('div', { class: 'controls slider' }, play, slider, label);
}

async function playLoop(slider: HTMLInputElement, play: HTMLElement): Promise<void> {
  const list = sliderEpochs();
  if (epoch >= list.at(-1)!) setEpoch(list[0]!);
  while (playing) {
    const next = list.find((e) => e > epoch);
    if (next === undefined) break;
    // wait for every map's layout of the next epoch, so the maps move together
    await Promise.all(maps.filter((m) => m.src.run).map((m) => layoutOf(m.src.run!, storedEpoch(details.get(m.src.run!) as RunDetail, next))));
    if (!playing || !slider.isConnected) return;
    slider.value = String(next);
    setEpoch(next);
    await new Promise((r) => setTimeout(r, PLAY_MS));
  }
  playing = false;
  play.textContent = '▶ play';
}

function setEpoch(e: number): void {
  epoch = e;
  const label = rootEl?.querySelector('[data-testid=epoch]');
  if (label) label.textContent = `epoch ${e}`;
  for (const m of maps) if (m.src.run) showEpoch(m, true);
}

/** Bring a run map to the slider's epoch: fetch (or reuse) its layout, glide to it, follow the focus. */
function showEpoch(m: MapView, animate: boolean): void {
  const d = details.get(m.src.run!) as RunDetail;
  const e = storedEpoch(d, epoch);
  if (m.wanted === e && m.shown === e) return;
  m.wanted = e;
  if (m.shown === null) m.note.textContent = `${m.src.title}: laying out epoch ${e}…`;
  void layoutOf(m.src.run!, e).then((pts) => {
    if (m.wanted !== e || !m.canvas.isConnected) return;
    if (typeof pts === 'string') {
      m.note.textContent = `${m.src.title}, epoch ${e}: ${pts}`;
      return;
    }
    m.note.textContent = `${m.src.title}, epoch ${e}`;
    setPoints(m, pts, animate && m.shown !== null);
    m.shown = e;
    if (focus?.map === m) void embeddingNeighbours(m, focus.id);
    // the next epochs, in order, while the user looks at this one (the server lays them out once)
    const later = d.epochs.filter((x) => x > e);
    void later.reduce<Promise<unknown>>((p, x) => p.then(() => (m.canvas.isConnected ? layoutOf(m.src.run!, x) : undefined)), Promise.resolve());
  });
}

/** Screen coordinates of a layout: its bounding box fitted into the square. */
function toScreen(pts: ArrayLike<number>, n: number): { x: Float32Array; y: Float32Array } {
  let x0 = Infinity, x1 = -Infinity, y0 = Infinity, y1 = -Infinity;
  for (let i = 0; i < n; i++) {
    x0 = Math.min(x0, pts[2 * i]!); x1 = Math.max(x1, pts[2 * i]!);
    y0 = Math.min(y0, pts[2 * i + 1]!); y1 = Math.max(y1, pts[2 * i + 1]!);
  }
  const scale = (SIZE - 2 * PAD) / Math.max(x1 - x0, y1 - y0, 1e-9);
  const x = new Float32Array(n);
  const y = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    x[i] = PAD + (pts[2 * i]! - x0) * scale;
    y[i] = PAD + (pts[2 * i + 1]! - y0) * scale;
  }
  return { x, y };
}

function setPoints(m: MapView, pts: ArrayLike<number>, animate: boolean): void {
  const n = m.indices.length;
  m.pts = pts;
  const to = toScreen(pts, n);
  if (animate) {
    // the glide runs in unzoomed coordinates: zooming or panning while it runs moves it along
    m.from = { x: m.bx.slice(), y: m.by.slice(), tx: to.x, ty: to.y, t0: performance.now() };
    delete m.canvas.dataset['epoch'];
  } else {
    m.bx.set(to.x);
    m.by.set(to.y);
    m.from = null;
    applyZoom(m);
  }
  m.layerVersion = -1;
  schedule();
}

/** The drawn coordinates from the unzoomed ones and the map's zoom. */
function applyZoom(m: MapView): void {
  const { k, tx, ty } = m.zoom;
  for (let i = 0; i < m.sx.length; i++) {
    m.sx[i] = m.bx[i]! * k + tx;
    m.sy[i] = m.by[i]! * k + ty;
  }
}

/** A new zoom or pan for one map: its points follow, the hover ends (the point moved away). */
function setZoom(m: MapView, z: Zoom): void {
  m.zoom = z;
  zooms.set(m.zoomKey, z);
  m.canvas.dataset['zoom'] = `${z.k},${z.tx},${z.ty}`;
  applyZoom(m);
  m.layerVersion = -1;
  hover = null;
  m.tip.style.display = 'none';
  shownTip = null;
  schedule();
}

function makeMap(src: Source, side: number): MapView {
  let indices: number[], labels: number[];
  if (src.tsne) {
    indices = src.tsne.indices;
    labels = src.tsne.labels;
  } else {
    const d = details.get(src.run!) as RunDetail;
    indices = d.indices;
    labels = d.labels;
  }
  const n = indices.length;
  const dpr = window.devicePixelRatio || 1;
  const canvas = h('canvas', { width: SIZE * dpr, height: SIZE * dpr, 'data-source': src.key });
  canvas.style.width = canvas.style.height = `${SIZE}px`;
  const tip = h('div', { class: 'tip' });
  const note = h('div', { class: 'note' }, src.title);
  const layer = document.createElement('canvas');
  layer.width = canvas.width;
  layer.height = canvas.height;
  const classes = [...new Set(labels)].sort((a, b) => a - b);
  const classOf = new Map(classes.map((c, k) => [c, k]));
  const zoomKey = `${side}|${src.key}`;
  const zoom = zooms.get(zoomKey) ?? { k: 1, tx: 0, ty: 0 };
  const m: MapView = {
    src, indices, labels, rowOf: new Map(indices.map((id, row) => [id, row])), canvas, tip, note, pts: null, shown: null, wanted: null,
    bx: new Float32Array(n).fill(-100), by: new Float32Array(n).fill(-100), from: null,
    sx: new Float32Array(n).fill(-100), sy: new Float32Array(n).fill(-100), zoom, zoomKey,
    cls: Uint16Array.from(labels, (l) => classOf.get(l)!), classes, layer, layerVersion: -1,
  };
  if (zooms.has(zoomKey)) canvas.dataset['zoom'] = `${zoom.k},${zoom.tx},${zoom.ty}`;
  maps.push(m);
  h('div', { class: 'map' }, note, canvas, tip);
  if (src.tsne) setPoints(m, src.tsne.panels[src.panel!]!.points, false);
  loadImages(src, indices);

  const nearest = (px: number, py: number, within: number): number | null => {
    if (!m.pts) return null;
    let best = -1;
    let bd = within * within;
    for (let i = 0; i < n; i++) {
      const d = (m.sx[i]! - px) ** 2 + (m.sy[i]! - py) ** 2;
      if (d < bd) { bd = d; best = i; }
    }
    return best < 0 ? null : best;
  };
  let drag: { x: number; y: number } | null = null;
  let box: [number, number, number, number] | null = null;
  let pan: { x: number; y: number; tx: number; ty: number } | null = null;
  const pos = (e: MouseEvent): [number, number] => {
    const r = canvas.getBoundingClientRect();
    return [e.clientX - r.left, e.clientY - r.top];
  };
  canvas.addEventListener(
    'wheel',
    (e) => {
      e.preventDefault();
      const [x, y] = pos(e);
      const { k, tx, ty } = m.zoom;
      const k2 = Math.min(MAX_ZOOM, Math.max(1, k * Math.exp(-e.deltaY / 300)));
      // the point under the pointer stays under it
      setZoom(m, { k: k2, tx: x - ((x - tx) / k) * k2, ty: y - ((y - ty) / k) * k2 });
    },
    { passive: false },
  );
  canvas.addEventListener('dblclick', () => {
    if (beforeClick) {
      ({ focus, neighbours, nearKind, selected } = beforeClick);
      beforeClick = null;
      version++;
      describe();
    }
    setZoom(m, { k: 1, tx: 0, ty: 0 });
  });
  canvas.addEventListener('mousedown', (e) => {
    const [x, y] = pos(e);
    // shift-drag or the middle button pans; a plain drag selects a box
    if (e.shiftKey || e.button === 1) {
      pan = { x, y, tx: m.zoom.tx, ty: m.zoom.ty };
      e.preventDefault();
      return;
    }
    drag = { x, y };
  });
  canvas.addEventListener('mousemove', (e) => {
    const [x, y] = pos(e);
    if (pan) {
      setZoom(m, { k: m.zoom.k, tx: pan.tx + x - pan.x, ty: pan.ty + y - pan.y });
      return;
    }
    if (drag && Math.abs(x - drag.x) + Math.abs(y - drag.y) > 4) {
      box = [Math.min(drag.x, x), Math.min(drag.y, y), Math.max(drag.x, x), Math.max(drag.y, y)];
      boxes.set(m, box);
    }
    const i = nearest(x, y, 8);
    const id = i === null ? null : indices[i]!;
    if (id !== hover) {
      hover = id;
      if (i === null || id === null) {
        tip.style.display = 'none';
        shownTip = null;
      } else {
        tip.style.display = 'block';
        tip.style.left = `${m.sx[i]! + 8}px`;
        tip.style.top = `${m.sy[i]! + 8}px`;
        fillTip(tip, m, id);
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
    // the second click of a double-click selects nothing (the dblclick event follows)
    if (e.detail >= 2 && !box) {
      drag = null;
      return;
    }
    beforeClick = box ? null : { focus, neighbours, nearKind, selected };
    neighbours = [];
    if (box) {
      const [a, b, c, d] = box;
      selected = new Set();
      for (let i = 0; i < n; i++) if (m.sx[i]! >= a && m.sx[i]! <= c && m.sy[i]! >= b && m.sy[i]! <= d) selected.add(indices[i]!);
      focus = null;
    } else {
      const i = nearest(x, y, 12);
      focus = i === null ? null : { id: indices[i]!, map: m };
      if (focus === null) selected = new Set();
      else if (src.run) void embeddingNeighbours(m, focus.id);
      else mapNeighbours(m, i!);
    }
    drag = null;
    box = null;
    boxes.delete(m);
    version++;
    describe();
    schedule();
  });
  return m;
}

/** The k nearest points of row f in a map's 2-D layout. */
function mapNeighbours(m: MapView, f: number): void {
  const pts = m.pts!;
  const all: { id: number; d: number }[] = [];
  for (let i = 0; i < m.indices.length; i++) if (i !== f) all.push({ id: m.indices[i]!, d: Math.hypot(pts[2 * i]! - pts[2 * f]!, pts[2 * i + 1]! - pts[2 * f + 1]!) });
  all.sort((p, q) => p.d - q.d);
  neighbours = all.slice(0, K);
  nearKind = 'map';
}

/** The k nearest images in the run's embedding space at the epoch its map shows (the server's brute force). */
async function embeddingNeighbours(m: MapView, id: number): Promise<void> {
  const e = m.shown;
  const row = m.rowOf.get(id);
  if (e === null || row === undefined) return;
  const r = await getJson<{ ok: true; neighbours: { i: number; d: number }[] } | { ok: false; message: string }>(
    `/api/neighbours?run=${encodeURIComponent(m.src.run!)}&epoch=${e}&i=${row}&k=${K}`,
  ).catch((err: Error) => ({ ok: false as const, message: err.message }));
  // a newer click or epoch has taken over
  if (focus?.id !== id || focus.map !== m || m.shown !== e) return;
  nearKind = 'embedding';
  neighbours = r.ok ? r.neighbours.map((x) => ({ id: m.indices[x.i]!, d: x.d })) : [];
  if (!r.ok) m.note.textContent = `${m.src.title}: neighbours: ${r.message}`;
  version++;
  describe();
  schedule();
}

/** the rows ordered by bucket, reused between draws: every frame of a pan or a glide draws all of them */
let order = new Uint32Array(0);

function drawPoints(m: MapView, near: ReadonlySet<number>, dpr: number): void {
  const ctx = m.layer.getContext('2d');
  if (!ctx) return;
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  ctx.clearRect(0, 0, SIZE, SIZE);
  if (!m.pts) return;
  const dim = selected.size > 0 || focus !== null;
  const n = m.sx.length;
  if (order.length < n) order = new Uint32Array(n);
  // a counting sort by bucket (class * 2 + faded), then one path and one fill per class and shade,
  // not a fillStyle change and a fill per point; points off the canvas (zoomed in) are left out
  const fid = focus?.id;
  const bucket = new Uint16Array(n);
  const counts = new Uint32Array(2 * m.classes.length);
  for (let i = 0; i < n; i++) {
    const id = m.indices[i]!;
    const b = 2 * m.cls[i]! + (dim && !selected.has(id) && !near.has(id) && id !== fid ? 1 : 0);
    bucket[i] = b;
    counts[b]!++;
  }
  const start = new Uint32Array(counts.length + 1);
  for (let b = 0; b < counts.length; b++) start[b + 1] = start[b]! + counts[b]!;
  const next = start.slice(0, counts.length);
  for (let i = 0; i < n; i++) order[next[bucket[i]!]!++] = i;
  for (let b = 0; b < counts.length; b++) {
    if (counts[b] === 0) continue;
    ctx.fillStyle = fill(m.classes[b >> 1]!, (b & 1) === 1);
    ctx.beginPath();
    for (let k = start[b]!; k < start[b + 1]!; k++) {
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
  const dpr = window.devicePixelRatio || 1;
  const near = new Set(neighbours.map((n) => n.id));
  let moving = false;
  for (const m of maps) {
    const ctx = m.canvas.getContext('2d');
    if (!ctx) continue;
    if (m.from) {
      // glide: smoothstep from the old screen positions to the new ones
      const t = Math.min(1, (performance.now() - m.from.t0) / MOVE_MS);
      const s = t * t * (3 - 2 * t);
      const { x, y, tx, ty } = m.from;
      for (let i = 0; i < m.bx.length; i++) {
        m.bx[i] = x[i]! + (tx[i]! - x[i]!) * s;
        m.by[i] = y[i]! + (ty[i]! - y[i]!) * s;
      }
      applyZoom(m);
      if (t >= 1) m.from = null;
      else moving = true;
      m.layerVersion = -1;
    }
    if (!m.from && m.shown !== null) m.canvas.dataset['epoch'] = String(m.shown);
    if (m.layerVersion !== version) {
      drawPoints(m, near, dpr);
      m.layerVersion = version;
    }
    ctx.setTransform(1, 0, 0, 1, 0, 0);
    ctx.clearRect(0, 0, m.canvas.width, m.canvas.height);
    ctx.drawImage(m.layer, 0, 0);
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    const ring = (id: number | null | undefined, r: number, color: string): void => {
      const i = id === null || id === undefined ? undefined : m.rowOf.get(id);
      if (i === undefined || !m.pts) return;
      ctx.beginPath();
      ctx.arc(m.sx[i]!, m.sy[i]!, r, 0, 2 * Math.PI);
      ctx.strokeStyle = color;
      ctx.lineWidth = 2;
      ctx.stroke();
    };
    for (const id of near) ring(id, 5, '#1d232b');
    ring(focus?.id, 8, '#e15759');
    ring(hover, 7, '#000');
    const b = boxes.get(m);
    if (b) {
      ctx.strokeStyle = '#2a62c9';
      ctx.lineWidth = 1;
      ctx.strokeRect(b[0], b[1], b[2] - b[0], b[3] - b[1]);
    }
  }
  if (moving) schedule();
}

function describe(): void {
  const out = rootEl?.querySelector<HTMLElement>('[data-testid=selection]');
  if (!out) return;
  clear(out);
  if (focus !== null) {
    const f = focus;
    const where = nearKind === 'embedding' ? `nearest in the embedding space (${f.map.src.title}, epoch ${f.map.shown})` : 'nearest in the map';
    out.append(h('h2', {}, `Test image #${f.id} (class ${labelOf.get(f.id)}): ${K} ${where}`));
    const self = thumbnail(f.map.src, f.id, 3);
    if (self) out.append(self);
    const list = h('ol', { 'data-testid': 'neighbours', 'data-kind': nearKind });
    for (const n of neighbours) {
      list.append(
        h('li', { 'data-index': n.id, 'data-distance': n.d }, thumbnail(f.map.src, n.id), ` #${n.id} · class ${labelOf.get(n.id)} · ${nearKind === 'map' ? 'map distance' : 'distance'} ${n.d.toFixed(nearKind === 'map' ? 2 : 4)}`),
      );
    }
    out.append(list);
  } else if (selected.size > 0) {
    const counts = new Map<number, number>();
    for (const id of selected) counts.set(labelOf.get(id)!, (counts.get(labelOf.get(id)!) ?? 0) + 1);
    out.append(h('h2', {}, `${selected.size} points selected`));
    const list = h('ul', { 'data-testid': 'composition' });
    for (const [c, k] of [...counts].sort((a, b) => b[1] - a[1])) list.append(h('li', {}, `class ${c}: ${k} (${((100 * k) / selected.size).toFixed(1)} %)`));
    out.append(list);
  }
}

/**
 * A run's log grew (an epoch finished): its stored epochs grow too. Shown runs get the new
 * epochs on their slider without a redraw; a run not seen storing before is picked up the next
 * time the view is drawn.
 */
export function embeddingRunChanged(id: string): void {
  if (snapRuns === null) return;
  const known = snapRuns.find((r) => r.id === id);
  if (!known) {
    snapRuns = null;
    return;
  }
  const d = details.get(id);
  if (!d || d instanceof Promise) return;
  void getJson<({ ok: true } & RunDetail) | { ok: false; message: string }>(`/api/snapshots?run=${encodeURIComponent(id)}`).then((r) => {
    if (!r.ok || r.epochs.length === d.epochs.length) return;
    d.epochs = r.epochs;
    known.epochs = r.epochs;
    const slider = rootEl?.querySelector<HTMLInputElement>('input[aria-label=epoch]');
    const list = sliderEpochs();
    if (slider && list.length > 0) slider.max = String(list.at(-1)!);
  }, () => undefined);
}
