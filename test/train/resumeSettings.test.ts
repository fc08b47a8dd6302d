/**
 * `train --resume DIR` with options: --epochs, --lr, --engine and --threads apply (and are noted
 * in the manifest); the settings that define the run are refused when they differ; NaN already in
 * the starting weights or the checkpoint is reported as such, never as a divergence.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { before, test } from 'node:test';
import { loadMnist } from '../../src/data/mnist.ts';
import { initBackend } from '../../src/engine/backend.ts';
import { readSafetensors, writeSafetensors } from '../../src/io/safetensors.ts';
import { resolveConfig, resumeConfig } from '../../src/train/config.ts';
import { UsageError } from '../../src/errors.ts';
import { RunDir } from '../../src/train/runDir.ts';
import { Training } from '../../src/train/trainer.ts';
import { siamese } from '../cli/run.ts';

const root = mkdtempSync(join(tmpdir(), 'resume-opts-'));
const run = join(root, 'run');
const base = ['--train-pairs', '2000', '--seed', '2'];
const manifest = (dir: string) => JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8'));

before(async () => {
  await initBackend('wasm');
  const r = siamese(['train', '--epochs', '1', ...base, '--out', run]);
  assert.equal(r.code, 0, r.stderr);
  // "default" names no number: the manifest also records rmsprop's own rate (Keras' 0.001)
  assert.deepEqual(manifest(run).optimizer, { name: 'rmsprop', learningRate: 'default', resolved: { learningRate: 0.001 } });
});

test('resume refuses, in one line, a setting that defines the run when it differs', () => {
  for (const [opt, value] of [['--loss', 'yukawa'], ['--seed', '3'], ['--train-pairs', '500'], ['--data', 'fashion-mnist']] as const) {
    const r = siamese(['train', '--resume', run, opt, value]);
    assert.equal(r.code, 2, `${opt}: ${r.stderr}`);
    const lines = r.stderr.trim().split('\n');
    assert.equal(lines.length, 1, r.stderr);
    assert.match(lines[0]!, new RegExp(`^siamese: .*run was trained with ${opt} \\S+, and a resumed run keeps it .*drop ${opt} ${value}`));
  }
  assert.equal(manifest(run).epochsDone, 1, 'a refused resume changes nothing');
  assert.equal(manifest(run).resumes, undefined);
});

test('resume applies --lr and --epochs, notes them in the manifest, and trains at the new rate exactly', async () => {
  // the same values of the run's own settings are accepted
  const r = siamese(['train', '--resume', run, '--lr', '0.0003', '--epochs', '2', '--loss', 'contrastive', '--seed', '2']);
  assert.equal(r.code, 0, r.stderr);
  const m = manifest(run);
  assert.equal(m.config.learningRate, 0.0003);
  assert.equal(m.optimizer.learningRate, 0.0003);
  assert.equal(m.optimizer.resolved.learningRate, 0.0003);
  assert.equal(m.resumes.length, 1);
  assert.equal(m.resumes[0].fromEpoch, 1);
  assert.deepEqual(m.resumes[0].changed, { epochs: { from: 1, to: 2 }, learningRate: { from: 'default', to: 0.0003 } });

  // oracle: the library, epoch 1 at the default rate, then epoch 2 at 0.0003 from its state
  const ds = await loadMnist();
  const first = new Training(ds, resolveConfig({ epochs: 1, trainPairs: 2000, seed: 2 }));
  first.runEpoch();
  const state = first.getState();
  const second = new Training(ds, resolveConfig({ epochs: 2, trainPairs: 2000, seed: 2, learningRate: 0.0003 }));
  second.setState(state);
  second.runEpoch();
  first.runEpoch(); // the old rate, for contrast
  const got = (await readSafetensors(join(run, 'weights.safetensors'))).tensors;
  second.getWeights().forEach((w, i) => assert.deepEqual(got[i]!.data, w.data, `tensor ${w.name}`));
  assert.notDeepEqual(got[0]!.data, first.getWeights()[0]!.data, 'the old rate would give other weights');
  first.dispose();
  second.dispose();
});

test('NaN in --init-weights or in a checkpoint is reported as a bad file, not as a divergence', async () => {
  const init = (await readSafetensors(join(run, 'initial.safetensors'))).tensors;
  init[1]!.data[3] = Number.NaN;
  const bad = join(root, 'nan.safetensors');
  await writeSafetensors(bad, init);
  const r = siamese(['train', '--init-weights', bad, '--epochs', '1', ...base, '--out', join(root, 'from-nan')]);
  assert.equal(r.code, 2, r.stderr);
  assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
  assert.match(r.stderr, /nan\.safetensors: 1 of its weights are NaN or Inf \(first in dense_1\.bias\)/);
  assert.doesNotMatch(r.stderr, /diverged|last good/);

  // a checkpoint written whole by the run's own code (so its checksum holds) with an Inf inside
  const dir = new RunDir(run);
  const state = await dir.readCheckpoint();
  state.weights.find((t) => t.name.startsWith('dense'))!.data[0] = Number.POSITIVE_INFINITY;
  await dir.writeCheckpoint(state, dir.readManifest().config);
  const res = siamese(['train', '--resume', run, '--epochs', '3']);
  assert.equal(res.code, 2, res.stderr);
  assert.equal(res.stderr.trim().split('\n').length, 1, res.stderr);
  assert.match(res.stderr, /checkpoint\.safetensors: .*NaN or Inf/);
  assert.doesNotMatch(res.stderr, /diverged|last good/);
});

test('resumeConfig: unset options and repeated loss parameters are no change; another value is refused', () => {
  const saved = resolveConfig({ loss: 'yukawa', lossParams: { kappa: 5, power: 3 }, epochs: 4, seed: 1 });
  // what the CLI passes when no loss option is typed: every parameter key, undefined
  const none = { margin: undefined, kappa: undefined, power: undefined, pos: undefined, neg: undefined };
  const a = resumeConfig(saved, { lossParams: none, epochs: 6, engine: 'tfjs' }, 'r');
  assert.deepEqual(a.config.lossParams, { kappa: 5, power: 3 });
  assert.deepEqual(a.changed, { epochs: { from: 4, to: 6 }, engine: { from: 'auto', to: 'tfjs' } });
  assert.deepEqual(resumeConfig(saved, { lossParams: { ...none, kappa: 5 }, seed: 1, optimizer: 'RMSprop' }, 'r').changed, {});
  assert.throws(() => resumeConfig(saved, { lossParams: { ...none, kappa: 6 } }, 'r'), UsageError);
  assert.throws(() => resumeConfig(saved, { batchSize: 64 }, 'r'), /r was trained with --batch-size 128, .*drop --batch-size 64/);
});

test('a resume with a new --lr stopped before its first epoch ends can be resumed again', async () => {
  const dir = join(root, 'lr-stopped');
  assert.equal(siamese(['train', '--epochs', '1', ...base, '--out', dir]).code, 0);
  // the resume writes its manifest with the new rate, then stops before any epoch (no new checkpoint)
  const { trainRun } = await import('../../src/train/run.ts');
  const stopped = await trainRun({ config: { epochs: 2, learningRate: 0.0005 }, out: dir, resume: true, signal: AbortSignal.abort() });
  assert.equal(stopped.status, 'interrupted');
  assert.equal(manifest(dir).config.learningRate, 0.0005);
  const again = siamese(['train', '--resume', dir, '--epochs', '2']);
  assert.equal(again.code, 0, again.stderr);
  assert.equal(manifest(dir).epochsDone, 2);
  assert.equal(manifest(dir).config.learningRate, 0.0005);
});
