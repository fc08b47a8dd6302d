import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { readSafetensors, writeSafetensors } from '../../src/io/safetensors.ts';
import { readKerasWeights } from '../../src/model/keras.ts';
import { mlpNetwork } from '../../src/model/mlp.ts';
import { Rng } from '../../src/rng.ts';
import { hasShared, KERAS_FIXTURES, SHARED_ABSENT_MESSAGE } from '../helpers.ts';
import { siamese } from './run.ts';

const net = mlpNetwork();

test('export writes a Keras .h5 and a .safetensors file that read back bit for bit', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'export-'));
  const weights = net.initWeights(new Rng(3));
  const src = join(dir, 'weights.safetensors');
  await writeSafetensors(src, weights);

  const h5 = join(dir, 'base_network.h5');
  const r = siamese(['export', '--weights', src, '--out', h5]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /wrote 6 tensors .* as keras-h5/);
  const back = await readKerasWeights(h5, net.weightSpecs());
  back.forEach((t, i) => {
    assert.equal(t.name, weights[i]!.name);
    assert.deepEqual(t.shape, weights[i]!.shape);
    assert.deepEqual(t.data, weights[i]!.data, t.name);
  });

  // and back again, the format given explicitly
  const st = join(dir, 'again.bin');
  const r2 = siamese(['export', '--weights', h5, '--out', st, '--format', 'safetensors']);
  assert.equal(r2.code, 0, r2.stderr);
  const { tensors } = await readSafetensors(st);
  tensors.forEach((t, i) => assert.deepEqual(t.data, weights[i]!.data, t.name));
});

test('export refuses bad input with one line and exit code 2, and leaves no file behind', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'export-bad-'));
  const src = join(dir, 'weights.safetensors');
  await writeSafetensors(src, net.initWeights(new Rng(4)));
  const cases: [string[], RegExp][] = [
    [['--out', join(dir, 'w.bin')], /cannot tell the format from ".*w\.bin"/],
    [['--out', join(dir, 'w.h5'), '--format', 'pickle'], /--format must be keras-h5, safetensors or onnx, got "pickle"/],
    [['--out', join(dir, 'w.h5'), '--embedding-dim', '64'], /dense_3\.kernel has shape \[128,128\], the mlp base network expects \[128,64\]/],
    [['--out', join(dir, 'missing', 'w.h5')], /missing/],
  ];
  for (const [args, msg] of cases) {
    const r = siamese(['export', '--weights', src, ...args]);
    assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, msg);
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
  }
  assert.deepEqual(readdirSync(dir), ['weights.safetensors']);
  assert.ok(!existsSync(join(dir, 'missing')));
});

test("export turns the seed's whole-model .h5 into a base-network .h5 with the same kernels", { skip: hasShared ? false : SHARED_ABSENT_MESSAGE }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'export-seed-'));
  const seed = join(KERAS_FIXTURES, 'model_after_train.h5');
  const out = join(dir, 'base_network.h5');
  const r = siamese(['export', '--weights', seed, '--out', out]);
  assert.equal(r.code, 0, r.stderr);
  const a = await readKerasWeights(seed, net.weightSpecs());
  const b = await readKerasWeights(out, net.weightSpecs());
  a.forEach((t, i) => assert.deepEqual(b[i]!.data, t.data, t.name));
});
