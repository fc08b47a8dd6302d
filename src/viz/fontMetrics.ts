/**
 * Text widths from a TrueType font's own advance widths (tables head, hhea, hmtx, cmap format 4),
 * so that vega lays out titles, axes and legends for the font resvg actually draws with. Without
 * a canvas vega only guesses (0.8 × font size per character, far too wide for DejaVu Sans),
 * which wastes space and cuts legend labels early. Kerning is ignored (a few percent at most).
 */
import { readFileSync } from 'node:fs';
import { DataError } from '../errors.ts';

export interface FontMetrics {
  /** advance width of `text` in pixels at `fontSize` */
  width(text: string, fontSize: number): number;
}

interface TableDir {
  offset: number;
  length: number;
}

function tables(buf: DataView, path: string): Map<string, TableDir> {
  if (buf.byteLength < 12) throw new DataError(`${path}: not a TrueType font (too short)`);
  const numTables = buf.getUint16(4);
  const out = new Map<string, TableDir>();
  for (let i = 0; i < numTables; i++) {
    const rec = 12 + 16 * i;
    if (rec + 16 > buf.byteLength) throw new DataError(`${path}: truncated TrueType table directory`);
    const tag = String.fromCharCode(buf.getUint8(rec), buf.getUint8(rec + 1), buf.getUint8(rec + 2), buf.getUint8(rec + 3));
    out.set(tag, { offset: buf.getUint32(rec + 8), length: buf.getUint32(rec + 12) });
  }
  for (const t of ['head', 'hhea', 'hmtx', 'cmap']) if (!out.has(t)) throw new DataError(`${path}: TrueType table ${t} missing`);
  return out;
}

/** Map BMP code points to glyph ids with the Windows Unicode (3,1) or Unicode (0,x) format-4 subtable. */
function readCmap4(buf: DataView, cmap: TableDir, path: string): (code: number) => number {
  const n = buf.getUint16(cmap.offset + 2);
  let sub = -1;
  for (let i = 0; i < n; i++) {
    const rec = cmap.offset + 4 + 8 * i;
    const platform = buf.getUint16(rec);
    const encoding = buf.getUint16(rec + 2);
    const off = cmap.offset + buf.getUint32(rec + 4);
    if (buf.getUint16(off) !== 4) continue;
    if ((platform === 3 && encoding === 1) || platform === 0) {
      sub = off;
      if (platform === 3) break;
    }
  }
  if (sub < 0) throw new DataError(`${path}: no Unicode format-4 cmap subtable`);
  const segX2 = buf.getUint16(sub + 6);
  const ends = sub + 14;
  const starts = ends + segX2 + 2;
  const deltas = starts + segX2;
  const rangeOffsets = deltas + segX2;
  return (code: number): number => {
    if (code > 0xffff) return 0;
    for (let s = 0; s < segX2; s += 2) {
      if (code > buf.getUint16(ends + s)) continue;
      const start = buf.getUint16(starts + s);
      if (code < start) return 0;
      const delta = buf.getInt16(deltas + s);
      const ro = buf.getUint16(rangeOffsets + s);
      if (ro === 0) return (code + delta) & 0xffff;
      const g = buf.getUint16(rangeOffsets + s + ro + 2 * (code - start));
      return g === 0 ? 0 : (g + delta) & 0xffff;
    }
    return 0;
  };
}

/** Load the advance widths of one TrueType file. Throws DataError when it is not one. */
export function loadFontMetrics(path: string): FontMetrics {
  let bytes: Buffer;
  try {
    bytes = readFileSync(path);
  } catch {
    throw new DataError(`${path}: cannot read the font file`);
  }
  const buf = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const t = tables(buf, path);
  const unitsPerEm = buf.getUint16(t.get('head')!.offset + 18);
  const numHMetrics = buf.getUint16(t.get('hhea')!.offset + 34);
  const hmtx = t.get('hmtx')!.offset;
  const advance = (glyph: number): number => buf.getUint16(hmtx + 4 * Math.min(glyph, numHMetrics - 1));
  const glyphOf = readCmap4(buf, t.get('cmap')!, path);
  const cache = new Map<number, number>();
  const em = (code: number): number => {
    let a = cache.get(code);
    if (a === undefined) {
      a = advance(glyphOf(code)) / unitsPerEm;
      cache.set(code, a);
    }
    return a;
  };
  return {
    width(text: string, fontSize: number): number {
      let w = 0;
      for (const ch of text) w += em(ch.codePointAt(0)!);
      return w * fontSize;
    },
  };
}
