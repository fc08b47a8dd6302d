import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { readSafetensors } from '../../src/io/safetensors.ts';
import { siamese } from '../cli/run.ts';

// The one real training run of the suite: a full epoch of the seed's setup on MNIST (108,400
// pairs, batch 128, RMSprop), through the CLI as a user runs it, then the seed's predict.
test('one epoch of contrastive training reaches more than 90% test pair accuracy', () => {
  const root = mkdtempSync(join(tmpdir(), 'train-'));
  const out = join(root, 'contrastive');
  const r = siamese(['--train=True', '--loss=contrastive', '--epcs=1', '--bs=128', '--opt=RMSprop', '--reset_weights=True', '--out', out]);
  assert.equal(r.code, 0, r.stderr);
  const log = readFileSync(join(out, 'log.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
  assert.equal(log.length, 1);
  assert.ok(log[0].testAccuracy > 0.9, `test accuracy ${log[0].testAccuracy}`);
  assert.ok(log[0].loss > 0 && log[0].loss < 0.1, `loss ${log[0].loss}`);

  const manifest = JSON.parse(readFileSync(join(out, 'manifest.json'), 'utf8'));
  assert.equal(manifest.status, 'finished');
  assert.equal(manifest.config.optimizer, 'RMSprop');
  assert.equal(manifest.network.parameters, 133504);
  assert.match(manifest.dataset.trainChecksum, /^[0-9a-f]{64}$/);
  assert.equal(manifest.packages['@tensorflow/tfjs-core'], '4.22.0');

  const p = siamese(['--train=False', '--reset_weights=False', '--weights', out]);
  assert.equal(p.code, 0, p.stderr);
  const m = /\* Accuracy on test set: (\d+\.\d\d)%/.exec(p.stdout);
  assert.ok(m, p.stdout);
  assert.equal(Number(m[1]), Number((100 * log[0].testAccuracy).toFixed(2)), 'predict agrees with the epoch log');
  assert.match(p.stdout, /positive pairs, D < 0\.4: .*the seed's filtered view/);
  assert.match(p.stdout, /negative pairs, all: +mean D \d\.\d{3} +std \d\.\d{3}/);
});

test('--reset-weights: two losses of one seed start from one shared initial-weights file', async () => {
  // a parent folder that does not exist yet: the shared file is created with it
  const root = join(mkdtempSync(join(tmpdir(), 'reset-')), 'runs');
  for (const loss of ['contrastive', 'potential']) {
    const r = siamese(['train', '--loss', loss, '--epochs', '1', '--train-pairs', '256', '--seed', '2', '--reset-weights', '--out', join(root, loss)]);
    assert.equal(r.code, 0, r.stderr);
  }
  const shared = (await readSafetensors(join(root, 'initial-mlp-seed2.safetensors'))).tensors;
  for (const loss of ['contrastive', 'potential']) {
    const init = (await readSafetensors(join(root, loss, 'initial.safetensors'))).tensors;
    init.forEach((t, i) => assert.deepEqual(t.data, shared[i]!.data));
  }
  const a = (await readSafetensors(join(root, 'contrastive', 'weights.safetensors'))).tensors;
  const b = (await readSafetensors(join(root, 'potential', 'weights.safetensors'))).tensors;
  assert.notDeepEqual(a[0]!.data, b[0]!.data, 'different losses train differently');
});
