/**
 * The page's side of the runs table (server: serve/runsTable.ts). The page holds the table at a
 * version: a `runs` event or `/api/runs` answer replaces it whole, a `rows` event that applies
 * to the version held updates it (rows added after the row they follow, changed, removed), one
 * already held is dropped, and one that does not follow on means fetching the whole table
 * again. No DOM here: the tests apply the server's events with this very function.
 */
import type { RunsDelta, RunsSnapshot } from '../serve/runsTable.ts';
import { fromCurrent, later } from './chunks.ts';

export type { RunsDelta, RunsSnapshot };

/**
 * `have` with delta `d` applied; 'same' when `have` already includes it, or when `d` comes from
 * a server other than `current` (the one the page is connected to: a late event of the server
 * before a restart); 'resync' when the page must fetch the whole table (no table yet, a delta
 * missed, a table of an earlier server held).
 */
export function applyRows(have: RunsSnapshot | undefined, d: RunsDelta, current?: string): RunsSnapshot | 'same' | 'resync' {
  if (!fromCurrent(d.version, current)) return 'same';
  if (!have) return 'resync';
  if (d.base !== have.version) return later(d.version, have.version, current) ? 'resync' : 'same';
  const removed = new Set(d.remove);
  const runs = removed.size > 0 ? have.runs.filter((r) => !removed.has(r.id)) : [...have.runs];
  const index = new Map(runs.map((r, i) => [r.id, i]));
  for (const u of d.upsert) {
    const i = index.get(u.row.id);
    if (i !== undefined) {
      runs[i] = u.row;
      continue;
    }
    // a new row: after the row it follows (added before it in this delta, or one the page holds)
    const at = u.after === null || u.after === undefined ? 0 : (index.get(u.after) ?? -2) + 1;
    if (at < 0) return 'resync';
    runs.splice(at, 0, u.row);
    for (let j = at; j < runs.length; j++) index.set(runs[j]!.id, j);
  }
  let ordered = runs;
  if (d.order) {
    const byId = new Map(runs.map((r) => [r.id, r]));
    ordered = d.order.map((id) => byId.get(id)!);
    if (ordered.some((r) => r === undefined)) return 'resync';
  }
  if (ordered.length !== d.count) return 'resync';
  return { version: d.version, roots: have.roots, folders: d.folders ?? have.folders, runs: ordered };
}

/**
 * Whether a whole table (an event on connect, or a fetch) should replace the one held: not when
 * it is older than it (a fetch answered before deltas that the page has applied since), nor
 * when it comes from a server other than `current` (a fetch the server before a restart
 * answered late).
 */
export function newer(snapshot: RunsSnapshot, have: RunsSnapshot | undefined, current?: string): boolean {
  if (!fromCurrent(snapshot.version, current)) return false;
  return !have || snapshot.version === have.version || later(snapshot.version, have.version, current);
}
