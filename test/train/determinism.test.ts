import assert from 'node:assert/strict';
import { before, test } from 'node:test';
import type { Dataset } from '../../src/data/dataset.ts';
import { loadMnist } from '../../src/data/mnist.ts';
import { initBackend } from '../../src/engine/backend.ts';
import { tf } from '../../src/engine/tfjs.ts';
import { TrainingError } from '../../src/errors.ts';
import { resolveConfig } from '../../src/train/config.ts';
import { Training } from '../../src/train/trainer.ts';

let ds: Dataset;
before(async () => {
  await initBackend('wasm');
  ds = await loadMnist();
});

const small = { epochs: 2, trainPairs: 1024, testPairs: 1000, batchSize: 128 };

function train(loss: string, seed: number): { losses: number[]; weights: Float32Array[] } {
  const t = new Training(ds, resolveConfig({ ...small, loss, seed }));
  const losses: number[] = [];
  for (let e = 0; e < 2; e++) t.runEpoch((b) => void losses.push(b.loss));
  const weights = t.getWeights().map((w) => w.data);
  t.dispose();
  return { losses, weights };
}

test('the same seed twice gives bit-identical losses and weights', () => {
  for (const loss of ['contrastive', 'yukawa']) {
    const a = train(loss, 3);
    const b = train(loss, 3);
    assert.deepEqual(a.losses, b.losses, `${loss} losses`);
    a.weights.forEach((w, i) => assert.deepEqual(w, b.weights[i], `${loss} weight ${i}`));
    const c = train(loss, 4);
    assert.notDeepEqual(a.losses, c.losses, 'another seed trains differently');
  }
});

test('every loss of one seed starts from the same initial weights and sees the same pairs', () => {
  const a = new Training(ds, resolveConfig({ ...small, loss: 'contrastive', seed: 9 }));
  const b = new Training(ds, resolveConfig({ ...small, loss: 'yukawa', seed: 9 }));
  a.getWeights().forEach((w, i) => assert.deepEqual(w.data, b.getWeights()[i]!.data));
  assert.deepEqual(a.trainPairs.a, b.trainPairs.a);
  assert.deepEqual(a.testPairs.b, b.testPairs.b);
  a.dispose();
  b.dispose();
});

test('training does not leak tensors across epochs', () => {
  const t = new Training(ds, resolveConfig({ ...small, epochs: 3, loss: 'yukawa' }));
  t.runEpoch();
  const after1 = tf.memory().numTensors;
  t.runEpoch();
  t.runEpoch();
  assert.equal(tf.memory().numTensors, after1);
  t.dispose();
});

test('a diverging run stops with the epoch, batch and a hint', () => {
  const t = new Training(ds, resolveConfig({ ...small, loss: 'yukawa', learningRate: 1e12, optimizer: 'sgd' }));
  assert.throws(
    () => {
      t.runEpoch();
      t.runEpoch();
    },
    (e: unknown) => e instanceof TrainingError && /diverged: .* epoch \d+(, batch \d+)?.*lower the learning rate/.test(e.message),
  );
  t.dispose();
});
