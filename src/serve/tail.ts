/**
 * Incremental reading of a run's JSON-lines files (log.jsonl, distances.jsonl) for the event
 * stream: each change is sent as the complete lines appended since the last one, not the whole
 * file again (a sweep's pages would otherwise receive, and parse, every log once per epoch).
 *
 * Per file the server keeps one small record, shared by every page: a generation, the byte
 * offset after the last complete line it has read, the line count, SHA-1s of the first and of
 * the last WINDOW bytes before that offset, and the parser's carry (for log.jsonl the epoch
 * count, the seconds summed and the last epoch: a run's row is built from it). No page's copy
 * is kept, nor any text. A change whose file still has those bytes at both ends is an append:
 * only the bytes after the offset are read, and only their lines parsed and sent, so an epoch
 * costs its own line, not the file. Anything else (the file shrank, was deleted, or was
 * replaced by different content: a run restarted in the same folder, a resume from an earlier
 * checkpoint) starts a new generation, read and sent whole with `reset`. The trainer replaces
 * log.jsonl by a rename every epoch (a new inode each time), so the inode and mtime cannot
 * tell an append from a new file: the hashed bytes do. A last line without its newline (a
 * writer mid-append) is never sent; it only sets the chunk's note until it is complete.
 *
 * A page keeps, per run, the generation and offset it holds (web/chunks.ts), appends a chunk
 * that starts where it stands, and asks for the rest (`at=GEN:OFFSET`) when one does not: after
 * a reconnect, or an event missed. Generations carry a random id of this server process, so
 * offsets from an earlier server are never taken for this one's; and a page takes chunks only
 * of the process its event stream reaches, so a late reply of an earlier one is dropped.
 */
import { createHash, randomBytes } from 'node:crypto';
import { closeSync, fstatSync, readSync } from 'node:fs';
import { openServed } from './paths.ts';

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
  /** SHA-1 of the file's first bytes, [0, min(end, WINDOW)) */
  head: Buffer;
  /** SHA-1 of the bytes just before `end`, [max(0, end - WINDOW), end) */
  tail: Buffer;
  carry: unknown;
  note: string | null;
}

export interface TailRead<R> {
  /** what changed since the last read, for every page (null: nothing to send) */
  changed: Chunk<R> | null;
  /** the answer to a page's request (given `want`): the lines after `want.at` when it is of this generation, else the whole file */
  answer?: Chunk<R>;
}

const NEWLINE = 0x0a;
/**
 * Bytes hashed at each end of what was read: a change reads these two windows and the bytes
 * added, not the whole file. 512 bytes hold two or more lines of a log or one histogram line,
 * whose numbers (timings, losses) differ between any two writings of an epoch.
 */
export const WINDOW = 512;

const sha1 = (b: Buffer): Buffer => createHash('sha1').update(b).digest();

export class Tails {
  private count = 0;
  private readonly known = new Map<string, Known>();
  /** bytes read from disk by every read so far (the tests' and the benchmark's measure) */
  bytesRead = 0;

  /**
   * Files larger than `maxBytes` are not read (a note says so). `boot`: this server process's id
   * (shared with its runs table's versions): a page's generation from another process is never
   * matched, and a page drops chunks of a process other than the one it is connected to.
   */
  constructor(
    private readonly maxBytes: number,
    private readonly boot = randomBytes(4).toString('hex'),
  ) {}

  get size(): number {
    return this.known.size;
  }

  /** Drop the records of files whose key `keep` refuses (runs that vanished). */
  prune(keep: (key: string) => boolean): void {
    for (const k of [...this.known.keys()]) if (!keep(k)) this.known.delete(k);
  }

  /** What the last read of `key` parsed up to: the parser's carry (for a run's row), the note. */
  state<C>(key: string): { carry: C; note: string | null } | undefined {
    const k = this.known.get(key);
    return k && { carry: k.carry as C, note: k.note };
  }

  /**
   * Read the file at `path` now. The first read of a file sends no lines (no page can hold any
   * of it: generations are handed out by reads); later ones send the lines appended, or the
   * whole file with `reset` when it is no longer an extension of what was read. An append
   * costs the two windows and the new bytes; a new file or a reset, the whole file. With
   * `want`, the answer to a page's request comes from the same open file.
   */
  read<R, C>(key: string, id: string, path: string, parser: LineParser<R, C>, want?: { at?: At | undefined }, root?: string): TailRead<R> {
    let fd: number | undefined;
    let size = 0;
    let error: string | null = null;
    try {
      // `root`: the served folder's real path, the only place a link may lead (paths.ts)
      fd = openServed(path, root);
      size = fstatSync(fd).size;
      if (size > this.maxBytes) {
        error = `${parser.name} is too large to show (${size} bytes)`;
        size = 0;
      }
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      error = code === 'ENOENT' ? `${parser.name} does not exist (yet)` : `${parser.name} cannot be read (${code ?? 'error'})`;
    }
    try {
      return this.readOpen(key, id, fd, size, error, parser, want);
    } finally {
      if (fd !== undefined) closeSync(fd);
    }
  }

  private readOpen<R, C>(key: string, id: string, fd: number | undefined, size: number, error: string | null, parser: LineParser<R, C>, want?: { at?: At | undefined }): TailRead<R> {
    /** bytes [from, to) of the open file (fewer if it shrank meanwhile) */
    const bytes = (from: number, to: number): Buffer => {
      if (fd === undefined || to <= from) return Buffer.alloc(0);
      const b = Buffer.allocUnsafe(to - from);
      let n = 0;
      while (n < b.length) {
        const r = readSync(fd, b, n, b.length - n, from + n);
        if (r === 0) break;
        n += r;
      }
      this.bytesRead += n;
      return b.subarray(0, n);
    };
    const k = this.known.get(key);
    let partial = false;
    const noteOf = (carry: C): string | null => error ?? (partial ? parser.partial(carry) : null);

    let now: Known | undefined;
    let changed: Chunk<R> | null = null;
    /** the whole file's complete lines, when this read parsed them */
    let whole: Parsed<R, C> | undefined;
    if (k && size >= k.end) {
      const head = bytes(0, Math.min(k.end, WINDOW));
      const tail = k.end > WINDOW ? bytes(k.end - WINDOW, k.end) : head;
      if (head.length === Math.min(k.end, WINDOW) && sha1(head).equals(k.head) && sha1(tail).equals(k.tail)) {
        const added = bytes(k.end, size);
        const cut = added.lastIndexOf(NEWLINE) + 1;
        partial = added.subarray(cut).toString('utf8').trim() !== '';
        const appended = parseLines(parser, added.subarray(0, cut).toString('utf8'), k.lines + 1, k.carry as C);
        const end = k.end + cut;
        const lines = cut > 0 ? [added.subarray(0, cut)] : [];
        const headNow = Buffer.concat([head, ...lines]).subarray(0, Math.min(end, WINDOW));
        const tailAll = Buffer.concat([tail, ...lines]);
        now = {
          gen: k.gen,
          end,
          lines: k.lines + appended.lines,
          head: end > k.end && k.end < WINDOW ? sha1(headNow) : k.head,
          tail: end > k.end ? sha1(tailAll.subarray(Math.max(0, tailAll.length - WINDOW))) : k.tail,
          carry: appended.carry,
          note: noteOf(appended.carry),
        };
        if (end > k.end || now.note !== k.note) {
          changed = { id, gen: k.gen, from: k.end, to: end, reset: false, epochs: appended.records, skipped: appended.skipped, note: now.note };
        }
      }
    }
    if (!now) {
      const buf = bytes(0, size);
      const end = buf.lastIndexOf(NEWLINE) + 1;
      partial = buf.subarray(end).toString('utf8').trim() !== '';
      whole = parseLines(parser, buf.subarray(0, end).toString('utf8'), 1, parser.start);
      now = {
        gen: `${this.boot}.${++this.count}`,
        end,
        lines: whole.lines,
        head: sha1(buf.subarray(0, Math.min(end, WINDOW))),
        tail: sha1(buf.subarray(Math.max(0, end - WINDOW), end)),
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
    if (!want) return { changed };

    const { end } = now;
    const at = want.at;
    // an offset of this generation is a line end the page was sent: only the lines after it are new
    const lineEnd = (o: number): boolean => o === 0 || o === end || bytes(o - 1, o)[0] === NEWLINE;
    const from = at && at.gen === now.gen && at.offset <= end && lineEnd(at.offset) ? at.offset : -1;
    if (from === end) return { changed, answer: { id, gen: now.gen, from, to: end, reset: false, epochs: [], skipped: [], note: now.note } };
    if (from < 0) {
      whole ??= parseLines(parser, bytes(0, end).toString('utf8'), 1, parser.start);
      return { changed, answer: { id, gen: now.gen, from: 0, to: end, reset: true, epochs: whole.records, skipped: whole.skipped, note: now.note } };
    }
    // the lines before `from` are parsed for their count and carry only (server time, not traffic)
    const buf = bytes(0, end);
    const before = parseLines(parser, buf.subarray(0, from).toString('utf8'), 1, parser.start);
    const rest = parseLines(parser, buf.subarray(from, end).toString('utf8'), before.lines + 1, before.carry);
    return { changed, answer: { id, gen: now.gen, from, to: end, reset: false, epochs: rest.records, skipped: rest.skipped, note: now.note } };
  }
}
