/**
 * Per-epoch embeddings (embeddings.bin): one record per epoch from 0, decoded values within the
 * int8 quantisation bound of the true embeddings (the network embedding the subset again), the
 * same stratified subset for every run, training bit-identical with and without them, and a
 * resumed run (even after a crash left a partial record) ending with the file of a straight run.
 */
import assert from 'node:assert/strict';
import { appendFileSync, existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { before, test } from 'node:test';
import type { Dataset } from '../../src/data/dataset.ts';
import { initBackend } from '../../src/engine/backend.ts';
import { readSafetensors } from '../../src/io/safetensors.ts';
import { loadWeights } from '../../src/model/load.ts';
import { resolveConfig, type TrainConfig } from '../../src/train/config.ts';
import {
  decodeRecord, EMBEDDINGS_FILE, encodeRecord, readEmbeddingsIndex, readEpochEmbeddings, snapshotSubset,
} from '../../src/train/epochEmbeddings.ts';
import { trainRun } from '../../src/train/run.ts';
import { Training } from '../../src/train/trainer.ts';
import { Rng } from '../../src/rng.ts';
import { stratifiedSubset } from '../../src/data/subset.ts';
import { syntheticDataset } from '../engine/synthetic.ts';

before(async () => {
  await initBackend('wasm');
});

const ds = syntheticDataset(400, 300);
const base: Partial<TrainConfig> = { loss: 'contrastive', trainPairs: 400, testPairs: 200, batchSize: 64, seed: 4, engine: 'tfjs' };
const root = mkdtempSync(join(tmpdir(), 'epoch-emb-'));

async function train(name: string, extra: Partial<TrainConfig>, snapshotPoints: number, resume = false): Promise<string> {
  const out = join(root, name);
  await trainRun({ config: resume ? { epochs: extra.epochs } : { ...base, ...extra }, out, dataset: ds, snapshotPoints, resume, retrieval: false });
  return out;
}

/** The true embeddings of the stored images, from a weights file, by a fresh Training. */
async function trueEmbeddings(weights: string, config: Partial<TrainConfig>, indices: number[]): Promise<Float32Array> {
  const c = resolveConfig({ ...base, ...config });
  const t = new Training(ds, c);
  try {
    const w = await loadWeights(weights, t.network);
    const t2 = new Training(ds, c, w);
    try {
      return t2.embed(ds.test, indices);
    } finally {
      t2.dispose();
    }
  } finally {
    t.dispose();
  }
}

test('the file holds one record per epoch (0 = before training), within the int8 bound of the true embeddings', async () => {
  const dir = await train('straight', { epochs: 3 }, 60);
  const path = join(dir, EMBEDDINGS_FILE);
  const idx = readEmbeddingsIndex(path);
  assert.deepEqual(idx.epochs, [0, 1, 2, 3]);
  assert.equal(idx.header.rows, 60);
  assert.equal(idx.header.dim, 128);
  assert.deepEqual(idx.header.labels, idx.header.indices.map((i) => ds.test.labels[i]));
  // the size is the header and four whole records, nothing else
  assert.equal(readFileSync(path).length, idx.dataStart + 4 * idx.recordBytes);
  for (const [epoch, weights] of [[0, join(dir, 'initial.safetensors')], [3, join(dir, 'weights.safetensors')]] as const) {
    const truth = await trueEmbeddings(weights, { epochs: 3 }, idx.header.indices);
    const got = readEpochEmbeddings(path, idx, epoch);
    let worst = 0;
    for (let r = 0; r < 60; r++) {
      let max = 0;
      for (let c = 0; c < 128; c++) max = Math.max(max, Math.abs(truth[r * 128 + c]!));
      const bound = max / 127 / 2 + 1e-6 * max;
      for (let c = 0; c < 128; c++) {
        const err = Math.abs(got[r * 128 + c]! - truth[r * 128 + c]!);
        assert.ok(err <= bound, `epoch ${epoch} row ${r} col ${c}: error ${err} > ${bound}`);
        worst = Math.max(worst, err / (max || 1));
      }
    }
    assert.ok(worst > 0, 'the values are quantised (a float copy would make the bound vacuous)');
  }
  // epochs differ: training moved the embedding
  assert.notDeepEqual(readEpochEmbeddings(path, idx, 0), readEpochEmbeddings(path, idx, 3));
});

test('a record round-trips: exact for values on the int8 grid, within scale/2 otherwise; a zero row stays zero', () => {
  const rows = 3, dim = 5;
  const x = Float32Array.from([127, -64, 0, 1, -127, /* zero row */ 0, 0, 0, 0, 0, 0.3, -0.25, 0.1, 0.05, 0.299]);
  const { epoch, embeddings } = decodeRecord(encodeRecord(7, x, rows, dim), rows, dim);
  assert.equal(epoch, 7);
  assert.deepEqual([...embeddings.subarray(0, 10)], [...x.subarray(0, 10)]);
  const scale = 0.3 / 127;
  for (let c = 0; c < 5; c++) assert.ok(Math.abs(embeddings[10 + c]! - x[10 + c]!) <= scale / 2 + 1e-9);
});

test('training is bit-identical with and without the embeddings', async () => {
  const a = await readSafetensors(join(root, 'straight', 'weights.safetensors'));
  const b = await readSafetensors(join(await train('none', { epochs: 3 }, 0), 'weights.safetensors'));
  assert.equal(existsSync(join(root, 'none', EMBEDDINGS_FILE)), false, '0 = no file');
  a.tensors.forEach((t, i) => assert.deepEqual(b.tensors[i]!.data, t.data, t.name));
});

test('a resumed run continues the file: byte-identical to the straight run, even after a crash mid-record', async () => {
  const dir = await train('resumed', { epochs: 2 }, 60);
  // a crash while epoch 3 was written: a partial record beyond the checkpoint (epoch 2)
  const idx = readEmbeddingsIndex(join(dir, EMBEDDINGS_FILE));
  appendFileSync(join(dir, EMBEDDINGS_FILE), new Uint8Array(Math.floor(idx.recordBytes / 2)).fill(9));
  assert.deepEqual(readEmbeddingsIndex(join(dir, EMBEDDINGS_FILE)).epochs, [0, 1, 2], 'readers ignore the partial record');
  // resume with another count: the run keeps its own subset
  await train('resumed', { epochs: 3 }, 10, true);
  assert.deepEqual(readFileSync(join(dir, EMBEDDINGS_FILE)), readFileSync(join(root, 'straight', EMBEDDINGS_FILE)));
});

test('the subset is stratified over the test classes and the same for every run of a data set and split', async () => {
  // another loss and seed, same data: the same images
  const other = await train('other', { epochs: 1, loss: 'yukawa', seed: 9 }, 60);
  const a = readEmbeddingsIndex(join(root, 'straight', EMBEDDINGS_FILE)).header;
  const b = readEmbeddingsIndex(join(other, EMBEDDINGS_FILE)).header;
  assert.deepEqual(b.indices, a.indices);

  // unequal classes: each gets its largest-remainder share of n, drawn without repeats
  const rng = new Rng(1);
  const labels = Uint8Array.from({ length: 1000 }, () => (rng.next() < 0.5 ? 0 : 1 + rng.int(3)));
  const skewed = { ...ds, test: { ...ds.test, labels, n: labels.length } } as Dataset;
  const sub = snapshotSubset(skewed, [0, 1, 2, 3], 200);
  assert.equal(sub.length, 200);
  assert.equal(new Set(sub).size, 200);
  const sizes = [0, 1, 2, 3].map((c) => labels.filter((l) => l === c).length);
  const exact = sizes.map((s) => (200 * s) / 1000);
  const got = [0, 1, 2, 3].map((c) => sub.filter((i) => labels[i] === c).length);
  got.forEach((g, c) => assert.ok(g === Math.floor(exact[c]!) || g === Math.ceil(exact[c]!), `class ${c}: ${g} of ${exact[c]}`));
  assert.deepEqual(snapshotSubset(skewed, [0, 1, 2, 3], 200), sub, 'deterministic');
  // a class-disjoint split stores its test classes only, and as many of them as asked: 200, each
  // class its share of the test classes' images (it stored their share of the 200 before, ~100)
  const held = snapshotSubset(skewed, [2, 3], 200);
  assert.equal(held.length, 200);
  assert.equal(new Set(held).size, 200);
  assert.ok(held.every((i) => labels[i] === 2 || labels[i] === 3));
  const heldSizes = [2, 3].map((c) => labels.filter((l) => l === c).length);
  [2, 3].forEach((c, k) => {
    const share = (200 * heldSizes[k]!) / (heldSizes[0]! + heldSizes[1]!);
    const g = held.filter((i) => labels[i] === c).length;
    assert.ok(g === Math.floor(share) || g === Math.ceil(share), `class ${c}: ${g} of ${share}`);
  });
  // fewer test-class images than asked: all of them
  const few = snapshotSubset(skewed, [3], 10_000);
  assert.deepEqual(few, Array.from(labels).flatMap((l, i) => (l === 3 ? [i] : [])));
  // every class tested (the pairs split): the subset of the whole test split, as before
  assert.deepEqual(snapshotSubset(skewed, [0, 1, 2, 3], 200), stratifiedSubset(labels, 200, 0));
});

test('a class-split run stores only the held-out classes, with their own class numbers', async () => {
  const dir = await train('classes', { epochs: 1, split: 'classes=7,8,9' }, 60);
  const h = readEmbeddingsIndex(join(dir, EMBEDDINGS_FILE)).header;
  assert.ok(h.rows > 0 && h.labels.every((l) => l >= 7), `labels ${[...new Set(h.labels)]}`);
  // --snapshot-points 60: 60 images of the test classes (there are more), not their share of 60
  const testImages = Array.from(ds.test.labels).filter((l) => l >= 7).length;
  assert.ok(testImages > 60, `${testImages} test-class images`);
  assert.equal(h.rows, 60);
  assert.deepEqual(h.labels, h.indices.map((i) => ds.test.labels[i]));
  // the stored rows are the embeddings of those very images
  const idx = readEmbeddingsIndex(join(dir, EMBEDDINGS_FILE));
  const truth = await trueEmbeddings(join(dir, 'weights.safetensors'), { epochs: 1, split: 'classes=7,8,9' }, h.indices);
  const got = readEpochEmbeddings(join(dir, EMBEDDINGS_FILE), idx, 1);
  for (let i = 0; i < got.length; i++) assert.ok(Math.abs(got[i]! - truth[i]!) < 0.02 * Math.max(1e-3, Math.abs(truth[i]!)) + 0.01);
});

test("compare's t-SNE panels under a class split hold --tsne-points test-class images: the runs' snapshot images", async () => {
  const { planTsne } = await import('../../src/experiments/tsnePlan.ts');
  type PlanArgs = Parameters<typeof planTsne>;
  const out = mkdtempSync(join(tmpdir(), 'tsne-plan-'));
  const spec = { seeds: [0], losses: [], config: { split: 'classes=7,8,9' } } as unknown as PlanArgs[1];
  const grid = { tsne: { points: 60, params: { seed: 0, perplexity: 10, theta: 0.5, iterations: 100 } } } as unknown as PlanArgs[2];
  const { plan } = planTsne(out, spec, grid, ds);
  assert.equal(plan!.indices.length, 60);
  assert.ok(plan!.labels.every((l) => l >= 7));
  assert.deepEqual(plan!.indices, snapshotSubset(ds, [7, 8, 9], 60));
});
