/**
 * The page's side of the incremental logs (server: serve/tail.ts). Per run the page holds the
 * records of a file up to a byte offset of one generation; a chunk that starts there is
 * appended, a `reset` one replaces it, one already held is dropped, and one that leaves a gap (an
 * event missed while reconnecting) means asking for the rest with `at=GEN:OFFSET`. No DOM here:
 * the tests merge the server's events with this very function.
 */
import type { At, Chunk } from '../serve/tail.ts';

export type { At, Chunk };

/** One run's file as the page holds it. */
export interface Held<R> {
  id: string;
  gen: string;
  /** byte offset after the last line held */
  to: number;
  epochs: R[];
  skipped: string[];
  note: string | null;
  /** skipped lines, then the note: what the views show */
  messages: string[];
}

/** The server process a generation or a runs-table version comes from: the id before its dot. */
export function serverOf(v: string): string {
  const i = v.indexOf('.');
  return i < 0 ? v : v.slice(0, i);
}

/**
 * Whether data of generation (or version) `chunk` may be taken by a page connected to server
 * `current` (the process whose `runs` event the event stream last brought; undefined before the
 * first): only data of that process, once the page knows it. A reply or event of an earlier
 * server that arrives after a restart (a slow request, a queued event) is stale whatever its
 * counter says: two processes' counters do not compare.
 */
export function fromCurrent(chunk: string, current: string | undefined): boolean {
  return current === undefined || serverOf(chunk) === current;
}

/**
 * Whether a generation comes after the one the page holds: those of one server process count
 * up; of two processes, the one the page is connected to (`current`) is the later, and data of
 * any other is never later. Before the page knows its server, another process counts as later.
 */
export function later(chunk: string, have: string, current?: string): boolean {
  const [cb, cn] = chunk.split('.');
  const [hb, hn] = have.split('.');
  if (cb === hb) return Number(cn) > Number(hn);
  return fromCurrent(chunk, current);
}

const held = <R>(c: Chunk<R>, epochs: R[], skipped: string[]): Held<R> => ({
  id: c.id,
  gen: c.gen,
  to: c.to,
  epochs,
  skipped,
  note: c.note,
  messages: c.note === null ? skipped : [...skipped, c.note],
});

/**
 * `have` with chunk `c` merged in; 'same' when `c` brings nothing newer (or comes from a server
 * other than `current`, the one the page is connected to); 'ignore' for a run the page does not
 * hold (it asks for the whole log when a view draws the run); 'resync' when the page must ask
 * for what follows `have` (at(have)).
 */
export function merge<R>(have: Held<R> | undefined, c: Chunk<R>, current?: string): Held<R> | 'same' | 'ignore' | 'resync' {
  if (!fromCurrent(c.gen, current)) return 'same';
  if (c.reset) {
    if (have && (have.gen === c.gen ? have.to > c.to : !later(c.gen, have.gen, current))) return 'same';
    return held(c, c.epochs, c.skipped);
  }
  if (!have) return c.from === 0 ? held(c, c.epochs, c.skipped) : 'ignore';
  if (have.gen !== c.gen) return later(c.gen, have.gen, current) ? 'resync' : 'same';
  if (c.from === have.to) return held(c, c.epochs.length > 0 ? [...have.epochs, ...c.epochs] : have.epochs, c.skipped.length > 0 ? [...have.skipped, ...c.skipped] : have.skipped);
  if (c.to <= have.to) return 'same';
  return 'resync';
}

/** The `at=` value that asks for what follows `have`. */
export function at(have: Held<unknown>): string {
  return `${have.gen}:${have.to}`;
}
