/**
 * The serve monitor's cost and memory over many runs (serve/monitor.ts). An epoch written to one
 * run must cost a constant number of file-system calls, not a rescan of every run folder: counted
 * here by wrapping node:fs itself (syncBuiltinESMExports: the sources' named imports see the
 * wrappers), an oracle independent of the monitor's own counters, which are checked too. A run
 * folder added or removed must still appear or vanish, and what the monitor keeps per file goes
 * with its run.
 */
import assert from 'node:assert/strict';
import fs, { mkdirSync, mkdtempSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { syncBuiltinESMExports } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { type Changes, Monitor, signatureCalls } from '../../src/serve/monitor.ts';
import { discover, discoveryCalls, type Root } from '../../src/serve/scan.ts';
import { Tails } from '../../src/serve/tail.ts';
import { epochLine, writeManifest } from './helpers.ts';

const base = mkdtempSync(join(tmpdir(), 'siamese-monitor-'));
after(() => rmSync(base, { recursive: true, force: true }));

/** calls to these node:fs functions, by every module (the monitor, discovery, the log reader) */
const COUNTED = ['statSync', 'lstatSync', 'readdirSync', 'openSync', 'readFileSync', 'existsSync'] as const;
let fsCalls = 0;
{
  const f = fs as unknown as Record<string, (...a: unknown[]) => unknown>;
  for (const name of COUNTED) {
    const orig = f[name]!;
    f[name] = function (this: unknown, ...a: unknown[]) {
      fsCalls++;
      return orig.apply(this, a);
    };
  }
  const real = fs.realpathSync;
  const native = real.native;
  const wrapped = Object.assign(
    (...a: Parameters<typeof real>) => {
      fsCalls++;
      return real(...a);
    },
    {
      native: (...a: Parameters<typeof native>) => {
        fsCalls++;
        return native(...a);
      },
    },
  );
  (fs as unknown as { realpathSync: unknown }).realpathSync = wrapped;
  syncBuiltinESMExports();
}

/** a compare folder of n runs, each with a log of 3 epochs */
function compareFolder(name: string, n: number): { root: Root; runs: string[] } {
  const dir = join(base, name);
  const cmp = join(dir, 'cmp');
  mkdirSync(cmp, { recursive: true });
  writeFileSync(join(cmp, 'compare.json'), JSON.stringify({ spec: { losses: [{ id: 'yukawa', label: 'yukawa', loss: 'yukawa', params: {} }] } }));
  const runs: string[] = [];
  for (let i = 0; i < n; i++) {
    const run = join(cmp, 'runs', `yukawa-seed${i}`);
    writeManifest(run, { loss: 'yukawa', params: {}, seed: i, epochs: 10, epochsDone: 3 });
    writeFileSync(join(run, 'log.jsonl'), [1, 2, 3].map((e) => JSON.stringify(epochLine(e)) + '\n').join(''));
    runs.push(run);
  }
  return { root: { given: dir, real: fs.realpathSync.native(dir) }, runs };
}

/** an epoch appended the trainer's way: the whole log to a temporary name, renamed over it */
function appendEpoch(run: string, e: number): void {
  const text = [...Array(e).keys()].map((i) => JSON.stringify(epochLine(i + 1)) + '\n').join('');
  writeFileSync(join(run, 'log.jsonl.tmp'), text);
  renameSync(join(run, 'log.jsonl.tmp'), join(run, 'log.jsonl'));
}

describe('serve monitor: a change costs what it touches', () => {
  it('an epoch written to one of 120 runs, seen by the watchers: a constant number of file-system calls, no rescan', async () => {
    const { root, runs } = compareFolder('watched', 120);
    let wake: ((c: Changes) => void) | undefined;
    // no poll during the test: only the watchers' path is measured
    const m = new Monitor([root], (c) => wake?.(c), 3_600_000, new Tails(1 << 20));
    try {
      assert.equal(m.runs().length, 120);
      const target = '0:cmp/runs/yukawa-seed57';
      const before = fsCalls;
      const rescans = m.counts.rescans;
      const seen = new Promise<Changes>((resolve, reject) => {
        const t = setTimeout(() => reject(new Error('no change seen in 20 s: fs.watch gave no event')), 20_000);
        wake = (c) => {
          if (c.logs.includes(target)) {
            clearTimeout(t);
            resolve(c);
          }
        };
      });
      appendEpoch(runs[57]!, 4);
      const c = await seen;
      const calls = fsCalls - before;
      assert.deepEqual(c.logs, [target]);
      assert.equal(c.logChunks[0]!.epochs.length, 1, 'the appended line');
      assert.equal(m.runs().find((r) => r.id === target)!.lastLoss, epochLine(4)['loss'], 'its row: the new last epoch');
      // one look costs 4 stats; the log: open, its stat, its windows and line (reads are not counted)
      assert.ok(calls <= 20, `${calls} file-system calls for one epoch of one run (a rescan of 120 runs makes over 500)`);
      assert.equal(m.counts.rescans - rescans, 0, 'no rescan');
    } finally {
      m.stop();
    }
  });

  it('the watchers\' marks: a run folder\'s event re-stats that run alone; another folder\'s rediscovers; the calls counted', () => {
    const { root, runs } = compareFolder('marked', 60);
    const changes: Changes[] = [];
    // the test marks folders itself (synchronously: no watcher event is handled meanwhile)
    const h = new Monitor([root], (c) => changes.push(c), 3_600_000, new Tails(1 << 20));
    try {
      appendEpoch(runs[10]!, 4);
      const fs0 = fsCalls;
      const sig0 = signatureCalls.count;
      const disc0 = discoveryCalls.count;
      const checks0 = h.counts.runChecks;
      h.changedIn(runs[10]!);
      h.flush();
      assert.deepEqual([h.counts.runChecks - checks0, signatureCalls.count - sig0, discoveryCalls.count - disc0], [1, 4, 0], 'one run checked: its four files');
      assert.ok(fsCalls - fs0 <= 12, `${fsCalls - fs0} calls`);
      assert.deepEqual(changes.at(-1)!.logs, ['0:cmp/runs/yukawa-seed10']);
      assert.equal(h.runs().find((r) => r.id === '0:cmp/runs/yukawa-seed10')!.lastLoss, epochLine(4)['loss']);

      // a run folder added (staged, then renamed in) and one removed: the runs/ folder's event rediscovers
      const cmpRuns = join(root.real, 'cmp', 'runs');
      const staged = join(base, 'staged-run');
      writeManifest(staged, { loss: 'yukawa', params: {}, seed: 99, epochs: 10, epochsDone: 0 });
      renameSync(staged, join(cmpRuns, 'yukawa-seed99'));
      rmSync(runs[3]!, { recursive: true });
      const rescans0 = h.counts.rescans;
      const d0 = discoveryCalls.count;
      h.changedIn(cmpRuns);
      h.flush();
      assert.equal(h.counts.rescans - rescans0, 1);
      // discovery: the folder's files, the runs/ listing, one manifest stat per run folder (no realpath per run)
      // (root and cmp: 4 stats and a listing each, runs/ resolved and listed: 11; the old scan resolved every run folder too)
      assert.ok(discoveryCalls.count - d0 <= 60 + 11, `${discoveryCalls.count - d0} discovery calls for 60 run folders`);
      const ids = h.runs().map((r) => r.id);
      assert.ok(ids.includes('0:cmp/runs/yukawa-seed99'), 'the new run appears');
      assert.ok(!ids.includes('0:cmp/runs/yukawa-seed3'), 'the removed one vanishes');
      assert.equal(ids.length, 60);
      assert.equal(changes.at(-1)!.set, true);

      // a run's manifest.json deleted, its folder left: the run's own event finds that out
      rmSync(join(runs[5]!, 'manifest.json'));
      h.changedIn(runs[5]!);
      h.flush();
      assert.ok(!h.runs().some((r) => r.id === '0:cmp/runs/yukawa-seed5'));
      assert.equal(h.runs().length, 59);
    } finally {
      h.stop();
    }
  });

  it('what the monitor keeps per file goes with its run: signatures of runs that vanished are pruned', () => {
    const { root, runs } = compareFolder('pruned', 10);
    const m = new Monitor([root], () => undefined, 3_600_000, new Tails(1 << 20));
    try {
      // 4 files per run, 3 per compare folder
      assert.equal(m.signatureCount, 10 * 4 + 3);
      for (const r of runs.slice(0, 6)) rmSync(r, { recursive: true });
      m.tick();
      assert.equal(m.runs().length, 4);
      assert.equal(m.signatureCount, 4 * 4 + 3);
      // a sweep of runs created and deleted over and over: the count stays where it is
      for (let k = 0; k < 5; k++) {
        const extra = join(root.real, 'cmp', 'runs', `yukawa-seed${100 + k}`);
        writeManifest(extra, { loss: 'yukawa', params: {}, seed: 100 + k, epochs: 1 });
        m.tick();
        assert.equal(m.signatureCount, 5 * 4 + 3);
        rmSync(extra, { recursive: true });
        m.tick();
        assert.equal(m.signatureCount, 4 * 4 + 3);
      }
      rmSync(join(root.real, 'cmp'), { recursive: true });
      m.tick();
      assert.deepEqual([m.runs().length, m.signatureCount], [0, 0], 'the folder gone: nothing kept');
    } finally {
      m.stop();
    }
  });

  it('discovery resolves links only: a linked run folder inside the root is served, one leading outside is not', () => {
    const { root } = compareFolder('links', 3);
    const outside = join(base, 'outside-run');
    writeManifest(outside, { loss: 'yukawa', params: {}, seed: 7, epochs: 1 });
    const inside = join(root.real, 'spare');
    writeManifest(inside, { loss: 'yukawa', params: {}, seed: 8, epochs: 1 });
    symlinkSync(outside, join(root.real, 'cmp', 'runs', 'yukawa-seed7'));
    symlinkSync(inside, join(root.real, 'cmp', 'runs', 'yukawa-seed8'));
    const d = discover([root]);
    const byId = new Map(d.runs.map((r) => [r.id, r.dir]));
    assert.equal(byId.get('0:cmp/runs/yukawa-seed8'), inside, 'resolved to its real folder');
    assert.ok(!byId.has('0:cmp/runs/yukawa-seed7'), 'a link out of the root is skipped');
    assert.equal(byId.get('0:cmp/runs/yukawa-seed0'), join(root.real, 'cmp', 'runs', 'yukawa-seed0'));
    assert.ok(byId.has('0:spare'), 'and the linked folder itself, where it lies');
  });
});
