/**
 * A coordinator that leaves a job (it has written its result, or gives up on it: no worker could
 * run it) takes it off Redis only when no other coordinator of the grid waits for it, and decides
 * that in one step with the removal:
 * - a second coordinator that arrives at the very moment the first removes a result it has
 *   collected (queueHooks.beforeWithdraw brings it in there, after the first counted the job's
 *   waiting coordinators and before the removal) keeps the result: it gets it without the job
 *   training again. Before, the count and the removal were two round trips apart, and the job
 *   left Redis under the second coordinator, which then enqueued it again: trained twice.
 * - a coordinator that gives up on a job no worker could run reports the failure for itself and
 *   leaves the job queued for the other coordinator that waits for it, which gets its result once
 *   a worker that can run it comes. Before, the first to give up removed the job from under the
 *   other, which then enqueued it again "lost by Redis" (or, had it given up later, never learnt why).
 * - the last coordinator to give up removes it.
 * In one process: QueueExecutors (two owners: two output folders) and a BullMQ worker of the
 * test's own that sends a file back, through a real redis-server.
 * @needs redis-server
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { Queue, Worker } from 'bullmq';
import { Redis } from 'ioredis';
import type { JobRequest } from '../../src/experiments/jobs.ts';
import { KEY_PREFIX, parseQueueUrl } from '../../src/experiments/queue/connection.ts';
import { QueueExecutor, withdrawScriptText } from '../../src/experiments/queue/coordinator.ts';
import { waitersKey } from '../../src/experiments/queue/keys.ts';
import { jobId, toQueueJob } from '../../src/experiments/queue/payload.ts';
import { queueHooks } from '../../src/testHooks.ts';
import { queueTestHooks, waitFor } from './processes.ts';
import type { RedisServer } from './redis.ts';

const root = mkdtempSync(join(tmpdir(), 'siamese-withdraw-'));
let redis: RedisServer;
queueTestHooks(root, (r) => (redis = r));

const DATA = { name: 'mnist', trainChecksum: '0'.repeat(64), testChecksum: '0'.repeat(64) };
const RESULT = '{"sample": [0.25, 0.5]}';

/** A distances job of a run folder under `out` (the same files in every folder: the same job, whichever folder asks). */
function request(out: string): JobRequest {
  const runDir = join(root, out, 'runs', 'contrastive-seed0');
  mkdirSync(runDir, { recursive: true });
  writeFileSync(join(runDir, 'manifest.json'), '{"run": 0}');
  writeFileSync(join(runDir, 'weights.safetensors'), 'weights');
  return { type: 'distances', runDir, distanceSample: 10 };
}

const distances = (req: JobRequest): string => readFileSync(join((req as { runDir: string }).runDir, 'distances.json'), 'utf8');

/** A worker that runs every job of the grid at once, sending RESULT back; `runs` counts them. */
function fakeWorker(grid: string): { worker: Worker; runs: () => number } {
  let n = 0;
  const worker = new Worker(
    grid,
    async () => {
      n++;
      return { status: 'finished', files: { 'distances.json': Buffer.from(RESULT).toString('base64') }, worker: 'test:1' };
    },
    { connection: parseQueueUrl(redis.url).connection, prefix: KEY_PREFIX },
  );
  worker.on('error', () => {});
  return { worker, runs: () => n };
}

async function open(grid: string, owner: string, unrunnableSeconds = 3600): Promise<QueueExecutor> {
  return QueueExecutor.open({ url: redis.url, name: grid, data: DATA, owner, unrunnableSeconds });
}

/** Redis for the test's own looks: the grid's queue and the job's waiting coordinators. */
function look(grid: string): { queue: Queue; conn: Redis; waiters: (id: string) => Promise<string[]>; close: () => Promise<void> } {
  const connection = parseQueueUrl(redis.url).connection;
  const queue = new Queue(grid, { connection, prefix: KEY_PREFIX });
  const conn = new Redis({ ...(connection as object) });
  return {
    queue,
    conn,
    waiters: async (id) => (await conn.smembers(waitersKey(grid, id))).sort(),
    close: async () => {
      await queue.close();
      conn.disconnect();
    },
  };
}

test('a second coordinator that joins a job while the first removes its collected result: the result stays for it, and the job never trains again', async (t) => {
  const grid = 'race';
  const reqA = request('a');
  const reqB = request('b');
  const id = jobId(toQueueJob(reqA, DATA));
  assert.equal(jobId(toQueueJob(reqB, DATA)), id);
  const { queue, conn, waiters, close } = look(grid);
  const fake = fakeWorker(grid);
  const a = await open(grid, 'a');
  let b: QueueExecutor | undefined;
  let joined = 0;
  t.after(async () => {
    delete queueHooks.beforeWithdraw;
    await a.close();
    await b?.close();
    await fake.worker.close();
    await close();
  });
  // the second coordinator's submit, at the moment the first leaves the job: it says it waits for
  // the job, then enqueues it (the same id: BullMQ keeps the existing one, completed)
  queueHooks.beforeWithdraw = async (jobId) => {
    if (jobId !== id || joined++ > 0) return;
    const job = await queue.getJob(id);
    await conn.sadd(waitersKey(grid, id), 'b');
    await queue.add(job!.name, job!.data, { jobId: id });
  };
  assert.deepEqual(await a.run(reqA), { status: 'finished', worker: 'test:1' });
  assert.equal(joined, 1);
  assert.equal(distances(reqA), RESULT);
  assert.equal(await queue.getJobState(id), 'completed', 'the result left Redis while the second coordinator waited for it');
  assert.deepEqual(await waiters(id), ['b']);
  // the second coordinator collects it: no training again, and the job leaves Redis then
  b = await open(grid, 'b');
  assert.deepEqual(await b.run(reqB), { status: 'finished', worker: 'test:1' });
  assert.equal(distances(reqB), RESULT);
  assert.equal(fake.runs(), 1);
  assert.equal(await queue.getJobState(id), 'unknown');
  assert.deepEqual(await waiters(id), []);
});

test('a coordinator that joins after the first removed the result enqueues the job anew, as a new job', async (t) => {
  const grid = 'after';
  const reqA = request('after-a');
  const reqB = request('after-b');
  const id = jobId(toQueueJob(reqA, DATA));
  const { queue, waiters, close } = look(grid);
  const fake = fakeWorker(grid);
  const a = await open(grid, 'a');
  let b: QueueExecutor | undefined;
  t.after(async () => {
    await a.close();
    await b?.close();
    await fake.worker.close();
    await close();
  });
  assert.equal((await a.run(reqA)).status, 'finished');
  assert.equal(await queue.getJobState(id), 'unknown');
  const lines: string[] = [];
  b = await QueueExecutor.open({ url: redis.url, name: grid, data: DATA, owner: 'b', log: (l) => lines.push(l) });
  assert.equal((await b.run(reqB)).status, 'finished');
  assert.equal(distances(reqB), RESULT);
  assert.equal(fake.runs(), 2);
  assert.deepEqual(lines, [], 'nothing "lost by Redis"');
  assert.deepEqual(await waiters(id), []);
});

test('a coordinator that gives up on a job no worker could run leaves it queued for the other coordinator that waits for it, which gets its result', async (t) => {
  const grid = 'refused';
  const reqA = request('refused-a');
  const reqB = request('refused-b');
  const id = jobId(toQueueJob(reqA, DATA));
  const { queue, waiters, close } = look(grid);
  // the one to give up (after 1 s of refusals), and one that waits on
  const a = await open(grid, 'a', 1);
  const b = await open(grid, 'b');
  let fake: ReturnType<typeof fakeWorker> | undefined;
  t.after(async () => {
    await a.close();
    await b.close();
    await fake?.worker.close();
    await close();
  });
  const gaveUp = a.run(reqA).then(
    (r) => assert.fail(`the job was not given up: ${JSON.stringify(r)}`),
    (e: Error) => e,
  );
  const bGot = b.run(reqB);
  await waitFor('both coordinators to wait for the job', async () => (await waiters(id)).length === 2, 30);
  // a worker that cannot run it says so (worker.ts, refuse)
  await (await queue.getJob(id))!.updateProgress({ type: 'refused', worker: 'test:2', reason: 'cannot load its data set mnist: no such folder' });
  const e = await gaveUp;
  assert.equal(await queue.getJobState(id), 'waiting', 'the job was removed while another coordinator waited for it');
  assert.deepEqual(await waiters(id), ['b']);
  assert.equal(e.name, 'DataError');
  assert.equal(
    e.message,
    'no worker could run it for 1 s (the last to try, worker test:2: cannot load its data set mnist: no such folder); start a worker that has what it needs (the job stays queued: 1 other coordinator waits for it)',
  );
  // a worker that can run it comes: the coordinator that waited gets its result
  fake = fakeWorker(grid);
  assert.deepEqual(await bGot, { status: 'finished', worker: 'test:1' });
  assert.equal(distances(reqB), RESULT);
  assert.equal(fake.runs(), 1);
  assert.equal(await queue.getJobState(id), 'unknown');
  assert.deepEqual(await waiters(id), []);
});

test('the last coordinator to give up on a job no worker could run takes it off the queue', async (t) => {
  const grid = 'alone';
  const req = request('alone');
  const id = jobId(toQueueJob(req, DATA));
  const { queue, waiters, close } = look(grid);
  const a = await open(grid, 'a', 1);
  t.after(async () => {
    await a.close();
    await close();
  });
  const gaveUp = a.run(req).then(
    (r) => assert.fail(`the job was not given up: ${JSON.stringify(r)}`),
    (e: Error) => e,
  );
  await waitFor('the coordinator to enqueue the job', async () => (await waiters(id)).length === 1, 30);
  await (await queue.getJob(id))!.updateProgress({ type: 'refused', worker: 'test:2', reason: 'its disk is full' });
  const e = await gaveUp;
  assert.equal(e.message, 'no worker could run it for 1 s (the last to try, worker test:2: its disk is full); start a worker that has what it needs');
  assert.equal(await queue.getJobState(id), 'unknown');
  assert.deepEqual(await waiters(id), []);
});

test('a job a worker takes at the moment its coordinator gives up on it is not given up: the coordinator gets its result', async (t) => {
  const grid = 'taken';
  const req = request('taken');
  const id = jobId(toQueueJob(req, DATA));
  const { queue, waiters, close } = look(grid);
  const a = await open(grid, 'a', 1);
  let worker: Worker | undefined;
  let finishJob: () => void = () => {};
  const held = new Promise<void>((r) => (finishJob = r));
  let taken = 0;
  let tried: { left: number; removed: number } | undefined;
  t.after(async () => {
    delete queueHooks.beforeWithdraw;
    delete queueHooks.afterWithdraw;
    finishJob();
    await a.close();
    await worker?.close();
    await close();
  });
  // at the moment the coordinator gives up, a worker takes the job (and holds it: locked)
  queueHooks.beforeWithdraw = async (jobId) => {
    if (jobId !== id || taken++ > 0) return;
    worker = new Worker(
      grid,
      async () => {
        await held;
        return { status: 'finished', files: { 'distances.json': Buffer.from(RESULT).toString('base64') }, worker: 'test:3' };
      },
      { connection: parseQueueUrl(redis.url).connection, prefix: KEY_PREFIX },
    );
    worker.on('error', () => {});
    await waitFor('the worker to take the job', async () => (await queue.getJobState(id)) === 'active', 30);
  };
  queueHooks.afterWithdraw = (jobId, left, removed) => {
    if (jobId === id && tried === undefined) tried = { left, removed };
  };
  const got = a.run(req);
  await waitFor('the coordinator to enqueue the job', async () => (await waiters(id)).length === 1, 30);
  await (await queue.getJob(id))!.updateProgress({ type: 'refused', worker: 'test:2', reason: 'its disk is full' });
  await waitFor('the coordinator to try to give up', () => tried !== undefined, 30);
  assert.deepEqual(tried, { left: 0, removed: 0 }, 'BullMQ did not refuse to remove a job a worker holds');
  // still waiting for it, and the job still queued (held by the worker)
  assert.deepEqual(await waiters(id), ['a']);
  assert.equal(await queue.getJobState(id), 'active');
  finishJob();
  assert.deepEqual(await got, { status: 'finished', worker: 'test:3' });
  assert.equal(distances(req), RESULT);
  assert.equal(await queue.getJobState(id), 'unknown');
  assert.deepEqual(await waiters(id), []);
});

test("BullMQ's removal script, run inside the coordinator's own, has the layout the coordinator passes it", () => {
  const text = withdrawScriptText();
  for (const l of ['KEYS[1] jobKey', 'KEYS[2] repeat key', 'ARGV[1] jobId', 'ARGV[2] remove children', 'ARGV[3] queue prefix']) {
    assert.match(text, new RegExp(l.replace(/[[\]]/g, '\\$&')));
  }
  assert.doesNotMatch(text, /\$REMOVE_JOB/);
});
