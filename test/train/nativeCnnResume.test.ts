/**
 * `--base cnn --engine native`: a run stopped after an epoch and resumed (on another thread
 * count, which changes only speed) ends at the bits of a straight run: weights and per-epoch
 * losses. Skipped where the native engine is not built.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import type { Dataset } from '../../src/data/dataset.ts';
import { nativeStatus } from '../../src/engine/native.ts';
import { readSafetensors } from '../../src/io/safetensors.ts';
import { trainRun } from '../../src/train/run.ts';
import { syntheticSplit } from '../engine/synthetic.ts';

const root = mkdtempSync(join(tmpdir(), 'native-cnn-resume-'));
after(() => rmSync(root, { recursive: true, force: true }));

const dataset: Dataset = {
  name: 'synthetic',
  classes: Array.from({ length: 10 }, (_, i) => String(i)),
  train: syntheticSplit(300, 1, 14),
  test: syntheticSplit(100, 2, 14),
  source: 'test/engine/synthetic.ts (14x14)',
};
const config = { base: 'cnn', engine: 'native', embeddingDim: 8, trainPairs: 256, batchSize: 32, seed: 5, threads: 2 } as const;

const losses = (dir: string): number[] =>
  readFileSync(join(dir, 'log.jsonl'), 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l).loss as number);

test('a native cnn run resumed after an epoch (on one thread) ends bit-identical to a straight run', { skip: !nativeStatus().available && `native engine not available: ${nativeStatus().detail}` }, async () => {
  const straight = join(root, 'straight');
  const a = await trainRun({ config: { ...config, epochs: 3 }, out: straight, dataset, retrieval: false });
  assert.equal(a.status, 'finished');
  const parted = join(root, 'parted');
  await trainRun({ config: { ...config, epochs: 1 }, out: parted, dataset, retrieval: false });
  const b = await trainRun({ config: { epochs: 3, threads: 1 }, out: parted, dataset, resume: true, retrieval: false });
  assert.equal(b.status, 'finished');
  assert.equal(b.epochs, 3);
  const wa = (await readSafetensors(join(straight, 'weights.safetensors'))).tensors;
  const wb = (await readSafetensors(join(parted, 'weights.safetensors'))).tensors;
  assert.deepEqual(wb.map((t) => t.name), ['conv_1.kernel', 'conv_1.bias', 'conv_2.kernel', 'conv_2.bias', 'dense_1.kernel', 'dense_1.bias']);
  wa.forEach((t, i) => assert.deepEqual(wb[i]!.data, t.data, `${t.name} differs after resume`));
  assert.deepEqual(losses(parted), losses(straight));
  const m = JSON.parse(readFileSync(join(straight, 'manifest.json'), 'utf8'));
  assert.equal(m.config.engine, 'native');
  assert.equal(m.network.base, 'cnn');
  const log = readFileSync(join(parted, 'log.jsonl'), 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l));
  assert.deepEqual(log.map((e) => [e.engine, e.threads]), [['native', 2], ['native', 1], ['native', 1]]);
});
