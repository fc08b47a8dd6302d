/**
 * distances.jsonl: the per-epoch histograms of the test pair distances. The binning against a
 * brute-force count over hand-made distances (edges included), the file a training writes (one
 * line per epoch, counts summing to the test pairs, the last epoch's counts equal to a brute-force
 * histogram of the saved weights' embeddings), and resumes that continue it without duplicates.
 */
import assert from 'node:assert/strict';
import { appendFileSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { before, test } from 'node:test';
import { initBackend } from '../../src/engine/backend.ts';
import { readSafetensors } from '../../src/io/safetensors.ts';
import { resolveConfig, type TrainConfig } from '../../src/train/config.ts';
import { DISTANCE_BINS, DISTANCES_FILE, distanceRange, type EpochDistances, histogramOf, keptLines } from '../../src/train/epochDistances.ts';
import { embedSplit, trainRun } from '../../src/train/run.ts';
import { Training } from '../../src/train/trainer.ts';
import { Rng } from '../../src/rng.ts';
import { syntheticDataset } from '../engine/synthetic.ts';

before(async () => {
  await initBackend('wasm');
});

/** Count by comparing against the edges, one bin at a time: no floor, no scaling. */
function bruteForce(d: readonly number[], y: readonly number[], label: number, dmax: number, bins: number): { counts: number[]; over: number } {
  const counts: number[] = [];
  for (let i = 0; i < bins; i++) {
    const lo = (i * dmax) / bins;
    const hi = ((i + 1) * dmax) / bins;
    counts.push(d.filter((v, k) => y[k] === label && v >= lo && v < hi).length);
  }
  const over = d.filter((v, k) => y[k] === label && !(v >= 0 && v < dmax)).length;
  return { counts, over };
}

test('histogramOf counts as the edges say: hand-made cases, every edge, NaN and Infinity in the overflow', () => {
  // dmax 1, 4 bins: edges 0, .25, .5, .75, 1
  const h = histogramOf([0, 0.1, 0.25, 0.49, 0.5, 0.99, 1, 7, NaN, Infinity, 0.3, 0.8], [1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0], 3, 1, 4);
  assert.deepEqual(h.pos, { n: 8, counts: [2, 2, 1, 1], over: 2, mean: (0 + 0.1 + 0.25 + 0.49 + 0.5 + 0.99 + 1 + 7) / 8 });
  assert.deepEqual(h.neg, { n: 4, counts: [0, 1, 0, 1], over: 2, mean: (0.3 + 0.8) / 2 });
  assert.equal(h.epoch, 3);
  assert.equal(h.bins, 4);

  // float32 distances from a seeded stream, every edge of the grid among them, dmax 2 and 8
  const rng = new Rng(11);
  for (const dmax of [2, 8, 0.5]) {
    const d: number[] = [];
    const y: number[] = [];
    for (let i = 0; i <= DISTANCE_BINS; i++) d.push((i * dmax) / DISTANCE_BINS);
    for (let i = 0; i < 3000; i++) d.push(Math.fround(rng.next() * dmax * 1.2));
    d.push(Math.fround(dmax - 1e-7 * dmax), Math.fround(dmax * (1 + 1e-7)), NaN, -0);
    for (let i = 0; i < d.length; i++) y.push(rng.next() < 0.5 ? 1 : 0);
    const got = histogramOf(Float32Array.from(d), Uint8Array.from(y), 1, dmax);
    const f = Array.from(Float32Array.from(d));
    for (const [side, label] of [['pos', 1], ['neg', 0]] as const) {
      const want = bruteForce(f, y, label, dmax, DISTANCE_BINS);
      assert.deepEqual(got[side].counts, want.counts, `${side} counts, dmax ${dmax}`);
      assert.equal(got[side].over, want.over, `${side} over, dmax ${dmax}`);
      assert.equal(got[side].n, y.filter((v) => v === label).length);
    }
  }
});

test('distanceRange: 2 for batch losses, else the power of two at least 1.5 x the largest distance', () => {
  assert.equal(distanceRange([0.1, 5], true), 2);
  assert.equal(distanceRange([0.2, 1.0, 0.7], false), 2); // 1.5 -> 2
  assert.equal(distanceRange([1.4, NaN, Infinity], false), 4); // 2.1 -> 4
  assert.equal(distanceRange([0.3], false), 0.5); // 0.45 -> 0.5
  assert.equal(distanceRange([16], false), 32); // 24 -> 32
  assert.equal(distanceRange([0, 0], false), 1);
});

const ds = syntheticDataset(400, 200);
const settings = (epochs: number, extra: Partial<TrainConfig> = {}): Partial<TrainConfig> => ({
  loss: 'yukawa',
  epochs,
  trainPairs: 640,
  testPairs: 300,
  batchSize: 64,
  seed: 4,
  ...extra,
});

function lines(dir: string): EpochDistances[] {
  const text = readFileSync(join(dir, DISTANCES_FILE), 'utf8');
  assert.ok(text === '' || text.endsWith('\n'), 'every line complete');
  return text.split('\n').filter(Boolean).map((l) => JSON.parse(l) as EpochDistances);
}

const root = mkdtempSync(join(tmpdir(), 'epoch-distances-'));

test('training writes one line per epoch: counts sum to the test pairs, the last equals a brute-force histogram of the saved weights', async () => {
  const out = join(root, 'straight');
  const res = await trainRun({ config: settings(3), out, dataset: ds, retrieval: false });
  assert.equal(res.status, 'finished');
  const got = lines(out);
  assert.deepEqual(got.map((l) => l.epoch), [1, 2, 3]);
  const config = resolveConfig(settings(3));
  const t = new Training(ds, config);
  const y = Array.from(t.testPairs.y);
  const positives = y.filter((v) => v === 1).length;
  assert.ok(positives > 0 && positives < 300);
  for (const l of got) {
    assert.equal(l.bins, DISTANCE_BINS);
    assert.equal(l.dmax, got[0]!.dmax, 'one grid for the whole run');
    assert.equal(l.pos.n, positives);
    assert.equal(l.neg.n, 300 - positives);
    assert.equal(l.pos.counts.reduce((a, c) => a + c, 0) + l.pos.over + l.neg.counts.reduce((a, c) => a + c, 0) + l.neg.over, 300);
  }
  // the final weights, embedded again, and the pair distances by an explicit loop
  const { embeddings, dim } = await embedSplit({ weights: out, split: 'test', dataset: ds });
  const d = Array.from(t.testPairs.a, (a, i) => {
    const b = t.testPairs.b[i]!;
    let s = 0;
    for (let k = 0; k < dim; k++) s += (embeddings[a * dim + k]! - embeddings[b * dim + k]!) ** 2;
    return Math.fround(Math.sqrt(Math.max(s, 1e-7)));
  });
  t.dispose();
  const last = got[2]!;
  for (const [side, label] of [['pos', 1], ['neg', 0]] as const) {
    const want = bruteForce(d, y, label, last.dmax, DISTANCE_BINS);
    assert.deepEqual(last[side].counts, want.counts, side);
    assert.equal(last[side].over, want.over);
  }
  // the first epoch's largest distance sets dmax: at least 1.5x it, and at most 3x
  const first = got[0]!;
  const top = Math.max(...[first.pos, first.neg].map((s) => s.counts.reduce((last, c, i) => (c > 0 ? i + 1 : last), 0)));
  assert.equal(first.pos.over + first.neg.over, 0, 'nothing beyond dmax in the epoch that set it');
  assert.ok(top <= (DISTANCE_BINS * 2) / 3 + 1, `the first epoch's distances fill ${top} of ${DISTANCE_BINS} bins`);
  // result.json's final distance means agree
  const result = JSON.parse(readFileSync(join(out, 'result.json'), 'utf8'));
  assert.ok(Math.abs(last.pos.mean! - result.evaluation.pairs.stats.pos.mean) < 1e-9);
  assert.ok(Math.abs(last.neg.mean! - result.evaluation.pairs.stats.neg.mean) < 1e-9);
});

test('a resumed run continues distances.jsonl without duplicates, as an uninterrupted run writes it, with the same weights', async () => {
  const straight = join(root, 'straight');
  const want = readFileSync(join(straight, DISTANCES_FILE), 'utf8');
  const wantWeights = (await readSafetensors(join(straight, 'weights.safetensors'))).tensors;

  // a clean stop after epoch 1, resumed to 3
  const a = join(root, 'resumed');
  await trainRun({ config: settings(1), out: a, dataset: ds, retrieval: false });
  assert.equal(lines(a).length, 1);
  await trainRun({ config: { epochs: 3 }, out: a, dataset: ds, resume: true, retrieval: false });
  assert.equal(readFileSync(join(a, DISTANCES_FILE), 'utf8'), want);

  // stopped between the checkpoint and distances.jsonl (its last line missing), with a torn line
  // of another writer after it: the missing epoch is computed again from the checkpoint
  const b = join(root, 'gap');
  await trainRun({ config: settings(2), out: b, dataset: ds, retrieval: false });
  const two = readFileSync(join(b, DISTANCES_FILE), 'utf8').split('\n');
  writeFileSync(join(b, DISTANCES_FILE), two[0] + '\n');
  appendFileSync(join(b, DISTANCES_FILE), '{"epoch": 2, "dmax": 4, "pos"');
  await trainRun({ config: { epochs: 3 }, out: b, dataset: ds, resume: true, retrieval: false });
  assert.equal(readFileSync(join(b, DISTANCES_FILE), 'utf8'), want);
  const got = (await readSafetensors(join(b, 'weights.safetensors'))).tensors;
  wantWeights.forEach((w, i) => assert.deepEqual(got[i]!.data, w.data, `tensor ${w.name}: recording changed nothing`));
});

test('keptLines keeps the leading valid lines up to the checkpoint epoch, on one grid', () => {
  const line = (epoch: number, dmax = 4): string => JSON.stringify(histogramOf([0.5, 1], [1, 0], epoch, dmax));
  assert.deepEqual(keptLines([line(1), line(2), line(3)].join('\n') + '\n', 2).map((l) => l.epoch), [1, 2]);
  assert.deepEqual(keptLines([line(1), line(1), line(2)].join('\n'), 5).map((l) => l.epoch), [1], 'a duplicate epoch ends it');
  assert.deepEqual(keptLines([line(1), line(2, 8)].join('\n'), 5).map((l) => l.epoch), [1], 'another grid ends it');
  assert.deepEqual(keptLines([line(1), 'not json', line(2)].join('\n'), 5).map((l) => l.epoch), [1]);
  assert.deepEqual(keptLines('', 3), []);
});

test('batch losses bin over [0, 2): L2-normalised embeddings never leave it', async () => {
  const out = join(root, 'batch');
  await trainRun({ config: settings(1, { loss: 'multi-similarity' }), out, dataset: ds, retrieval: false });
  const [l] = lines(out);
  assert.equal(l!.dmax, 2);
  assert.equal(l!.pos.over + l!.neg.over, 0);
  assert.equal(l!.pos.n + l!.neg.n, 300);
});
