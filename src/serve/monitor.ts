/**
 * Watches the served folders and says what changed: the set of runs, a run's log or per-epoch
 * distances, a compare folder's results. fs.watch wakes it at once on local disks; a slow poll (stat only) catches
 * what fs.watch misses (network file systems, a watcher limit reached, a file replaced by a
 * rename, which the trainer's atomic writes do every epoch). The page never polls: it gets
 * these changes as server-sent events.
 */
import { existsSync, type FSWatcher, statSync, watch } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { validateCompareResults } from '../viz/validate.ts';
import { validateSweepResults } from '../viz/validateSweep.ts';
import {
  type Discovery,
  discover,
  type FolderEntry,
  type FolderRef,
  folderLosses,
  isFile,
  type EpochLine,
  LOG_LINES,
  type LogSummary,
  readManifestPart,
  readResultPart,
  readTextFile,
  type Root,
  rowsFromResults,
  type RunInfo,
  type RunParts,
  runRow,
  type SweepOutline,
  sweepOutline,
} from './scan.ts';
import type { Chunk, Tails } from './tail.ts';

export interface Changes {
  /** the runs list differs (a run appeared, vanished, or its manifest, log or result changed) */
  runs: boolean;
  /** runs whose log.jsonl changed */
  logs: string[];
  /** what those logs' reads found for the pages: the lines appended, or a reset (tail.ts) */
  logChunks: Chunk<EpochLine>[];
  /** compare and sweep folders whose results.json changed */
  results: string[];
  /** runs whose distances.jsonl changed */
  distances: string[];
}

const RUN_FILES = ['manifest.json', 'log.jsonl', 'result.json', 'distances.jsonl'] as const;
const FOLDER_FILES = ['results.json', 'compare.json', 'sweep.json'] as const;

function signature(p: string): string {
  try {
    const s = statSync(p);
    return `${s.ino}:${s.size}:${s.mtimeMs}`;
  } catch {
    return '-';
  }
}

export class Monitor {
  private discovery: Discovery = { folders: [], runs: [] };
  private readonly sigs = new Map<string, string>();
  private readonly infos = new Map<string, RunInfo>();
  /** per run: what its row is built from (a few fields of each file; no log lines) */
  private readonly parts = new Map<string, RunParts>();
  /** bytes of manifest.json and result.json read (the logs' are the tails' bytesRead) */
  bytesRead = 0;
  /** per folder: its loss entries (labels, parameters) from compare.json, results.json or sweep.json */
  private readonly entries = new Map<string, Map<string, FolderEntry>>();
  /** per compare folder: rows from its results.json for runs not served as folders */
  private readonly resultRows = new Map<string, RunInfo[]>();
  /** per sweep folder: its definition's outline (sweep.json), null while unreadable */
  readonly outlines = new Map<string, SweepOutline | null>();
  /** per folder whose results.json is valid: what wrote it */
  readonly resultKinds = new Map<string, 'compare' | 'sweep'>();
  /** per compare folder: why its results.json cannot be used, if so */
  readonly resultMessages = new Map<string, string>();
  /** per compare folder: the text of its results.json as last validated (served as is: no re-encoding) */
  readonly resultTexts = new Map<string, string>();
  private readonly watchers = new Map<string, FSWatcher>();
  private pollTimer: NodeJS.Timeout | undefined;
  private debounce: NodeJS.Timeout | undefined;
  private stopped = false;

  constructor(
    readonly roots: readonly Root[],
    private readonly onChange: (c: Changes) => void,
    private readonly pollMs = 1000,
    /** the logs' incremental reader, shared with the server's /api/log answers */
    readonly tails: Tails,
  ) {
    this.scan();
  }

  start(): void {
    this.pollTimer = setInterval(() => this.tick(), this.pollMs);
    this.pollTimer.unref();
  }

  stop(): void {
    this.stopped = true;
    clearInterval(this.pollTimer);
    clearTimeout(this.debounce);
    for (const w of this.watchers.values()) w.close();
    this.watchers.clear();
  }

  get folders(): readonly FolderRef[] {
    return this.discovery.folders;
  }

  runs(): RunInfo[] {
    const served = this.discovery.runs.map((r) => this.infos.get(r.id)).filter((r) => r !== undefined);
    return [...served, ...this.discovery.folders.flatMap((f) => this.resultRows.get(f.id) ?? [])];
  }

  /** A folder's rows from results.json, refreshed when it or the folder's run set changes. */
  private readResults(f: FolderRef): void {
    const t = readTextFile(join(f.dir, 'results.json'));
    this.resultTexts.delete(f.id);
    this.resultKinds.delete(f.id);
    if (!t.ok) {
      this.resultRows.delete(f.id);
      // a compare still running has no results.json yet: that is no error
      if (existsSync(join(f.dir, 'results.json'))) this.resultMessages.set(f.id, t.message);
      else this.resultMessages.delete(f.id);
      return;
    }
    try {
      let value: unknown;
      try {
        value = JSON.parse(t.value);
      } catch (e) {
        throw new Error(`results.json: not valid JSON (${(e as Error).message.split('\n')[0]})`);
      }
      // a sweep's results.json (kind "sweep"), also one copied without its sweep.json
      const kind = f.kind === 'sweep' || (value as { kind?: unknown } | null)?.kind === 'sweep' ? 'sweep' : 'compare';
      if (kind === 'sweep') {
        validateSweepResults(value, 'results.json');
        this.resultRows.delete(f.id);
      } else {
        const results = validateCompareResults(value, 'results.json');
        const present = new Set(this.discovery.runs.filter((r) => r.folder === f.id).map((r) => basename(r.rel)));
        this.resultRows.set(f.id, rowsFromResults(f, results, present, basename(this.roots[f.root]!.given)));
      }
      this.resultMessages.delete(f.id);
      this.resultTexts.set(f.id, t.value);
      this.resultKinds.set(f.id, kind);
    } catch (e) {
      this.resultRows.delete(f.id);
      this.resultMessages.set(f.id, (e as Error).message);
    }
  }

  run(id: string): Discovery['runs'][number] | undefined {
    return this.discovery.runs.find((r) => r.id === id);
  }

  folder(id: string): FolderRef | undefined {
    return this.discovery.folders.find((f) => f.id === id);
  }

  /** Rescan now and report; called by fs.watch (debounced) and the poll. */
  tick(): void {
    if (this.stopped) return;
    const c = this.scan();
    if (c.runs || c.logs.length > 0 || c.results.length > 0 || c.distances.length > 0) this.onChange(c);
  }

  private scan(): Changes {
    const before = new Set(this.discovery.runs.map((r) => r.id));
    this.discovery = discover(this.roots);
    const changes: Changes = { runs: false, logs: [], logChunks: [], results: [], distances: [] };
    /** folders whose loss entries were read again: their runs' labels may differ */
    const relabel = new Set<string>();
    const now = new Set(this.discovery.runs.map((r) => r.id));
    const setChanged = now.size !== before.size || [...now].some((id) => !before.has(id));
    if (setChanged) changes.runs = true;

    const entries = this.entries;
    for (const f of this.discovery.folders) {
      let changed = !entries.has(f.id);
      for (const name of FOLDER_FILES) {
        const p = join(f.dir, name);
        const s = signature(p);
        if (this.sigs.get(p) !== s) {
          this.sigs.set(p, s);
          if (name === 'results.json') changes.results.push(f.id);
          changes.runs = true;
          changed = true;
        }
      }
      // parsed only when changed: results.json can be megabytes, and the poll runs every second
      if (changed) {
        relabel.add(f.id);
        entries.set(f.id, folderLosses(f));
        if (f.kind === 'sweep') this.outlines.set(f.id, sweepOutline(f));
      }
    }
    for (const f of this.discovery.folders) {
      if (setChanged || changes.results.includes(f.id)) this.readResults(f);
    }
    for (const id of [...this.resultRows.keys()]) if (!this.discovery.folders.some((f) => f.id === id)) this.resultRows.delete(id);
    for (const m of [this.resultTexts, this.resultKinds, this.outlines, entries]) {
      for (const id of [...m.keys()]) if (!this.discovery.folders.some((f) => f.id === id)) m.delete(id);
    }
    for (const r of this.discovery.runs) {
      const had = this.parts.get(r.id);
      const changed = new Set<string>();
      for (const name of RUN_FILES) {
        const p = join(r.dir, name);
        const s = signature(p);
        if (this.sigs.get(p) !== s || !had) {
          this.sigs.set(p, s);
          changed.add(name);
        }
      }
      if (changed.has('distances.jsonl')) changes.distances.push(r.id);
      if (changed.size === 0 && !(r.folder !== null && relabel.has(r.folder))) continue;
      // only the files that changed are read; the log from where its last read ended (tail.ts)
      const parts: RunParts = had ? { ...had } : ({} as RunParts);
      if (changed.has('manifest.json')) {
        const { bytes, ...m } = readManifestPart(r.dir);
        this.bytesRead += bytes;
        parts.manifest = m;
      }
      if (changed.has('result.json')) {
        const { bytes, ...m } = readResultPart(r.dir);
        this.bytesRead += bytes;
        parts.result = m;
      }
      if (changed.has('log.jsonl')) {
        const key = `${r.id}\nlog`;
        const t = this.tails.read(key, r.id, join(r.dir, 'log.jsonl'), LOG_LINES);
        changes.logs.push(r.id);
        if (t.changed) changes.logChunks.push(t.changed);
        const s = this.tails.state<LogSummary>(key)!;
        parts.log = { summary: s.carry, note: s.note };
      }
      if (changed.has('distances.jsonl')) parts.distances = isFile(join(r.dir, 'distances.jsonl'));
      this.parts.set(r.id, parts);
      this.infos.set(r.id, runRow(r, this.roots, r.folder ? entries.get(r.folder) : undefined, parts));
      changes.runs = true;
    }
    for (const id of [...this.infos.keys()]) {
      if (!now.has(id)) {
        this.infos.delete(id);
        this.parts.delete(id);
      }
    }
    this.rewatch();
    return changes;
  }

  /** One non-recursive watcher per known folder (recursive fs.watch is unreliable on Linux in Node 20). */
  private rewatch(): void {
    const dirs = new Set<string>(this.roots.map((r) => r.real));
    for (const f of this.discovery.folders) {
      dirs.add(f.dir);
      dirs.add(join(f.dir, 'runs'));
    }
    for (const r of this.discovery.runs) {
      dirs.add(r.dir);
      // a sweep's new trial folders appear in runs/<loss>/, its new folds in runs/<loss>/trial<NN>/
      if (r.sweep) {
        dirs.add(dirname(r.dir));
        if (r.sweep.kind === 'trial') dirs.add(dirname(dirname(r.dir)));
      }
    }
    for (const [d, w] of this.watchers) {
      if (!dirs.has(d)) {
        w.close();
        this.watchers.delete(d);
      }
    }
    for (const d of dirs) {
      if (this.watchers.has(d)) continue;
      try {
        const w = watch(d, { persistent: false }, () => this.soon());
        w.on('error', () => {
          // the folder vanished or the watcher limit was hit: the poll still sees changes
          w.close();
          this.watchers.delete(d);
        });
        this.watchers.set(d, w);
      } catch {
        // no watcher for this folder (missing, or out of inotify watches): the poll covers it
      }
    }
  }

  private soon(): void {
    if (this.stopped || this.debounce) return;
    // an epoch touches several files in a row (checkpoint, weights, log, manifest): one rescan
    this.debounce = setTimeout(() => {
      this.debounce = undefined;
      this.tick();
    }, 50);
  }
}
