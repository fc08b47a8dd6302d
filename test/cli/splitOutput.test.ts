/**
 * Under a class-disjoint split every test measure is on the test classes only: train and predict
 * say which classes their numbers are on (the run's split, or --split given to predict), so that
 * a predict that silently used the run's split, or a flag that changed it, is visible.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { writeBandsIdx } from '../data/datasets.ts';
import { siamese } from './run.ts';

const root = mkdtempSync(join(tmpdir(), 'siamese-split-output-'));
after(() => rmSync(root, { recursive: true, force: true }));
const dataDir = join(root, 'data');
writeBandsIdx(dataDir); // 8 classes
const data = ['--data', 'idx', '--data-dir', dataDir];

test('train and predict name the test classes of a class-disjoint split; a pairs run names none', () => {
  const run = join(root, 'run');
  const t = siamese(['train', '--loss', 'nt-xent', '--epochs', '1', '--batch-size', '32', '--split', 'classes=1,3,5', '--snapshot-points', '0', '--out', run, ...data]);
  assert.equal(t.code, 0, t.stderr);
  assert.match(t.stdout, /^ {2}test classes: 1, 3, 5 \(class-disjoint split; trained on 0, 2, 4, 6, 7\)$/m);

  const p = siamese(['predict', '--weights', run, ...data]);
  assert.equal(p.code, 0, p.stderr);
  assert.match(p.stdout, /^ {2}test classes: 1, 3, 5 \(class-disjoint split; trained on 0, 2, 4, 6, 7\)$/m);
  // 15 test images per class: 14 positive and 14 negative pairs per class
  assert.match(p.stdout, /test pairs: 84 /);

  // --split given to predict wins over the run's, and the output says so
  const q = siamese(['predict', '--weights', run, '--split', 'train=0,2;test=6,7', ...data]);
  assert.equal(q.code, 0, q.stderr);
  assert.match(q.stdout, /^ {2}test classes: 6, 7 \(class-disjoint split; trained on 0, 2\)$/m);
  assert.match(q.stdout, /test pairs: 56 /);

  const all = siamese(['predict', '--weights', run, '--split', 'pairs', ...data]);
  assert.equal(all.code, 0, all.stderr);
  assert.doesNotMatch(all.stdout, /test classes/);
  assert.match(all.stdout, /test pairs: 224 /);
});

test("embed's --split (train or test images) given a class split says where embed's classes come from", () => {
  for (const v of ['classes', 'classes=5,6', 'pairs', 'train=1,2;test=3,4']) {
    const r = siamese(['embed', '--weights', join(root, 'none'), '--split', v, '--out', join(root, 'e.npy')]);
    assert.equal(r.code, 2, r.stderr);
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
    assert.match(r.stderr, new RegExp(`--split must be train or test, got "${v.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}"; embed's --split is the image split, and the classes come from the run`));
  }
  const other = siamese(['embed', '--weights', join(root, 'none'), '--split', 'tset', '--out', join(root, 'e.npy')]);
  assert.equal(other.code, 2);
  assert.match(other.stderr, /--split must be train or test, got "tset"\n?$/);
});
