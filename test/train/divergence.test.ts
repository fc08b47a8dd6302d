import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { readSafetensors } from '../../src/io/safetensors.ts';
import { siamese } from '../cli/run.ts';

const manifest = (dir: string) => JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8'));

// A learning rate that makes training blow up at once: the run must stop with the epoch, batch
// and the exact command that goes on at a lower rate, exit non-zero without a stack trace, and
// keep its last good checkpoint. The command, run as printed, trains at the rate it names.
test('a diverging run stops with a clear message, keeps its last good checkpoint and says the exact command to go on', async () => {
  const out = join(mkdtempSync(join(tmpdir(), 'diverge-')), 'run');
  const r = siamese(['train', '--loss', 'yukawa', '--epochs', '3', '--train-pairs', '2000', '--optimizer', 'sgd', '--lr', '1e30', '--out', out]);
  assert.equal(r.code, 1, r.stderr);
  const lines = r.stderr.trim().split('\n');
  assert.equal(lines.length, 1, r.stderr);
  assert.match(lines[0]!, /^siamese: training diverged: .*epoch 1, batch \d+ .*learning rate 1e\+30.*; the last good checkpoint \(epoch 0\) is in /);
  const hint = /To start again from the initial weights at a lower learning rate: siamese (train --resume \S+ --lr 1e\+29)$/.exec(lines[0]!);
  assert.ok(hint, lines[0]);

  const m = manifest(out);
  assert.equal(m.status, 'failed');
  assert.match(m.message, /diverged/);
  // the checkpoint on disk is the last good state (here: the initial weights), all finite
  const ckpt = (await readSafetensors(join(out, 'checkpoint.safetensors'))).tensors.filter((t) => t.name.startsWith('weights/'));
  const init = (await readSafetensors(join(out, 'initial.safetensors'))).tensors;
  assert.equal(ckpt.length, init.length);
  ckpt.forEach((t, i) => {
    assert.ok(t.data.every(Number.isFinite), t.name);
    assert.deepEqual(t.data, init[i]!.data);
  });

  // the hint, run as printed: it runs at 1e29 (and diverges again, at that rate)
  const again = siamese(hint[1]!.split(' '));
  assert.equal(again.code, 1, again.stderr);
  assert.match(again.stderr, /learning rate 1e\+29\)/);
  assert.deepEqual(manifest(out).resumes[0].changed, { learningRate: { from: 1e30, to: 1e29 } });
});

// lr 0.3: the loss stays finite and modest, but every embedding ends on one point (dead ReLUs)
test('a collapsed network stops with a clear message, a failed status and a non-zero exit', () => {
  const out = join(mkdtempSync(join(tmpdir(), 'collapse-')), 'run');
  const r = siamese(['train', '--lr', '0.3', '--epochs', '2', '--train-pairs', '2000', '--out', out]);
  assert.equal(r.code, 1, r.stderr);
  assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
  assert.match(r.stderr, /training collapsed: after epoch 1 every test image embeds to the same point .*siamese train --resume \S+ --lr 0\.03$/m);
  assert.doesNotMatch(r.stdout, /trained/);
  const m = manifest(out);
  assert.equal(m.status, 'failed');
  assert.equal(m.epochsDone, 0);
  assert.match(m.message, /collapsed/);
});

// A write that fails after the run started (here the weights file is a folder: rename fails as
// ENOSPC or EACCES would) must leave the manifest at failed, with why, not at running.
test('a failed write marks the run failed in its manifest', () => {
  const out = join(mkdtempSync(join(tmpdir(), 'writefail-')), 'run');
  mkdirSync(join(out, 'weights.safetensors', 'in-the-way'), { recursive: true });
  const r = siamese(['train', '--epochs', '2', '--train-pairs', '2000', '--out', out]);
  assert.notEqual(r.code, 0);
  assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
  assert.match(r.stderr, /weights\.safetensors: cannot write/);
  const m = manifest(out);
  assert.equal(m.status, 'failed');
  assert.match(m.message, /weights\.safetensors: cannot write/);
  assert.equal(m.epochsDone, 1, 'the checkpoint of epoch 1 was written before the failure');
});
