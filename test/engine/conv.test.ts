import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createHash } from 'node:crypto';
import type { Dataset, ImageSplit } from '../../src/data/dataset.ts';
import { loadMnist } from '../../src/data/mnist.ts';
import { initBackend } from '../../src/engine/backend.ts';
import { tf } from '../../src/engine/tfjs.ts';
import { convReluPool } from '../../src/engine/conv.ts';
import { Rng } from '../../src/rng.ts';
import { resolveConfig } from '../../src/train/config.ts';
import { Training } from '../../src/train/trainer.ts';

/** Gradients of Σ c ⊙ block2(block1(x)) on the current backend. */
function blockGrads(x: Float32Array, xs: number[], ws: Float32Array[], shapes: number[][], c: Float32Array, cs: number[]): Float32Array[] {
  return tf.tidy(() => {
    const vars = ws.map((w, i) => tf.tensor(w, shapes[i]));
    const f = (w1: tf.Tensor, b1: tf.Tensor, w2: tf.Tensor, b2: tf.Tensor) => {
      const h = convReluPool(tf.tensor4d(x, xs as [number, number, number, number]), w1 as tf.Tensor4D, b1 as tf.Tensor1D, { inputGradient: false });
      return tf.sum(tf.mul(convReluPool(h, w2 as tf.Tensor4D, b2 as tf.Tensor1D), tf.tensor(c, cs)));
    };
    return tf.grads(f)(vars).map((g) => g.dataSync() as Float32Array);
  });
}

test('conv blocks: the wasm backend computes the same gradients as the cpu backend (zero windows included)', async () => {
  const rng = new Rng(8);
  const xs = [4, 16, 17, 1];
  const x = Float32Array.from({ length: 4 * 16 * 17 }, () => rng.next());
  x.fill(0, 0, 16 * 17); // one all-black image: every window of its first block is 0
  const shapes = [[3, 3, 1, 6], [6], [3, 3, 6, 5], [5]];
  const ws = shapes.map((s) => Float32Array.from({ length: s.reduce((a, b) => a * b, 1) }, () => (s.length === 1 ? 0.05 : 0.5) * (2 * rng.next() - 1)));
  const cs = [4, 2, 2, 5];
  const c = Float32Array.from({ length: 4 * 2 * 2 * 5 }, () => 2 * rng.next() - 1);
  await initBackend('cpu');
  const ref = blockGrads(x, xs, ws, shapes, c, cs);
  await initBackend('wasm');
  const got = blockGrads(x, xs, ws, shapes, c, cs);
  // the inference path (fused kernels, no argmax) gives what the training path gives
  const forward = (taped: boolean): Float32Array => {
    const f = (w1: tf.Tensor, b1: tf.Tensor, w2: tf.Tensor, b2: tf.Tensor) => {
      const h = convReluPool(tf.tensor4d(x, xs as [number, number, number, number]), w1 as tf.Tensor4D, b1 as tf.Tensor1D, { inputGradient: false });
      return convReluPool(h, w2 as tf.Tensor4D, b2 as tf.Tensor1D);
    };
    return tf.tidy(() => {
      const params = ws.map((w, i) => tf.tensor(w, shapes[i]));
      if (!taped) return f(params[0]!, params[1]!, params[2]!, params[3]!).dataSync() as Float32Array;
      let out: Float32Array | undefined;
      tf.grads((w1, b1, w2, b2) => {
        const y = f(w1!, b1!, w2!, b2!);
        out = y.dataSync() as Float32Array;
        return tf.sum(y);
      })(params);
      return out!;
    });
  };
  const plain = forward(false);
  const taped = forward(true);
  for (let i = 0; i < plain.length; i++) assert.ok(Math.abs(plain[i]! - taped[i]!) < 1e-5, `output ${i}: ${plain[i]} vs ${taped[i]}`);
  await initBackend('cpu');
  ref.forEach((r, i) => {
    let scale = 0;
    for (const v of r) scale = Math.max(scale, Math.abs(v));
    assert.ok(scale > 0, `gradient ${i} is not all zero`);
    for (let j = 0; j < r.length; j++) assert.ok(Math.abs(r[j]! - got[i]![j]!) <= 1e-4 * scale, `gradient ${i}[${j}]: cpu ${r[j]}, wasm ${got[i]![j]}`);
  });
});

function head(split: ImageSplit, n: number): ImageSplit {
  const dim = split.height * split.width * split.channels;
  const images = split.images.slice(0, n * dim);
  const labels = split.labels.slice(0, n);
  const checksum = createHash('sha256').update(images).update(labels).digest('hex');
  return { ...split, images, labels, n, checksum };
}

test('a short CNN training on a slice of MNIST (wasm) lowers the loss', async () => {
  await initBackend('wasm');
  const full = await loadMnist();
  const ds: Dataset = { ...full, train: head(full.train, 600), test: head(full.test, 200) };
  const config = resolveConfig({ base: 'cnn', loss: 'contrastive', epochs: 3, batchSize: 32, trainPairs: 160, embeddingDim: 16, engine: 'tfjs' });
  const t = new Training(ds, config);
  try {
    assert.equal(t.network.kind, 'cnn');
    const logs = [t.runEpoch()!, t.runEpoch()!, t.runEpoch()!];
    assert.ok(logs.every((l) => Number.isFinite(l.loss)));
    assert.ok(logs[2]!.loss < 0.8 * logs[0]!.loss, `loss ${logs.map((l) => l.loss.toFixed(4)).join(' -> ')}`);
    const emb = t.embed(ds.test, [0, 1, 2]);
    assert.equal(emb.length, 3 * 16);
  } finally {
    t.dispose();
  }
});
