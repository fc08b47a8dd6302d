import * as fsp from 'node:fs/promises';
import { DataError } from '../errors.ts';
import { fsErrorText } from './atomic.ts';

/** The byte arrays one after the other, in one new Uint8Array. */
export function concatBytes(parts: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((s, p) => s + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

/** One line that says which file could not be read and why. */
export function readError(path: string, e: unknown): DataError {
  const code = (e as NodeJS.ErrnoException).code;
  if (code === 'ENOENT') return new DataError(`${path}: no such file`);
  if (code === 'EISDIR') return new DataError(`${path}: is a directory, not a file`);
  if (code === 'EACCES' || code === 'EPERM') return new DataError(`${path}: cannot read: permission denied`);
  return new DataError(`${path}: cannot read (${fsErrorText(e)})`);
}

// One read() call moves at most 2 GiB - 1 bytes on Linux; stay well under it.
const READ_CHUNK = 2 ** 30;

/**
 * A file read in pieces: readers look at a header first and only then read (and allocate for)
 * the parts it declares, so a hostile size field costs nothing. Close it when done.
 */
export class FileBytes {
  private constructor(
    readonly path: string,
    private readonly fh: fsp.FileHandle,
    readonly size: number,
  ) {}

  static async open(path: string): Promise<FileBytes> {
    let fh: fsp.FileHandle | undefined;
    try {
      fh = await fsp.open(path, 'r');
      const st = await fh.stat();
      if (st.isDirectory()) throw Object.assign(new Error('directory'), { code: 'EISDIR' });
      return new FileBytes(path, fh, st.size);
    } catch (e) {
      await fh?.close().catch(() => undefined);
      throw readError(path, e);
    }
  }

  /**
   * Bytes [position, position + length), into `into` (at its start) or a new array. The range
   * must lie inside the file: the callers check it against `size` first.
   */
  async read(position: number, length: number, into?: Uint8Array): Promise<Uint8Array> {
    const out = into ?? new Uint8Array(length);
    let done = 0;
    try {
      while (done < length) {
        const { bytesRead } = await this.fh.read(out, done, Math.min(READ_CHUNK, length - done), position + done);
        if (bytesRead === 0) throw new DataError(`${this.path}: the file shrank while it was being read`);
        done += bytesRead;
      }
    } catch (e) {
      throw e instanceof DataError ? e : readError(this.path, e);
    }
    return out;
  }

  /** Everything from `position` to the end of the file. */
  readRest(position: number): Promise<Uint8Array> {
    return this.read(position, Math.max(0, this.size - position));
  }

  /** The bytes from `start` to the end as a stream (the handle stays open: close() closes it). */
  stream(start = 0): NodeJS.ReadableStream & { destroy(): void } {
    return this.fh.createReadStream({ start, autoClose: false });
  }

  close(): Promise<void> {
    return this.fh.close().catch(() => undefined);
  }
}

/** Open `path`, run `use`, close it whatever happens. */
export async function withFile<T>(path: string, use: (f: FileBytes) => Promise<T>): Promise<T> {
  const f = await FileBytes.open(path);
  try {
    return await use(f);
  } finally {
    await f.close();
  }
}
