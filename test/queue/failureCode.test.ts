/**
 * A job that fails on a worker comes back to the coordinator as the class its error had there,
 * carried as a code (errors.ts) in the job, never guessed from the message's words: a usage error
 * whose message says "NaN" stays a usage error. Through a real redis-server and `siamese worker`.
 * Likewise a machine's fault (a full disk, no native engine: put back for another worker, never
 * failed) is known by its type, not by words: a job's own error whose message says "ENOSPC" or
 * "the native engine is not available" fails as what it is. Before, the worker took it for its
 * own fault and put the job back, again and again.
 * @needs redis-server
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { DataError, DiskFullError, errorCode, errorFromCode, machineFault, NativeUnavailableError, SiameseError, TrainingError, UsageError } from '../../src/errors.ts';
import { failure, QueueExecutor } from '../../src/experiments/queue/coordinator.ts';
import { failureCode } from '../../src/experiments/queue/payload.ts';
import { LockHeldError } from '../../src/io/lock.ts';
import { DivergenceError } from '../../src/train/trainer.ts';
import { type CliProcess, startCli, stopAll, waitFor } from './processes.ts';
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

test('a machine\'s fault is known by type or errno code, never by words, and crosses a thread as its class', () => {
  const enospc = Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC', errno: -28, syscall: 'write' });
  const cases: [unknown, string | undefined][] = [
    [new DiskFullError('x: cannot write: no space left on device'), 'disk-full'],
    [enospc, 'disk-full'],
    [new NativeUnavailableError('--engine native: the native engine is not available (disabled)'), 'native-engine-missing'],
    // the words alone decide nothing
    [new UsageError('unknown data set "ENOSPC"; valid: mnist'), undefined],
    [new DataError('x: cannot write: no space left on device'), undefined],
    [new Error('the native engine is not available: no addon'), undefined],
    [{ code: 'ENOSPC' }, undefined],
    [null, undefined],
  ];
  for (const [e, fault] of cases) assert.equal(machineFault(e), fault, String((e as Error | null)?.message ?? e));
  // a thread posts { code, fault, message } (experiments/worker.ts); the pool rebuilds the class
  for (const e of [new DiskFullError('d'), enospc, new NativeUnavailableError('n')]) {
    const back = errorFromCode(errorCode(e), e.message, machineFault(e));
    assert.equal(machineFault(back), machineFault(e));
    assert.equal(back.message, e.message);
  }
  assert.ok(errorFromCode(undefined, 'm', 'disk-full') instanceof DataError, 'a full disk is a data error to the command');
  assert.ok(errorFromCode('usage', 'm', 'native-engine-missing') instanceof UsageError, 'no native engine is a usage error to the command');
});

describe('through Redis and a worker process', () => {
  const root = mkdtempSync(join(tmpdir(), 'siamese-failure-'));
  let redis: RedisServer;
  let worker: CliProcess;
  before(async () => {
    redis = await startRedis();
    // one worker serving every grid a coordinator registers
    worker = startCli(['worker', '--queue', redis.url]);
    await waitFor('the worker', () => /waiting for grids/.test(worker.out()) || worker.child.exitCode !== null, 60);
    assert.equal(worker.child.exitCode, null, `the worker did not start: ${worker.out()}`);
  });
  after(async () => {
    stopAll();
    await worker?.exited;
    await redis?.stop();
    rmSync(root, { recursive: true, force: true });
  });
  const out = (): string => worker.out();

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
    assert.ok(e instanceof UsageError, `${(e as Error)?.constructor?.name}: ${(e as Error)?.message}\n${out()}`);
    assert.match((e as Error).message, /^worker [^ ]+:\d+: unknown data set "NaN"/);
  });

  // a worker whose data differ puts the job back for another (refusal.test.ts); with none, the
  // coordinator reports it
  test('a worker whose data differ: a DataError here', async () => {
    const e = await runOn('data', { name: 'mnist', trainChecksum: 'f'.repeat(64), testChecksum: 'f'.repeat(64) });
    assert.ok(e instanceof DataError, `${(e as Error)?.constructor?.name}: ${(e as Error)?.message}\n${out()}`);
    assert.match((e as Error).message, /its data set mnist differs from the coordinator's/);
  });

  // the words of a machine's fault in a job's own error: failed as that error, not put back
  for (const name of ['ENOSPC', 'the native engine is not available']) {
    test(`a usage error on the worker whose message says "${name}" fails as a UsageError, not put back as the worker's own fault`, async () => {
      const grid = name === 'ENOSPC' ? 'words-enospc' : 'words-native';
      const e = await runOn(grid, { name, trainChecksum: '0'.repeat(64), testChecksum: '0'.repeat(64) });
      assert.ok(e instanceof UsageError, `${(e as Error)?.constructor?.name}: ${(e as Error)?.message}\n${out()}`);
      assert.ok((e as Error).message.startsWith(`worker `) && (e as Error).message.includes(`unknown data set "${name}"`), (e as Error).message);
      const refused = out().split('\n').filter((l) => / cannot run /.test(l) && l.includes(`"${name}"`));
      assert.deepEqual(refused, [], 'the worker took the job\'s error for its own fault');
    });
  }
});
