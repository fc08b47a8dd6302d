/**
 * A small synthetic data set for engine tests (not a test file itself): 28x28 byte images whose
 * pixels depend on the class (so training moves), a few hundred per split.
 */
import type { Dataset, ImageSplit } from '../../src/data/dataset.ts';
import { Rng } from '../../src/rng.ts';

export function syntheticSplit(n: number, seed: number, side = 28): ImageSplit {
  const r = new Rng(seed);
  const dim = side * side;
  const images = new Uint8Array(n * dim);
  const labels = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    const c = i % 10;
    labels[i] = c;
    for (let j = 0; j < dim; j++) {
      // a class-specific band plus noise; many exact zeros, as in MNIST
      const band = Math.floor(j / side) % 10 === c ? 180 : 0;
      const noise = r.next() < 0.3 ? r.int(120) : 0;
      images[i * dim + j] = Math.min(255, band + noise);
    }
  }
  return { images, labels, n, height: side, width: side, channels: 1, checksum: `synthetic-${seed}` };
}

export function syntheticDataset(nTrain = 400, nTest = 200): Dataset {
  return {
    name: 'synthetic',
    classes: Array.from({ length: 10 }, (_, i) => String(i)),
    train: syntheticSplit(nTrain, 1),
    test: syntheticSplit(nTest, 2),
    source: 'test/engine/synthetic.ts',
  };
}

/** max |a − b| / max |a| over a tensor: the agreement measure of the engine tests */
export function relDiff(a: Float32Array, b: Float32Array): number {
  let m = 0;
  let d = 0;
  for (let i = 0; i < a.length; i++) {
    m = Math.max(m, Math.abs(a[i]!));
    d = Math.max(d, Math.abs(a[i]! - b[i]!));
  }
  return m === 0 ? d : d / m;
}
