/**
 * The page of `siamese serve`. It loads nothing but this bundle and the server's JSON: the
 * runs table comes with the event stream's first message, later the rows that change, as
 * events (no polling).
 */
import 'uplot/dist/uPlot.min.css';
import './style.css';
import { renderCurves } from './curves.ts';
import { renderDistances } from './distances.ts';
import { embeddingRunChanged, renderEmbedding } from './embedding.ts';
import { at, type Chunk, fromCurrent, merge, serverOf } from './chunks.ts';
import { logsConnected, mergeLog, onLogsLoaded, resyncLogs } from './logs.ts';
import { applyRows, newer, type RunsDelta } from './rows.ts';
import { renderRuns } from './runs.ts';
import { message } from './dom.ts';
import { pacer } from './pace.ts';
import { renderShapes } from './shapes.ts';
import { renderSweep } from './sweep.ts';
import { type EpochDistances, type EpochLine, getJson, type ResultsState, type RunsPayload, state } from './state.ts';

const VIEWS: Record<string, (root: HTMLElement) => void> = {
  runs: renderRuns,
  curves: renderCurves,
  shapes: renderShapes,
  distances: renderDistances,
  embedding: renderEmbedding,
  sweep: renderSweep,
};
let active = 'runs';
/** views whose data changed while hidden: drawn when shown */
const stale = new Set(Object.keys(VIEWS));

function view(name: string): HTMLElement {
  return document.getElementById(`view-${name}`)!;
}

/** Redraw the views whose data changed: the active one (paced: pace.ts), the others when shown. `now`: the user asked (a tab). */
function render(names: string[] = Object.keys(VIEWS), now = false): void {
  for (const n of names) stale.add(n);
  if (stale.has(active)) redraw.ask(now);
}

/** the first table and what it needs have come: body[data-ready] once they are drawn */
let readyWanted = false;

/** The active view, if its data changed; its name, or null when it had nothing new. */
function draw(): string | null {
  const name = active;
  const due = stale.delete(name);
  if (due && state.server === undefined) {
    // before the event stream's first table every view would say there are no runs: there may be
    view(name).replaceChildren(message('connecting to the server…'));
    stale.add(name);
  } else if (due) {
    try {
      VIEWS[name]!(view(name));
    } catch (e) {
      // a view that fails shows why in its own panel; the others go on
      const el = view(name);
      el.replaceChildren();
      const m = document.createElement('div');
      m.className = 'msg';
      m.textContent = `this view failed: ${(e as Error).message}`;
      el.append(m);
    }
  }
  if (readyWanted) document.body.dataset['ready'] = '1';
  return due ? name : null;
}

const redraw = pacer({ now: () => performance.now(), setTimeout: (f, ms) => setTimeout(f, ms), clearTimeout: (t) => clearTimeout(t as ReturnType<typeof setTimeout>) }, draw, () => active);

// The logs are read by the Curves view as it draws, for the runs it draws (logs.ts): the first
// view (the runs table) needs none of them, nor do a sweep's trials until they are asked for.
onLogsLoaded(() => render(['curves']));

/** The per-epoch distance histograms likewise: fetched when Distances is first shown. */
let wantDistances = false;

function loadMissingDistances(): Promise<void>[] {
  return wantDistances ? state.runs.filter((r) => r.distances && !state.distances.has(r.id)).map((r) => loadDistances(r.id).then(() => undefined)) : [];
}

function show(name: string): void {
  if (!VIEWS[name]) return;
  active = name;
  if (name === 'distances' && !wantDistances) {
    wantDistances = true;
    const fetches = loadMissingDistances();
    if (fetches.length > 0) void Promise.all(fetches).then(() => render(['distances']));
  }
  for (const b of document.querySelectorAll<HTMLButtonElement>('#tabs button')) b.classList.toggle('active', b.dataset['tab'] === name);
  for (const n of Object.keys(VIEWS)) view(n).classList.toggle('active', n === name);
  if (location.hash !== `#${name}`) history.replaceState(null, '', `#${name}`);
  render([], true);
}

/** a run's distances: the whole file, or what follows the lines the page holds; true if they changed */
async function loadDistances(id: string, again = true): Promise<boolean> {
  const have = state.distances.get(id);
  try {
    const c = await getJson<Chunk<EpochDistances>>(`/api/distances?run=${encodeURIComponent(id)}${have ? `&at=${encodeURIComponent(at(have))}` : ''}`);
    // a late answer of the server before a restart is dropped: asked once more, of the current one
    if (!fromCurrent(c.gen, state.server)) return again ? loadDistances(id, false) : false;
    return mergeDistances(c);
  } catch {
    // the run vanished meanwhile: the next runs event drops it
    return false;
  }
}

function mergeDistances(c: Chunk<EpochDistances>): boolean {
  const m = merge(state.distances.get(c.id), c, state.server);
  if (m === 'resync') void loadDistances(c.id).then((changed) => changed && render(['distances']));
  if (typeof m === 'string') return false;
  state.distances.set(c.id, m);
  return true;
}

/** /api/results answers received, on body[data-results-answers] (what a test waits for) */
let resultsAnswers = 0;
/** requests for /api/results so far, and per folder the number of its latest: an earlier one's answer arriving after it is older */
let resultsRequests = 0;
const resultsAsked = new Map<string, number>();

async function loadResults(folder: string): Promise<void> {
  const ask = ++resultsRequests;
  resultsAsked.set(folder, ask);
  let r: ResultsState;
  try {
    r = await getJson<ResultsState>(`/api/results?folder=${encodeURIComponent(folder)}`);
  } catch (e) {
    r = { ok: false, message: (e as Error).message };
  }
  document.body.dataset['resultsAnswers'] = String(++resultsAnswers);
  // two requests out (results.json replaced twice): the answers may come in either order
  if (resultsAsked.get(folder) === ask) state.results.set(folder, r);
}

/** the views drawn from the runs list; the embedding reads results.json only */
const RUN_VIEWS = ['runs', 'curves', 'shapes', 'sweep', 'distances'];

async function onRuns(p: RunsPayload): Promise<void> {
  const folderKey = (fs: RunsPayload['folders']): string => JSON.stringify(fs);
  const foldersChanged = folderKey(p.folders) !== folderKey(state.folders);
  state.roots = p.roots;
  state.folders = p.folders;
  state.runs = p.runs;
  const fetches = loadMissingDistances();
  for (const id of [...state.distances.keys()]) if (!p.runs.some((r) => r.id === id && r.distances)) state.distances.delete(id);
  const ids = new Set(p.runs.map((r) => r.id));
  for (const id of [...state.logs.keys()]) if (!ids.has(id)) state.logs.delete(id);
  for (const f of p.folders) if ((f.results || f.message) && !state.results.has(f.id)) fetches.push(loadResults(f.id));
  for (const id of [...state.results.keys()]) if (!p.folders.some((f) => f.id === id)) state.results.delete(id);
  for (const id of [...resultsAsked.keys()]) if (!p.folders.some((f) => f.id === id)) resultsAsked.delete(id);
  // an epoch of a running compare must not redraw (and reset) the explorer's maps
  render(foldersChanged ? undefined : RUN_VIEWS);
  if (fetches.length > 0) {
    await Promise.all(fetches);
    render();
  }
  readyWanted = true;
  // drawn already, unless a redraw waits: then once it is
  if (!redraw.waiting) document.body.dataset['ready'] = '1';
}

/** the runs table as last drawn: replaced by a whole one, updated by `rows` events (rows.ts) */
let table: RunsPayload | undefined;
/** a fetch of the whole table is on its way: deltas wait for it */
let fetching = false;
const waiting: RunsDelta[] = [];

function takeTable(t: RunsPayload): void {
  if (!newer(t, table, state.server)) return;
  table = t;
  void onRuns(t);
}

function onRowsEvent(d: RunsDelta): void {
  if (fetching) {
    waiting.push(d);
    return;
  }
  const m = applyRows(table, d, state.server);
  if (m === 'resync') return void fetchTable();
  if (m !== 'same') takeTable(m);
}

/** A delta did not follow on (one missed): the whole table, then the deltas that came meanwhile. */
async function fetchTable(): Promise<void> {
  fetching = true;
  let t: RunsPayload | undefined;
  try {
    t = await getJson<RunsPayload>('/api/runs');
  } catch {
    // the server is gone: the event stream's reconnection brings the whole table
  }
  fetching = false;
  if (t) takeTable(t);
  for (const d of waiting.splice(0)) onRowsEvent(d);
}

function connect(): void {
  const live = document.getElementById('live')!;
  const es = new EventSource('/api/events');
  let opened = false;
  es.addEventListener('open', () => {
    live.textContent = 'live';
    live.className = 'live on';
  });
  es.addEventListener('error', () => {
    // EventSource reconnects by itself (the server sets retry: 1000)
    live.textContent = 'reconnecting…';
    live.className = 'live off';
  });
  // the whole table when the stream opens (and reopens), then only its changes
  es.addEventListener('runs', (e) => {
    const t = JSON.parse((e as MessageEvent<string>).data) as RunsPayload;
    // the server this stream reaches (a restarted one has another id): from now on, replies and
    // events of any other are stale; set before asking anything of this one
    state.server = serverOf(t.version);
    logsConnected();
    takeTable(t);
    // back after a break: lines appended meanwhile were sent to no one; ask for what follows ours
    if (opened) {
      resyncLogs([...state.logs.keys()]);
      for (const id of state.distances.keys()) void loadDistances(id).then((changed) => changed && render(['distances']));
    }
    opened = true;
  });
  es.addEventListener('rows', (e) => onRowsEvent(JSON.parse((e as MessageEvent<string>).data) as RunsDelta));
  es.addEventListener('log', (e) => {
    const l = JSON.parse((e as MessageEvent<string>).data) as Chunk<EpochLine>;
    if (mergeLog(l)) render(['curves']);
    // a new epoch's embeddings are stored before its log line: the explorer's slider grows
    embeddingRunChanged(l.id);
  });
  es.addEventListener('distances', (e) => {
    const d = JSON.parse((e as MessageEvent<string>).data) as Chunk<EpochDistances>;
    if (mergeDistances(d)) render(['distances']);
  });
  es.addEventListener('results', (e) => {
    const { folder } = JSON.parse((e as MessageEvent<string>).data) as { folder: string };
    void loadResults(folder).then(() => render());
  });
}

for (const b of document.querySelectorAll<HTMLButtonElement>('#tabs button')) b.addEventListener('click', () => show(b.dataset['tab']!));
show(location.hash.slice(1) || 'runs');
connect();
