import assert from 'node:assert/strict';
import { test } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import { contrastiveLoss } from '../../src/losses/contrastive.ts';
import { customPotentialLoss } from '../../src/losses/custom.ts';
import { createLoss } from '../../src/losses/registry.ts';
import { yukawaLoss } from '../../src/losses/yukawa.ts';
import { UsageError } from '../../src/errors.ts';
import { checkPairLoss } from './gradcheck.ts';

const D = [0, 1e-9, 1e-3, 0.01, 0.3, 0.5, 0.9, 1.2, 2];

/** perPair of two losses on the same distances and labels, element by element. */
function samePerPair(a: ReturnType<typeof yukawaLoss>, b: ReturnType<typeof yukawaLoss>): void {
  const [va, vb, ga, gb] = tf.tidy(() => {
    const d = tf.tensor1d([...D, ...D]);
    const y = tf.tensor1d([...D.map(() => 1), ...D.map(() => 0)]);
    const f = (l: typeof a) => tf.grad((x) => tf.sum(l.perPair(x as tf.Tensor1D, y) as tf.Tensor1D))(d).dataSync();
    return [(a.perPair(d, y) as tf.Tensor1D).dataSync(), (b.perPair(d, y) as tf.Tensor1D).dataSync(), f(a), f(b)].map((t) => Array.from(t));
  });
  for (let i = 0; i < va!.length; i++) {
    assert.ok(Math.abs(va![i]! - vb![i]!) <= 1e-5 * Math.abs(vb![i]!) + 1e-7, `value ${i}: ${va![i]} vs ${vb![i]}`);
    assert.ok(Math.abs(ga![i]! - gb![i]!) <= 1e-5 * Math.abs(gb![i]!) + 1e-6, `gradient ${i}: ${ga![i]} vs ${gb![i]}`);
  }
}

test('custom formulas reproduce the seed losses, guard included', () => {
  samePerPair(customPotentialLoss({ pos: 'd^3', neg: 'exp(-10*d)/d' }), yukawaLoss());
  samePerPair(customPotentialLoss({ pos: 'd^2', neg: 'max(1 - d, 0)^2' }), contrastiveLoss());
});

test('custom loss: tensor = scalar, gradient = finite differences', () => {
  checkPairLoss(customPotentialLoss({ pos: 'd^3', neg: 'exp(-10*d)/d' }));
  checkPairLoss(customPotentialLoss({ pos: 'log(1 + d^2)', neg: '0.1 * d^-2 * exp(-d)' }));
});

test('custom loss: name, formula and parameters', () => {
  const l = customPotentialLoss({ pos: 'd^2', neg: ' exp(-d) ' });
  assert.equal(l.name, 'custom');
  assert.equal(l.formula, 'Y·(d^2) + (1−Y)·(exp(-d))');
  assert.deepEqual(l.params, { pos: 'd^2', neg: ' exp(-d) ' });
});

test('registry: custom with pos/neg strings; errors say which potential', () => {
  const l = createLoss('custom', { pos: 'd^2', neg: '1/d' });
  assert.equal(l.kind, 'pair');
  if (l.kind === 'pair') assert.equal(l.neg(0.5), 2);
  assert.throws(() => createLoss('custom', { pos: 'd^2' }), /custom loss: the neg potential is missing/);
  assert.throws(() => createLoss('custom', { pos: 'd^2', neg: 3 }), UsageError);
  assert.throws(
    () => createLoss('custom', { pos: 'd^2', neg: 'd +' }),
    (e: unknown) => e instanceof UsageError && /^custom loss, neg potential: expression "d \+": .* at column 4/.test(e.message),
  );
});
