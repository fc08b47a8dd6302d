/**
 * A coordinator that dies while it writes a resumed run's result into the run folder: at every
 * step of the collect (SIAMESE_TEST_COLLECT_CRASH_AFTER=k kills it with SIGKILL after the k-th),
 * the same command again finishes, without training again, and the run folder holds exactly the
 * files the worker sent back (SHA-256 of each), as after an uninterrupted collect. Before, a crash
 * between the new checkpoint and the manifest left a folder that could not be resumed ("manifest
 * says 1 epochs done, but checkpoint is at epoch 2").
 * And the result leaves Redis: a crash after the files were in place (the set's commit record names
 * the job) no longer leaves it there until `siamese queue clean`; the next run removes it without
 * writing the folder again (the same inodes) or training. Before, it stayed.
 * The same for a lone file a job sends back (a run's distance sample, a t-SNE layout): written as
 * a set of one whose commit record names the job, so that a crash between the file in place and
 * the job's removal no longer leaves the job in Redis; the next run removes it without writing the
 * file again. Before, it stayed until `siamese queue clean`.
 * A plain compare (no --queue) run after such a crash completes a decided write or undoes an
 * undecided one (and computes the file itself): the folder ends as the uninterrupted comparison's.
 * Through a real redis-server, `siamese worker` and `siamese compare --resume --queue`.
 * @needs redis-server
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { Queue, Worker } from 'bullmq';
import { runCompare } from '../../src/experiments/compare.ts';
import type { CompareOptions } from '../../src/experiments/grid.ts';
import { queueClean } from '../../src/experiments/queue/admin.ts';
import { KEY_PREFIX, parseQueueUrl } from '../../src/experiments/queue/connection.ts';
import { QueueExecutor } from '../../src/experiments/queue/coordinator.ts';
import type { QueueJobResult } from '../../src/experiments/queue/payload.ts';
import { singleFileStaging, STAGING_DIR, writeFileSet } from '../../src/io/fileSet.ts';
import { type CliProcess as Proc, startCli as start, stopCli as stop, waitFor, queueTestHooks } from './processes.ts';
import type { RedisServer } from './redis.ts';

const root = mkdtempSync(join(tmpdir(), 'siamese-collect-crash-'));
const RUN = 'contrastive-seed0';
let redis: RedisServer;
const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

/** Every entry of the run folder (hidden ones too; the staging folder left out when asked), name -> SHA-256 of its bytes. */
function folder(dir: string, staging: 'with' | 'without' = 'with'): Record<string, string> {
  const runDir = join(dir, 'runs', RUN);
  const names = readdirSync(runDir).filter((n) => staging === 'with' || n !== STAGING_DIR);
  return Object.fromEntries(names.sort().map((n) => [n, sha(readFileSync(join(runDir, n)))]));
}

/** The run folder's files, name -> inode: a file written again (atomically: a new file renamed) gets a new one. */
function inodes(dir: string): Record<string, number> {
  return inodesOf(join(dir, 'runs', RUN));
}

/** A folder's files (the staging folder left out), name -> inode. */
function inodesOf(runDir: string): Record<string, number> {
  return Object.fromEntries(readdirSync(runDir).filter((n) => n !== STAGING_DIR).sort().map((n) => [n, statSync(join(runDir, n)).ino]));
}

queueTestHooks(root, (r) => (redis = r));

test('a coordinator killed at any step of collecting a resumed run: the same command finishes with the uninterrupted files, nothing trained again', async () => {
  // a comparison stopped after its first epoch (locally), to be resumed on the fleet
  const base = join(root, 'base');
  const opts: CompareOptions = { losses: 'contrastive', seeds: 1, epochs: 2, trainPairs: 2000, workers: 1, out: base, tsnePoints: 0, retrieval: false };
  const ac = new AbortController();
  const first = await runCompare({ ...opts, signal: ac.signal }, { onJobEvent: (_j, ev) => ev.type === 'epoch' && ac.abort() });
  assert.equal(first.status, 'interrupted');
  const m = JSON.parse(readFileSync(join(base, 'runs', RUN, 'manifest.json'), 'utf8')) as { epochsDone: number };
  assert.equal(m.epochsDone, 1);

  const w = start(['worker', '--queue', redis.url, '--queue-name', 'crash']);
  const queue = new Queue('crash', { connection: parseQueueUrl(redis.url).connection, prefix: KEY_PREFIX });
  const trainings = (): number => (w.out().match(/train-[0-9a-f]+ started/g) ?? []).length;
  const compare = (dir: string, env: Record<string, string> = {}): Proc => start(['compare', '--resume', dir, '--queue', redis.url, '--queue-name', 'crash'], env);
  try {
    // the steps: each of the 9 files staged (1-9), the commit record naming the job (10), each file
    // moved into place, the manifest last (11-19), the set in place (20), the job removed from
    // Redis (21; then the commit record goes). One point of each kind here (a crash before the
    // commit record makes the next run collect again, and a later crash run train again); every
    // step of the file set: test/io/fileSet.test.ts
    const N = 9;
    for (const k of [1, N, N + 1, N + 2, 2 * N, 2 * N + 1, 2 * N + 2, 2 * N + 3]) {
      const dir = join(root, `k${k}`);
      cpSync(base, dir, { recursive: true });
      const crashed = compare(dir, { SIAMESE_TEST_COLLECT_CRASH_AFTER: String(k) });
      await crashed.exited;
      assert.equal(crashed.child.signalCode, 'SIGKILL', `step ${k}: ${crashed.out()}`);
      // the worker's files, still in Redis until the job is removed (step 21): what an
      // uninterrupted collect writes. (A crash run trains the job again when the run before
      // removed it from Redis: its timings then differ, so each step reads its own.)
      const done = await queue.getJobs(['completed']);
      let expected: Record<string, string>;
      if (k <= 2 * N + 2) {
        assert.equal(done.length, 1, `step ${k}`);
        const files = (done[0]!.returnvalue as QueueJobResult).files;
        expected = Object.fromEntries(Object.keys(files).sort().map((n) => [n, sha(Buffer.from(files[n]!, 'base64'))]));
        assert.ok('checkpoint.safetensors' in expected && 'manifest.json' in expected && 'result.json' in expected);
        assert.equal(Object.keys(files).length, N);
      } else {
        // gone from Redis; the files in place are the ones step 20 (identical up to here) checked
        assert.equal(done.length, 0, `step ${k}`);
        expected = folder(dir, 'without');
        assert.equal(Object.keys(expected).length, N);
      }
      // every file in place before the next run: it must not write them again
      const placed = k >= 2 * N + 2 ? inodes(dir) : undefined;
      const trained = trainings();
      const again = compare(dir);
      assert.equal(await again.exited, 0, `step ${k}: ${again.out()}`);
      assert.equal(trainings(), trained, `step ${k}: the command trained again\n${w.out()}`);
      assert.ok(!existsSync(join(dir, 'runs', RUN, STAGING_DIR)), `step ${k}: the commit record is gone`);
      assert.deepEqual(folder(dir), expected, `step ${k}`);
      if (placed) assert.deepEqual(inodes(dir), placed, `step ${k}: the files in place were written again`);
      // nothing of the job left in Redis, whichever step the crash came at
      const left = await queue.getJobCounts('completed', 'waiting', 'active', 'delayed', 'failed');
      assert.equal(Object.values(left).reduce((a, b) => a + b, 0), 0, `step ${k}: the job stayed in Redis ${JSON.stringify(left)}`);
      const res = JSON.parse(readFileSync(join(dir, 'results.json'), 'utf8')) as { runs: { history: unknown[] }[] };
      assert.equal(res.runs.length, 1);
      assert.equal(res.runs[0]!.history.length, 2);
    }
  } finally {
    await queue.close();
    await stop(w);
  }
});

test('settle(): a result in place whose commit record names a completed job removes that job from Redis, touches no file, and drops the record; a job in another state is left', async () => {
  const { connection } = parseQueueUrl(redis.url);
  const queue = new Queue('settle', { connection, prefix: KEY_PREFIX });
  const ex = await QueueExecutor.open({ url: redis.url, name: 'settle', data: { name: 'mnist', trainChecksum: '0'.repeat(64), testChecksum: '0'.repeat(64) } });
  const worker = new Worker('settle', async () => ({ status: 'finished', files: {}, worker: 'test:1' }), { connection, prefix: KEY_PREFIX, autorun: false });
  try {
    // one job completed (a worker ran it), one still waiting
    await queue.add('sleep', {}, { jobId: 'train-done' });
    worker.run().catch(() => {});
    await waitFor('the job to complete', async () => (await queue.getJobState('train-done')) === 'completed', 60);
    await worker.close();
    await queue.add('sleep', {}, { jobId: 'train-waiting' });
    const dirs: Record<string, string> = {};
    for (const id of ['train-done', 'train-waiting', 'train-gone']) {
      dirs[id] = join(root, `settle-${id}`);
      await writeFileSet(dirs[id]!, { 'manifest.json': Buffer.from(`{"job": "${id}"}`), 'log.jsonl': Buffer.from('{}\n') }, ['manifest.json'], undefined, id);
    }
    const before = Object.fromEntries(Object.entries(dirs).map(([id, d]) => [id, { files: readdirSync(d).filter((n) => n !== STAGING_DIR).map((n) => `${n}:${statSync(join(d, n)).ino}`) }]));
    for (const d of Object.values(dirs)) await ex.settle(d);
    assert.equal(await queue.getJobState('train-done'), 'unknown', 'the completed job left Redis');
    assert.equal(await queue.getJobState('train-waiting'), 'waiting', 'a job not completed is not ours to drop');
    for (const [id, d] of Object.entries(dirs)) {
      assert.ok(!existsSync(join(d, STAGING_DIR)), `${id}: the record is dropped`);
      assert.deepEqual({ files: readdirSync(d).map((n) => `${n}:${statSync(join(d, n)).ino}`) }, before[id], `${id}: the files are untouched`);
    }
    // a folder with no record, or none at all: nothing to do
    await ex.settle(join(root, 'settle-none'));
  } finally {
    await worker.close();
    await ex.close();
    await queue.close();
  }
});

test('sweep --queue run again: a result its folder holds and a crash left in Redis leaves Redis, nothing trained, also when every training had finished', async () => {
  const out = join(root, 'sweep');
  const args = ['sweep', '--losses', 'contrastive:margin=0.2..2', '--trials', '1', '--folds', '2', '--seeds', '1', '--epochs', '1', '--train-pairs', '2000', '--no-report', '--out', out, '--queue', redis.url, '--queue-name', 'sweep'];
  const w = start(['worker', '--queue', redis.url, '--queue-name', 'sweep']);
  const queue = new Queue('sweep', { connection: parseQueueUrl(redis.url).connection, prefix: KEY_PREFIX });
  try {
    const first = start(args);
    assert.equal(await first.exited, 0, first.out());
    await stop(w);
    const trainings = (w.out().match(/train-[0-9a-f]+ started/g) ?? []).length;
    assert.equal(trainings, 4, w.out());
    // the one fleet worker trained them all, whatever this machine's cores (it said its threads before)
    const machine = (JSON.parse(readFileSync(join(out, 'results.json'), 'utf8')) as { machine: { workers: number; queue?: boolean } }).machine;
    assert.deepEqual({ workers: machine.workers, queue: machine.queue }, { workers: 1, queue: true });
    // the state a crash between a final run's files in place and its job's removal leaves: the
    // job completed in Redis, the folder's commit record naming it (its files all in place)
    const runDir = join(out, 'runs', 'contrastive', 'tuned-seed0');
    const worker = new Worker('sweep', async () => ({ status: 'finished', files: {}, worker: 'test:1' }), { connection: parseQueueUrl(redis.url).connection, prefix: KEY_PREFIX });
    try {
      await queue.add('train', {}, { jobId: 'train-left' });
      await waitFor('the job to complete', async () => (await queue.getJobState('train-left')) === 'completed', 60);
    } finally {
      await worker.close();
    }
    await writeFileSet(runDir, {}, [], undefined, 'train-left');
    const placed = inodesOf(runDir);
    const again = start(args);
    assert.equal(await again.exited, 0, again.out());
    assert.match(again.out(), /0 trained now, 4 reused/);
    assert.equal(await queue.getJobState('train-left'), 'unknown', 'the job stayed in Redis');
    assert.ok(!existsSync(join(runDir, STAGING_DIR)), 'the commit record is gone');
    assert.deepEqual(inodesOf(runDir), placed, 'the files in place were written again');
  } finally {
    await queue.close();
    await stop(w);
  }
});

test('a coordinator killed at any step of collecting a lone file (a distance sample, a t-SNE layout): the next run has the file, nothing run again, and the job leaves Redis', async () => {
  // a finished comparison, with its t-SNE panels (before training, and the loss's)
  const base = join(root, 'lone-base');
  const opts: CompareOptions = { losses: 'contrastive', seeds: 1, epochs: 1, trainPairs: 2000, workers: 1, out: base, tsnePoints: 60, tsneIterations: 50, retrieval: false };
  const first = await runCompare(opts);
  assert.equal(first.status, 'finished');
  const targets = [
    { what: 'distances', file: join('runs', RUN, 'distances.json'), started: /distances-[0-9a-f]+ started/g },
    { what: 't-SNE', file: join('tsne', 'before.json'), started: /tsne-[0-9a-f]+ started/g },
  ];
  const w = start(['worker', '--queue', redis.url, '--queue-name', 'lone']);
  const queue = new Queue('lone', { connection: parseQueueUrl(redis.url).connection, prefix: KEY_PREFIX });
  const compare = (dir: string, env: Record<string, string> = {}): Proc => start(['compare', '--resume', dir, '--queue', redis.url, '--queue-name', 'lone', '--no-report'], env);
  try {
    for (const t of targets) {
      // the steps: the file staged (1), the commit record naming the job (2), the file moved into
      // place (3), the set in place (4), the job removed from Redis (5; then the record goes);
      // every step for the distance sample, for the t-SNE layout (the same code) two of them
      for (const k of t.what === 'distances' ? [1, 2, 3, 4, 5] : [2, 4]) {
        const dir = join(root, `lone-${t.what}-k${k}`);
        cpSync(base, dir, { recursive: true });
        const path = join(dir, t.file);
        // the file missing: the plan asks the queue for it, as the only job
        rmSync(path);
        const crashed = compare(dir, { SIAMESE_TEST_COLLECT_CRASH_AFTER: String(k) });
        await crashed.exited;
        assert.equal(crashed.child.signalCode, 'SIGKILL', `${t.what} step ${k}: ${crashed.out()}`);
        const done = await queue.getJobs(['completed']);
        let expected: string;
        if (k <= 4) {
          assert.equal(done.length, 1, `${t.what} step ${k}`);
          const files = Object.values((done[0]!.returnvalue as QueueJobResult).files);
          assert.equal(files.length, 1);
          expected = sha(Buffer.from(files[0]!, 'base64'));
        } else {
          assert.equal(done.length, 0, `${t.what} step ${k}`);
          expected = sha(readFileSync(path));
        }
        const placed = k >= 3 ? statSync(path).ino : undefined;
        const ran = (w.out().match(t.started) ?? []).length;
        const again = compare(dir);
        assert.equal(await again.exited, 0, `${t.what} step ${k}: ${again.out()}`);
        assert.equal((w.out().match(t.started) ?? []).length, ran, `${t.what} step ${k}: the job ran again\n${w.out()}`);
        assert.equal(sha(readFileSync(path)), expected, `${t.what} step ${k}: the file is the worker's`);
        if (placed !== undefined) assert.equal(statSync(path).ino, placed, `${t.what} step ${k}: the file in place was written again`);
        assert.ok(!existsSync(join(dir, t.file, '..', singleFileStaging(t.file.split('/').pop()!))), `${t.what} step ${k}: the commit record is gone`);
        const left = await queue.getJobCounts('completed', 'waiting', 'active', 'delayed', 'failed');
        assert.equal(Object.values(left).reduce((a, b) => a + b, 0), 0, `${t.what} step ${k}: the job stayed in Redis ${JSON.stringify(left)}`);
      }
    }
  } finally {
    await queue.close();
    await stop(w);
  }
});

test('a plain compare (no --queue) after a coordinator was killed at any step of collecting a lone file: it completes or undoes the write and ends as the uninterrupted comparison', async () => {
  // the uninterrupted comparison: its distance sample and t-SNE layouts trained here, on the local pool
  const base = join(root, 'plain-base');
  const opts: CompareOptions = { losses: 'contrastive', seeds: 1, epochs: 1, trainPairs: 2000, workers: 1, out: base, tsnePoints: 60, tsneIterations: 50, retrieval: false };
  assert.equal((await runCompare(opts)).status, 'finished');
  /** results.json without what differs between two invocations (the time, the folder's path) */
  const results = (dir: string): unknown => {
    const r = JSON.parse(readFileSync(join(dir, 'results.json'), 'utf8').replaceAll(dir, base)) as Record<string, unknown>;
    for (const k of ['machine', 'createdAt']) delete r[k];
    return r;
  };
  const uninterrupted = results(base);
  const targets = [
    { what: 'distances', file: join('runs', RUN, 'distances.json') },
    { what: 't-SNE', file: join('tsne', 'before.json') },
  ];
  const w = start(['worker', '--queue', redis.url, '--queue-name', 'plain']);
  try {
    for (const t of targets) {
      const expected = sha(readFileSync(join(base, t.file)));
      const staging = join(t.file, '..', singleFileStaging(t.file.split('/').pop()!));
      // the steps: the file staged (1), the commit record (2), the file in place (3), the set in
      // place (4), the job removed from Redis (5)
      for (const k of [1, 2, 3, 4, 5]) {
        const dir = join(root, `plain-${t.what}-k${k}`);
        cpSync(base, dir, { recursive: true });
        const path = join(dir, t.file);
        rmSync(path);
        const crashed = start(['compare', '--resume', dir, '--queue', redis.url, '--queue-name', 'plain', '--no-report'], { SIAMESE_TEST_COLLECT_CRASH_AFTER: String(k) });
        await crashed.exited;
        assert.equal(crashed.child.signalCode, 'SIGKILL', `${t.what} step ${k}: ${crashed.out()}`);
        // what the crash left: a staged write, undecided (step 1) or decided (2 and later: its record)
        assert.ok(existsSync(join(dir, staging)), `${t.what} step ${k}: the staging folder`);
        const plain = start(['compare', '--resume', dir, '--no-report']);
        assert.equal(await plain.exited, 0, `${t.what} step ${k}: ${plain.out()}`);
        // only an undecided write is undone, and the job then runs here; a decided one is completed
        assert.equal(/ done in /.test(plain.out()), k === 1, `${t.what} step ${k}: ${plain.out()}`);
        assert.equal(sha(readFileSync(path)), expected, `${t.what} step ${k}: the uninterrupted file`);
        assert.ok(!existsSync(join(dir, staging)), `${t.what} step ${k}: the staging folder is gone`);
        assert.deepEqual(results(dir), uninterrupted, `${t.what} step ${k}: results.json`);
        // the job a plain compare leaves in Redis: the next step's crash starts from an empty queue
        await queueClean(redis.url, 'plain', true);
      }
    }
  } finally {
    await stop(w);
  }
});
