/**
 * The seed's pair losses refuse the parameter values their formulas cannot mean: a contrastive
 * margin <= 0 makes max(m - D, 0) zero for every distance (negatives never pushed apart, every
 * pair collapses), a Yukawa power <= 0 pushes positives apart, a negative kappa turns the
 * screening exp(-kappa D) into growth. One line (UsageError) when the loss is made, and before any
 * training in a sweep range.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../../src/engine/backend.ts';
import { UsageError } from '../../src/errors.ts';
import { parseSweepSpec } from '../../src/experiments/searchSpec.ts';
import { createLoss } from '../../src/losses/registry.ts';
import type { PairLoss } from '../../src/losses/types.ts';

const refused = (name: string, params: Record<string, number>, message: RegExp): void => {
  assert.throws(() => createLoss(name, params), (e: Error) => e instanceof UsageError && message.test(e.message), `${name} ${JSON.stringify(params)}`);
};

test('contrastive margin <= 0 and Yukawa power <= 0, kappa < 0, epsilon <= 0 are refused in one line', () => {
  refused('contrastive', { margin: 0 }, /^contrastive loss: margin must be a number > 0, got 0$/);
  refused('contrastive', { margin: -1 }, /margin must be a number > 0, got -1/);
  refused('yukawa', { power: 0 }, /^yukawa loss: power must be a number > 0, got 0$/);
  refused('yukawa', { power: -2 }, /power must be a number > 0/);
  refused('yukawa', { kappa: -1 }, /^yukawa loss: kappa must be a number >= 0, got -1$/);
  refused('yukawa', { epsilon: 0 }, /epsilon must be a number > 0/);
});

test('the allowed edges still give the hand-computed values: kappa 0 is 1/D, margin 0.5 and power 1', async () => {
  await initBackend();
  const d = tf.tensor1d([0.25, 0.25, 2]);
  const y = tf.tensor1d([0, 1, 0]);
  const yk = createLoss('yukawa', { kappa: 0, power: 1 }) as PairLoss;
  // negative at D = 0.25: exp(0)/0.25 = 4; positive at 0.25: 0.25^1; negative at 2: 1/2
  assert.deepEqual(Array.from((yk.perPair(d, y) as tf.Tensor1D).dataSync()).map((v) => Math.round(v * 1e6) / 1e6), [4, 0.25, 0.5]);
  const c = createLoss('contrastive', { margin: 0.5 }) as PairLoss;
  // negative at 0.25: (0.5 - 0.25)^2; positive: 0.25^2; negative at 2: 0
  assert.deepEqual(Array.from((c.perPair(d, y) as tf.Tensor1D).dataSync()).map((v) => Math.round(v * 1e6) / 1e6), [0.0625, 0.0625, 0]);
});

test('a sweep range reaching a refused value is refused before any training, naming the parameter', () => {
  assert.throws(() => parseSweepSpec('contrastive:margin=0..2'), (e: Error) => e instanceof UsageError && /margin must be a number > 0, got 0/.test(e.message));
  assert.throws(() => parseSweepSpec('yukawa:kappa=1..40:log;power=0..4'), (e: Error) => e instanceof UsageError && /power must be a number > 0, got 0/.test(e.message));
  assert.equal(parseSweepSpec('yukawa:kappa=0..40;power=1..4').space.length, 2);
});
