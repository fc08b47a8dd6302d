/**
 * A job that failed for good in an earlier run of the coordinator is tried again when the command
 * runs again, as the local pool trains a failed run again: its cause may be gone (here: the
 * worker whose data differed). It used to come back at once as the old failure, naming a worker
 * that may no longer exist, run after run, until the grid's keys were removed by hand.
 * Through a real redis-server and a `siamese worker`.
 * @needs redis-server
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { Queue, UnrecoverableError, Worker } from 'bullmq';
import { loadDataset } from '../../src/data/registry.ts';
import type { JobRequest } from '../../src/experiments/jobs.ts';
import { KEY_PREFIX, parseQueueUrl } from '../../src/experiments/queue/connection.ts';
import { QueueExecutor } from '../../src/experiments/queue/coordinator.ts';
import { jobId, toQueueJob } from '../../src/experiments/queue/payload.ts';
import { resolveConfig } from '../../src/train/config.ts';
import { sharedInitialWeights } from '../../src/train/run.ts';
import { startCli, stopCli, queueTestHooks } from './processes.ts';
import type { RedisServer } from './redis.ts';

const root = mkdtempSync(join(tmpdir(), 'siamese-rerun-'));
let redis: RedisServer;
queueTestHooks(root, (r) => (redis = r));

test('run again, a job that failed for good before is tried again (attempts afresh) and its result collected', async () => {
  const ds = await loadDataset({ name: 'mnist' });
  const config = resolveConfig({});
  const weights = join(root, 'initial.safetensors');
  await sharedInitialWeights(weights, config, ds);
  const data = { name: ds.name, trainChecksum: ds.train.checksum, testChecksum: ds.test.checksum };
  // a small t-SNE job: quick, and a real job of the coordinator's
  const req: JobRequest = {
    type: 'tsne', weights, config, indices: Array.from({ length: 60 }, (_, i) => i), params: { perplexity: 5, iterations: 50, seed: 0, theta: 0.5 },
    out: join(root, 'tsne.json'), key: 'k',
  };
  const id = jobId(toQueueJob(req, data));
  const { connection } = parseQueueUrl(redis.url);

  // the earlier run: a worker with other data failed the job for good, as `siamese worker` does
  const queue = new Queue('rerun', { connection, prefix: KEY_PREFIX });
  await queue.add('tsne', toQueueJob(req, data), { jobId: id, attempts: 3 });
  const old = new Worker(
    'rerun',
    async (job) => {
      await job.updateProgress({ type: 'failure', code: 'data' });
      throw new UnrecoverableError("worker old:1: its data set mnist differs from the coordinator's");
    },
    { connection, prefix: KEY_PREFIX },
  );
  try {
    const end = Date.now() + 60_000;
    while ((await queue.getJobState(id)) !== 'failed') {
      if (Date.now() > end) throw new Error('the job did not fail');
      await new Promise((r) => setTimeout(r, 50));
    }
  } finally {
    await old.close();
  }

  // now a worker with the right data; the command runs again
  const worker = startCli(['worker', '--queue', redis.url, '--queue-name', 'rerun']);
  const ex = await QueueExecutor.open({ url: redis.url, name: 'rerun', data });
  try {
    const r = await ex.run(req);
    // the result names the worker that ran it (host:pid), the one started here
    assert.deepEqual(r, { status: 'finished', worker: `${hostname()}:${worker.child.pid}` }, worker.out());
  } catch (e) {
    assert.fail(`${(e as Error).message}\n${worker.out()}`);
  } finally {
    await ex.close();
    await queue.close();
    await stopCli(worker);
  }
  const out = worker.out();
  assert.ok(existsSync(req.out), out);
  const tsne = JSON.parse(readFileSync(req.out, 'utf8')) as { indices: number[]; points: unknown[] };
  assert.equal(tsne.indices.length, 60);
  assert.match(out, new RegExp(`${id} finished`));
});
