/**
 * A run's weights.safetensors copied out of its folder (a "bare" file) must be evaluated as the
 * run was: the file's safetensors `__metadata__` records the loss, the normalisation, the
 * threshold rule, the split and the base network. Before, a batch-loss run's bare file was
 * evaluated unnormalised at threshold 0.5 and gave other numbers than its folder, silently.
 */
import assert from 'node:assert/strict';
import { copyFileSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { readSafetensors, writeSafetensors } from '../../src/io/safetensors.ts';
import { writeBandsIdx } from '../data/datasets.ts';
import { siamese } from './run.ts';

const root = mkdtempSync(join(tmpdir(), 'siamese-bare-weights-'));
after(() => rmSync(root, { recursive: true, force: true }));
const dataDir = join(root, 'data');
writeBandsIdx(dataDir); // 8 classes
const data = ['--data', 'idx', '--data-dir', dataDir];
const run = join(root, 'run');
const bare = join(root, 'bare.safetensors');

/** predict's measures, without its first line (which names the weights) */
const measures = (stdout: string): string => stdout.split('\n').slice(1).join('\n');

test('a batch-loss run: its bare weights file gives the numbers of its folder (predict, embed, export)', () => {
  const t = siamese(['train', '--loss', 'nt-xent', '--epochs', '2', '--batch-size', '32', '--split', 'classes=1,3,5', '--snapshot-points', '0', '--out', run, ...data]);
  assert.equal(t.code, 0, t.stderr);
  copyFileSync(join(run, 'weights.safetensors'), bare);

  const folder = siamese(['predict', '--weights', run, ...data]);
  assert.equal(folder.code, 0, folder.stderr);
  // the data set is named: the run's data spec holds its folder, the same here, so no flag differs
  const file = siamese(['predict', '--weights', bare, ...data]);
  assert.equal(file.code, 0, file.stderr);
  assert.equal(file.stderr, '');
  assert.equal(measures(file.stdout), measures(folder.stdout));
  assert.match(file.stdout, /^ {2}test classes: 1, 3, 5 /m);
  assert.match(file.stdout, /at the best threshold/);

  // embed: unit rows, equal to the folder's
  const e1 = siamese(['embed', '--weights', run, '--out', join(root, 'run.npy'), ...data]);
  const e2 = siamese(['embed', '--weights', bare, '--out', join(root, 'bare.npy'), ...data]);
  assert.equal(e1.code, 0, e1.stderr);
  assert.equal(e2.code, 0, e2.stderr);
  assert.equal(e2.stderr, '');
  assert.deepEqual(readFileSync(join(root, 'bare.npy')), readFileSync(join(root, 'run.npy')));
  const npy = readFileSync(join(root, 'bare.npy'));
  const headerLen = npy.readUInt16LE(8);
  const emb = new Float32Array(npy.buffer.slice(npy.byteOffset + 10 + headerLen, npy.byteOffset + npy.length));
  const dim = 128;
  for (let r = 0; r < 3; r++) {
    let s = 0;
    for (let j = 0; j < dim; j++) s += emb[r * dim + j]! ** 2;
    assert.ok(Math.abs(Math.sqrt(s) - 1) < 1e-5, `row ${r} has length ${Math.sqrt(s)}`);
  }

  // export of the bare file to safetensors keeps the record, so that file scores the same too
  const x = join(root, 'exported.safetensors');
  const ex = siamese(['export', '--weights', bare, '--out', x, ...data]);
  assert.equal(ex.code, 0, ex.stderr);
  const again = siamese(['predict', '--weights', x, ...data]);
  assert.equal(again.code, 0, again.stderr);
  assert.equal(measures(again.stdout), measures(folder.stdout));
});

test("the weights file's metadata names what evaluation needs, in words and as the config", async () => {
  const { metadata } = await readSafetensors(bare, { only: () => false });
  assert.equal(metadata['loss'], 'nt-xent');
  assert.equal(metadata['embeddings'], 'l2-normalised: row / max(|row|, 1e-12)');
  assert.equal(metadata['distance'], 'euclidean');
  assert.equal(metadata['pair-threshold'], 'best (a batch loss sets no absolute distance scale)');
  assert.equal(metadata['split'], 'classes=1,3,5');
  assert.equal(metadata['base'], 'mlp');
  assert.equal(metadata['embedding-dim'], '128');
  assert.equal(metadata['epoch'], '2');
  const config = JSON.parse(metadata['siamese-lab.config']!) as Record<string, unknown>;
  assert.equal(config['loss'], 'nt-xent');
  assert.equal(config['split'], 'classes=1,3,5');
  // the checkpoint's copy of the config is the same one, less the engine and its threads
  // (how fast, not what: a run trained elsewhere writes the same bytes)
  const ck = await readSafetensors(join(run, 'checkpoint.safetensors'), { only: () => false });
  const { engine, threads, ...rest } = JSON.parse(ck.metadata['config']!) as Record<string, unknown>;
  assert.equal(engine, 'auto');
  assert.equal(threads, 0);
  assert.deepEqual(config, rest);
});

test('a flag given for a bare file wins over its record, with one note naming both', () => {
  const folder = siamese(['predict', '--weights', run, '--split', 'pairs', ...data]);
  const file = siamese(['predict', '--weights', bare, '--split', 'pairs', ...data]);
  assert.equal(file.code, 0, file.stderr);
  assert.equal(measures(file.stdout), measures(folder.stdout));
  assert.equal(
    file.stderr,
    `siamese: note: ${bare} was trained with --split classes=1,3,5; using --split pairs as given\n`,
  );
});

test('a weights file without metadata (an older version) is evaluated as before, with one warning line', async () => {
  const { tensors } = await readSafetensors(bare);
  const old = join(root, 'old.safetensors');
  await writeSafetensors(old, tensors);
  const r = siamese(['predict', '--weights', old, ...data]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(
    r.stderr,
    `siamese: warning: ${old} does not record how it was trained (written by another tool or an older siamese-lab): ` +
      'assumed a pair loss (embeddings not normalised, pair accuracy at D < 0.5), split pairs, base mlp; ' +
      "a batch loss's weights give other numbers than their run folder: give the run folder instead\n",
  );
  // as before: not normalised, the fixed threshold, every class
  assert.match(r.stdout, /test pairs: \d+ \(threshold D < 0\.5\)/);
  assert.doesNotMatch(r.stdout, /test classes/);
});
