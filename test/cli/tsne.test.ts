import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { encodeNpy, readNpy } from '../../src/io/npy.ts';
import { Rng } from '../../src/rng.ts';
import { siamese } from './run.ts';

test('siamese tsne maps a float32 .npy matrix to an [N, 2] .npy that keeps clusters apart', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'tsne-'));
  const rng = new Rng(4);
  const n = 300;
  const dim = 16;
  const x = new Float32Array(n * dim);
  for (let i = 0; i < n; i++) for (let j = 0; j < dim; j++) x[i * dim + j] = rng.normal() * 0.3 + (j === i % 3 ? 5 : 0);
  writeFileSync(join(dir, 'x.npy'), encodeNpy({ dtype: 'float32', shape: [n, dim], data: x }));
  const r = siamese(['tsne', '--in', join(dir, 'x.npy'), '--out', join(dir, 'y.npy'), '--perplexity', '20', '--seed', '1', '--iterations', '500']);
  assert.equal(r.code, 0, r.stderr);
  const y = await readNpy(join(dir, 'y.npy'));
  assert.equal(y.dtype, 'float32');
  assert.deepEqual(y.shape, [n, 2]);
  // nearest neighbour in 2-D shares the cluster
  const d = y.data as Float32Array;
  let agree = 0;
  for (let i = 0; i < n; i++) {
    let best = -1;
    let bd = Infinity;
    for (let j = 0; j < n; j++) {
      if (j === i) continue;
      const dd = (d[2 * i]! - d[2 * j]!) ** 2 + (d[2 * i + 1]! - d[2 * j + 1]!) ** 2;
      if (dd < bd) [bd, best] = [dd, j];
    }
    if (best % 3 === i % 3) agree++;
  }
  assert.ok(agree / n > 0.95, `neighbour agreement ${agree / n}`);

  const bad = siamese(['tsne', '--in', join(dir, 'missing.npy'), '--out', join(dir, 'z.npy')]);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /missing\.npy: no such file/);
  assert.equal(existsSync(join(dir, 'z.npy')), false, 'no output written on error');
});

test('siamese tsne refuses a perplexity above (rows - 1) / 3 (more neighbours than a point has), writing nothing', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tsne-'));
  const rng = new Rng(5);
  const n = 40;
  const x = new Float32Array(n * 4).map(() => rng.normal());
  writeFileSync(join(dir, 'x.npy'), encodeNpy({ dtype: 'float32', shape: [n, 4], data: x }));
  // (40 - 1) / 3 = 13: 14 asks for 42 neighbours of 39
  const bad = siamese(['tsne', '--in', join(dir, 'x.npy'), '--out', join(dir, 'y.npy'), '--perplexity', '14', '--iterations', '50']);
  assert.equal(bad.code, 2, bad.stderr);
  assert.equal(bad.stderr, `siamese: --perplexity 14 is too large for 40 rows: at most (rows - 1) / 3 = 13\n`);
  assert.equal(existsSync(join(dir, 'y.npy')), false);
  const ok = siamese(['tsne', '--in', join(dir, 'x.npy'), '--out', join(dir, 'y.npy'), '--perplexity', '13', '--iterations', '50']);
  assert.equal(ok.code, 0, ok.stderr);
});

test('siamese tsne: one row, or too few rows for the default perplexity, is one line naming the rule, writing nothing', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tsne-'));
  const rng = new Rng(6);
  for (const n of [1, 20]) writeFileSync(join(dir, `x${n}.npy`), encodeNpy({ dtype: 'float32', shape: [n, 4], data: new Float32Array(n * 4).map(() => rng.normal()) }));
  const one = siamese(['tsne', '--in', join(dir, 'x1.npy'), '--out', join(dir, 'y.npy')]);
  assert.equal(one.code, 2, one.stderr);
  assert.equal(one.stderr, `siamese: ${join(dir, 'x1.npy')} holds 1 row: a t-SNE layout needs 2 or more\n`);
  // (20 - 1) / 3 = 6.33: the default 30 asks for 90 neighbours of 19
  const few = siamese(['tsne', '--in', join(dir, 'x20.npy'), '--out', join(dir, 'y.npy')]);
  assert.equal(few.code, 2, few.stderr);
  assert.equal(few.stderr, 'siamese: the default perplexity 30 is too large for 20 rows: give --perplexity 6.33 or less ((rows - 1) / 3)\n');
  assert.equal(existsSync(join(dir, 'y.npy')), false);
});

test('siamese tsne: --iterations beyond 100,000 (a mistyped count ran for days) is one line', () => {
  const r = siamese(['tsne', '--in', 'x.npy', '--out', 'y.npy', '--iterations', '100000000']);
  assert.equal(r.code, 2, r.stderr);
  assert.equal(r.stderr, 'siamese: --iterations must be an integer from 1 to 100000, got "100000000"\n');
});
