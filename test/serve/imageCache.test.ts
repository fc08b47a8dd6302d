/**
 * What `siamese serve` holds of test images (per compare folder: its t-SNE subset's; per run: its
 * snapshot subset's) goes with the folder or run it belongs to, as the logs' records do: a long
 * session that sees comparisons come and go holds no entry per folder ever seen. Before, a
 * folder's entry (its results.json text and its images) stayed after the folder was removed.
 * And a folder without runs (a results.json alone) that is removed leaves the runs table.
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { type Served, startServer } from '../../src/serve/server.ts';
import { syntheticResults } from '../fixtures/compareResults.ts';
import { waitFor } from '../queue/processes.ts';
import { ensureWebBuilt, getJson, writeManifest } from './helpers.ts';
import { writeSnapshots } from './snapshotFixture.ts';

const base = mkdtempSync(join(tmpdir(), 'siamese-serve-images-'));
const root = join(base, 'served');
let served: Served;
const q = encodeURIComponent;
type Runs = { folders: { id: string }[]; runs: { id: string }[] };

before(async () => {
  ensureWebBuilt();
  // two comparisons with a run each (its embeddings.bin), and a results.json alone
  for (const name of ['a', 'b']) {
    mkdirSync(join(root, name), { recursive: true });
    writeFileSync(join(root, name, 'results.json'), JSON.stringify(syntheticResults()));
    const run = join(root, name, 'runs', `${name}-seed0`);
    writeManifest(run, { loss: 'contrastive', params: { margin: 1 }, seed: 0, epochs: 1 });
    writeSnapshots(run, { rows: 20, dim: 4, epochs: [0, 1] });
  }
  mkdirSync(join(root, 'c'), { recursive: true });
  writeFileSync(join(root, 'c', 'results.json'), JSON.stringify(syntheticResults()));
  served = await startServer({ dirs: [root], port: 0, pollMs: 100 });
});

after(async () => {
  await served?.close();
  rmSync(base, { recursive: true, force: true });
});

const listed = async (): Promise<Runs> => getJson<Runs>(served.port, '/api/runs');

test('a removed folder\'s and run\'s test images are dropped with them; the others are kept', async () => {
  const before = await listed();
  assert.deepEqual(before.folders.map((f) => f.id).sort(), ['0:a', '0:b', '0:c']);
  for (const f of ['0:a', '0:b', '0:c']) await getJson(served.port, `/api/images?folder=${q(f)}`);
  for (const r of ['0:a/runs/a-seed0', '0:b/runs/b-seed0']) {
    const img = await getJson<{ ok: boolean }>(served.port, `/api/images?run=${q(r)}`);
    assert.equal(img.ok, true, r);
  }
  assert.deepEqual(served.imageEntries(), { folders: 3, runs: 2 });

  // a comparison removed with its run: the poll sees it go (bounded wait), and its entries go too
  rmSync(join(root, 'b'), { recursive: true, force: true });
  await waitFor('b to leave the runs table', async () => !(await listed()).folders.some((f) => f.id === '0:b'), 30);
  assert.deepEqual(served.imageEntries(), { folders: 2, runs: 1 });

  // a folder without runs: its going is a change of the table too, and its entry goes
  rmSync(join(root, 'c'), { recursive: true, force: true });
  await waitFor('c to leave the runs table', async () => !(await listed()).folders.some((f) => f.id === '0:c'), 30);
  assert.deepEqual(served.imageEntries(), { folders: 1, runs: 1 });

  // what stays is still answered from memory
  assert.equal((await getJson<{ ok: boolean }>(served.port, `/api/images?run=${q('0:a/runs/a-seed0')}`)).ok, true);
  assert.deepEqual(served.imageEntries(), { folders: 1, runs: 1 });
});
