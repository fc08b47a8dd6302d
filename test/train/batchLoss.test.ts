/**
 * Batch losses in training: the native and TF.js engines agree step by step; the class weights
 * of arcface/cosface/proxy-anchor learn with their own optimizer and learning rate, go into the
 * checkpoint, and a run of 1 epoch + resume 1 epoch ends byte-identical to 2 straight epochs;
 * accuracies are at the best threshold and say so.
 */
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { before, test } from 'node:test';
import { initBackend } from '../../src/engine/backend.ts';
import { nativeStatus } from '../../src/engine/native.ts';
import { evaluateTraining } from '../../src/eval/evaluate.ts';
import { lossOnBatch } from '../../src/losses/registry.ts';
import type { NamedTensor } from '../../src/model/weights.ts';
import { resolveConfig, type TrainConfig } from '../../src/train/config.ts';
import { embedSplit, trainRun } from '../../src/train/run.ts';
import { RunDir } from '../../src/train/runDir.ts';
import { writeSafetensors } from '../../src/io/safetensors.ts';
import { bestThresholdAccuracy, Training } from '../../src/train/trainer.ts';
import { relDiff, syntheticDataset } from '../engine/synthetic.ts';

const native = nativeStatus().available;
const fast = native ? 'native' : 'tfjs';

before(async () => {
  await initBackend('wasm');
});

const ds = syntheticDataset(400, 200);

function config(extra: Partial<TrainConfig>): TrainConfig {
  return resolveConfig({ trainPairs: 320, testPairs: 200, batchSize: 40, ...extra });
}


interface Snapshot {
  weights: NamedTensor[];
  optimizer: NamedTensor[];
  classWeights?: NamedTensor[];
  loss: number;
  /** dL/dW of the step (engines made with keepGradients) */
  grads: NamedTensor[];
}

/** Every step of one epoch: the state it started from and its loss. */
function recordSteps(t: Training): Snapshot[] {
  const out: Snapshot[] = [];
  const step = t.engine.step.bind(t.engine);
  t.engine.step = (split, batch, rng, next) => {
    const snap: Snapshot = { weights: t.engine.getWeights(), optimizer: t.engine.getOptimizerState(), classWeights: t.classWeights?.getState(), loss: 0, grads: [] };
    const r = step(split, batch, rng, next);
    snap.loss = r.loss;
    snap.grads = t.engine.lastGradients()!;
    out.push(snap);
    return r;
  };
  t.runEpoch();
  return out;
}

for (const loss of ['multi-similarity', 'nt-xent', 'supcon', 'circle', 'arcface', 'cosface', 'proxy-anchor']) {
  test(`${loss}: native and TF.js engines agree per step (1e-5 relative)`, (t) => {
    if (!native) {
      t.skip(`native engine not available: ${nativeStatus().detail}`);
      return;
    }
    // each native step starts from the TF.js run's state at that step (weights, optimizer, class
    // weights; the dropout stream runs alike), so each step's loss is compared on its own
    const a = new Training(ds, config({ engine: 'tfjs', loss }), undefined, { keepGradients: true });
    const ref = recordSteps(a);
    a.dispose();
    assert.equal(ref.length, 10); // 400 images in class-balanced batches of 40
    const b = new Training(ds, config({ engine: 'native', loss, threads: 1 }), undefined, { keepGradients: true });
    let i = 0;
    const step = b.engine.step.bind(b.engine);
    b.engine.step = (split, batch, rng, next) => {
      const s = ref[i]!;
      b.engine.setWeights(s.weights);
      b.engine.setOptimizerState(s.optimizer);
      if (s.classWeights) b.classWeights!.setState(s.classWeights);
      const r = step(split, batch, rng, next);
      assert.ok(Math.abs(r.loss - s.loss) <= 1e-5 * Math.abs(s.loss), `${loss} step ${i + 1}: tfjs ${s.loss}, native ${r.loss}`);
      // the gradients the host loss sent back through each engine
      b.engine.lastGradients()!.forEach((g, k) => {
        const d = relDiff(s.grads[k]!.data, g.data);
        assert.ok(d < 1e-4, `${loss} step ${i + 1}: gradient of ${g.name} differs by ${d} (relative)`);
      });
      i++;
      return r;
    };
    b.runEpoch();
    assert.equal(i, 10);
    // and over the whole epoch without re-syncing, the trajectories stay close
    const c = new Training(ds, config({ engine: 'native', loss, threads: 1 }));
    const free = c.runEpoch()!;
    assert.ok(Math.abs(free.loss - a.history[0]!.loss) <= 1e-3 * a.history[0]!.loss, `${loss} epoch loss: tfjs ${a.history[0]!.loss}, native ${free.loss}`);
    b.dispose();
    c.dispose();
  });
}

test('class weights: own optimizer and learning rate (default 100x), they move, the loss falls', () => {
  const t = new Training(ds, config({ engine: fast, loss: 'proxy-anchor', learningRate: 0.002 }));
  assert.ok(t.classWeights);
  assert.equal(t.classWeights.config['learningRate'], 0.2);
  assert.equal(t.classWeights.config['name'], 'rmsprop');
  const w0 = t.classWeights.weights.slice();
  const first = t.runEpoch()!;
  const second = t.runEpoch()!;
  assert.notDeepEqual(t.classWeights.weights, w0);
  assert.ok(second.loss < first.loss, `loss ${first.loss} -> ${second.loss}`);
  assert.equal(second.accuracyAt, 'best-threshold');
  t.dispose();
  const given = new Training(ds, config({ engine: fast, loss: 'cosface', lossParams: { 'proxy-lr': 0.05 }, optimizer: 'adam' }));
  assert.equal(given.classWeights!.config['learningRate'], 0.05);
  assert.equal(given.classWeights!.config['name'], 'adam');
  given.dispose();
  const none = new Training(ds, config({ engine: fast, loss: 'supcon' }));
  assert.equal(none.classWeights, null);
  none.dispose();
});

test('the trainer hands the batch loss exactly its embeddings and labels, and backpropagates its gradient', () => {
  // one step by hand: the loss of lossOnBatch on the engine's own embeddings (no dropout) equals the trainer's step loss
  const t = new Training(ds, config({ engine: 'tfjs', loss: 'multi-similarity', dropout: 0 }));
  const batches: { rows: Int32Array; loss: number }[] = [];
  const step = t.engine.step.bind(t.engine);
  t.engine.step = (split, batch, rng, next) => {
    const emb = t.engine.embed(split, batch.rows);
    const labels = Int32Array.from(batch.rows, (r) => split.labels[r]!);
    batches.push({ rows: batch.rows.slice(), loss: lossOnBatch('multi-similarity', emb, labels, 128).loss });
    const out = step(split, batch, rng, next);
    assert.ok(Math.abs(out.loss - batches.at(-1)!.loss) < 1e-5 * batches.at(-1)!.loss, `${out.loss} vs ${batches.at(-1)!.loss}`);
    return out;
  };
  t.runEpoch();
  assert.equal(batches.length, 10);
  // class-balanced: 10 classes x 4 images per batch of 40
  const labels = Array.from(batches[0]!.rows, (r) => ds.train.labels[r]!);
  assert.deepEqual([...new Set(labels)].sort((a, b) => a - b), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  t.dispose();
});

for (const optimizer of ['rmsprop', 'adam']) {
  test(`proxy-anchor (${optimizer}): 1 epoch, then resumed from its run folder for 1 more = 2 straight epochs, byte for byte`, async () => {
    const c = config({ engine: fast, loss: 'proxy-anchor', optimizer, seed: 3, epochs: 2 });
    const root = mkdtempSync(join(tmpdir(), 'batchloss-'));
    await trainRun({ config: c, out: join(root, 'straight'), dataset: ds });
    await trainRun({ config: { ...c, epochs: 1 }, out: join(root, 'resumed'), dataset: ds });
    const half = await new RunDir(join(root, 'resumed')).readCheckpoint();
    assert.ok(half.lossState?.some((t) => t.name === 'classWeights'), 'the checkpoint holds the class weights');
    await trainRun({ config: { epochs: 2 }, out: join(root, 'resumed'), dataset: ds, resume: true });
    const a = await new RunDir(join(root, 'straight')).readCheckpoint();
    const b = await new RunDir(join(root, 'resumed')).readCheckpoint();
    a.weights.forEach((w, i) => assert.deepEqual(b.weights[i]!.data, w.data, `network tensor ${w.name}`));
    assert.deepEqual(b.lossState, a.lossState, 'class weights and their optimizer state');
    assert.deepEqual(b.history.map((h) => h.loss), a.history.map((h) => h.loss));
    // the manifest keeps proxy-lr as configured (0: the default) and records the rate used,
    // 100x the optimizer's default learning rate (Keras: 0.001 for rmsprop and adam)
    for (const run of ['straight', 'resumed']) {
      const loss = new RunDir(join(root, run)).readManifest().loss;
      assert.equal(loss.params['proxy-lr'], 0);
      assert.deepEqual(loss.resolved, { 'proxy-lr': 0.1 }, run);
    }
    // a resume with another --lr: the default rate follows it, and the manifest says so
    await trainRun({ config: { epochs: 3, learningRate: 0.004 }, out: join(root, 'resumed'), dataset: ds, resume: true });
    const m = new RunDir(join(root, 'resumed')).readManifest();
    assert.equal(m.loss.params['proxy-lr'], 0);
    assert.deepEqual(m.loss.resolved, { 'proxy-lr': 0.4 });
    // the rate the default resolved to, given as proxy-lr, is still another setting: refused
    await assert.rejects(
      trainRun({ config: { epochs: 4, lossParams: { 'proxy-lr': 0.4 } }, out: join(root, 'resumed'), dataset: ds, resume: true }),
      /was trained with proxy-lr \(default\), and a resumed run keeps it .*drop --proxy-lr 0\.4/,
    );
  });
}

test('a checkpoint without class weights is refused for a loss that has them', async () => {
  const plain = new Training(ds, config({ engine: fast, loss: 'supcon' }));
  const s = plain.getState();
  plain.dispose();
  const t = new Training(ds, config({ engine: fast, loss: 'arcface' }));
  assert.throws(() => t.setState(s), /no class weights/);
  t.dispose();
});

test('batch losses refuse a miner; evaluation reports the best threshold and says so', () => {
  assert.throws(() => new Training(ds, config({ engine: fast, loss: 'circle', miner: 'batch-hard' })), /drop --miner/);
  const t = new Training(ds, config({ engine: fast, loss: 'circle' }));
  const log = t.runEpoch()!;
  const e = evaluateTraining(t, { retrieval: false });
  assert.equal(e.pairs.thresholdFrom, 'best');
  assert.equal(e.pairs.accuracy, e.pairs.best.accuracy);
  assert.equal(log.testAccuracy, e.pairs.best.accuracy);
  // embeddings are L2-normalised for every measure
  const emb = t.embed(t.dataset.test, [0, 1]);
  const norm = Math.hypot(...emb.subarray(0, 128));
  assert.ok(Math.abs(norm - 1) < 1e-6, `norm ${norm}`);
  t.dispose();
});

test('bestThresholdAccuracy: brute force over every cut', () => {
  const d = Float32Array.of(0.1, 0.4, 0.4, 0.2, 0.9, 0.5, 0.3, 0.7);
  const y = Uint8Array.of(1, 0, 1, 1, 0, 0, 0, 1);
  let best = 0;
  for (const t of [-1, ...d, 2]) {
    for (const eps of [0, 1e-9]) {
      let c = 0;
      d.forEach((v, i) => (c += (v < t + eps ? 1 : 0) === y[i] ? 1 : 0));
      best = Math.max(best, c / d.length);
    }
  }
  assert.equal(bestThresholdAccuracy(d, y), best);
});

test('embed of a run with a class split: the test classes only, with the data set\'s own labels, L2-normalised for a batch loss', async () => {
  const t = new Training(ds, config({ engine: 'tfjs', loss: 'supcon', split: 'classes=2,7' }));
  const file = join(mkdtempSync(join(tmpdir(), 'embed-split-')), 'w.safetensors');
  await writeSafetensors(file, t.getWeights(), {});
  t.dispose();
  const e = await embedSplit({ weights: file, split: 'test', config: { engine: 'tfjs', loss: 'supcon', split: 'classes=2,7' }, dataset: ds });
  const expected = Array.from(ds.test.labels).filter((l) => l === 2 || l === 7);
  assert.deepEqual(Array.from(e.labels), expected);
  assert.equal(e.rows, expected.length);
  assert.ok(Math.abs(Math.hypot(...e.embeddings.subarray(0, e.dim)) - 1) < 1e-6);
});
