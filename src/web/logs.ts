/**
 * The runs' logs, fetched when a view draws them and only for the runs it draws, in batches
 * (/api/logs takes up to 64 runs): a sweep folder holds hundreds of trial runs, and one request
 * per run would hold up the page and the server. Later epochs arrive as `log` events (main.ts).
 */
import { getJson, type LogPayload, type RunInfo, state } from './state.ts';

/** runs per request: the server's MAX_LOGS */
const BATCH = 64;
/** and a URL well under the server's header limit (Node: 16 KiB) whatever the run ids' length */
const MAX_URL = 6000;

const pending = new Set<string>();
let loaded: () => void = () => undefined;

/** What to do once a batch has arrived (main.ts redraws the views that use logs). */
export function onLogsLoaded(f: () => void): void {
  loaded = f;
}

/** Fetch the logs of these runs that the page has neither got nor asked for yet. */
export function needLogs(runs: readonly RunInfo[]): void {
  const ids = runs.filter((r) => !r.history && !state.logs.has(r.id) && !pending.has(r.id)).map((r) => r.id);
  let batch: string[] = [];
  let url = '/api/logs?';
  for (const id of ids) {
    const part = `run=${encodeURIComponent(id)}`;
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

async function fetchBatch(ids: string[], url: string): Promise<void> {
  for (const id of ids) pending.add(id);
  let got = 0;
  try {
    const { logs } = await getJson<{ logs: LogPayload[] }>(url);
    for (const l of logs) {
      // a log event may have brought a newer log while this request was out: logs only grow
      const had = state.logs.get(l.id);
      if (!had || l.epochs.length > had.epochs.length) state.logs.set(l.id, l);
      got++;
    }
  } catch {
    // the server went away: the event stream reconnects, and its runs event draws (and asks) again
  } finally {
    for (const id of ids) pending.delete(id);
  }
  // (runs the server no longer has are left out of the answer: no redraw that would ask again)
  if (got > 0) loaded();
}
