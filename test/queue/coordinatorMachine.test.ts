/**
 * `compare --queue` and the coordinator's machine: the jobs run on the fleet's workers, so nothing
 * of what they produce may depend on the machine that coordinates. Two coordinators as different
 * as their thread counts (`workers`: 1, and 7 standing for a 7-core machine) give runs whose
 * manifests hold the same config, with the worker's own `--threads`, and a results.json that
 * counts the fleet worker that ran the jobs (machine.workers 1, machine.queue), not the
 * coordinator's threads. Before, results.json said `workers: 2` (this machine's threads, capped at
 * the jobs) for the 7-thread coordinator, and the report "2 workers" of a run a single fleet
 * worker trained.
 * Through a real redis-server and a `siamese worker` process.
 * @needs redis-server
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { summaryText } from '../../src/cli/compare.ts';
import { runCompare } from '../../src/experiments/compare.ts';
import type { CompareResults } from '../../src/experiments/results.ts';
import { buildReport } from '../../src/viz/report.ts';
import { startCli, stopCli, queueTestHooks } from './processes.ts';
import type { RedisServer } from './redis.ts';

const root = mkdtempSync(join(tmpdir(), 'siamese-coordinator-machine-'));
let redis: RedisServer;

queueTestHooks(root, (r) => (redis = r));

test('compare --queue: the runs\' manifests and results.json do not depend on the coordinator\'s thread count; the worker\'s --threads trains', async () => {
  const w = startCli(['worker', '--queue', redis.url, '--queue-name', 'machine', '--threads', '1']);
  try {
    const configs: Record<string, unknown>[] = [];
    for (const workers of [1, 7]) {
      const out = join(root, `workers${workers}`);
      const plans: number[] = [];
      const o = await runCompare(
        { losses: 'contrastive,yukawa', seeds: 1, epochs: 1, trainPairs: 2000, tsnePoints: 0, retrieval: false, engine: 'tfjs', workers, out, queue: { url: redis.url, name: 'machine' } },
        { onPlan: (p) => plans.push(p.workers) },
      );
      assert.equal(o.status, 'finished');
      assert.deepEqual(o.failures, []);
      // no local threads in the plan: the display must not share the work over them
      assert.deepEqual(plans, [0], `coordinator with ${workers} threads`);
      const res = JSON.parse(readFileSync(join(out, 'results.json'), 'utf8')) as CompareResults;
      assert.equal(res.machine.workers, 1, `coordinator with ${workers} threads: the one fleet worker ran the jobs`);
      assert.equal(res.machine.queue, true);
      // what the summary line and the report say of it
      assert.match(summaryText({ ...o, results: res }), /, on 1 worker of the queue$/m);
      const report = await buildReport(res, join(out, 'report'));
      assert.match(readFileSync(report.md, 'utf8'), /Machine: the jobs ran on 1 worker of a Redis queue; coordinated on /);
      const manifests = ['contrastive-seed0', 'yukawa-seed0'].map((r) => JSON.parse(readFileSync(join(out, 'runs', r, 'manifest.json'), 'utf8')) as { config: Record<string, unknown> });
      for (const m of manifests) assert.equal(m.config['threads'], 1, 'the worker\'s --threads');
      configs.push(...manifests.map((m) => m.config));
    }
    // the same two configs whatever coordinated
    assert.deepEqual(configs.slice(2), configs.slice(0, 2));
  } finally {
    await stopCli(w);
  }
});

test('a worker given --threads 0 trains with its default share of the cores (cores / --concurrency), as train\'s 0 means every core, and its manifests say so', async () => {
  const w = startCli(['worker', '--queue', redis.url, '--queue-name', 'zero', '--threads', '0', '--concurrency', '1']);
  try {
    const out = join(root, 'zero');
    const o = await runCompare({ losses: 'contrastive', seeds: 1, epochs: 1, trainPairs: 2000, tsnePoints: 0, retrieval: false, engine: 'tfjs', out, queue: { url: redis.url, name: 'zero' } });
    assert.equal(o.status, 'finished');
    const m = JSON.parse(readFileSync(join(out, 'runs', 'contrastive-seed0', 'manifest.json'), 'utf8')) as { config: { threads: number } };
    assert.equal(m.config.threads, availableParallelism());
  } finally {
    await stopCli(w);
  }
});
