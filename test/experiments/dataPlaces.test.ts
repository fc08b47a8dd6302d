/**
 * compare and sweep run again on an existing output folder hold its data set folder to the one it
 * recorded as `train --resume` does (train/config.ts, resumeConfig): the same folder named through
 * a link (or spelled another way) is that folder, and the record keeps the name it was first given;
 * another folder, even one holding the very same files, is refused in one line, exit 2, with the
 * output folder left byte for byte as it was. And sweep refuses an output folder inside the data
 * set folder before it reads the data (an existing folder there would be read as one more class).
 */
import assert from 'node:assert/strict';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { siamese } from '../cli/run.ts';
import { writeBandsIdx, writeShapesFolder } from '../data/datasets.ts';
import { snapshotFiles } from '../helpers.ts';

const root = mkdtempSync(join(tmpdir(), 'siamese-data-places-'));
after(() => rmSync(root, { recursive: true, force: true }));

const data = join(root, 'bands');
writeBandsIdx(data); // 8 classes: sweep's default class split trains on 4
const link = join(root, 'link-to-bands');
symlinkSync(data, link);
// the same folder spelled another way
const respelled = join(root, 'bands', '..', 'bands');
const copy = join(root, 'copy-of-bands');
cpSync(data, copy, { recursive: true });

const escape = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

const snapshot = (dir: string): Map<string, string> => snapshotFiles(dir, ['.siamese.lock']);

/** Exit 2, one line on stderr matching `message`, nothing under `folder` changed. */
function refused(args: string[], folder: string, message: RegExp): void {
  const was = snapshot(folder);
  const r = siamese(args);
  assert.equal(r.code, 2, r.stderr);
  const lines = r.stderr.trim().split('\n');
  assert.equal(lines.length, 1, r.stderr);
  assert.match(lines[0]!, message);
  assert.deepEqual(snapshot(folder), was, `${args.join(' ')} wrote into ${folder}`);
}

const json = (p: string): { spec?: { config: { data: unknown } }; definition?: { config: { data: unknown } }; config?: { data: unknown } } =>
  JSON.parse(readFileSync(p, 'utf8'));

test('compare again on its folder: the data folder through a link or another spelling is that folder; a copy of it is refused', () => {
  const out = join(root, 'cmp');
  const args = (dir: string): string[] => [
    'compare', '--data', 'idx', '--data-dir', dir, '--losses', 'contrastive', '--seeds', '1', '--epochs', '1', '--train-pairs', '100',
    '--embedding-dim', '4', '--tsne-points', '0', '--snapshot-points', '0', '--workers', '1', '--no-report', '--out', out,
  ];
  const first = siamese(args(data));
  assert.equal(first.code, 0, first.stderr);
  const runManifest = join(out, 'runs', 'contrastive-seed0', 'manifest.json');
  const trained = readFileSync(join(out, 'runs', 'contrastive-seed0', 'weights.safetensors'));

  for (const dir of [link, respelled]) {
    const again = siamese(args(dir));
    assert.equal(again.code, 0, `${dir}: ${again.stderr}`);
    // the finished run is reused, not trained again, and every record keeps the first name
    assert.match(again.stdout, /^1 run \(0 trained now, 1 reused\)/m, again.stdout);
    assert.deepEqual(readFileSync(join(out, 'runs', 'contrastive-seed0', 'weights.safetensors')), trained);
    assert.deepEqual(json(join(out, 'compare.json')).spec!.config.data, { name: 'idx', dir: data });
    assert.deepEqual(json(runManifest).config!.data, { name: 'idx', dir: data });
  }

  refused(args(copy), out, new RegExp(`^siamese: .*cmp holds a comparison with a different training config \\(data: .*${escape(data)}.* there, .*${escape(copy)}.* now\\)`));
});

test('sweep again on its folder: the data folder through a link or another spelling is that folder; a copy of it is refused', () => {
  const out = join(root, 'sweep');
  const args = (dir: string): string[] => [
    'sweep', '--data', 'idx', '--data-dir', dir, '--losses', 'contrastive', '--trials', '1', '--folds', '2', '--seeds', '1', '--epochs', '1',
    '--train-pairs', '100', '--embedding-dim', '4', '--workers', '1', '--no-report', '--out', out,
  ];
  const first = siamese(args(data));
  assert.equal(first.code, 0, first.stderr);
  const foldManifest = join(out, 'runs', 'contrastive', 'trial00', 'fold0', 'manifest.json');
  const weights = join(out, 'runs', 'contrastive', 'trial00', 'fold0', 'weights.safetensors');
  const trained = readFileSync(weights);

  for (const dir of [link, respelled]) {
    const again = siamese(args(dir));
    assert.equal(again.code, 0, `${dir}: ${again.stderr}`);
    assert.match(again.stdout, /\(0 trained now, 3 reused\)/, again.stdout);
    assert.deepEqual(readFileSync(weights), trained);
    assert.deepEqual(json(join(out, 'sweep.json')).definition!.config.data, { name: 'idx', dir: data });
    assert.deepEqual(json(foldManifest).config!.data, { name: 'idx', dir: data });
  }

  refused(args(copy), out, new RegExp(`^siamese: .*sweep holds a sweep with other settings \\(data: .*${escape(data)}.* there, .*${escape(copy)}.* here; see .*sweep\\.json\\); run the command that started it, or use another --out$`));
});

test('sweep refuses an output folder inside the data set folder before reading the data, as train and compare do; nothing written', () => {
  const shapes = join(root, 'shapes');
  writeShapesFolder(shapes, 6);
  // an existing folder inside the class folders' folder, as a sweep started there would have left
  const out = join(shapes, 'sweep-out');
  mkdirSync(out);
  const before = readdirSync(shapes, { recursive: true }).sort();
  const said = new RegExp(`^siamese: ${escape(out)} lies inside the data set folder \\(--data-dir ${escape(shapes)}\\): write the output outside it$`);
  for (const extra of [[], ['--plan']]) {
    const r = siamese(['sweep', '--data', 'folder', '--data-dir', shapes, '--losses', 'contrastive', '--trials', '1', '--folds', '2', '--seeds', '1', '--epochs', '1', '--out', out, ...extra]);
    assert.equal(r.code, 2, r.stderr);
    const lines = r.stderr.trim().split('\n');
    assert.equal(lines.length, 1, r.stderr);
    assert.match(lines[0]!, said, extra.join(' '));
    assert.deepEqual(readdirSync(shapes, { recursive: true }).sort(), before);
  }
  // through a link to the data folder too
  const shapesLink = join(root, 'shapes-link');
  symlinkSync(shapes, shapesLink);
  const r = siamese(['sweep', '--data', 'folder', '--data-dir', shapes, '--losses', 'contrastive', '--out', join(shapesLink, 'sweep-out')]);
  assert.equal(r.code, 2, r.stderr);
  assert.match(r.stderr.trim(), /^siamese: \S+ lies inside the data set folder \(--data-dir .*shapes\): write the output outside it$/);
  assert.equal(existsSync(join(shapes, 'sweep-out', 'sweep.json')), false);
  assert.deepEqual(readdirSync(shapes, { recursive: true }).sort(), before);
});
