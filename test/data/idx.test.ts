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
