/**
 * A sweep of a loss with nothing to search (every parameter fixed): its trials would all train
 * the same configuration from the same seed and initial weights, so it runs one trial (its K
 * folds), not --trials of them; and its "default" final trainings would train the very config of
 * its tuned ones (the defaults replace searched values only), so the tuned seeds stand for them.
 * The plan, the trainings, results.json and the report say so.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { loadDataset } from '../../src/data/registry.ts';
import { initBackend } from '../../src/engine/backend.ts';
import { resolveDefinition, runSweep, sharesFinals, type SweepPlan, sweepJobs, sweepTrainings, trainConfig } from '../../src/experiments/sweep.ts';
import { planText } from '../../src/cli/sweep.ts';
import { sweepOutline } from '../../src/serve/scan.ts';
import { sweepFinalTrainings } from '../../src/viz/sweepFinals.ts';
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
  // by hand: contrastive 3 trials x 2 folds + 2 finals = 8; yukawa 1 trial x 2 folds + 1 final = 3
  assert.deepEqual(
    planned.map((j) => j.key),
    [
      'contrastive/trial00/fold0', 'contrastive/trial00/fold1', 'contrastive/trial01/fold0', 'contrastive/trial01/fold1', 'contrastive/trial02/fold0', 'contrastive/trial02/fold1',
      'contrastive/tuned-seed0', 'contrastive/default-seed0',
      'yukawa-kappa5-power2/trial00/fold0', 'yukawa-kappa5-power2/trial00/fold1', 'yukawa-kappa5-power2/tuned-seed0',
    ],
  );
  assert.equal(sweepTrainings(def), 11);
  assert.ok(notes.some((n) => /^yukawa-kappa5-power2 has no parameter to search: 1 trial, not 3$/.test(n)), notes.join(' | '));
  const plan: SweepPlan = { definition: def, trainings: 11, finished: 0, workers: 2, notes, sharedFinals: def.losses.filter((l) => sharesFinals(def, l)).map((l) => l.spec.id) };
  assert.match(
    planText(plan),
    /^sweep: 2 losses x \(3 trials x 2 folds \+ 1 tuned \+ 1 default seed\), for yukawa-kappa5-power2: 1 trial, its tuned seeds standing for the default ones \(nothing to search\) = 11 trainings, 0 finished already;/,
  );
});

test('the defaults are shared only where the resolved configs are the same: a fixed non-default value shares, a searched loss does not', async () => {
  const ds = await loadDataset(data);
  // margin 0.5 fixed, not contrastive's default of 1: the "default" final keeps the fixed 0.5
  // (the defaults replace searched values only), so tuned and default train the same config
  const { definition: def } = resolveDefinition({ data, losses: 'contrastive:margin=0.5,contrastive:margin=0.5..1;lr=1e-4..1e-2:log,yukawa', trials: 2, folds: 2, seeds: 1, epochs: 1 }, ds);
  const [fixed, searched, plain] = def.losses;
  const tuned = trainConfig(def, fixed!, {}, def.split, 0);
  assert.equal(tuned.lossParams?.['margin'], 0.5);
  assert.deepEqual(trainConfig(def, fixed!, undefined, def.split, 0), tuned);
  assert.equal(sharesFinals(def, fixed!), true);
  assert.equal(sharesFinals(def, plain!), true, 'plain yukawa: nothing fixed, nothing searched');
  // a searched loss: its tuned config is the best trial's (margin 0.7, lr 0.002 here), its default the loss's margin and the sweep's rate
  assert.equal(sharesFinals(def, searched!), false);
  const t = trainConfig(def, searched!, { margin: 0.7, lr: 0.002 }, def.split, 0);
  const d = trainConfig(def, searched!, undefined, def.split, 0);
  assert.deepEqual([t.lossParams?.['margin'], t.learningRate], [0.7, 0.002]);
  assert.deepEqual([d.lossParams?.['margin'], d.learningRate], [undefined, def.config.learningRate]);
  // by hand: 2 x (1 trial x 2 folds + 1 seed) + (2 trials x 2 folds + 2 x 1 seed)
  assert.equal(sweepTrainings(def), 12);
});

test('a sweep of one fixed loss: 1 trial of K folds and the tuned seeds, which stand for the default ones (no second training)', async () => {
  const out = join(root, 'fixed');
  const o = await runSweep({ data, losses: 'yukawa:kappa=5;power=2', trials: 4, folds: 2, seeds: 2, epochs: 1, trainPairs: 200, workers: 2, out });
  assert.equal(o.status, 'finished');
  // 1 trial x 2 folds + 2 tuned seeds; no default seed trained
  assert.equal(o.trained, 4);
  assert.deepEqual(readdirSync(join(out, 'runs', 'yukawa-kappa5-power2')).sort(), ['trial00', 'tuned-seed0', 'tuned-seed1']);
  const l = o.results!.losses[0]!;
  assert.equal(l.trials.length, 1);
  assert.deepEqual(l.trials[0]!.params, {});
  assert.equal(l.best.trial, 0);
  assert.equal(o.results!.machine.trainings, 4);
  // both entries, the same numbers, from the same run folders, flagged
  assert.equal(l.untuned.sameAsTuned, true);
  assert.deepEqual(l.untuned.test, l.test);
  assert.deepEqual(l.untuned.test.seeds.map((s) => s.runDir), [0, 1].map((s) => join(out, 'runs', 'yukawa-kappa5-power2', `tuned-seed${s}`)));
  assert.equal(existsSync(join(out, 'runs', 'yukawa-kappa5-power2', 'default-seed0')), false);
  const md = sweepMarkdown(o.results!);
  assert.match(md, /per loss 4 trials \(1 for a loss with nothing to search: yukawa-kappa5-power2\)/);
  assert.match(md, /trained with 2 seeds on all training classes \(for yukawa-kappa5-power2, with nothing to search, the defaults are the tuned settings: the same trainings, trained once, their numbers given for both\);/);
  // serve's count of the final trainings, from the outline of sweep.json: the final run folders on disk
  const outline = sweepOutline({ id: '0:fixed', kind: 'sweep', root: 0, rel: 'fixed', dir: out })!;
  const finals = readdirSync(join(out, 'runs', 'yukawa-kappa5-power2')).filter((d) => /^(tuned|default)-seed\d+$/.test(d)).length;
  assert.equal(sweepFinalTrainings(outline), finals);
  assert.equal(finals, 2);
  // the same command again: nothing to train, the same numbers (resume counts the same trainings)
  const again = await runSweep({ data, losses: 'yukawa:kappa=5;power=2', trials: 4, folds: 2, seeds: 2, epochs: 1, trainPairs: 200, workers: 2, out });
  assert.deepEqual([again.trained, again.reused], [0, 4]);
  assert.deepEqual(again.results!.losses[0]!.untuned, l.untuned);
});
