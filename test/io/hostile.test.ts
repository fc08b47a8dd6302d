/**
 * Hostile files through the CLI, each in a child process that reports its own peak memory: a
 * gzip bomb given as IDX images, a PNG whose header declares a huge image (with the data to fill
 * it), safetensors and HDF5 files that declare huge sizes (large ones sparse, made with
 * ftruncate: no disk cost). Every case must end in exit 2 and one line on stderr, with a peak
 * resident set under 300 MB. The weights cases load a tiny IDX data set first, so the data set
 * is not what the memory measures.
 */
import assert from 'node:assert/strict';
import { createWriteStream, mkdirSync, readFileSync, truncateSync, unlinkSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { once } from 'node:events';
import { createGzip, deflateSync } from 'node:zlib';
import { KerasH5Reader, readKerasWeights, writeKerasH5 } from '../../src/model/keras.ts';
import { DataError } from '../../src/errors.ts';
import { encodeSafetensors } from '../../src/io/safetensors.ts';
import { pngChunk, encodeTestPng } from '../data/pngEncoder.ts';
import { siameseMeasured } from './child.ts';

const MAX_PEAK_MB = 300;
const GIB = 2 ** 30;

let dir = '';
let tiny = '';
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'siamese-hostile-'));
  tiny = join(dir, 'tiny');
  writeIdxSet(tiny, 8);
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

function idxHeader(dims: number[]): Buffer {
  const h = Buffer.alloc(4 + 4 * dims.length);
  h.writeUInt32BE(0x0800 | dims.length, 0);
  dims.forEach((d, i) => h.writeUInt32BE(d, 4 + 4 * i));
  return h;
}

/** The four MNIST-named IDX files: n blank 28x28 images, labels 0,1,0,1,... */
function writeIdxSet(d: string, n: number): void {
  mkdirSync(d, { recursive: true });
  const labels = Buffer.from(Array.from({ length: n }, (_, i) => i % 2));
  for (const split of ['train', 't10k']) {
    writeFileSync(join(d, `${split}-images-idx3-ubyte`), Buffer.concat([idxHeader([n, 28, 28]), Buffer.alloc(n * 784)]));
    writeFileSync(join(d, `${split}-labels-idx1-ubyte`), Buffer.concat([idxHeader([n]), labels]));
  }
}

/** Exit 2, one line naming the problem, peak RSS under the bound. */
function expectRefused(args: string[], message: RegExp): void {
  const r = siameseMeasured(args);
  const lines = r.stderr.split('\n').filter((l) => l !== '');
  assert.equal(r.code, 2, `exit ${r.code}: ${r.stderr}`);
  assert.equal(lines.length, 1, `stderr is not one line: ${r.stderr}`);
  assert.match(lines[0]!, message);
  assert.ok(r.peakMB < MAX_PEAK_MB, `peak RSS ${r.peakMB.toFixed(0)} MB (limit ${MAX_PEAK_MB})`);
}

/** Any command that loads a data set and weights: export reads both and writes nothing on error. */
const exportWeights = (dataDir: string, weights: string): string[] =>
  ['export', '--data', 'idx', '--data-dir', dataDir, '--weights', weights, '--out', join(dir, 'out.safetensors')];

test('a 2 GB gzip bomb given as IDX images: stopped at the declared size, with a true message', { timeout: 300_000 }, async () => {
  const bomb = join(dir, 'bomb');
  writeIdxSet(bomb, 8);
  unlinkSync(join(bomb, 'train-images-idx3-ubyte'));
  // a header that declares MNIST's 60,000 images, then 2 GiB of zeros (about 9 MB gzipped)
  const path = join(bomb, 'train-images-idx3-ubyte.gz');
  const gz = createGzip({ level: 1 });
  const out = gz.pipe(createWriteStream(path));
  gz.write(idxHeader([60000, 28, 28]));
  const zeros = Buffer.alloc(2 ** 20);
  for (let i = 0; i < 2048; i++) if (!gz.write(zeros)) await once(gz, 'drain');
  gz.end();
  await once(out, 'finish');
  expectRefused(exportWeights(bomb, join(dir, 'none.safetensors')), /train-images-idx3-ubyte\.gz: declares 60000 images of 28x28 \(47040000 bytes of data\) but the data holds more/);
});

test('a PNG whose header declares 8192x8192 16-bit RGBA pixels, with the data to fill them, is refused from its header', { timeout: 300_000 }, () => {
  const folder = join(dir, 'png');
  for (const c of ['a', 'b']) {
    mkdirSync(join(folder, c), { recursive: true });
    for (let i = 0; i < 4; i++) writeFileSync(join(folder, c, `${i}.png`), encodeTestPng(Array.from({ length: 16 }, (_, k) => (k * 13 + i) % 256), 4, 4, { color: 0, depth: 8 }));
  }
  const w = 8192;
  const h = 8192;
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(w, 0);
  ihdr.writeUInt32BE(h, 4);
  ihdr[8] = 16; // bit depth
  ihdr[9] = 6; // RGBA
  // every row: filter byte 0 and 8 bytes per pixel of zeros (537 MB raw, about 0.5 MB deflated)
  const raw = Buffer.alloc(h * (1 + 8 * w));
  const png = Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    pngChunk('IHDR', ihdr),
    pngChunk('IDAT', deflateSync(raw, { level: 1 })),
    pngChunk('IEND', new Uint8Array(0)),
  ]);
  writeFileSync(join(folder, 'a', '0.png'), png);
  expectRefused(['export', '--data', 'folder', '--data-dir', folder, '--weights', join(dir, 'none.safetensors'), '--out', join(dir, 'o.safetensors')], /0\.png: 8192x8192 pixels is too large/);
});

test('safetensors files that declare huge headers, or are huge, are refused from their first bytes', { timeout: 300_000 }, () => {
  // a 1.9 GB file (sparse) whose length field is garbage
  const garbage = join(dir, 'garbage.safetensors');
  writeFileSync(garbage, Buffer.from([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f]));
  truncateSync(garbage, 1.9e9);
  expectRefused(exportWeights(tiny, garbage), /garbage\.safetensors: safetensors header length 9223372036854775807 is over this reader's limit/);

  // a 50 MB header (JSON padded with spaces), as the reference implementation would still accept
  const fifty = join(dir, 'header50mb.safetensors');
  const json = Buffer.alloc(50e6, 0x20);
  json.write('{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}');
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(json.length));
  writeFileSync(fifty, Buffer.concat([len, json, Buffer.alloc(4)]));
  expectRefused(exportWeights(tiny, fifty), /header length 50000000 is over this reader's limit of 1048576 bytes/);

  // a valid small header on a 2.5 GiB file (sparse): the data does not match, nothing is read
  const big = join(dir, 'big.safetensors');
  writeFileSync(big, encodeSafetensors([{ name: 'dense_1.kernel', shape: [2], data: new Float32Array([1, 2]) }]));
  truncateSync(big, 2.5 * GIB);
  expectRefused(exportWeights(tiny, big), /big\.safetensors: safetensors data is \d+ bytes but the tensors cover 8/);
});

test('HDF5 files that declare huge sizes end in one line, in bounded memory', { timeout: 300_000 }, async () => {
  const specs: [string, number[]][] = [
    ['dense_1.kernel', [784, 128]], ['dense_1.bias', [128]], ['dense_2.kernel', [128, 128]],
    ['dense_2.bias', [128]], ['dense_3.kernel', [128, 128]], ['dense_3.bias', [128]],
  ];
  const good = join(dir, 'good.h5');
  await writeKerasH5(good, specs.map(([name, shape]) => ({ name, shape, data: new Float32Array(shape.reduce((a, b) => a * b, 1)) })));
  const bytes = new Uint8Array(readFileSync(good));

  // the kernel's dataspace [784, 128] rewritten as [2^40, 128]
  const huge = Buffer.from(bytes);
  let at = -1;
  for (let i = 0; i + 16 <= huge.length && at < 0; i++) {
    if (huge.readBigUInt64LE(i) === 784n && huge.readBigUInt64LE(i + 8) === 128n) at = i;
  }
  assert.ok(at > 0, 'dataspace [784, 128] not found');
  huge.writeBigUInt64LE(2n ** 40n, at);
  writeFileSync(join(dir, 'huge-dims.h5'), huge);
  expectRefused(exportWeights(tiny, join(dir, 'huge-dims.h5')), /huge-dims\.h5: /);

  // the superblock's end-of-file address and the file itself 2.5 GiB (sparse)
  const sparse = join(dir, 'sparse.h5');
  writeFileSync(sparse, bytes.subarray(0, 48));
  truncateSync(sparse, 2.5 * GIB);
  expectRefused(exportWeights(tiny, sparse), /sparse\.h5: /);
});

test('the HDF5 worker cannot grow its WebAssembly heap past its limit: a read that needs more fails in one line', { timeout: 300_000 }, async () => {
  const n = 3072;
  const kernel = Float32Array.from({ length: n * n }, (_, i) => i % 251);
  const path = join(dir, 'big.h5');
  await writeKerasH5(path, [{ name: 'dense_1.kernel', shape: [n, n], data: kernel }, { name: 'dense_1.bias', shape: [n], data: new Float32Array(n) }]);
  const expected = [{ name: 'dense_1.kernel', shape: [n, n] }, { name: 'dense_1.bias', shape: [n] }];
  const small = new KerasH5Reader({ maxMemoryBytes: 40 * 2 ** 20 });
  try {
    // 36 MB of weights do not fit in 40 MB beside the library's own memory
    await assert.rejects(small.readWeights(path, expected), (e: unknown) =>
      e instanceof DataError && /big\.h5: cannot read the weight data \((memory allocation of \d+ bytes failed|no space available for allocation)\)/.test(e.message));
  } finally {
    await small.close();
  }
  const weights = await readKerasWeights(path, expected); // the default limit
  assert.equal(weights[0]!.data[260], 260 % 251);
});
