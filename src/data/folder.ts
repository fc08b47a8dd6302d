import { createHash } from 'node:crypto';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { DataError } from '../errors.ts';
import { Rng } from '../rng.ts';
import type { Dataset, ImageSplit } from './dataset.ts';
import { readPng, toGray } from './png.ts';

/**
 * How a single folder of class folders is split: per class, a seeded shuffle puts
 * round(n / 6) images (at least 2, leaving at least 2) into the test split, MNIST's proportion
 * (10,000 of 70,000). The seed is fixed, so every run sees the same split.
 */
export const FOLDER_TEST_FRACTION = 1 / 6;
export const FOLDER_SPLIT_SEED = 0;

const MAX_CLASSES = 256; // labels are stored as bytes
// A split's grayscale images live in one Uint8Array.
const MAX_SPLIT_BYTES = 2 ** 31 - 1;

interface Item {
  path: string;
  label: number;
}

/**
 * A data set of PNG images in one folder per class. Two layouts:
 *   DIR/train/<class>/*.png and DIR/test/<class>/*.png: the given split (both must hold the same
 *     class folders);
 *   DIR/<class>/*.png: split per class by a seeded 1/6 test fraction (FOLDER_TEST_FRACTION).
 * Class names are the sub-folder names, sorted (by code point, the same on every machine); files
 * that are not .png and hidden entries are ignored. Images are converted to 8-bit grayscale (BT.601
 * luma, alpha over black) and must all have one size. Within a split, images are ordered by class,
 * then file name.
 */
export async function loadFolderDataset(dir: string): Promise<Dataset> {
  if (!existsSync(dir)) throw new DataError(`${dir}: no such folder`);
  if (!statSync(dir).isDirectory()) throw new DataError(`${dir}: not a folder (--data folder needs a folder of class folders)`);
  const hasSplits = isDir(join(dir, 'train')) && isDir(join(dir, 'test'));
  let classes: string[];
  let trainItems: Item[];
  let testItems: Item[];
  let layout: string;
  if (hasSplits) {
    classes = classFolders(join(dir, 'train'));
    const testClasses = classFolders(join(dir, 'test'));
    const missing = classes.filter((c) => !testClasses.includes(c));
    const extra = testClasses.filter((c) => !classes.includes(c));
    if (missing.length || extra.length) {
      throw new DataError(
        `${dir}: train/ and test/ must hold the same class folders` +
          (missing.length ? `; test/ lacks ${list(missing)}` : '') +
          (extra.length ? `; train/ lacks ${list(extra)}` : ''),
      );
    }
    trainItems = listImages(join(dir, 'train'), classes, 2);
    testItems = listImages(join(dir, 'test'), classes, 2);
    layout = 'train/ and test/ folders';
  } else {
    classes = classFolders(dir);
    const all = listImages(dir, classes, 4);
    ({ train: trainItems, test: testItems } = splitItems(all, classes.length));
    layout = 'one folder, split per class with a seeded 1/6 test fraction';
  }
  const size: { w: number; h: number; first: string } = { w: 0, h: 0, first: '' };
  const train = await readSplit(trainItems, size, dir);
  const test = await readSplit(testItems, size, dir);
  return {
    name: 'folder',
    classes,
    train,
    test,
    source: `PNG images in ${dir} (${classes.length} classes, ${train.n} train / ${test.n} test, ${layout})`,
  };
}

function isDir(p: string): boolean {
  return existsSync(p) && statSync(p).isDirectory();
}

function list(names: string[]): string {
  const shown = names.slice(0, 5).map((n) => `"${n}"`).join(', ');
  return names.length > 5 ? `${shown} and ${names.length - 5} more` : shown;
}

const byCodePoint = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

/** Sorted names of the visible sub-folders: the classes. */
function classFolders(dir: string): string[] {
  const names = readdirSync(dir, { withFileTypes: true })
    .filter((e) => !e.name.startsWith('.') && (e.isDirectory() || (e.isSymbolicLink() && isDir(join(dir, e.name)))))
    .map((e) => e.name)
    .sort(byCodePoint);
  if (names.length < 2) {
    throw new DataError(
      `${dir}: found ${names.length} class folder${names.length === 1 ? '' : 's'}; a folder data set needs at least 2 (DIR/<class>/*.png, or DIR/train/<class>/ and DIR/test/<class>/)`,
    );
  }
  if (names.length > MAX_CLASSES) throw new DataError(`${dir}: ${names.length} class folders; at most ${MAX_CLASSES} classes are supported`);
  return names;
}

/** The .png files of every class folder, sorted by name; each class needs at least `min`. */
function listImages(dir: string, classes: string[], min: number): Item[] {
  const items: Item[] = [];
  classes.forEach((c, label) => {
    const entries = readdirSync(join(dir, c), { withFileTypes: true }).filter((e) => !e.name.startsWith('.') && !e.isDirectory());
    const pngs = entries.filter((e) => /\.png$/i.test(e.name)).map((e) => e.name).sort(byCodePoint);
    if (pngs.length < min) {
      const others = entries.length - pngs.length;
      throw new DataError(
        `${join(dir, c)}: class "${c}" has ${pngs.length} PNG image${pngs.length === 1 ? '' : 's'}; every class needs at least ${min}` +
          (min === 4 ? ' (2 to train on, 2 to test on)' : '') +
          (others > 0 ? ` (only .png files are read; ${others} other file${others === 1 ? ' was' : 's were'} ignored)` : ''),
      );
    }
    for (const f of pngs) items.push({ path: join(dir, c, f), label });
  });
  return items;
}

/** The seeded per-class split of a single folder (FOLDER_TEST_FRACTION). */
export function splitItems<T extends { label: number }>(items: T[], numClasses: number, seed = FOLDER_SPLIT_SEED): { train: T[]; test: T[] } {
  const rng = new Rng(seed);
  const train: T[] = [];
  const test: T[] = [];
  for (let c = 0; c < numClasses; c++) {
    const mine = items.filter((it) => it.label === c);
    const n = mine.length;
    const nTest = Math.min(n - 2, Math.max(2, Math.round(n * FOLDER_TEST_FRACTION)));
    const order = rng.shuffle(Int32Array.from({ length: n }, (_, i) => i));
    const isTest = new Uint8Array(n);
    for (let i = 0; i < nTest; i++) isTest[order[i]!] = 1;
    // keep the folder's (sorted) order within each split
    mine.forEach((it, i) => (isTest[i] ? test : train).push(it));
  }
  return { train, test };
}

/** Read, decode and check a list of images into one split. */
async function readSplit(items: Item[], size: { w: number; h: number; first: string }, root: string): Promise<ImageSplit> {
  const n = items.length;
  let images: Uint8Array | undefined;
  const labels = new Uint8Array(n);
  // One image at a time: a decoded image can be tens of MB even when its file is small.
  for (let s = 0; s < n; s++) {
    const it = items[s]!;
    const img = await readPng(it.path);
    if (size.first === '') {
      size.w = img.width;
      size.h = img.height;
      size.first = it.path;
    } else if (img.width !== size.w || img.height !== size.h) {
      throw new DataError(
        `${it.path} is ${img.width}x${img.height}, but ${relative(root, size.first)} (the first image) is ${size.w}x${size.h}: ` +
          'every image of a folder data set must have the same size',
      );
    }
    if (!images) {
      if (n * size.w * size.h > MAX_SPLIT_BYTES) {
        throw new DataError(
          `${root}: ${n} images of ${size.w}x${size.h} pixels need ${n * size.w * size.h} bytes, more than a split may hold (${MAX_SPLIT_BYTES}); use smaller images`,
        );
      }
      images = new Uint8Array(n * size.w * size.h);
    }
    images.set(toGray(img), s * size.w * size.h);
    labels[s] = it.label;
  }
  images ??= new Uint8Array(0);
  const hash = createHash('sha256');
  hash.update(images);
  hash.update(labels);
  return { images, labels, n, height: size.h, width: size.w, channels: 1, checksum: hash.digest('hex') };
}
