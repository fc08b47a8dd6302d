/**
 * A worker that cannot run a grid's jobs for a reason of its own (here: pointed at an empty data
 * folder, so its MNIST is missing) puts them back for other workers without spending their
 * attempts, and leaves the grid alone for a while; the grid ends as usual on the worker that can.
 * With no such worker, the coordinator reports the job in one line within a bounded time and
 * exits non-zero. Before, the first worker to take a job failed it for good.
 * The machine's own faults too (errors.ts, machineFault): a worker whose disk is full (ENOSPC
 * injected by test/fixtures/faults.mjs into its job folders) and one without the native engine
 * (SIAMESE_NATIVE=0) that a job asks for put the job back the same way.
 * A refused job is not running: the coordinator frees its display line and says so (the
 * progress display's ETA then shares no work over it) until a worker takes it again. Before, it
 * counted as running, in the ETA too, from the refusing worker's start until another took it.
 * Through a real redis-server, `siamese worker`s and `siamese compare --queue`.
 * @needs redis-server
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { test } from 'node:test';
import { Queue } from 'bullmq';
import { runCompare } from '../../src/experiments/compare.ts';
import { KEY_PREFIX, parseQueueUrl } from '../../src/experiments/queue/connection.ts';
import { type CliProcess as Proc, startCli as start, stopCli as stop, waitFor, queueTestHooks } from './processes.ts';
import { REPO_ROOT } from '../helpers.ts';
import type { RedisServer } from './redis.ts';

const root = mkdtempSync(join(tmpdir(), 'siamese-refusal-'));
const empty = join(root, 'empty');
mkdirSync(empty);
const GRID = ['--seeds', '1', '--epochs', '1', '--train-pairs', '2000', '--tsne-points', '0', '--snapshot-points', '0', '--no-report', '--no-retrieval'];
let redis: RedisServer;
const refusals = (p: Proc): string[] => p.out().split('\n').filter((l) => / cannot run train-/.test(l));
const FAULTS = pathToFileURL(join(REPO_ROOT, 'test', 'fixtures', 'faults.mjs')).href;

queueTestHooks(root, (r) => (redis = r));

test('a worker without the data set puts the jobs back, attempts unspent; the worker that has it runs them all', async () => {
  const bad = start(['worker', '--queue', redis.url, '--queue-name', 'two', '--data-dir', empty, '--backoff-seconds', '0.5']);
  let good: Proc | undefined;
  const queue = new Queue('two', { connection: parseQueueUrl(redis.url).connection, prefix: KEY_PREFIX });
  try {
    await waitFor('the worker', () => /serving grid two/.test(bad.out()), 60);
    const c = start(['compare', '--losses', 'contrastive,yukawa', ...GRID, '--out', join(root, 'two'), '--queue', redis.url, '--queue-name', 'two']);
    // more refusals than a job has attempts (3): none of them spent one
    await waitFor('four refusals', () => refusals(bad).length >= 4);
    for (const l of refusals(bad)) {
      assert.match(l, /^worker [^ ]+:\d+: cannot run train-[0-9a-f]+: cannot load its data set mnist: .+; left to other workers, grid two left alone for 0\.5 s$/);
    }
    good = start(['worker', '--queue', redis.url, '--queue-name', 'two']);
    const code = await c.exited;
    assert.equal(code, 0, `${c.out()}\n${bad.out()}\n${good.out()}`);
    const results = JSON.parse(readFileSync(join(root, 'two', 'results.json'), 'utf8')) as { runs: unknown[] };
    assert.equal(results.runs.length, 2);
    assert.equal((good.out().match(/train-[0-9a-f]+ finished/g) ?? []).length, 2, good.out());
    assert.equal(await queue.getFailedCount(), 0);
    assert.doesNotMatch(bad.out(), /failed/);
  } finally {
    await queue.close();
    await stop(bad);
    if (good) await stop(good);
  }
});

test('no worker can run the job: the coordinator says so in one line, naming the job and the reason, and exits non-zero', async () => {
  const bad = start(['worker', '--queue', redis.url, '--queue-name', 'none', '--data-dir', empty, '--backoff-seconds', '0.5']);
  try {
    await waitFor('the worker', () => /serving grid none/.test(bad.out()), 60);
    const c = start(['compare', '--losses', 'contrastive', ...GRID, '--out', join(root, 'none'), '--queue', redis.url, '--queue-name', 'none'], {
      SIAMESE_QUEUE_UNRUNNABLE_SECONDS: '3',
    });
    // bounded: the coordinator's 3 s after the last progress, plus its 2 s rounds
    const code = await Promise.race([c.exited, new Promise<'late'>((r) => setTimeout(() => r('late'), 90_000))]);
    assert.notEqual(code, 'late', c.out());
    assert.notEqual(code, 0, c.out());
    const lines = c.err().split('\n').filter((l) => /no worker could run it/.test(l));
    assert.equal(lines.length, 1, c.err());
    assert.match(lines[0]!, /contrastive seed 0.*no worker could run it for 3 s \(the last to try, worker [^ ]+:\d+: cannot load its data set mnist: /);
    assert.ok(refusals(bad).length >= 1, bad.out());
  } finally {
    await stop(bad);
  }
});

/**
 * A worker started with `env` (and node options `node`) cannot run the grid's one job: it refuses
 * it more times than a job has attempts, each line matching `reason`; then a plain worker runs it,
 * no attempt having been spent.
 */
async function refusedThenRun(grid: string, env: Record<string, string>, node: string[], compareArgs: string[], reason: RegExp): Promise<void> {
  const bad = start(['worker', '--queue', redis.url, '--queue-name', grid, '--backoff-seconds', '0.5'], env, node);
  let good: Proc | undefined;
  const queue = new Queue(grid, { connection: parseQueueUrl(redis.url).connection, prefix: KEY_PREFIX });
  try {
    await waitFor('the worker', () => new RegExp(`serving grid ${grid}`).test(bad.out()), 60);
    const c = start(['compare', '--losses', 'contrastive', ...GRID, ...compareArgs, '--out', join(root, grid), '--queue', redis.url, '--queue-name', grid]);
    await waitFor('four refusals', () => refusals(bad).length >= 4);
    for (const l of refusals(bad)) assert.match(l, reason);
    assert.doesNotMatch(bad.out(), /failed/);
    good = start(['worker', '--queue', redis.url, '--queue-name', grid]);
    assert.equal(await c.exited, 0, `${c.out()}\n${bad.out()}\n${good.out()}`);
    assert.equal((good.out().match(/train-[0-9a-f]+ finished/g) ?? []).length, 1, good.out());
    assert.equal(await queue.getFailedCount(), 0);
  } finally {
    await queue.close();
    await stop(bad);
    if (good) await stop(good);
  }
}

test('a worker whose disk is full puts the job back, attempts unspent, for a worker that can run it', async () => {
  // its job folders (mkdtemp's siamese-job-*) are on a full disk: their first file fails with ENOSPC
  const tmp = join(root, 'tmp');
  mkdirSync(tmp);
  await refusedThenRun(
    'full',
    { TMPDIR: tmp, SIAMESE_TEST_FULL: join(tmp, 'siamese-job-*') },
    ['--import', FAULTS],
    [],
    /^worker [^ ]+:\d+: cannot run train-[0-9a-f]+: its disk is full \(ENOSPC: injected, '.*siamese-job-[^/]+\/reset\.safetensors'\); left to other workers, grid full left alone for 0\.5 s$/,
  );
});

test('a worker without the native engine puts back a job that asks for it, attempts unspent, for a worker that has it', async () => {
  await refusedThenRun(
    'nonative',
    { SIAMESE_NATIVE: '0' },
    [],
    ['--engine', 'native'],
    /^worker [^ ]+:\d+: cannot run train-[0-9a-f]+: --engine native: the native engine is not available \(.+\); left to other workers, grid nonative left alone for 0\.5 s$/,
  );
});

test('a refused job leaves its display line each time it is put back (onJobRequeue), and takes one again only when a worker takes it', async () => {
  const bad = start(['worker', '--queue', redis.url, '--queue-name', 'eta', '--data-dir', empty, '--backoff-seconds', '0.5']);
  const seen: string[] = [];
  const ac = new AbortController();
  try {
    await waitFor('the worker', () => /serving grid eta/.test(bad.out()), 60);
    const run = runCompare(
      { losses: 'contrastive', seeds: 1, epochs: 1, trainPairs: 2000, tsnePoints: 0, snapshotPoints: 0, retrieval: false, out: join(root, 'eta'), queue: { url: redis.url, name: 'eta' }, signal: ac.signal },
      {
        onJobStart: (j, slot) => seen.push(`start ${j.key} ${slot}`),
        onJobRequeue: (j, slot) => seen.push(`requeue ${j.key} ${slot}`),
        onJobEvent: (j, ev) => seen.push(`event ${j.key} ${ev.type}`),
      },
    );
    await waitFor('three refusals seen by the coordinator', () => seen.filter((e) => e.startsWith('requeue')).length >= 3);
    ac.abort();
    assert.equal((await run).status, 'interrupted');
    // each time a worker took it, then put it back: never counted as running in between
    const n = seen.filter((e) => e.startsWith('requeue')).length;
    // as many refusals behind them: the worker logs each after putting the job back, so its line
    // may come after the coordinator saw the refusal (reading the count at once failed, rarely)
    await waitFor(`${n} refusals in the worker's log`, () => refusals(bad).length >= n, 30);
    const expected = Array.from({ length: n }, () => ['start contrastive-seed0 0', 'requeue contrastive-seed0 0']).flat();
    assert.deepEqual(seen.slice(0, 2 * n), expected);
    assert.ok(seen.length - 2 * n <= 1 && (seen.length === 2 * n || seen[2 * n] === 'start contrastive-seed0 0'), seen.join('\n'));
  } finally {
    ac.abort();
    await stop(bad);
  }
});
