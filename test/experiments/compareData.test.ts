/**
 * `compare` on a data set other than MNIST: a small set of IDX files written here (28x28, like
 * MNIST, so that training on MNIST by mistake would run without an error). Every run must be
 * trained and scored on these files: its manifest says so, and its numbers are those of a plain
 * `trainRun` on the same data with the same seed. Resume keeps the data set.
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { resolveConfig } from '../../src/train/config.ts';
import { DataError } from '../../src/errors.ts';
import { runCompare } from '../../src/experiments/compare.ts';
import type { CompareOptions } from '../../src/experiments/grid.ts';
import { maxPerplexity } from '../../src/experiments/tsnePlan.ts';
import type { CompareResults } from '../../src/experiments/results.ts';
import { Rng } from '../../src/rng.ts';
import { trainRun } from '../../src/train/run.ts';
import { siamese } from '../cli/run.ts';
import { idxFile, writeShapesFolder } from '../data/datasets.ts';

const root = mkdtempSync(join(tmpdir(), 'siamese-compare-data-'));
after(() => rmSync(root, { recursive: true, force: true }));

/** 4 classes of 28x28 images: a bright band whose rows depend on the class, plus noise. */
function writeIdxDataset(dir: string, trainPerClass: number, testPerClass: number): void {
  mkdirSync(dir, { recursive: true });
  const rng = new Rng(7);
  const split = (perClass: number): { images: Uint8Array; labels: Uint8Array } => {
    const n = 4 * perClass;
    const images = new Uint8Array(n * 784);
    const labels = new Uint8Array(n);
    for (let i = 0; i < n; i++) {
      const label = i % 4;
      labels[i] = label;
      for (let p = 0; p < 784; p++) {
        const row = Math.floor(p / 28);
        images[i * 784 + p] = row >= 3 + 6 * label && row < 6 + 6 * label ? 150 + rng.int(100) : rng.int(60);
      }
    }
    return { images, labels };
  };
  for (const [prefix, perClass] of [['train', trainPerClass], ['t10k', testPerClass]] as const) {
    const s = split(perClass);
    writeFileSync(join(dir, `${prefix}-images-idx3-ubyte`), idxFile([s.labels.length, 28, 28], s.images));
    writeFileSync(join(dir, `${prefix}-labels-idx1-ubyte`), idxFile([s.labels.length], s.labels));
  }
}

const data = join(root, 'bands');
writeIdxDataset(data, 60, 15);

const options = (out: string): CompareOptions => ({
  losses: 'contrastive',
  seeds: 1,
  epochs: 1,
  data: { name: 'idx', dir: data },
  workers: 1,
  out,
  tsnePoints: 2000,
  tsneIterations: 50,
  distanceSample: 0,
});

test('compare --data idx trains, scores and labels every run on that data set; resume keeps it', async () => {
  const out = join(root, 'cmp');
  const o = await runCompare(options(out));
  assert.equal(o.status, 'finished');
  assert.deepEqual(o.failures, []);
  const r = JSON.parse(readFileSync(join(out, 'results.json'), 'utf8')) as CompareResults;
  assert.equal(r.dataset.name, 'idx');
  assert.equal(r.dataset.testImages, 60);
  assert.deepEqual(r.spec.config.data, { name: 'idx', dir: data });

  // the run's manifest records the data it really trained on
  const runDir = join(out, 'runs', 'contrastive-seed0');
  const m = JSON.parse(readFileSync(join(runDir, 'manifest.json'), 'utf8')) as { config: { data: unknown }; dataset: { name: string } };
  assert.deepEqual(m.config.data, { name: 'idx', dir: data });
  assert.equal(m.dataset.name, 'idx');

  // every test pair of these 60 images is scored (MNIST would give 17,820 pairs): 2 x 4 x 14
  const run = r.runs[0]!;
  assert.equal(run.distances.pos.length + run.distances.neg.length, 112);

  // a plain training on the same data with the same seed and settings gives the same numbers
  const direct = await trainRun({
    config: resolveConfig({ ...r.spec.config, loss: 'contrastive', seed: 0 }),
    out: join(root, 'direct'),
    retrieval: true,
  });
  assert.equal(direct.status, 'finished');
  assert.deepEqual(run.evaluation, direct.evaluation);
  assert.deepEqual(run.history.map((h) => h.loss), direct.history.map((h) => h.loss));

  // t-SNE on 60 points: the perplexity of 30 was lowered to (60 - 1) / 3, and the report is told
  assert.ok(r.tsne, 'a t-SNE on the 60 test images');
  assert.equal(r.tsne.indices.length, 60);
  assert.equal(r.tsne.params.perplexity, maxPerplexity(60));
  assert.equal(r.tsne.params.perplexity, 59 / 3);
  assert.equal(r.tsne.requestedPerplexity, 30);
  assert.equal(r.tsne.panels.length, 2);
  assert.ok(r.notes?.some((n) => /perplexity lowered from 30 to 19\.67/.test(n)));

  // resume: the distances and a t-SNE layout are recomputed by the workers, on the same data
  const distances = readFileSync(join(runDir, 'distances.json'), 'utf8');
  const layout = JSON.parse(readFileSync(join(out, 'tsne', 'contrastive.json'), 'utf8')) as { points: number[] };
  rmSync(join(runDir, 'distances.json'));
  rmSync(join(out, 'tsne', 'contrastive.json'));
  const again = await runCompare({ out, resume: true, workers: 1 });
  assert.equal(again.status, 'finished');
  assert.deepEqual(again.failures, []);
  assert.deepEqual(again.reused, ['contrastive-seed0']);
  assert.equal(readFileSync(join(runDir, 'distances.json'), 'utf8'), distances);
  const relaid = JSON.parse(readFileSync(join(out, 'tsne', 'contrastive.json'), 'utf8')) as { points: number[] };
  assert.deepEqual(relaid.points, layout.points);
  assert.equal(again.results!.dataset.name, 'idx');
  assert.deepEqual(again.results!.runs[0]!.evaluation, run.evaluation);

  // the CLI, resuming: nothing to train; the report cannot be written (report.html is a folder):
  // exit 1 and one line saying so, results.json complete, no half-written figures
  mkdirSync(join(out, 'report.html'));
  const cli = siamese(['compare', '--resume', out]);
  assert.equal(cli.code, 1, cli.stderr);
  const last = cli.stderr.trimEnd().split('\n').at(-1)!;
  assert.match(last, new RegExp(`^siamese: the report could not be written: .*report\\.html.*; rebuild it with: siamese report ${out.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`));
  assert.doesNotMatch(cli.stderr, /\n\s+at /, 'no stack trace');
  assert.match(cli.stdout, /report: {2}not written/);
  assert.deepEqual(readdirSync(out).filter((f) => f.startsWith('.figures')), []);
  assert.equal(JSON.parse(readFileSync(join(out, 'results.json'), 'utf8')).dataset.name, 'idx');

  // report rebuilds it from results.json, with the comparison's own test images (thumbnails,
  // polar plot) and the comparison's notes
  rmSync(join(out, 'report.html'), { recursive: true });
  const rebuilt = siamese(['report', out]);
  assert.equal(rebuilt.code, 0, rebuilt.stderr);
  assert.doesNotMatch(rebuilt.stdout, /no thumbnails|no polar plot/i);
  assert.match(rebuilt.stdout, /note: t-SNE perplexity lowered from 30 to 19\.67/);
  assert.ok(readdirSync(join(out, 'figures')).includes('polar.svg'));
  assert.match(readFileSync(join(out, 'report.md'), 'utf8'), /^# siamese-lab: 1 loss compared on idx/);

  // a run that saw other data (as older versions trained every run on MNIST) is not reused
  const manifest = JSON.parse(readFileSync(join(runDir, 'manifest.json'), 'utf8')) as { dataset: { trainChecksum: string } };
  manifest.dataset.trainChecksum = 'f'.repeat(64);
  writeFileSync(join(runDir, 'manifest.json'), JSON.stringify(manifest));
  await assert.rejects(runCompare({ out, resume: true, workers: 1 }), (e: unknown) => {
    assert.ok(e instanceof DataError);
    assert.match(e.message, /was trained on idx .*not on the comparison's data set idx; remove it or use another --out/);
    return true;
  });
});

test('compare --data folder on 9 test images: trained on the folder, t-SNE skipped with a note', async () => {
  const shapes = join(root, 'shapes');
  writeShapesFolder(shapes, 18);
  const out = join(root, 'cmp-folder');
  const o = await runCompare({ ...options(out), data: { name: 'folder', dir: shapes } });
  assert.equal(o.status, 'finished');
  assert.deepEqual(o.failures, []);
  const r = o.results!;
  assert.equal(r.dataset.name, 'folder');
  assert.equal(r.dataset.testImages, 9);
  const m = JSON.parse(readFileSync(join(out, 'runs', 'contrastive-seed0', 'manifest.json'), 'utf8')) as { dataset: { name: string } };
  assert.equal(m.dataset.name, 'folder');
  assert.equal(r.tsne, undefined);
  assert.deepEqual(r.notes, ['No t-SNE: the test split of folder has 9 images, fewer than 10.']);
  // 3 classes x (3 − 1) positive and as many negative test pairs
  assert.equal(r.runs[0]!.distances.pos.length + r.runs[0]!.distances.neg.length, 12);
});

test('compare --split classes: results.json counts the images and pairs of the runs\' own classes, and the report draws the test classes\' pairs', async () => {
  const out = join(root, 'cmp-split');
  const o = await runCompare({ ...options(out), tsnePoints: 0, split: 'classes' });
  assert.equal(o.status, 'finished');
  assert.deepEqual(o.failures, []);
  const r = o.results!;
  // by hand: classes 0,1 train (60 images each), classes 2,3 test (15 images each)
  assert.equal(r.dataset.testImages, 30);
  assert.equal(r.dataset.testPairs, 2 * 2 * 14);
  assert.equal(r.dataset.trainPairs, 2 * 2 * 59);
  // what the run itself scored
  const run = r.runs[0]!;
  assert.equal(run.distances.pos.length + run.distances.neg.length, r.dataset.testPairs);
  assert.equal(run.evaluation.retrieval!.n, r.dataset.testImages);
  // the report finds these test images and draws the polar plot of the test classes alone
  const rebuilt = siamese(['report', out]);
  assert.equal(rebuilt.code, 0, rebuilt.stderr);
  assert.doesNotMatch(rebuilt.stdout, /no thumbnails|no polar plot|speaks of/i);
  assert.match(readFileSync(join(out, 'report.md'), 'utf8'), /236 train pairs, 56 test pairs, 30 test images/);
  const polar = readFileSync(join(out, 'figures', 'polar.svg'), 'utf8');
  const sectorLabels = [...polar.matchAll(/<text[^>]*>(\d)<\/text>/g)].map((m) => m[1]);
  assert.deepEqual([...new Set(sectorLabels)].sort(), ['2', '3']);
});
