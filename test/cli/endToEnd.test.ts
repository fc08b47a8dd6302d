// A new user's first session, end to end through the CLI in a fresh working folder: `compare`
// with its default output folder, `predict` with no --weights (it must find the newest run that
// compare made), and `embed`, checked against a plain float64 forward pass of the run's weights.
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { loadMnist } from '../../src/data/mnist.ts';
import { readNpy } from '../../src/io/npy.ts';
import { readSafetensors } from '../../src/io/safetensors.ts';
import { siamese } from './run.ts';

const cwd = mkdtempSync(join(tmpdir(), 'siamese-first-session-'));
after(() => rmSync(cwd, { recursive: true, force: true }));

/** Three Dense+ReLU layers in float64, no engine involved. */
function forward(x: Float64Array, ws: { data: Float32Array; shape: number[] }[]): Float64Array {
  let h = x;
  for (let l = 0; l < ws.length; l += 2) {
    const [inD, outD] = ws[l]!.shape as [number, number];
    const out = new Float64Array(outD);
    for (let o = 0; o < outD; o++) {
      let z = ws[l + 1]!.data[o]!;
      for (let i = 0; i < inD; i++) z += h[i]! * ws[l]!.data[i * outD + o]!;
      out[o] = Math.max(z, 0);
    }
    h = out;
  }
  return h;
}

test('compare, then predict with no --weights, then embed, from a fresh folder', async () => {
  const c = siamese(['compare', '--losses', 'contrastive,yukawa', '--seeds', '1', '--epochs', '1', '--train-pairs', '2000', '--tsne-points', '0'], { cwd });
  assert.equal(c.code, 0, c.stderr);
  const results = JSON.parse(readFileSync(join(cwd, 'runs/compare/results.json'), 'utf8'));
  assert.deepEqual(results.summary.map((s: { lossId: string }) => s.lossId).sort(), ['contrastive', 'yukawa']);
  assert.ok(existsSync(join(cwd, 'runs/compare/report.html')));

  // predict finds the newest of compare's runs, and reports that run's own accuracy
  const p = siamese(['predict'], { cwd });
  assert.equal(p.code, 0, p.stderr);
  const run = /^weights: (.+)$/m.exec(p.stdout)?.[1];
  assert.ok(run && /^runs\/compare\/runs\/(contrastive|yukawa)-seed0$/.test(run), p.stdout);
  const result = JSON.parse(readFileSync(join(cwd, run, 'result.json'), 'utf8'));
  const acc = result.evaluation.pairs.accuracy;
  assert.ok(acc > 0.45 && acc < 1, `accuracy ${acc}`); // 1 epoch of 2,000 pairs: yukawa may still sit near chance
  assert.match(p.stdout, new RegExp(`Accuracy on test set: ${(100 * acc).toFixed(2).replace('.', '\\.')}%`));

  // embed writes the test embeddings that a plain forward pass of the run's weights gives
  const e = siamese(['embed', '--weights', run, '--split', 'test', '--out', 'emb.npy'], { cwd });
  assert.equal(e.code, 0, e.stderr);
  const emb = await readNpy(join(cwd, 'emb.npy'));
  assert.deepEqual(emb.shape, [10000, 128]);
  const { tensors } = await readSafetensors(join(cwd, run, 'weights.safetensors'));
  const test = (await loadMnist()).test;
  for (const row of [0, 1, 4321, 9999]) {
    const x = Float64Array.from(test.images.subarray(row * 784, (row + 1) * 784), (v) => v / 255);
    const want = forward(x, tensors);
    for (let j = 0; j < 128; j++) {
      const got = (emb.data as Float32Array)[row * 128 + j]!;
      assert.ok(Math.abs(got - want[j]!) <= 1e-5 * Math.max(1, Math.abs(want[j]!)), `row ${row} dim ${j}: ${got} vs ${want[j]}`);
    }
  }
});
