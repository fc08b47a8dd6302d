/**
 * The time `sweep` announces before it starts (estimate.ts). The arithmetic is checked on a plan
 * computed by hand with injected costs (no clock in any assertion): batches per epoch by loss
 * kind under each training's own split (a fold trains on part of the training classes), the
 * evaluations, the files, the workers. The batch counts are checked against what a Training
 * itself reports. `sweep --plan` prints the plan and writes nothing.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { loadDataset } from '../../src/data/registry.ts';
import { initBackend } from '../../src/engine/backend.ts';
import { calibrate, type Costs, estimateBasis, estimatePlan, LATE_STEP, splitSizes, stepCost, trainingSeconds, type TrainingWork, trainingWork, WARMUP_STEPS } from '../../src/experiments/estimate.ts';
import { estimateBatches } from '../../src/experiments/grid.ts';
import { foldSplit, planSweep, resolveDefinition, type SweepPlan, sweepJobs, trainConfig } from '../../src/experiments/sweep.ts';
import { planText } from '../../src/cli/sweep.ts';
import { createLoss } from '../../src/losses/registry.ts';
import { resolveConfig, type TrainConfig } from '../../src/train/config.ts';
import { epochBatches, epochKind } from '../../src/train/epochBatches.ts';
import { trainRun } from '../../src/train/run.ts';
import { Training } from '../../src/train/trainer.ts';
import { siamese } from '../cli/run.ts';
import { writeBandsIdx } from '../data/datasets.ts';

const root = mkdtempSync(join(tmpdir(), 'siamese-estimate-'));
after(() => rmSync(root, { recursive: true, force: true }));
// 8 classes, 40 training and 15 test images each
const dataDir = join(root, 'data');
writeBandsIdx(dataDir);
const data = { name: 'idx' as const, dir: dataDir };

/** The oracle: a fresh Training reports its epoch's batch count in its first callback. */
function trainingBatches(ds: Awaited<ReturnType<typeof loadDataset>>, config: TrainConfig): number {
  const t = new Training(ds, { ...config, threads: 1 });
  try {
    let batches = 0;
    const stop = new AbortController();
    t.runEpoch(
      (info) => {
        batches = info.batches;
        stop.abort();
      },
      { signal: stop.signal },
    );
    return batches;
  } finally {
    t.dispose();
  }
}

test('epochBatches: the batches a Training runs, for every kind of loss, with and without --train-pairs, under class splits', async () => {
  await initBackend('wasm');
  const ds = await loadDataset(data);
  const losses: [string, string | undefined, 'pair' | 'triplet' | 'balanced'][] = [
    ['contrastive', undefined, 'pair'],
    ['triplet', undefined, 'triplet'],
    ['triplet', 'semihard', 'balanced'],
    ['multi-similarity', undefined, 'balanced'],
    ['proxy-anchor', undefined, 'balanced'],
  ];
  // by hand, batch size 16: a fold trains on 2 classes of 40 images (156 pairs: 10 batches; 80
  // triplets: 5; class-balanced 8 x 2 images: round(80 / 16) = 5); all 4 training classes: 312
  // pairs (20), 160 triplets (10), 4 x 4 images (10); a 200-pair slice: 13 pair batches, 100
  // triplets (7), and the balanced batches stay (ceil(400 / 16) = 25 allowed)
  const hand: Record<string, Record<string, number>> = {
    'train=1,3;test=0,2': { pair: 10, triplet: 5, balanced: 5 },
    classes: { pair: 20, triplet: 10, balanced: 10 },
  };
  for (const split of ['pairs', 'classes', 'train=1,3;test=0,2']) {
    for (const trainPairs of [0, 200, 40]) {
      for (const [loss, miner, kind] of losses) {
        const config = resolveConfig({ loss, miner, batchSize: 16, trainPairs, split, epochs: 1 });
        const lossKind = createLoss(loss).kind;
        assert.equal(epochKind(lossKind, miner), kind, loss);
        const counted = epochBatches(config, kind, splitSizes(ds, split).trainLabels);
        const what = `${loss}${miner ? `+${miner}` : ''}, split ${split}, train pairs ${trainPairs}`;
        assert.equal(counted, trainingBatches(ds, config), what);
        if (trainPairs === 0 && hand[split]) assert.equal(counted, hand[split]![kind], `${what}: by hand`);
      }
    }
  }
  const slice = resolveConfig({ loss: 'contrastive', batchSize: 16, trainPairs: 200, split: 'classes' });
  assert.equal(epochBatches(slice, 'pair', splitSizes(ds, 'classes').trainLabels), 13);
  assert.equal(epochBatches(slice, 'triplet', splitSizes(ds, 'classes').trainLabels), 7);
});

test('splitSizes: the training labels renumbered and the test images of a split, as the Training sees them', async () => {
  const ds = await loadDataset(data);
  const s = splitSizes(ds, 'train=1,3;test=0,2,5');
  assert.equal(s.trainLabels.length, 80);
  assert.deepEqual([...new Set(s.trainLabels)].sort(), [0, 1]);
  assert.equal(s.testImages, 45);
  assert.equal(splitSizes(ds, 'pairs').testImages, 120);
});

test('compare\'s progress estimate counts class-balanced batches for batch losses and miners, on the split\'s training classes', async () => {
  const ds = await loadDataset(data);
  for (const [loss, miner] of [['multi-similarity', undefined], ['triplet', 'semihard'], ['contrastive', undefined]] as const) {
    const config = resolveConfig({ loss, miner, batchSize: 16, trainPairs: 0, split: 'classes' });
    const { loss: _l, lossParams: _p, seed: _s, miner: _m, ...shared } = config;
    const spec = { losses: [], seeds: [0], config: shared };
    assert.equal(estimateBatches({ id: loss, loss, params: {}, miner, label: loss }, spec, ds), trainingBatches(ds, config), loss);
  }
});

const COSTS: Costs = {
  step: { contrastive: 0.001, 'multi-similarity': 0.004 },
  evalImage: 0.0001,
  retrievalPair: 1e-6,
  epochFiles: 0.01,
  setup: 0.2,
  workerStart: 1,
  share: 1,
};

test('trainingSeconds: set-up; per epoch its steps, its test images and snapshot, its files; the final evaluation; the distance sample', () => {
  const w: TrainingWork = { lossId: 'contrastive', epochs: 3, batchesPerEpoch: 20, testImages: 60, snapshotImages: 60, retrieval: true };
  // 0.2 + 3 x (20 x 0.001 + 120 x 0.0001 + 0.01) + (60 x 0.0001 + 60² x 1e-6) + (0.2 + 60 x 0.0001)
  assert.ok(Math.abs(trainingSeconds(w, COSTS) - (0.2 + 3 * 0.042 + 0.0096 + 0.206)) < 1e-12);
  assert.ok(Math.abs(trainingSeconds({ ...w, retrieval: false, snapshotImages: 0 }, COSTS) - (0.2 + 3 * 0.036 + 0.006 + 0.206)) < 1e-12);
  assert.throws(() => trainingSeconds({ ...w, lossId: 'yukawa' }, COSTS), /no step cost for loss "yukawa"/);
});

test('a sweep\'s plan by hand: folds on their own classes, finals with snapshots, shared over the workers', async () => {
  const ds = await loadDataset(data);
  const { definition: def } = resolveDefinition(
    { data, losses: 'contrastive:margin=0.5..1,multi-similarity:alpha=1..4', trials: 2, folds: 2, seeds: 1, epochs: 3, batchSize: 16 },
    ds,
  );
  const { planned, reusedKeys, work } = sweepJobs(def, join(root, 'no-sweep-here'), ds);
  assert.equal(planned.length, 12);
  assert.equal(reusedKeys.length, 0);
  assert.deepEqual(
    work.map((w) => [w.key, w.batchesPerEpoch, w.testImages, w.snapshotImages]),
    [
      // training classes 0-3, folds [0,2] and [1,3]: each fold trains on 2 classes and validates on 2 x 15 test images
      ['contrastive/trial00/fold0', 10, 30, 0],
      ['contrastive/trial00/fold1', 10, 30, 0],
      ['contrastive/trial01/fold0', 10, 30, 0],
      ['contrastive/trial01/fold1', 10, 30, 0],
      ['contrastive/tuned-seed0', 20, 60, 60],
      ['contrastive/default-seed0', 20, 60, 60],
      ['multi-similarity/trial00/fold0', 5, 30, 0],
      ['multi-similarity/trial00/fold1', 5, 30, 0],
      ['multi-similarity/trial01/fold0', 5, 30, 0],
      ['multi-similarity/trial01/fold1', 5, 30, 0],
      ['multi-similarity/tuned-seed0', 10, 60, 60],
      ['multi-similarity/default-seed0', 10, 60, 60],
    ],
  );
  assert.ok(work.every((w) => w.epochs === 3 && w.retrieval));
  // by hand: contrastive fold 0.2 + 3 x (10 x 0.001 + 30 x 0.0001 + 0.01) + (0.003 + 0.0009) + (0.2 + 0.003) = 0.4759,
  // final 0.2 + 3 x (0.02 + 0.012 + 0.01) + (0.006 + 0.0036) + 0.206 = 0.5416; multi-similarity fold
  // 0.2 + 3 x (0.02 + 0.003 + 0.01) + 0.0039 + 0.203 = 0.5059, final 0.2 + 3 x (0.04 + 0.012 + 0.01) + 0.0096 + 0.206 = 0.6016
  const sum = 4 * 0.4759 + 2 * 0.5416 + 4 * 0.5059 + 2 * 0.6016;
  const two = estimatePlan(work, COSTS, 2);
  assert.ok(Math.abs(two.trainingSeconds - sum) < 1e-9, `${two.trainingSeconds} against ${sum}`);
  assert.ok(Math.abs(two.seconds - (1 + sum / 2)) < 1e-9);
  assert.equal(two.workers, 2);
  assert.ok(Math.abs(estimatePlan(work, COSTS, 1).seconds - (1 + sum)) < 1e-9);
  // a busy machine: the calibration got 40% of a core; if that lasts, every worker's part takes 1 / 0.4 as long
  const busy = estimatePlan(work, { ...COSTS, share: 0.4 }, 2);
  assert.ok(Math.abs(busy.seconds - two.seconds) < 1e-12);
  assert.ok(Math.abs(busy.loadedSeconds - (1 + sum / 2 / 0.4)) < 1e-9);
  assert.ok(Math.abs(two.loadedSeconds - two.seconds) < 1e-12);
  // more workers than trainings: the longest training bounds it
  const one = estimatePlan(work.slice(-1), COSTS, 4);
  assert.equal(one.workers, 1);
  assert.ok(Math.abs(one.seconds - (1 + 0.6016)) < 1e-9);
  assert.equal(estimatePlan([], COSTS, 2).seconds, 0);
  assert.throws(() => estimatePlan(work, COSTS, 0), /workers must be an integer >= 1/);
});

test('trainingWork counts the whole test split as embedded, whatever --test-pairs: the trainer embeds every test image (and ranks them all), test pairs only shorten the distances read', async () => {
  await initBackend('wasm');
  const ds = await loadDataset(data);
  const config = (testPairs: number, split: string): TrainConfig => resolveConfig({ loss: 'contrastive', batchSize: 16, testPairs, split });
  const opts = { epochs: 2, snapshotImages: 0, retrieval: true };
  // 8 classes x 15 test images = 120 under the pairs split; a fold's 2 held-out classes: 30
  for (const [split, images] of [['pairs', 120], ['train=0,1,3,4;test=2,6', 30]] as const) {
    for (const testPairs of [0, 10, 1000]) {
      const w = trainingWork(ds, 'contrastive', config(testPairs, split), 'pair', opts);
      assert.equal(w.testImages, images, `${split}, --test-pairs ${testPairs}`);
    }
  }
  // the oracle: what a Training embeds when it evaluates with 10 test pairs
  const t = new Training(ds, { ...config(10, 'pairs'), threads: 1 });
  try {
    assert.equal(t.testPairs.length, 10);
    assert.equal(t.embed(t.dataset.test).length / t.network.embeddingDim, 120);
  } finally {
    t.dispose();
  }
  // the seconds by hand, with 120 test images (not 10) and the epoch's b batches:
  // 0.2 + 2 x (b x 0.001 + 120 x 0.0001 + 0.01) + (120 x 0.0001 + 120² x 1e-6) + (0.2 + 120 x 0.0001)
  const w = trainingWork(ds, 'contrastive', config(10, 'pairs'), 'pair', opts);
  const b = w.batchesPerEpoch;
  assert.ok(Math.abs(trainingSeconds(w, COSTS) - (0.2 + 2 * (b * 0.001 + 0.012 + 0.01) + (0.012 + 0.0144) + 0.212)) < 1e-12);
});

test('a resumed sweep: finished trainings are left out, an interrupted one counts only the epochs it has left', async () => {
  await initBackend('wasm');
  const ds = await loadDataset(data);
  const { definition: def } = resolveDefinition({ data, losses: 'contrastive:margin=0.5..1', trials: 1, folds: 2, seeds: 1, epochs: 3, batchSize: 16 }, ds);
  const out = join(root, 'resumed');
  const l = def.losses[0]!;
  const before = sweepJobs(def, out, ds);
  // fold 0 interrupted after its first epoch, fold 1 finished
  const stop = new AbortController();
  const first = await trainRun({ config: trainConfig(def, l, undefined, foldSplit(def.trainClasses, def.groups[0]!), 0), out: join(out, 'runs', 'contrastive', 'trial00', 'fold0'), dataset: ds, signal: stop.signal, onEpoch: () => stop.abort() });
  assert.equal(first.status, 'interrupted');
  assert.equal(first.epochs, 1);
  const second = await trainRun({ config: trainConfig(def, l, undefined, foldSplit(def.trainClasses, def.groups[1]!), 0), out: join(out, 'runs', 'contrastive', 'trial00', 'fold1'), dataset: ds });
  assert.equal(second.status, 'finished');
  const after = sweepJobs(def, out, ds);
  assert.deepEqual(after.reusedKeys, ['contrastive/trial00/fold1']);
  assert.deepEqual(
    after.work.map((w) => [w.key, w.epochs]),
    [
      ['contrastive/trial00/fold0', 2],
      ['contrastive/tuned-seed0', 3],
      ['contrastive/default-seed0', 3],
    ],
  );
  assert.deepEqual(before.work.map((w) => w.epochs), [3, 3, 3, 3]);
});

test('stepCost: the median of the steps after a warm-up of 20, past V8 compiling a miner (not steps 5 to 12)', () => {
  // The processor ms of the first 28 steps of triplet + semihard on MNIST at one thread, measured
  // here in one run (its median at steps 51 to 300: 2.77 ms): the first dozen run unoptimised
  // JavaScript while V8 compiles the miner on its own threads (bench/threadUse.ts shows them).
  const measured = [49.6, 8.97, 5.62, 3.28, 2.96, 4.03, 6.01, 3.35, 7.57, 5.35, 3.3, 3.17, 3.18, 2.92, 3.37, 3.15, 3.34, 3.24, 3.04, 3.67, 3.18, 4.27, 3.95, 3.23, 3.14, 3.07, 3.29, 6.97];
  const readings = [100];
  for (const ms of measured) readings.push(readings.at(-1)! + ms);
  assert.equal(WARMUP_STEPS, 20);
  // steps 21 to 28 sorted: 3.07 3.14 3.18 3.23 3.29 3.95 4.27 6.97; the median is (3.23 + 3.29) / 2
  assert.ok(Math.abs(stepCost(readings) - 3.26) < 1e-9, String(stepCost(readings)));
  // the old window, steps 5 to 12 (median 4.69 ms), took the compiling steps for the loss's cost
  assert.ok(stepCost(readings) < 0.75 * 4.69);
  // an epoch shorter than the warm-up: all its steps
  assert.ok(Math.abs(stepCost([0, 5, 7, 8]) - 2) < 1e-12);
  assert.throws(() => stepCost([1]), /no step was timed/);
});

test('trainingSeconds: the first LATE_STEP steps at the early cost, the rest at the later one (batch-all does less work as it learns)', () => {
  // triplet + batch-all on MNIST, one thread, processor time: 16 ms a step at steps 21-28 (nearly
  // every triplet still violates the margin), 5.7 ms at steps 101-108, 5.3 ms on average over 20
  // epochs of 245 steps. The early cost alone made 20 epochs 4900 x 16 ms = 78 s against 26 s.
  const costs: Costs = { ...COSTS, step: { ...COSTS.step, ba: 0.016 }, stepLate: { ba: 0.0057 } };
  const w: TrainingWork = { lossId: 'ba', epochs: 20, batchesPerEpoch: 245, testImages: 0, snapshotImages: 0, retrieval: false };
  // 0.2 + (100 x 0.016 + 4800 x 0.0057) + 20 x 0.01 + 0 + 0.2
  assert.equal(LATE_STEP, 100);
  assert.ok(Math.abs(trainingSeconds(w, costs) - (0.2 + 1.6 + 27.36 + 0.2 + 0.2)) < 1e-9, String(trainingSeconds(w, costs)));
  // a training shorter than LATE_STEP steps runs them all at the early cost: 0.2 + 40 x 0.016 + 0.01 + 0.2
  assert.ok(Math.abs(trainingSeconds({ ...w, epochs: 1, batchesPerEpoch: 40 }, costs) - (0.2 + 0.64 + 0.01 + 0.2)) < 1e-12);
  // a loss with no later cost: its step throughout (3 epochs of 50: 150 x 0.001)
  assert.ok(Math.abs(trainingSeconds({ ...w, lossId: 'contrastive', epochs: 3, batchesPerEpoch: 50 }, costs) - (0.2 + 0.15 + 0.03 + 0.2)) < 1e-12);
});

test('the plan\'s "ms a step": each loss\'s mean cost a step as the estimate counts it, batch-all\'s early and later costs beside', () => {
  const costs: Costs = { ...COSTS, step: { contrastive: 0.001, ba: 0.016 }, stepLate: { contrastive: 0.00105, ba: 0.0057 } };
  const ba: TrainingWork = { lossId: 'ba', epochs: 20, batchesPerEpoch: 245, testImages: 0, snapshotImages: 0, retrieval: false };
  const short: TrainingWork = { ...ba, epochs: 1, batchesPerEpoch: 40 };
  const con: TrainingWork = { ...ba, lossId: 'contrastive', epochs: 2, batchesPerEpoch: 50 };
  const e = estimatePlan([ba, short, con], costs, 2);
  // by hand: batch-all 100 x 16 ms + 4800 x 5.7 ms, and 40 x 16 ms, over 4940 steps = 29.6 s / 4940 = 5.99 ms;
  // contrastive 100 steps, none past step 100, at 1 ms (its later cost is never reached)
  assert.ok(Math.abs(e.stepMean!['ba']! - 29.6 / 4940) < 1e-15, String(e.stepMean!['ba']));
  assert.equal(e.stepMean!['contrastive'], 0.001);
  // the figure is the one the estimate sums: its step seconds are the mean times the steps
  const fixedParts = (w: TrainingWork): number => trainingSeconds(w, { ...costs, step: { contrastive: 0, ba: 0 }, stepLate: { contrastive: 0, ba: 0 } });
  const stepSeconds = e.trainingSeconds - [ba, short, con].reduce((a, w) => a + fixedParts(w), 0);
  assert.ok(Math.abs(stepSeconds - (e.stepMean!['ba']! * 4940 + 0.001 * 100)) < 1e-9);
  assert.equal(
    estimateBasis(e),
    'measured here: 1.0 ms a step (contrastive) to 6.0 ms on average (ba: 16.0 ms for the first 100 steps, 5.7 ms after), 10.0 ms of files an epoch; 2 workers',
  );
  // one loss: its mean, and both costs beside it
  assert.equal(
    estimateBasis(estimatePlan([ba], { ...costs, step: { ba: 0.016 }, stepLate: { ba: 0.0057 } }, 1)),
    'measured here: 5.9 ms a step on average (16.0 ms for the first 100 steps, 5.7 ms after), 10.0 ms of files an epoch; 1 worker',
  );
  // a later cost within 10% of the early one is not named: 4900 steps of contrastive at 1 and 1.05 ms
  assert.equal(estimateBasis(estimatePlan([{ ...ba, lossId: 'contrastive' }], { ...costs, step: { contrastive: 0.001 } }, 1)), 'measured here: 1.0 ms a step, 10.0 ms of files an epoch; 1 worker');
});

test('calibrate: the later step cost of a loss whose trainings run past LATE_STEP steps, through several short epochs; none for one whose trainings are shorter', async () => {
  await initBackend('wasm');
  const ds = await loadDataset(data);
  // batch 16 on the 4 training classes: 20 pair batches an epoch, so step 101 is in epoch 6
  const config = resolveConfig({ loss: 'contrastive', batchSize: 16, split: 'classes', epochs: 8 });
  const costs = await calibrate(ds, [{ id: 'long', config, steps: 160 }, { id: 'short', config, steps: 60 }, { id: 'unsaid', config }], 1, 0);
  assert.deepEqual(Object.keys(costs.step).sort(), ['long', 'short', 'unsaid']);
  assert.deepEqual(Object.keys(costs.stepLate ?? {}), ['long']);
  assert.ok(costs.stepLate!['long']! > 0 && Number.isFinite(costs.stepLate!['long']!));
  // a training with too few epochs to reach the step: no later cost, and no hang
  const few = await calibrate(ds, [{ id: 'few', config: { ...config, epochs: 2 }, steps: 500 }], 1, 0);
  assert.deepEqual(Object.keys(few.stepLate ?? {}), []);
});

test('calibrate: a cost for every loss asked, all positive and finite (what it runs is fixed; its values are not asserted)', async () => {
  await initBackend('wasm');
  const ds = await loadDataset(data);
  const { definition: def } = resolveDefinition({ data, losses: 'contrastive:margin=0.5..1,triplet:margin=0.1..0.5;miner=semihard', trials: 1, folds: 2, seeds: 1, epochs: 1, batchSize: 16 }, ds);
  const costs = await calibrate(ds, def.losses.map((l) => ({ id: l.spec.id, config: trainConfig(def, l, undefined, def.split, 0) })), 1, 0.5);
  assert.deepEqual(Object.keys(costs.step).sort(), ['contrastive', 'triplet-semihard']);
  for (const v of [...Object.values(costs.step), costs.evalImage, costs.retrievalPair, costs.epochFiles, costs.setup]) assert.ok(v > 0 && Number.isFinite(v), String(v));
  assert.ok(costs.share > 0 && costs.share <= 1, String(costs.share));
  assert.equal(costs.workerStart, 0.5);
});

test('the plan\'s lines: trainings, the estimate with what it rests on', () => {
  const costs = { ...COSTS, step: { contrastive: 0.00062, 'triplet-semihard': 0.0032 }, epochFiles: 0.0151 };
  const plan: SweepPlan = {
    definition: { losses: [{ space: [{}] }, { space: [{}] }], trials: 30, folds: 2, seeds: 5, trainClasses: [0, 1, 2, 3, 4], testClasses: [5, 6, 7, 8, 9] } as unknown as SweepPlan['definition'],
    trainings: 140,
    finished: 0,
    workers: 2,
    sharedFinals: [],
    notes: ['4 folds on 5 training classes: too few for 4 disjoint groups of 2, so each fold validates on 2 classes and trains on the other 3 (validation pairs {0,1} {2,3} {0,4} {1,2})'],
    estimate: { seconds: 1776, loadedSeconds: 1776, trainingSeconds: 3500, workers: 2, costs },
  };
  assert.equal(
    planText(plan),
    [
      'sweep: 2 losses x (30 trials x 2 folds + 5 tuned + 5 default seeds) = 140 trainings, 0 finished already; training classes 0,1,2,3,4, test classes 5,6,7,8,9',
      'sweep: estimated about 30 min (measured here: 0.62 ms a step (contrastive) to 3.2 ms (triplet-semihard), 15.1 ms of files an epoch; 2 workers; the report not included)',
      'sweep: note: 4 folds on 5 training classes: too few for 4 disjoint groups of 2, so each fold validates on 2 classes and trains on the other 3 (validation pairs {0,1} {2,3} {0,4} {1,2})',
    ].join('\n'),
  );
  // a busy machine: both times, and the share of a core the measurement got
  assert.equal(
    planText({ ...plan, notes: [], estimate: { seconds: 1776, loadedSeconds: 3900, trainingSeconds: 3500, workers: 2, costs: { ...costs, share: 0.454 } } }).split('\n')[1],
    'sweep: estimated about 30 min with the cores to itself, 65 min if the load of the moment lasts (measured here: 0.62 ms a step (contrastive) to 3.2 ms (triplet-semihard), ' +
      '15.1 ms of files an epoch; 2 workers; other programs left the measurement 45% of a core; the report not included)',
  );
  assert.equal(estimateBasis({ ...plan.estimate!, workers: 1, costs: { ...COSTS, step: { contrastive: 0.0005 } } }), 'measured here: 0.50 ms a step, 10.0 ms of files an epoch; 1 worker');
  assert.match(planText({ ...plan, estimate: undefined }), /^sweep: estimated time unknown on 2 workers \(the calibration failed\)$/m);
  assert.match(planText({ ...plan, finished: 140 }), /^sweep: nothing left to train$/m);
});

test('sweep --plan prints the plan and exits 0, writing nothing (no folder, nothing added to an existing one)', () => {
  const args = ['sweep', '--plan', '--data', 'idx', '--data-dir', dataDir, '--trials', '2', '--folds', '2', '--seeds', '1', '--epochs', '1', '--train-pairs', '100', '--workers', '2'];
  const out = join(root, 'plan-out');
  const r = siamese([...args, '--out', out]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^sweep: 2 losses x \(2 trials x 2 folds \+ 1 tuned \+ 1 default seed\) = 12 trainings, 0 finished already; training classes 0,1,2,3, test classes 4,5,6,7$/m);
  assert.match(r.stdout, /^sweep: estimated about \d+ s( with the cores to itself, \d+ s if the load of the moment lasts)? \(measured here: [\d.]+ ms a step \(\S+\) to [\d.]+ ms \(\S+\), [\d.]+ ms of files an epoch; 2 workers; /m);
  assert.equal(existsSync(out), false, 'no output folder');
  const existing = join(root, 'existing');
  mkdirSync(existing);
  writeFileSync(join(existing, 'keep.txt'), 'x');
  const again = siamese([...args, '--out', existing]);
  assert.equal(again.code, 0, again.stderr);
  assert.deepEqual(readdirSync(existing), ['keep.txt']);
});

test('sweep --plan --queue: the plan counts no local workers (0, as the sweep plans it), names the queue without its password and makes no estimate; compare takes no --plan', async () => {
  // no --workers: beside --queue the command refuses it (the fleet's workers train)
  const args = ['--data', 'idx', '--data-dir', dataDir, '--trials', '2', '--folds', '2', '--seeds', '1', '--epochs', '1', '--train-pairs', '100'];
  // nothing listens there: the plan never connects
  const url = 'redis://:secret@127.0.0.1:9';
  const plan = await planSweep({ data, trials: 2, folds: 2, seeds: 1, epochs: 1, trainPairs: 100, workers: 2, out: join(root, 'queue-plan'), queue: { url } });
  assert.equal(plan.workers, 0, 'this machine\'s threads do not train a queue\'s jobs');
  assert.equal(plan.queue, 'redis://127.0.0.1:9');
  assert.equal(plan.estimate, undefined);
  const r = siamese(['sweep', '--plan', ...args, '--queue', url, '--out', join(root, 'queue-plan')]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout.split('\n')[1], 'sweep: on the workers of the queue redis://127.0.0.1:9 (no time estimate: it depends on the fleet)');
  assert.doesNotMatch(r.stdout + r.stderr, /\d+ workers?\b|secret|cores?\b/);
  assert.equal(existsSync(join(root, 'queue-plan')), false, 'no output folder');
  // compare has no plan to print: the option is refused, so nothing about this machine is said either
  const c = siamese(['compare', '--plan', '--queue', url, '--losses', 'contrastive']);
  assert.equal(c.code, 2);
  assert.equal(c.stdout, '');
  assert.equal(c.stderr, "siamese: unknown option '--plan'\n");
});
