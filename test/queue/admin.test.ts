/**
 * `siamese queue status` names each connected worker as host:pid (the name it gives BullMQ), and
 * `siamese queue clean` of a grid that is not there says so instead of "removed grid".
 * Through a real redis-server and BullMQ workers in this process.
 * @needs redis-server
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { Queue, Worker } from 'bullmq';
import { Redis } from 'ioredis';
import { queueClean, queueStatus } from '../../src/experiments/queue/admin.ts';
import { KEY_PREFIX, parseQueueUrl } from '../../src/experiments/queue/connection.ts';
import { GRIDS_KEY } from '../../src/experiments/queue/keys.ts';
import { type RedisServer, startRedis } from './redis.ts';

let redis: RedisServer;
before(async () => {
  redis = await startRedis();
});
after(async () => {
  await redis?.stop();
});

test('queue status lists the workers of a grid by the names they gave (host:pid), not the grid name', async () => {
  const { connection } = parseQueueUrl(redis.url);
  const r = new Redis({ ...(connection as object) });
  await r.sadd(GRIDS_KEY, 'grid-a');
  const workers = ['lab-1:4711', 'lab-2:815'].map(
    (name) => new Worker('grid-a', async () => {}, { connection, prefix: KEY_PREFIX, name, autorun: false }),
  );
  try {
    // a worker's connection gets its client name once it connects
    await Promise.all(workers.map((w) => w.waitUntilReady()));
    const [g] = await queueStatus(redis.url);
    assert.equal(g!.name, 'grid-a');
    assert.deepEqual(g!.workers.sort(), ['lab-1:4711', 'lab-2:815']);
  } finally {
    await Promise.all(workers.map((w) => w.close()));
    r.disconnect();
  }
});

test('queue clean refuses a grid that is neither registered nor has keys, and removes a real one', async () => {
  const { connection } = parseQueueUrl(redis.url);
  await assert.rejects(queueClean(redis.url, 'no-such-grid'), {
    name: 'UsageError',
    message: 'no grid no-such-grid on this queue (siamese queue status lists them)',
  });
  const r = new Redis({ ...(connection as object) });
  const q = new Queue('grid-b', { connection, prefix: KEY_PREFIX });
  try {
    await r.sadd(GRIDS_KEY, 'grid-b');
    await q.add('x', { type: 'train' });
    await q.drain();
    await queueClean(redis.url, 'grid-b');
    assert.equal(await r.sismember(GRIDS_KEY, 'grid-b'), 0);
    assert.deepEqual(await r.keys(`${KEY_PREFIX}:grid-b:*`), []);
    // a grid whose registration was lost but whose keys remain is still cleaned
    await q.add('y', { type: 'train' });
    await q.drain();
    await queueClean(redis.url, 'grid-b');
    assert.deepEqual(await r.keys(`${KEY_PREFIX}:grid-b:*`), []);
  } finally {
    await q.close();
    r.disconnect();
  }
});
