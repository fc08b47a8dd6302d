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
import { readFileBytes, writeFileAtomic } from './atomic.ts';

export type { NamedTensor };

// The reference implementation refuses headers over 100 MB; so do we, before decoding.
const MAX_HEADER_BYTES = 100_000_000;
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

function toFloat32(e: Entry, bytes: Uint8Array): Float32Array {
  // Copy first: the tensor may start at an offset that is not aligned for its type.
  // (new Uint8Array copies; Buffer#slice, when bytes is a Buffer, would not)
  const buf = new Uint8Array(bytes.subarray(e.begin, e.end)).buffer;
  switch (e.dtype) {
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
 * Parse safetensors bytes. Tensors come back in header order sorted by data offset (the order
 * encodeSafetensors wrote them in).
 */
export function parseSafetensors(
  bytes: Uint8Array,
  name = 'input',
): { tensors: NamedTensor[]; metadata: Record<string, string> } {
  if (bytes.length < 8) throw new DataError(`${name}: too short to be a safetensors file (${bytes.length} bytes)`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const n64 = view.getBigUint64(0, true);
  if (n64 > BigInt(MAX_HEADER_BYTES)) {
    throw new DataError(`${name}: safetensors header length ${n64} is implausibly large (limit ${MAX_HEADER_BYTES})`);
  }
  const n = Number(n64);
  if (8 + n > bytes.length) {
    throw new DataError(`${name}: truncated safetensors file: the header needs ${8 + n} bytes, the file has ${bytes.length}`);
  }
  if (n < 2 || bytes[8] !== 0x7b /* { */) throw new DataError(`${name}: safetensors header is not a JSON object`);
  let header: unknown;
  try {
    header = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(8, 8 + n)));
  } catch (e) {
    throw new DataError(`${name}: safetensors header is not valid JSON (${(e as Error).message})`);
  }
  if (typeof header !== 'object' || header === null || Array.isArray(header)) {
    throw new DataError(`${name}: safetensors header is not a JSON object`);
  }
  const dataStart = 8 + n;
  const dataLen = bytes.length - dataStart;
  const data = bytes.subarray(dataStart);

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

  const tensors = sorted.map((e) => ({ name: e.name, shape: e.shape, data: toFloat32(e, data) }));
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

export async function readSafetensors(path: string): Promise<{ tensors: NamedTensor[]; metadata: Record<string, string> }> {
  return parseSafetensors(await readFileBytes(path), path);
}

/** Write a safetensors file atomically. */
export async function writeSafetensors(
  path: string,
  tensors: readonly NamedTensor[],
  metadata?: Record<string, string>,
): Promise<void> {
  await writeFileAtomic(path, encodeSafetensors(tensors, metadata));
}
