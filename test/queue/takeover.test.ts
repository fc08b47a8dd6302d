/**
 * What a worker keeps in Redis for the worker that takes its job over (queue/worker.ts,
 * TakeoverStore), and the bound on what it keeps (payload.ts): embeddings.bin goes by its new
 * bytes each epoch, never leaves a hole when Redis lost it, and a run whose file could outgrow the
 * bound is refused before anything runs. Through a real redis-server.
 * @needs redis-server
 */
import assert from 'node:assert/strict';
import { appendFileSync, existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Redis } from 'ioredis';
import { DataError } from '../../src/errors.ts';
import { parseQueueUrl } from '../../src/experiments/queue/connection.ts';
import { embeddingsOverLimit, MAX_EMBEDDINGS_BYTES, validateJob } from '../../src/experiments/queue/payload.ts';
import { TakeoverStore } from '../../src/experiments/queue/worker.ts';
import { siamese } from '../cli/run.ts';
import { type RedisServer, startRedis } from './redis.ts';

/** Bytes 0..n-1 of a deterministic pattern that has no zero byte (a hole of zeros shows). */
function pattern(from: number, to: number): Buffer {
  return Buffer.from(Array.from({ length: to - from }, (_, i) => 1 + ((from + i) * 7) % 255));
}

describe('TakeoverStore against redis-server', () => {
  let server: RedisServer;
  let redis: Redis;
  const dir = mkdtempSync(join(tmpdir(), 'siamese-takeover-'));
  const file = join(dir, 'embeddings.bin');
  before(async () => {
    server = await startRedis();
    redis = new Redis({ ...(parseQueueUrl(server.url).connection as object) });
  });
  after(async () => {
    redis?.disconnect();
    await server?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  const snapshot = (epoch: number, embeddingsBytes?: number) => ({
    type: 'snapshot' as const,
    epoch,
    files: { 'manifest.json': Buffer.from(`{"epoch":${epoch}}`) },
    ...(embeddingsBytes === undefined ? {} : { embeddingsBytes }),
  });

  test('appends each epoch\'s bytes, stops at the length the epoch had, and rewrites the whole file when Redis lost it', async () => {
    const store = new TakeoverStore(redis, 'ck', 'ck:embeddings', file);
    const sent: number[] = [];
    // what went over the wire: the offset argument of every save script
    const monitor = await redis.monitor();
    monitor.on('monitor', (_t: string, args: string[]) => {
      if (args[0]?.toLowerCase() === 'eval') sent.push(Number(args[8]));
    });
    writeFileSync(file, pattern(0, 100));
    store.save(snapshot(1, 100));
    await store.flush();
    assert.deepEqual(await redis.getBuffer('ck:embeddings'), pattern(0, 100));
    assert.deepEqual(JSON.parse((await redis.get('ck'))!), { 'manifest.json': Buffer.from('{"epoch":1}').toString('base64') });

    // the next epoch: 60 more bytes; the file has grown further (the epoch after is being written)
    appendFileSync(file, pattern(100, 250));
    store.save(snapshot(2, 160));
    await store.flush();
    assert.deepEqual(await redis.getBuffer('ck:embeddings'), pattern(0, 160));
    assert.deepEqual(JSON.parse((await redis.get('ck'))!), { 'manifest.json': Buffer.from('{"epoch":2}').toString('base64') });

    // Redis lost the key (a restart without persistence, an expiry): the whole file again, no hole
    await redis.del('ck:embeddings');
    store.save(snapshot(3, 250));
    await store.flush();
    assert.deepEqual(await redis.getBuffer('ck:embeddings'), pattern(0, 250));
    assert.ok((await redis.ttl('ck:embeddings')) > 0, 'the embeddings expire with the checkpoint');
    // offsets sent: -1 (whole), 100 (append), 160 (refused by the script), -1 (whole again)
    await new Promise((r) => setTimeout(r, 200));
    monitor.disconnect();
    assert.deepEqual(sent, [-1, 100, 160, -1]);
  });

  test('a worker that no longer holds the job\'s lock saves nothing over its new holder\'s epochs', async () => {
    const store = new TakeoverStore(redis, 'lk', 'lk:embeddings', file, { key: 'lk:lock', token: 'mine' });
    writeFileSync(file, pattern(0, 100));
    await redis.set('lk:lock', 'mine');
    store.save(snapshot(1, 100));
    await store.flush();
    assert.deepEqual(await redis.getBuffer('lk:embeddings'), pattern(0, 100));
    // the job handed on: the lock is another worker's, which saved its own epoch 2
    await redis.set('lk:lock', 'theirs');
    await redis.set('lk', 'their epoch 2');
    appendFileSync(file, pattern(100, 160));
    store.save(snapshot(2, 160));
    await store.flush();
    assert.equal(await redis.get('lk'), 'their epoch 2');
    assert.deepEqual(await redis.getBuffer('lk:embeddings'), pattern(0, 100));
    // nor without embeddings
    store.save(snapshot(3));
    await store.flush();
    assert.equal(await redis.get('lk'), 'their epoch 2');
    assert.equal(await redis.exists('lk:embeddings'), 1);
  });

  test('a run without embeddings leaves none beside its checkpoint', async () => {
    await redis.set('nk:embeddings', 'stale');
    const store = new TakeoverStore(redis, 'nk', 'nk:embeddings', join(dir, 'none.bin'));
    store.save(snapshot(1));
    await store.flush();
    assert.equal(await redis.exists('nk:embeddings'), 0);
    assert.equal(await redis.exists('nk'), 1);
  });
});

test('the bound on embeddings.bin: 2,000 images of 128 dimensions fit for 125 epochs, not 126 (hand-computed)', () => {
  // a record: 8 + 4*2000 + 2000*128 = 264,008 bytes; the bound adds 256 + 24*2000 for the header
  assert.equal(MAX_EMBEDDINGS_BYTES, 33_554_432);
  assert.equal(embeddingsOverLimit(2000, 128, 125), undefined); // 256 + 48,000 + 126 * 264,008 = 33,313,264
  assert.match(embeddingsOverLimit(2000, 128, 126)!, /^--snapshot-points 2000 at 128 dimensions for 126 epochs makes an embeddings\.bin of up to 32\.02 MiB a run, more than the queue carries \(32 MiB\); lower --snapshot-points \(0: none\)$/);
  assert.equal(embeddingsOverLimit(0, 128, 10_000), undefined);
  // a worker refuses such a job from Redis
  const job = { v: 1, type: 'train', resume: false, retrieval: false, distanceSample: 0, snapshotPoints: 2000, config: { epochs: 126 }, data: { name: 'mnist', trainChecksum: '', testChecksum: '' }, files: { 'reset.safetensors': '' } };
  assert.throws(() => validateJob(job), (e: Error) => e instanceof DataError && /126 epochs makes an embeddings\.bin/.test(e.message));
  assert.equal((validateJob({ ...job, config: { epochs: 125 } }) as { snapshotPoints?: number }).snapshotPoints, 2000);
  assert.throws(() => validateJob({ ...job, snapshotPoints: -1 }), /snapshotPoints must be an integer >= 0/);
});

test('compare --queue refuses a grid whose embeddings the queue cannot carry, in one line, before it connects', () => {
  const out = mkdtempSync(join(tmpdir(), 'siamese-takeover-cli-'));
  try {
    // nothing listens on port 1: the refusal comes first
    const r = siamese(['compare', '--losses', 'contrastive', '--seeds', '1', '--epochs', '200', '--queue', 'redis://127.0.0.1:1', '--out', join(out, 'c')]);
    assert.equal(r.code, 2, r.stderr);
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
    assert.match(r.stderr, /^siamese: --snapshot-points 2000 at 128 dimensions for 200 epochs makes an embeddings\.bin of up to 50\.65 MiB a run, more than the queue carries/);
    assert.ok(!existsSync(join(out, 'c', 'compare.json')));
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
});
