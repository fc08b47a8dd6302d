/**
 * A small PNG encoder for tests, written independently of src/data/png.ts: any colour type and
 * bit depth, a chosen filter per row (all five), optional Adam7 interlacing, PLTE and tRNS.
 * Samples are given as plain numbers in the file's bit depth, `channels` per pixel, row-major.
 */
import { crc32, deflateSync } from 'node:zlib';

export interface EncodeOptions {
  color: 0 | 2 | 3 | 4 | 6;
  depth: 1 | 2 | 4 | 8 | 16;
  /** filter type of each row (cycled); default all 0 */
  filters?: number[];
  interlace?: boolean;
  palette?: number[][];
  trns?: number[];
  /** extra chunks inserted before IDAT */
  extra?: { type: string; data: Uint8Array }[];
  /** split the compressed data over this many IDAT chunks */
  idatChunks?: number;
}

const CHANNELS = { 0: 1, 2: 3, 3: 1, 4: 2, 6: 4 } as const;

export function pngChunk(type: string, data: Uint8Array): Uint8Array {
  const out = new Uint8Array(12 + data.length);
  const v = new DataView(out.buffer);
  v.setUint32(0, data.length);
  out.set(Buffer.from(type, 'latin1'), 4);
  out.set(data, 8);
  v.setUint32(8 + data.length, crc32(out.subarray(4, 8 + data.length)));
  return out;
}

function packRow(samples: number[], depth: number): Uint8Array {
  if (depth === 8) return Uint8Array.from(samples);
  if (depth === 16) {
    const out = new Uint8Array(samples.length * 2);
    samples.forEach((s, i) => {
      out[2 * i] = s >> 8;
      out[2 * i + 1] = s & 0xff;
    });
    return out;
  }
  const out = new Uint8Array(Math.ceil((samples.length * depth) / 8));
  samples.forEach((s, i) => {
    const bit = i * depth;
    out[bit >> 3]! |= s << (8 - depth - (bit % 8));
  });
  return out;
}

function paeth(a: number, b: number, c: number): number {
  const p = a + b - c;
  const pa = Math.abs(p - a);
  const pb = Math.abs(p - b);
  const pc = Math.abs(p - c);
  if (pa <= pb && pa <= pc) return a;
  return pb <= pc ? b : c;
}

function filterRow(type: number, row: Uint8Array, prev: Uint8Array, bpp: number): Uint8Array {
  const out = new Uint8Array(row.length + 1);
  out[0] = type;
  for (let i = 0; i < row.length; i++) {
    const a = i >= bpp ? row[i - bpp]! : 0;
    const b = prev[i]!;
    const c = i >= bpp ? prev[i - bpp]! : 0;
    const pred = type === 0 ? 0 : type === 1 ? a : type === 2 ? b : type === 3 ? Math.floor((a + b) / 2) : paeth(a, b, c);
    out[i + 1] = (row[i]! - pred) & 0xff;
  }
  return out;
}

export function encodeTestPng(samples: ArrayLike<number>, width: number, height: number, o: EncodeOptions): Uint8Array {
  const ch = CHANNELS[o.color];
  const bpp = Math.max(1, (ch * o.depth) >> 3);
  const filters = o.filters ?? [0];
  const passes = o.interlace
    ? [
        [0, 0, 8, 8],
        [4, 0, 8, 8],
        [0, 4, 4, 8],
        [2, 0, 4, 4],
        [0, 2, 2, 4],
        [1, 0, 2, 2],
        [0, 1, 1, 2],
      ]
    : [[0, 0, 1, 1]];
  const parts: Uint8Array[] = [];
  let rowIndex = 0;
  for (const [x0, y0, dx, dy] of passes as [number, number, number, number][]) {
    const pw = width > x0 ? Math.ceil((width - x0) / dx) : 0;
    const ph = height > y0 ? Math.ceil((height - y0) / dy) : 0;
    if (pw === 0 || ph === 0) continue;
    let prev: Uint8Array = new Uint8Array(Math.ceil((pw * ch * o.depth) / 8));
    for (let y = 0; y < ph; y++) {
      const s: number[] = [];
      for (let x = 0; x < pw; x++) for (let c = 0; c < ch; c++) s.push(samples[((y0 + y * dy) * width + x0 + x * dx) * ch + c]!);
      const row = packRow(s, o.depth);
      parts.push(filterRow(filters[rowIndex++ % filters.length]!, row, prev, bpp));
      prev = row;
    }
  }
  const raw = Buffer.concat(parts);
  const z = new Uint8Array(deflateSync(raw));
  const ihdr = new Uint8Array(13);
  const v = new DataView(ihdr.buffer);
  v.setUint32(0, width);
  v.setUint32(4, height);
  ihdr.set([o.depth, o.color, 0, 0, o.interlace ? 1 : 0], 8);
  const chunks = [Uint8Array.of(0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a), pngChunk('IHDR', ihdr)];
  for (const e of o.extra ?? []) chunks.push(pngChunk(e.type, e.data));
  if (o.palette) chunks.push(pngChunk('PLTE', Uint8Array.from(o.palette.flat())));
  if (o.trns) chunks.push(pngChunk('tRNS', Uint8Array.from(o.trns)));
  const k = o.idatChunks ?? 1;
  const step = Math.ceil(z.length / k);
  for (let i = 0; i < z.length; i += step) chunks.push(pngChunk('IDAT', z.subarray(i, i + step)));
  chunks.push(pngChunk('IEND', new Uint8Array(0)));
  return new Uint8Array(Buffer.concat(chunks));
}
