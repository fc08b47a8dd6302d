/**
 * The image shape is part of the data a run records: the checksums cover the pixel and label
 * bytes only, so the same bytes read as other images (12x12 read as 8x18, a flat MLP's input just
 * as wide) passed a resume. A run records its images' height, width and channels beside the
 * checksums, and a resume (train --resume; a comparison's or sweep's run, runState) refuses
 * another shape in one line, nothing written. A manifest written before (no shape recorded)
 * still resumes, and records the shape from then on.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { loadDataset } from '../../src/data/registry.ts';
import { DataError } from '../../src/errors.ts';
import { runState } from '../../src/experiments/grid.ts';
import { trainRun } from '../../src/train/run.ts';
import { siamese } from '../cli/run.ts';
import { writeBandsIdx } from '../data/datasets.ts';
import { snapshotFiles } from '../helpers.ts';

const root = mkdtempSync(join(tmpdir(), 'siamese-resume-shape-'));
after(() => rmSync(root, { recursive: true, force: true }));

const data = join(root, 'bands');
const run = join(root, 'run');
const IMAGE_FILES = ['train-images-idx3-ubyte', 't10k-images-idx3-ubyte'];

const snapshot = snapshotFiles;

type Manifest = { epochsDone: number; config: Record<string, unknown>; dataset: { imageShape?: number[] } };
const manifestPath = join(run, 'manifest.json');
const manifest = (): Manifest => JSON.parse(readFileSync(manifestPath, 'utf8'));

/** The IDX image files' headers rewritten to height x width: the same pixel bytes, other images. */
function reshape(height: number, width: number): void {
  for (const f of IMAGE_FILES) {
    const bytes = readFileSync(join(data, f));
    const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    // magic (4 bytes), count, then height and width, big-endian
    assert.equal(v.getUint32(8, false) * v.getUint32(12, false), height * width);
    v.setUint32(8, height, false);
    v.setUint32(12, width, false);
    writeFileSync(join(data, f), bytes);
  }
}

before(async () => {
  writeBandsIdx(data); // 12x12 images
  const res = await trainRun({
    config: { data: { name: 'idx', dir: data }, epochs: 1, trainPairs: 200, embeddingDim: 8, batchSize: 64, engine: 'tfjs' },
    out: run,
    retrieval: false,
  });
  assert.equal(res.status, 'finished');
});

test('a run records its images\' height, width and channels beside the checksums', () => {
  assert.deepEqual(manifest().dataset.imageShape, [12, 12, 1]);
});

test('the same bytes as images of another shape: train --resume refused in one line, nothing written', async () => {
  const ds = await loadDataset({ name: 'idx', dir: data });
  reshape(8, 18);
  try {
    const reshaped = await loadDataset({ name: 'idx', dir: data });
    // what the checksums alone could not tell apart
    assert.equal(reshaped.train.checksum, ds.train.checksum);
    assert.equal(reshaped.test.checksum, ds.test.checksum);
    const was = snapshot(run);
    const r = siamese(['train', '--resume', run, '--epochs', '2']);
    assert.equal(r.code, 2, r.stderr);
    const lines = r.stderr.trim().split('\n');
    assert.equal(lines.length, 1, r.stderr);
    assert.match(lines[0]!, /^siamese: .*run was trained on idx \(IDX files in .*bands\) with images of 12x12 pixels, but the data loaded now are 8x18; restore the original data to resume, or start a new run$/);
    assert.deepEqual(snapshot(run), was, 'a refused resume wrote into the run folder');

    // a comparison's or sweep's run with another shape is not reused, nor resumed
    const config = manifest().config as never;
    assert.deepEqual(runState(run, config, ds), { kind: 'finished' });
    assert.throws(
      () => runState(run, config, reshaped),
      (e: unknown) => e instanceof DataError && /run was trained on idx \(IDX files in .*\) with images of 12x12 pixels, not on the data set idx loaded now \(8x18\); remove it or use another --out$/.test(e.message),
    );
  } finally {
    reshape(12, 12);
  }
});

test('a manifest written before shapes were recorded (checksums only) still resumes, and records the shape from then on', async () => {
  const m = manifest();
  delete m.dataset.imageShape;
  writeFileSync(manifestPath, JSON.stringify(m, null, 2));
  const ds = await loadDataset({ name: 'idx', dir: data });
  assert.deepEqual(runState(run, m.config as never, ds), { kind: 'finished' });
  const r = siamese(['train', '--resume', run, '--epochs', '2']);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(manifest().epochsDone, 2);
  assert.deepEqual(manifest().dataset.imageShape, [12, 12, 1]);
});

test('a recorded shape that is not three positive integers is a damaged manifest, named in one line', () => {
  const m = manifest();
  const good = JSON.stringify(m, null, 2);
  m.dataset.imageShape = [12, -1];
  writeFileSync(manifestPath, JSON.stringify(m, null, 2));
  try {
    const r = siamese(['train', '--resume', run, '--epochs', '3']);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr.trim(), /^siamese: .*manifest\.json: invalid run manifest: dataset\.imageShape is not \[height, width, channels\]$/);
  } finally {
    writeFileSync(manifestPath, good);
  }
});
