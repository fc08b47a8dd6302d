/**
 * `siamese serve` over a real `siamese sweep` folder (a tiny sweep run here): its runs, four
 * levels deep, are found and grouped by trial, tuned and default seeds; its results.json (kind
 * "sweep") is accepted and served as a sweep; one copied without its sweep.json too; a damaged
 * one gets a message naming `siamese sweep`; trials written later appear without a restart.
 */
import assert from 'node:assert/strict';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { SweepResults } from '../../src/experiments/sweep.ts';
import type { RunInfo } from '../../src/serve/scan.ts';
import { type Served, startServer } from '../../src/serve/server.ts';
import { ensureWebBuilt, getJson, rawGet, tinySweep } from './helpers.ts';

const base = mkdtempSync(join(tmpdir(), 'siamese-serve-sweep-'));
const root = join(base, 'served');
let served: Served;
let results: SweepResults;
let sweepDir: string;

before(async () => {
  ensureWebBuilt();
  ({ out: sweepDir, results } = await tinySweep(join(base, 'made')));
  mkdirSync(root, { recursive: true });
  // the finished sweep; a sweep being written (no results.json, trial 3 not started); a results.json alone; a damaged one
  cpSync(sweepDir, join(root, 'done'), { recursive: true });
  cpSync(sweepDir, join(root, 'live'), { recursive: true, filter: (src) => !/results\.json$|trial02/.test(src) });
  mkdirSync(join(root, 'copied'));
  cpSync(join(sweepDir, 'results.json'), join(root, 'copied', 'results.json'));
  mkdirSync(join(root, 'damaged'));
  // the real file with one loss's trials replaced by a string
  const broken = JSON.parse(readFileSync(join(sweepDir, 'results.json'), 'utf8')) as { losses: { trials: unknown }[] };
  broken.losses[0]!.trials = 'none';
  writeFileSync(join(root, 'damaged', 'results.json'), JSON.stringify(broken));
  served = await startServer({ dirs: [root], port: 0, pollMs: 100 });
});

after(async () => {
  await served?.close();
  rmSync(base, { recursive: true, force: true });
});

type Folder = { id: string; kind: string; path: string; results: boolean; message: string | null; outline?: { trials: number; folds: number; losses: { id: string }[] } | null };
type Runs = { folders: Folder[]; runs: RunInfo[] };
const api = <T>(path: string): Promise<T> => getJson<T>(served.port, path);
const pad = (t: number): string => String(t).padStart(2, '0');

describe('siamese serve: a sweep folder', () => {
  it('finds every run of the sweep (trial folds four levels deep, tuned and default seeds) with the scores results.json was made from', async () => {
    const { folders, runs } = await api<Runs>('/api/runs');
    const done = folders.find((f) => f.id === '0:done')!;
    assert.equal(done.kind, 'sweep');
    assert.equal(done.message, null, 'a sweep results.json is no foreign file');
    assert.deepEqual(done.outline?.losses.map((l) => l.id), ['contrastive', 'yukawa']);
    assert.equal(done.outline?.folds, 2);
    const mine = runs.filter((r) => r.folder === '0:done');
    // per loss: 3 trials x 2 folds + 2 tuned + 2 default seeds
    assert.equal(mine.length, 2 * (3 * 2 + 2 + 2));
    for (const l of results.losses) {
      for (const t of l.trials) {
        for (const f of t.validation.folds) {
          const r = mine.find((x) => x.id === `0:done/runs/${l.id}/trial${pad(t.trial)}/fold${f.fold}`);
          assert.ok(r, `${l.id} trial ${t.trial} fold ${f.fold} found`);
          assert.deepEqual(r.sweep, { lossId: l.id, kind: 'trial', trial: t.trial, fold: f.fold });
          assert.equal(r.group, `${l.id}/trial${pad(t.trial)}`);
          assert.equal(r.mapAtR, f.mapAtR, 'the fold run scores what results.json records');
          for (const [k, v] of Object.entries(t.params)) assert.equal(r.params[k], v);
        }
      }
      for (const s of l.test.seeds) {
        const r = mine.find((x) => x.id === `0:done/runs/${l.id}/tuned-seed${s.seed}`)!;
        assert.equal(r.group, `${l.id}/tuned`);
        assert.equal(r.mapAtR, s.mapAtR);
        assert.equal(r.seed, s.seed);
      }
      assert.equal(mine.filter((r) => r.group === `${l.id}/default`).length, 2);
    }
  });

  it('serves its results.json as a sweep, also one copied alone; a damaged one is a message naming siamese sweep', async () => {
    const got = await api<{ ok: boolean; kind: string; sweep: SweepResults }>('/api/results?folder=0%3Adone');
    assert.equal(got.ok, true);
    assert.equal(got.kind, 'sweep');
    assert.deepEqual(got.sweep, JSON.parse(readFileSync(join(sweepDir, 'results.json'), 'utf8')));
    const { folders } = await api<Runs>('/api/runs');
    const copied = folders.find((f) => f.id === '0:copied')!;
    assert.equal(copied.kind, 'sweep');
    assert.equal(copied.message, null);
    assert.equal((await api<{ kind: string }>('/api/results?folder=0%3Acopied')).kind, 'sweep');
    const damaged = folders.find((f) => f.id === '0:damaged')!;
    assert.match(damaged.message ?? '', /losses\[0\]\.trials must be an array .*siamese sweep/);
    const images = await api<{ ok: boolean; message: string }>('/api/images?folder=0%3Acopied');
    assert.deepEqual(images, { ok: false, message: 'a sweep has no t-SNE maps' });
  });

  it('a sweep being written: new trials and then results.json appear without a restart', async () => {
    const liveRuns = (r: Runs): RunInfo[] => r.runs.filter((x) => x.folder === '0:live');
    const first = await api<Runs>('/api/runs');
    assert.equal(liveRuns(first).filter((r) => r.sweep?.kind === 'trial').length, 2 * 2 * 2, 'two trials of two folds per loss');
    assert.equal(first.folders.find((f) => f.id === '0:live')!.results, false);
    // as a sweep writes, each thing appears whole: the trial's folder (copied aside, then renamed in), then results.json
    cpSync(join(sweepDir, 'runs', 'yukawa', 'trial02'), join(base, 'staged-trial02'), { recursive: true });
    renameSync(join(base, 'staged-trial02'), join(root, 'live', 'runs', 'yukawa', 'trial02'));
    let now = first;
    // until both folds of the copied trial are listed with their result.json (the copy writes a
    // run's manifest before its result, and the server may list it in between)
    const scored = (r: Runs): number => liveRuns(r).filter((x) => x.group === 'yukawa/trial02' && x.mapAtR !== null).length;
    for (let i = 0; i < 600 && (liveRuns(now).filter((r) => r.sweep?.kind === 'trial').length < 10 || scored(now) < 2); i++) {
      await new Promise((r) => setTimeout(r, 50));
      now = await api<Runs>('/api/runs');
    }
    const t2 = liveRuns(now).filter((r) => r.group === 'yukawa/trial02');
    assert.equal(t2.length, 2, 'trial 3 of yukawa appeared');
    const expected = results.losses.find((l) => l.id === 'yukawa')!.trials[2]!.validation;
    assert.equal((t2[0]!.mapAtR! + t2[1]!.mapAtR!) / 2, expected.mapAtR, 'its folds average to the validation MAP@R of results.json');
    cpSync(join(sweepDir, 'results.json'), join(base, 'staged-results.json'));
    renameSync(join(base, 'staged-results.json'), join(root, 'live', 'results.json'));
    for (let i = 0; i < 600 && !now.folders.find((f) => f.id === '0:live')!.results; i++) {
      await new Promise((r) => setTimeout(r, 50));
      now = await api<Runs>('/api/runs');
    }
    const live = now.folders.find((f) => f.id === '0:live')!;
    assert.equal(live.results, true);
    assert.equal(live.message, null);
    assert.equal((await api<{ kind: string }>('/api/results?folder=0%3Alive')).kind, 'sweep');
  });
});
