import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { loadMnist } from '../../src/data/mnist.ts';
import { UsageError } from '../../src/errors.ts';
import { runCompare } from '../../src/experiments/compare.ts';
import { type CompareOptions, parseSeeds } from '../../src/experiments/grid.ts';
import { stratifiedSubset } from '../../src/experiments/tsnePlan.ts';
import { EMBEDDINGS_FILE, readEmbeddingsIndex } from '../../src/train/epochEmbeddings.ts';
import type { CompareResults } from '../../src/experiments/results.ts';
import { readSafetensors } from '../../src/io/safetensors.ts';

const root = mkdtempSync(join(tmpdir(), 'siamese-compare-'));
after(() => rmSync(root, { recursive: true, force: true }));

// The smallest grid that still exercises everything: 2 losses x 2 seeds, 1 epoch on 2,000 pairs.
const tiny = (out: string): CompareOptions => ({
  losses: 'contrastive,yukawa',
  seeds: 2,
  epochs: 1,
  trainPairs: 2000,
  workers: 2,
  out,
  tsnePoints: 60,
  tsneIterations: 100,
  distanceSample: 500,
  snapshotPoints: 60,
});

const sameBytes = async (a: string, b: string): Promise<boolean> => {
  const [x, y] = await Promise.all([readSafetensors(a), readSafetensors(b)]);
  return x.tensors.length === y.tensors.length && x.tensors.every((t, i) => Buffer.from(t.data.buffer).equals(Buffer.from(y.tensors[i]!.data.buffer)));
};

test('a tiny comparison: same initial weights per seed, every field of results.json, resume', async () => {
  const out = join(root, 'grid');
  const first = await runCompare(tiny(out));
  assert.equal(first.status, 'finished');
  assert.deepEqual(first.failures, []);
  assert.deepEqual([...first.trained].sort(), ['contrastive-seed0', 'contrastive-seed1', 'yukawa-seed0', 'yukawa-seed1']);

  // every loss of a seed starts from that seed's weights; the seeds differ
  const runs = join(out, 'runs');
  for (const s of [0, 1]) {
    assert.ok(await sameBytes(join(runs, `contrastive-seed${s}`, 'initial.safetensors'), join(runs, `yukawa-seed${s}`, 'initial.safetensors')));
    assert.ok(await sameBytes(join(runs, `contrastive-seed${s}`, 'initial.safetensors'), join(out, `initial-seed${s}.safetensors`)));
  }
  assert.ok(!(await sameBytes(join(runs, 'contrastive-seed0', 'initial.safetensors'), join(runs, 'contrastive-seed1', 'initial.safetensors'))));

  const r = JSON.parse(readFileSync(join(out, 'results.json'), 'utf8')) as CompareResults;
  for (const k of ['tool', 'version', 'createdAt', 'spec', 'machine', 'dataset', 'runs', 'summary', 'comparisons', 'tsne', 'lossShapes'] as const) {
    assert.ok(r[k] !== undefined, `results.json has ${k}`);
  }
  assert.deepEqual(r.spec.seeds, [0, 1]);
  assert.deepEqual(r.spec.losses.map((l) => l.id), ['contrastive', 'yukawa']);
  assert.equal(r.spec.config.epochs, 1);
  assert.equal(r.dataset.trainPairs, 2000);
  assert.equal(r.dataset.testPairs, 17820);
  assert.ok(r.machine.cpu.length > 0 && r.machine.cores >= 1 && r.machine.workers === 2 && r.machine.wallSeconds > 0);
  assert.equal(r.runs.length, 4);
  for (const run of r.runs) {
    assert.equal(run.history.length, 1);
    assert.ok(run.evaluation.pairs.accuracy > 0 && run.evaluation.retrieval !== undefined);
    assert.equal(run.distances.pos.length, 500);
    assert.equal(run.distances.neg.length, 500);
    assert.ok(run.distances.pos.every((d) => Number.isFinite(d) && Math.round(d * 1e4) / 1e4 === d));
  }
  assert.equal(r.summary.length, 2);
  for (const s of r.summary) {
    assert.equal(s.seeds, 2);
    assert.equal(s.accuracy.values.length, 2);
    assert.ok(s.accuracy.ci95 >= 0 && Number.isFinite(s.accuracy.ci95));
    assert.ok(s.mapAtR !== undefined);
    // the written file's clipped interval is mean ± ci95 within [0, 1]
    for (const m of [s.accuracy, s.mapAtR]) assert.deepEqual(m.ci, [Math.max(0, m.mean - m.ci95), Math.min(1, m.mean + m.ci95)]);
    assert.equal(s.curves.length, 1);
  }
  assert.deepEqual(r.comparisons.map((c) => [c.a, c.b, c.measure, c.seeds]), [
    ['contrastive', 'yukawa', 'accuracy', 2],
    ['contrastive', 'yukawa', 'mapAtR', 2],
  ]);
  for (const c of r.comparisons) assert.ok(Number.isFinite(c.p) && c.verdict.length > 10);
  assert.equal(r.lossShapes.length, 2);
  for (const s of r.lossShapes) {
    assert.equal(s.d.length, 151);
    assert.equal(s.d[150], 1.5);
    assert.ok([...s.pos, ...s.neg].every((v) => Number.isFinite(v) && v <= 4));
  }
  assert.match(r.lossShapes[1]!.label, /drawn at 4/); // Yukawa's 1/D near 0 is capped, and says so
  assert.ok(r.tsne);
  assert.deepEqual(r.tsne.panels.map((p) => p.lossId), [undefined, 'contrastive', 'yukawa']);
  assert.equal(r.tsne.indices.length, 60);
  for (const p of r.tsne.panels) assert.equal(p.points.length, 120);
  // every run stored the embeddings of the same 60 test images per epoch: those of the t-SNE panels
  for (const key of ['contrastive-seed0', 'contrastive-seed1', 'yukawa-seed0', 'yukawa-seed1']) {
    const emb = readEmbeddingsIndex(join(runs, key, EMBEDDINGS_FILE));
    assert.deepEqual(emb.epochs, [0, 1], key);
    assert.deepEqual(emb.header.indices, r.tsne.indices, key);
    assert.deepEqual(emb.header.labels, r.tsne.labels, key);
  }

  // the same call again: everything is reused, nothing runs
  const again = await runCompare(tiny(out));
  assert.equal(again.status, 'finished');
  assert.deepEqual(again.trained, []);
  assert.equal(again.reused.length, 4);
  assert.equal(again.results!.machine.workers, 0);
  assert.deepEqual(again.results!.summary.map((s) => s.accuracy.values), r.summary.map((s) => s.accuracy.values));

  // a different training config in the same directory is refused
  await assert.rejects(runCompare({ ...tiny(out), epochs: 2 }), (e: unknown) => e instanceof UsageError && /epochs: 1 there, 2 now/.test(e.message));
});

test('an interrupted comparison resumes from its checkpoints', async () => {
  const out = join(root, 'stopped');
  const opts: CompareOptions = { losses: 'contrastive', seeds: 1, epochs: 2, trainPairs: 2000, workers: 1, out, tsnePoints: 0, retrieval: false };
  const ac = new AbortController();
  const first = await runCompare({ ...opts, signal: ac.signal }, { onJobEvent: (_j, ev) => ev.type === 'epoch' && ac.abort() });
  assert.equal(first.status, 'interrupted');
  const manifest = JSON.parse(readFileSync(join(out, 'runs', 'contrastive-seed0', 'manifest.json'), 'utf8')) as { status: string; epochsDone: number };
  assert.equal(manifest.status, 'interrupted');
  assert.equal(manifest.epochsDone, 1);
  assert.ok(!existsSync(join(out, 'results.json')));

  // a run that cannot resume fails alone, with a one-line message; the comparison still ends
  const ckpt = join(out, 'runs', 'contrastive-seed0', 'checkpoint.safetensors');
  const saved = readFileSync(ckpt);
  writeFileSync(ckpt, saved.subarray(0, 100));
  const broken = await runCompare(opts);
  assert.equal(broken.status, 'finished');
  assert.equal(broken.failures.length, 1);
  assert.equal(broken.failures[0]!.key, 'contrastive-seed0');
  assert.match(broken.failures[0]!.message, /checkpoint/);
  assert.ok(!broken.failures[0]!.message.includes('\n'));
  assert.equal(broken.results!.runs.length, 0);
  writeFileSync(ckpt, saved);

  const epochs: number[] = [];
  const second = await runCompare(opts, { onJobEvent: (_j, ev) => ev.type === 'epoch' && epochs.push(ev.log.epoch) });
  assert.equal(second.status, 'finished');
  assert.deepEqual(epochs, [2]); // only the missing epoch was trained
  assert.equal(second.results!.runs[0]!.history.length, 2);
});

test('seeds and t-SNE subsets', async () => {
  assert.equal(parseSeeds('3'), 3);
  assert.deepEqual(parseSeeds('0,5,7'), [0, 5, 7]);
  assert.deepEqual(parseSeeds('7,'), [7]);
  assert.throws(() => parseSeeds('0,0'), UsageError);
  assert.throws(() => parseSeeds('a'), UsageError);
  assert.throws(() => parseSeeds('0'), UsageError);

  const labels = (await loadMnist()).test.labels;
  const sub = stratifiedSubset(labels, 2000, 0);
  assert.equal(sub.length, 2000);
  assert.equal(new Set(sub).size, 2000);
  assert.deepEqual(sub, [...sub].sort((a, b) => a - b));
  const counts = new Array<number>(10).fill(0);
  for (const i of sub) counts[labels[i]!]!++;
  // class shares of the test split, e.g. 1135 ones of 10,000 → 227 of 2,000
  assert.equal(counts[1], 227);
  assert.equal(counts[5], 178);
  assert.deepEqual(stratifiedSubset(labels, 2000, 0), sub);
  assert.notDeepEqual(stratifiedSubset(labels, 2000, 1), sub);
});
