/**
 * A job whose lock a worker lost (it was stopped or cut off longer than the lock, and the
 * stalled-job check handed the job on):
 * - the worker stops that training, says so in one line, and sends nothing more for it: no
 *   progress, no saved epoch, no result; then it goes on taking jobs (here the same one again,
 *   resumed from the last epoch it saved while it held the lock). Before, it trained on and its
 *   reports reached the coordinator mixed with the new holder's.
 * - the worker that takes a job first resets its progress (`siamese queue status` showed a former
 *   holder's last batch until the new one reported), naming its take.
 * - the coordinator ignores reports of any take but the job's latest.
 * - the coordinator's withdraw script (13 KB) is sent once per connection, its hash afterwards.
 * The lock is taken away by hand (set to another holder's token, as a takeover does), so nothing
 * depends on how long anything takes. Through a real redis-server.
 * @needs redis-server
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { Queue, Worker } from 'bullmq';
import { Redis } from 'ioredis';
import type { JobEvent, JobRequest } from '../../src/experiments/jobs.ts';
import { KEY_PREFIX, parseQueueUrl } from '../../src/experiments/queue/connection.ts';
import { queueStatus } from '../../src/experiments/queue/admin.ts';
import { QueueExecutor, withdrawScriptText } from '../../src/experiments/queue/coordinator.ts';
import { checkpointKey } from '../../src/experiments/queue/keys.ts';
import { jobId, toQueueJob } from '../../src/experiments/queue/payload.ts';
import { progressScriptText } from '../../src/experiments/queue/worker.ts';
import { queueTestHooks, smallTrainJob, startCli, waitFor } from './processes.ts';
import type { RedisServer } from './redis.ts';

const root = mkdtempSync(join(tmpdir(), 'siamese-locklost-'));
let redis: RedisServer;
queueTestHooks(root, (r) => (redis = r));


/** The job's progress reports in the grid's event stream after stream id `from`, in order. */
async function progressAfter(conn: Redis, grid: string, id: string, from: string): Promise<Record<string, unknown>[]> {
  const entries = await conn.xrange(`${KEY_PREFIX}:${grid}:events`, `(${from}`, '+');
  const out: Record<string, unknown>[] = [];
  for (const [, fields] of entries) {
    const f: Record<string, string> = {};
    for (let i = 0; i + 1 < fields.length; i += 2) f[fields[i]!] = fields[i + 1]!;
    if (f['event'] === 'progress' && f['jobId'] === id) out.push(JSON.parse(f['data']!) as Record<string, unknown>);
  }
  return out;
}

async function lastStreamId(conn: Redis, grid: string): Promise<string> {
  const [last] = await conn.xrevrange(`${KEY_PREFIX}:${grid}:events`, '+', '-', 'COUNT', 1);
  return last?.[0] ?? '0-0';
}

test('a worker that loses a job\'s lock stops it, sends nothing more for it, and goes on taking jobs; a take resets the progress', async () => {
  const grid = 'lostlock';
  // epochs enough that the training is still running when its lock is taken away (after its first epoch)
  const data = await smallTrainJob(root, 60);
  const { connection } = parseQueueUrl(redis.url);
  const queue = new Queue(grid, { connection, prefix: KEY_PREFIX });
  const conn = new Redis(connection as object);
  // short locks: renewed every second, the stalled-job check every 2 s
  const w = startCli(['worker', '--queue', redis.url, '--queue-name', grid, '--threads', '1', '--lock-seconds', '4']);
  const savedEpoch = async (): Promise<number> => {
    const b = await conn.get(checkpointKey(grid, 'train-lost'));
    if (!b) return 0;
    return (JSON.parse(Buffer.from((JSON.parse(b) as Record<string, string>)['manifest.json']!, 'base64').toString('utf8')) as { epochsDone: number }).epochsDone;
  };
  try {
    await queue.add('train', data, { jobId: 'train-lost', attempts: 3 });
    await waitFor('a first epoch', async () => (await savedEpoch()) > 0);
    const first = await progressAfter(conn, grid, 'train-lost', '0-0');
    assert.equal(first[0]?.['type'], 'taken', 'the first report of a take is its reset');
    const firstTake = first[0]!['take'] as string;
    assert.ok(first.slice(1).every((p) => p['take'] === firstTake), JSON.stringify(first.slice(0, 3)));
    // another holder takes the lock (as the stalled-job check and another worker do after a pause
    // longer than the lock)
    const lockKey = `${KEY_PREFIX}:${grid}:train-lost:lock`;
    const theft = await lastStreamId(conn, grid);
    await conn.set(lockKey, 'someone-else');
    await waitFor('the worker to learn it lost the lock', () => /train-lost lost its lock/.test(w.out()), 60);
    const saved = await savedEpoch();
    assert.ok(saved > 0 && saved < 60, `epoch ${saved}`);
    // the lock freed: the stalled-job check hands the job on (here to the same worker, which goes on taking jobs)
    await conn.del(lockKey);
    await waitFor('the job to complete', async () => (await queue.getJobState('train-lost')) === 'completed', 300);
    const out = w.out();
    assert.equal((out.match(/train-lost lost its lock/g) ?? []).length, 1, out);
    assert.match(out, /worker \S+: train-lost lost its lock \(this worker was stopped or cut off longer than the lock, and the job went back to the queue\): stopped, nothing more sent for it/);
    assert.equal((out.match(/train-lost started/g) ?? []).length, 2, out);
    assert.equal((out.match(/train-lost finished/g) ?? []).length, 1, out);
    assert.doesNotMatch(out, /train-lost failed/);
    // after the theft: nothing of the first take; the second take's reset first, then its own reports
    const after = await progressAfter(conn, grid, 'train-lost', theft);
    assert.ok(after.length > 1, JSON.stringify(after));
    assert.equal(after[0]!['type'], 'taken', JSON.stringify(after[0]));
    const secondTake = after[0]!['take'] as string;
    assert.notEqual(secondTake, firstTake);
    assert.ok(after.every((p) => p['take'] === secondTake), JSON.stringify(after.filter((p) => p['take'] !== secondTake).slice(0, 3)));
    // no epoch saved over by the worker that lost the lock: the second take resumed from the last
    // epoch saved while the lock was its own
    const j = (await queue.getJob('train-lost'))!;
    const manifest = JSON.parse(Buffer.from(j.returnvalue.files['manifest.json'], 'base64').toString('utf8')) as { epochsDone: number; resumes?: { fromEpoch: number }[] };
    assert.equal(manifest.epochsDone, 60);
    assert.deepEqual((manifest.resumes ?? []).map((r) => r.fromEpoch), [saved], out);
    assert.equal(j.attemptsMade, 1, 'the lost take spent no attempt');
  } finally {
    w.child.kill('SIGKILL');
    await w.exited;
    await queue.close();
    conn.disconnect();
  }
});

const DATA = { name: 'mnist', trainChecksum: '0'.repeat(64), testChecksum: '0'.repeat(64) };
const RESULT = '{"sample": [0.25, 0.5]}';

/** A distances job of a run folder under `out` (its weights `weights`: different ones, different jobs). */
function request(out: string, weights = 'weights'): JobRequest {
  const runDir = join(root, out, 'runs', 'contrastive-seed0');
  mkdirSync(runDir, { recursive: true });
  writeFileSync(join(runDir, 'manifest.json'), '{"run": 0}');
  writeFileSync(join(runDir, 'weights.safetensors'), weights);
  return { type: 'distances', runDir, distanceSample: 10 };
}

const batch = (n: number, take: string) => ({ type: 'batch', info: { epoch: 1, batch: n, batches: 10, loss: 0.5 }, take });

test('the coordinator ignores the reports of a take other than the job\'s latest (a former holder\'s)', async (t) => {
  const grid = 'takes';
  const req = request('takes');
  const id = jobId(toQueueJob(req, DATA));
  const { connection } = parseQueueUrl(redis.url);
  const queue = new Queue(grid, { connection, prefix: KEY_PREFIX });
  let release: () => void = () => {};
  const held = new Promise<void>((r) => (release = r));
  // a worker of the test's own that holds the job until told
  const worker = new Worker(grid, async () => {
    await held;
    return { status: 'finished', files: { 'distances.json': Buffer.from(RESULT).toString('base64') }, worker: 'test:1' };
  }, { connection, prefix: KEY_PREFIX });
  worker.on('error', () => {});
  const ex = await QueueExecutor.open({ url: redis.url, name: grid, data: DATA, owner: 'a' });
  t.after(async () => {
    release();
    await ex.close();
    await worker.close();
    await queue.close();
  });
  const seen: JobEvent[] = [];
  let started = false;
  const got = ex.run(req, { onStart: () => (started = true), onEvent: (e) => void seen.push(e) });
  await waitFor('the job to run', async () => started && (await queue.getJobState(id)) === 'active', 30);
  const job = (await queue.getJob(id))!;
  // take A's reports, take B's reset (the job taken again), then A's late report and B's own
  await job.updateProgress(batch(1, 'A'));
  await waitFor('take A\'s report', () => seen.length === 1, 30);
  const shown = async (): Promise<string | undefined> => (await queueStatus(redis.url, grid))[0]?.active[0]?.progress;
  assert.equal(await shown(), 'epoch 1, batch 1/10');
  await job.updateProgress({ type: 'taken', worker: 'test:2', take: 'B' });
  // `siamese queue status` after a take: the former holder's batch is gone
  assert.equal(await shown(), 'starting');
  await job.updateProgress(batch(7, 'A'));
  await job.updateProgress(batch(2, 'B'));
  // events arrive in order: once B's report is in, A's late one has been seen (and ignored)
  await waitFor('take B\'s report', () => seen.length >= 2, 30);
  assert.deepEqual(seen, [
    { type: 'batch', info: { epoch: 1, batch: 1, batches: 10, loss: 0.5 } },
    { type: 'batch', info: { epoch: 1, batch: 2, batches: 10, loss: 0.5 } },
  ]);
  release();
  assert.deepEqual(await got, { status: 'finished', worker: 'test:1' });
});

test('the coordinator sends its withdraw script once per connection, then only its hash', async (t) => {
  const grid = 'sha';
  const { connection } = parseQueueUrl(redis.url);
  const worker = new Worker(grid, async () => ({ status: 'finished', files: { 'distances.json': Buffer.from(RESULT).toString('base64') }, worker: 'test:1' }), { connection, prefix: KEY_PREFIX });
  worker.on('error', () => {});
  const ex = await QueueExecutor.open({ url: redis.url, name: grid, data: DATA, owner: 'a' });
  const conn = new Redis(connection as object);
  const monitor = await conn.monitor();
  const calls: { cmd: string; head: string; bytes: number }[] = [];
  monitor.on('monitor', (_t: string, args: string[]) => {
    const cmd = args[0]?.toLowerCase() ?? '';
    if (cmd === 'eval' || cmd === 'evalsha') calls.push({ cmd, head: args[1] ?? '', bytes: (args[1] ?? '').length });
  });
  t.after(async () => {
    monitor.disconnect();
    conn.disconnect();
    await ex.close();
    await worker.close();
  });
  // two different jobs collected: each withdrawn once
  assert.equal((await ex.run(request('sha-1', 'w1'))).status, 'finished');
  assert.equal((await ex.run(request('sha-2', 'w2'))).status, 'finished');
  // the script by its text (as MONITOR prints it: escaped) or by its hash
  const sha = createHash('sha1').update(withdrawScriptText()).digest('hex');
  const isWithdraw = (c: { cmd: string; head: string }): boolean => (c.cmd === 'eval' && /SREM', KEYS\[3\], ARGV\[4\]/.test(c.head)) || (c.cmd === 'evalsha' && c.head === sha);
  await waitFor('the monitor to see both', () => calls.filter(isWithdraw).length >= 2, 30);
  const withdraws = calls.filter(isWithdraw);
  assert.deepEqual(withdraws.map((c) => c.cmd), ['eval', 'evalsha']);
  assert.ok(withdraws[0]!.bytes > 10_000, `${withdraws[0]!.bytes} bytes`);
});

test("BullMQ's progress script, run inside the worker's own, has the layout the worker passes it", () => {
  const text = progressScriptText();
  for (const l of ['KEYS[1] Job id key', 'KEYS[2] event stream key', 'KEYS[3] meta key', 'ARGV[1] id', 'ARGV[2] progress']) {
    assert.match(text, new RegExp(l.replace(/[[\]]/g, '\\$&')));
  }
  assert.match(text, /GET', KEYS\[4\]\) ~= ARGV\[3\] then return -2/);
});
