import { pipeline } from 'node:stream';
import { createGunzip, gunzipSync } from 'node:zlib';
import { DataError } from '../errors.ts';
import { withFile } from '../io/bytes.ts';

/** An IDX array of unsigned bytes (MNIST's format): dims from the header, data row-major. */
export interface IdxArray {
  dims: number[];
  data: Uint8Array;
}

const UBYTE = 0x08;
// A header that declares more than this many values is refused before anything is allocated.
const MAX_VALUES = 2 ** 31 - 1;
// A gzipped file's data is collected in an array that starts this large (or at the declared
// size, if smaller) and doubles up to the declared size as data arrives: memory follows the
// data actually present, never a size field alone.
const FIRST_CHUNK = 1 << 24;

const isGzip = (b: Uint8Array): boolean => b.length >= 2 && b[0] === 0x1f && b[1] === 0x8b;

interface IdxHeader {
  dims: number[];
  /** bytes of header: 4 + 4 * dims */
  length: number;
  /** values (= bytes) the header declares */
  total: number;
}

/**
 * The header, from the file's first bytes (`b` holds at least 4 + 4 * 4 of them, or the
 * whole file if shorter). Big-endian magic 0x0000TTNN: TT = type, NN = number of dims.
 */
function parseHeader(b: Uint8Array, name: string): IdxHeader {
  if (b.length < 4) throw new DataError(`${name}: too short to be an IDX file (${b.length} bytes)`);
  const view = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const magic = view.getUint32(0, false);
  const type = (magic >>> 8) & 0xff;
  const ndim = magic & 0xff;
  if (magic >>> 16 !== 0 || ndim < 1 || ndim > 4) {
    throw new DataError(`${name}: not an IDX file (magic number 0x${magic.toString(16).padStart(8, '0')})`);
  }
  if (type !== UBYTE) {
    throw new DataError(`${name}: IDX data type 0x${type.toString(16)} is not supported (only unsigned bytes, 0x08)`);
  }
  const length = 4 + 4 * ndim;
  if (b.length < length) throw new DataError(`${name}: truncated IDX header`);
  const dims: number[] = [];
  let total = 1;
  for (let i = 0; i < ndim; i++) {
    const d = view.getUint32(4 + 4 * i, false);
    dims.push(d);
    total *= d;
  }
  if (total > MAX_VALUES) throw new DataError(`${name}: IDX header declares ${total} values, too many`);
  return { dims, length, total };
}

/** What the header declares, in words: "60000 images of 28x28", "60000 labels", "2x3 values". */
function declared(h: IdxHeader): string {
  const [n, ...rest] = h.dims;
  if (h.dims.length === 3) return `${n} images of ${rest.join('x')}`;
  if (h.dims.length === 1) return `${n} labels`;
  return `${h.dims.join('x')} values`;
}

/** The one-line refusal of a gzipped file whose data does not fit its header. */
function sizeMismatch(name: string, h: IdxHeader, have: number | 'more'): DataError {
  const what = `${name}: declares ${declared(h)} (${h.total} bytes of data)`;
  return new DataError(
    have === 'more' ? `${what} but the data holds more (stopped reading there)` : `${what} but the data holds only ${have} bytes`,
  );
}

/** The raw file's data must be exactly what the header declares. */
function checkRawSize(name: string, h: IdxHeader, have: number): void {
  if (have < h.total) {
    throw new DataError(`${name}: truncated IDX data: header declares ${h.dims.join('x')} = ${h.total} bytes, file has ${have}`);
  }
  if (have > h.total) throw new DataError(`${name}: ${have - h.total} unexpected bytes after the IDX data (${h.dims.join('x')})`);
}

/**
 * Parse an IDX file's bytes, raw or gzipped. Only unsigned-byte data (type 0x08) is accepted:
 * that is what MNIST-style files hold. Gzipped bytes are decompressed whole here (at most the
 * largest size a header may declare); readIdx streams them instead.
 */
export function parseIdx(bytes: Uint8Array, name = 'input'): IdxArray {
  if (isGzip(bytes)) {
    try {
      bytes = gunzipSync(bytes, { maxOutputLength: 4 + 16 + MAX_VALUES });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE') {
        throw new DataError(`${name}: decompresses to more than an IDX file may hold (${4 + 16 + MAX_VALUES} bytes)`);
      }
      throw new DataError(`${name}: corrupt gzip data (${(e as Error).message})`);
    }
  }
  const h = parseHeader(bytes.subarray(0, 20), name);
  checkRawSize(name, h, bytes.length - h.length);
  // A plain Uint8Array view (not a Buffer), whatever the input was.
  return { dims: h.dims, data: new Uint8Array(bytes.buffer, bytes.byteOffset + h.length, h.total) };
}

/**
 * Read an IDX file, raw or gzipped, deciding from its header before allocating: a raw file's
 * size is checked against the header, then the data is read into an array of that size; a
 * gzipped one is decompressed as a stream, header first, and reading stops as soon as the data
 * goes past the declared size (a gzip bomb costs no more than the size its header declares).
 */
export async function readIdx(path: string): Promise<IdxArray> {
  return withFile(path, async (f) => {
    const first = await f.read(0, Math.min(f.size, 20));
    if (isGzip(first)) return readGzipped(path, f.stream());
    const h = parseHeader(first, path);
    checkRawSize(path, h, f.size - h.length);
    return { dims: h.dims, data: await f.read(h.length, h.total) };
  });
}

async function readGzipped(name: string, source: NodeJS.ReadableStream): Promise<IdxArray> {
  const gunzip = createGunzip();
  // pipeline: an error on either side destroys both; leaving the loop below does the same
  pipeline(source, gunzip, () => undefined);
  let head = new Uint8Array(0);
  let h: IdxHeader | undefined;
  let data = new Uint8Array(0);
  let filled = 0;
  try {
    for await (const chunk of gunzip as AsyncIterable<Uint8Array>) {
      let c: Uint8Array = chunk;
      if (!h) {
        const joined = new Uint8Array(head.length + c.length);
        joined.set(head);
        joined.set(c, head.length);
        head = joined;
        // the header is complete once its dims are in (4 + 4 * ndim bytes)
        if (head.length < 4 || head.length < 4 + 4 * (head[3]! & 0xff)) continue;
        h = parseHeader(head, name);
        c = head.subarray(h.length);
        data = new Uint8Array(Math.min(h.total, FIRST_CHUNK));
      }
      if (filled + c.length > h.total) throw sizeMismatch(name, h, 'more');
      if (filled + c.length > data.length) {
        const grown = new Uint8Array(Math.min(h.total, Math.max(2 * data.length, filled + c.length)));
        grown.set(data.subarray(0, filled));
        data = grown;
      }
      data.set(c, filled);
      filled += c.length;
    }
  } catch (e) {
    if (e instanceof DataError) throw e;
    throw new DataError(`${name}: corrupt gzip data (${(e as Error).message})`);
  } finally {
    gunzip.destroy();
  }
  if (!h) {
    // the whole decompressed file is shorter than a header: say what is missing
    parseHeader(head, name);
    throw new DataError(`${name}: truncated IDX header`);
  }
  if (filled < h.total) throw sizeMismatch(name, h, filled);
  return { dims: h.dims, data };
}
