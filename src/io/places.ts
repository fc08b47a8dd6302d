/**
 * Where a path really is: two spellings of one place, or a link into it, compare equal. Used to
 * keep an output off its own input (tsne --out = --in, embed --labels = --out) and out of the
 * data set folder (io/lock.ts).
 */
import * as fs from 'node:fs';
import { basename, dirname, isAbsolute, join, relative, resolve } from 'node:path';

/** The path with every part that exists resolved through its links (a part that does not exist yet is kept as written). */
export function realPlace(path: string): string {
  let head = resolve(path);
  const rest: string[] = [];
  for (;;) {
    try {
      return join(fs.realpathSync.native(head), ...rest.reverse());
    } catch {
      const up = dirname(head);
      if (up === head) return resolve(path);
      rest.push(basename(head));
      head = up;
    }
  }
}

/** Two names of one file or folder (existing or not yet). */
export function samePlace(a: string, b: string): boolean {
  return realPlace(a) === realPlace(b);
}

/** `inner` is `outer` or lies inside it (both already real places). */
export function within(inner: string, outer: string): boolean {
  const r = relative(outer, inner);
  return r === '' || (!r.startsWith('..') && !isAbsolute(r));
}
