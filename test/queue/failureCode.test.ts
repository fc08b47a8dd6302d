/**
 * A job that fails on a worker comes back to the coordinator as the class its error had there,
 * carried as a code (errors.ts) in the job, never guessed from the message's words: a usage error
 * whose message says "NaN" stays a usage error. Through a real redis-server and `siamese worker`.
 * @needs redis-server
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { DataError, errorCode, errorFromCode, SiameseError, TrainingError, UsageError } from '../../src/errors.ts';
import { failure, QueueExecutor } from '../../src/experiments/queue/coordinator.ts';
import { failureCode } from '../../src/experiments/queue/payload.ts';
import { LockHeldError } from '../../src/io/lock.ts';
import { DivergenceError } from '../../src/train/trainer.ts';
import { BIN } from '../cli/run.ts';
import { type RedisServer, startRedis } from './redis.ts';

test('every error kind has a code, subclasses keep their parent\'s, and the code rebuilds the class', () => {
  const cases: [Error, string | undefined, new (m: string) => Error][] = [
    [new UsageError('u'), 'usage', UsageError],
    [new DataError('d'), 'data', DataError],
    [new TrainingError('t'), 'training', TrainingError],
    [new DivergenceError('loss is NaN', 'non-finite', 2, 0.1), 'training', TrainingError],
    [new LockHeldError('held'), 'usage', UsageError],
    [new Error('plain'), undefined, Error],
    [new SiameseError('base'), undefined, Error],
  ];
  for (const [e, code, cls] of cases) {
    assert.equal(errorCode(e), code, e.message);
    const back = errorFromCode(errorCode(e), e.message);
    assert.equal(back.constructor, cls, e.message);
    assert.equal(back.message, e.message);
  }
  assert.equal(errorFromCode('exit(1)', 'm').constructor, Error);
});

test('failure(): the class comes from the code in the job\'s progress, the message from its reason, nothing from the words', () => {
  const f = failure({ failedReason: 'worker h:1: unknown data set "NaN"; valid: mnist\nmore', progress: { type: 'failure', code: 'usage' } });
  assert.ok(f instanceof UsageError, f.constructor.name);
  assert.equal(f.message, 'worker h:1: unknown data set "NaN"; valid: mnist');
  // the words "diverged" or "data set ... differs" decide nothing without a code
  for (const reason of ['worker h:1: loss diverged at epoch 2', 'worker h:1: its data set mnist differs from the coordinator\'s', 'worker h:1: bad job: x']) {
    const e = failure({ failedReason: reason, progress: { type: 'batch', info: {} } });
    assert.equal(e.constructor, Error, reason);
  }
  assert.ok(failure({ failedReason: 'worker h:1: loss collapsed', progress: { type: 'failure', code: 'training' } }) instanceof TrainingError);
  assert.ok(failure({ failedReason: 'x', progress: { type: 'failure', code: 'data' } }) instanceof DataError);
  assert.equal(failure({ progress: 0 }).message, 'the job failed on a worker');
  assert.equal(failureCode({ type: 'failure', code: 'sudo' }), undefined);
  assert.equal(failureCode(null), undefined);
});

describe('through Redis and a worker process', () => {
  const root = mkdtempSync(join(tmpdir(), 'siamese-failure-'));
  let redis: RedisServer;
  let worker: ChildProcess | undefined;
  let out = '';
  before(async () => {
    redis = await startRedis();
    // one worker serving every grid a coordinator registers
    worker = spawn(process.execPath, [BIN, 'worker', '--queue', redis.url], { env: { ...process.env, CI: 'true' }, stdio: ['ignore', 'pipe', 'pipe'] });
    worker.stdout!.on('data', (b: Buffer) => (out += b.toString()));
    worker.stderr!.on('data', (b: Buffer) => (out += b.toString()));
    const end = Date.now() + 60_000;
    while (!/waiting for grids/.test(out)) {
      if (Date.now() > end || worker.exitCode !== null) throw new Error(`the worker did not start: ${out}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  });
  after(async () => {
    if (worker && worker.exitCode === null) {
      const exited = new Promise((r) => worker!.once('exit', r));
      worker.kill('SIGKILL');
      await exited;
    }
    await redis?.stop();
    rmSync(root, { recursive: true, force: true });
  });

  const runOn = async (name: string, data: { name: string; trainChecksum: string; testChecksum: string }): Promise<unknown> => {
    const ex = await QueueExecutor.open({ url: redis.url, name, data, unrunnableSeconds: 3 });
    try {
      await ex.run({ type: 'distances', runDir: join(root, 'none'), distanceSample: 10 });
      return undefined;
    } catch (e) {
      return e;
    } finally {
      await ex.close();
    }
  };

  test('a usage error on the worker whose message says "NaN" is a UsageError here, not a TrainingError', async () => {
    const e = await runOn('usage', { name: 'NaN', trainChecksum: '0'.repeat(64), testChecksum: '0'.repeat(64) });
    assert.ok(e instanceof UsageError, `${(e as Error)?.constructor?.name}: ${(e as Error)?.message}\n${out}`);
    assert.match((e as Error).message, /^worker [^ ]+:\d+: unknown data set "NaN"/);
  });

  // a worker whose data differ puts the job back for another (refusal.test.ts); with none, the
  // coordinator reports it
  test('a worker whose data differ: a DataError here', async () => {
    const e = await runOn('data', { name: 'mnist', trainChecksum: 'f'.repeat(64), testChecksum: 'f'.repeat(64) });
    assert.ok(e instanceof DataError, `${(e as Error)?.constructor?.name}: ${(e as Error)?.message}\n${out}`);
    assert.match((e as Error).message, /its data set mnist differs from the coordinator's/);
  });
});
