/**
 * The time `sweep` announces before it starts: every loss of the sweep is timed, not only the
 * first (mined and batch losses cost many times a pair loss per batch, and a plan that timed
 * contrastive alone announced 29 minutes for a sweep that took hours).
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { loadDataset } from '../../src/data/registry.ts';
import { estimateSeconds, estimateTotal, resolveDefinition, trainConfig } from '../../src/experiments/sweep.ts';
import { Training } from '../../src/train/trainer.ts';
import { writeBandsIdx } from '../data/datasets.ts';

const root = mkdtempSync(join(tmpdir(), 'siamese-estimate-'));
after(() => rmSync(root, { recursive: true, force: true }));

test('estimateTotal: each loss its own trainings, batches and batch time, plus an evaluation per training, over the workers', () => {
  const losses = [
    { id: 'a', trainings: 2, batchesPerEpoch: 10, secondsPerBatch: 0.01 },
    { id: 'b', trainings: 3, batchesPerEpoch: 4, secondsPerBatch: 0.5 },
  ];
  // by hand: a: 2 x (5 x 10 x 0.01 + 1) = 3; b: 3 x (5 x 4 x 0.5 + 1) = 33; (3 + 33) / 2 workers
  assert.equal(estimateTotal(losses, 5, 1, 2), 18);
  assert.equal(estimateTotal([], 5, 1, 2), 0);
});

test('estimateSeconds times every loss that has trainings to run, with that loss\'s own batches per epoch', async () => {
  writeBandsIdx(root);
  const ds = await loadDataset({ name: 'idx', dir: root });
  const { definition } = resolveDefinition(
    { data: { name: 'idx', dir: root }, losses: 'contrastive:margin=0.5..1,multi-similarity:alpha=1..4,triplet:margin=0.1..0.5;miner=semihard', trials: 2, folds: 2, seeds: 1, epochs: 2, trainPairs: 120 },
    ds,
  );
  const counts = new Map([
    ['contrastive', 4],
    ['multi-similarity', 3],
  ]);
  const e = await estimateSeconds(definition, ds, counts, 2);
  assert.ok(e, 'an estimate');
  assert.deepEqual(
    e.losses.map((l) => [l.id, l.trainings]),
    [
      ['contrastive', 4],
      ['multi-similarity', 3],
    ],
    'the two losses with trainings to run, and not triplet, which has none',
  );
  for (const l of e.losses) {
    const def = definition.losses.find((x) => x.spec.id === l.id)!;
    // the oracle: a fresh Training of that loss reports its own batch count in its first callback
    const t = new Training(ds, { ...trainConfig(definition, def, undefined, definition.split, 0), threads: 1 });
    let batches = 0;
    const stop = new AbortController();
    t.runEpoch((info) => { batches = info.batches; stop.abort(); }, { signal: stop.signal });
    t.dispose();
    assert.equal(l.batchesPerEpoch, batches, `${l.id}: batches per epoch`);
    assert.ok(l.secondsPerBatch > 0 && Number.isFinite(l.secondsPerBatch));
  }
});
