import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { gzipSync } from 'node:zlib';
import { classIndices } from '../../src/data/pairs.ts';
import { FASHION_MNIST_CLASSES, FASHION_MNIST_DIR, loadDataset, loadFashionMnist, resolveDataSpec } from '../../src/data/registry.ts';
import { DataError, UsageError } from '../../src/errors.ts';
import { encodeTestPng } from './pngEncoder.ts';

let root: string;
before(async () => {
  root = await mkdtemp(join(tmpdir(), 'siamese-data-'));
});
after(async () => {
  await rm(root, { recursive: true, force: true });
});

function idxFile(dims: number[], data: ArrayLike<number>): Uint8Array {
  const out = new Uint8Array(4 + 4 * dims.length + data.length);
  const v = new DataView(out.buffer);
  v.setUint32(0, 0x0800 | dims.length);
  dims.forEach((d, i) => v.setUint32(4 + 4 * i, d));
  out.set(Uint8Array.from(data), 4 + 4 * dims.length);
  return out;
}

test('data specs: names are checked, idx and folder need a folder, folders become absolute', () => {
  assert.deepEqual(resolveDataSpec({}), { name: 'mnist' });
  assert.deepEqual(resolveDataSpec({ name: 'Fashion-MNIST' }), { name: 'fashion-mnist' });
  assert.equal(resolveDataSpec({ name: 'idx', dir: 'some/where' }).dir, join(process.cwd(), 'some/where'));
  assert.throws(() => resolveDataSpec({ name: 'cifar' }), (e: Error) => e instanceof UsageError && /valid: mnist, fashion-mnist, idx, folder/.test(e.message));
  assert.throws(() => resolveDataSpec({ name: 'idx' }), (e: Error) => e instanceof UsageError && /--data idx needs --data-dir DIR/.test(e.message));
  assert.throws(() => resolveDataSpec({ name: 'folder' }), (e: Error) => e instanceof UsageError && /--data folder needs --data-dir DIR/.test(e.message));
});

test('Fashion-MNIST: a clear DataError with the install command when it is missing', async () => {
  await assert.rejects(loadFashionMnist(undefined, join(root, 'nowhere')), (e: Error) => {
    return e instanceof DataError && e.message === 'Fashion-MNIST is not installed: sudo apt-get install dataset-fashion-mnist';
  });
});

test('Fashion-MNIST from Debian\'s package: 60,000 + 10,000 images, 10 named classes', { skip: !existsSync(FASHION_MNIST_DIR) && 'dataset-fashion-mnist is not installed' }, async () => {
  const ds = await loadDataset({ name: 'fashion-mnist' });
  assert.equal(ds.name, 'fashion-mnist');
  assert.deepEqual(ds.classes, FASHION_MNIST_CLASSES);
  assert.deepEqual([ds.train.n, ds.test.n, ds.train.height, ds.train.width], [60000, 10000, 28, 28]);
  assert.deepEqual(classIndices(ds.train.labels, 10).map((c) => c.length), new Array(10).fill(6000));
  assert.deepEqual(classIndices(ds.test.labels, 10).map((c) => c.length), new Array(10).fill(1000));
  assert.deepEqual([...ds.train.labels.subarray(0, 5)], [9, 0, 0, 3, 0]);
  assert.match(ds.source, /Zalando/);
});

test('idx: any folder with the four MNIST-named files, raw or gzipped; classes named after the labels', async () => {
  const dir = join(root, 'idx');
  await mkdir(dir);
  const trainImages = Array.from({ length: 6 * 4 * 5 }, (_, i) => i % 256);
  await writeFile(join(dir, 'train-images-idx3-ubyte'), idxFile([6, 4, 5], trainImages));
  await writeFile(join(dir, 'train-labels-idx1-ubyte.gz'), gzipSync(idxFile([6], [0, 1, 2, 0, 1, 2])));
  await writeFile(join(dir, 't10k-images-idx3-ubyte.gz'), gzipSync(idxFile([3, 4, 5], new Array(60).fill(7))));
  await writeFile(join(dir, 't10k-labels-idx1-ubyte'), idxFile([3], [2, 1, 0]));
  const ds = await loadDataset({ name: 'idx', dir });
  assert.equal(ds.name, 'idx');
  assert.deepEqual(ds.classes, ['0', '1', '2']);
  assert.deepEqual([ds.train.n, ds.train.height, ds.train.width, ds.test.n], [6, 4, 5, 3]);
  assert.deepEqual([...ds.train.images.subarray(0, 3)], [0, 1, 2]);
  assert.match(ds.source, /IDX files in/);
  // the same files as "mnist" from a folder
  assert.equal((await loadDataset({ name: 'mnist', dir })).name, 'mnist');
  await rm(join(dir, 't10k-labels-idx1-ubyte'));
  await assert.rejects(loadDataset({ name: 'idx', dir }), (e: Error) => e instanceof DataError && /missing t10k-labels-idx1-ubyte \(or t10k-labels-idx1-ubyte\.gz\)/.test(e.message));
});

/** A gray square of value v with a one-pixel mark whose place encodes the class. */
function img(v: number, w = 6, h = 5): number[] {
  return new Array(w * h).fill(v);
}

async function writePng(path: string, bytes: Uint8Array): Promise<void> {
  await mkdir(join(path, '..'), { recursive: true });
  await writeFile(path, bytes);
}

test('folder with train/ and test/: class names sorted, grayscale from any PNG type, labels in order', async () => {
  const dir = join(root, 'split');
  // class "b" in gray, class "a" in RGB (red: luma 76) and palette images
  await writePng(join(dir, 'train', 'b', '1.png'), encodeTestPng(img(10), 6, 5, { color: 0, depth: 8 }));
  await writePng(join(dir, 'train', 'b', '0.png'), encodeTestPng(img(20), 6, 5, { color: 0, depth: 8, filters: [4] }));
  await writePng(join(dir, 'train', 'a', 'x.png'), encodeTestPng(new Array(30).fill([255, 0, 0]).flat(), 6, 5, { color: 2, depth: 8 }));
  await writePng(join(dir, 'train', 'a', 'y.png'), encodeTestPng(new Array(30).fill(1), 6, 5, { color: 3, depth: 8, palette: [[0, 0, 0], [0, 0, 255]], interlace: true }));
  await writePng(join(dir, 'test', 'a', 'z.png'), encodeTestPng(img(30), 6, 5, { color: 0, depth: 8 }));
  await writePng(join(dir, 'test', 'a', 'w.png'), encodeTestPng(img(40), 6, 5, { color: 0, depth: 8 }));
  await writePng(join(dir, 'test', 'b', 'q.png'), encodeTestPng(new Array(30).fill([200, 128]).flat(), 6, 5, { color: 4, depth: 8 }));
  await writePng(join(dir, 'test', 'b', 'r.png'), encodeTestPng(img(1, 6, 5).map(() => 65535), 6, 5, { color: 0, depth: 16 }));
  await writeFile(join(dir, 'train', 'b', 'notes.txt'), 'ignored');
  const ds = await loadDataset({ name: 'folder', dir });
  assert.equal(ds.name, 'folder');
  assert.deepEqual(ds.classes, ['a', 'b']);
  assert.deepEqual([ds.train.n, ds.test.n, ds.train.height, ds.train.width, ds.train.channels], [4, 4, 5, 6, 1]);
  assert.deepEqual([...ds.train.labels], [0, 0, 1, 1]);
  assert.deepEqual([...ds.test.labels], [0, 0, 1, 1]);
  const first = (split: typeof ds.train, i: number) => split.images[i * 30]!;
  assert.deepEqual([0, 1, 2, 3].map((i) => first(ds.train, i)), [76, 29, 20, 10]); // a/x, a/y, b/0, b/1
  assert.deepEqual([0, 1, 2, 3].map((i) => first(ds.test, i)), [40, 30, 100, 255]); // a/w, a/z, b/q, b/r
  assert.match(ds.source, /2 classes, 4 train \/ 4 test, train\/ and test\/ folders/);
});

test('single folder: a seeded, stratified 1/6 test split that is the same every time', async () => {
  const dir = join(root, 'single');
  const counts = { cat: 12, dog: 30, eel: 5 };
  for (const [c, n] of Object.entries(counts)) {
    for (let i = 0; i < n; i++) await writePng(join(dir, c, `${String(i).padStart(3, '0')}.png`), encodeTestPng(img(i), 6, 5, { color: 0, depth: 8 }));
  }
  const a = await loadDataset({ name: 'folder', dir });
  const b = await loadDataset({ name: 'folder', dir });
  assert.deepEqual(a.classes, ['cat', 'dog', 'eel']);
  assert.deepEqual(classIndices(a.test.labels, 3).map((c) => c.length), [2, 5, 2]); // round(n/6), at least 2
  assert.deepEqual(classIndices(a.train.labels, 3).map((c) => c.length), [10, 25, 3]);
  assert.deepEqual(a.test.images, b.test.images);
  assert.equal(a.train.checksum, b.train.checksum);
  // every image is in exactly one split
  const seen = (s: typeof a.train, c: number) => [...classIndices(s.labels, 3)[c]!].map((i) => s.images[i * 30]!);
  for (const [c, n] of Object.values(counts).entries()) {
    const all = [...seen(a.train, c), ...seen(a.test, c)].sort((x, y) => x - y);
    assert.deepEqual(all, Array.from({ length: n }, (_, i) => i));
  }
  assert.match(a.source, /seeded 1\/6 test fraction/);
});

test('folder data sets refuse what they cannot use, naming the file or folder', async () => {
  const mk = async (name: string, files: Record<string, Uint8Array>) => {
    const dir = join(root, name);
    for (const [p, bytes] of Object.entries(files)) await writePng(join(dir, p), bytes);
    return dir;
  };
  const g = (v: number, w = 6, h = 5) => encodeTestPng(img(v, w, h), w, h, { color: 0, depth: 8 });
  const four = (c: string) => Object.fromEntries([0, 1, 2, 3].map((i) => [`${c}/${i}.png`, g(i)]));
  const reject = async (dir: string, re: RegExp) => assert.rejects(loadDataset({ name: 'folder', dir }), (e: Error) => e instanceof DataError && re.test(e.message));
  await reject(join(root, 'missing'), /no such folder/);
  await reject(await mk('one-class', four('only')), /found 1 class folder; a folder data set needs at least 2/);
  await reject(await mk('few', { ...four('a'), 'b/0.png': g(0), 'b/1.png': g(1) }), /class "b" has 2 PNG images; every class needs at least 4 \(2 to train on, 2 to test on\)/);
  await reject(await mk('sizes', { ...four('a'), ...four('b'), 'b/9.png': g(0, 7, 5) }), /b\/9\.png is 7x5, but a\/0\.png \(the first image\) is 6x5/);
  const broken = g(3).slice(0, 40);
  await reject(await mk('broken', { ...four('a'), ...four('b'), 'b/2.png': broken }), /b\/2\.png: truncated/);
  await reject(
    await mk('mismatch', { 'train/a/0.png': g(0), 'train/a/1.png': g(1), 'train/b/0.png': g(0), 'train/b/1.png': g(1), 'test/a/0.png': g(0), 'test/a/1.png': g(1), 'test/c/0.png': g(0), 'test/c/1.png': g(1) }),
    /train\/ and test\/ must hold the same class folders; test\/ lacks "b"; train\/ lacks "c"/,
  );
  const jpgs = await mk('jpg', four('a'));
  await mkdir(join(jpgs, 'b'));
  await writeFile(join(jpgs, 'b', 'x.jpg'), 'not read');
  await reject(jpgs, /class "b" has 0 PNG images.*only \.png files are read; 1 other file was ignored/);
});
