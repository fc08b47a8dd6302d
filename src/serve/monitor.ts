/**
 * Watches the served folders and says what changed: the set of runs, a run's log or per-epoch
 * distances, a compare folder's results. fs.watch wakes it at once on local disks; a slow poll (stat only) catches
 * what fs.watch misses (network file systems, a watcher limit reached, a file replaced by a
 * rename, which the trainer's atomic writes do every epoch). The page never polls: it gets
 * these changes as server-sent events.
 *
 * A watcher's event names its folder: one in a run's folder (an epoch written) re-stats that
 * run's four files alone, a constant cost whatever the number of runs; one in any other watched
 * folder (a run folder added or removed, a folder's results.json) rediscovers the folders, about
 * one call per run folder (scan.ts). The poll does the full rescan, once per interval, whatever
 * the number of epochs written meanwhile.
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
  /** the set of runs or folders changed (one appeared or vanished): what the server keeps per run or folder is pruned then */
  set: boolean;
}

const RUN_FILES = ['manifest.json', 'log.jsonl', 'result.json', 'distances.jsonl'] as const;
const FOLDER_FILES = ['results.json', 'compare.json', 'sweep.json'] as const;

/** stat calls made for signatures (the tests' and the benchmark's measure of a change's cost) */
export const signatureCalls = { count: 0 };

function signature(p: string): string {
  signatureCalls.count++;
  try {
    const s = statSync(p);
    return `${s.ino}:${s.size}:${s.mtimeMs}`;
  } catch {
    return '-';
  }
}

export class Monitor {
  private discovery: Discovery = { folders: [], runs: [] };
  /** per run: its folder and the signatures of RUN_FILES there, dropped with the run */
  private readonly runSigs = new Map<string, { dir: string; sigs: string[] }>();
  /** per compare or sweep folder: its folder and the signatures of FOLDER_FILES, dropped with the folder */
  private readonly folderSigs = new Map<string, { dir: string; sigs: string[] }>();
  /** the runs discovered, by id */
  private runIndex = new Map<string, Discovery['runs'][number]>();
  /** run folder -> run id: a watcher event there concerns that run alone */
  private runByDir = new Map<string, string>();
  /** runs whose folder had a watcher event since the last look */
  private readonly dirty = new Set<string>();
  /** a watched folder other than a run's had an event: the folders are discovered again */
  private rediscover = false;
  /** how often each kind of look ran (for the tests): full rescans, and runs re-statted alone */
  readonly counts = { rescans: 0, runChecks: 0 };
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
    const t = readTextFile(join(f.dir, 'results.json'), 'results.json', this.roots[f.root]!.real);
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
    return this.runIndex.get(id);
  }

  folder(id: string): FolderRef | undefined {
    return this.discovery.folders.find((f) => f.id === id);
  }

  /** Signatures held (files tracked): the runs' and folders' that are still served, no others. */
  get signatureCount(): number {
    let n = 0;
    for (const m of [this.runSigs, this.folderSigs]) for (const v of m.values()) n += v.sigs.length;
    return n;
  }

  /** The full rescan now, and report; the poll calls it. */
  tick(): void {
    if (this.stopped) return;
    this.dirty.clear();
    this.rediscover = false;
    this.report(this.scan());
  }

  /**
   * A watcher's event in folder `dir`: a run's folder marks that run for a look, any other folder
   * a rediscovery; the look follows shortly (one for the several files an epoch writes).
   */
  changedIn(dir: string): void {
    if (this.stopped) return;
    const id = this.runByDir.get(dir);
    if (id !== undefined) this.dirty.add(id);
    else this.rediscover = true;
    this.soon();
  }

  /** What the watchers marked: the runs marked re-statted alone, or a full rescan if a folder's entries changed. */
  flush(): void {
    if (this.stopped) return;
    const changes = this.emptyChanges();
    for (const id of this.rediscover ? [] : this.dirty) {
      const r = this.runIndex.get(id);
      if (!r) continue;
      this.checkRun(r, new Set(), changes);
      // its manifest.json is gone (or its folder): perhaps no run any more, the set is found again
      if (this.runSigs.get(id)!.sigs[0] === '-') this.rediscover = true;
    }
    this.dirty.clear();
    if (this.rediscover) {
      this.rediscover = false;
      const c = this.scan();
      // what the looks before found (lines read from a log) must still reach the pages
      changes.runs ||= c.runs;
      changes.set ||= c.set;
      changes.logs.push(...c.logs);
      changes.logChunks.push(...c.logChunks);
      changes.results.push(...c.results);
      changes.distances.push(...c.distances);
    }
    this.report(changes);
  }

  private report(c: Changes): void {
    if (c.runs || c.logs.length > 0 || c.results.length > 0 || c.distances.length > 0) this.onChange(c);
  }

  private emptyChanges(): Changes {
    return { runs: false, logs: [], logChunks: [], results: [], distances: [], set: false };
  }

  private scan(): Changes {
    this.counts.rescans++;
    const before = new Set(this.discovery.runs.map((r) => r.id));
    const foldersBefore = this.discovery.folders.map((f) => f.id).sort().join('\n');
    this.discovery = discover(this.roots);
    this.runIndex = new Map(this.discovery.runs.map((r) => [r.id, r]));
    const changes = this.emptyChanges();
    /** folders whose loss entries were read again: their runs' labels may differ */
    const relabel = new Set<string>();
    const now = new Set(this.discovery.runs.map((r) => r.id));
    const setChanged = now.size !== before.size || [...now].some((id) => !before.has(id));
    // a folder without runs (a results.json alone) may come or go with no run doing so
    if (setChanged || this.discovery.folders.map((f) => f.id).sort().join('\n') !== foldersBefore) changes.runs = changes.set = true;

    const entries = this.entries;
    for (const f of this.discovery.folders) {
      let changed = !entries.has(f.id);
      const had = this.folderSigs.get(f.id);
      const sigs = FOLDER_FILES.map((name) => signature(join(f.dir, name)));
      FOLDER_FILES.forEach((name, i) => {
        if (had?.dir !== f.dir || had.sigs[i] !== sigs[i]) {
          if (name === 'results.json') changes.results.push(f.id);
          changes.runs = true;
          changed = true;
        }
      });
      this.folderSigs.set(f.id, { dir: f.dir, sigs });
      // parsed only when changed: results.json can be megabytes, and the poll runs every second
      if (changed) {
        relabel.add(f.id);
        entries.set(f.id, folderLosses(f, this.roots[f.root]!.real));
        if (f.kind === 'sweep') this.outlines.set(f.id, sweepOutline(f, this.roots[f.root]!.real));
      }
    }
    for (const f of this.discovery.folders) {
      if (setChanged || changes.results.includes(f.id)) this.readResults(f);
    }
    for (const id of [...this.resultRows.keys()]) if (!this.discovery.folders.some((f) => f.id === id)) this.resultRows.delete(id);
    for (const m of [this.resultTexts, this.resultKinds, this.outlines, entries]) {
      for (const id of [...m.keys()]) if (!this.discovery.folders.some((f) => f.id === id)) m.delete(id);
    }
    for (const r of this.discovery.runs) this.checkRun(r, relabel, changes);
    for (const id of [...this.infos.keys()]) {
      if (!now.has(id)) {
        this.infos.delete(id);
        this.parts.delete(id);
      }
    }
    // what is kept per run or folder goes with it (a long session sees many sweeps come and go)
    for (const id of [...this.runSigs.keys()]) if (!now.has(id)) this.runSigs.delete(id);
    const folderIds = new Set(this.discovery.folders.map((f) => f.id));
    for (const id of [...this.folderSigs.keys()]) if (!folderIds.has(id)) this.folderSigs.delete(id);
    this.rewatch();
    return changes;
  }

  /** Stat one run's files; read those that changed and rebuild its row (also when its folder's loss entries were read again). */
  private checkRun(r: Discovery['runs'][number], relabel: ReadonlySet<string>, changes: Changes): void {
    this.counts.runChecks++;
    const entries = this.entries;
    const had = this.parts.get(r.id);
    const hadSigs = this.runSigs.get(r.id);
    const sigs = RUN_FILES.map((name) => signature(join(r.dir, name)));
    const changed = new Set<string>();
    RUN_FILES.forEach((name, i) => {
      if (!had || hadSigs?.dir !== r.dir || hadSigs.sigs[i] !== sigs[i]) changed.add(name);
    });
    this.runSigs.set(r.id, { dir: r.dir, sigs });
    if (changed.has('distances.jsonl')) changes.distances.push(r.id);
    if (changed.size === 0 && !(r.folder !== null && relabel.has(r.folder))) return;
    // only the files that changed are read; the log from where its last read ended (tail.ts)
    const parts: RunParts = had ? { ...had } : ({} as RunParts);
    if (changed.has('manifest.json')) {
      const { bytes, ...m } = readManifestPart(r.dir, this.roots[r.root]!.real);
      this.bytesRead += bytes;
      parts.manifest = m;
    }
    if (changed.has('result.json')) {
      const { bytes, ...m } = readResultPart(r.dir, this.roots[r.root]!.real);
      this.bytesRead += bytes;
      parts.result = m;
    }
    if (changed.has('log.jsonl')) {
      const key = `${r.id}\nlog`;
      const t = this.tails.read(key, r.id, join(r.dir, 'log.jsonl'), LOG_LINES, undefined, this.roots[r.root]!.real);
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

  /** One non-recursive watcher per known folder (recursive fs.watch is unreliable on Linux in Node 20). */
  private rewatch(): void {
    const dirs = new Set<string>(this.roots.map((r) => r.real));
    for (const f of this.discovery.folders) {
      dirs.add(f.dir);
      dirs.add(join(f.dir, 'runs'));
    }
    this.runByDir = new Map(this.discovery.runs.map((r) => [r.dir, r.id]));
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
        const w = watch(d, { persistent: false }, () => this.changedIn(d));
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
    // an epoch touches several files in a row (checkpoint, weights, log, manifest): one look
    this.debounce = setTimeout(() => {
      this.debounce = undefined;
      this.flush();
    }, 50);
  }
}
