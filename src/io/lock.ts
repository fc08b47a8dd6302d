/**
 * One writer per output folder (or output file). `train`, `compare`, `embed` and `export` take
 * this lock before they look at what the folder holds, so two processes can never both decide
 * "this folder is mine" (the check-then-create window the commands had before).
 *
 * The lock is a file `.siamese.lock` in the folder (`.<name>.siamese.lock` beside a single output
 * file) holding the holder's host, pid, start time, process start tick and command. It is
 * created atomically: the content is written to a temporary file first, then hard-linked to the
 * lock's name; link(2) fails with EEXIST when the name exists, so exactly one of any number of
 * simultaneous takers wins and the lock is never seen half-written.
 *
 * A lock whose holder is gone is stale: same host, and the pid is not alive, or it is alive but
 * started at another time (the pid was reused; compared through /proc/PID/stat on Linux), or the
 * machine has rebooted since. A stale lock is taken over with a note; the takeover itself runs
 * under a second, short-lived lock (`.siamese.lock.takeover`), so two processes that both found
 * the same stale lock cannot both take it over. A lock held on another host is never judged
 * from here: the user is told who holds it.
 *
 * Why not npm proper-lockfile: it judges staleness by the lock's mtime, which the holder refreshes
 * from a timer; a training epoch runs synchronously for seconds to minutes, during which no timer
 * fires, so a live run's lock would look stale and a second writer would take it over. It also
 * records no holder, so the refusal could not name one.
 */
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import { hostname } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import { DataError, UsageError } from '../errors.ts';
import { fsErrorText, removeStaleTemps } from './atomic.ts';
import { realPlace, within } from './places.ts';
import { bootId, pidAlive, processStartTick } from './processes.ts';

export const LOCK_FILE = '.siamese.lock';

/** A second writer: exit 2 in the CLI. The message names the holder. */
export class LockHeldError extends UsageError {}

export interface LockHolder {
  tool: 'siamese-lab';
  host: string;
  pid: number;
  /** ISO time the lock was taken */
  since: string;
  command: string;
  /** /proc/PID/stat field 22 (start time in clock ticks since boot), when available */
  procStart?: string;
  /** /proc/sys/kernel/random/boot_id, when available */
  bootId?: string;
  /** unique per lock: release removes the file only when it is still ours */
  token: string;
}

export interface OutputLock {
  /** the lock file */
  readonly path: string;
  readonly holder: LockHolder;
  /** remove the lock (idempotent); also done on process exit */
  release(): void;
}

export interface LockOptions {
  /** what holds the lock, for the refusal message: "train", "compare", ... */
  command: string;
  /** the output is one file, not a folder: lock `.<name>.siamese.lock` beside it */
  file?: boolean;
  /** where notes go (stale lock taken over); default: stderr */
  onNote?: (note: string) => void;
  /** the kind of result the folder is for: a folder that holds another kind is refused */
  holds?: OutputKind;
  /**
   * The data set folder (--data-dir), which the output must neither be, nor lie inside, nor
   * hold: result files written there end up among the user's data (a class folder's loader reads
   * a run folder as one more class). Refused before anything is created.
   */
  dataDir?: string;
}

/** The kinds of result folder, each known by the file that marks it. */
export type OutputKind = 'run' | 'comparison' | 'sweep';
const KIND_MARKERS: readonly { kind: OutputKind; file: string; words: string }[] = [
  { kind: 'run', file: 'manifest.json', words: 'a training run' },
  { kind: 'comparison', file: 'compare.json', words: 'a comparison' },
  { kind: 'sweep', file: 'sweep.json', words: 'a sweep' },
];

/** Why a holder on this host is gone, or undefined when it still runs. */
function goneReason(h: LockHolder): string | undefined {
  const boot = bootId();
  if (h.bootId && boot && h.bootId !== boot) return 'the machine has restarted since';
  if (!pidAlive(h.pid)) return `process ${h.pid} is no longer running`;
  const start = processStartTick(h.pid);
  if (h.procStart && start && h.procStart !== start) return `process ${h.pid} has ended (its pid now belongs to another process)`;
  return undefined;
}

function parseHolder(text: string): LockHolder | undefined {
  try {
    const v = JSON.parse(text) as Partial<LockHolder>;
    if (v && v.tool === 'siamese-lab' && typeof v.host === 'string' && Number.isInteger(v.pid) && typeof v.since === 'string' && typeof v.token === 'string') {
      return v as LockHolder;
    }
  } catch {
    // fall through: not a lock we wrote
  }
  return undefined;
}

function readHolder(path: string): { holder?: LockHolder; missing: boolean } {
  let text: string;
  try {
    text = fs.readFileSync(path, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return { missing: true };
    throw new DataError(`${path}: cannot read the lock file (${fsErrorText(e)})`);
  }
  return { holder: parseHolder(text), missing: false };
}

/**
 * Create `path` holding `text`, atomically and exclusively: false when it exists already.
 * The content goes to a temporary file named like atomic.ts's (pid in the name, so a killed
 * process's leftover is cleaned like any other), then link(2) publishes it whole or not at all.
 */
function createExclusive(path: string, text: string, what: string): boolean {
  const tmp = join(dirname(path), `.${basename(path)}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`);
  try {
    fs.writeFileSync(tmp, text, { flag: 'wx' });
  } catch (e) {
    throw new DataError(`${what}: cannot create the lock file ${path} (${fsErrorText(e)})`);
  }
  try {
    fs.linkSync(tmp, path);
    return true;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw new DataError(`${what}: cannot create the lock file ${path} (${fsErrorText(e)})`);
  } finally {
    fs.rmSync(tmp, { force: true });
  }
}

const escapeRegExp = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

function describe(h: LockHolder): string {
  return `${h.command} (pid ${h.pid} on ${h.host}, since ${h.since})`;
}

function defaultNote(note: string): void {
  process.stderr.write(`siamese: note: ${note}\n`);
}

/**
 * Take the lock of an output folder (created if missing) or output file. Throws LockHeldError
 * naming the holder when another live process holds it. After taking it, temporary files that
 * dead writers left in the folder are removed.
 */
export function lockOutput(target: string, opts: LockOptions): OutputLock {
  const what = target;
  if (opts.dataDir !== undefined) refuseDataOverlap(target, opts.dataDir);
  let dir: string;
  let lockPath: string;
  if (opts.file) {
    dir = dirname(target);
    lockPath = join(dir, `.${basename(target)}${LOCK_FILE}`);
    if (!fs.existsSync(dir)) throw new DataError(`${target}: cannot write: directory ${dir} does not exist`);
  } else {
    dir = target;
    lockPath = join(target, LOCK_FILE);
  }
  const created = opts.file ? [] : ensureDir(dir, 'output folder');
  const note = opts.onNote ?? defaultNote;
  const holder: LockHolder = {
    tool: 'siamese-lab',
    host: hostname(),
    pid: process.pid,
    since: new Date().toISOString(),
    command: opts.command,
    procStart: processStartTick(process.pid),
    bootId: bootId(),
    token: randomBytes(8).toString('hex'),
  };
  const text = JSON.stringify(holder) + '\n';

  // Normally one round; another when the lock vanished between our link and our read (bounded).
  for (let round = 0; ; round++) {
    if (createExclusive(lockPath, text, what)) break;
    const { holder: other, missing } = readHolder(lockPath);
    if (missing && round < 3) continue; // released between our link and our read: try again
    if (!other) {
      throw new LockHeldError(`${what} is locked by ${lockPath}, which siamese-lab cannot read; remove it if no other siamese command writes there`);
    }
    const held = `${what} is in use by another siamese ${describe(other)}`;
    if (other.host !== holder.host) {
      throw new LockHeldError(`${held}; if that process has ended, remove ${lockPath}`);
    }
    const why = goneReason(other);
    if (why === undefined || round >= 3) {
      throw new LockHeldError(`${held}; wait for it to end or stop it`);
    }
    takeOver(lockPath, other, text, what);
    note(`${what}: took over the lock of ${describe(other)}: ${why}`);
    break;
  }

  // we are the only writer now: what dead writers left half-written goes (beside a file: its own only)
  removeStaleTemps(dir, opts.file ? new RegExp(`^\\.${escapeRegExp(basename(target))}\\.(\\d+)\\.[0-9a-f]{12}\\.tmp$`) : undefined);
  let released = false;
  const release = (): void => {
    if (released) return;
    released = true;
    process.off('exit', release);
    try {
      const { holder: now } = readHolder(lockPath);
      // remove only our own lock: never one another process holds after a takeover
      if (now && now.token === holder.token) fs.rmSync(lockPath, { force: true });
      // the folders we created hold nothing more (a refusal before any write): leave none behind,
      // `runs/` of a default `runs/<name>` included; rmdir stops at the first that is not empty
      for (const d of [...created].reverse()) fs.rmdirSync(d);
    } catch {
      // not empty (the usual case), already gone, or unreadable: an exit path must not throw
    }
  };
  // process.exit() (a second Ctrl-C) skips finally blocks but runs 'exit' listeners
  process.on('exit', release);
  // a run written into a comparison's folder (or the reverse) would mix two results that each
  // read the folder as theirs alone; checked under the lock, before anything is written
  const other = opts.holds && KIND_MARKERS.find((m) => m.kind !== opts.holds && fs.existsSync(join(dir, m.file)));
  if (other) {
    release();
    const mine = KIND_MARKERS.find((m) => m.kind === opts.holds)!;
    throw new UsageError(`${what} holds ${other.words} (${other.file}), not ${mine.words}: choose another folder for ${mine.words}`);
  }
  return { path: lockPath, holder, release };
}

/**
 * Refuse an output that is, lies inside or holds the data set folder (links followed): what
 * lockOutput checks first, for a command that must check it before it reads the data.
 */
export function refuseDataOverlap(target: string, dataDir: string): void {
  const out = realPlace(target);
  const data = realPlace(dataDir);
  const where =
    out === data ? 'is the data set folder' : within(out, data) ? 'lies inside the data set folder' : within(data, out) ? 'holds the data set folder' : undefined;
  if (where) throw new UsageError(`${target} ${where} (--data-dir ${dataDir}): write the output outside it`);
}

/** Several outputs of one command, all or none (a refusal releases those already taken). */
export function lockOutputs(targets: readonly string[], opts: LockOptions): { release(): void } {
  const taken: OutputLock[] = [];
  const release = (): void => {
    for (const l of taken.reverse()) l.release();
  };
  try {
    for (const t of new Set(targets)) taken.push(lockOutput(t, opts));
  } catch (e) {
    release();
    throw e;
  }
  return { release };
}

/**
 * Replace a stale lock by ours. Under a takeover lock, so that of two processes that judged the
 * same lock stale, one replaces it and the other then finds the new, live holder.
 */
function takeOver(lockPath: string, stale: LockHolder, text: string, what: string): void {
  const guard = `${lockPath}.takeover`;
  if (!createExclusive(guard, text, what)) {
    const { holder: g, missing } = readHolder(guard);
    // a taker that died inside the few lines below leaves the guard: judge it like a lock
    if (!missing && (!g || g.host !== hostname() || goneReason(g) === undefined)) {
      throw new LockHeldError(`${what} is being taken over by another process at this moment; try again`);
    }
    fs.rmSync(guard, { force: true });
    if (!createExclusive(guard, text, what)) throw new LockHeldError(`${what} is being taken over by another process at this moment; try again`);
  }
  try {
    const { holder: now } = readHolder(lockPath);
    if (now && now.token !== stale.token) {
      throw new LockHeldError(`${what} is in use by another siamese ${describe(now)}; wait for it to end or stop it`);
    }
    fs.rmSync(lockPath, { force: true });
    if (!createExclusive(lockPath, text, what)) {
      const { holder: h } = readHolder(lockPath);
      throw new LockHeldError(`${what} is in use by another siamese ${h ? describe(h) : 'command'}; wait for it to end or stop it`);
    }
  } finally {
    fs.rmSync(guard, { force: true });
  }
}

/**
 * mkdir -p: the folders it created, outermost first (none: `dir` was there). Node's own
 * recursive mkdirSync spins forever at full CPU, deaf to signals, when mkdir answers ENOENT under
 * a parent that exists (/proc does: `--out /proc/x` hung `train`); this walks up to the nearest
 * existing folder itself and makes each missing level once. Errors are Node's, for the caller to word.
 */
export function makeDirs(dir: string): string[] {
  const missing: string[] = [];
  for (let p = resolve(dir); !fs.existsSync(p); p = dirname(p)) {
    missing.unshift(p);
    if (dirname(p) === p) break;
  }
  const created: string[] = [];
  for (const d of missing) {
    try {
      fs.mkdirSync(d);
      created.push(d);
    } catch (e) {
      // made meanwhile by another process: not ours to remove, and no failure
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST' || !fs.statSync(d, { throwIfNoEntry: false })?.isDirectory()) throw e;
    }
  }
  return created;
}

/**
 * mkdir -p with a one-line error naming the real cause; returns the folders it created,
 * outermost first (empty when `dir` was there), so that a command that ends up writing nothing
 * can remove them again.
 */
export function ensureDir(dir: string, kind: string): string[] {
  if (fs.existsSync(dir)) {
    if (!fs.statSync(dir).isDirectory()) throw new DataError(`${dir}: cannot create the ${kind}: a file of that name exists`);
    return [];
  }
  try {
    return makeDirs(dir);
  } catch (e) {
    throw new DataError(`${dir}: cannot create the ${kind}: ${mkdirFailure(dir, e)}`);
  }
}

/**
 * Why mkdir -p failed. Node can report ENOENT for a folder on a read-only file system (its
 * recursive mkdir returns the first error it met); look at the nearest existing parent instead.
 */
export function mkdirFailure(dir: string, e: unknown): string {
  let p = dirname(dir);
  while (!fs.existsSync(p) && dirname(p) !== p) p = dirname(p);
  try {
    if (!fs.statSync(p).isDirectory()) return `${p} is a file, not a folder`;
    fs.accessSync(p, fs.constants.W_OK);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EROFS') return `${p} is on a read-only file system`;
    if (code === 'EACCES' || code === 'EPERM') return `no permission to write in ${p}`;
  }
  return fsErrorText(e);
}
