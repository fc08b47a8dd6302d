/**
 * A worker refuses a job planned on images of another shape than its own data set's, though its
 * bytes are the job's (the checksums cover the bytes only: 12x12 images read as 8x18 pass them):
 * the job goes back for other workers, its attempts unspent, one line each time, as for the other
 * refusals (refusal.test.ts); a worker whose images have the job's shape runs it. A job of a
 * coordinator from before the shape travelled (no data.imageShape) is taken as before, on its
 * checksums alone. Through a real redis-server, `siamese worker`s and `siamese compare --queue`.
 * @needs redis-server
 */
import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { Queue } from 'bullmq';
import { loadDataset } from '../../src/data/registry.ts';
import { KEY_PREFIX, parseQueueUrl } from '../../src/experiments/queue/connection.ts';
import { jobDataOf, jobId, toQueueJob } from '../../src/experiments/queue/payload.ts';
import { resolveConfig } from '../../src/train/config.ts';
import { sharedInitialWeights } from '../../src/train/run.ts';
import { writeBandsIdx } from '../data/datasets.ts';
import { type CliProcess as Proc, queueTestHooks, startCli as start, stopCli as stop, waitFor } from './processes.ts';
import type { RedisServer } from './redis.ts';

const root = mkdtempSync(join(tmpdir(), 'siamese-shape-refusal-'));
let redis: RedisServer;
queueTestHooks(root, (r) => (redis = r));

// the bands data set (12x12 images), and the same bytes as 8x18 images: only the IDX headers differ
const square = join(root, 'square');
const wide = join(root, 'wide');
writeBandsIdx(square);
mkdirSync(wide);
for (const f of ['train', 't10k']) {
  copyFileSync(join(square, `${f}-labels-idx1-ubyte`), join(wide, `${f}-labels-idx1-ubyte`));
  const bytes = readFileSync(join(square, `${f}-images-idx3-ubyte`));
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  // magic (4 bytes), count, then height and width, big-endian
  assert.deepEqual([v.getUint32(8, false), v.getUint32(12, false)], [12, 12]);
  v.setUint32(8, 8, false);
  v.setUint32(12, 18, false);
  writeFileSync(join(wide, `${f}-images-idx3-ubyte`), bytes);
}

const refusals = (p: Proc): string[] => p.out().split('\n').filter((l) => / cannot run train-/.test(l));

test('a job planned on 8x18 images is refused by a worker whose same bytes are 12x12 images, attempts unspent; a worker with 8x18 images runs it', async () => {
  const [a, b] = await Promise.all([loadDataset({ name: 'idx', dir: square }), loadDataset({ name: 'idx', dir: wide })]);
  // what the checksums alone cannot tell apart
  assert.deepEqual([a.train.checksum, a.test.checksum], [b.train.checksum, b.test.checksum]);
  const bad = start(['worker', '--queue', redis.url, '--queue-name', 'shape', '--data-dir', square, '--backoff-seconds', '0.5']);
  let good: Proc | undefined;
  const queue = new Queue('shape', { connection: parseQueueUrl(redis.url).connection, prefix: KEY_PREFIX });
  try {
    await waitFor('the worker', () => /serving grid shape/.test(bad.out()), 60);
    const c = start([
      'compare', '--data', 'idx', '--data-dir', wide, '--losses', 'contrastive', '--seeds', '1', '--epochs', '1', '--train-pairs', '200',
      '--tsne-points', '0', '--snapshot-points', '0', '--no-report', '--no-retrieval', '--out', join(root, 'shape'), '--queue', redis.url, '--queue-name', 'shape',
    ]);
    // more refusals than a job has attempts (3): none of them spent one
    await waitFor('four refusals', () => refusals(bad).length >= 4);
    for (const l of refusals(bad)) {
      assert.match(
        l,
        /^worker [^ ]+:\d+: cannot run train-[0-9a-f]+: its data set idx holds images of 12x12 pixels here, the coordinator's of 8x18 \(the same bytes read as other images\); install the same data on this worker; left to other workers, grid shape left alone for 0\.5 s$/,
      );
    }
    assert.doesNotMatch(bad.out(), / finished| failed/);
    good = start(['worker', '--queue', redis.url, '--queue-name', 'shape', '--data-dir', wide]);
    assert.equal(await c.exited, 0, `${c.out()}\n${bad.out()}\n${good.out()}`);
    assert.equal((good.out().match(/train-[0-9a-f]+ finished/g) ?? []).length, 1, good.out());
    assert.equal(await queue.getFailedCount(), 0);
    const results = JSON.parse(readFileSync(join(root, 'shape', 'results.json'), 'utf8')) as { runs: unknown[] };
    assert.equal(results.runs.length, 1);
  } finally {
    await queue.close();
    await stop(bad);
    if (good) await stop(good);
  }
});

test('a job without the image shape (a coordinator from before it travelled) is taken as before, on its checksums', async () => {
  const ds = await loadDataset({ name: 'idx', dir: wide });
  const config = resolveConfig({ data: { name: 'idx', dir: wide }, epochs: 1, trainPairs: 200, testPairs: 200, embeddingDim: 8 });
  const reset = join(root, 'initial.safetensors');
  await sharedInitialWeights(reset, config, ds);
  const job = toQueueJob({ type: 'train', out: join(root, 'old-run'), config, resetWeights: reset, resume: false, retrieval: false, distanceSample: 10 }, jobDataOf(ds));
  assert.ok(job.type === 'train');
  assert.deepEqual(job.data.imageShape, [8, 18, 1]);
  const id = jobId(job);
  delete job.data.imageShape;
  // the same id either way (jobIdShape.test.ts): an older coordinator enqueued this very job
  assert.equal(jobId(job), id);
  const queue = new Queue('old', { connection: parseQueueUrl(redis.url).connection, prefix: KEY_PREFIX });
  const w = start(['worker', '--queue', redis.url, '--queue-name', 'old', '--data-dir', square]);
  try {
    await queue.add('train', job, { jobId: id, attempts: 3 });
    await waitFor('the job to end', async () => ['completed', 'failed'].includes(await queue.getJobState(id)));
    assert.equal(await queue.getJobState(id), 'completed', w.out());
    assert.equal(refusals(w).length, 0, w.out());
    assert.match(w.out(), new RegExp(`${id} finished`));
  } finally {
    await queue.close();
    await stop(w);
  }
});
