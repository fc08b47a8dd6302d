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

/**
 * Whether a chunk's generation comes after the one the page holds: those of one server process
 * count up; one of another process (the server restarted) is taken as later.
 */
export function later(chunk: string, have: string): boolean {
  const [cb, cn] = chunk.split('.');
  const [hb, hn] = have.split('.');
  return cb !== hb || Number(cn) > Number(hn);
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
 * `have` with chunk `c` merged in; 'same' when `c` brings nothing newer; 'ignore' for a run the
 * page does not hold (it asks for the whole log when a view draws the run); 'resync' when the
 * page must ask for what follows `have` (at(have)).
 */
export function merge<R>(have: Held<R> | undefined, c: Chunk<R>): Held<R> | 'same' | 'ignore' | 'resync' {
  if (c.reset) {
    if (have && (have.gen === c.gen ? have.to > c.to : !later(c.gen, have.gen))) return 'same';
    return held(c, c.epochs, c.skipped);
  }
  if (!have) return c.from === 0 ? held(c, c.epochs, c.skipped) : 'ignore';
  if (have.gen !== c.gen) return later(c.gen, have.gen) ? 'resync' : 'same';
  if (c.from === have.to) return held(c, c.epochs.length > 0 ? [...have.epochs, ...c.epochs] : have.epochs, c.skipped.length > 0 ? [...have.skipped, ...c.skipped] : have.skipped);
  if (c.to <= have.to) return 'same';
  return 'resync';
}

/** The `at=` value that asks for what follows `have`. */
export function at(have: Held<unknown>): string {
  return `${have.gen}:${have.to}`;
}
