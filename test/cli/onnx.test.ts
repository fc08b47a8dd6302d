// `siamese export --format onnx`: the exported base network, run by onnxruntime (an independent
// implementation of every op), gives the embeddings `siamese embed` writes, for the MLP and the CNN.
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import * as ort from 'onnxruntime-web';
import { imagesAsFloat } from '../../src/data/dataset.ts';
import { loadDataset } from '../../src/data/registry.ts';
import { readNpy } from '../../src/io/npy.ts';
import { NORM_EPSILON } from '../../src/losses/batch.ts';
import { encodeOnnx } from '../../src/model/onnx.ts';
import { Rng } from '../../src/rng.ts';
import { encodeTestPng } from '../data/pngEncoder.ts';
import { siamese } from './run.ts';

const root = mkdtempSync(join(tmpdir(), 'siamese-onnx-'));
after(() => rmSync(root, { recursive: true, force: true }));
ort.env.wasm.numThreads = 1;

/** 2 classes of 14x14 grayscale images (bars on noise), train/ and test/ folders. */
function writeFolder(dir: string): void {
  const rng = new Rng(7);
  for (const split of ['train', 'test']) {
    for (const [label, name] of ['a', 'b'].entries()) {
      mkdirSync(join(dir, split, name), { recursive: true });
      for (let i = 0; i < (split === 'train' ? 12 : 5); i++) {
        const px = Array.from({ length: 196 }, (_, p) => (Math.floor(p / 14) === 3 + 6 * label ? 230 : rng.int(60)));
        writeFileSync(join(dir, split, name, `${i}.png`), encodeTestPng(px, 14, 14, { color: 0, depth: 8 }));
      }
    }
  }
}

/** Train one epoch, embed the test split, export ONNX; return both embeddings and their shapes. */
async function exportAndRun(name: string, args: string[], data: { name: string; dir?: string }) {
  const run = join(root, name);
  const tr = siamese(['train', ...args, '--epochs', '1', '--out', run, '--seed', '3']);
  assert.equal(tr.code, 0, tr.stderr);
  const emb = join(root, `${name}.npy`);
  const em = siamese(['embed', '--weights', run, '--split', 'test', '--out', emb]);
  assert.equal(em.code, 0, em.stderr);
  const model = join(root, `${name}.onnx`);
  const ex = siamese(['export', '--weights', run, '--out', model]);
  assert.equal(ex.code, 0, ex.stderr);
  assert.match(ex.stdout, /as onnx/);

  const expected = await readNpy(emb);
  const ds = await loadDataset(data);
  const n = ds.test.n;
  const dim = ds.test.height * ds.test.width * ds.test.channels;
  const input = imagesAsFloat(ds.test, Array.from({ length: n }, (_, i) => i));
  const session = await ort.InferenceSession.create(readFileSync(model));
  assert.deepEqual(session.inputNames, ['images']);
  assert.deepEqual(session.outputNames, ['embeddings']);
  const out = await session.run({ images: new ort.Tensor('float32', input, [n, dim]) });
  const got = out.embeddings!;
  assert.deepEqual(got.dims, expected.shape);
  return { got: got.data as Float32Array, expected: expected.data as Float32Array, dim: got.dims[1]! };
}

function assertClose(got: Float32Array, expected: Float32Array): void {
  assert.equal(got.length, expected.length);
  let worst = 0;
  let nonzero = 0;
  for (let i = 0; i < got.length; i++) {
    const e = expected[i]!;
    if (e !== 0) nonzero++;
    worst = Math.max(worst, Math.abs(got[i]! - e) / Math.max(1, Math.abs(e)));
  }
  // a network of dead ReLUs would match trivially
  assert.ok(nonzero > got.length / 10, `only ${nonzero} of ${got.length} embedding values are non-zero`);
  assert.ok(worst <= 1e-5, `largest difference ${worst}`);
}

test('ONNX export of the MLP gives the embeddings of siamese embed on MNIST to 1e-5', async () => {
  const r = await exportAndRun('mlp', ['--train-pairs', '2000', '--loss', 'yukawa'], { name: 'mnist' });
  assertClose(r.got, r.expected);
});

test('ONNX export of the CNN (14x14 images, 8-d embedding) gives the embeddings of siamese embed to 1e-5', async () => {
  const data = join(root, 'bars');
  writeFolder(data);
  const args = ['--base', 'cnn', '--data', 'folder', '--data-dir', data, '--embedding-dim', '8', '--batch-size', '8', '--engine', 'tfjs'];
  const r = await exportAndRun('cnn', args, { name: 'folder', dir: data });
  assertClose(r.got, r.expected);
});

/** The Euclidean length of each row. */
function rowNorms(x: Float32Array, dim: number): number[] {
  const out: number[] = [];
  for (let o = 0; o < x.length; o += dim) out.push(Math.hypot(...x.subarray(o, o + dim)));
  return out;
}

test('ONNX export of a run trained with a batch loss (multi-similarity) ends in the L2 normalisation that embed applies: same embeddings to 1e-5, unit rows', async () => {
  const r = await exportAndRun('ms', ['--train-pairs', '2000', '--loss', 'multi-similarity'], { name: 'mnist' });
  assertClose(r.got, r.expected);
  // embed's own rows are unit vectors (the loss compares cosines); so must the model's be
  for (const n of rowNorms(r.expected, r.dim)) assert.ok(Math.abs(n - 1) < 1e-5, `embed row norm ${n}`);
  for (const n of rowNorms(r.got, r.dim)) assert.ok(Math.abs(n - 1) < 1e-5, `ONNX row norm ${n}`);
});

test('the normalisation in the graph, by hand: (3, 4) -> (0.6, 0.8); a zero row stays zero (the 1e-12 floor), no NaN', async () => {
  // a one-layer MLP with the identity kernel: its output is ReLU(x)
  const weights = [
    { name: 'dense_1.kernel', shape: [2, 2], data: Float32Array.of(1, 0, 0, 1) },
    { name: 'dense_1.bias', shape: [2], data: Float32Array.of(0, 0) },
  ];
  const config = { base: 'mlp', inputSize: 2, hidden: [], embeddingDim: 2 };
  const input = new ort.Tensor('float32', Float32Array.of(3, 4, -1, -2, 1e-30, 0), [3, 2]);
  const plain = await ort.InferenceSession.create(encodeOnnx(config, weights));
  assert.deepEqual(Array.from((await plain.run({ images: input })).embeddings!.data as Float32Array), [3, 4, 0, 0, Math.fround(1e-30), 0]);
  const unit = await ort.InferenceSession.create(encodeOnnx(config, weights, '', { normalizeEpsilon: NORM_EPSILON }));
  const got = Array.from((await unit.run({ images: input })).embeddings!.data as Float32Array);
  // 1e-30 / max(1e-30, 1e-12) = 1e-18: the floor, not the row's length, divides a tiny row
  const want = [0.6, 0.8, 0, 0, 1e-18, 0];
  got.forEach((v, i) => assert.ok(Math.abs(v - want[i]!) <= 1e-7, `${i}: ${v} vs ${want[i]}`));
  assert.ok(Math.abs(got[4]! / 1e-18 - 1) < 1e-5, `the floored row: ${got[4]}`);
});

test('export --format onnx refuses an unknown format and a name without an extension in one line', () => {
  const r = siamese(['export', '--weights', join(root, 'none.safetensors'), '--out', join(root, 'x.bin')]);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /cannot tell the format from .*\.onnx/);
  assert.equal(r.stderr.trim().split('\n').length, 1);
});
