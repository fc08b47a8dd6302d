/**
 * What `siamese serve` serves: the output folders under its roots, found by their files, and a
 * tolerant reader for each. Every reader returns data plus messages instead of throwing: a run
 * being written (a partial last log line), a corrupt JSON file or a missing file becomes a
 * message that the page shows in its panel.
 *
 * Recognised folders (depth-first from each root, at most MAX_DEPTH levels, symlinks that
 * leave the root skipped):
 *   a sweep output     sweep.json, with its runs in runs/<lossId>/trial<NN>/fold<K>/,
 *                      runs/<lossId>/tuned-seed<S>/ and runs/<lossId>/default-seed<S>/
 *   a compare output   results.json or compare.json, with its runs in runs/<lossId>-seed<S>/
 *   a single run       manifest.json (with log.jsonl, result.json)
 *   anything else      a folder of those: its subfolders are searched
 */
import { closeSync, fstatSync, readdirSync, readFileSync, realpathSync, statSync } from 'node:fs';
import { basename, join } from 'node:path';
import { accuracyAtOf } from '../eval/accuracyAt.ts';
import type { CompareResults } from '../experiments/results.ts';
import { isBatchLossName } from '../losses/registry.ts';
import type { EpochLog } from '../train/trainer.ts';
import { isInside, openServed } from './paths.ts';
import { type LineParser, parseText } from './tail.ts';

const MAX_DEPTH = 3;
/** folders visited per scan: a root such as $HOME must not make a scan unbounded */
const MAX_VISITS = 5000;
/** bigger JSON files are refused with a message rather than read into memory */
export const MAX_JSON_BYTES = 256 * 1024 * 1024;

export interface Root {
  /** as given on the command line, for display */
  given: string;
  /** its real path: every served file must resolve inside it */
  real: string;
}

export interface FolderRef {
  id: string;
  kind: 'compare' | 'sweep';
  root: number;
  rel: string;
  dir: string;
}

/** Where a run sits in a sweep: a fold of a trial, or a final training (tuned or default parameters). */
export type SweepPlace = { lossId: string; kind: 'trial'; trial: number; fold: number } | { lossId: string; kind: 'tuned' | 'default'; seed: number };

export interface RunRef {
  id: string;
  /** the compare or sweep folder the run belongs to, or null for a stand-alone run */
  folder: string | null;
  /** set for the runs of a sweep folder */
  sweep?: SweepPlace;
  root: number;
  rel: string;
  dir: string;
}

export interface Discovery {
  folders: FolderRef[];
  runs: RunRef[];
}

const idOf = (root: number, rel: string): string => `${root}:${rel}`;
const joinRel = (a: string, b: string): string => (a === '' ? b : `${a}/${b}`);

/**
 * Calls to the file system that discovery made (stat, readdir, realpath), for the tests and the
 * benchmark: a rescan costs about one per run folder, which is why the monitor rescans only when
 * a folder's entries change (monitor.ts).
 */
export const discoveryCalls = { count: 0 };

/** A folder's subfolders (and links, which may lead to one), sorted by name. */
function subdirs(dir: string): { name: string; link: boolean }[] {
  discoveryCalls.count++;
  try {
    return readdirSync(dir, { withFileTypes: true })
      .filter((e) => (e.isDirectory() || e.isSymbolicLink()) && !e.name.startsWith('.') && e.name !== 'node_modules')
      .map((e) => ({ name: e.name, link: e.isSymbolicLink() }))
      .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  } catch {
    return [];
  }
}

export function isFile(p: string): boolean {
  try {
    return statSync(p).isFile();
  } catch {
    return false;
  }
}

/** Find every compare folder and run under the roots. */
export function discover(roots: readonly Root[]): Discovery {
  const folders: FolderRef[] = [];
  const runs: RunRef[] = [];
  let visits = 0;
  const seen = new Set<string>();

  const realInside = (root: Root, p: string): string | null => {
    discoveryCalls.count++;
    try {
      // the native call: one system call, where the JavaScript one lstats every component
      const r = realpathSync.native(p);
      return isInside(root.real, r) ? r : null;
    } catch {
      return null;
    }
  };
  /**
   * Entry `e` of real folder `dir`: a folder entry is a real path already (no call), a link is
   * resolved and must stay inside the root. Only links cost a call per run folder.
   */
  const entryInside = (root: Root, dir: string, e: { name: string; link: boolean }): string | null => (e.link ? realInside(root, join(dir, e.name)) : join(dir, e.name));
  const isFileCounted = (p: string): boolean => {
    discoveryCalls.count++;
    return isFile(p);
  };

  const visit = (ri: number, dir: string, rel: string, depth: number): void => {
    if (++visits > MAX_VISITS || seen.has(dir)) return;
    seen.add(dir);
    if (isFileCounted(join(dir, 'manifest.json'))) {
      runs.push({ id: idOf(ri, rel), folder: null, root: ri, rel, dir });
      return;
    }
    // before results.json: a sweep has one too (kind "sweep"), and its runs lie two levels deeper
    if (isFileCounted(join(dir, 'sweep.json'))) {
      const folder: FolderRef = { id: idOf(ri, rel), kind: 'sweep', root: ri, rel, dir };
      folders.push(folder);
      const add = (parent: string, e: { name: string; link: boolean }, runRel: string, place: SweepPlace): void => {
        const r = entryInside(roots[ri]!, parent, e);
        if (r && isFileCounted(join(r, 'manifest.json'))) runs.push({ id: idOf(ri, joinRel(rel, runRel)), folder: folder.id, sweep: place, root: ri, rel: joinRel(rel, runRel), dir: r });
      };
      const runsDir = realInside(roots[ri]!, join(dir, 'runs'));
      for (const le of runsDir ? subdirs(runsDir) : []) {
        const lossId = le.name;
        const lossDir = entryInside(roots[ri]!, runsDir!, le);
        if (!lossDir) continue;
        for (const te of subdirs(lossDir)) {
          const name = te.name;
          if (++visits > MAX_VISITS) break;
          const trial = /^trial(\d+)$/.exec(name);
          const final = /^(tuned|default)-seed(\d+)$/.exec(name);
          if (trial) {
            const trialDir = entryInside(roots[ri]!, lossDir, te);
            for (const fe of trialDir ? subdirs(trialDir) : []) {
              const fold = fe.name;
              const k = /^fold(\d+)$/.exec(fold);
              if (k) add(trialDir!, fe, `runs/${lossId}/${name}/${fold}`, { lossId, kind: 'trial', trial: Number(trial[1]), fold: Number(k[1]) });
            }
          } else if (final) {
            add(lossDir, te, `runs/${lossId}/${name}`, { lossId, kind: final[1] as 'tuned' | 'default', seed: Number(final[2]) });
          }
        }
      }
      return;
    }
    if (isFileCounted(join(dir, 'results.json')) || isFileCounted(join(dir, 'compare.json'))) {
      const folder: FolderRef = { id: idOf(ri, rel), kind: 'compare', root: ri, rel, dir };
      folders.push(folder);
      const runsDir = realInside(roots[ri]!, join(dir, 'runs'));
      if (runsDir) {
        for (const e of subdirs(runsDir)) {
          const r = entryInside(roots[ri]!, runsDir, e);
          if (r && isFileCounted(join(r, 'manifest.json'))) {
            const runRel = joinRel(rel, `runs/${e.name}`);
            runs.push({ id: idOf(ri, runRel), folder: folder.id, root: ri, rel: runRel, dir: r });
          }
        }
      }
      return;
    }
    if (depth >= MAX_DEPTH) return;
    for (const e of subdirs(dir)) {
      const r = entryInside(roots[ri]!, dir, e);
      if (r) visit(ri, r, joinRel(rel, e.name), depth + 1);
    }
  };
  roots.forEach((root, ri) => visit(ri, root.real, '', 0));
  return { folders, runs };
}

// ---- tolerant readers -----------------------------------------------------------------------

export type Read<T> = { ok: true; value: T } | { ok: false; message: string };

/**
 * A text file of a served folder, or why it cannot be read now. `root`: the served folder's real
 * path, the only place a link may lead (without it, a link is refused: paths.ts openServed).
 */
export function readTextFile(p: string, name = basename(p), root?: string): Read<string> {
  let fd: number | undefined;
  try {
    fd = openServed(p, root);
    const size = fstatSync(fd).size;
    if (size > MAX_JSON_BYTES) return { ok: false, message: `${name} is too large to show (${size} bytes)` };
    return { ok: true, value: readFileSync(fd, 'utf8') };
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    return { ok: false, message: code === 'ENOENT' ? `${name} does not exist (yet)` : `${name} cannot be read (${code ?? 'error'})` };
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

/** A JSON file, or why it cannot be used now. */
export function readJsonFile(p: string, name = basename(p), root?: string): Read<unknown> {
  const t = readTextFile(p, name, root);
  return t.ok ? parseJson(t.value, name) : t;
}

function parseJson(text: string, name: string): Read<unknown> {
  try {
    return { ok: true, value: JSON.parse(text) as unknown };
  } catch {
    return { ok: false, message: `${name} is not valid JSON (corrupt, or being written)` };
  }
}

/** One epoch line of log.jsonl, as the trainer writes it: the fields read here. */
export type EpochLine = Pick<EpochLog, 'epoch' | 'loss' | 'trainAccuracy' | 'testAccuracy' | 'seconds' | 'pairsPerSecond'>;

export interface LogRead {
  epochs: EpochLine[];
  /** what was skipped: a partial last line, lines that are not JSON, a missing file */
  messages: string[];
}

const num = (v: unknown): number => (typeof v === 'number' && Number.isFinite(v) ? v : NaN);

/**
 * What a run's row needs of its log.jsonl, carried from line to line (tail.ts keeps it per file,
 * so an epoch appended updates it without the lines before): the epochs counted, their seconds
 * summed in file order, the last epoch, and the skipped lines' messages (the first
 * MAX_SKIPPED_KEPT; beyond them a count: a file of garbage must not make the row unbounded).
 */
export interface LogSummary {
  epochs: number;
  seconds: number;
  last: EpochLine | null;
  skipped: string[];
  more: number;
}

export const MAX_SKIPPED_KEPT = 20;

const skip = (c: LogSummary, message: string): { skip: string; carry: LogSummary } => ({
  skip: message,
  carry: c.skipped.length < MAX_SKIPPED_KEPT ? { ...c, skipped: [...c.skipped, message] } : { ...c, more: c.more + 1 },
});

/** log.jsonl's lines: an epoch record per line; the carry is the row's summary (above). */
export const LOG_LINES: LineParser<EpochLine, LogSummary> = {
  name: 'log.jsonl',
  start: { epochs: 0, seconds: 0, last: null, skipped: [], more: 0 },
  line(text, n, c) {
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch {
      return skip(c, `log.jsonl line ${n} is not JSON: skipped`);
    }
    const o = (typeof value === 'object' && value !== null ? value : {}) as Record<string, unknown>;
    if (!Number.isInteger(o['epoch'])) return skip(c, `log.jsonl line ${n} has no epoch: skipped`);
    const record: EpochLine = {
      epoch: o['epoch'] as number,
      loss: num(o['loss']),
      trainAccuracy: num(o['trainAccuracy']),
      testAccuracy: num(o['testAccuracy']),
      seconds: num(o['seconds']),
      pairsPerSecond: num(o['pairsPerSecond']),
    };
    return { record, carry: { ...c, epochs: c.epochs + 1, seconds: c.seconds + (Number.isFinite(record.seconds) ? record.seconds : 0), last: record } };
  },
  partial: (c) => `log.jsonl: the last line is incomplete (being written): epoch ${c.epochs + 1} not shown yet`,
};

/** log.jsonl: every complete, valid line; a last line without its newline is being written. */
export function readLog(p: string): LogRead {
  let text: string;
  try {
    text = readFileSync(p, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    return { epochs: [], messages: [code === 'ENOENT' ? 'log.jsonl does not exist (yet)' : `log.jsonl cannot be read (${code ?? 'error'})`] };
  }
  const r = parseText(LOG_LINES, text);
  return { epochs: r.records, messages: r.partial ? [...r.skipped, LOG_LINES.partial(r.carry)] : r.skipped };
}

/** A log's part of its run's row: the summary, and the file's note (missing, too large, a line being written). */
export interface LogPart {
  summary: LogSummary;
  note: string | null;
}

/** The whole log read and parsed at once (a run's first read, and the tests' oracle). */
export function readLogPart(p: string): LogPart {
  const t = readTextFile(p, 'log.jsonl');
  if (!t.ok) return { summary: LOG_LINES.start, note: t.message };
  const r = parseText(LOG_LINES, t.value);
  return { summary: r.carry, note: r.partial ? LOG_LINES.partial(r.carry) : null };
}

// ---- run summaries --------------------------------------------------------------------------

/** One row of the runs table. Numbers are NaN-free: a missing value is null. */
export interface RunInfo {
  id: string;
  folder: string | null;
  /** root's name + relative path, for display */
  path: string;
  /** the group: a compare entry's id, or the loss name plus its parameters */
  group: string;
  label: string;
  loss: string;
  params: Record<string, unknown>;
  seed: number | null;
  status: string;
  epochsDone: number;
  epochs: number | null;
  lastLoss: number | null;
  trainAccuracy: number | null;
  testAccuracy: number | null;
  /** final evaluation (result.json): pair accuracy (by pairAccuracyAt's convention), MAP@R */
  pairAccuracy: number | null;
  /**
   * how pairAccuracy and testAccuracy are measured: at the fixed threshold, or (a batch loss,
   * no absolute distance scale) at the best one (before the final evaluation: by the loss's kind)
   */
  pairAccuracyAt: 'threshold' | 'best';
  mapAtR: number | null;
  pairsPerSecond: number | null;
  /** seconds of training, summed over the logged epochs */
  seconds: number | null;
  config: Record<string, unknown> | null;
  messages: string[];
  /** the run folder has per-epoch distance histograms (distances.jsonl, at /api/distances) */
  distances: boolean;
  /** the epochs, for rows that come from results.json only (a served run's log is at /api/log) */
  history?: EpochLine[];
  /** where the run sits in its sweep folder */
  sweep?: SweepPlace;
}

const finite = (v: unknown): number | null => (typeof v === 'number' && Number.isFinite(v) ? v : null);
const obj = (v: unknown): Record<string, unknown> => (typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : {});

export interface FolderEntry {
  label: string;
  loss: string;
  params: Record<string, unknown>;
  /** a sweep's searched parameters (names; `lr` is the learning rate) */
  space?: string[];
}

/** What the page needs of a sweep's definition (sweep.json), to follow it before results.json exists. */
export interface SweepOutline {
  trials: number;
  folds: number;
  seeds: number;
  losses: { id: string; label: string; loss: string; space: { name: string; lo: number; hi: number; log: boolean; int: boolean }[] }[];
}

/** A sweep folder's outline from its sweep.json, or null (missing, being written, not a sweep). */
export function sweepOutline(folder: FolderRef, root?: string): SweepOutline | null {
  const r = readJsonFile(join(folder.dir, 'sweep.json'), 'sweep.json', root);
  if (!r.ok) return null;
  const def = obj(obj(r.value)['definition']);
  if (!Array.isArray(def['losses'])) return null;
  const losses: SweepOutline['losses'] = [];
  for (const l of def['losses']) {
    const spec = obj(obj(l)['spec']);
    if (typeof spec['id'] !== 'string') continue;
    const space = (Array.isArray(obj(l)['space']) ? (obj(l)['space'] as unknown[]) : []).map(obj).filter((d) => typeof d['name'] === 'string');
    losses.push({
      id: spec['id'],
      label: String(spec['label'] ?? spec['id']),
      loss: String(spec['loss'] ?? spec['id']),
      space: space.map((d) => ({ name: d['name'] as string, lo: finite(d['lo']) ?? 0, hi: finite(d['hi']) ?? 1, log: d['log'] === true, int: d['int'] === true })),
    });
  }
  return { trials: finite(def['trials']) ?? 0, folds: finite(def['folds']) ?? 0, seeds: finite(def['seeds']) ?? 0, losses };
}

/** A folder's entries (id -> label, params): a compare's from results.json or compare.json, a sweep's from sweep.json. */
export function folderLosses(folder: FolderRef, root?: string): Map<string, FolderEntry> {
  const out = new Map<string, FolderEntry>();
  if (folder.kind === 'sweep') {
    for (const l of sweepOutline(folder, root)?.losses ?? []) out.set(l.id, { label: l.label, loss: l.loss, params: {}, space: l.space.map((d) => d.name) });
    return out;
  }
  for (const f of ['compare.json', 'results.json']) {
    const r = readJsonFile(join(folder.dir, f), f, root);
    if (!r.ok) continue;
    const losses = obj(obj(r.value)['spec'])['losses'];
    if (!Array.isArray(losses)) continue;
    for (const l of losses) {
      const e = obj(l);
      if (typeof e['id'] === 'string') {
        out.set(e['id'], { label: String(e['label'] ?? e['id']), loss: String(e['loss'] ?? e['id']), params: obj(e['params']) });
      }
    }
    if (out.size > 0) break;
  }
  return out;
}

/** A sweep run's group, label and parameters: a trial's folds form a group, so do the tuned and the default seeds. */
function sweepGroup(place: SweepPlace, entry: FolderEntry | undefined, params: Record<string, unknown>, config: Record<string, unknown> | null): { group: string; label: string; params: Record<string, unknown> } {
  const name = entry?.label ?? place.lossId;
  const shown: Record<string, unknown> = { ...params };
  // a searched learning rate is a parameter of the trial like the loss's own
  if (entry?.space?.includes('lr') && place.kind !== 'default' && typeof config?.['learningRate'] === 'number') shown['lr'] = config['learningRate'];
  if (place.kind === 'trial') return { group: `${place.lossId}/trial${String(place.trial).padStart(2, '0')}`, label: `${name} · trial ${place.trial + 1}`, params: shown };
  return { group: `${place.lossId}/${place.kind}`, label: `${name} · ${place.kind === 'tuned' ? 'tuned' : 'defaults'}`, params: shown };
}

/** What a run's row needs of manifest.json; a few fields, not the file. */
export interface ManifestPart {
  message: string | null;
  status: string;
  epochsDone: number | null;
  lossName: string | null;
  params: Record<string, unknown>;
  config: Record<string, unknown> | null;
}

export function readManifestPart(dir: string, root?: string): ManifestPart & { bytes: number } {
  const t = readTextFile(join(dir, 'manifest.json'), 'manifest.json', root);
  const m: Read<unknown> = !t.ok ? t : parseJson(t.value, 'manifest.json');
  const bytes = t.ok ? Buffer.byteLength(t.value) : 0;
  if (!m.ok) return { message: m.message, status: 'unknown', epochsDone: null, lossName: null, params: {}, config: null, bytes };
  const man = obj(m.value);
  const lossObj = obj(man['loss']);
  return {
    message: null,
    status: typeof man['status'] === 'string' ? man['status'] : 'unknown',
    epochsDone: finite(man['epochsDone']),
    lossName: typeof lossObj['name'] === 'string' ? lossObj['name'] : null,
    params: obj(lossObj['params']),
    config: obj(man['config']),
    bytes,
  };
}

/** What a run's row needs of result.json: the pair accuracy, its convention, MAP@R. */
export interface ResultPart {
  message: string | null;
  pairAccuracy: number | null;
  /** the evaluation's convention, when it has pairs */
  pairsAt: 'threshold' | 'best' | null;
  mapAtR: number | null;
}

export function readResultPart(dir: string, root?: string): ResultPart & { bytes: number } {
  const t = readTextFile(join(dir, 'result.json'), 'result.json', root);
  const res: Read<unknown> = !t.ok ? t : parseJson(t.value, 'result.json');
  const bytes = t.ok ? Buffer.byteLength(t.value) : 0;
  if (!res.ok) return { message: res.message, pairAccuracy: null, pairsAt: null, mapAtR: null, bytes };
  const evaluation = obj(obj(res.value)['evaluation']);
  return {
    message: null,
    pairAccuracy: finite(obj(evaluation['pairs'])['accuracy']),
    pairsAt: evaluation['pairs'] !== undefined ? (obj(evaluation['pairs'])['thresholdFrom'] === 'best' ? 'best' : 'threshold') : null,
    mapAtR: finite(obj(evaluation['retrieval'])['mapAtR']),
    bytes,
  };
}

export interface RunParts {
  manifest: ManifestPart;
  log: LogPart;
  result: ResultPart;
  /** the run folder has distances.jsonl */
  distances: boolean;
}

/** A run's row read from scratch: every file read whole (the monitor reads only what changed). */
export function readRun(ref: RunRef, roots: readonly Root[], entries: ReadonlyMap<string, FolderEntry> | undefined): RunInfo {
  const parts: RunParts = {
    manifest: readManifestPart(ref.dir),
    log: readLogPart(join(ref.dir, 'log.jsonl')),
    result: readResultPart(ref.dir),
    distances: isFile(join(ref.dir, 'distances.jsonl')),
  };
  return runRow(ref, roots, entries, parts);
}

/** A run's row from what was read of its files (no file is read here). */
export function runRow(ref: RunRef, roots: readonly Root[], entries: ReadonlyMap<string, FolderEntry> | undefined, parts: RunParts): RunInfo {
  const { manifest: man, log, result: res } = parts;
  const messages: string[] = [];
  if (man.message !== null) messages.push(man.message);
  const config = man.config;
  messages.push(...log.summary.skipped);
  if (log.summary.more > 0) messages.push(`log.jsonl: ${log.summary.more} more lines skipped`);
  if (log.note !== null) messages.push(log.note);
  const status = man.status;
  if (res.message !== null && status === 'finished') messages.push(res.message);
  const last = log.summary.last;

  const dirName = basename(ref.rel || ref.dir);
  const key = /^(.+)-seed(\d+)$/.exec(dirName);
  const lossName = man.lossName ?? (typeof config?.['loss'] === 'string' ? (config['loss'] as string) : '?');
  const params = man.params;
  const entry = ref.folder && key && !ref.sweep ? entries?.get(key[1]!) : undefined;
  const paramText = Object.entries(params)
    .filter(([, v]) => v !== undefined)
    .map(([k, v]) => `${k}=${String(v)}`)
    .join(', ');
  let group = entry ? key![1]! : `${lossName}${paramText ? ` (${paramText})` : ''}`;
  let label = entry?.label ?? group;
  let shownParams = entry?.params ?? params;
  if (ref.sweep) ({ group, label, params: shownParams } = sweepGroup(ref.sweep, entries?.get(ref.sweep.lossId), params, config));
  return {
    id: ref.id,
    folder: ref.folder,
    path: ref.rel === '' ? basename(roots[ref.root]!.given) || roots[ref.root]!.given : `${basename(roots[ref.root]!.given)}/${ref.rel}`,
    group,
    label,
    loss: lossName,
    params: shownParams,
    seed: finite(config?.['seed']),
    status,
    epochsDone: Math.max(man.epochsDone ?? 0, log.summary.epochs),
    epochs: finite(config?.['epochs']),
    lastLoss: finite(last?.loss),
    trainAccuracy: finite(last?.trainAccuracy),
    testAccuracy: finite(last?.testAccuracy),
    pairAccuracy: res.pairAccuracy,
    // the evaluation says; before it (a run still training), the loss's kind: a batch loss logs its best threshold's
    pairAccuracyAt: res.pairsAt ?? (isBatchLossName(lossName) ? 'best' : 'threshold'),
    mapAtR: res.mapAtR,
    pairsPerSecond: finite(last?.pairsPerSecond),
    seconds: log.summary.epochs > 0 ? log.summary.seconds : null,
    config,
    messages,
    distances: parts.distances,
    ...(ref.sweep ? { sweep: ref.sweep } : {}),
  };
}

/**
 * Rows for the runs a compare folder's results.json lists but whose run folders are not served
 * (results.json copied alone, or runs/ removed): the table shows what results.json says.
 */
export function rowsFromResults(folder: FolderRef, results: CompareResults, present: ReadonlySet<string>, rootName: string): RunInfo[] {
  const labels = new Map(results.spec.losses.map((l) => [l.id, l]));
  const rows: RunInfo[] = [];
  for (const r of results.runs) {
    const key = `${r.lossId}-seed${r.seed}`;
    if (present.has(key)) continue;
    const l = labels.get(r.lossId);
    const last = r.history[r.history.length - 1];
    // validateCompareResults checks only what the report draws: a run may lack its evaluation (or
    // parts of it); its measures are then missing (null: "–" on the page), not an error for the folder
    const ev = r.evaluation as Partial<CompareResults['runs'][number]['evaluation']> | undefined;
    const pairs = ev?.pairs as Partial<NonNullable<typeof ev>['pairs']> | undefined;
    const rel = folder.rel === '' ? `results.json#${key}` : `${folder.rel}/results.json#${key}`;
    rows.push({
      id: `${folder.id}#${key}`,
      folder: folder.id,
      path: `${rootName}/${rel}`,
      group: r.lossId,
      label: l?.label ?? r.lossId,
      loss: l?.loss ?? r.lossId,
      params: { ...(l?.params ?? {}) },
      seed: r.seed,
      status: 'finished',
      epochsDone: r.history.length,
      epochs: results.spec.config.epochs,
      lastLoss: finite(last?.loss),
      trainAccuracy: finite(last?.trainAccuracy),
      testAccuracy: finite(last?.testAccuracy),
      pairAccuracy: finite(pairs?.accuracy),
      // without the evaluation's mark, the loss's kind says (a batch loss's is at its best threshold)
      pairAccuracyAt: pairs ? accuracyAtOf(r.evaluation) : isBatchLossName(l?.loss ?? r.lossId) ? 'best' : 'threshold',
      mapAtR: finite(ev?.retrieval?.mapAtR),
      pairsPerSecond: finite(last?.pairsPerSecond),
      seconds: r.history.reduce((s, e) => s + (Number.isFinite(e.seconds) ? e.seconds : 0), 0),
      config: { ...results.spec.config, loss: l?.loss ?? r.lossId, seed: r.seed },
      messages: [],
      distances: false,
      history: r.history.map((e) => ({ epoch: e.epoch, loss: e.loss, trainAccuracy: e.trainAccuracy, testAccuracy: e.testAccuracy, seconds: e.seconds, pairsPerSecond: e.pairsPerSecond })),
    });
  }
  return rows;
}
