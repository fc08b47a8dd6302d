/**
 * A run's own weights file (run/weights.safetensors) loads with the run's settings, as the run
 * folder does: its loss (a batch loss evaluates at its best threshold on L2-normalised
 * embeddings) and its class split. A copy outside the folder carries them in its header; only
 * a file without that record is bare.
 */
import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { loadDataset } from '../../src/data/registry.ts';
import { initBackend } from '../../src/engine/backend.ts';
import { encodeSafetensors, parseSafetensors } from '../../src/io/safetensors.ts';
import { resolveConfig } from '../../src/train/config.ts';
import { embedSplit, predict, trainRun } from '../../src/train/run.ts';
import { writeBandsIdx } from '../data/datasets.ts';

const root = mkdtempSync(join(tmpdir(), 'siamese-weights-file-'));
after(() => rmSync(root, { recursive: true, force: true }));
const dataDir = join(root, 'data');
writeBandsIdx(dataDir);
const data = { name: 'idx' as const, dir: dataDir };

test("a run's weights file is evaluated and embedded with the run's loss and split, like the run folder; a copy outside it is bare", async () => {
  await initBackend('wasm');
  const dataset = await loadDataset(data);
  const run = join(root, 'run');
  const config = resolveConfig({ loss: 'nt-xent', epochs: 1, batchSize: 32, split: 'classes', data, seed: 3 });
  assert.equal((await trainRun({ config, out: run, dataset })).status, 'finished');

  const byFolder = await predict({ weights: run, dataset });
  const byFile = await predict({ weights: join(run, 'weights.safetensors'), dataset });
  assert.equal(byFolder.pairs.thresholdFrom, 'best');
  assert.equal(byFile.config.loss, 'nt-xent');
  assert.equal(byFile.config.split, byFolder.config.split);
  assert.equal(byFile.pairs.thresholdFrom, 'best');
  assert.equal(byFile.pairs.n, byFolder.pairs.n);
  assert.equal(byFile.pairs.accuracy, byFolder.pairs.accuracy);
  const e1 = await embedSplit({ weights: run, split: 'test', dataset });
  const e2 = await embedSplit({ weights: join(run, 'weights.safetensors'), split: 'test', dataset });
  assert.deepEqual(e2.embeddings, e1.embeddings);

  // the same file outside a run folder: its header records the run (loss, split), so it is
  // evaluated as the folder is
  const bare = join(root, 'bare');
  mkdirSync(bare);
  copyFileSync(join(run, 'weights.safetensors'), join(bare, 'weights.safetensors'));
  const copy = await predict({ weights: join(bare, 'weights.safetensors'), dataset });
  assert.equal(copy.config.loss, 'nt-xent');
  assert.equal(copy.pairs.thresholdFrom, 'best');
  assert.equal(copy.pairs.accuracy, byFolder.pairs.accuracy);
  // the same tensors without that record (an older file, another tool's): no loss to go by
  const { tensors } = parseSafetensors(readFileSync(join(run, 'weights.safetensors')));
  writeFileSync(join(bare, 'plain.safetensors'), encodeSafetensors(tensors));
  const alone = await predict({ weights: join(bare, 'plain.safetensors'), dataset });
  assert.equal(alone.config.loss, 'contrastive');
  assert.equal(alone.pairs.thresholdFrom, undefined);
});
