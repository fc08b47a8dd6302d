/**
 * A worker stopped with SIGTERM (or SIGINT) in the middle of a training puts the job back on the
 * queue without spending one of its attempts: three graceful stops (a fleet restarted three
 * times) used to fail the job for good, its trained epochs lost to the coordinator, which
 * reported it failed. The next worker resumes it from the epoch the stopped one saved.
 * Through a real redis-server and `siamese worker` processes.
 * @needs redis-server
 */
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { KEY_PREFIX, parseQueueUrl } from '../../src/experiments/queue/connection.ts';
import { checkpointKey } from '../../src/experiments/queue/keys.ts';
import { type CliProcess, queueTestHooks, smallTrainJob, startCli, waitFor } from './processes.ts';
import type { RedisServer } from './redis.ts';

const root = mkdtempSync(join(tmpdir(), 'siamese-graceful-'));
let redis: RedisServer;
queueTestHooks(root, (r) => (redis = r));

function worker(queueName = 'graceful', args: string[] = []): CliProcess {
  return startCli(['worker', '--queue', redis.url, '--queue-name', queueName, '--threads', '1', ...args]);
}


test('three graceful stops mid-training: the job waits again each time, no attempt spent; a fourth worker finishes it from the saved epochs', async () => {
  // epochs enough that no worker can finish before it is stopped (it is stopped after its first epoch)
  const data = await smallTrainJob(root, 60);
  const { connection } = parseQueueUrl(redis.url);
  const queue = new Queue('graceful', { connection, prefix: KEY_PREFIX });
  const conn = new Redis(connection as object);
  try {
    const job = await queue.add('train', data, { jobId: 'train-graceful', attempts: 3, backoff: { type: 'fixed', delay: 1000 } });
    const savedEpoch = async (): Promise<number> => {
      const b = await conn.get(checkpointKey('graceful', job.id!));
      if (!b) return 0;
      const manifest = JSON.parse(Buffer.from((JSON.parse(b) as Record<string, string>)['manifest.json']!, 'base64').toString('utf8')) as { epochsDone: number };
      return manifest.epochsDone;
    };
    let before = 0;
    for (let stop = 1; stop <= 3; stop++) {
      const w = worker();
      // a new epoch saved by this worker, then SIGTERM: it stops after the epoch it is in
      await waitFor(`an epoch on worker ${stop}`, async () => (await savedEpoch()) > before);
      w.child.kill('SIGTERM');
      assert.equal(await w.exited, 0, w.out());
      assert.match(w.out(), /train-graceful stopped, back on the queue/);
      const j = (await queue.getJob(job.id!))!;
      assert.equal(await j.getState(), 'waiting', w.out());
      assert.equal(j.attemptsMade, 0, `stop ${stop}: no attempt spent\n${w.out()}`);
      const saved = await savedEpoch();
      assert.ok(saved > before && saved < 60, `stop ${stop}: epoch ${saved} saved`);
      before = saved;
    }
    const last = worker();
    try {
      await waitFor('the job to finish', async () => (await queue.getJobState(job.id!)) === 'completed', 300);
      const j = (await queue.getJob(job.id!))!;
      assert.equal(j.returnvalue.epochs, 60);
      assert.equal(j.attemptsMade, 1, 'one attempt: the one that finished');
      // each worker went on from the epoch the one before saved: the run's manifest lists the resumes
      const manifest = JSON.parse(Buffer.from(j.returnvalue.files['manifest.json'], 'base64').toString('utf8')) as { epochsDone: number; resumes?: { fromEpoch: number }[] };
      assert.equal(manifest.epochsDone, 60);
      const from = (manifest.resumes ?? []).map((r) => r.fromEpoch);
      assert.equal(from.length, 3, JSON.stringify(manifest.resumes));
      assert.ok(from.every((e, i) => e > 0 && (i === 0 || e > from[i - 1]!)), JSON.stringify(from));
      assert.equal(from[2], before);
    } finally {
      last.child.kill('SIGKILL');
      await last.exited;
    }
  } finally {
    await queue.close();
    conn.disconnect();
  }
});
