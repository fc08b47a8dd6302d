/**
 * How an epoch ends: a batch callback's return value never stops it (the README's loop), an
 * AbortSignal does, the async epoch gives the event loop its turns and trains bit for bit as the
 * synchronous one, and a collapsed, exploding or NaN-started network is reported as such.
 */
import assert from 'node:assert/strict';
import { before, test } from 'node:test';
import { initBackend } from '../../src/engine/backend.ts';
import { DataError, UsageError } from '../../src/errors.ts';
import { resolveConfig, type TrainConfig } from '../../src/train/config.ts';
import { type BatchInfo, DivergenceError, Training } from '../../src/train/trainer.ts';
import { syntheticDataset } from '../engine/synthetic.ts';

before(async () => {
  await initBackend('wasm');
});

const ds = syntheticDataset(400, 200);
const config = (extra: Partial<TrainConfig> = {}): TrainConfig =>
  resolveConfig({ loss: 'yukawa', epochs: 2, trainPairs: 640, testPairs: 300, batchSize: 64, seed: 3, ...extra });

test("the README's loop ends: a callback returning false (or anything) does not stop the epoch", () => {
  const run = new Training(ds, config());
  let calls = 0;
  let rounds = 0;
  // the README's callback, as printed: false at every batch whose number is not a multiple of 100
  const readme = (b: BatchInfo) => b.batch % 100 === 0 && console.log(b.loss);
  while (run.epoch < run.config.epochs) {
    assert.ok(++rounds <= 2, 'the loop must end after epochs rounds');
    const log = run.runEpoch((b) => {
      calls++;
      return readme(b);
    });
    assert.ok(log, 'an epoch with a falsy callback returns its log');
    assert.equal(log.epoch, rounds);
  }
  assert.equal(run.epoch, 2);
  assert.equal(calls, 2 * Math.ceil(640 / 64));
  run.dispose();
});

test('an AbortSignal stops the epoch after the batch in progress; the half epoch must be restored before going on', () => {
  const a = new Training(ds, config());
  const saved = a.getState();
  const ac = new AbortController();
  let seen = 0;
  const log = a.runEpoch(
    (b) => {
      seen = b.batch;
      if (b.batch === 3) ac.abort();
    },
    { signal: ac.signal },
  );
  assert.equal(log, null);
  assert.equal(seen, 3, 'no batch after the abort');
  assert.equal(a.epoch, 0);
  assert.throws(() => a.runEpoch(), UsageError, 'a half-trained epoch cannot silently go on');
  assert.throws(() => a.getState(), UsageError, 'nor be saved as a checkpoint');
  // restored, it trains exactly as a fresh run
  a.setState(saved);
  const la = a.runEpoch()!;
  const b = new Training(ds, config());
  const lb = b.runEpoch()!;
  assert.equal(la.loss, lb.loss);
  a.getWeights().forEach((w, i) => assert.deepEqual(w.data, b.getWeights()[i]!.data));
  // a signal aborted before the epoch leaves no trace at all
  const before = JSON.stringify(b.getState().rng);
  assert.equal(b.runEpoch(undefined, { signal: AbortSignal.abort() }), null);
  assert.equal(JSON.stringify(b.getState().rng), before);
  assert.equal(b.epoch, 1);
  a.dispose();
  b.dispose();
});

test('runEpochAsync lets timers and handlers run between batches and trains bit-identically', async () => {
  const sync = new Training(ds, config());
  const async_ = new Training(ds, config());
  const syncLosses: number[] = [];
  const asyncLosses: number[] = [];
  let turns = 0;
  for (let e = 0; e < 2; e++) {
    sync.runEpoch((b) => void syncLosses.push(b.loss));
    // count the event-loop turns the epoch gives: yieldEveryMs 0 = after every batch
    const ticker = setInterval(() => turns++, 0);
    await async_.runEpochAsync((b) => void asyncLosses.push(b.loss), { yieldEveryMs: 0 });
    clearInterval(ticker);
  }
  assert.ok(turns > 0, 'the event loop ran during the epochs');
  assert.deepEqual(asyncLosses, syncLosses);
  assert.deepEqual(
    async_.history.map((h) => [h.loss, h.testAccuracy]),
    sync.history.map((h) => [h.loss, h.testAccuracy]),
  );
  sync.getWeights().forEach((w, i) => assert.deepEqual(async_.getWeights()[i]!.data, w.data));

  // a handler that runs during the epoch (here an immediate, as a signal handler would) stops it at the next batch
  const t = new Training(ds, config());
  const ac = new AbortController();
  setImmediate(() => ac.abort());
  let batches = 0;
  const log = await t.runEpochAsync(() => void batches++, { signal: ac.signal, yieldEveryMs: 0 });
  assert.equal(log, null);
  assert.equal(batches, 1, 'stopped right after the first batch');
  sync.dispose();
  async_.dispose();
  t.dispose();
});

test('a collapsed network (every embedding the same point) stops training with a collapse error', () => {
  // all-zero weights: every image embeds to 0, and the gradients through the dead ReLUs are 0 too
  const probe = new Training(ds, config());
  const zeros = probe.getWeights().map((w) => ({ ...w, data: new Float32Array(w.data.length) }));
  probe.dispose();
  const t = new Training(ds, config({ loss: 'contrastive' }), zeros);
  assert.throws(
    () => t.runEpoch(),
    (e: unknown) => e instanceof DivergenceError && e.kind === 'collapsed' && e.epoch === 1 && /every test image embeds to the same point/.test(e.message),
  );
  assert.equal(t.epoch, 0, 'the collapsed epoch is not kept');
  assert.equal(t.history.length, 0);
  t.dispose();
});

test('a loss that explodes by orders of magnitude without NaN stops training', () => {
  // contrastive at a learning rate of 10: the loss jumps from about 1 to over 1e9 within a few
  // batches while staying finite (then the ReLUs die and every embedding is 0)
  const t = new Training(ds, config({ loss: 'contrastive', learningRate: 10 }));
  assert.throws(
    () => t.runEpoch(),
    (e: unknown) => e instanceof DivergenceError && e.kind === 'exploding' && e.learningRate === 10 && /loss exploded to .* at epoch 1, batch \d+/.test(e.message),
  );
  t.dispose();
});

test('NaN in the weights a training starts from is reported as bad input, not as a divergence', () => {
  const probe = new Training(ds, config());
  const w = probe.getWeights();
  probe.dispose();
  w[2]!.data[5] = Number.NaN;
  assert.throws(
    () => new Training(ds, config(), w),
    (e: unknown) => e instanceof DataError && /initial weights hold 1 NaN or Inf values \(first in dense_2\.kernel\)/.test((e as Error).message),
  );
  const t = new Training(ds, config());
  const s = t.getState();
  s.weights[0]!.data[0] = Number.POSITIVE_INFINITY;
  assert.throws(() => t.setState(s), (e: unknown) => e instanceof DataError && /saved state hold 1 NaN or Inf/.test((e as Error).message));
  t.dispose();
});
