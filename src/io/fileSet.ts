/**
 * Several files of one folder replaced together: a reader, or the next run after a crash at any
 * point, finds either all the old files or all the new ones, never some of each (a resumed run's
 * new checkpoint beside its old manifest would be refused by the resume checks).
 *
 * A redo log in the folder itself: the new files are written (atomically, one by one) into
 * `.commit/`, then `.commit/COMMIT.json` names them; from then on the set is decided and each file
 * is renamed into place (the manifest last), and `.commit/` removed. finishFileSet() completes a
 * set whose COMMIT.json was written (roll forward) and drops one whose was not (roll back): the
 * folder then holds its old files, untouched.
 *
 * A set may carry a tag (the queue job it came from): its commit record then stays in `.commit/`
 * after the files are in place, as a receipt, until closeFileSet(); placedSetTag() reads it. The
 * coordinator drops the job from Redis in between, so that a crash there leaves the tag to say
 * which job's result the folder already holds (queue/coordinator.ts).
 *
 * Every function takes the staging folder's name (default `.commit`): a lone file written as a
 * set of one (a queue job's distance sample or t-SNE layout) stages in `.commit-<its name>`
 * (singleFileStaging), so that sets of different files of one folder never share a staging folder.
 */
import * as fs from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomic, writeJsonAtomic } from './atomic.ts';

export const STAGING_DIR = '.commit';
const COMMIT_FILE = 'COMMIT.json';
const SAFE_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;
const SAFE_TAG = /^[A-Za-z0-9][A-Za-z0-9._:-]{0,199}$/;
const SAFE_STAGING = /^\.commit(-[A-Za-z0-9][A-Za-z0-9._-]{0,127})?$/;

/** The staging folder of one file written alone as a set (beside it, in its folder). */
export function singleFileStaging(name: string): string {
  const staging = `${STAGING_DIR}-${name}`;
  if (!SAFE_STAGING.test(staging)) throw new Error(`singleFileStaging: bad file name ${JSON.stringify(name)}`);
  return staging;
}

function stagingPath(dir: string, staging: string): string {
  if (!SAFE_STAGING.test(staging)) throw new Error(`fileSet: bad staging folder ${JSON.stringify(staging)}`);
  return join(dir, staging);
}

/**
 * Replace `files` (name -> bytes) in `dir` together; names in `last` are put in place after the
 * others. `onStep` is called after each step that changes the disk (a test makes the process die
 * there to check every crash point). With a `tag`, the commit record stays until closeFileSet().
 */
export async function writeFileSet(
  dir: string,
  files: Record<string, Uint8Array>,
  last: readonly string[] = [],
  onStep?: () => void,
  tag?: string,
  stagingName: string = STAGING_DIR,
): Promise<void> {
  if (tag !== undefined && !SAFE_TAG.test(tag)) throw new Error(`writeFileSet: bad tag ${JSON.stringify(tag)}`);
  const staging = stagingPath(dir, stagingName);
  fs.mkdirSync(dir, { recursive: true });
  finishFileSet(dir, stagingName); // a set left by a crash first: it is older than this one
  fs.rmSync(staging, { recursive: true, force: true });
  fs.mkdirSync(staging);
  const names = Object.keys(files).sort((a, b) => Number(last.includes(a)) - Number(last.includes(b)) || last.indexOf(a) - last.indexOf(b));
  for (const n of names) {
    if (!SAFE_NAME.test(n) || n === COMMIT_FILE) throw new Error(`writeFileSet: bad file name ${JSON.stringify(n)}`);
    await writeFileAtomic(join(staging, n), files[n]!);
    onStep?.();
  }
  // the commit point: from here a crash is completed, not undone
  await writeJsonAtomic(join(staging, COMMIT_FILE), tag === undefined ? { names } : { names, tag });
  onStep?.();
  moveIntoPlace(dir, staging, names, onStep, tag !== undefined);
}

/**
 * Complete or undo a set of files that a crash interrupted in `dir` (see the module comment);
 * nothing when there is none. Returns what it did.
 */
export function finishFileSet(dir: string, stagingName: string = STAGING_DIR): 'none' | 'completed' | 'undone' {
  const staging = stagingPath(dir, stagingName);
  if (!fs.existsSync(staging)) return 'none';
  const record = readRecord(staging);
  if (!record) {
    fs.rmSync(staging, { recursive: true, force: true });
    return 'undone';
  }
  moveIntoPlace(dir, staging, record.names);
  return 'completed';
}

/**
 * The tag of a decided set in `dir` (one written with a tag whose commit record exists), after
 * its files are put in place; the record stays until closeFileSet(). Undefined, and nothing done,
 * when `dir` holds no such set.
 */
export function placedSetTag(dir: string, stagingName: string = STAGING_DIR): string | undefined {
  const staging = stagingPath(dir, stagingName);
  const record = readRecord(staging);
  if (record?.tag === undefined) return undefined;
  moveIntoPlace(dir, staging, record.names, undefined, true);
  return record.tag;
}

/**
 * Drop the staging folder (the receipt a tagged set leaves): once its tag has been acted on. A set
 * not decided (no commit record) is undone by it.
 */
export function closeFileSet(dir: string, stagingName: string = STAGING_DIR): void {
  fs.rmSync(stagingPath(dir, stagingName), { recursive: true, force: true });
}

/** The commit record in a staging folder, if it was written (the set is decided). */
function readRecord(staging: string): { names: string[]; tag?: string } | undefined {
  try {
    const c = JSON.parse(fs.readFileSync(join(staging, COMMIT_FILE), 'utf8')) as { names?: unknown; tag?: unknown };
    if (!Array.isArray(c.names) || !c.names.every((n) => typeof n === 'string' && SAFE_NAME.test(n))) return undefined;
    const names = c.names as string[];
    return typeof c.tag === 'string' && SAFE_TAG.test(c.tag) ? { names, tag: c.tag } : { names };
  } catch {
    // no commit record (or a torn one, which atomic writes never leave): the set was not decided
    return undefined;
  }
}

/**
 * Rename the staged files in order (those already moved are skipped), then drop the staging
 * folder, or keep it (`keepRecord`: a tagged set's receipt, the commit record alone by then).
 */
function moveIntoPlace(dir: string, staging: string, names: readonly string[], onStep?: () => void, keepRecord = false): void {
  for (const n of names) {
    const from = join(staging, n);
    if (!fs.existsSync(from)) continue; // moved before a crash
    fs.renameSync(from, join(dir, n));
    onStep?.();
  }
  if (!keepRecord) fs.rmSync(staging, { recursive: true, force: true });
}
