import assert from 'node:assert/strict';
import { test } from 'node:test';
import * as lab from '../src/index.ts';

test('the public API exposes the library the CLI is built on', () => {
  for (const name of ['loadMnist', 'makePairs', 'Training', 'trainRun', 'predict', 'embedSplit', 'evaluateTraining', 'createLoss', 'yukawaLoss',
    'contrastiveLoss', 'tripletLoss', 'customPotentialLoss', 'createMiner', 'retrievalMetrics', 'pairMetrics', 'knn', 'runTsne', 'compare',
    'buildReport', 'readKerasWeights', 'readNpy', 'writeNpy', 'readSafetensors', 'loadDataset', 'cnnNetwork', 'Rng'] as const) {
    assert.equal(typeof lab[name], 'function', name);
  }
  const y = lab.yukawaLoss();
  assert.equal(y.pos(0.5), 0.125);
  assert.ok(Math.abs(y.neg(0.5) - Math.exp(-5) / 0.5) < 1e-12);
});

test('creating a Training before the backend started is a clear usage error', () => {
  // this file never calls initBackend, so the check must fire before any data is touched
  assert.throws(
    () => new lab.Training({} as lab.Dataset, lab.resolveConfig({})),
    (e: unknown) => e instanceof lab.UsageError && /call `await initBackend\(\)`/.test(e.message),
  );
});
