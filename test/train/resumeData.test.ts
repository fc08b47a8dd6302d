/**
 * `train --resume` and the data set a run was trained on: the run's recorded folder is used when
 * none is given, the same folder named through a link is that folder, and any other data (another
 * folder, the recorded folder's files changed or gone, another data set handed to trainRun) is
 * refused in one line, exit 2, with the run folder left byte for byte as it was.
 */
import assert from 'node:assert/strict';
import { cpSync, mkdtempSync, readFileSync, renameSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { loadDataset } from '../../src/data/registry.ts';
import { DataError } from '../../src/errors.ts';
import { trainRun } from '../../src/train/run.ts';
import { siamese } from '../cli/run.ts';
import { writeBandsIdx } from '../data/datasets.ts';
import { snapshotFiles } from '../helpers.ts';

const root = mkdtempSync(join(tmpdir(), 'siamese-resume-data-'));
after(() => rmSync(root, { recursive: true, force: true }));

const data = join(root, 'bands');
const run = join(root, 'run');

const snapshot = snapshotFiles;

const manifest = (): { epochsDone: number; config: { data: unknown }; dataset: { trainChecksum: string } } =>
  JSON.parse(readFileSync(join(run, 'manifest.json'), 'utf8'));

/** A refusal: exit 2, one line on stderr matching `message`, nothing in the run folder changed. */
function refused(args: string[], message: RegExp): void {
  const was = snapshot(run);
  const r = siamese(['train', '--resume', run, ...args]);
  assert.equal(r.code, 2, r.stderr);
  const lines = r.stderr.trim().split('\n');
  assert.equal(lines.length, 1, r.stderr);
  assert.match(lines[0]!, message);
  assert.deepEqual(snapshot(run), was, 'a refused resume wrote into the run folder');
}

before(async () => {
  writeBandsIdx(data);
  const res = await trainRun({
    config: { data: { name: 'idx', dir: data }, epochs: 1, trainPairs: 200, embeddingDim: 8, batchSize: 64, engine: 'tfjs' },
    out: run,
    retrieval: false,
  });
  assert.equal(res.status, 'finished');
});

test('without --data-dir the run goes on from the folder it recorded', () => {
  const r = siamese(['train', '--resume', run, '--epochs', '2']);
  assert.equal(r.code, 0, r.stderr);
  const m = manifest();
  assert.equal(m.epochsDone, 2);
  assert.deepEqual(m.config.data, { name: 'idx', dir: data });
});

test('the recorded folder named through a link is that folder: accepted, and the record keeps its own name', () => {
  const link = join(root, 'link-to-bands');
  symlinkSync(data, link);
  const r = siamese(['train', '--resume', run, '--epochs', '3', '--data', 'idx', '--data-dir', link]);
  assert.equal(r.code, 0, r.stderr);
  const m = manifest();
  assert.equal(m.epochsDone, 3);
  assert.deepEqual(m.config.data, { name: 'idx', dir: data });
});

test('another folder, or another data set, is refused even with the same files', () => {
  const copy = join(root, 'copy');
  cpSync(data, copy, { recursive: true });
  const kept = new RegExp(`was trained with --data idx \\(${data.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\), and a resumed run keeps it`);
  refused(['--epochs', '4', '--data', 'idx', '--data-dir', copy], kept);
  refused(['--epochs', '4', '--data', 'mnist'], kept);
});

test('another data set handed to trainRun on resume is refused before anything is written', async () => {
  const other = join(root, 'other');
  cpSync(data, other, { recursive: true });
  const f = join(other, 't10k-labels-idx1-ubyte');
  const bytes = readFileSync(f);
  bytes[8 + 3] = (bytes[8 + 3]! + 1) % 8; // one test label moved to another class
  writeFileSync(f, bytes);
  const was = snapshot(run);
  await assert.rejects(
    trainRun({ config: { epochs: 4 }, out: run, resume: true, dataset: await loadDataset({ name: 'idx', dir: other }) }),
    (e: unknown) => e instanceof DataError && /data loaded now differ/.test(e.message),
  );
  assert.deepEqual(snapshot(run), was);
});

test('the recorded folder changed or gone: refused in one line, nothing written', () => {
  const images = join(data, 'train-images-idx3-ubyte');
  const original = readFileSync(images);
  const changed = Buffer.from(original);
  changed[16 + 5] = 255 - changed[16 + 5]!; // one pixel of the first image
  writeFileSync(images, changed);
  refused(['--epochs', '4'], /was trained on idx \(IDX files in .*\), but the data loaded now differ/);
  writeFileSync(images, original);

  const away = join(root, 'bands-moved');
  renameSync(data, away);
  try {
    refused(['--epochs', '4'], new RegExp(`^siamese: ${run.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} was trained on idx in .*bands, which cannot be loaded now \\(.*missing train-images-idx3-ubyte.*\\); restore that data to resume, or start a new run$`));
  } finally {
    renameSync(away, data);
  }
  // restored: the run goes on
  const r = siamese(['train', '--resume', run, '--epochs', '4']);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(manifest().epochsDone, 4);
  assert.ok(statSync(join(run, 'result.json')).isFile());
});
