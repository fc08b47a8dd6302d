import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { DataError } from '../../src/errors.ts';
import { predict, trainRun } from '../../src/train/run.ts';
import { idxFile, writeShapesFolder as writeFolderDataset } from '../data/datasets.ts';
import { encodeTestPng } from '../data/pngEncoder.ts';
import { siamese } from './run.ts';

const root = mkdtempSync(join(tmpdir(), 'siamese-data-cli-'));
after(() => rmSync(root, { recursive: true, force: true }));

test('train --data folder --base cnn records the data set; resume reloads it and refuses changed data; predict reuses it', async () => {
  const data = join(root, 'shapes');
  writeFolderDataset(data, 18);
  const out = join(root, 'run');
  const r = siamese(['train', '--data', 'folder', '--data-dir', data, '--base', 'cnn', '--embedding-dim', '8', '--epochs', '1', '--batch-size', '16', '--out', out, '--engine', 'tfjs']);
  assert.equal(r.code, 0, r.stderr);
  const m = JSON.parse(readFileSync(join(out, 'manifest.json'), 'utf8'));
  assert.deepEqual(m.config.data, { name: 'folder', dir: data });
  assert.equal(m.config.base, 'cnn');
  assert.equal(m.network.base, 'cnn');
  assert.equal(m.network.embeddingDim, 8);
  assert.equal(m.dataset.name, 'folder');
  assert.match(m.dataset.source, /3 classes, 45 train \/ 9 test/);

  // resume (in-process) reloads the folder from the manifest and trains one more epoch
  const res = await trainRun({ config: { epochs: 2 }, out, resume: true, retrieval: false });
  assert.equal(res.status, 'finished');
  assert.equal(res.epochs, 2);

  // predict picks the run's base network and data set from its manifest
  const e = await predict({ weights: out, config: { base: undefined, data: undefined }, retrieval: false });
  assert.equal(e.config.base, 'cnn');
  assert.deepEqual(e.config.data, { name: 'folder', dir: data });

  // the images changed: resuming would mix data sets
  writeFileSync(join(data, 'star', '0.png'), encodeTestPng(new Array(144).fill(9), 12, 12, { color: 0, depth: 8 }));
  await assert.rejects(trainRun({ config: { epochs: 3 }, out, resume: true }), (err: Error) => err instanceof DataError && /data loaded now differ/.test(err.message));
});

test('--data and --data-dir are checked before anything runs', () => {
  const noDir = siamese(['train', '--data', 'idx', '--epochs', '0', '--out', join(root, 'x')]);
  assert.equal(noDir.code, 2);
  assert.match(noDir.stderr, /--data idx needs --data-dir DIR/);
  const noName = siamese(['predict', '--data-dir', root]);
  assert.equal(noName.code, 2);
  assert.match(noName.stderr, /--data-dir needs --data: mnist, fashion-mnist, idx, folder/);
  const bad = siamese(['train', '--data', 'cifar']);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /Allowed choices are mnist, fashion-mnist, idx, folder/);
});

test('IDX files of 0x0 images or of no images are refused in one line (0x0 reached the engine: internal error)', () => {
  const write = (dir: string, n: number, side: number): void => {
    mkdirSync(dir, { recursive: true });
    for (const prefix of ['train', 't10k']) {
      writeFileSync(join(dir, `${prefix}-images-idx3-ubyte`), idxFile([n, side, side], new Uint8Array(n * side * side)));
      writeFileSync(join(dir, `${prefix}-labels-idx1-ubyte`), idxFile([n], Uint8Array.from({ length: n }, (_, i) => i % 2)));
    }
  };
  for (const [name, n, side, message] of [
    ['flat', 20, 0, /flat\/train-images-idx3-ubyte: images of 0x0 pixels; an image needs at least 1x1$/],
    ['none', 0, 4, /none\/train-images-idx3-ubyte: holds no images$/],
  ] as const) {
    const dir = join(root, name);
    write(dir, n, side);
    const r = siamese(['train', '--data', 'idx', '--data-dir', dir, '--epochs', '1', '--train-pairs', '50', '--snapshot-points', '0', '--out', join(root, `${name}-run`)]);
    assert.equal(r.code, 2, r.stderr);
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
    assert.match(r.stderr.trim(), message);
  }
});
