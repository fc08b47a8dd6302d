/**
 * A sweep of a loss with nothing to search (every parameter fixed): its trials would all train
 * the same configuration from the same seed and initial weights, so it runs one trial (its K
 * folds), not --trials of them; the plan, the trainings and results.json say so.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { loadDataset } from '../../src/data/registry.ts';
import { initBackend } from '../../src/engine/backend.ts';
import { resolveDefinition, runSweep, type SweepPlan, sweepJobs } from '../../src/experiments/sweep.ts';
import { planText } from '../../src/cli/sweep.ts';
import { sweepMarkdown } from '../../src/viz/sweepReport.ts';
import { writeBandsIdx } from '../data/datasets.ts';

const root = mkdtempSync(join(tmpdir(), 'siamese-sweep-fixed-'));
after(() => rmSync(root, { recursive: true, force: true }));
const dataDir = join(root, 'data');
writeBandsIdx(dataDir);
const data = { name: 'idx' as const, dir: dataDir };

test('a loss with no search space runs one trial; a searched loss beside it runs --trials', async () => {
  await initBackend('wasm');
  const ds = await loadDataset(data);
  const { definition: def, notes } = resolveDefinition({ data, losses: 'contrastive:margin=0.5..1,yukawa:kappa=5;power=2', trials: 3, folds: 2, seeds: 1, epochs: 1, batchSize: 16 }, ds);
  const { planned } = sweepJobs(def, join(root, 'none'), ds);
  // by hand: contrastive 3 trials x 2 folds + 2 finals = 8; yukawa 1 trial x 2 folds + 2 finals = 4
  assert.deepEqual(
    planned.map((j) => j.key),
    [
      'contrastive/trial00/fold0', 'contrastive/trial00/fold1', 'contrastive/trial01/fold0', 'contrastive/trial01/fold1', 'contrastive/trial02/fold0', 'contrastive/trial02/fold1',
      'contrastive/tuned-seed0', 'contrastive/default-seed0',
      'yukawa-kappa5-power2/trial00/fold0', 'yukawa-kappa5-power2/trial00/fold1', 'yukawa-kappa5-power2/tuned-seed0', 'yukawa-kappa5-power2/default-seed0',
    ],
  );
  assert.ok(notes.some((n) => /^yukawa-kappa5-power2 has no parameter to search: 1 trial, not 3$/.test(n)), notes.join(' | '));
  const plan: SweepPlan = { definition: def, trainings: 12, finished: 0, workers: 2, notes };
  assert.match(planText(plan), /^sweep: 2 losses x \(3 trials x 2 folds \+ 1 tuned \+ 1 default seeds\), 1 trial for yukawa-kappa5-power2 \(nothing to search\) = 12 trainings, 0 finished already;/);
});

test('a sweep of one fixed loss: 1 trial of K folds and the final seeds, trained once each', async () => {
  const out = join(root, 'fixed');
  const o = await runSweep({ data, losses: 'yukawa:kappa=5;power=2', trials: 4, folds: 2, seeds: 2, epochs: 1, trainPairs: 200, workers: 2, out });
  assert.equal(o.status, 'finished');
  // 1 trial x 2 folds + 2 tuned + 2 default seeds
  assert.equal(o.trained, 6);
  const l = o.results!.losses[0]!;
  assert.equal(l.trials.length, 1);
  assert.deepEqual(l.trials[0]!.params, {});
  assert.equal(l.best.trial, 0);
  assert.equal(o.results!.machine.trainings, 6);
  assert.match(sweepMarkdown(o.results!), /per loss 4 trials \(1 for a loss with nothing to search: yukawa-kappa5-power2\)/);
});
