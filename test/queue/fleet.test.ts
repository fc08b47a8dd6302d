/**
 * The fleet for real: Debian's redis-server on a free loopback port, `siamese worker` processes and
 * `siamese compare --queue` as a user runs them. Every grid is checked against the same grid on the
 * local worker pool: the same trained bytes, whatever happened on the way; and no job is trained
 * more often than the mishap requires (a killed worker's job once more, from its last epoch).
 * @needs redis-server
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { KEY_PREFIX, parseQueueUrl } from '../../src/experiments/queue/connection.ts';
import { checkpointPattern } from '../../src/experiments/queue/keys.ts';
import { readEmbeddingsIndex } from '../../src/train/epochEmbeddings.ts';
import { siamese } from '../cli/run.ts';
import { type CliProcess as Proc, startCli as start, stopCli as stop, waitFor } from './processes.ts';
import { type RedisServer, startRedis } from './redis.ts';

const root = mkdtempSync(join(tmpdir(), 'siamese-fleet-'));
const GRID = ['--losses', 'contrastive,yukawa', '--seeds', '1', '--epochs', '3', '--train-pairs', '4000', '--tsne-points', '0', '--no-report', '--engine', 'tfjs'];

/** Run a command to its end without blocking this process (the workers' output keeps flowing). */
async function run(args: string[], env: Record<string, string> = {}): Promise<{ code: number | null; out: string }> {
  const p = start(args, env);
  const code = await p.exited;
  return { code, out: p.out() };
}

function fileOf(dir: string, run: string, name: string): string {
  const p = join(dir, 'runs', run, name);
  if (!existsSync(p)) return 'none';
  const b = readFileSync(p);
  return `${b.length} bytes, sha256 ${createHash('sha256').update(b).digest('hex')}`;
}

/** The epochs a run's embeddings.bin and distances.jsonl hold. */
function epochsOf(dir: string, run: string): { embeddings: number[] | 'none'; distances: number[] | 'none' } {
  const emb = join(dir, 'runs', run, 'embeddings.bin');
  const dist = join(dir, 'runs', run, 'distances.jsonl');
  return {
    embeddings: existsSync(emb) ? readEmbeddingsIndex(emb).epochs : 'none',
    distances: existsSync(dist) ? readFileSync(dist, 'utf8').trim().split('\n').map((l) => (JSON.parse(l) as { epoch: number }).epoch) : 'none',
  };
}

/** The files of a run folder, by name (the same set whatever ran it). */
function fileNames(dir: string, run: string): string[] {
  return readdirSync(join(dir, 'runs', run)).filter((f) => !f.startsWith('.')).sort();
}

/**
 * The trained bytes and numbers of a comparison folder (timings left out): the weights, the
 * per-epoch files (embeddings.bin, distances.jsonl: every epoch, as an uninterrupted local run
 * writes them) and the folder's file names.
 */
function outcome(dir: string): Record<string, unknown> {
  const runs = readdirSync(join(dir, 'runs')).sort();
  const res = JSON.parse(readFileSync(join(dir, 'results.json'), 'utf8'));
  return {
    runs,
    files: runs.map((r) => fileNames(dir, r)),
    epochs: runs.map((r) => epochsOf(dir, r)),
    weights: runs.map((r) => fileOf(dir, r, 'weights.safetensors')),
    embeddings: runs.map((r) => fileOf(dir, r, 'embeddings.bin')),
    distances: runs.map((r) => fileOf(dir, r, 'distances.jsonl')),
    evaluations: res.runs.map((r: { lossId: string; evaluation: unknown; distances: unknown }) => [r.lossId, r.evaluation, r.distances]),
    losses: res.runs.map((r: { history: { loss: number }[] }) => r.history.map((h) => h.loss)),
  };
}

describe('compare on a fleet through Redis', () => {
  let redis: RedisServer;
  let local: Record<string, unknown>;
  before(async () => {
    const r = siamese(['compare', ...GRID, '--out', join(root, 'local')]);
    assert.equal(r.code, 0, r.stderr);
    local = outcome(join(root, 'local'));
    redis = await startRedis();
  });
  after(async () => {
    await redis?.stop();
    rmSync(root, { recursive: true, force: true });
  });

  test('two workers give the local pool\'s results, bit for bit; the queue is then cleaned', async () => {
    const workers = [start(['worker', '--queue', redis.url, '--queue-name', 'same']), start(['worker', '--queue', redis.url, '--queue-name', 'same'])];
    try {
      const c = await run(['compare', ...GRID, '--out', join(root, 'fleet'), '--queue', redis.url, '--queue-name', 'same']);
      assert.equal(c.code, 0, c.out);
      assert.deepEqual(outcome(join(root, 'fleet')), local);
      // both workers announced the grid, and the jobs ran on the fleet, not here
      for (const w of workers) assert.match(w.out(), /serving grid same/);
      assert.match(workers.map((w) => w.out()).join(''), /train-[0-9a-f]{32} finished/);
      const s = await run(['queue', 'status', '--queue', redis.url, '--queue-name', 'same']);
      assert.equal(s.code, 0, s.out);
      assert.match(s.out, /^same: 0 waiting, 0 active, 0 done, 0 failed; 2 workers/m);
      const clean = await run(['queue', 'clean', '--queue', redis.url, '--queue-name', 'same']);
      assert.equal(clean.code, 0, clean.out);
    } finally {
      await Promise.all(workers.map(stop));
    }
  });

  test('a worker killed with SIGKILL mid-run: another takes the job over from its last epoch, running it once more and nothing twice; same bytes', async () => {
    const conn = new Redis({ ...(parseQueueUrl(redis.url).connection as object) });
    const a = start(['worker', '--queue', redis.url, '--queue-name', 'kill', '--lock-seconds', '2']);
    let b: Proc | undefined;
    try {
      await waitFor('worker a', () => /serving grid kill/.test(a.out()), 60);
      const c = start(['compare', ...GRID, '--out', join(root, 'kill'), '--queue', redis.url, '--queue-name', 'kill']);
      // once a checkpoint of the first run is in Redis, kill the worker training it
      await waitFor('a checkpoint in Redis', async () => (await conn.keys(checkpointPattern('kill'))).length > 0);
      a.child.kill('SIGKILL');
      // the run's embeddings so far went with its checkpoint (one script writes both)
      assert.ok((await conn.keys(checkpointPattern('kill'))).some((k) => k.endsWith(':embeddings')));
      await a.exited;
      b = start(['worker', '--queue', redis.url, '--queue-name', 'kill', '--lock-seconds', '2']);
      assert.equal(await c.exited, 0, c.out());
      assert.deepEqual(outcome(join(root, 'kill')), local);
      // b restored the checkpoint: it started the killed job, which a had started too; the killed
      // job ran again exactly once, the other job once: nothing else was run twice
      const started = (o: string) => [...o.matchAll(/(train-[0-9a-f]+) started/g)].map((m) => m[1]);
      const [killed, ...more] = started(a.out());
      assert.deepEqual(more, [], `a: ${a.out()}`);
      const byB = started(b.out());
      assert.equal(byB.length, 2, `b: ${b.out()}`);
      assert.equal(byB.filter((id) => id === killed).length, 1, `a: ${a.out()}\nb: ${b.out()}`);
    } finally {
      conn.disconnect();
      await stop(a);
      if (b) await stop(b);
    }
  });

  test('Redis restarted empty mid-grid: the coordinator enqueues the lost jobs again and the grid ends the same', async () => {
    const w = start(['worker', '--queue', redis.url, '--queue-name', 'restart']);
    try {
      await waitFor('the worker', () => /serving grid restart/.test(w.out()), 60);
      const c = start(['compare', ...GRID, '--out', join(root, 'restart'), '--queue', redis.url, '--queue-name', 'restart']);
      await waitFor('a first epoch', () => /epoch 1\/3/.test(c.out()));
      await redis.restart();
      assert.equal(await c.exited, 0, c.out());
      assert.match(c.out(), /lost by Redis, enqueued again/);
      assert.deepEqual(outcome(join(root, 'restart')), local);
    } finally {
      await stop(w);
    }
  });

  test('Redis restarted with its data (appendonly) mid-run: the workers and the coordinator reconnect, nothing is enqueued or trained again, the same bytes', async () => {
    const kept = await startRedis({ persist: true });
    const w = start(['worker', '--queue', kept.url, '--queue-name', 'kept']);
    try {
      await waitFor('the worker', () => /serving grid kept/.test(w.out()), 60);
      const c = start(['compare', ...GRID, '--out', join(root, 'kept'), '--queue', kept.url, '--queue-name', 'kept']);
      await waitFor('a first epoch', () => /epoch 1\/3/.test(c.out()));
      await kept.restart();
      assert.equal(await c.exited, 0, c.out());
      assert.doesNotMatch(c.out(), /lost by Redis/);
      assert.deepEqual(outcome(join(root, 'kept')), local);
      const started = [...w.out().matchAll(/(train-[0-9a-f]+) started/g)].map((m) => m[1]);
      assert.equal(new Set(started).size, 2, w.out());
      assert.equal(started.length, 2, `a job trained twice:\n${w.out()}`);
    } finally {
      await stop(w);
      await kept.stop();
    }
  });

  test('the coordinator interrupted: run again, it reuses what finished before and collects what finished after', async () => {
    const w = start(['worker', '--queue', redis.url, '--queue-name', 'resume']);
    try {
      await waitFor('the worker', () => /serving grid resume/.test(w.out()), 60);
      const out = join(root, 'resume');
      const c1 = start(['compare', ...GRID, '--out', out, '--queue', redis.url, '--queue-name', 'resume']);
      // interrupt once the second run has started on the worker
      await waitFor('the second run', () => (w.out().match(/train-[0-9a-f]+ started/g) ?? []).length >= 2);
      c1.child.kill('SIGINT');
      assert.equal(await c1.exited, 130, c1.out());
      // the worker finishes the second run while no coordinator listens
      await waitFor('the second run to finish', () => (w.out().match(/train-[0-9a-f]+ finished/g) ?? []).length >= 2);
      const c2 = await run(['compare', ...GRID, '--out', out, '--queue', redis.url, '--queue-name', 'resume']);
      assert.equal(c2.code, 0, c2.out);
      assert.deepEqual(outcome(out), local);
      // nothing was trained twice
      assert.equal((w.out().match(/train-[0-9a-f]+ started/g) ?? []).length, 2, w.out());
    } finally {
      await stop(w);
    }
  });

  test('a malformed job fails with its reason and the worker goes on serving', async () => {
    const w = start(['worker', '--queue', redis.url, '--queue-name', 'bad']);
    const q = new Queue('bad', { connection: parseQueueUrl(redis.url).connection, prefix: KEY_PREFIX });
    try {
      await waitFor('the worker', () => /serving grid bad/.test(w.out()), 60);
      await q.add('x', { v: 1, type: 'train', config: { loss: 'custom', pos: 'process.exit(1)' }, files: {} }, { jobId: 'evil', attempts: 3 });
      await q.add('x', { v: 1, type: 'train', resume: false, retrieval: false, distanceSample: 0, config: {}, data: { name: 'mnist', trainChecksum: '', testChecksum: '' }, files: { '../../etc/passwd': 'AAAA' } }, { jobId: 'path', attempts: 3 });
      await q.add('x', { v: 1, type: 'sleep', ms: 10, tag: 'ok' }, { jobId: 'fine' });
      await waitFor('the jobs', async () => {
        const c = await q.getJobCounts('completed', 'failed');
        return c.completed === 1 && c.failed === 2;
      }, 60);
      const evil = await q.getJob('evil');
      assert.match(evil!.failedReason, /bad job: the job names no data set checksums|bad job: unexpected file|carries no files/);
      assert.equal(evil!.attemptsMade, 1); // never retried
      assert.match((await q.getJob('path'))!.failedReason, /bad job: unexpected file "\.\.\/\.\.\/etc\/passwd"/);
      assert.equal(w.child.exitCode, null);
    } finally {
      await q.close();
      await stop(w);
    }
  });

  test('a worker whose data differ refuses the job; with no other worker, the coordinator names the worker and the reason', async () => {
    const w = start(['worker', '--queue', redis.url, '--queue-name', 'otherdata']);
    const { QueueExecutor } = await import('../../src/experiments/queue/coordinator.ts');
    const ex = await QueueExecutor.open({ url: redis.url, name: 'otherdata', data: { name: 'mnist', trainChecksum: 'f'.repeat(64), testChecksum: 'f'.repeat(64) }, unrunnableSeconds: 3 });
    try {
      await waitFor('the worker', () => /serving grid otherdata/.test(w.out()), 60);
      const runDir = join(root, 'local', 'runs', 'contrastive-seed0');
      await assert.rejects(
        ex.run({ type: 'distances', runDir, distanceSample: 10 }),
        (e: Error) => /^no worker could run it for 3 s \(the last to try, worker [^ ]+:\d+: its data set mnist differs from the coordinator's/.test(e.message),
      );
    } finally {
      await ex.close();
      await stop(w);
    }
  });

  test('over TLS (rediss://), trusting the server\'s CA through NODE_EXTRA_CA_CERTS: the same results; without it, one line', async () => {
    const tls = await startRedis({ tls: true, password: 'tls-pass' });
    const env = { NODE_EXTRA_CA_CERTS: tls.ca! };
    const w = start(['worker', '--queue', tls.url, '--queue-name', 'tls'], env);
    try {
      assert.match(tls.url, /^rediss:\/\//);
      const untrusted = await run(['queue', 'status', '--queue', tls.url]);
      assert.equal(untrusted.code, 2, untrusted.out);
      assert.match(untrusted.out, /^siamese: cannot connect to the queue at rediss:\/\/:\*\*\*@127\.0\.0\.1:\d+: .*(certificate|self.signed)/m);
      const c = await run(['compare', ...GRID, '--out', join(root, 'tls'), '--queue', tls.url, '--queue-name', 'tls'], env);
      assert.equal(c.code, 0, c.out);
      assert.deepEqual(outcome(join(root, 'tls')), local);
      assert.match(w.out(), /train-[0-9a-f]{32} finished/);
    } finally {
      await stop(w);
      await tls.stop();
    }
  });

  test('a wrong password or no server: one line and exit 2, and the password is never printed', async () => {
    const secret = await startRedis({ password: 's3cret-pass' });
    try {
      const wrong = secret.url.replace('s3cret-pass', 'not-it');
      for (const args of [['compare', ...GRID, '--out', join(root, 'pw'), '--queue', wrong], ['queue', 'status', '--queue', wrong]]) {
        const r = siamese(args);
        assert.equal(r.code, 2, r.stderr);
        assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
        assert.match(r.stderr, /cannot connect to the queue at redis:\/\/:\*\*\*@127\.0\.0\.1:\d+: the password was refused/);
        assert.doesNotMatch(r.stderr + r.stdout, /not-it/);
      }
      const none = siamese(['worker', '--queue', 'redis://127.0.0.1:1']);
      assert.equal(none.code, 2);
      assert.match(none.stderr, /nothing listens there/);
      // with the right password, status answers
      const ok = siamese(['queue', 'status', '--queue', secret.url]);
      assert.equal(ok.code, 0, ok.stderr);
      assert.ok(!existsSync(join(root, 'pw', 'results.json')));
    } finally {
      await secret.stop();
    }
  });
});
