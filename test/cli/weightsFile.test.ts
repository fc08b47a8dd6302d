import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { DataError } from '../../src/errors.ts';
import { writeSafetensors } from '../../src/io/safetensors.ts';
import { loadWeights } from '../../src/model/load.ts';
import { mlpNetwork } from '../../src/model/mlp.ts';
import { REPO_ROOT } from '../helpers.ts';
import { siamese } from './run.ts';

const dir = mkdtempSync(join(tmpdir(), 'weights-file-'));
after(() => rmSync(dir, { recursive: true, force: true }));

test('predict --weights README.md says the file is neither weights format (not a "header length")', () => {
  const r = siamese(['predict', '--weights', join(REPO_ROOT, 'README.md')]);
  assert.equal(r.code, 2, r.stderr);
  assert.match(r.stderr, /^siamese: \S*README\.md: neither a \.safetensors nor a Keras \.h5 file \(no safetensors header, no HDF5 signature\); give a run directory, a \.safetensors or an \.h5 file\n$/);
  assert.doesNotMatch(r.stderr, /header length/);
});

test('files are told apart by their first bytes, not by their names', async () => {
  const net = mlpNetwork();
  const ws = net.weightSpecs().map((s, i) => ({ name: s.name, shape: s.shape, data: new Float32Array(s.shape.reduce((a, b) => a * b, 1)).fill(i) }));
  // a real safetensors file under another name still loads
  const bin = join(dir, 'weights.bin');
  await writeSafetensors(bin, ws);
  const back = await loadWeights(bin, net);
  assert.deepEqual(back.map((t) => t.data[0]), [0, 1, 2, 3, 4, 5]);
  // 8 bytes that read as a huge header length, as any text does
  const txt = join(dir, 'notes.txt');
  writeFileSync(txt, 'Siamese networks, a few notes\n');
  await assert.rejects(loadWeights(txt, net), (e: Error) => e instanceof DataError && /notes\.txt: neither a \.safetensors nor a Keras \.h5 file/.test(e.message));
  // an empty file is neither either
  writeFileSync(join(dir, 'empty'), '');
  await assert.rejects(loadWeights(join(dir, 'empty'), net), /neither a \.safetensors nor a Keras \.h5 file/);
});

test('a compare or sweep folder given as weights names one of its runs to give instead', async () => {
  const net = mlpNetwork();
  const cmp = join(dir, 'cmp');
  const { mkdirSync } = await import('node:fs');
  mkdirSync(join(cmp, 'runs', 'yukawa-seed1'), { recursive: true });
  mkdirSync(join(cmp, 'runs', 'contrastive-seed0'), { recursive: true });
  writeFileSync(join(cmp, 'compare.json'), '{}');
  await assert.rejects(loadWeights(cmp, net), {
    name: 'DataError',
    message: `${cmp}: a comparison folder, not a run: give one of its runs, e.g. ${join(cmp, 'runs', 'contrastive-seed0')}`,
  });
  const sw = join(dir, 'sw');
  mkdirSync(join(sw, 'runs', 'yukawa', 'tuned-seed0'), { recursive: true });
  writeFileSync(join(sw, 'sweep.json'), '{}');
  await assert.rejects(loadWeights(sw, net), {
    name: 'DataError',
    message: `${sw}: a sweep folder, not a run: give one of its runs, e.g. ${join(sw, 'runs', '<loss>', 'tuned-seed0')}`,
  });
});
