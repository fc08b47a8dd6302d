/**
 * The explorer's per-epoch API of `siamese serve`: the runs that store embeddings, one run's
 * subset and epochs, the k nearest neighbours in the full embedding space (against a brute-force
 * loop over the values the file holds), warm-started layouts per epoch, and damaged or escaping
 * files answered with a message or 404, never a crash.
 */
import assert from 'node:assert/strict';
import { appendFileSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { type Served, startServer } from '../../src/serve/server.ts';
import { EMBEDDINGS_FILE } from '../../src/train/epochEmbeddings.ts';
import { runTsne } from '../../src/viz/tsne.ts';
import { ensureWebBuilt, getJson, rawGet, writeManifest } from './helpers.ts';
import { bruteNeighbours, mnistTestLabels, type SnapshotFixture, writeSnapshots } from './snapshotFixture.ts';

const base = mkdtempSync(join(tmpdir(), 'siamese-serve-snap-'));
const root = join(base, 'served');
let served: Served;
let fx: SnapshotFixture;
const ROWS = 120;
const DIM = 16;

before(async () => {
  ensureWebBuilt();
  const run = join(root, 'a-seed0');
  writeManifest(run, { loss: 'contrastive', params: { margin: 1 }, seed: 0, epochs: 3 });
  fx = writeSnapshots(run, { rows: ROWS, dim: DIM, epochs: [0, 1, 2, 3] });
  // a run being written: its last record is half there
  const live = join(root, 'live-seed1');
  writeManifest(live, { loss: 'yukawa', params: { kappa: 5 }, seed: 1, epochs: 3 });
  writeSnapshots(live, { rows: ROWS, dim: DIM, epochs: [0, 1] });
  appendFileSync(join(live, EMBEDDINGS_FILE), new Uint8Array(100));
  // a corrupt file, and one that is a symlink out of the served folder
  const bad = join(root, 'bad-seed2');
  writeManifest(bad, { loss: 'contrastive', params: { margin: 1 }, seed: 2, epochs: 3 });
  writeFileSync(join(bad, EMBEDDINGS_FILE), 'SLEMBED1 not really');
  const outside = join(base, 'outside');
  mkdirSync(outside);
  writeSnapshots(outside, { rows: ROWS, dim: DIM, epochs: [0] });
  const escaping = join(root, 'escape-seed3');
  writeManifest(escaping, { loss: 'contrastive', params: { margin: 1 }, seed: 3, epochs: 3 });
  symlinkSync(join(outside, EMBEDDINGS_FILE), join(escaping, EMBEDDINGS_FILE));
  // a header and no record yet: not listed
  const empty = join(root, 'empty-seed5');
  writeManifest(empty, { loss: 'contrastive', params: { margin: 1 }, seed: 5, epochs: 3 });
  writeSnapshots(empty, { rows: ROWS, dim: DIM, epochs: [] });
  // no embeddings at all
  writeManifest(join(root, 'none-seed4'), { loss: 'contrastive', params: { margin: 1 }, seed: 4, epochs: 3 });
  served = await startServer({ dirs: [root], port: 0, pollMs: 200 });
});

after(async () => {
  await served?.close();
  rmSync(base, { recursive: true, force: true });
});

const api = <T>(path: string): Promise<T> => getJson<T>(served.port, path);
const q = encodeURIComponent;

describe('siamese serve: per-epoch embeddings', () => {
  it('lists the runs that store embeddings, with their whole epochs', async () => {
    const { runs } = await api<{ runs: { id: string; epochs: number[]; rows: number }[] }>('/api/snapshots');
    assert.deepEqual(runs.sort((a, b) => a.id.localeCompare(b.id)), [
      { id: '0:a-seed0', epochs: [0, 1, 2, 3], rows: ROWS },
      { id: '0:live-seed1', epochs: [0, 1], rows: ROWS },
    ]);
    const one = await api<{ ok: true; rows: number; dim: number; epochs: number[]; indices: number[]; labels: number[] }>(`/api/snapshots?run=${q('0:a-seed0')}`);
    assert.deepEqual(one, { ok: true, rows: ROWS, dim: DIM, epochs: [0, 1, 2, 3], indices: fx.indices, labels: fx.labels });
  });

  it('gives the k nearest neighbours in the full embedding space, as a brute-force loop over the stored values', async () => {
    for (const [epoch, i, k] of [[0, 0, 10], [3, 17, 10], [2, 119, 5]] as const) {
      const got = await api<{ ok: true; neighbours: { i: number; d: number }[] }>(`/api/neighbours?run=${q('0:a-seed0')}&epoch=${epoch}&i=${i}&k=${k}`);
      const want = bruteNeighbours(fx.stored.get(epoch)!, ROWS, DIM, i, k);
      assert.deepEqual(got.neighbours.map((n) => n.i), want.map((n) => n.i), `epoch ${epoch} point ${i}`);
      got.neighbours.forEach((n, j) => assert.ok(Math.abs(n.d - want[j]!.d) < 1e-4, `distance ${n.d} vs ${want[j]!.d}`));
    }
    // default k is 10
    const d = await api<{ neighbours: unknown[] }>(`/api/neighbours?run=${q('0:a-seed0')}&epoch=1&i=3`);
    assert.equal(d.neighbours.length, 10);
  });

  it('lays out the first epoch from PCA and each later one warm-started from the layout before', async () => {
    const layouts: number[][] = [];
    for (const e of [0, 1, 2, 3]) {
      const r = await api<{ ok: true; epoch: number; points: number[] }>(`/api/layout?run=${q('0:a-seed0')}&epoch=${e}`);
      assert.equal(r.points.length, 2 * ROWS);
      assert.ok(r.points.every(Number.isFinite));
      layouts.push(r.points);
    }
    // the oracle: the project's t-SNE run here, cold for epoch 0, then from the server's previous map
    const perplexity = Math.min(30, (ROWS - 1) / 3);
    layouts.forEach((pts, e) => {
      const want = runTsne(fx.stored.get(e)!, ROWS, DIM, {
        perplexity, seed: 0, ...(e > 0 ? { init: Float32Array.from(layouts[e - 1]!), exaggerationIterations: 0, iterations: 300 } : {}),
      });
      // the server rounds to 3 decimals; a warm start from a rounded layout stays within rounding noise
      pts.forEach((v, j) => assert.ok(Math.abs(v - want[j]!) < 0.05, `epoch ${e} value ${j}: ${v} vs ${want[j]}`));
    });
    // the same epoch again is the cached layout, not a new one
    const again = await api<{ points: number[] }>(`/api/layout?run=${q('0:a-seed0')}&epoch=2`);
    assert.deepEqual(again.points, layouts[2]);
    // classes form clusters in every epoch's map: a point's nearest map neighbour mostly shares its class
    for (const pts of layouts) {
      let same = 0;
      for (let i = 0; i < ROWS; i++) {
        let best = -1, bd = Infinity;
        for (let j = 0; j < ROWS; j++) {
          if (j === i) continue;
          const d = (pts[2 * i]! - pts[2 * j]!) ** 2 + (pts[2 * i + 1]! - pts[2 * j + 1]!) ** 2;
          if (d < bd) { bd = d; best = j; }
        }
        if (fx.labels[best] === fx.labels[i]) same++;
      }
      assert.ok(same / ROWS > 0.9, `map neighbours of the same class: ${same}/${ROWS}`);
    }
  });

  it('answers bad requests and damaged files with a message, and files outside the folder with 404', async () => {
    const bad = await api<{ ok: false; message: string }>(`/api/snapshots?run=${q('0:bad-seed2')}`);
    assert.equal(bad.ok, false);
    assert.match(bad.message, /embeddings\.bin/);
    const noEpoch = await api<{ ok: false; message: string }>(`/api/layout?run=${q('0:a-seed0')}&epoch=9`);
    assert.deepEqual(noEpoch, { ok: false, message: 'no embeddings stored for epoch 9 (stored: 0, 1, 2, 3)' });
    const badPoint = await api<{ ok: false; message: string }>(`/api/neighbours?run=${q('0:a-seed0')}&epoch=0&i=500`);
    assert.deepEqual(badPoint, { ok: false, message: `point 500 is not in the subset (0..${ROWS - 1})` });
    const badK = await api<{ ok: false; message: string }>(`/api/neighbours?run=${q('0:a-seed0')}&epoch=0&i=1&k=0`);
    assert.equal(badK.ok, false);
    const badEpoch = await api<{ ok: false; message: string }>(`/api/layout?run=${q('0:a-seed0')}&epoch=x`);
    assert.equal(badEpoch.ok, false);
    for (const path of [`/api/snapshots?run=${q('0:escape-seed3')}`, `/api/layout?run=${q('0:none-seed4')}&epoch=0`, '/api/neighbours?run=nope&epoch=0&i=0', `/api/images?run=${q('0:escape-seed3')}`]) {
      assert.equal((await rawGet(served.port, path)).status, 404, path);
    }
    // the server goes on
    assert.equal((await rawGet(served.port, '/api/runs')).status, 200);
  });

  it('serves the digits of the stored images, checked against their labels', async () => {
    const img = await api<{ ok: true; height: number; width: number; pixels: string }>(`/api/images?run=${q('0:a-seed0')}`);
    assert.equal(img.ok, true);
    assert.equal(Buffer.from(img.pixels, 'base64').length, ROWS * 28 * 28);
    assert.equal(mnistTestLabels()[0], fx.labels[0]);
  });
});
