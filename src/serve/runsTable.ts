/**
 * The runs table as the pages hold it, and what changed in it: a `runs` event (the whole table)
 * goes to a page when it connects; after that each change is a `rows` event with only the rows
 * added, changed or removed, keyed by run id. A sweep of hundreds of runs then sends a row per
 * epoch written, not every row (about 700 bytes each) to every page on every epoch.
 *
 * Every change makes a new version (`BOOT.N`, BOOT a random id of this server process, the one
 * its log generations carry); a delta names the version it applies to (`base`). A page applies
 * a delta to the version it holds (web/rows.ts), drops one it already holds, and fetches the
 * whole table (`/api/runs`) when one does not follow on (a missed event). The page takes data
 * only from the server its event stream reaches (the BOOT of the last `runs` event): after a
 * restart, a late reply of the server before is dropped, never taken for newer. The server keeps, per run, its last
 * row and that row's JSON text (what decides whether it changed; the snapshot is those texts
 * joined), and the order of the ids: no page's copy.
 */
import { randomBytes } from 'node:crypto';
import type { RunInfo, SweepOutline } from './scan.ts';

/** A compare or sweep folder as the page lists it (server.ts builds it). */
export interface FolderView {
  id: string;
  kind: 'compare' | 'sweep';
  path: string;
  results: boolean;
  message: string | null;
  /** a sweep folder's definition (sweep.json); null while it cannot be read */
  outline?: SweepOutline | null;
}

/** The whole table: `/api/runs`, and the event stream's first `runs` message. */
export interface RunsSnapshot {
  version: string;
  roots: string[];
  folders: FolderView[];
  runs: RunInfo[];
}

/** One change of the table (a `rows` event). */
export interface RunsDelta {
  version: string;
  /** the version this delta applies to */
  base: string;
  /** rows added or changed, in table order; `after` (new rows only): the id of the row it follows, null for the first */
  upsert: { row: RunInfo; after?: string | null }[];
  /** ids of rows removed */
  remove: string[];
  /** the ids in table order, only when rows that stay moved (never seen in practice: ids are folder paths, listed sorted) */
  order?: string[];
  /** the folders, only when they changed */
  folders?: FolderView[];
  /** rows in the table after this delta: a page whose count differs asks for the whole table */
  count: number;
}

export class RunsTable {
  private n = 0;
  private order: string[] = [];
  private readonly rows = new Map<string, { row: RunInfo; text: string }>();
  private foldersText = '[]';
  private readonly rootsText: string;

  /** `boot`: this server process's id, the one its log generations carry too (tail.ts): the page tells servers apart by it */
  constructor(
    roots: readonly string[],
    private readonly boot = randomBytes(4).toString('hex'),
  ) {
    this.rootsText = JSON.stringify(roots);
  }

  get version(): string {
    return `${this.boot}.${this.n}`;
  }

  get size(): number {
    return this.order.length;
  }

  /**
   * Bring the table to `runs` and `folders`; returns the delta from the previous version, or
   * null when nothing changed. A row object the table already holds is not encoded again (the
   * monitor makes a new one only for a run whose files changed).
   */
  update(runs: readonly RunInfo[], folders: FolderView[]): RunsDelta | null {
    const base = this.version;
    const order: string[] = [];
    const seen = new Set<string>();
    const upsert: RunsDelta['upsert'] = [];
    for (const row of runs) {
      // a row id listed twice keeps its first row (ids are folder paths: it does not happen)
      if (seen.has(row.id)) continue;
      seen.add(row.id);
      const had = this.rows.get(row.id);
      if (had && had.row !== row) {
        const text = JSON.stringify(row);
        if (text !== had.text) upsert.push({ row });
        this.rows.set(row.id, { row, text });
      } else if (!had) {
        upsert.push({ row, after: order.length > 0 ? order[order.length - 1]! : null });
        this.rows.set(row.id, { row, text: JSON.stringify(row) });
      }
      order.push(row.id);
    }
    const remove = this.order.filter((id) => !seen.has(id));
    for (const id of remove) this.rows.delete(id);
    // rows that stay keep their order unless this says otherwise
    const was = new Set(this.order);
    const keptBefore = this.order.filter((id) => seen.has(id));
    const keptNow = order.filter((id) => was.has(id));
    const moved = keptBefore.some((id, i) => keptNow[i] !== id);
    const foldersText = JSON.stringify(folders);
    const foldersChanged = foldersText !== this.foldersText;
    this.order = order;
    this.foldersText = foldersText;
    if (upsert.length === 0 && remove.length === 0 && !moved && !foldersChanged) return null;
    this.n++;
    return {
      version: this.version,
      base,
      upsert,
      remove,
      ...(moved ? { order } : {}),
      ...(foldersChanged ? { folders } : {}),
      count: order.length,
    };
  }

  /** The whole table as JSON text (a RunsSnapshot), built from the rows' texts. */
  snapshotText(): string {
    return `{"version":${JSON.stringify(this.version)},"roots":${this.rootsText},"folders":${this.foldersText},"runs":[${this.order.map((id) => this.rows.get(id)!.text).join(',')}]}`;
  }
}
