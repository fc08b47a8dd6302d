/**
 * The runs' logs, fetched when a view draws them and only for the runs it draws, in batches
 * (/api/logs takes up to 64 runs): a sweep folder holds hundreds of trial runs, and one request
 * per run would hold up the page and the server. Later epochs arrive as `log` events carrying
 * the lines appended (main.ts); after a gap (a reconnect) the page asks for the lines after
 * those it holds (`at=GEN:OFFSET`), not the whole log again.
 */
import { at, type Chunk, fromCurrent, merge } from './chunks.ts';
import { type EpochLine, getJson, type RunInfo, state } from './state.ts';

/** runs per request: the server's MAX_LOGS */
const BATCH = 64;
/** and a URL well under the server's header limit (Node: 16 KiB) whatever the run ids' length */
const MAX_URL = 6000;

const pending = new Set<string>();
/** runs whose answer came from a server other than the current one, asked again once since the last `runs` event */
const retried = new Set<string>();

/** A `runs` event came (a connection, perhaps to a restarted server): answers dropped as stale may be asked for again. */
export function logsConnected(): void {
  retried.clear();
}
let loaded: () => void = () => undefined;

/** What to do once a batch has arrived (main.ts redraws the views that use logs). */
export function onLogsLoaded(f: () => void): void {
  loaded = f;
}

/** Fetch the logs of these runs that the page has neither got nor asked for yet. */
export function needLogs(runs: readonly RunInfo[]): void {
  request(runs.filter((r) => !r.history && !state.logs.has(r.id)).map((r) => r.id));
}

/** Ask for what follows the lines the page holds of these runs' logs (after a reconnect or a missed event). */
export function resyncLogs(ids: readonly string[]): void {
  request(ids.filter((id) => state.logs.has(id)));
}

function request(wanted: readonly string[]): void {
  const ids = wanted.filter((id) => !pending.has(id));
  let batch: string[] = [];
  let url = '/api/logs?';
  for (const id of ids) {
    const have = state.logs.get(id);
    const part = `run=${encodeURIComponent(id)}&at=${have ? encodeURIComponent(at(have)) : ''}`;
    if (batch.length > 0 && (batch.length >= BATCH || url.length + 1 + part.length > MAX_URL)) {
      void fetchBatch(batch, url);
      batch = [];
      url = '/api/logs?';
    }
    url += `${batch.length > 0 ? '&' : ''}${part}`;
    batch.push(id);
  }
  if (batch.length > 0) void fetchBatch(batch, url);
}

/** Merge a log chunk (an answer or an event) into the page's logs; true if the page's log changed. */
export function mergeLog(c: Chunk<EpochLine>): boolean {
  const m = merge(state.logs.get(c.id), c, state.server);
  if (m === 'resync') resyncLogs([c.id]);
  if (typeof m === 'string') return false;
  state.logs.set(c.id, m);
  return true;
}

async function fetchBatch(ids: string[], url: string): Promise<void> {
  for (const id of ids) pending.add(id);
  let got = 0;
  try {
    const { logs } = await getJson<{ logs: Chunk<EpochLine>[] }>(url);
    for (const id of ids) pending.delete(id);
    // events may have brought newer lines while this request was out: merge keeps the newest
    for (const l of logs) if (mergeLog(l)) got++;
    // answered by the server before a restart, arriving late: dropped, and asked of the current one
    // (once: while the event stream has not reached a newer server yet, its runs event asks again)
    const stale = logs.filter((l) => !fromCurrent(l.gen, state.server) && !retried.has(l.id)).map((l) => l.id);
    for (const id of stale) retried.add(id);
    if (stale.length > 0) queueMicrotask(() => request(stale.filter((id) => !pending.has(id))));
  } catch {
    // the server went away: the event stream reconnects, and its runs event draws (and asks) again
  } finally {
    for (const id of ids) pending.delete(id);
  }
  // (runs the server no longer has are left out of the answer: no redraw that would ask again)
  if (got > 0) loaded();
}
