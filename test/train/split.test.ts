/**
 * --split: class-disjoint train/test classes. The default (pairs) trains bit for bit as before
 * (weight hashes written by the code before splits existed, commit 8f2a001, same tiny runs on
 * TF.js' CPU backend); `classes` keeps the training classes' images for training and the test
 * classes' images for testing only; bad specs are refused with one line and exit 2.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { before, test } from 'node:test';
import { parseSplit, resolveSplit, splitText } from '../../src/data/split.ts';
import { initBackend } from '../../src/engine/backend.ts';
import { UsageError } from '../../src/errors.ts';
import { resolveConfig, type TrainConfig } from '../../src/train/config.ts';
import { Training } from '../../src/train/trainer.ts';
import { siamese } from '../cli/run.ts';
import { syntheticDataset } from '../engine/synthetic.ts';

before(async () => {
  await initBackend('cpu');
});

const ds = syntheticDataset(200, 100);

function weightsHash(t: Training): string {
  const h = createHash('sha256');
  for (const w of t.getWeights()) h.update(new Uint8Array(w.data.buffer, w.data.byteOffset, w.data.byteLength));
  return h.digest('hex');
}

test('--split pairs (and no --split) trains bit for bit as before splits existed', () => {
  const before: [Partial<TrainConfig>, string][] = [
    [{ loss: 'contrastive' }, '134f6e126dec19e26f8b6aeafd9c2fa5367edd97277acc145b0c4012edbe614a'],
    [{ loss: 'triplet' }, '1842927b069be871827367ef64ccad4f14079b64cdb07992828adbf007a19946'],
    [{ loss: 'triplet', miner: 'batch-hard', split: 'pairs' }, '971aed5fc5f930cec9d8d6bd7c0049c28c3b2b21c32b6cb44cd01f74cdfd94d0'],
  ];
  for (const [extra, hash] of before) {
    const t = new Training(ds, resolveConfig({ engine: 'tfjs', trainPairs: 200, testPairs: 100, batchSize: 32, ...extra }));
    assert.equal(t.dataset, ds, 'pairs leaves the data set as it is');
    t.runEpoch();
    assert.equal(weightsHash(t), hash, JSON.stringify(extra));
    t.dispose();
  }
});

test('split specs: parse, canonical text, classes per side', () => {
  assert.deepEqual(resolveSplit(parseSplit('classes'), 10), { kind: 'classes', trainClasses: [0, 1, 2, 3, 4], testClasses: [5, 6, 7, 8, 9] });
  assert.deepEqual(resolveSplit(parseSplit('classes'), 5), { kind: 'classes', trainClasses: [0, 1, 2], testClasses: [3, 4] });
  assert.deepEqual(resolveSplit(parseSplit(' classes = 7, 1 ,3 '), 10), { kind: 'classes', trainClasses: [0, 2, 4, 5, 6, 8, 9], testClasses: [1, 3, 7] });
  assert.equal(splitText(parseSplit('classes=9,5')), 'classes=5,9');
  assert.equal(resolveConfig({ split: 'classes= 6,5' }).split, 'classes=5,6');
  assert.deepEqual(resolveSplit(parseSplit('pairs'), 3).testClasses, [0, 1, 2]);
  for (const bad of ['class', 'classes=', 'classes=1,,2', 'classes=a', 'classes=1,1', 'pairs=3', '']) {
    assert.throws(() => parseSplit(bad), UsageError, bad);
  }
  assert.throws(() => resolveSplit(parseSplit('classes=3,12'), 10), /class 12 does not exist/);
  assert.throws(() => resolveSplit(parseSplit('classes=1'), 10), /at least 2 training and 2 test classes/);
  assert.throws(() => resolveSplit(parseSplit('classes=0,1,2,3,4,5,6,7,8'), 10), /at least 2 training/);
});

test('--split classes: training sees only the training classes, every test measure only the test classes', () => {
  for (const [spec, testClasses] of [['classes', [5, 6, 7, 8, 9]], ['classes=1,3,8', [1, 3, 8]]] as const) {
    for (const extra of [{ loss: 'contrastive' }, { loss: 'triplet' }, { loss: 'triplet', miner: 'batch-all' }, { loss: 'supcon' }] as Partial<TrainConfig>[]) {
      const t = new Training(ds, resolveConfig({ engine: 'tfjs', trainPairs: 100, testPairs: 0, batchSize: 32, split: spec, ...extra }));
      assert.deepEqual(t.split.testClasses, [...testClasses]);
      const trainClasses = t.split.trainClasses;
      assert.deepEqual([...trainClasses, ...testClasses].sort((a, b) => a - b), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
      // the split's images are exactly the source images of its classes, in order, relabelled
      const check = (side: 'train' | 'test', classes: readonly number[]): void => {
        const src = ds[side];
        const got = t.dataset[side];
        const dim = src.height * src.width;
        const keep = [...src.labels.keys()].filter((i) => classes.includes(src.labels[i]!));
        assert.equal(got.n, keep.length, side);
        keep.forEach((s, r) => {
          assert.equal(classes[got.labels[r]!], src.labels[s], `${side} row ${r} label`);
          assert.deepEqual(got.images.subarray(r * dim, (r + 1) * dim), src.images.subarray(s * dim, (s + 1) * dim));
        });
      };
      check('train', trainClasses);
      check('test', testClasses);
      assert.equal(t.numClasses, trainClasses.length);
      // the pairs of each side draw from that side's images only (indices into the restricted splits)
      const inRange = (idx: Int32Array, n: number): boolean => idx.every((i) => i >= 0 && i < n);
      assert.ok(inRange(t.trainPairs.a, t.dataset.train.n) && inRange(t.trainPairs.b, t.dataset.train.n));
      assert.ok(inRange(t.testPairs.a, t.dataset.test.n) && inRange(t.testPairs.b, t.dataset.test.n));
      assert.ok(t.testPairs.length > 0);
      // training touches only training-class images: each batch's rows index the restricted split
      const seen = new Set<number>();
      const step = t.engine.step.bind(t.engine);
      t.engine.step = (split, batch, rng, next) => {
        assert.equal(split, t.dataset.train);
        for (const r of batch.rows) seen.add(r);
        return step(split, batch, rng, next);
      };
      const log = t.runEpoch()!;
      assert.ok(seen.size > 0 && [...seen].every((r) => r < t.dataset.train.n));
      assert.ok(log.testAccuracy >= 0 && log.testAccuracy <= 1);
      t.dispose();
    }
  }
});

test('train=...;test=...: both sides named, other classes left out (a fold of sweep)', () => {
  const spec = parseSplit(' train = 4,1,2 ; test = 0 ,3');
  assert.equal(splitText(spec), 'train=1,2,4;test=0,3');
  assert.deepEqual(parseSplit(splitText(spec)), spec);
  assert.deepEqual(resolveSplit(spec, 10), { kind: 'classes', trainClasses: [1, 2, 4], testClasses: [0, 3] });
  assert.equal(resolveConfig({ split: 'train=2,1;test=3,0' }).split, 'train=1,2;test=0,3');
  const t = new Training(ds, resolveConfig({ engine: 'tfjs', trainPairs: 100, testPairs: 0, batchSize: 32, split: 'train=1,2,4;test=0,3' }));
  // training images: the training split's images of 1, 2, 4; test images: the test split's of 0, 3
  const count = (labels: Uint8Array, cs: number[]): number => labels.filter((l) => cs.includes(l)).length;
  assert.equal(t.dataset.train.n, count(ds.train.labels, [1, 2, 4]));
  assert.equal(t.dataset.test.n, count(ds.test.labels, [0, 3]));
  assert.equal(t.numClasses, 3);
  t.dispose();
  for (const [bad, why] of [
    ['train=1,2;test=2,3', /class 2 is on both sides/],
    ['train=1;test=2,3', /at least 2 training/],
    ['train=1,2;test=3,12', /class 12 does not exist/],
    ['train=1,2;test=', /test classes must be class numbers/],
  ] as const) {
    assert.throws(() => resolveSplit(parseSplit(bad), 10), (e: unknown) => e instanceof UsageError && why.test(e.message), bad);
  }
});

test('bad --split specs: one line on stderr, exit 2', () => {
  for (const bad of ['clases', 'classes=1,x', 'train=1,2;test=2,3']) {
    const r = siamese(['train', '--split', bad, '--epochs', '1', '--train-pairs', '100', '--out', '/nonexistent/never-written']);
    assert.equal(r.code, 2, r.stderr);
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
    assert.match(r.stderr, /--split/);
  }
});
