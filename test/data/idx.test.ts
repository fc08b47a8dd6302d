import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { gzipSync } from 'node:zlib';
import { loadIdxSplit } from '../../src/data/dataset.ts';
import { parseIdx, readIdx } from '../../src/data/idx.ts';
import { DataError } from '../../src/errors.ts';
import { idxFile as idx } from './datasets.ts';


test('parses a 3-d image file and a 1-d label file', () => {
  const img = parseIdx(idx([2, 2, 3], [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]), 'img');
  assert.deepEqual(img.dims, [2, 2, 3]);
  assert.deepEqual([...img.data], [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
  const lab = parseIdx(idx([3], [7, 0, 9]));
  assert.deepEqual(lab.dims, [3]);
  assert.deepEqual([...lab.data], [7, 0, 9]);
});

test('reads gzipped IDX the same as raw', () => {
  const raw = idx([3], [4, 5, 6]);
  assert.deepEqual(parseIdx(gzipSync(raw)), parseIdx(raw));
});

test('a wrong magic number is refused', () => {
  const bad = idx([3], [1, 2, 3]);
  bad[0] = 0x12;
  assert.throws(() => parseIdx(bad, 'x.idx'), (e: unknown) => e instanceof DataError && /x\.idx: not an IDX file \(magic number 0x12/.test(e.message));
  const float = idx([1], [0, 0, 0, 0]);
  float[2] = 0x0d; // float32 data
  assert.throws(() => parseIdx(float), /data type 0xd is not supported/);
});

test('truncated data and trailing bytes are refused', () => {
  const full = idx([2, 2, 2], [1, 2, 3, 4, 5, 6, 7, 8]);
  assert.throws(() => parseIdx(full.subarray(0, full.length - 1), 'img'), /img: truncated IDX data: header declares 2x2x2 = 8 bytes, file has 7/);
  assert.throws(() => parseIdx(full.subarray(0, 9)), /truncated IDX header/);
  assert.throws(() => parseIdx(full.subarray(0, 2)), /too short/);
  const extra = new Uint8Array(full.length + 3);
  extra.set(full);
  assert.throws(() => parseIdx(extra), /3 unexpected bytes after the IDX data/);
});

test('corrupt gzip and huge declared sizes are refused before allocating', () => {
  const gz = gzipSync(idx([3], [1, 2, 3]));
  assert.throws(() => parseIdx(gz.subarray(0, gz.length - 6)), /corrupt gzip data/);
  assert.throws(() => parseIdx(idx([0xffffffff, 0xffffffff], [])), /too many/);
});

test('image and label files must agree on the count', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'idx-'));
  writeFileSync(join(dir, 'img'), idx([2, 1, 2], [1, 2, 3, 4]));
  writeFileSync(join(dir, 'lab'), idx([3], [0, 1, 1]));
  writeFileSync(join(dir, 'lab2'), idx([2], [0, 1]));
  await assert.rejects(loadIdxSplit(join(dir, 'img'), join(dir, 'lab')), /has 2 images but .*lab has 3 labels/);
  await assert.rejects(loadIdxSplit(join(dir, 'lab2'), join(dir, 'lab2')), /expected an image file/);
  const split = await loadIdxSplit(join(dir, 'img'), join(dir, 'lab2'));
  assert.equal(split.n, 2);
  assert.equal(split.height, 1);
  assert.equal(split.width, 2);
  assert.match(split.checksum, /^[0-9a-f]{64}$/);
  await assert.rejects(readIdx(join(dir, 'missing')), /missing: no such file/);
});

test('readIdx streams gzipped files: the header decides, and data past or short of the declared size is refused in one line', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'idx-gz-'));
  const images = idx([3, 2, 2], Array.from({ length: 12 }, (_, i) => i * 3));
  writeFileSync(join(dir, 'ok.gz'), gzipSync(images));
  assert.deepEqual(await readIdx(join(dir, 'ok.gz')), parseIdx(images));
  // the same bytes in many small gzip members: the header arrives split over chunks
  const members = Buffer.concat(Array.from(images, (b) => gzipSync(Uint8Array.of(b))));
  writeFileSync(join(dir, 'members.gz'), members);
  assert.deepEqual((await readIdx(join(dir, 'members.gz'))).data, parseIdx(images).data);

  writeFileSync(join(dir, 'more.gz'), gzipSync(Buffer.concat([images, Buffer.alloc(5)])));
  await assert.rejects(readIdx(join(dir, 'more.gz')), (e: unknown) =>
    e instanceof DataError && /more\.gz: declares 3 images of 2x2 \(12 bytes of data\) but the data holds more/.test(e.message));
  writeFileSync(join(dir, 'less.gz'), gzipSync(images.subarray(0, images.length - 4)));
  await assert.rejects(readIdx(join(dir, 'less.gz')), /less\.gz: declares 3 images of 2x2 \(12 bytes of data\) but the data holds only 8 bytes/);
  writeFileSync(join(dir, 'labels.gz'), gzipSync(idx([4], [1, 2])));
  await assert.rejects(readIdx(join(dir, 'labels.gz')), /declares 4 labels \(4 bytes of data\) but the data holds only 2 bytes/);
  const gz = gzipSync(images);
  writeFileSync(join(dir, 'cut.gz'), gz.subarray(0, gz.length - 6));
  await assert.rejects(readIdx(join(dir, 'cut.gz')), /cut\.gz: corrupt gzip data/);
  writeFileSync(join(dir, 'magic.gz'), gzipSync(Buffer.from([0x12, 0, 8, 1, 0, 0, 0, 1, 7])));
  await assert.rejects(readIdx(join(dir, 'magic.gz')), /magic\.gz: not an IDX file/);
  // raw files: the header is checked against the file's size before the data is read
  writeFileSync(join(dir, 'raw'), idx([0x7fff, 0xffff], [1]));
  await assert.rejects(readIdx(join(dir, 'raw')), /raw: truncated IDX data: header declares 32767x65535 = 2147385345 bytes, file has 1/);
});
