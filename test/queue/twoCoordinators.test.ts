/**
 * Two coordinators of one grid (the same `compare --queue` options and --queue-name, two output
 * folders: two people, or a second machine) enqueue the same jobs (their ids hash the whole job,
 * not the folder; the default queue name differs, for it hashes the grid file's creation time): the fleet trains each
 * once, and each coordinator gets the result, whichever collects first. Before, the first to
 * collect removed the result from Redis; the other found the job gone, said it was "lost by
 * Redis" and enqueued it again: trained twice. The slow one is made slow for certain: stopped
 * (SIGSTOP) until the other has finished.
 * Through a real redis-server, a `siamese worker` and two `siamese compare --queue`.
 * @needs redis-server
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { KEY_PREFIX, parseQueueUrl } from '../../src/experiments/queue/connection.ts';
import { folderOwner } from '../../src/experiments/queue/coordinator.ts';
import { waitersPattern } from '../../src/experiments/queue/keys.ts';
import { type CliProcess as Proc, queueTestHooks, startCli as start, stopCli as stop, waitFor } from './processes.ts';
import type { RedisServer } from './redis.ts';

const root = mkdtempSync(join(tmpdir(), 'siamese-two-coordinators-'));
const GRID = ['--losses', 'contrastive', '--seeds', '1', '--epochs', '1', '--train-pairs', '2000', '--tsne-points', '0', '--snapshot-points', '0', '--no-report', '--no-retrieval'];
let redis: RedisServer;
queueTestHooks(root, (r) => (redis = r));

/** A run folder's files, name -> SHA-256 (the manifest and logs hold no time of the coordinator's). */
function files(dir: string): Record<string, string> {
  const run = join(dir, 'runs', 'contrastive-seed0');
  return Object.fromEntries(
    readdirSync(run)
      .sort()
      .map((n) => [n, createHash('sha256').update(readFileSync(join(run, n))).digest('hex')]),
  );
}

test('two coordinators of one grid, one of them stopped until the other has finished: the job trains once, both get its files, and it then leaves Redis', async () => {
  const conn = new Redis({ ...(parseQueueUrl(redis.url).connection as object) });
  let w: Proc | undefined;
  const slow = start(['compare', ...GRID, '--out', join(root, 'slow'), '--queue', redis.url, '--queue-name', 'two']);
  let fast: Proc | undefined;
  /** the coordinators waiting for the grid's one job */
  const waiters = async (): Promise<{ members: string[] } | undefined> => {
    const keys = await conn.keys(waitersPattern('two'));
    assert.ok(keys.length <= 1, keys.join(' '));
    return keys.length ? { members: (await conn.smembers(keys[0]!)).sort() } : undefined;
  };
  try {
    await waitFor('the first coordinator to enqueue the job', async () => (await waiters())?.members.length === 1, 60);
    fast = start(['compare', ...GRID, '--out', join(root, 'fast'), '--queue', redis.url, '--queue-name', 'two']);
    await waitFor('the second coordinator to enqueue it too', async () => (await waiters())?.members.length === 2, 60);
    assert.deepEqual((await waiters())?.members, [folderOwner(join(root, 'fast')), folderOwner(join(root, 'slow'))].sort());
    slow.child.kill('SIGSTOP');
    w = start(['worker', '--queue', redis.url, '--queue-name', 'two']);
    assert.equal(await fast.exited, 0, `${fast.out()}\n${w.out()}`);
    // the fast one has its files; the result waits in Redis for the slow one
    const queue = new Queue('two', { connection: parseQueueUrl(redis.url).connection, prefix: KEY_PREFIX });
    try {
      assert.equal((await queue.getJobs(['completed'])).length, 1, 'the result left Redis before the other coordinator had it');
      assert.deepEqual((await waiters())?.members, [folderOwner(join(root, 'slow'))], 'the stopped coordinator still waits for it');
      slow.child.kill('SIGCONT');
      assert.equal(await slow.exited, 0, `${slow.out()}\n${w.out()}`);
      assert.doesNotMatch(slow.out(), /lost by Redis/);
      assert.equal((w.out().match(/train-[0-9a-f]+ started/g) ?? []).length, 1, `trained more than once:\n${w.out()}`);
      assert.deepEqual(files(join(root, 'slow')), files(join(root, 'fast')));
      // nothing of the job left in Redis once both have it
      const left = await queue.getJobCounts('completed', 'waiting', 'active', 'delayed', 'failed');
      assert.equal(Object.values(left).reduce((a, b) => a + b, 0), 0, JSON.stringify(left));
      assert.equal(await waiters(), undefined);
    } finally {
      await queue.close();
    }
  } finally {
    if (slow.child.exitCode === null) slow.child.kill('SIGCONT');
    conn.disconnect();
    await stop(slow);
    if (fast) await stop(fast);
    if (w) await stop(w);
  }
});
