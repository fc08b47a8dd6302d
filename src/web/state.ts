/** What the page knows: the runs, their logs and the compare results, kept current by events. */
import type { CompareResults } from '../experiments/results.ts';
import { ci95HalfWidth, mean } from '../stats.ts';
import type { SweepResults } from '../experiments/sweep.ts';
import type { EpochDistances } from '../serve/distances.ts';
import type { EpochLine, RunInfo, SweepOutline } from '../serve/scan.ts';
import type { FolderView } from '../serve/runsTable.ts';
import type { Held } from './chunks.ts';

export type { CompareResults, EpochDistances, EpochLine, RunInfo, SweepOutline, SweepResults };

/** a compare or sweep folder, and the whole runs table (`runs` event, /api/runs), as the server sends them */
export type { FolderView, RunsSnapshot as RunsPayload } from '../serve/runsTable.ts';

/** a run's log.jsonl as the page holds it (chunks.ts merges /api/logs answers and log events) */
export type LogPayload = Held<EpochLine>;

/** a run's distances.jsonl likewise (/api/distances and the distances event) */
export type DistancesPayload = Held<EpochDistances>;

export type ResultsState = { ok: true; kind: 'compare'; results: CompareResults } | { ok: true; kind: 'sweep'; sweep: SweepResults } | { ok: false; message: string };

export const state = {
  /** the server process the event stream is connected to (its id, from the last `runs` event): data of any other is stale (chunks.ts) */
  server: undefined as string | undefined,
  roots: [] as string[],
  folders: [] as FolderView[],
  runs: [] as RunInfo[],
  logs: new Map<string, LogPayload>(),
  distances: new Map<string, DistancesPayload>(),
  results: new Map<string, ResultsState>(),
};

/** A run's epochs: its log (served run folders) or the history results.json holds. */
export function epochsOf(r: RunInfo): EpochLine[] {
  return r.history ?? state.logs.get(r.id)?.epochs ?? [];
}

export interface Group {
  key: string;
  label: string;
  runs: RunInfo[];
  color: number;
}

/** Runs grouped by loss entry, in first-seen order; a group's color index is stable. */
export function groups(runs: readonly RunInfo[]): Group[] {
  const out = new Map<string, Group>();
  for (const r of runs) {
    const key = `${r.folder ?? ''}|${r.group}`;
    let g = out.get(key);
    if (!g) {
      g = { key, label: r.label, runs: [], color: out.size };
      out.set(key, g);
    }
    g.runs.push(r);
  }
  return [...out.values()];
}

/** mean and 95% CI half-width (t distribution) over the finite values; ci NaN below 2 values */
export function meanCi(values: readonly (number | null)[]): { mean: number; ci: number; n: number } {
  const v = values.filter((x): x is number => x !== null && Number.isFinite(x));
  if (v.length === 0) return { mean: NaN, ci: NaN, n: 0 };
  return { mean: mean(v), ci: v.length > 1 ? ci95HalfWidth(v) : NaN, n: v.length };
}

export async function getJson<T>(url: string): Promise<T> {
  const r = await fetch(url);
  if (!r.ok) throw new Error(`${url}: HTTP ${r.status}`);
  return (await r.json()) as T;
}
