/**
 * A worker that cannot run a grid's jobs for a reason of its own (here: pointed at an empty data
 * folder, so its MNIST is missing) puts them back for other workers without spending their
 * attempts, and leaves the grid alone for a while; the grid ends as usual on the worker that can.
 * With no such worker, the coordinator reports the job in one line within a bounded time and
 * exits non-zero. Before, the first worker to take a job failed it for good.
 * Through a real redis-server, `siamese worker`s and `siamese compare --queue`.
 * @needs redis-server
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { Queue } from 'bullmq';
import { KEY_PREFIX, parseQueueUrl } from '../../src/experiments/queue/connection.ts';
import { type CliProcess as Proc, startCli as start, stopAll, stopCli as stop, waitFor } from './processes.ts';
import { type RedisServer, startRedis } from './redis.ts';

const root = mkdtempSync(join(tmpdir(), 'siamese-refusal-'));
const empty = join(root, 'empty');
mkdirSync(empty);
const GRID = ['--seeds', '1', '--epochs', '1', '--train-pairs', '2000', '--tsne-points', '0', '--snapshot-points', '0', '--no-report', '--no-retrieval'];
let redis: RedisServer;
const refusals = (p: Proc): string[] => p.out().split('\n').filter((l) => / cannot run train-/.test(l));

before(async () => {
  redis = await startRedis();
});
after(async () => {
  stopAll();
  await redis?.stop();
  rmSync(root, { recursive: true, force: true });
});

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
