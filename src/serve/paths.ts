/**
 * The one gate between a URL and the file system: a relative path from a request is resolved
 * under one served folder, or refused. Refused (null, which the server answers with 404):
 * `..` segments (plain or percent-encoded, any case), NUL bytes, backslashes, absolute paths,
 * and any path whose real location (symlinks followed) leaves the folder's own real path.
 */
import { constants, openSync, realpathSync } from 'node:fs';
import { isAbsolute, join, relative, sep } from 'node:path';

/** Decode a URL path once; null when the encoding is broken. */
export function decodePath(raw: string): string | null {
  try {
    return decodeURIComponent(raw);
  } catch {
    return null;
  }
}

/** True when `child` (absolute) is `root` or lies inside it. */
export function isInside(root: string, child: string): boolean {
  const r = relative(root, child);
  return r === '' || (!r.startsWith('..' + sep) && r !== '..' && !isAbsolute(r));
}

/**
 * The real path of `rel` (already decoded, '/'-separated) under `rootReal` (a real path), or
 * null when it is not a clean relative path, does not exist, or resolves outside the root.
 */
export function resolveInside(rootReal: string, rel: string): string | null {
  if (rel.includes('\0') || rel.includes('\\') || rel.startsWith('/')) return null;
  const parts = rel.split('/').filter((p) => p !== '' && p !== '.');
  // a decoded "%2e%2e" arrives here as "..": refused like a literal one
  if (parts.some((p) => p === '..')) return null;
  let real: string;
  try {
    real = realpathSync(join(rootReal, ...parts));
  } catch {
    return null;
  }
  return isInside(rootReal, real) ? real : null;
}

const NO_FOLLOW = constants.O_RDONLY | (constants.O_NOFOLLOW ?? 0);

/**
 * Open a file of a served folder for reading. A file that is a link is followed only to a file
 * inside `rootReal` (the served folder's real path): a folder of runs from elsewhere whose
 * log.jsonl or results.json links to a file outside must not make the server show that file.
 * Without `rootReal`, a link is refused. A refused link throws with the code "a link out of the
 * served folder", which the readers' messages quote.
 */
export function openServed(path: string, rootReal?: string): number {
  try {
    // the final component is no link (the folders above are real paths already): no check needed
    return openSync(path, NO_FOLLOW);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ELOOP' || constants.O_NOFOLLOW === undefined) throw e;
  }
  const real = realpathSync.native(path);
  if (rootReal === undefined || !isInside(rootReal, real)) throw Object.assign(new Error(`${path}: a link out of the served folder`), { code: 'a link out of the served folder' });
  return openSync(real, NO_FOLLOW);
}
