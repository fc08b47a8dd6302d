import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { DataError, UsageError } from '../../src/errors.ts';
import { isKerasH5, KerasH5Reader, readKerasWeights, writeKerasH5 } from '../../src/model/keras.ts';
import type { ExpectedTensor } from '../../src/model/keras.ts';
import type { NamedTensor } from '../../src/model/weights.ts';
import { hasShared, KERAS_FIXTURES, REPO_ROOT, SEED_MLP_SPECS, SHARED_ABSENT_MESSAGE } from '../helpers.ts';

const MLP: ExpectedTensor[] = SEED_MLP_SPECS;

function oneLineDataError(re: RegExp): (e: unknown) => boolean {
  return (e: unknown) => {
    assert.ok(e instanceof DataError, String(e));
    assert.match(e.message, re);
    assert.ok(!e.message.includes('\n'), e.message);
    return true;
  };
}

/**
 * Build HDF5 files in layouts our writer does not produce, with h5wasm in a plain `node` child
 * process: loading h5wasm's 4 MB module through tsx in this process takes many seconds.
 */
function h5Files(script: string): void {
  const code = `import * as h5 from 'h5wasm/node';
await h5.ready;
const floats = (n, start) => Float32Array.from({ length: n }, (_, i) => start + i);
const file = (path, build) => { const f = new h5.File(path, 'w'); try { build(f); } finally { f.close(); } };
${script}`;
  execFileSync(process.execPath, ['--input-type=module', '-e', code], { cwd: REPO_ROOT, stdio: 'pipe' });
}
const floats = (n: number, start: number): Float32Array => Float32Array.from({ length: n }, (_, i) => start + i);

// One reader (one h5wasm worker) for the whole file keeps the tests fast.
const reader = new KerasH5Reader();
let dir = '';
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'siamese-keras-'));
  // layouts our writer does not produce, all made by one child process
  h5Files(`
  file(${JSON.stringify(join(dir, 'noattrs.h5'))}, (f) => {
    for (const [name, i, o, start] of [['dense_10', 3, 2, 100], ['dense_2', 4, 3, 0]]) {
      const g = f.create_group(name).create_group(name);
      // bias first on purpose: kernel must still come first
      g.create_dataset({ name: 'bias:0', data: floats(o, -start), shape: [o], dtype: '<f' });
      g.create_dataset({ name: 'kernel:0', data: floats(i * o, start), shape: [i, o], dtype: '<f' });
    }
  });
  file(${JSON.stringify(join(dir, 'saved_model.h5'))}, (f) => {
    f.create_group('optimizer_weights').create_dataset({ name: 'iterations:0', data: new Float32Array([3]), shape: [1], dtype: '<f' });
    const mw = f.create_group('model_weights');
    mw.create_attribute('layer_names', ['input_1', 'dense_1'], [2], 'A8');
    mw.create_group('input_1');
    const d = mw.create_group('dense_1');
    d.create_attribute('weight_names', ['dense_1/kernel:0', 'dense_1/bias:0'], [2], 'A17');
    const g = d.create_group('dense_1');
    g.create_dataset({ name: 'kernel:0', data: new Float64Array([0.1, 0.2]), shape: [2, 1], dtype: '<d' });
    g.create_dataset({ name: 'bias:0', data: new Float64Array([0.3]), shape: [1], dtype: '<d' });
  });
  file(${JSON.stringify(join(dir, 'missing_weight.h5'))}, (f) => {
    f.create_attribute('layer_names', ['dense_1'], [1], 'A8');
    const d = f.create_group('dense_1');
    d.create_attribute('weight_names', ['dense_1/kernel:0', 'dense_1/bias:0'], [2], 'A17');
    d.create_group('dense_1').create_dataset({ name: 'kernel:0', data: new Float32Array([1, 2]), shape: [2, 1], dtype: '<f' });
  });
  file(${JSON.stringify(join(dir, 'int_weight.h5'))}, (f) => {
    f.create_attribute('layer_names', ['dense_1'], [1], 'A8');
    const d = f.create_group('dense_1');
    d.create_attribute('weight_names', ['dense_1/kernel:0'], [1], 'A17');
    d.create_group('dense_1').create_dataset({ name: 'kernel:0', data: new Int32Array([1, 2]), shape: [2, 1], dtype: '<i' });
  });
`);
});
after(async () => {
  await reader.close();
  await rm(dir, { recursive: true, force: true });
});

// The known values below were read from the same files by another HDF5 implementation: h5py 3.7
// (Debian's python3-h5py, on libhdf5), e.g. h5py.File('model.h5')['model_1/dense_1/kernel:0'][()].flat[0:3],
// printed as Python floats (float32 widened to float64, so Math.fround of
// them is exact). Checked again on 2026-12-06: every value here matches.
test('whole Siamese model (model_1/dense_k/kernel:0): shapes, names, known values', async (t) => {
  if (!hasShared) return t.skip(SHARED_ABSENT_MESSAGE);
  const w = await reader.readWeights(join(KERAS_FIXTURES, 'model.h5'), MLP);
  assert.deepEqual(
    w.map((x) => [x.name, x.shape]),
    MLP.map((x) => [x.name, x.shape]),
  );
  assert.ok(w.every((x) => x.data instanceof Float32Array && x.data.length === x.shape.reduce((a, b) => a * b, 1)));
  const k1 = w[0]!.data;
  assert.equal(k1[0], Math.fround(0.002074785530567169));
  assert.equal(k1[1], Math.fround(-0.009901516139507294));
  assert.equal(k1[2], Math.fround(0.045481108129024506));
  assert.equal(w[4]!.data[0], Math.fround(0.1473584920167923));
  // Keras' defaults: zero biases, Glorot-uniform kernels within sqrt(6 / (784 + 128))
  for (const b of [w[1]!, w[3]!, w[5]!]) assert.ok(b.data.every((v) => v === 0));
  const limit = Math.sqrt(6 / (784 + 128));
  assert.ok(k1.every((v) => Math.abs(v) <= limit));
});

test('model.h5 and model_after_train.h5 differ, except where training cannot reach', async (t) => {
  if (!hasShared) return t.skip(SHARED_ABSENT_MESSAGE);
  const before = await reader.readWeights(join(KERAS_FIXTURES, 'model.h5'), MLP);
  const afterTrain = await reader.readWeights(join(KERAS_FIXTURES, 'model_after_train.h5'), MLP);
  for (let i = 0; i < MLP.length; i++) {
    assert.notDeepEqual(afterTrain[i]!.data, before[i]!.data, `${MLP[i]!.name} should have changed`);
  }
  assert.equal(afterTrain[1]!.data[0], Math.fround(0.07807046920061111));
  assert.equal(afterTrain[5]!.data[0], Math.fround(0.2878771424293518));
  // row 0 of dense_1's kernel multiplies MNIST's top-left pixel, which is always 0: zero gradient
  assert.deepEqual(afterTrain[0]!.data.subarray(0, 128), before[0]!.data.subarray(0, 128));
});

test('base network alone (dense_k/dense_k/kernel:0)', async (t) => {
  if (!hasShared) return t.skip(SHARED_ABSENT_MESSAGE);
  const base = await reader.readWeights(join(KERAS_FIXTURES, 'base_network.h5'), MLP);
  assert.equal(base[0]!.data[0], Math.fround(0.02514272928237915));
  assert.equal(base[1]!.data[0], Math.fround(0.021556539461016655));
  assert.equal(base[5]!.data[1], Math.fround(0.2214186191558838));
  const contrastive = await readKerasWeights(join(KERAS_FIXTURES, 'contrastive_base_network.h5'), MLP);
  assert.equal(contrastive[3]!.data[0], Math.fround(0.4510570466518402));
  assert.equal(contrastive[4]!.data[0], Math.fround(0.07895444333553314));
  const bn = await reader.readWeights(join(KERAS_FIXTURES, 'bn.h5'), MLP);
  assert.equal(bn[2]!.data[0], Math.fround(-0.09650354087352753));
  assert.ok(bn[1]!.data.every((v) => v === 0));
});

test('mismatches name the file, the layer, what the network expects and what was found', async (t) => {
  if (!hasShared) return t.skip(SHARED_ABSENT_MESSAGE);
  const file = join(KERAS_FIXTURES, 'model.h5');
  const wrongShape = MLP.map((e) => (e.name === 'dense_2.kernel' ? { ...e, shape: [128, 64] } : e));
  await assert.rejects(
    reader.readWeights(file, wrongShape),
    oneLineDataError(/model\.h5: layer dense_2 kernel has shape \[128,128\], the base network expects \[128,64\]$/),
  );
  await assert.rejects(
    reader.readWeights(file, MLP.slice(0, 4)),
    oneLineDataError(/model\.h5: the file has 3 layers with weights \(dense_1, dense_2, dense_3\), the base network expects 2 \(dense_1, dense_2\)/),
  );
  await assert.rejects(
    reader.readWeights(join(KERAS_FIXTURES, 'bn.h5'), MLP.filter((e) => !e.name.endsWith('bias'))),
    oneLineDataError(/bn\.h5: layer dense_1 has weights kernel, bias, the base network expects kernel$/),
  );
  const cnnish = [{ name: 'dense_1.kernel', shape: [3, 3, 1, 32] }, ...MLP.slice(1)];
  await assert.rejects(reader.readWeights(file, cnnish), oneLineDataError(/layer dense_1 kernel has shape \[784,128\], the base network expects \[3,3,1,32\]/));
});

test('truncated and corrupted HDF5 files are DataErrors, and the reader keeps working', async (t) => {
  if (!hasShared) return t.skip(SHARED_ABSENT_MESSAGE);
  const bytes = await readFile(join(KERAS_FIXTURES, 'base_network.h5'));
  const p = join(dir, 'cut.h5');
  await writeFile(p, bytes.subarray(0, 4000));
  assert.ok(isKerasH5(p)); // the signature is there; the rest is not
  await assert.rejects(reader.readWeights(p, MLP), oneLineDataError(/cut\.h5: not a readable HDF5 file \(.+\)/));
  const q = join(dir, 'flipped.h5');
  const flipped = Buffer.from(bytes);
  flipped.fill(0xff, 200, 1200); // wreck the root group's metadata
  await writeFile(q, flipped);
  await assert.rejects(reader.readWeights(q, MLP), DataError);
  assert.equal((await reader.readWeights(join(KERAS_FIXTURES, 'base_network.h5'), MLP)).length, 6);
});

test('not HDF5 at all, missing, a directory: DataError before h5wasm is involved', async () => {
  const p = join(dir, 'weights.h5');
  await writeFile(p, 'this is not an HDF5 file, just text');
  assert.equal(isKerasH5(p), false);
  assert.equal(isKerasH5(join(dir, 'nope.h5')), false);
  await assert.rejects(readKerasWeights(p, MLP), oneLineDataError(/weights\.h5: not an HDF5 file \(no HDF5 signature\)/));
  await assert.rejects(readKerasWeights(join(dir, 'nope.h5'), MLP), oneLineDataError(/nope\.h5: no such file/));
  await assert.rejects(readKerasWeights(dir, MLP), oneLineDataError(/not a regular file/));
  await assert.rejects(readKerasWeights(p, []), UsageError);
});

test('writeKerasH5 writes a Keras-layout file that reads back exactly', async () => {
  const small: NamedTensor[] = [
    { name: 'dense_1.kernel', shape: [4, 3], data: Float32Array.from({ length: 12 }, (_, i) => i / 7) },
    { name: 'dense_1.bias', shape: [3], data: new Float32Array([1, -2, 3]) },
    { name: 'dense_2.kernel', shape: [3, 2], data: Float32Array.from({ length: 6 }, (_, i) => -i) },
    { name: 'dense_2.bias', shape: [2], data: new Float32Array([0.5, 0.25]) },
  ];
  const p = join(dir, 'small.h5');
  await writeKerasH5(p, small);
  assert.ok(isKerasH5(p));
  const back = await reader.readWeights(p, small.map(({ name, shape }) => ({ name, shape })));
  assert.deepEqual(back, small);
  // our names need not match Keras' numbering, only order and shapes
  const renamed = await reader.readWeights(p, [
    { name: 'fc_a.kernel', shape: [4, 3] },
    { name: 'fc_a.bias', shape: [3] },
    { name: 'fc_b.kernel', shape: [3, 2] },
    { name: 'fc_b.bias', shape: [2] },
  ]);
  assert.deepEqual(renamed[2]!.data, small[2]!.data);
  await assert.rejects(writeKerasH5(p, [{ name: 'nodot', shape: [1], data: new Float32Array(1) }]), UsageError);
  await assert.rejects(writeKerasH5(p, [{ name: 'a.kernel', shape: [2], data: new Float32Array(1) }]), UsageError);
});

test('no layer_names/weight_names attributes: layers found by walking, in natural order', async () => {
  const p = join(dir, 'noattrs.h5');
  const w = await reader.readWeights(p, [
    { name: 'l1.kernel', shape: [4, 3] },
    { name: 'l1.bias', shape: [3] },
    { name: 'l2.kernel', shape: [3, 2] },
    { name: 'l2.bias', shape: [2] },
  ]);
  assert.deepEqual(w[0]!.data, floats(12, 0));
  assert.deepEqual(w[2]!.data, floats(6, 100));
  assert.deepEqual(w[3]!.data, floats(2, -100));
});

test('a whole model saved with model.save(): weights under /model_weights, float64 converted', async () => {
  const p = join(dir, 'saved_model.h5');
  const w = await reader.readWeights(p, [
    { name: 'dense_1.kernel', shape: [2, 1] },
    { name: 'dense_1.bias', shape: [1] },
  ]);
  assert.deepEqual([...w[0]!.data, ...w[1]!.data], [Math.fround(0.1), Math.fround(0.2), Math.fround(0.3)]);
});

test('a weight listed in weight_names but missing, or of integer type, is a clear DataError', async () => {
  const p = join(dir, 'missing_weight.h5');
  const q = join(dir, 'int_weight.h5');
  const exp = [
    { name: 'dense_1.kernel', shape: [2, 1] },
    { name: 'dense_1.bias', shape: [1] },
  ];
  await assert.rejects(reader.readWeights(p, exp), oneLineDataError(/layer dense_1 lists weight dense_1\/bias:0, but the file has no dataset dense_1\/dense_1\/bias:0/));
  await assert.rejects(reader.readWeights(q, exp.slice(0, 1)), oneLineDataError(/layer dense_1 kernel has dtype <i, expected float32/));
});
