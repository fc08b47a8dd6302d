/**
 * Incremental reading of a run's JSON-lines files (log.jsonl, distances.jsonl) for the event
 * stream: each change is sent as the complete lines appended since the last one, not the whole
 * file again (a sweep's pages would otherwise receive, and parse, every log once per epoch).
 *
 * Per file the server keeps one small record, shared by every page: a generation, the byte
 * offset after the last complete line it has read, the line count, a SHA-1 of the bytes before
 * that offset, and the parser's carry (the last epoch seen). No page's copy is kept. A change
 * whose file still starts with exactly those bytes is an append: only the lines after the
 * offset are parsed and sent. Anything else (the file shrank, was deleted, or was replaced by
 * different content: a run restarted in the same folder, a resume from an earlier checkpoint)
 * starts a new generation, sent whole with `reset`. The trainer replaces log.jsonl by a rename
 * every epoch (a new inode each time), so the inode and mtime cannot tell an append from a new
 * file: the prefix hash does. A last line without its newline (a writer mid-append) is never
 * sent; it only sets the chunk's note until it is complete.
 *
 * A page keeps, per run, the generation and offset it holds (web/chunks.ts), appends a chunk
 * that starts where it stands, and asks for the rest (`at=GEN:OFFSET`) when one does not: after
 * a reconnect, or an event missed. Generations carry a random id of this server process, so
 * offsets from an earlier server are never taken for this one's.
 */
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';

/** Lines of a JSON-lines file as one event or answer carries them. */
export interface Chunk<R> {
  id: string;
  /** the file's generation: a new one each time it was replaced by other content or truncated */
  gen: string;
  /** byte offsets in the file of the complete lines carried: [from, to) */
  from: number;
  to: number;
  /** true: the whole file (from is 0); the page replaces what it holds of this run */
  reset: boolean;
  /** the records of the lines carried, in file order */
  epochs: R[];
  /** why lines among those carried were skipped (not JSON, not a record, out of order) */
  skipped: string[];
  /** the file's state now: a last line being written, a file missing or unreadable; null if none */
  note: string | null;
}

/** Where a page stands in a file: its generation and the offset it holds up to. */
export interface At {
  gen: string;
  offset: number;
}

/** `GEN:OFFSET` as the page sends it (`at=`), or undefined for anything else (answered whole). */
export function parseAt(s: string | null | undefined): At | undefined {
  const m = /^([0-9a-f]+\.\d+):(\d{1,15})$/.exec(s ?? '');
  return m ? { gen: m[1]!, offset: Number(m[2]) } : undefined;
}

/** How one file's lines become records; `carry` is what a line's check needs of the lines before it. */
export interface LineParser<R, C> {
  /** the file name, for messages */
  name: string;
  start: C;
  /** one complete, non-blank line (numbered from 1) */
  line(text: string, n: number, carry: C): { record?: R; skip?: string; carry: C };
  /** the note for a last line still being written */
  partial(carry: C): string;
}

export interface Parsed<R, C> {
  records: R[];
  skipped: string[];
  carry: C;
  /** lines read (blank ones included: they keep the numbering) */
  lines: number;
}

/** Parse complete lines (`text` ends with a newline or is empty), numbered from `first`. */
export function parseLines<R, C>(p: LineParser<R, C>, text: string, first: number, carry: C): Parsed<R, C> {
  const lines = text.split('\n');
  lines.pop();
  const records: R[] = [];
  const skipped: string[] = [];
  lines.forEach((line, i) => {
    if (line.trim() === '') return;
    const r = p.line(line, first + i, carry);
    carry = r.carry;
    if (r.record !== undefined) records.push(r.record);
    if (r.skip !== undefined) skipped.push(r.skip);
  });
  return { records, skipped, carry, lines: lines.length };
}

/** A whole file's text parsed: its complete lines, and whether a last line is being written. */
export function parseText<R, C>(p: LineParser<R, C>, text: string): Parsed<R, C> & { partial: boolean } {
  const end = text.lastIndexOf('\n') + 1;
  return { ...parseLines(p, text.slice(0, end), 1, p.start), partial: text.slice(end).trim() !== '' };
}

interface Known {
  gen: string;
  /** offset after the last complete line read */
  end: number;
  lines: number;
  /** SHA-1 of the file's bytes [0, end) */
  digest: Buffer;
  carry: unknown;
  note: string | null;
}

export interface TailRead<R> {
  /** what changed since the last read, for every page (null: nothing to send) */
  changed: Chunk<R> | null;
  /** the answer to a page's request: the lines after `at` when it is of this generation, else the whole file */
  answer(at?: At): Chunk<R>;
}

const NEWLINE = 0x0a;

export class Tails {
  /** this server process: a page's generation from another one is never matched */
  private readonly boot = randomBytes(4).toString('hex');
  private count = 0;
  private readonly known = new Map<string, Known>();

  /** files larger than `maxBytes` are not read (a note says so) */
  constructor(private readonly maxBytes: number) {}

  get size(): number {
    return this.known.size;
  }

  /** Drop the records of files whose key `keep` refuses (runs that vanished). */
  prune(keep: (key: string) => boolean): void {
    for (const k of [...this.known.keys()]) if (!keep(k)) this.known.delete(k);
  }

  /**
   * Read the file at `path` now. The first read of a file sends no lines (no page can hold any
   * of it: generations are handed out by reads); later ones send the lines appended, or the
   * whole file with `reset` when it is no longer an extension of what was read.
   */
  read<R, C>(key: string, id: string, path: string, parser: LineParser<R, C>): TailRead<R> {
    let buf = Buffer.alloc(0);
    let error: string | null = null;
    try {
      const size = statSync(path).size;
      if (size > this.maxBytes) error = `${parser.name} is too large to show (${size} bytes)`;
      else buf = readFileSync(path);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      error = code === 'ENOENT' ? `${parser.name} does not exist (yet)` : `${parser.name} cannot be read (${code ?? 'error'})`;
    }
    const end = buf.lastIndexOf(NEWLINE) + 1;
    const partial = buf.subarray(end).toString('utf8').trim() !== '';
    const noteOf = (carry: C): string | null => error ?? (partial ? parser.partial(carry) : null);
    const k = this.known.get(key);

    const hash = createHash('sha1');
    let appended: Parsed<R, C> | undefined;
    if (k && buf.length >= k.end) {
      hash.update(buf.subarray(0, k.end));
      if (hash.copy().digest().equals(k.digest)) {
        appended = parseLines(parser, buf.subarray(k.end, end).toString('utf8'), k.lines + 1, k.carry as C);
        hash.update(buf.subarray(k.end, end));
      }
    }
    let whole: Parsed<R, C> | undefined;
    let now: Known;
    let changed: Chunk<R> | null = null;
    if (k && appended) {
      now = { gen: k.gen, end, lines: k.lines + appended.lines, digest: hash.digest(), carry: appended.carry, note: noteOf(appended.carry) };
      if (end > k.end || now.note !== k.note) {
        changed = { id, gen: k.gen, from: k.end, to: end, reset: false, epochs: appended.records, skipped: appended.skipped, note: now.note };
      }
    } else {
      whole = parseLines(parser, buf.subarray(0, end).toString('utf8'), 1, parser.start);
      now = {
        gen: `${this.boot}.${++this.count}`,
        end,
        lines: whole.lines,
        digest: createHash('sha1').update(buf.subarray(0, end)).digest(),
        carry: whole.carry,
        note: noteOf(whole.carry),
      };
      // a file read for the first time: no page holds any of this generation, so none needs its
      // lines; an empty chunk at its end still tells the pages that the run moved on (the
      // explorer's epoch slider listens), and those that hold it from an earlier read resync
      changed = k
        ? { id, gen: now.gen, from: 0, to: end, reset: true, epochs: whole.records, skipped: whole.skipped, note: now.note }
        : { id, gen: now.gen, from: end, to: end, reset: false, epochs: [], skipped: [], note: now.note };
    }
    this.known.set(key, now);

    const answer = (at?: At): Chunk<R> => {
      // an offset of this generation is a line end the page was sent: only the lines after it are new
      const from = at && at.gen === now.gen && at.offset <= end && (at.offset === 0 || buf[at.offset - 1] === NEWLINE) ? at.offset : -1;
      if (from < 0) {
        whole ??= parseLines(parser, buf.subarray(0, end).toString('utf8'), 1, parser.start);
        return { id, gen: now.gen, from: 0, to: end, reset: true, epochs: whole.records, skipped: whole.skipped, note: now.note };
      }
      // the lines before `from` are parsed for their count and carry only (server time, not traffic)
      const before = parseLines(parser, buf.subarray(0, from).toString('utf8'), 1, parser.start);
      const rest = parseLines(parser, buf.subarray(from, end).toString('utf8'), before.lines + 1, before.carry);
      return { id, gen: now.gen, from, to: end, reset: false, epochs: rest.records, skipped: rest.skipped, note: now.note };
    };
    return { changed, answer };
  }
}
