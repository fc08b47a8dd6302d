/**
 * A queue job carries its data set's image shape (payload.ts, DataChecksums.imageShape) outside
 * the job id: the ids of jobs are what they were before the shape travelled, so that a
 * coordinator of this version and one of the version before, sharing a queue, find each other's
 * jobs, and one started again finds the jobs it enqueued before. The ids below were computed by
 * the code before the shape travelled (commit bc1abf5).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { jobId, type QueueJobData, validateJob } from '../../src/experiments/queue/payload.ts';

const DATA = { name: 'idx', trainChecksum: '1f'.repeat(32), testChecksum: '2e'.repeat(32) };
const CONFIG = { loss: 'contrastive', seed: 3, epochs: 2, trainPairs: 200, embeddingDim: 8, threads: 4, engine: 'native', data: { name: 'idx', dir: '/data/bands' } };
const PARAMS = { perplexity: 30, iterations: 500, seed: 1, theta: 0.5 };

/** One job of each kind, with `data` as the job's data set. */
function jobs(data: object): QueueJobData[] {
  return [
    { v: 1, type: 'train', config: CONFIG, resume: false, retrieval: false, distanceSample: 10, data, files: { 'reset.safetensors': 'AAEC' } },
    { v: 1, type: 'distances', distanceSample: 10, data, files: { 'manifest.json': 'e30=', 'weights.safetensors': 'AAEC' } },
    { v: 1, type: 'tsne', config: CONFIG, indices: [0, 5], params: PARAMS, key: 'k', data, files: { 'weights.safetensors': 'AAEC' } },
  ] as unknown as QueueJobData[];
}

const PINNED = ['train-04eb69574869f4854eebef1e0ff6a720', 'distances-de82a3e03d0f2e5ec5975327e6262b07', 'tsne-6f64d7b87416937cd4a295956b7217d2'];

test('the job id of a fixed job is what it was before the image shape travelled, with the shape or without', () => {
  assert.deepEqual(jobs(DATA).map(jobId), PINNED);
  assert.deepEqual(jobs({ ...DATA, imageShape: [12, 12, 1] }).map(jobId), PINNED);
  assert.deepEqual(jobs({ ...DATA, imageShape: [8, 18, 1] }).map(jobId), PINNED);
  // what the hash covers still counts: another checksum is another job
  assert.notEqual(jobId(jobs({ ...DATA, testChecksum: '2f'.repeat(32), imageShape: [12, 12, 1] })[0]!), PINNED[0]);
});

test('a worker reads the shape a job carries, takes a job without one, and refuses a malformed one as a bad job', () => {
  const [train] = jobs({ ...DATA, imageShape: [8, 18, 1] });
  const read = validateJob(JSON.parse(JSON.stringify(train)));
  assert.ok(read.type === 'train');
  assert.deepEqual(read.data, { ...DATA, imageShape: [8, 18, 1] });
  const old = validateJob(JSON.parse(JSON.stringify(jobs(DATA)[0])));
  assert.ok(old.type === 'train');
  assert.deepEqual(old.data, DATA);
  assert.equal('imageShape' in old.data, false);
  for (const bad of [[8, 18], [8, 18, 0], [8, 18.5, 1], '8x18', [8, 18, 1, 1]]) {
    assert.throws(() => validateJob(jobs({ ...DATA, imageShape: bad })[1]), /^DataError: the job's data set imageShape is not \[height, width, channels\]$/);
  }
});
