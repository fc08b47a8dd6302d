import { createHash } from 'node:crypto';
import { DataError } from '../errors.ts';
import { readIdx } from './idx.ts';

/**
 * A labelled image data set split, kept as bytes (scaled to [0, 1] only when batched):
 * 60,000 MNIST images are 47 MB as bytes, 188 MB as float32.
 */
export interface ImageSplit {
  /** [n, height*width*channels] row-major, 0..255 */
  images: Uint8Array;
  labels: Uint8Array;
  n: number;
  height: number;
  width: number;
  channels: number;
  /** sha256 of the image and label bytes, recorded in run manifests */
  checksum: string;
}

export interface Dataset {
  name: string;
  classes: string[];
  train: ImageSplit;
  test: ImageSplit;
  /** where it came from, for the manifest and the report's credits */
  source: string;
}

export type SplitName = 'train' | 'test';

/** Read an IDX image file and its label file into one split, checking they fit together. */
export async function loadIdxSplit(imagesPath: string, labelsPath: string): Promise<ImageSplit> {
  const [img, lab] = await Promise.all([readIdx(imagesPath), readIdx(labelsPath)]);
  if (img.dims.length !== 3) {
    throw new DataError(`${imagesPath}: expected an image file (3 dims: count x height x width), found ${img.dims.length} dims`);
  }
  if (lab.dims.length !== 1) {
    throw new DataError(`${labelsPath}: expected a label file (1 dim), found ${lab.dims.length} dims`);
  }
  const [n, h, w] = img.dims as [number, number, number];
  // an empty split or a 0-pixel image passes the header's size check and failed later, inside the engine
  if (n === 0) throw new DataError(`${imagesPath}: holds no images`);
  if (h === 0 || w === 0) throw new DataError(`${imagesPath}: images of ${h}x${w} pixels; an image needs at least 1x1`);
  if (lab.dims[0] !== n) {
    throw new DataError(`${imagesPath} has ${n} images but ${labelsPath} has ${lab.dims[0]} labels`);
  }
  const hash = createHash('sha256');
  hash.update(img.data);
  hash.update(lab.data);
  return { images: img.data, labels: lab.data, n, height: h, width: w, channels: 1, checksum: hash.digest('hex') };
}

/** The number of classes, checked to be a contiguous range 0..k-1 as the pair recipe needs. */
export function classCount(labels: Uint8Array): number {
  let max = 0;
  for (const l of labels) if (l > max) max = l;
  const seen = new Uint8Array(max + 1);
  for (const l of labels) seen[l] = 1;
  if (seen.includes(0)) throw new DataError(`labels are not a contiguous range 0..${max}`);
  return max + 1;
}

/** Images [from, from + count) of a split as float32 in [0, 1]. */
export function imagesAsFloat(split: ImageSplit, indices: ArrayLike<number>, out?: Float32Array): Float32Array {
  const dim = split.height * split.width * split.channels;
  const res = out ?? new Float32Array(indices.length * dim);
  for (let r = 0; r < indices.length; r++) {
    const src = indices[r]! * dim;
    const dst = r * dim;
    for (let j = 0; j < dim; j++) res[dst + j] = split.images[src + j]! / 255;
  }
  return res;
}
