/**
 * A job whose files weigh more than a worker takes (payload.ts, MAX_JOB_BYTES) is refused by the
 * coordinator before it is enqueued, with one line and exit 2, not by a worker after it sat on
 * the queue. The coordinator's rule is the worker's own (checkBundle): what one sends, the other
 * takes, byte for byte at the limit. Through a real redis-server for the CLI.
 * @needs redis-server
 */
import assert from 'node:assert/strict';
import { closeSync, mkdirSync, mkdtempSync, openSync, rmSync, writeFileSync, ftruncateSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { spawn } from 'node:child_process';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { UsageError } from '../../src/errors.ts';
import { KEY_PREFIX, parseQueueUrl } from '../../src/experiments/queue/connection.ts';
import { MAX_JOB_BYTES, toQueueJob, validateJob } from '../../src/experiments/queue/payload.ts';
import { RUN_FILES } from '../../src/train/runDir.ts';
import { BIN, siamese } from '../cli/run.ts';
import { type RedisServer, startRedis } from './redis.ts';

const root = mkdtempSync(join(tmpdir(), 'siamese-jobsize-'));
const DATA = { name: 'mnist', trainChecksum: 'a', testChecksum: 'b' };

/** a file of `bytes` zero bytes (sparse: nothing written) */
function zeros(path: string, bytes: number): void {
  const fd = openSync(path, 'w');
  ftruncateSync(fd, bytes);
  closeSync(fd);
}

test('the coordinator packs a job up to the limit the worker takes, and refuses one byte of base64 past it', () => {
  const dir = join(root, 'run');
  mkdirSync(dir, { recursive: true });
  // manifest 3 bytes (4 in base64) + weights: the weights fill the rest of the limit exactly, then 3 bytes more
  writeFileSync(join(dir, RUN_FILES.manifest), '{ }');
  const weightsAtLimit = ((MAX_JOB_BYTES - 4) / 4) * 3;
  assert.ok(Number.isInteger(weightsAtLimit));
  zeros(join(dir, RUN_FILES.weights), weightsAtLimit);
  const req = { type: 'distances' as const, runDir: dir, distanceSample: 0 };
  const job = toQueueJob(req, DATA);
  // the worker takes what the coordinator sent
  assert.equal(validateJob(JSON.parse(JSON.stringify(job))).type, 'distances');
  zeros(join(dir, RUN_FILES.weights), weightsAtLimit + 3);
  assert.throws(
    () => toQueueJob(req, DATA),
    (e: Error) => e instanceof UsageError && e.message === 'the job would carry 64.0 MB of files (base64), more than a queue job may (64 MB): run it without --queue',
  );
  // and the worker would have refused it
  const over = { v: 1, type: 'distances', distanceSample: 0, data: DATA, files: { [RUN_FILES.manifest]: 'eyB9', [RUN_FILES.weights]: 'A'.repeat(MAX_JOB_BYTES - 4 + 4) } };
  assert.throws(() => validateJob(over), /the job's files exceed 64 MB/);
  rmSync(dir, { recursive: true, force: true });
});

describe('compare --queue with a job over the limit', () => {
  let redis: RedisServer;
  before(async () => {
    redis = await startRedis();
  });
  after(async () => {
    await redis?.stop();
    rmSync(root, { recursive: true, force: true });
  });

  test('one line, exit 2, nothing enqueued', async () => {
    // The widest network there is (the CNN with 4,096-d embeddings) starts from 33.5 MB of weights
    // in base64, under the limit; a run of it interrupted locally goes on from its Adam checkpoint
    // (the weights and two moment slots: about 100 MB in base64), which no job may carry.
    const out = join(root, 'big');
    const args = ['compare', '--losses', 'contrastive', '--seeds', '1', '--epochs', '2', '--train-pairs', '20000', '--tsne-points', '0', '--snapshot-points', '0',
      '--no-retrieval', '--no-report', '--workers', '1', '--base', 'cnn', '--optimizer', 'adam', '--embedding-dim', '4096', '--out', out];
    const local = spawn(process.execPath, [BIN, ...args], { env: { ...process.env, CI: 'true' }, stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    // Ctrl-C once epoch 1 is kept (its line comes after its checkpoint): the run stops within
    // epoch 2 (157 batches) and keeps epoch 1; bounded by the exit it waits for
    const code = await new Promise<number | null>((resolve) => {
      local.stderr!.on('data', (b: Buffer) => {
        err += b.toString();
        if (/epoch 1\/2/.test(err) && !local.killed) local.kill('SIGINT');
      });
      local.once('exit', (c) => resolve(c));
    });
    assert.equal(code, 130, err);
    // without the check it would wait for a worker: bounded
    const r = siamese(['compare', '--resume', out, '--queue', redis.url, '--queue-name', 'big'], { timeout: 180_000 });
    assert.equal(r.code, 2, `exit code (stderr: ${r.stderr})`);
    assert.match(r.stderr, /^siamese: contrastive seed 0: the job would carry (\d+)\.\d MB of files \(base64\), more than a queue job may \(64 MB\): run it without --queue\n$/);
    assert.ok(Number(/carry (\d+)/.exec(r.stderr)![1]) > 64, r.stderr);
    const { connection } = parseQueueUrl(redis.url);
    const queue = new Queue('big', { connection, prefix: KEY_PREFIX });
    const conn = new Redis(connection as object);
    try {
      const counts = await queue.getJobCounts('waiting', 'active', 'completed', 'failed', 'delayed', 'prioritized', 'paused');
      assert.deepEqual(Object.values(counts), [0, 0, 0, 0, 0, 0, 0], JSON.stringify(counts));
      const keys = await conn.keys(`${KEY_PREFIX}:big:*`);
      assert.deepEqual(keys.filter((k) => !k.endsWith(':meta')), [], 'no job in Redis');
    } finally {
      await queue.close();
      conn.disconnect();
    }
  });
});
