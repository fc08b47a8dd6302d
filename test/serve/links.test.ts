/**
 * A run's or a folder's files that are symbolic links leading out of the served folder are not
 * read: a folder of runs from elsewhere (an archive, a shared disk) with `log.jsonl`,
 * `manifest.json` or `results.json` linked to a file outside must not make the server show what
 * that file holds. The API answers as for a file it cannot read (a message), and /files 404s.
 */
import assert from 'node:assert/strict';
import { cpSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, it } from 'node:test';
import type { RunInfo } from '../../src/serve/scan.ts';
import { startServer } from '../../src/serve/server.ts';
import type { Chunk } from '../../src/serve/tail.ts';
import type { EpochLine } from '../../src/serve/scan.ts';
import { syntheticResults } from '../fixtures/compareResults.ts';
import { appendEpoch, ensureWebBuilt, epochLine, getJson, rawGet, writeManifest } from './helpers.ts';

const base = mkdtempSync(join(tmpdir(), 'siamese-serve-links-'));
after(() => rmSync(base, { recursive: true, force: true }));

it('files linked out of the served folder are not read: a log, a manifest, a results.json', async () => {
  ensureWebBuilt();
  const outside = join(base, 'outside');
  const root = join(base, 'served');
  // outside: a log of 7 epochs, a manifest with a config of its own, a valid results.json
  mkdirSync(outside, { recursive: true });
  writeFileSync(join(outside, 'log.jsonl'), [1, 2, 3, 4, 5, 6, 7].map((e) => JSON.stringify(epochLine(e))).join('\n') + '\n');
  writeManifest(join(outside, 'm'), { loss: 'yukawa', params: { kappa: 3 }, seed: 99, epochs: 7 });
  writeFileSync(join(outside, 'results.json'), JSON.stringify(syntheticResults()));

  // served: a run whose log.jsonl links outside, one whose manifest.json does, a compare whose results.json does
  const a = join(root, 'a-seed0');
  writeManifest(a, { loss: 'contrastive', params: { margin: 1 }, seed: 0, epochs: 7 });
  symlinkSync(join(outside, 'log.jsonl'), join(a, 'log.jsonl'));
  const b = join(root, 'b-seed0');
  mkdirSync(b, { recursive: true });
  symlinkSync(join(outside, 'm', 'manifest.json'), join(b, 'manifest.json'));
  appendEpoch(b, 1);
  mkdirSync(join(root, 'cmp'), { recursive: true });
  symlinkSync(join(outside, 'results.json'), join(root, 'cmp', 'results.json'));
  // the control: a link that stays inside is a file of the folder like any other
  const c = join(root, 'c-seed0');
  writeManifest(c, { loss: 'contrastive', params: { margin: 1 }, seed: 0, epochs: 7 });
  cpSync(join(outside, 'log.jsonl'), join(root, 'shared-log.jsonl'));
  symlinkSync(join(root, 'shared-log.jsonl'), join(c, 'log.jsonl'));

  const served = await startServer({ dirs: [root], port: 0, pollMs: 100_000 });
  try {
    const { runs } = await getJson<{ runs: RunInfo[] }>(served.port, '/api/runs');
    const row = (id: string): RunInfo => runs.find((r) => r.id === id)!;
    assert.equal(row('0:a-seed0').epochsDone, 0, 'the outside log is not counted');
    assert.equal(row('0:a-seed0').testAccuracy, null);
    assert.match(row('0:a-seed0').messages.join('\n'), /log\.jsonl cannot be read/);
    const log = await getJson<Chunk<EpochLine>>(served.port, `/api/log?run=${encodeURIComponent('0:a-seed0')}`);
    assert.deepEqual(log.epochs, []);
    // the linked manifest: none of its settings
    assert.equal(row('0:b-seed0').seed, null);
    assert.equal(row('0:b-seed0').config, null);
    assert.notEqual(row('0:b-seed0').loss, 'yukawa');
    assert.match(row('0:b-seed0').messages.join('\n'), /manifest\.json cannot be read/);
    // the linked results.json: not served, and none of its runs listed
    const res = await getJson<{ ok: boolean; message?: string }>(served.port, `/api/results?folder=${encodeURIComponent('0:cmp')}`);
    assert.equal(res.ok, false);
    assert.equal(runs.filter((r) => r.folder === '0:cmp').length, 0);
    assert.equal((await rawGet(served.port, '/files/0/cmp/results.json')).status, 404);
    // the control: all 7 epochs
    assert.equal(row('0:c-seed0').epochsDone, 7);
  } finally {
    await served.close();
  }
});
