/**
 * The safetensors format (https://github.com/huggingface/safetensors): the project's checkpoint
 * and weight-exchange format. Layout: an unsigned 64-bit little-endian header length N, N bytes
 * of JSON `{ "<name>": { "dtype": "F32", "shape": [..], "data_offsets": [begin, end] }, ...,
 * "__metadata__": { string: string } }`, then the tensors' bytes, tightly packed, offsets
 * relative to the end of the header.
 *
 * We write F32 only. On reading, F32, F64, I32 and U8 are accepted and converted to Float32Array
 * (F64 loses precision, integers beyond 2^24 are rounded); any other dtype (F16, BF16, I64,
 * BOOL, ...) is refused with a DataError naming the tensor.
 */
import type { NamedTensor } from '../model/weights.ts';
import { DataError, UsageError } from '../errors.ts';
import { writeFileAtomic } from './atomic.ts';
import { withFile } from './bytes.ts';

export type { NamedTensor };

// The reference implementation allows headers up to 100 MB; this project's files hold tens of
// tensors (a few kB of header) and large public models' headers stay well under 1 MB, so a
// longer one is refused before it is read: a 100 MB header would take gigabytes to decode.
export const MAX_HEADER_BYTES = 1 << 20;
const METADATA_KEY = '__metadata__';

const DTYPE_SIZES: Readonly<Record<string, number>> = { F32: 4, F64: 8, I32: 4, U8: 1 };

function shapeText(shape: readonly number[]): string {
  return `[${shape.join(',')}]`;
}

interface Entry {
  name: string;
  dtype: string;
  shape: number[];
  begin: number;
  end: number;
}

function parseEntry(name: string, raw: unknown, file: string, dataLen: number): Entry {
  const bad = (what: string): never => {
    throw new DataError(`${file}: safetensors tensor '${name}': ${what}`);
  };
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) bad('entry is not an object');
  const o = raw as Record<string, unknown>;
  for (const k of Object.keys(o)) {
    if (k !== 'dtype' && k !== 'shape' && k !== 'data_offsets') bad(`unexpected field '${k}'`);
  }
  const { dtype, shape, data_offsets: offsets } = o;
  if (typeof dtype !== 'string') bad('missing dtype');
  const size = DTYPE_SIZES[dtype as string];
  if (size === undefined) {
    bad(`dtype ${String(dtype)} is not supported (supported: ${Object.keys(DTYPE_SIZES).join(', ')})`);
  }
  if (!Array.isArray(shape) || shape.length > 64) bad('shape is not a list of dimensions');
  const dims = shape as unknown[];
  if (!dims.every((d) => Number.isSafeInteger(d) && (d as number) >= 0)) {
    bad('shape entries must be non-negative integers');
  }
  if (
    !Array.isArray(offsets) ||
    offsets.length !== 2 ||
    !offsets.every((x) => Number.isSafeInteger(x) && (x as number) >= 0)
  ) {
    bad('data_offsets must be two non-negative integers');
  }
  const [begin, end] = offsets as [number, number];
  if (begin > end || end > dataLen) {
    bad(`data_offsets [${begin},${end}] lie outside the ${dataLen} data bytes`);
  }
  // BigInt: a corrupt shape can overflow a double
  const need = (dims as number[]).reduce((acc, d) => acc * BigInt(d), 1n) * BigInt(size!);
  if (need !== BigInt(end - begin)) {
    bad(`shape ${shapeText(dims as number[])} of ${dtype as string} needs ${need} bytes, data_offsets give ${end - begin}`);
  }
  return { name, dtype: dtype as string, shape: dims as number[], begin, end };
}

/** Float32 values of a tensor whose bytes (exactly its own) are `raw`. */
function toFloat32(dtype: string, raw: Uint8Array): Float32Array {
  // Copy first when needed: the tensor may start at an offset that is not aligned for its type.
  // (new Uint8Array copies; Buffer#slice, when bytes is a Buffer, would not)
  const buf = raw.byteOffset === 0 && raw.byteLength === raw.buffer.byteLength ? raw.buffer : new Uint8Array(raw).buffer;
  switch (dtype) {
    case 'F32':
      return new Float32Array(buf);
    case 'F64':
      return Float32Array.from(new Float64Array(buf));
    case 'I32':
      return Float32Array.from(new Int32Array(buf));
    default: // U8
      return Float32Array.from(new Uint8Array(buf));
  }
}

/**
 * The header's length N (the data starts at 8 + N) from the first 8 bytes, checked against the
 * limit and the file's size.
 */
function headerLength(first8: Uint8Array, name: string, fileSize: number): number {
  if (fileSize < 8 || first8.length < 8) throw new DataError(`${name}: too short to be a safetensors file (${fileSize} bytes)`);
  const n64 = new DataView(first8.buffer, first8.byteOffset, 8).getBigUint64(0, true);
  if (n64 > BigInt(MAX_HEADER_BYTES)) {
    throw new DataError(
      `${name}: safetensors header length ${n64} is over this reader's limit of ${MAX_HEADER_BYTES} bytes (a corrupt file, or not a safetensors file)`,
    );
  }
  const n = Number(n64);
  if (8 + n > fileSize) {
    throw new DataError(`${name}: truncated safetensors file: the header needs ${8 + n} bytes, the file has ${fileSize}`);
  }
  return n;
}

/**
 * Decode and check the JSON header (`json` holds exactly its N bytes) against `dataLen` bytes
 * of data: entries sorted by offset, tightly packed, covering the data exactly.
 */
function parseHeader(json: Uint8Array, name: string, dataLen: number): { entries: Entry[]; metadata: Record<string, string> } {
  if (json.length < 2 || json[0] !== 0x7b /* { */) throw new DataError(`${name}: safetensors header is not a JSON object`);
  let header: unknown;
  try {
    header = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(json));
  } catch (e) {
    throw new DataError(`${name}: safetensors header is not valid JSON (${(e as Error).message})`);
  }
  if (typeof header !== 'object' || header === null || Array.isArray(header)) {
    throw new DataError(`${name}: safetensors header is not a JSON object`);
  }
  const metadata: Record<string, string> = {};
  const entries: Entry[] = [];
  for (const [key, raw] of Object.entries(header as Record<string, unknown>)) {
    if (key === METADATA_KEY) {
      if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
        throw new DataError(`${name}: safetensors __metadata__ is not an object`);
      }
      for (const [mk, mv] of Object.entries(raw as Record<string, unknown>)) {
        if (typeof mv !== 'string') throw new DataError(`${name}: safetensors __metadata__ value '${mk}' is not a string`);
        // defineProperty: a key such as "__proto__" must stay plain data
        Object.defineProperty(metadata, mk, { value: mv, enumerable: true, writable: true, configurable: true });
      }
      continue;
    }
    entries.push(parseEntry(key, raw, name, dataLen));
  }

  // Tight packing: sorted by offset, each tensor starts where the previous ended, and the last
  // ends at the end of the file. This rules out gaps, overlaps and trailing bytes.
  const sorted = entries
    .map((e, i) => ({ e, i }))
    .sort((a, b) => a.e.begin - b.e.begin || a.e.end - b.e.end || a.i - b.i)
    .map((x) => x.e);
  let at = 0;
  for (const e of sorted) {
    if (e.begin !== at) {
      throw new DataError(
        e.begin < at
          ? `${name}: safetensors tensor '${e.name}' overlaps another tensor (offset ${e.begin} < ${at})`
          : `${name}: safetensors data has a gap before tensor '${e.name}' (bytes ${at}..${e.begin})`,
      );
    }
    at = e.end;
  }
  if (at !== dataLen) {
    throw new DataError(`${name}: safetensors data is ${dataLen} bytes but the tensors cover ${at}`);
  }
  return { entries: sorted, metadata };
}

/**
 * Parse safetensors bytes. Tensors come back in header order sorted by data offset (the order
 * encodeSafetensors wrote them in).
 */
export function parseSafetensors(
  bytes: Uint8Array,
  name = 'input',
): { tensors: NamedTensor[]; metadata: Record<string, string> } {
  const n = headerLength(bytes, name, bytes.length);
  const dataStart = 8 + n;
  const data = bytes.subarray(dataStart);
  const { entries, metadata } = parseHeader(bytes.subarray(8, dataStart), name, data.length);
  const tensors = entries.map((e) => ({ name: e.name, shape: e.shape, data: toFloat32(e.dtype, new Uint8Array(data.subarray(e.begin, e.end))) }));
  return { tensors, metadata };
}

/** Encode tensors (as F32, in the order given) and optional string metadata. */
export function encodeSafetensors(tensors: readonly NamedTensor[], metadata?: Record<string, string>): Uint8Array {
  // null prototype: a tensor named "__proto__" must become a key, not a prototype
  const header = Object.create(null) as Record<string, unknown>;
  if (metadata !== undefined) {
    for (const [k, v] of Object.entries(metadata)) {
      if (typeof v !== 'string') throw new UsageError(`encodeSafetensors: metadata '${k}' is not a string`);
    }
    header[METADATA_KEY] = metadata;
  }
  let offset = 0;
  for (const t of tensors) {
    if (t.name === METADATA_KEY || t.name === '') throw new UsageError(`encodeSafetensors: bad tensor name '${t.name}'`);
    if (Object.prototype.hasOwnProperty.call(header, t.name)) {
      throw new UsageError(`encodeSafetensors: duplicate tensor name '${t.name}'`);
    }
    if (!(t.data instanceof Float32Array)) throw new UsageError(`encodeSafetensors: tensor '${t.name}' is not a Float32Array`);
    let count = 1;
    for (const d of t.shape) {
      if (!Number.isSafeInteger(d) || d < 0) throw new UsageError(`encodeSafetensors: tensor '${t.name}' has a bad shape`);
      count *= d;
    }
    if (count !== t.data.length) {
      throw new UsageError(
        `encodeSafetensors: tensor '${t.name}' has shape ${shapeText(t.shape)} (${count} values) but ${t.data.length} values`,
      );
    }
    header[t.name] = { dtype: 'F32', shape: [...t.shape], data_offsets: [offset, offset + t.data.byteLength] };
    offset += t.data.byteLength;
  }
  let json = new TextEncoder().encode(JSON.stringify(header));
  // pad the header with spaces to a multiple of 8, as the reference writer does, so the data is aligned
  const padded = Math.ceil(json.length / 8) * 8;
  if (padded !== json.length) {
    const p = new Uint8Array(padded).fill(0x20);
    p.set(json);
    json = p;
  }
  const out = new Uint8Array(8 + json.length + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
  out.set(json, 8);
  let at = 8 + json.length;
  for (const t of tensors) {
    out.set(new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength), at);
    at += t.data.byteLength;
  }
  return out;
}

/**
 * Read a safetensors file: the 8-byte length, then the header alone (at most MAX_HEADER_BYTES),
 * checked in full against the file's size, then each tensor straight into its own array. A
 * corrupt or hostile file is refused before anything of its declared size is allocated, and
 * files over 2 GiB are read in pieces. `only` picks the tensors to read (e.g. a network's
 * weights out of a checkpoint that also holds the optimizer's state).
 */
export async function readSafetensors(
  path: string,
  options: { only?: (name: string) => boolean } = {},
): Promise<{ tensors: NamedTensor[]; metadata: Record<string, string> }> {
  return withFile(path, async (f) => {
    const n = headerLength(await f.read(0, Math.min(8, f.size)), path, f.size);
    const dataStart = 8 + n;
    const { entries, metadata } = parseHeader(await f.read(8, n), path, f.size - dataStart);
    const tensors: NamedTensor[] = [];
    for (const e of entries) {
      // `only`: the whole file is still checked, but only the tensors wanted are read
      if (options.only && !options.only(e.name)) continue;
      tensors.push({ name: e.name, shape: e.shape, data: toFloat32(e.dtype, await f.read(dataStart + e.begin, e.end - e.begin)) });
    }
    return { tensors, metadata };
  });
}

/**
 * The layout of a safetensors file from its first bytes alone (`head`: at least the 8-byte length
 * and the header; `fileSize`: the whole file's bytes): the header's bytes (length included) and
 * each tensor's name, shape and data bytes, checked as a reader would. Sizing a file without
 * reading its tensors (e.g. a network's parameters out of a queue job's base64 weights).
 */
export function safetensorsLayout(
  head: Uint8Array,
  fileSize: number,
  name = 'input',
): { headerBytes: number; tensors: { name: string; shape: number[]; bytes: number }[]; metadata: Record<string, string> } {
  const n = headerLength(head, name, fileSize);
  if (head.length < 8 + n) throw new DataError(`${name}: only ${head.length} of the header's ${8 + n} bytes were given`);
  const { entries, metadata } = parseHeader(head.subarray(8, 8 + n), name, fileSize - 8 - n);
  return { headerBytes: 8 + n, tensors: entries.map((e) => ({ name: e.name, shape: e.shape, bytes: e.end - e.begin })), metadata };
}

/** Write a safetensors file atomically. */
export async function writeSafetensors(
  path: string,
  tensors: readonly NamedTensor[],
  metadata?: Record<string, string>,
): Promise<void> {
  await writeFileAtomic(path, encodeSafetensors(tensors, metadata));
}
