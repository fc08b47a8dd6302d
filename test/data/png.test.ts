import assert from 'node:assert/strict';
import { test } from 'node:test';
import { deflateSync } from 'node:zlib';
import { DataError } from '../../src/errors.ts';
import { decodePng, MAX_PNG_FILE_BYTES, MAX_PNG_PIXELS, readPng, toGray } from '../../src/data/png.ts';
import { Rng } from '../../src/rng.ts';
import { encodePng } from '../../src/viz/png.ts';
import { encodeTestPng, pngChunk } from './pngEncoder.ts';

const rng = new Rng(7);
const randomSamples = (n: number, max: number) => Array.from({ length: n }, () => rng.int(max + 1));
const to8 = (v: number, depth: number) => Math.round((v * 255) / (2 ** depth - 1));

test('every colour type and bit depth decodes to the right RGBA, with all five filters, plain and Adam7', () => {
  const w = 11;
  const h = 9; // not multiples of 8: Adam7 passes of odd sizes, some tiny
  const cases: { color: 0 | 2 | 3 | 4 | 6; depth: 1 | 2 | 4 | 8 | 16 }[] = [
    { color: 0, depth: 1 }, { color: 0, depth: 2 }, { color: 0, depth: 4 }, { color: 0, depth: 8 }, { color: 0, depth: 16 },
    { color: 2, depth: 8 }, { color: 2, depth: 16 },
    { color: 3, depth: 1 }, { color: 3, depth: 2 }, { color: 3, depth: 4 }, { color: 3, depth: 8 },
    { color: 4, depth: 8 }, { color: 4, depth: 16 },
    { color: 6, depth: 8 }, { color: 6, depth: 16 },
  ];
  for (const { color, depth } of cases) {
    for (const interlace of [false, true]) {
      const ch = { 0: 1, 2: 3, 3: 1, 4: 2, 6: 4 }[color];
      const paletteSize = color === 3 ? Math.min(2 ** depth, 7) : 0;
      const samples = randomSamples(w * h * ch, color === 3 ? paletteSize - 1 : 2 ** depth - 1);
      const palette = color === 3 ? Array.from({ length: paletteSize }, () => randomSamples(3, 255)) : undefined;
      const trns = color === 3 ? [17, 255, 0] : undefined;
      const png = encodeTestPng(samples, w, h, { color, depth, interlace, palette, trns, filters: [0, 1, 2, 3, 4, 4, 3, 2, 1] });
      const img = decodePng(png, 'case.png');
      const what = `colour ${color}, depth ${depth}${interlace ? ', interlaced' : ''}`;
      assert.deepEqual([img.width, img.height, img.colorType, img.bitDepth, img.interlaced], [w, h, color, depth, interlace], what);
      for (let i = 0; i < w * h; i++) {
        let expected: number[];
        if (color === 0) expected = [to8(samples[i]!, depth), to8(samples[i]!, depth), to8(samples[i]!, depth), 255];
        else if (color === 2) expected = [0, 1, 2].map((c) => to8(samples[3 * i + c]!, depth)).concat(255);
        else if (color === 3) expected = [...palette![samples[i]!]!, trns![samples[i]!] ?? 255];
        else if (color === 4) {
          const g = to8(samples[2 * i]!, depth);
          expected = [g, g, g, to8(samples[2 * i + 1]!, depth)];
        } else expected = [0, 1, 2, 3].map((c) => to8(samples[4 * i + c]!, depth));
        assert.deepEqual(Array.from(img.rgba.subarray(4 * i, 4 * i + 4)), expected, `${what}, pixel ${i}`);
      }
    }
  }
});

test('tRNS colour keys make gray and RGB pixels transparent; toGray uses BT.601 luma over black', () => {
  const gray = decodePng(encodeTestPng([0, 5, 200, 5], 2, 2, { color: 0, depth: 8, trns: [0, 5] }));
  assert.deepEqual(Array.from(toGray(gray)), [0, 0, 200, 0]);
  const rgb = decodePng(encodeTestPng([255, 0, 0, 0, 255, 0, 0, 0, 255, 9, 9, 9], 4, 1, { color: 2, depth: 8, trns: [0, 9, 0, 9, 0, 9] }));
  assert.deepEqual(Array.from(toGray(rgb)), [76, 150, 29, 0]);
  const ga = decodePng(encodeTestPng([200, 255, 200, 128, 200, 0], 3, 1, { color: 4, depth: 8 }));
  assert.deepEqual(Array.from(toGray(ga)), [200, 100, 0]);
});

test('the decoder reads what the project\'s own encoder (src/viz/png.ts) writes, and ancillary chunks are skipped', () => {
  const px = Uint8Array.from(randomSamples(28 * 28, 255));
  assert.deepEqual(toGray(decodePng(encodePng(px, 28, 28, 'gray'))), px);
  const rgba = Uint8Array.from(randomSamples(5 * 3 * 4, 255));
  assert.deepEqual(decodePng(encodePng(rgba, 5, 3, 'rgba')).rgba, rgba);
  const withText = encodeTestPng([1, 2, 3, 4], 2, 2, { color: 0, depth: 8, extra: [{ type: 'tEXt', data: Buffer.from('Comment\0hi') }], idatChunks: 3 });
  assert.deepEqual(Array.from(toGray(decodePng(withText))), [1, 2, 3, 4]);
});

function expectDataError(bytes: Uint8Array, pattern: RegExp): void {
  assert.throws(
    () => decodePng(bytes, 'broken.png'),
    (e: Error) => e instanceof DataError && e.message.startsWith('broken.png: ') && pattern.test(e.message),
  );
}

test('broken PNGs are DataErrors that say what is wrong', () => {
  const good = encodeTestPng(randomSamples(16, 255), 4, 4, { color: 0, depth: 8 });
  decodePng(good);
  // wrong signature, or not a PNG at all
  expectDataError(Uint8Array.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x00, ...good.subarray(8)]), /wrong signature/);
  expectDataError(Buffer.from('GIF89a...'), /not a PNG/);
  expectDataError(new Uint8Array(0), /not a PNG/);
  // a flipped byte inside IDAT: CRC mismatch
  const corrupt = good.slice();
  const idat = Buffer.from(good).indexOf('IDAT');
  corrupt[idat + 6]! ^= 0x40;
  expectDataError(corrupt, /IDAT fails its CRC check/);
  // truncated at various places
  expectDataError(good.subarray(0, 20), /truncated/);
  expectDataError(good.subarray(0, idat + 10), /truncated: chunk IDAT/);
  expectDataError(good.subarray(0, good.length - 12), /no IEND/);
  // a chunk length that runs past the end of the file
  const long = good.slice();
  new DataView(long.buffer).setUint32(idat - 4, 0x7fff0000);
  expectDataError(long, /truncated: chunk IDAT declares/);
});

test('malformed headers, data and chunk order are refused', () => {
  const ihdr = (w: number, h: number, depth: number, color: number, interlace = 0) => {
    const d = new Uint8Array(13);
    new DataView(d.buffer).setUint32(0, w);
    new DataView(d.buffer).setUint32(4, h);
    d.set([depth, color, 0, 0, interlace], 8);
    return d;
  };
  const sig = Uint8Array.of(0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a);
  const file = (...chunks: Uint8Array[]) => Buffer.concat([sig, ...chunks, pngChunk('IEND', new Uint8Array(0))]);
  const idat = (bytes: number[]) => pngChunk('IDAT', new Uint8Array(deflateSync(Uint8Array.from(bytes))));
  expectDataError(file(pngChunk('IHDR', ihdr(0, 4, 8, 0))), /invalid size 0x4/);
  expectDataError(file(pngChunk('IHDR', ihdr(2, 2, 3, 0))), /bit depth 3 is invalid for grayscale/);
  expectDataError(file(pngChunk('IHDR', ihdr(2, 2, 8, 5))), /invalid colour type 5/);
  expectDataError(file(pngChunk('IHDR', ihdr(2, 2, 8, 0, 2))), /unknown interlace method 2/);
  expectDataError(file(pngChunk('IHDR', ihdr(60000, 60000, 8, 0))), /too large/);
  expectDataError(file(idat([0, 1])), /first chunk is IDAT, not IHDR/);
  expectDataError(file(pngChunk('IHDR', ihdr(2, 1, 8, 0))), /no image data/);
  expectDataError(file(pngChunk('IHDR', ihdr(2, 1, 8, 3)), idat([0, 0, 0])), /without a PLTE/);
  expectDataError(file(pngChunk('IHDR', ihdr(2, 1, 8, 3)), pngChunk('PLTE', Uint8Array.of(1, 2, 3)), idat([0, 0, 1])), /palette entry 1, the palette has 1/);
  expectDataError(file(pngChunk('IHDR', ihdr(2, 1, 8, 0)), idat([7, 0, 0])), /unknown row filter 7/);
  expectDataError(file(pngChunk('IHDR', ihdr(2, 2, 8, 0)), idat([0, 0, 0])), /truncated image data: 3 of 6 bytes/);
  expectDataError(file(pngChunk('IHDR', ihdr(2, 1, 8, 0)), idat([0, 0, 0, 9, 9])), /more image data/);
  expectDataError(file(pngChunk('IHDR', ihdr(2, 1, 8, 0)), pngChunk('IDAT', Uint8Array.of(1, 2, 3))), /corrupt compressed image data/);
  expectDataError(file(pngChunk('IHDR', ihdr(2, 1, 8, 0)), pngChunk('CgBI', new Uint8Array(4)), idat([0, 0, 0])), /unknown critical chunk CgBI/);
  const z = deflateSync(Uint8Array.of(0, 1, 2));
  const split = file(pngChunk('IHDR', ihdr(2, 1, 8, 0)), pngChunk('IDAT', z.subarray(0, 4)), pngChunk('tEXt', Buffer.from('a\0b')), pngChunk('IDAT', z.subarray(4)));
  expectDataError(split, /not consecutive/);
});

test('readPng decides from the header and the file size before reading the rest', async () => {
  const { mkdtempSync, truncateSync, writeFileSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  const { join } = await import('node:path');
  const dir = mkdtempSync(join(tmpdir(), 'png-read-'));
  const good = encodeTestPng([1, 2, 3, 4], 2, 2, { color: 0, depth: 8 });
  writeFileSync(join(dir, 'ok.png'), good);
  assert.deepEqual(Array.from(toGray(await readPng(join(dir, 'ok.png')))), [1, 2, 3, 4]);
  // a valid start, then 70 MB (sparse): refused from the size, nothing read
  writeFileSync(join(dir, 'long.png'), good);
  truncateSync(join(dir, 'long.png'), 70 * 2 ** 20);
  await assert.rejects(readPng(join(dir, 'long.png')), (e: unknown) =>
    e instanceof DataError && e.message === `${join(dir, 'long.png')}: the file is ${70 * 2 ** 20} bytes; a PNG data set image is at most ${MAX_PNG_FILE_BYTES} bytes`);
  // a header that declares 4097x1024 pixels (just over 2^22) on a 70 MB file: the header speaks first
  const ihdr = new Uint8Array(13);
  new DataView(ihdr.buffer).setUint32(0, 4097);
  new DataView(ihdr.buffer).setUint32(4, 1024);
  ihdr[8] = 8;
  writeFileSync(join(dir, 'wide.png'), Buffer.concat([good.subarray(0, 8), pngChunk('IHDR', ihdr)]));
  truncateSync(join(dir, 'wide.png'), 70 * 2 ** 20);
  await assert.rejects(readPng(join(dir, 'wide.png')), /wide\.png: 4097x1024 pixels is too large for a data set image \(at most 4194304 pixels/);
  assert.equal(MAX_PNG_PIXELS, 2 ** 22);
  await assert.rejects(readPng(join(dir, 'none.png')), /none\.png: no such file/);
});
