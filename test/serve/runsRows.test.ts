/**
 * The runs table on the wire: after the whole table on connect, each change is a `rows` event
 * with only the rows added, changed or removed (serve/runsTable.ts), which the page applies
 * (web/rows.ts, run here on the events received). After every event the page's table must
 * equal the table of a second server started afresh on the same folder, which reads every file
 * whole (the oracle), and the server's own /api/runs. An epoch appended to one run's log must
 * cost its row on the wire and its line (plus fixed windows and the manifest) on disk, not the
 * log again. A delta missed means fetching the whole table; a reconnect brings it whole.
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Rng } from '../../src/rng.ts';
import { RunsTable, type RunsDelta, type RunsSnapshot } from '../../src/serve/runsTable.ts';
import type { RunInfo } from '../../src/serve/scan.ts';
import { type Served, startServer } from '../../src/serve/server.ts';
import { WINDOW } from '../../src/serve/tail.ts';
import { applyRows, newer } from '../../src/web/rows.ts';
import { ensureWebBuilt, epochLine, getJson, listen, type Received, writeManifest } from './helpers.ts';

const base = mkdtempSync(join(tmpdir(), 'siamese-runsrows-'));
const root = join(base, 'served');
const cmp = join(root, 'cmp');
const LOSSES = ['contrastive', 'yukawa', 'triplet'];
const N = 24;
/** epochs each run has logged when the server starts: a log of about 11 KB */
const START = 60;
let served: Served;

interface Run {
  dir: string;
  id: string;
  loss: string;
  seed: number;
  epoch: number;
}
const runs: Run[] = [];

const line = (e: number): string => JSON.stringify(epochLine(e)) + '\n';

/** the trainer's way: log.jsonl rewritten whole under a temporary name and renamed; then the manifest likewise */
function writeEpoch(r: Run): void {
  r.epoch++;
  const path = join(r.dir, 'log.jsonl');
  writeFileSync(`${path}.tmp`, readFileSync(path, 'utf8') + line(r.epoch));
  renameSync(`${path}.tmp`, path);
  const staged = join(base, 'manifest-staging');
  writeManifest(staged, { loss: r.loss, params: {}, seed: r.seed, epochs: 100, epochsDone: r.epoch });
  renameSync(join(staged, 'manifest.json'), join(r.dir, 'manifest.json'));
}

/** a run folder with its manifest and log, written at `at` (a staging folder) or in place */
function makeRun(loss: string, seed: number, epochs: number, at?: string): Run {
  const dir = join(cmp, 'runs', `${loss}-seed${seed}`);
  writeManifest(at ?? dir, { loss, params: {}, seed, epochs: 100, epochsDone: epochs });
  writeFileSync(join(at ?? dir, 'log.jsonl'), Array.from({ length: epochs }, (_, i) => line(i + 1)).join(''));
  return { dir, id: `0:cmp/runs/${loss}-seed${seed}`, loss, seed, epoch: epochs };
}

/** the oracle: a second server, started now on the same folder, reads every file whole */
async function fresh(): Promise<Pick<RunsSnapshot, 'roots' | 'folders' | 'runs'>> {
  const s = await startServer({ dirs: [root], port: 0, pollMs: 60_000 });
  try {
    const { roots, folders, runs: rows } = await getJson<RunsSnapshot>(s.port, '/api/runs');
    return { roots, folders, runs: rows };
  } finally {
    await s.close();
  }
}

const content = (t: RunsSnapshot): Pick<RunsSnapshot, 'roots' | 'folders' | 'runs'> => ({ roots: t.roots, folders: t.folders, runs: t.runs });
const delta = (e: Received): RunsDelta => JSON.parse(e.data) as RunsDelta;
const row = (t: RunsSnapshot, id: string): RunInfo | undefined => t.runs.find((r) => r.id === id);

before(async () => {
  ensureWebBuilt();
  mkdirSync(cmp, { recursive: true });
  writeFileSync(join(cmp, 'compare.json'), JSON.stringify({ spec: { losses: LOSSES.map((l) => ({ id: l, label: l, loss: l, params: {} })) } }));
  for (let i = 0; i < N; i++) runs.push(makeRun(LOSSES[i % LOSSES.length]!, Math.floor(i / LOSSES.length), START));
  served = await startServer({ dirs: [root], port: 0, pollMs: 100 });
});

after(async () => {
  await served?.close();
  rmSync(base, { recursive: true, force: true });
});

describe('siamese serve: the runs table sends the rows that changed', () => {
  it('an epoch of one run: a rows event with its row alone; the page equals a fresh full read; the log is not read again', async () => {
    const stream = await listen(served.port);
    try {
      let page = JSON.parse((await stream.next((e) => e.event === 'runs', 'the whole table on connect')).data) as RunsSnapshot;
      assert.equal(page.runs.length, N);
      assert.deepEqual(content(page), await fresh());
      const logSize = statSync(join(runs[0]!.dir, 'log.jsonl')).size;
      for (let k = 0; k < 8; k++) {
        const r = runs[(k * 7) % N]!;
        const read0 = served.bytesRead();
        writeEpoch(r);
        // the manifest and the log may reach the server in one scan or two: a rows event each
        // (the manifest alone moves epochsDone; the log, the epoch's numbers)
        for (let n = 0; row(page, r.id)?.epochsDone !== r.epoch || row(page, r.id)?.lastLoss !== epochLine(r.epoch)['loss']; n++) {
          assert.ok(n < 2, `epoch ${r.epoch} of ${r.id}: at most two rows events`);
          const e = await stream.next((x) => x.event === 'rows', `the rows event of ${r.id}'s epoch ${r.epoch}`);
          const d = delta(e);
          assert.deepEqual(d.upsert.map((u) => u.row.id), [r.id], 'the changed run\'s row alone');
          assert.deepEqual(d.remove, []);
          assert.equal(d.folders, undefined);
          assert.equal(d.order, undefined);
          // on the wire: one row and a fixed envelope (the table is N rows)
          const rowBytes = JSON.stringify(d.upsert[0]!.row).length;
          assert.ok(e.bytes < rowBytes + 200, `${e.bytes} bytes for a ${rowBytes}-byte row`);
          const m = applyRows(page, d);
          assert.ok(typeof m !== 'string', `the delta applies (${String(m)})`);
          page = m;
        }
        // on disk: the new line, the two hashed windows and the manifest (this one's, and the
        // last one's if the server read it after the page had that row), not the ~11 KB log again
        const read = served.bytesRead() - read0;
        const manifest = statSync(join(r.dir, 'manifest.json')).size;
        assert.ok(read <= line(r.epoch).length + 2 * WINDOW + 3 * manifest, `${read} bytes read for one epoch (the log is ${logSize}+ bytes)`);
        assert.ok(read < logSize);
        assert.deepEqual(content(page), await fresh(), `after ${r.id}'s epoch ${r.epoch}: the page's table is a fresh server's`);
        const own = await getJson<RunsSnapshot>(served.port, '/api/runs');
        assert.deepEqual(page, own, 'and the server\'s own table, version included');
      }
    } finally {
      stream.close();
    }
  });

  it('a run removed, a run added: a removal, an addition in its place; a missed delta means the whole table', async () => {
    const stream = await listen(served.port);
    try {
      let page = JSON.parse((await stream.next((e) => e.event === 'runs', 'the whole table')).data) as RunsSnapshot;
      const gone = runs[4]!;
      // moved out whole (a removal seen half done would first change its row)
      renameSync(gone.dir, join(base, 'gone4'));
      const e1 = delta(await stream.next((e) => e.event === 'rows', 'the removal'));
      assert.deepEqual([e1.remove, e1.upsert], [[gone.id], []]);
      page = applyRows(page, e1) as RunsSnapshot;
      assert.equal(page.runs.length, N - 1);
      assert.deepEqual(content(page), await fresh());

      // a run folder appears (staged, then renamed in: whole): one addition, after the row it follows
      const staged = join(base, 'staged');
      const added = makeRun('yukawa', 99, 3, staged);
      renameSync(staged, added.dir);
      const e2 = delta(await stream.next((e) => e.event === 'rows', 'the addition'));
      assert.deepEqual(e2.upsert.map((u) => u.row.id), [added.id]);
      assert.equal(e2.remove.length, 0);
      assert.equal(typeof e2.upsert[0]!.after, 'string', 'placed after a row the page holds');
      page = applyRows(page, e2) as RunsSnapshot;
      assert.deepEqual(content(page), await fresh(), 'the new row in the order a full read lists it');
      assert.equal(row(page, added.id)?.epochsDone, 3);

      // a page that missed a delta: the next one does not apply; the whole table (/api/runs) does
      writeEpoch(runs[1]!);
      let missed = delta(await stream.next((e) => e.event === 'rows', 'a delta the page misses'));
      while (row(await getJson<RunsSnapshot>(served.port, '/api/runs'), runs[1]!.id)?.lastLoss !== epochLine(runs[1]!.epoch)['loss']) {
        missed = delta(await stream.next((e) => e.event === 'rows', 'the rest of the missed change'));
      }
      writeEpoch(runs[2]!);
      const next = delta(await stream.next((e) => e.event === 'rows', 'the delta after the missed one'));
      assert.notEqual(next.base, page.version);
      assert.equal(applyRows(page, next), 'resync');
      assert.equal(applyRows(page, { ...missed, version: page.version, base: 'x.0' }), 'same', 'a version already held');
      const whole = await getJson<RunsSnapshot>(served.port, '/api/runs');
      page = whole;
      assert.deepEqual(content(page), await fresh());
    } finally {
      stream.close();
    }
  });

  it('across a server restart, the page takes tables and deltas only of the server it is connected to, whichever arrives first', () => {
    const mk = (id: string, epochsDone: number): RunInfo => ({ id, epochsDone }) as unknown as RunInfo;
    const oldT = new RunsTable(['r'], 'aa');
    const newT = new RunsTable(['r'], 'bb');
    // the old server has counted further than the new one: counters of two processes do not compare
    for (let e = 1; e <= 5; e++) oldT.update([mk('x', e)], []);
    const oldSnap = JSON.parse(oldT.snapshotText()) as RunsSnapshot;
    newT.update([mk('x', 7)], []);
    const newSnap = JSON.parse(newT.snapshotText()) as RunsSnapshot;
    const lateDelta = oldT.update([mk('x', 6)], [])!;
    const lateSnap = JSON.parse(oldT.snapshotText()) as RunsSnapshot;
    // the new server's runs event (current = bb), then the old server's late /api/runs answer and a late delta
    assert.ok(newer(newSnap, oldSnap, 'bb'), "the new server's table replaces the old one's");
    assert.equal(newer(lateSnap, newSnap, 'bb'), false, "the old server's late table is dropped");
    assert.equal(newer(lateSnap, newSnap), true, '(without knowing the server it would have counted as newer)');
    assert.equal(newer(lateSnap, undefined, 'bb'), false, 'also with no table held');
    assert.equal(applyRows(newSnap, lateDelta, 'bb'), 'same', "the old server's late delta is dropped");
    assert.equal(applyRows(undefined, lateDelta, 'bb'), 'same');
    const d = newT.update([mk('x', 8)], [])!;
    assert.equal((applyRows(newSnap, d, 'bb') as RunsSnapshot).runs[0]!.epochsDone, 8, "the new server's deltas apply");
    // the reverse order: the late answer while still connected to the old server, then the new server's table
    assert.ok(newer(lateSnap, oldSnap, 'aa'));
    assert.deepEqual((applyRows(oldSnap, lateDelta, 'aa') as RunsSnapshot).runs, lateSnap.runs);
    assert.ok(newer(newSnap, lateSnap, 'bb'), "then the new server's table replaces it");
    assert.equal(applyRows(lateSnap, d, 'bb'), 'resync', "a delta of the new server on the old table: the whole table");
  });

  it('a reconnect brings the whole table, changes made meanwhile included', async () => {
    const first = await listen(served.port);
    const held = JSON.parse((await first.next((e) => e.event === 'runs', 'the whole table')).data) as RunsSnapshot;
    first.close();
    writeEpoch(runs[5]!);
    writeEpoch(runs[6]!);
    renameSync(runs[7]!.dir, join(base, 'gone7'));
    // bounded: the server notices within a few polls
    const behind = (r: RunInfo): boolean => r.id === runs[7]!.id || ([runs[5]!, runs[6]!].some((w) => w.id === r.id && r.lastLoss !== epochLine(w.epoch)['loss']));
    for (let n = 0; n < 100 && (await getJson<RunsSnapshot>(served.port, '/api/runs')).runs.some(behind); n++) {
      await new Promise((r) => setTimeout(r, 50));
    }
    const again = await listen(served.port);
    try {
      const e = await again.next(() => true, 'the first event');
      assert.equal(e.event, 'runs', 'the first event is the whole table');
      const table = JSON.parse(e.data) as RunsSnapshot;
      assert.notEqual(table.version, held.version);
      assert.deepEqual(content(table), await fresh());
      assert.equal(row(table, runs[5]!.id)?.epochsDone, runs[5]!.epoch);
    } finally {
      again.close();
    }
  });
});

describe('runs table deltas without a server (seeded)', () => {
  it('random tables: every delta holds only the rows that changed, and applied gives the new table', () => {
    const rng = new Rng(7);
    const rand = (n: number): number => Math.floor(rng.next() * n);
    const mk = (id: string, v: number): RunInfo => ({ id, epochsDone: v }) as unknown as RunInfo;
    const t = new RunsTable(['r']);
    let rows: RunInfo[] = Array.from({ length: 20 }, (_, i) => mk(`run${String(i).padStart(3, '0')}`, 0));
    t.update(rows, []);
    let page = JSON.parse(t.snapshotText()) as RunsSnapshot;
    let next = 100;
    for (let step = 0; step < 300; step++) {
      const before = new Map(rows.map((r) => [r.id, JSON.stringify(r)]));
      rows = [...rows];
      const u = rng.next();
      if (u < 0.5 && rows.length > 0) {
        const i = rand(rows.length);
        rows[i] = mk(rows[i]!.id, rows[i]!.epochsDone + 1);
      } else if (u < 0.7 && rows.length > 0) rows.splice(rand(rows.length), 1);
      else if (u < 0.9) rows.splice(rand(rows.length + 1), 0, mk(`new${next++}`, 0));
      else if (u < 0.95 && rows.length > 1) rows.reverse();
      else rows[0] && (rows[0] = { ...rows[0] }); // the same row, a new object: no change
      const d = t.update(rows, []);
      if (d === null) {
        assert.deepEqual(page.runs, rows);
        continue;
      }
      for (const x of d.upsert) assert.notEqual(before.get(x.row.id), JSON.stringify(x.row), 'only rows that changed');
      const m = applyRows(page, d);
      assert.ok(typeof m !== 'string');
      page = m;
      assert.deepEqual(page.runs, rows, `step ${step}`);
      assert.deepEqual(page, JSON.parse(t.snapshotText()));
    }
  });
});
