/**
 * Benchmark of the fleet (compare --queue) on this machine, with Debian's redis-server on a
 * loopback port:
 *
 * 1. Load (a stand-in job, not a training: each sleeps a seeded random 50-500 ms): 1,000 jobs on
 *    50 `siamese worker` processes. Checks that every job ran exactly once and every result came
 *    back, and reports the dispatch overhead per job (wall time against the ideal of the sleeps
 *    spread over the workers) and Redis' memory at the end.
 * 2. The seed's study (contrastive, Yukawa, triplet; 3 seeds; 20 epochs: 9 runs) through the queue
 *    with 2 local workers against the local pool of 2 worker threads; the goal is a queue overhead
 *    under 10% of the wall time.
 *
 *   node --import tsx bench/fleet.ts [--jobs 1000] [--workers 50] [--epochs 20] [--skip-study]
 *   npm run bench:fleet
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Queue, QueueEvents } from 'bullmq';
import { Redis } from 'ioredis';
import { KEY_PREFIX, parseQueueUrl } from '../src/experiments/queue/connection.ts';
import { sleepCountKey } from '../src/experiments/queue/keys.ts';
import { Rng } from '../src/rng.ts';
import { BIN } from '../test/cli/run.ts';
import { startRedis } from '../test/queue/redis.ts';

const { values: v } = parseArgs({
  options: {
    jobs: { type: 'string', default: '1000' },
    workers: { type: 'string', default: '50' },
    epochs: { type: 'string', default: '20' },
    'skip-study': { type: 'boolean', default: false },
  },
});
const nJobs = Number(v.jobs);
const nWorkers = Number(v.workers);

function worker(url: string, name: string, extra: string[] = []): ChildProcess {
  return spawn(process.execPath, [BIN, 'worker', '--queue', url, '--queue-name', name, ...extra], { stdio: 'ignore', env: { ...process.env, CI: 'true' } });
}

async function stopAll(ws: ChildProcess[]): Promise<void> {
  await Promise.all(ws.map((w) => new Promise<void>((r) => (w.exitCode !== null ? r() : (w.once('exit', () => r()), w.kill('SIGTERM'))))));
}

console.log(`siamese-lab fleet benchmark, ${new Date().toISOString()}; ${cpus()[0]?.model ?? '?'} x ${cpus().length}, Node ${process.version}, load ${loadavg()[0]!.toFixed(2)}`);
const redis = await startRedis();
const { connection } = parseQueueUrl(redis.url);
const conn = new Redis({ ...(connection as object) });

// ---- 1. load ---------------------------------------------------------------------------------
{
  const name = 'load';
  const ws = Array.from({ length: nWorkers }, () => worker(redis.url, name));
  const q = new Queue(name, { connection, prefix: KEY_PREFIX });
  const events = new QueueEvents(name, { connection, prefix: KEY_PREFIX });
  await events.waitUntilReady();
  // wait until every worker is connected, so start-up is not counted as dispatch
  const t0wait = Date.now();
  while ((await q.getWorkers()).length < nWorkers && Date.now() - t0wait < 120_000) await new Promise((r) => setTimeout(r, 200));
  const rng = new Rng(1);
  const sleeps = Array.from({ length: nJobs }, () => 50 + rng.int(451));
  const completed = new Map<string, number>();
  const done = new Promise<void>((resolve) => {
    events.on('completed', ({ jobId }) => {
      completed.set(jobId, (completed.get(jobId) ?? 0) + 1);
      if (completed.size === nJobs) resolve();
    });
  });
  const t0 = performance.now();
  await q.addBulk(sleeps.map((ms, i) => ({ name: 'sleep', data: { v: 1, type: 'sleep', ms, tag: `job${i}` }, opts: { jobId: `job${i}` } })));
  await Promise.race([done, new Promise((r) => setTimeout(r, 600_000))]);
  const wall = (performance.now() - t0) / 1000;
  const counts = await conn.hgetall(sleepCountKey(name));
  const runs = Object.values(counts).map(Number);
  const lost = nJobs - Object.keys(counts).length;
  const twice = runs.filter((n) => n > 1).length;
  const ideal = sleeps.reduce((a, b) => a + b, 0) / 1000 / nWorkers;
  const mem = /used_memory_human:(\S+)/.exec(await conn.info('memory'))?.[1];
  console.log(`\nload: ${nJobs} sleep jobs (50-500 ms, a stand-in for trainings) on ${nWorkers} worker processes`);
  console.log(`  results collected: ${completed.size} of ${nJobs}; jobs lost: ${lost}; jobs run twice: ${twice}`);
  console.log(`  wall ${wall.toFixed(2)} s against ${ideal.toFixed(2)} s of sleep per worker: ${(((wall - ideal) * 1000 * nWorkers) / nJobs).toFixed(1)} ms of dispatch per job and worker`);
  console.log(`  Redis memory at the end: ${mem}`);
  await events.close();
  await q.obliterate({ force: true });
  await q.close();
  await stopAll(ws);
}

// ---- 2. the seed's study: queue against local pool -------------------------------------------
if (!v['skip-study']) {
  const grid = ['--losses', 'contrastive,yukawa,triplet', '--seeds', '3', '--epochs', v.epochs!, '--tsne-points', '0', '--no-report'];
  const dir = mkdtempSync(join(tmpdir(), 'siamese-bench-fleet-'));
  const time = (args: string[]): number => {
    const t0 = performance.now();
    const r = spawnSync(process.execPath, [BIN, 'compare', ...grid, ...args], { encoding: 'utf8', env: { ...process.env, CI: 'true' } });
    if (r.status !== 0) throw new Error(`compare failed: ${r.stderr}`);
    return (performance.now() - t0) / 1000;
  };
  const ws = [worker(redis.url, 'study', ['--threads', '1']), worker(redis.url, 'study', ['--threads', '1'])];
  // local, queue, queue, local: a change of the machine's load weighs on both
  const local1 = time(['--out', join(dir, 'local1'), '--workers', '2']);
  const queue1 = time(['--out', join(dir, 'queue1'), '--queue', redis.url, '--queue-name', 'study']);
  const queue2 = time(['--out', join(dir, 'queue2'), '--queue', redis.url, '--queue-name', 'study']);
  const local2 = time(['--out', join(dir, 'local2'), '--workers', '2']);
  await stopAll(ws);
  const l = (local1 + local2) / 2;
  const q = (queue1 + queue2) / 2;
  console.log(`\nthe seed's study (9 runs, ${v.epochs} epochs), 2 workers: local pool ${local1.toFixed(1)} s and ${local2.toFixed(1)} s; queue ${queue1.toFixed(1)} s and ${queue2.toFixed(1)} s`);
  console.log(`  queue overhead: ${(100 * (q / l - 1)).toFixed(1)}% of the local pool's wall time (goal: under 10%)`);
  rmSync(dir, { recursive: true, force: true });
}
conn.disconnect();
await redis.stop();
