import { readFile } from 'node:fs/promises';
import { gunzipSync } from 'node:zlib';
import { DataError } from '../errors.ts';

/** An IDX array of unsigned bytes (MNIST's format): dims from the header, data row-major. */
export interface IdxArray {
  dims: number[];
  data: Uint8Array;
}

const UBYTE = 0x08;
// A header that declares more than this many values is refused before anything is allocated.
const MAX_VALUES = 2 ** 31 - 1;

/**
 * Parse an IDX file (big-endian magic 0x0000TTNN: TT = type, NN = number of dims), raw or gzipped.
 * Only unsigned-byte data (type 0x08) is accepted: that is what MNIST-style files hold.
 */
export function parseIdx(bytes: Uint8Array, name = 'input'): IdxArray {
  if (bytes.length >= 2 && bytes[0] === 0x1f && bytes[1] === 0x8b) {
    try {
      bytes = gunzipSync(bytes, { maxOutputLength: 2 ** 30 });
    } catch (e) {
      throw new DataError(`${name}: corrupt gzip data (${(e as Error).message})`);
    }
  }
  if (bytes.length < 4) throw new DataError(`${name}: too short to be an IDX file (${bytes.length} bytes)`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const magic = view.getUint32(0, false);
  const type = (magic >>> 8) & 0xff;
  const ndim = magic & 0xff;
  if (magic >>> 16 !== 0 || ndim < 1 || ndim > 4) {
    throw new DataError(`${name}: not an IDX file (magic number 0x${magic.toString(16).padStart(8, '0')})`);
  }
  if (type !== UBYTE) {
    throw new DataError(`${name}: IDX data type 0x${type.toString(16)} is not supported (only unsigned bytes, 0x08)`);
  }
  const headerLen = 4 + 4 * ndim;
  if (bytes.length < headerLen) throw new DataError(`${name}: truncated IDX header`);
  const dims: number[] = [];
  let total = 1;
  for (let i = 0; i < ndim; i++) {
    const d = view.getUint32(4 + 4 * i, false);
    dims.push(d);
    total *= d;
  }
  if (total > MAX_VALUES) throw new DataError(`${name}: IDX header declares ${total} values, too many`);
  const have = bytes.length - headerLen;
  if (have < total) {
    throw new DataError(`${name}: truncated IDX data: header declares ${dims.join('x')} = ${total} bytes, file has ${have}`);
  }
  if (have > total) {
    throw new DataError(`${name}: ${have - total} unexpected bytes after the IDX data (${dims.join('x')})`);
  }
  // A plain Uint8Array view (not a Buffer), whatever the input was.
  return { dims, data: new Uint8Array(bytes.buffer, bytes.byteOffset + headerLen, total) };
}

export async function readIdx(path: string): Promise<IdxArray> {
  let bytes: Uint8Array;
  try {
    bytes = await readFile(path);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new DataError(code === 'ENOENT' ? `${path}: no such file` : `${path}: cannot read (${code ?? (e as Error).message})`);
  }
  return parseIdx(bytes, path);
}
