/**
 * A training whose result could not come back through the queue (over MAX_JOB_BYTES) is refused
 * before it trains: by the coordinator before anything is enqueued or registered, and by a
 * worker handed such a job anyway. The bound (resultSize.ts) is checked against real run folders,
 * counted as the worker packs them (readFiles, base64): never below, and not far above.
 * @needs redis-server
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { loadDataset } from '../../src/data/registry.ts';
import { UsageError } from '../../src/errors.ts';
import { runCompare } from '../../src/experiments/compare.ts';
import { initialPath } from '../../src/experiments/grid.ts';
import { DISTANCES_FILE, RESUME_FILES } from '../../src/experiments/jobs.ts';
import { KEY_PREFIX, parseQueueUrl } from '../../src/experiments/queue/connection.ts';
import { checkpointKey } from '../../src/experiments/queue/keys.ts';
import { MAX_JOB_BYTES, readFiles, toQueueJob } from '../../src/experiments/queue/payload.ts';
import { trainResultBound } from '../../src/experiments/queue/resultSize.ts';
import { encodeSafetensors } from '../../src/io/safetensors.ts';
import { resolveConfig } from '../../src/train/config.ts';
import { BIN, siamese } from '../cli/run.ts';
import { type RedisServer, startRedis } from './redis.ts';

const root = mkdtempSync(join(tmpdir(), 'siamese-resultsize-'));
const MNIST = { classes: 10, testImages: 10_000 };
const DATA = { name: 'mnist', trainChecksum: 'a', testChecksum: 'b' };
after(() => rmSync(root, { recursive: true, force: true }));

/** base64 characters of each file the worker sends back for a run folder, as it packs them */
function actualResult(runDir: string): Record<string, number> {
  return Object.fromEntries(Object.entries(readFiles(runDir, [...RESUME_FILES, DISTANCES_FILE])).map(([n, v]) => [n, v.length]));
}

describe('the bound against real run folders', () => {
  const grids = [
    // proxies (class weights) and Adam's two slots; every test pair in distances.json; embeddings
    { name: 'adam', opts: { losses: 'arcface,contrastive', optimizer: 'adam', distanceSample: 0, snapshotPoints: 300, epochs: 2 } },
    // a CNN (4-d kernels), one slot, no embeddings, a small distance sample
    { name: 'cnn', opts: { losses: 'contrastive', optimizer: 'sgd', base: 'cnn', distanceSample: 50, snapshotPoints: 0, epochs: 1 } },
  ] as const;
  for (const g of grids) {
    test(`${g.name}: every file at most its bound, the whole within 2x + 1 MB of the result`, async () => {
      const out = join(root, g.name);
      const o = await runCompare({ ...g.opts, seeds: [0], trainPairs: 600, tsnePoints: 0, workers: 1, out, engine: 'native' });
      assert.equal(o.status, 'finished');
      assert.deepEqual(o.failures, []);
      for (const key of o.trained) {
        const runDir = join(out, 'runs', key);
        const manifest = JSON.parse(readFileSync(join(runDir, 'manifest.json'), 'utf8'));
        const plan = {
          config: manifest.config,
          snapshotPoints: g.opts.snapshotPoints,
          distanceSample: g.opts.distanceSample,
          files: { 'reset.safetensors': readFileSync(initialPath(out, 0)).toString('base64') },
        };
        const bound = trainResultBound(plan, MNIST);
        const actual = actualResult(runDir);
        assert.ok(Object.keys(actual).length >= 8, JSON.stringify(actual));
        let sum = 0;
        for (const [name, n] of Object.entries(actual)) {
          assert.ok(bound.files[name] !== undefined, `${key}: ${name} has no bound`);
          assert.ok(n <= bound.files[name]!, `${key}: ${name}: ${n} > bound ${bound.files[name]}`);
          sum += n;
        }
        assert.ok(sum <= bound.total, `${key}: ${sum} > ${bound.total}`);
        assert.ok(bound.total < 2 * sum + 2 ** 20, `${key}: bound ${bound.total} is loose against ${sum}`);
      }
    });
  }
});

test('toQueueJob refuses a training whose result could exceed the limit, given the data set\'s shape, in one line', () => {
  const dir = join(root, 'synthetic');
  mkdirSync(dir, { recursive: true });
  const reset = join(dir, 'reset.safetensors');
  const config = resolveConfig({ epochs: 5, optimizer: 'adam', embeddingDim: 64 });
  const req = (points: number) =>
    ({ type: 'train', out: join(dir, 'run'), config, resetWeights: reset, resume: false, retrieval: true, distanceSample: 4000, snapshotPoints: points }) as const;
  // 2.7 million parameters: 10.8 MB of weights, 13.7 MB (MiB, as the messages count) in base64
  // as the job's only file; back come initial + weights (its header the larger: it records the
  // run) + checkpoint with Adam's two slots: five copies, 69 MB in base64
  writeFileSync(reset, encodeSafetensors([{ name: 'w', shape: [2700, 1000], data: new Float32Array(2_700_000) }]));
  assert.equal(toQueueJob(req(0), DATA).type, 'train', 'without the shape: only the files are checked');
  assert.throws(
    () => toQueueJob(req(0), DATA, MNIST),
    (e: Error) =>
      e instanceof UsageError &&
      /^its result could weigh up to 69\.\d MB \(base64; checkpoint\.safetensors 41\.\d MB, weights\.safetensors 13\.\d MB\), more than a queue job may carry back \(64 MB\): train fewer epochs \(5\) or a smaller network, or run it without --queue$/.test(e.message),
  );
  // a network half as large fits, until embeddings push it over: the advice names them first
  writeFileSync(reset, encodeSafetensors([{ name: 'w', shape: [1200, 1000], data: new Float32Array(1_200_000) }]));
  assert.equal(toQueueJob(req(0), DATA, MNIST).type, 'train');
  assert.ok(trainResultBound(toQueueJob(req(0), DATA, MNIST) as never, MNIST).total < MAX_JOB_BYTES / 2);
  // 6 records of 2,000 x 2,500 bytes: 30 MB, under embeddings.bin's own cap (32 MiB), 38 MiB in base64
  const big = resolveConfig({ epochs: 5, optimizer: 'adam', embeddingDim: 2500 });
  assert.throws(
    () => toQueueJob({ ...req(2000), config: big }, DATA, MNIST),
    (e: Error) => e instanceof UsageError && /\(base64; embeddings\.bin 38\.\d MB, .*: lower --snapshot-points \(2000\), train fewer epochs \(5\)/.test(e.message),
  );
});

describe('through Redis', () => {
  let redis: RedisServer;
  before(async () => {
    redis = await startRedis();
  });
  after(async () => {
    await redis?.stop();
  });

  test('compare --queue: one line, exit 2, nothing enqueued, and no grid for `queue status` to list', async () => {
    // the CNN with 4,096-d embeddings (the widest allowed): 6.6 million parameters, 33.5 MB (MiB) of
    // initial weights in base64 (the job fits), but Adam's run folder holds them five times over
    const out = join(root, 'big');
    const r = siamese(
      ['compare', '--losses', 'contrastive', '--seeds', '1', '--epochs', '1', '--train-pairs', '200', '--tsne-points', '0', '--snapshot-points', '0',
        '--no-report', '--base', 'cnn', '--optimizer', 'adam', '--embedding-dim', '4096', '--out', out, '--queue', redis.url, '--queue-name', 'bigresult'],
      // without the check it would wait for a worker: bounded
      { timeout: 180_000 },
    );
    assert.equal(r.code, 2, `exit code (stderr: ${r.stderr})`);
    assert.match(
      r.stderr,
      /^siamese: contrastive seed 0: its result could weigh up to 16\d\.\d MB \(base64; checkpoint\.safetensors 100\.\d MB, weights\.safetensors 33\.5 MB\), more than a queue job may carry back \(64 MB\): train fewer epochs \(1\) or a smaller network, or run it without --queue\n$/,
    );
    const { connection } = parseQueueUrl(redis.url);
    const queue = new Queue('bigresult', { connection, prefix: KEY_PREFIX });
    try {
      const counts = await queue.getJobCounts('waiting', 'active', 'completed', 'failed', 'delayed', 'prioritized', 'paused');
      assert.deepEqual(Object.values(counts), [0, 0, 0, 0, 0, 0, 0], JSON.stringify(counts));
    } finally {
      await queue.close();
    }
    const status = siamese(['queue', 'status', '--queue', redis.url]);
    assert.equal(status.code, 0, status.stderr);
    assert.equal(status.stdout, 'no grids on this queue\n');
  });

  test('a worker handed such a job anyway refuses it before training: a usage error, no epoch stored', async () => {
    const ds = await loadDataset({ name: 'mnist' });
    const weights = readFileSync(initialPath(join(root, 'big'), 0)).toString('base64');
    const config = resolveConfig({ base: 'cnn', epochs: 1, trainPairs: 200, optimizer: 'adam', embeddingDim: 4096 });
    const job = {
      v: 1, type: 'train', config, resume: false, retrieval: false, distanceSample: 0,
      data: { name: ds.name, trainChecksum: ds.train.checksum, testChecksum: ds.test.checksum },
      files: { 'reset.safetensors': weights },
    };
    const { connection } = parseQueueUrl(redis.url);
    const queue = new Queue('handmade', { connection, prefix: KEY_PREFIX });
    const conn = new Redis(connection as object);
    let worker: ChildProcess | undefined;
    let log = '';
    try {
      const added = await queue.add('train', job, { jobId: 'big-1', attempts: 3 });
      worker = spawn(process.execPath, [BIN, 'worker', '--queue', redis.url, '--queue-name', 'handmade'], { env: { ...process.env, CI: 'true' }, stdio: ['ignore', 'pipe', 'pipe'] });
      worker.stdout!.on('data', (b: Buffer) => (log += b.toString()));
      worker.stderr!.on('data', (b: Buffer) => (log += b.toString()));
      // without the check the worker trains it and the job completes (with a result the
      // coordinator would refuse): bounded wait for either end
      let state = '';
      for (let i = 0; i < 1200 && state !== 'failed' && state !== 'completed'; i++) {
        await new Promise((r) => setTimeout(r, 100));
        state = await queue.getJobState(added.id!);
      }
      assert.equal(state, 'failed', log);
      const j = (await queue.getJob(added.id!))!;
      assert.match(j.failedReason, /^worker \S+: its result could weigh up to 16\d\.\d MB \(base64; checkpoint\.safetensors/);
      assert.deepEqual(j.progress, { type: 'failure', code: 'usage' });
      assert.equal(j.attemptsMade, 1, 'not retried');
      assert.equal(await conn.exists(checkpointKey('handmade', added.id!)), 0, 'no epoch was trained');
    } finally {
      if (worker && worker.exitCode === null) {
        const exited = new Promise((r) => worker!.once('exit', r));
        worker.kill('SIGKILL');
        await exited;
      }
      await queue.close();
      conn.disconnect();
    }
  });
});
