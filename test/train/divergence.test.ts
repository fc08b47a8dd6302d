import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { readSafetensors } from '../../src/io/safetensors.ts';
import { siamese } from '../cli/run.ts';

// A learning rate that makes training blow up at once: the run must stop with the epoch, batch
// and a hint, exit non-zero without a stack trace, and keep its last good checkpoint.
test('a diverging run stops with a clear message and keeps its last good checkpoint', async () => {
  const out = join(mkdtempSync(join(tmpdir(), 'diverge-')), 'run');
  const r = siamese(['train', '--loss', 'yukawa', '--epochs', '3', '--train-pairs', '2000', '--optimizer', 'sgd', '--lr', '1e30', '--out', out]);
  assert.equal(r.code, 1, r.stderr);
  const lines = r.stderr.trim().split('\n');
  assert.equal(lines.length, 1, r.stderr);
  assert.match(lines[0]!, /^siamese: training diverged: .*epoch 1, batch \d+ .*lower --lr; the last good checkpoint \(epoch 0\) is in /);

  const manifest = JSON.parse(readFileSync(join(out, 'manifest.json'), 'utf8'));
  assert.equal(manifest.status, 'failed');
  assert.match(manifest.message, /diverged/);
  // the checkpoint on disk is the last good state (here: the initial weights), all finite
  const ckpt = (await readSafetensors(join(out, 'checkpoint.safetensors'))).tensors.filter((t) => t.name.startsWith('weights/'));
  const init = (await readSafetensors(join(out, 'initial.safetensors'))).tensors;
  assert.equal(ckpt.length, init.length);
  ckpt.forEach((t, i) => {
    assert.ok(t.data.every(Number.isFinite), t.name);
    assert.deepEqual(t.data, init[i]!.data);
  });
});
