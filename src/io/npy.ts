/**
 * NumPy's `.npy` format (https://numpy.org/neps/nep-0001-npy-format.html), so that embeddings,
 * weights and data move to and from Python with a plain `np.load` / `np.save`.
 *
 * Layout: magic `\x93NUMPY`, version (major, minor), header length (u16 LE for 1.0, u32 LE for
 * 2.0 and 3.0), then a Python dict literal such as
 * `{'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }` padded with spaces and ended by
 * a newline, then the raw C-order data. The header is parsed by a small literal parser, never
 * evaluated. Assumes a little-endian host (every platform Node runs on in practice).
 */
import { DataError, UsageError } from '../errors.ts';
import { writeFileAtomic } from './atomic.ts';
import { withFile } from './bytes.ts';

export type NpyDtype = 'float32' | 'int32' | 'uint8' | 'float64' | 'int64';
export type NpyData = Float32Array | Int32Array | Uint8Array | Float64Array | BigInt64Array;

export interface NpyArray {
  dtype: NpyDtype;
  shape: number[];
  data: NpyData;
}

const MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]; // \x93NUMPY
// numpy itself refuses headers over 10,000 bytes by default; this is looser but still bounded
const MAX_HEADER_BYTES = 1 << 20;

interface DtypeInfo {
  dtype: NpyDtype;
  descr: string;
  size: number;
}
const DTYPES: readonly DtypeInfo[] = [
  { dtype: 'float32', descr: '<f4', size: 4 },
  { dtype: 'int32', descr: '<i4', size: 4 },
  { dtype: 'uint8', descr: '|u1', size: 1 },
  { dtype: 'float64', descr: '<f8', size: 8 },
  { dtype: 'int64', descr: '<i8', size: 8 },
];

/** What a descr string means to us, or a one-line reason it is refused. */
function dtypeFromDescr(descr: string): DtypeInfo | string {
  // byte order is meaningless for one-byte types: numpy writes '|u1', others may write '<u1'
  const d = descr === '<u1' || descr === '=u1' ? '|u1' : descr;
  const hit = DTYPES.find((t) => t.descr === d);
  if (hit) return hit;
  if (/^>[fiucb]\d+$/.test(descr)) {
    return `big-endian dtype '${descr}' is not supported; save it with arr.astype('<${descr.slice(1)}')`;
  }
  if (/^[|<>=]?O\d*$/.test(descr)) return `object arrays (dtype '${descr}') cannot be read; save a numeric array`;
  return `dtype '${descr}' is not supported (supported: ${DTYPES.map((t) => t.descr).join(', ')})`;
}

// ---- a tiny parser for the Python literals that can appear in a .npy header ----

type PyValue = string | number | boolean | null | PyValue[] | PyTuple | Map<string, PyValue>;
/** Tuples are kept apart from lists: numpy writes the shape as a tuple. */
class PyTuple {
  constructor(readonly items: PyValue[]) {}
}

class HeaderParser {
  private pos = 0;
  private depth = 0;
  constructor(
    private readonly src: string,
    private readonly name: string,
  ) {}

  fail(what: string): never {
    throw new DataError(`${this.name}: malformed .npy header: ${what} at character ${this.pos}`);
  }

  private skipSpace(): void {
    while (this.pos < this.src.length && /\s/.test(this.src[this.pos]!)) this.pos++;
  }

  parseTop(): Map<string, PyValue> {
    const v = this.value();
    this.skipSpace();
    if (this.pos !== this.src.length) this.fail('unexpected text after the dict');
    if (!(v instanceof Map)) this.fail('the header is not a dict');
    return v;
  }

  private value(): PyValue {
    this.skipSpace();
    const c = this.src[this.pos];
    if (c === undefined) this.fail('unexpected end');
    if (c === '{' || c === '(' || c === '[') {
      // shapes and dtypes are shallow; a deep nest is corruption, not data
      if (++this.depth > 16) this.fail('nesting too deep');
      const v = c === '{' ? this.dict() : this.sequence(c === '(' ? ')' : ']');
      this.depth--;
      return v;
    }
    if (c === "'" || c === '"') return this.string();
    if (/[0-9+-]/.test(c)) return this.integer();
    for (const [word, v] of [
      ['True', true],
      ['False', false],
      ['None', null],
    ] as const) {
      if (this.src.startsWith(word, this.pos)) {
        this.pos += word.length;
        return v;
      }
    }
    this.fail(`unexpected character ${JSON.stringify(c)}`);
  }

  private dict(): Map<string, PyValue> {
    const out = new Map<string, PyValue>();
    this.pos++; // '{'
    for (;;) {
      this.skipSpace();
      if (this.src[this.pos] === '}') {
        this.pos++;
        return out;
      }
      const key = this.value();
      if (typeof key !== 'string') this.fail('dict keys must be strings');
      this.skipSpace();
      if (this.src[this.pos] !== ':') this.fail("expected ':'");
      this.pos++;
      if (out.has(key)) this.fail(`duplicate key '${key}'`);
      out.set(key, this.value());
      this.skipSpace();
      const sep = this.src[this.pos];
      if (sep === ',') this.pos++;
      else if (sep !== '}') this.fail("expected ',' or '}'");
    }
  }

  private sequence(close: ')' | ']'): PyValue {
    const items: PyValue[] = [];
    let sawComma = false;
    this.pos++; // '(' or '['
    for (;;) {
      this.skipSpace();
      if (this.src[this.pos] === close) {
        this.pos++;
        // (3) is just 3 in Python; (3,) is a tuple
        if (close === ')' && items.length === 1 && !sawComma) return items[0]!;
        return close === ')' ? new PyTuple(items) : items;
      }
      items.push(this.value());
      this.skipSpace();
      const sep = this.src[this.pos];
      if (sep === ',') {
        this.pos++;
        sawComma = true;
      } else if (sep !== close) this.fail(`expected ',' or '${close}'`);
    }
  }

  private string(): string {
    const quote = this.src[this.pos]!;
    let out = '';
    this.pos++;
    for (;;) {
      const c = this.src[this.pos++];
      if (c === undefined || c === '\n') this.fail('unterminated string');
      if (c === quote) return out;
      if (c === '\\') {
        const e = this.src[this.pos++];
        if (e === undefined) this.fail('unterminated string');
        out += e === 'n' ? '\n' : e === 't' ? '\t' : e;
      } else out += c;
    }
  }

  private integer(): number {
    const m = /^[+-]?\d+/.exec(this.src.slice(this.pos, this.pos + 40));
    if (!m || /[0-9]/.test(this.src[this.pos + m[0].length] ?? '')) this.fail('bad integer');
    this.pos += m[0].length;
    const n = Number(m[0]);
    if (!Number.isSafeInteger(n)) this.fail(`integer ${m[0]} is too large`);
    return n;
  }
}

function formatShape(shape: readonly number[]): string {
  return `[${shape.join(',')}]`;
}

interface NpyHeader {
  info: DtypeInfo;
  shape: number[];
  /** where the data starts */
  dataStart: number;
  /** the data's size in bytes, checked against the file */
  dataBytes: number;
}

/**
 * The preamble's length (10 or 12 bytes) and the header's end, from the first 12 bytes (or the
 * whole file if shorter); refuses what is not a .npy file of a known version.
 */
function npyPreamble(bytes: Uint8Array, name: string): { headerStart: number; dataStart: number; major: number } {
  if (bytes.length < 10 || MAGIC.some((b, i) => bytes[i] !== b)) {
    throw new DataError(`${name}: not a .npy file (missing the \\x93NUMPY magic)`);
  }
  const major = bytes[6]!;
  const minor = bytes[7]!;
  if (major < 1 || major > 3 || minor !== 0) {
    throw new DataError(`${name}: unsupported .npy format version ${major}.${minor} (supported: 1.0, 2.0, 3.0)`);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let headerStart: number;
  let headerLen: number;
  if (major === 1) {
    headerLen = view.getUint16(8, true);
    headerStart = 10;
  } else {
    if (bytes.length < 12) throw new DataError(`${name}: truncated .npy preamble`);
    headerLen = view.getUint32(8, true);
    headerStart = 12;
  }
  if (headerLen > MAX_HEADER_BYTES) {
    throw new DataError(`${name}: .npy header length ${headerLen} is implausibly large`);
  }
  return { headerStart, dataStart: headerStart + headerLen, major };
}

/**
 * Parse the header. `head` holds the file from its start to at least the end of the header
 * (or all of it, if the file is shorter); `fileSize` is the whole file's size. Nothing is
 * allocated for the data here: its declared size is checked against the file first.
 */
function parseNpyHeader(head: Uint8Array, name: string, fileSize: number): NpyHeader {
  const { headerStart, dataStart, major } = npyPreamble(head, name);
  if (dataStart > fileSize || dataStart > head.length) {
    throw new DataError(`${name}: truncated .npy file: the header needs ${dataStart} bytes, the file has ${fileSize}`);
  }
  let text: string;
  try {
    // 1.0 and 2.0 headers are latin-1; 3.0 allows utf-8
    text = new TextDecoder(major === 3 ? 'utf-8' : 'latin1', { fatal: true }).decode(head.subarray(headerStart, dataStart));
  } catch {
    throw new DataError(`${name}: .npy header is not valid ${major === 3 ? 'UTF-8' : 'text'}`);
  }
  if (!text.endsWith('\n')) throw new DataError(`${name}: malformed .npy header: it does not end with a newline`);

  const dict = new HeaderParser(text, name).parseTop();
  for (const k of dict.keys()) {
    if (k !== 'descr' && k !== 'fortran_order' && k !== 'shape') {
      throw new DataError(`${name}: malformed .npy header: unexpected key '${k}'`);
    }
  }
  const descr = dict.get('descr');
  const fortran = dict.get('fortran_order');
  const shapeVal = dict.get('shape');
  if (descr === undefined || fortran === undefined || shapeVal === undefined) {
    throw new DataError(`${name}: malformed .npy header: it needs 'descr', 'fortran_order' and 'shape'`);
  }
  if (typeof descr !== 'string') {
    throw new DataError(`${name}: structured (record) dtypes are not supported; save a plain numeric array`);
  }
  const info = dtypeFromDescr(descr);
  if (typeof info === 'string') throw new DataError(`${name}: ${info}`);
  if (typeof fortran !== 'boolean') throw new DataError(`${name}: malformed .npy header: 'fortran_order' is not True/False`);
  if (fortran) {
    throw new DataError(`${name}: Fortran-order arrays are not supported; save np.ascontiguousarray(arr) instead`);
  }
  if (!(shapeVal instanceof PyTuple)) throw new DataError(`${name}: malformed .npy header: 'shape' is not a tuple`);
  const shape: number[] = [];
  for (const d of shapeVal.items) {
    if (typeof d !== 'number' || d < 0) {
      throw new DataError(`${name}: malformed .npy header: shape entries must be non-negative integers`);
    }
    shape.push(d);
  }
  if (shape.length > 64) throw new DataError(`${name}: .npy array has ${shape.length} dimensions (numpy allows at most 64)`);

  // Check the declared size against the bytes actually present before allocating anything
  // (BigInt: a corrupt shape can overflow a double).
  const have = fileSize - dataStart;
  const need = shape.reduce((a, d) => a * BigInt(d), 1n) * BigInt(info.size);
  if (need !== BigInt(have)) {
    throw new DataError(
      `${name}: .npy data size does not match the header: shape ${formatShape(shape)} of ${info.dtype} needs ${need} bytes, the file has ${have}`,
    );
  }
  return { info, shape, dataStart, dataBytes: have };
}

/** A typed array of the header's dtype over `buf` (which holds exactly the data). */
function typedData(info: DtypeInfo, buf: ArrayBuffer): NpyData {
  switch (info.dtype) {
    case 'float32':
      return new Float32Array(buf);
    case 'int32':
      return new Int32Array(buf);
    case 'uint8':
      return new Uint8Array(buf);
    case 'float64':
      return new Float64Array(buf);
    case 'int64':
      return new BigInt64Array(buf);
  }
}

/** Parse the bytes of a .npy file. `name` is used in error messages (usually the path). */
export function parseNpy(bytes: Uint8Array, name = 'input'): NpyArray {
  const { info, shape, dataStart, dataBytes } = parseNpyHeader(bytes, name, bytes.length);
  // Copy: the data may sit at an offset that is not aligned for the element type.
  // (new Uint8Array copies; Buffer#slice would not)
  const buf = new Uint8Array(bytes.subarray(dataStart, dataStart + dataBytes)).buffer;
  return { dtype: info.dtype, shape, data: typedData(info, buf) };
}

/**
 * Read a .npy file: the header first, then the data straight into an array of its size (one
 * copy of the data in memory, and a header that declares more than the file holds costs nothing).
 */
export async function readNpy(path: string): Promise<NpyArray> {
  return withFile(path, async (f) => {
    const pre = npyPreamble(await f.read(0, Math.min(f.size, 12)), path);
    const { info, shape, dataStart, dataBytes } = parseNpyHeader(await f.read(0, Math.min(f.size, pre.dataStart)), path, f.size);
    const buf = new ArrayBuffer(dataBytes);
    await f.read(dataStart, dataBytes, new Uint8Array(buf));
    return { dtype: info.dtype, shape, data: typedData(info, buf) };
  });
}

/** Read a 2-D float32 (or float64, converted) array, e.g. embeddings or a kernel. */
export async function readNpyFloat32Matrix(path: string): Promise<{ rows: number; cols: number; data: Float32Array }> {
  const arr = await readNpy(path);
  if (arr.shape.length !== 2 || (arr.dtype !== 'float32' && arr.dtype !== 'float64')) {
    throw new DataError(
      `${path}: expected a 2-D float32 or float64 array, found ${arr.dtype} with shape ${formatShape(arr.shape)}`,
    );
  }
  const data = arr.data instanceof Float32Array ? arr.data : Float32Array.from(arr.data as Float64Array);
  return { rows: arr.shape[0]!, cols: arr.shape[1]!, data };
}

function typedArrayMatches(dtype: NpyDtype, data: unknown): boolean {
  switch (dtype) {
    case 'float32':
      return data instanceof Float32Array;
    case 'int32':
      return data instanceof Int32Array;
    case 'uint8':
      return data instanceof Uint8Array;
    case 'float64':
      return data instanceof Float64Array;
    case 'int64':
      return data instanceof BigInt64Array;
  }
}

/** Encode as .npy version 1.0 (2.0 if the header would not fit), data starting at a multiple of 64. */
export function encodeNpy(arr: NpyArray): Uint8Array {
  const info = DTYPES.find((t) => t.dtype === arr.dtype);
  if (!info) throw new UsageError(`encodeNpy: unsupported dtype ${String(arr.dtype)}`);
  if (!typedArrayMatches(arr.dtype, arr.data)) {
    throw new UsageError(`encodeNpy: dtype ${arr.dtype} does not match the data (${arr.data.constructor.name})`);
  }
  let count = 1;
  for (const d of arr.shape) {
    if (!Number.isSafeInteger(d) || d < 0) throw new UsageError(`encodeNpy: bad shape ${formatShape(arr.shape)}`);
    count *= d;
  }
  if (count !== arr.data.length) {
    throw new UsageError(
      `encodeNpy: shape ${formatShape(arr.shape)} holds ${count} values, the data has ${arr.data.length}`,
    );
  }
  const shapeText = arr.shape.length === 1 ? `(${arr.shape[0]},)` : `(${arr.shape.join(', ')})`;
  const dict = `{'descr': '${info.descr}', 'fortran_order': False, 'shape': ${shapeText}, }`;
  let major = 1;
  let preamble = 10;
  // +1 for the newline; pad with spaces so that the data starts at a multiple of 64
  let headerLen = Math.ceil((preamble + dict.length + 1) / 64) * 64 - preamble;
  if (headerLen > 0xffff) {
    major = 2;
    preamble = 12;
    headerLen = Math.ceil((preamble + dict.length + 1) / 64) * 64 - preamble;
  }
  const dataBytes = new Uint8Array(arr.data.buffer, arr.data.byteOffset, arr.data.byteLength);
  const out = new Uint8Array(preamble + headerLen + dataBytes.length);
  out.set(MAGIC, 0);
  out[6] = major;
  out[7] = 0;
  const view = new DataView(out.buffer);
  if (major === 1) view.setUint16(8, headerLen, true);
  else view.setUint32(8, headerLen, true);
  const header = dict.padEnd(headerLen - 1, ' ') + '\n';
  for (let i = 0; i < header.length; i++) out[preamble + i] = header.charCodeAt(i); // ASCII only
  out.set(dataBytes, preamble + headerLen);
  return out;
}

/** Write a .npy file atomically. */
export async function writeNpy(path: string, arr: NpyArray): Promise<void> {
  await writeFileAtomic(path, encodeNpy(arr));
}
