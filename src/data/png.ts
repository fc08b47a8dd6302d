import { inflateSync } from 'node:zlib';
import { DataError } from '../errors.ts';
import { concatBytes, withFile } from '../io/bytes.ts';

/**
 * A PNG decoder for data sets of images: every colour type (grayscale, RGB, palette, gray+alpha,
 * RGBA), every bit depth (1, 2, 4, 8, 16), Adam7 interlacing, all five row filters, and tRNS
 * transparency. Every chunk's length and CRC is checked; anything malformed is a DataError that
 * names the file. Decoded images are 8-bit RGBA (16-bit samples are rounded to 8 bits).
 */
export interface PngImage {
  width: number;
  height: number;
  /** row-major, 4 bytes per pixel */
  rgba: Uint8Array;
  /** what the file declared */
  colorType: number;
  bitDepth: number;
  interlaced: boolean;
}

const SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];
/**
 * Refuse images above this many pixels before allocating anything (a corrupt header can claim
 * 4G x 4G). Data set images are small (MNIST's are 28x28) and each is kept in memory; at this
 * size one decoded image takes at most 16 MB as RGBA and 32 MB while inflating.
 */
export const MAX_PNG_PIXELS = 2 ** 22;
/**
 * Refuse larger files before reading them: the compressed data of an image of MAX_PNG_PIXELS at
 * 16-bit RGBA, stored without compression, is about 32 MB; the rest allows ancillary chunks.
 */
export const MAX_PNG_FILE_BYTES = 64 * 2 ** 20;

const CHANNELS: Record<number, number> = { 0: 1, 2: 3, 3: 1, 4: 2, 6: 4 };
const DEPTHS: Record<number, number[]> = { 0: [1, 2, 4, 8, 16], 2: [8, 16], 3: [1, 2, 4, 8], 4: [8, 16], 6: [8, 16] };
const COLOR_NAMES: Record<number, string> = { 0: 'grayscale', 2: 'RGB', 3: 'palette', 4: 'gray+alpha', 6: 'RGBA' };

let crcTable: Uint32Array | undefined;

function crc32(bytes: Uint8Array, start: number, end: number): number {
  if (!crcTable) {
    crcTable = new Uint32Array(256);
    for (let n = 0; n < 256; n++) {
      let c = n;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      crcTable[n] = c >>> 0;
    }
  }
  let c = 0xffffffff;
  for (let i = start; i < end; i++) c = crcTable[(c ^ bytes[i]!) & 0xff]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

interface Ihdr {
  width: number;
  height: number;
  depth: number;
  color: number;
  interlaced: boolean;
}

/** The IHDR chunk's 13 bytes, checked; the pixel count is bounded here, before anything is inflated. */
function parseIhdr(data: Uint8Array, fail: (why: string) => never): Ihdr {
  if (data.length !== 13) fail(`IHDR has ${data.length} bytes, not 13`);
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const width = view.getUint32(0, false);
  const height = view.getUint32(4, false);
  const depth = data[8]!;
  const color = data[9]!;
  if (width === 0 || height === 0 || width > 2 ** 31 - 1 || height > 2 ** 31 - 1) fail(`invalid size ${width}x${height}`);
  if (!(color in CHANNELS)) fail(`invalid colour type ${color}`);
  if (!DEPTHS[color]!.includes(depth)) fail(`bit depth ${depth} is invalid for ${COLOR_NAMES[color]} images`);
  if (data[10] !== 0) fail(`unknown compression method ${data[10]}`);
  if (data[11] !== 0) fail(`unknown filter method ${data[11]}`);
  if (data[12]! > 1) fail(`unknown interlace method ${data[12]}`);
  if (width * height > MAX_PNG_PIXELS) {
    fail(`${width}x${height} pixels is too large for a data set image (at most ${MAX_PNG_PIXELS} pixels, e.g. 2048x2048)`);
  }
  return { width, height, depth, color, interlaced: data[12] === 1 };
}

/**
 * Read and decode a PNG file, deciding from its first 33 bytes (signature and IHDR) and its size
 * before reading the rest: a header that declares too many pixels, or a file larger than any
 * PNG of the allowed size needs, costs nothing.
 */
export async function readPng(path: string): Promise<PngImage> {
  return withFile(path, async (f) => {
    const head = await f.read(0, Math.min(f.size, 33));
    const fail = (why: string): never => {
      throw new DataError(`${path}: ${why}`);
    };
    if (head.length < 8 || SIGNATURE.some((b, i) => head[i] !== b)) fail('not a PNG file (wrong signature)');
    // IHDR must come first: length 13, type "IHDR"; decodePng checks its CRC and the rest
    if (head.length === 33 && String.fromCharCode(...head.subarray(12, 16)) === 'IHDR') parseIhdr(head.subarray(16, 29), fail);
    if (f.size > MAX_PNG_FILE_BYTES) {
      fail(`the file is ${f.size} bytes; a PNG data set image is at most ${MAX_PNG_FILE_BYTES} bytes`);
    }
    return decodePng(await f.read(0, f.size), path);
  });
}

/** Decode PNG bytes; `name` (a file path) prefixes every error message. */
export function decodePng(bytes: Uint8Array, name = 'input'): PngImage {
  const fail = (why: string): never => {
    throw new DataError(`${name}: ${why}`);
  };
  if (bytes.length < 8 || SIGNATURE.some((b, i) => bytes[i] !== b)) fail('not a PNG file (wrong signature)');
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);

  let ihdr: Ihdr | undefined;
  let palette: Uint8Array | undefined;
  let trns: Uint8Array | undefined;
  const idat: Uint8Array[] = [];
  let idatDone = false;
  let ended = false;
  let pos = 8;
  while (pos < bytes.length) {
    if (pos + 12 > bytes.length) fail(`truncated chunk header at byte ${pos}`);
    const len = view.getUint32(pos, false);
    const type = String.fromCharCode(bytes[pos + 4]!, bytes[pos + 5]!, bytes[pos + 6]!, bytes[pos + 7]!);
    if (!/^[A-Za-z]{4}$/.test(type)) fail(`corrupt chunk type at byte ${pos}`);
    if (len > 2 ** 31 - 1) fail(`chunk ${type} declares ${len} bytes, more than PNG allows`);
    const dataStart = pos + 8;
    const dataEnd = dataStart + len;
    if (dataEnd + 4 > bytes.length) fail(`truncated: chunk ${type} declares ${len} bytes, the file ends ${bytes.length - dataStart} bytes after its header`);
    const crc = view.getUint32(dataEnd, false);
    if (crc32(bytes, pos + 4, dataEnd) !== crc) fail(`chunk ${type} fails its CRC check (the file is corrupt)`);
    const data = bytes.subarray(dataStart, dataEnd);
    if (!ihdr && type !== 'IHDR') fail(`the first chunk is ${type}, not IHDR`);
    if (type !== 'IDAT' && idat.length > 0) idatDone = true;
    switch (type) {
      case 'IHDR': {
        if (ihdr) fail('more than one IHDR chunk');
        ihdr = parseIhdr(data, fail);
        break;
      }
      case 'PLTE':
        if (idat.length > 0) fail('PLTE chunk after the image data');
        if (len === 0 || len % 3 !== 0 || len > 768) fail(`PLTE has ${len} bytes (must be 3 to 768, a multiple of 3)`);
        palette = data;
        break;
      case 'tRNS':
        trns = data;
        break;
      case 'IDAT':
        if (idatDone) fail('IDAT chunks are not consecutive');
        idat.push(data);
        break;
      case 'IEND':
        ended = true;
        break;
      default:
        // ancillary chunks (lower-case first letter) may be skipped; critical ones may not
        if (type.charCodeAt(0) < 97) fail(`unknown critical chunk ${type}`);
    }
    pos = dataEnd + 4;
    if (ended) break;
  }
  if (!ihdr) fail('no IHDR chunk');
  const h = ihdr!;
  if (!ended) fail('truncated: no IEND chunk');
  if (idat.length === 0) fail('no image data (IDAT)');
  if (h.color === 3 && !palette) fail('palette image without a PLTE chunk');

  const channels = CHANNELS[h.color]!;
  const bitsPerPixel = channels * h.depth;
  const passes = h.interlaced ? adam7Passes(h.width, h.height) : [{ x0: 0, y0: 0, dx: 1, dy: 1, w: h.width, h: h.height }];
  let expected = 0;
  for (const p of passes) if (p.w > 0 && p.h > 0) expected += p.h * (1 + Math.ceil((p.w * bitsPerPixel) / 8));

  const compressed = idat.length === 1 ? idat[0]! : concatBytes(idat);
  let raw: Uint8Array;
  try {
    raw = inflateSync(compressed, { maxOutputLength: expected + 1 });
  } catch (e) {
    const msg = (e as Error).message;
    if (/maxOutputLength|larger than/i.test(msg) || (e as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE') {
      fail(`more image data than ${h.width}x${h.height} pixels need (the file is corrupt)`);
    }
    fail(`corrupt compressed image data (${msg})`);
  }
  if (raw!.length < expected) fail(`truncated image data: ${raw!.length} of ${expected} bytes`);
  if (raw!.length > expected) fail(`more image data than ${h.width}x${h.height} pixels need (the file is corrupt)`);

  const rgba = new Uint8Array(h.width * h.height * 4);
  const toRgba = pixelConverter(h.color, h.depth, palette, trns, fail);
  const bpp = Math.max(1, bitsPerPixel >> 3); // bytes per complete pixel, for the filters
  let off = 0;
  for (const p of passes) {
    if (p.w === 0 || p.h === 0) continue;
    const stride = Math.ceil((p.w * bitsPerPixel) / 8);
    let prev = new Uint8Array(stride);
    let cur = new Uint8Array(stride);
    for (let y = 0; y < p.h; y++) {
      const filter = raw![off]!;
      unfilter(filter, raw!.subarray(off + 1, off + 1 + stride), prev, cur, bpp, () => fail(`unknown row filter ${filter} in row ${y}`));
      off += 1 + stride;
      const rowY = p.y0 + y * p.dy;
      for (let x = 0; x < p.w; x++) toRgba(cur, x, rgba, (rowY * h.width + p.x0 + x * p.dx) * 4);
      [prev, cur] = [cur, prev];
    }
  }
  return { width: h.width, height: h.height, rgba, colorType: h.color, bitDepth: h.depth, interlaced: h.interlaced };
}

/**
 * Grayscale 0..255 from RGBA: ITU-R BT.601 luma (0.299 R + 0.587 G + 0.114 B, as PIL's "L" mode),
 * composited over black by alpha, so transparent areas become background (0), as in MNIST.
 */
export function toGray(img: PngImage): Uint8Array {
  const n = img.width * img.height;
  const out = new Uint8Array(n);
  const p = img.rgba;
  for (let i = 0; i < n; i++) {
    const o = 4 * i;
    const luma = 0.299 * p[o]! + 0.587 * p[o + 1]! + 0.114 * p[o + 2]!;
    out[i] = Math.round((luma * p[o + 3]!) / 255);
  }
  return out;
}

/** The seven Adam7 sub-images: origin, step and size of each. */
function adam7Passes(width: number, height: number) {
  const spec = [
    [0, 0, 8, 8],
    [4, 0, 8, 8],
    [0, 4, 4, 8],
    [2, 0, 4, 4],
    [0, 2, 2, 4],
    [1, 0, 2, 2],
    [0, 1, 1, 2],
  ] as const;
  return spec.map(([x0, y0, dx, dy]) => ({
    x0,
    y0,
    dx,
    dy,
    w: width > x0 ? Math.ceil((width - x0) / dx) : 0,
    h: height > y0 ? Math.ceil((height - y0) / dy) : 0,
  }));
}

/** Undo one row's filter (PNG spec section 9) into `out`, given the previous unfiltered row. */
function unfilter(filter: number, row: Uint8Array, prev: Uint8Array, out: Uint8Array, bpp: number, bad: () => never): void {
  const n = row.length;
  switch (filter) {
    case 0:
      out.set(row);
      return;
    case 1:
      for (let i = 0; i < n; i++) out[i] = (row[i]! + (i >= bpp ? out[i - bpp]! : 0)) & 0xff;
      return;
    case 2:
      for (let i = 0; i < n; i++) out[i] = (row[i]! + prev[i]!) & 0xff;
      return;
    case 3:
      for (let i = 0; i < n; i++) out[i] = (row[i]! + (((i >= bpp ? out[i - bpp]! : 0) + prev[i]!) >> 1)) & 0xff;
      return;
    case 4:
      for (let i = 0; i < n; i++) {
        const a = i >= bpp ? out[i - bpp]! : 0;
        const b = prev[i]!;
        const c = i >= bpp ? prev[i - bpp]! : 0;
        const p = a + b - c;
        const pa = Math.abs(p - a);
        const pb = Math.abs(p - b);
        const pc = Math.abs(p - c);
        out[i] = (row[i]! + (pa <= pb && pa <= pc ? a : pb <= pc ? b : c)) & 0xff;
      }
      return;
    default:
      bad();
  }
}

type PixelWriter = (row: Uint8Array, x: number, out: Uint8Array, o: number) => void;

/** A function that writes pixel x of an unfiltered row as 8-bit RGBA. */
function pixelConverter(color: number, depth: number, palette: Uint8Array | undefined, trns: Uint8Array | undefined, fail: (why: string) => never): PixelWriter {
  // a sample of `depth` bits, as the file stores it
  const sample = (row: Uint8Array, i: number): number => {
    if (depth === 8) return row[i]!;
    if (depth === 16) return (row[2 * i]! << 8) | row[2 * i + 1]!;
    const bit = i * depth;
    return (row[bit >> 3]! >> (8 - depth - (bit & 7))) & ((1 << depth) - 1);
  };
  const max = (1 << depth) - 1;
  const to8 = (v: number): number => (depth === 8 ? v : Math.round((v * 255) / max));
  switch (color) {
    case 0: {
      const key = trns && trns.length >= 2 ? (trns[0]! << 8) | trns[1]! : -1;
      return (row, x, out, o) => {
        const v = sample(row, x);
        const g = to8(v);
        out[o] = g;
        out[o + 1] = g;
        out[o + 2] = g;
        out[o + 3] = v === key ? 0 : 255;
      };
    }
    case 2: {
      const key = trns && trns.length >= 6 ? [(trns[0]! << 8) | trns[1]!, (trns[2]! << 8) | trns[3]!, (trns[4]! << 8) | trns[5]!] : null;
      return (row, x, out, o) => {
        const r = sample(row, 3 * x);
        const g = sample(row, 3 * x + 1);
        const b = sample(row, 3 * x + 2);
        out[o] = to8(r);
        out[o + 1] = to8(g);
        out[o + 2] = to8(b);
        out[o + 3] = key && r === key[0] && g === key[1] && b === key[2] ? 0 : 255;
      };
    }
    case 3: {
      const pal = palette!;
      const entries = pal.length / 3;
      return (row, x, out, o) => {
        const i = sample(row, x);
        if (i >= entries) fail(`pixel uses palette entry ${i}, the palette has ${entries}`);
        out[o] = pal[3 * i]!;
        out[o + 1] = pal[3 * i + 1]!;
        out[o + 2] = pal[3 * i + 2]!;
        out[o + 3] = trns && i < trns.length ? trns[i]! : 255;
      };
    }
    case 4:
      return (row, x, out, o) => {
        const g = to8(sample(row, 2 * x));
        out[o] = g;
        out[o + 1] = g;
        out[o + 2] = g;
        out[o + 3] = to8(sample(row, 2 * x + 1));
      };
    default:
      return (row, x, out, o) => {
        for (let c = 0; c < 4; c++) out[o + c] = to8(sample(row, 4 * x + c));
      };
  }
}
