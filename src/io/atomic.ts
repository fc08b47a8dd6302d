/**
 * Crash-safe file writes. Every file the project writes goes through here: the bytes go to a
 * temporary file in the target's directory, are flushed to disk, and the temporary file is
 * renamed over the target. A reader (or a run that is killed half-way) therefore sees either
 * the old file or the complete new one, never a torn one.
 */
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { DataError, DiskFullError, UsageError } from '../errors.ts';
import { pidAlive } from './processes.ts';

/** `.<name>.<pid>.<random>.tmp` next to the target: same filesystem, so the rename is atomic. */
function tempPathFor(path: string): string {
  // crypto randomness only names a scratch file; it is not experiment randomness (see rng.ts)
  return join(dirname(path), `.${basename(path)}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`);
}

/** `.<name>.<pid>.<12 hex>.tmp`: the names tempPathFor gives (and lock.ts, for its own). */
const TEMP_NAME = /^\..+\.(\d+)\.[0-9a-f]{12}\.tmp$/;

/**
 * Remove the temporary files that writers killed mid-write (SIGKILL, power cut) left in `dir`:
 * those whose pid (in the name: the pattern's first group) is no longer running on this host. A live pid's files are kept,
 * even when the pid was reused: the lock of the folder (lock.ts) is held while this runs, so no
 * other writer is there, and a file left is only a leak, never a loss. Returns the names removed.
 */
export function removeStaleTemps(dir: string, pattern: RegExp = TEMP_NAME): string[] {
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch {
    return [];
  }
  const removed: string[] = [];
  for (const name of names) {
    const m = pattern.exec(name);
    if (!m || pidAlive(Number(m[1]))) continue;
    try {
      fs.rmSync(join(dir, name), { force: true });
      removed.push(name);
    } catch {
      // a leftover we cannot remove does no harm: the next start tries again
    }
  }
  return removed;
}

/** A file-system error code in words, for one-line messages. */
export function fsErrorText(e: unknown): string {
  const code = (e as NodeJS.ErrnoException).code;
  switch (code) {
    case 'ENOENT':
      return 'no such file or folder';
    case 'EACCES':
    case 'EPERM':
      return 'permission denied';
    case 'ENOSPC':
      return 'no space left on device';
    case 'EROFS':
      return 'read-only file system';
    case 'ENOTDIR':
      return 'a part of the path is a file, not a folder';
    case 'EISDIR':
      return 'it is a folder';
    case 'EDQUOT':
      return 'disk quota exceeded';
    default:
      return code ?? (e as Error).message;
  }
}

/** One line that says which file could not be written and why. */
function writeError(path: string, e: unknown): DataError {
  const code = (e as NodeJS.ErrnoException).code;
  switch (code) {
    case 'ENOENT':
      return new DataError(`${path}: cannot write: directory ${dirname(path)} does not exist`);
    case 'EACCES':
    case 'EPERM':
      return new DataError(`${path}: cannot write: permission denied`);
    case 'ENOSPC':
      return new DiskFullError(`${path}: cannot write: no space left on device`);
    case 'EISDIR':
      return new DataError(`${path}: cannot write: it is a directory`);
    case 'EROFS':
      return new DataError(`${path}: cannot write: read-only file system`);
    default:
      return new DataError(`${path}: cannot write (${code ?? (e as Error).message})`);
  }
}

function checkData(path: string, data: unknown): void {
  if (typeof data !== 'string' && !(data instanceof Uint8Array)) {
    throw new UsageError(`${path}: writeFileAtomic needs a string or a Uint8Array`);
  }
}

/** Flush the directory entry too, so the rename itself survives a power cut (POSIX only). */
async function syncDir(dir: string): Promise<void> {
  let fh: fsp.FileHandle | undefined;
  try {
    fh = await fsp.open(dir, 'r');
    await fh.sync();
  } catch {
    // not supported everywhere (Windows, some network filesystems): the data itself is synced
  } finally {
    await fh?.close().catch(() => undefined);
  }
}

function syncDirSync(dir: string): void {
  let fd: number | undefined;
  try {
    fd = fs.openSync(dir, 'r');
    fs.fsyncSync(fd);
  } catch {
    // see syncDir
  } finally {
    if (fd !== undefined) fs.closeSync(fd);
  }
}

/** Write `data` to `path` atomically (temp file, fsync, rename). Throws DataError on failure. */
export async function writeFileAtomic(path: string, data: Uint8Array | string): Promise<void> {
  checkData(path, data);
  const tmp = tempPathFor(path);
  let fh: fsp.FileHandle | undefined;
  try {
    fh = await fsp.open(tmp, 'wx');
    await fh.writeFile(data);
    await fh.sync();
    await fh.close();
    fh = undefined;
    await fsp.rename(tmp, path);
  } catch (e) {
    await fh?.close().catch(() => undefined);
    await fsp.rm(tmp, { force: true }).catch(() => undefined);
    throw writeError(path, e);
  }
  await syncDir(dirname(path));
}

/** Synchronous twin of writeFileAtomic, for exit paths and tiny files. */
export function writeFileAtomicSync(path: string, data: Uint8Array | string): void {
  checkData(path, data);
  const tmp = tempPathFor(path);
  let fd: number | undefined;
  try {
    fd = fs.openSync(tmp, 'wx');
    fs.writeFileSync(fd, data);
    fs.fsyncSync(fd);
    fs.closeSync(fd);
    fd = undefined;
    fs.renameSync(tmp, path);
  } catch (e) {
    if (fd !== undefined) {
      try {
        fs.closeSync(fd);
      } catch {
        // already failing: the original error is the one to report
      }
    }
    fs.rmSync(tmp, { force: true });
    throw writeError(path, e);
  }
  syncDirSync(dirname(path));
}

function toJson(path: string, value: unknown): string {
  let text: string | undefined;
  try {
    text = JSON.stringify(value, null, 2);
  } catch (e) {
    throw new UsageError(`${path}: value cannot be written as JSON (${(e as Error).message})`);
  }
  if (text === undefined) throw new UsageError(`${path}: value cannot be written as JSON (${typeof value})`);
  return text + '\n';
}

/** Pretty JSON (2-space indent) plus a final newline, written atomically. */
export async function writeJsonAtomic(path: string, value: unknown): Promise<void> {
  await writeFileAtomic(path, toJson(path, value));
}

export function writeJsonAtomicSync(path: string, value: unknown): void {
  writeFileAtomicSync(path, toJson(path, value));
}

/** Read a whole file, turning "missing" and "unreadable" into one-line DataErrors. */
export async function readFileBytes(path: string): Promise<Uint8Array> {
  try {
    return await fsp.readFile(path);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new DataError(`${path}: no such file`);
    if (code === 'EISDIR') throw new DataError(`${path}: is a directory, not a file`);
    if (code === 'EACCES' || code === 'EPERM') throw new DataError(`${path}: cannot read: permission denied`);
    throw new DataError(`${path}: cannot read (${fsErrorText(e)})`);
  }
}
