/**
 * A coordinator that dies while it writes a resumed run's result into the run folder: at every
 * step of the collect (SIAMESE_TEST_COLLECT_CRASH_AFTER=k kills it with SIGKILL after the k-th),
 * the same command again finishes, without training again, and the run folder holds exactly the
 * files the worker sent back (SHA-256 of each), as after an uninterrupted collect. Before, a crash
 * between the new checkpoint and the manifest left a folder that could not be resumed ("manifest
 * says 1 epochs done, but checkpoint is at epoch 2").
 * Through a real redis-server, `siamese worker` and `siamese compare --resume --queue`.
 * @needs redis-server
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { cpSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { Queue } from 'bullmq';
import { runCompare } from '../../src/experiments/compare.ts';
import type { CompareOptions } from '../../src/experiments/grid.ts';
import { KEY_PREFIX, parseQueueUrl } from '../../src/experiments/queue/connection.ts';
import type { QueueJobResult } from '../../src/experiments/queue/payload.ts';
import { type CliProcess as Proc, startCli as start, stopAll, stopCli as stop } from './processes.ts';
import { type RedisServer, startRedis } from './redis.ts';

const root = mkdtempSync(join(tmpdir(), 'siamese-collect-crash-'));
const RUN = 'contrastive-seed0';
let redis: RedisServer;
const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

/** Every entry of the run folder (hidden ones too), name -> SHA-256 of its bytes. */
function folder(dir: string): Record<string, string> {
  const runDir = join(dir, 'runs', RUN);
  return Object.fromEntries(readdirSync(runDir).sort().map((n) => [n, sha(readFileSync(join(runDir, n)))]));
}

before(async () => {
  redis = await startRedis();
});
after(async () => {
  stopAll();
  await redis?.stop();
  rmSync(root, { recursive: true, force: true });
});

test('a coordinator killed at any step of collecting a resumed run: the same command finishes with the uninterrupted files, nothing trained again', async () => {
  // a comparison stopped after its first epoch (locally), to be resumed on the fleet
  const base = join(root, 'base');
  const opts: CompareOptions = { losses: 'contrastive', seeds: 1, epochs: 2, trainPairs: 2000, workers: 1, out: base, tsnePoints: 0, retrieval: false };
  const ac = new AbortController();
  const first = await runCompare({ ...opts, signal: ac.signal }, { onJobEvent: (_j, ev) => ev.type === 'epoch' && ac.abort() });
  assert.equal(first.status, 'interrupted');
  const m = JSON.parse(readFileSync(join(base, 'runs', RUN, 'manifest.json'), 'utf8')) as { epochsDone: number };
  assert.equal(m.epochsDone, 1);

  const w = start(['worker', '--queue', redis.url, '--queue-name', 'crash']);
  const queue = new Queue('crash', { connection: parseQueueUrl(redis.url).connection, prefix: KEY_PREFIX });
  const trainings = (): number => (w.out().match(/train-[0-9a-f]+ started/g) ?? []).length;
  const compare = (dir: string, env: Record<string, string> = {}): Proc => start(['compare', '--resume', dir, '--queue', redis.url, '--queue-name', 'crash'], env);
  try {
    // the steps: each of the 9 files staged (1-9), the commit record (10), each file moved into
    // place, the manifest last (11-19), the set done (20; the job is removed from Redis after it).
    // One point of each kind here (a crash before the commit record makes the next run collect
    // again, and a later crash run train again); every step of the file set: test/io/fileSet.test.ts
    const N = 9;
    for (const k of [1, N, N + 1, N + 2, 2 * N, 2 * N + 1, 2 * N + 2]) {
      const dir = join(root, `k${k}`);
      cpSync(base, dir, { recursive: true });
      const crashed = compare(dir, { SIAMESE_TEST_COLLECT_CRASH_AFTER: String(k) });
      await crashed.exited;
      assert.equal(crashed.child.signalCode, 'SIGKILL', `step ${k}: ${crashed.out()}`);
      // the worker's files, still in Redis (every crash point comes before the job is removed):
      // what an uninterrupted collect writes. (A later step's crash run may train the job again,
      // when the run before collected it: its timings then differ, so each step reads its own.)
      const done = await queue.getJobs(['completed']);
      assert.equal(done.length, 1, `step ${k}`);
      const files = (done[0]!.returnvalue as QueueJobResult).files;
      const expected = Object.fromEntries(Object.keys(files).sort().map((n) => [n, sha(Buffer.from(files[n]!, 'base64'))]));
      assert.ok('checkpoint.safetensors' in expected && 'manifest.json' in expected && 'result.json' in expected);
      assert.equal(Object.keys(files).length, N);
      const trained = trainings();
      const again = compare(dir);
      assert.equal(await again.exited, 0, `step ${k}: ${again.out()}`);
      assert.equal(trainings(), trained, `step ${k}: the command trained again\n${w.out()}`);
      assert.deepEqual(folder(dir), expected, `step ${k}`);
      const res = JSON.parse(readFileSync(join(dir, 'results.json'), 'utf8')) as { runs: { history: unknown[] }[] };
      assert.equal(res.runs.length, 1);
      assert.equal(res.runs[0]!.history.length, 2);
    }
  } finally {
    await queue.close();
    await stop(w);
  }
});
