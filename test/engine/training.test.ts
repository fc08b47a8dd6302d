/**
 * Training through both engines: the tensor count stays flat over epochs (no leaks, either
 * engine, with and without a miner), a run's checkpoint moves between engines, and the two
 * engines' epochs agree. Runs on the fallback too (then both "engines" are TF.js, and it says so).
 */
import assert from 'node:assert/strict';
import { before, test } from 'node:test';
import { initBackend } from '../../src/engine/backend.ts';
import { tf } from '../../src/engine/tfjs.ts';
import { nativeStatus } from '../../src/engine/native.ts';
import { resolveConfig, type TrainConfig } from '../../src/train/config.ts';
import { Training } from '../../src/train/trainer.ts';
import { syntheticDataset } from './synthetic.ts';

const native = nativeStatus().available;
const fast = native ? 'native' : 'tfjs';

before(async () => {
  await initBackend('wasm');
});

const ds = syntheticDataset(400, 200);

function config(extra: Partial<TrainConfig>): TrainConfig {
  return resolveConfig({ trainPairs: 640, testPairs: 300, batchSize: 64, ...extra });
}

test('--train-pairs limits a mined epoch to about twice as many images', () => {
  const full = new Training(ds, config({ engine: 'tfjs', loss: 'triplet', miner: 'batch-hard', trainPairs: 0, batchSize: 40 }));
  const sliced = new Training(ds, config({ engine: 'tfjs', loss: 'triplet', miner: 'batch-hard', trainPairs: 60, batchSize: 40 }));
  const count = (t: Training): number => {
    let n = 0;
    t.runEpoch((b) => void (n = b.batches));
    t.dispose();
    return n;
  };
  assert.equal(count(full), 10); // 400 images in batches of 10 classes x 4 images
  assert.equal(count(sliced), 3); // 120 images
});

test(`tensor count flat over epochs: tfjs and ${fast} engines, pairs, triplets, mined`, (t) => {
  if (!native) t.diagnostic(`native engine not available (${nativeStatus().detail}): both runs use TF.js`);
  const cases: Partial<TrainConfig>[] = [
    { engine: 'tfjs', loss: 'contrastive' },
    { engine: fast, loss: 'contrastive' },
    { engine: fast, loss: 'triplet' },
    { engine: fast, loss: 'triplet', miner: 'batch-hard' },
    { engine: fast, loss: 'custom', lossParams: { pos: 'd^2', neg: 'exp(-10*d)/d' } },
  ];
  for (const c of cases) {
    const tr = new Training(ds, config(c));
    assert.equal(tr.engine.name, c.engine);
    tr.runEpoch();
    const after1 = tf.memory().numTensors;
    tr.runEpoch();
    tr.runEpoch();
    assert.equal(tf.memory().numTensors, after1, `${JSON.stringify(c)}: tensors leaked`);
    const h = tr.history;
    assert.equal(h[2]!.engine, c.engine);
    tr.dispose();
  }
});

test(`the ${fast} engine trains like the TF.js engine (same history to float tolerance)`, () => {
  const a = new Training(ds, config({ engine: 'tfjs', loss: 'contrastive', seed: 3 }));
  const b = new Training(ds, config({ engine: fast, loss: 'contrastive', seed: 3 }));
  for (let e = 0; e < 2; e++) {
    const la = a.runEpoch()!;
    const lb = b.runEpoch()!;
    // RMSprop turns rounding-level gradient differences into weight differences that grow over
    // steps (see native.test.ts): epochs agree to 1%, not to 1e-5
    assert.ok(Math.abs(la.loss - lb.loss) <= 1e-2 * la.loss, `epoch ${e + 1}: loss ${la.loss} vs ${lb.loss}`);
    assert.ok(Math.abs(la.testAccuracy - lb.testAccuracy) <= 0.01, `epoch ${e + 1}: accuracy ${la.testAccuracy} vs ${lb.testAccuracy}`);
  }
  a.dispose();
  b.dispose();
});

test('a checkpoint moves between engines and continues exactly as on its own engine', () => {
  const c = config({ engine: fast, loss: 'yukawa', seed: 1, optimizer: 'adam' });
  const a = new Training(ds, c);
  a.runEpoch();
  const state = a.getState();
  // the same engine, restored: bit-identical continuation
  const b = new Training(ds, c);
  b.setState(state);
  const la = a.runEpoch()!;
  const lb = b.runEpoch()!;
  assert.equal(lb.loss, la.loss);
  b.getWeights().forEach((w, i) => assert.deepEqual(w.data, a.getWeights()[i]!.data));
  // the other engine, restored from the same checkpoint: float-close continuation
  const other = new Training(ds, { ...c, engine: 'tfjs' });
  other.setState(state);
  const lo = other.runEpoch()!;
  assert.equal(other.epoch, 2);
  assert.ok(Math.abs(lo.loss - la.loss) <= 1e-2 * la.loss, `loss ${lo.loss} vs ${la.loss}`);
  a.dispose();
  b.dispose();
  other.dispose();
});
