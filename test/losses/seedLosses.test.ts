import assert from 'node:assert/strict';
import { test } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import { contrastiveLoss } from '../../src/losses/contrastive.ts';
import { createLoss } from '../../src/losses/registry.ts';
import { tripletLoss } from '../../src/losses/triplet.ts';
import { yukawaLoss } from '../../src/losses/yukawa.ts';
import { checkPairLoss, checkTripletLoss } from './gradcheck.ts';

// The seed's losses (as its code defines them): tensor form = scalar form, gradients = finite differences.

test('contrastive: tensor = scalar, gradient = finite differences, finite at 0', () => {
  checkPairLoss(contrastiveLoss());
  checkPairLoss(contrastiveLoss({ margin: 2 }));
});

test('yukawa: tensor = scalar, gradient = finite differences, finite at 0 (the 1/D guard)', () => {
  checkPairLoss(yukawaLoss());
  checkPairLoss(yukawaLoss({ kappa: 2, power: 2 }));
  // the seed's numbers: neg(D) = exp(-10 D)/max(D, 1e-7)
  const y = yukawaLoss();
  assert.equal(y.neg(0), 1e7);
  assert.ok(Math.abs(y.neg(0.5) - Math.exp(-5) / 0.5) < 1e-15);
});

test('triplet (squared, the seed form) and triplet-plain', () => {
  checkTripletLoss(tripletLoss());
  const plain = createLoss('triplet-plain');
  assert.equal(plain.kind, 'triplet');
  if (plain.kind !== 'triplet') return;
  assert.equal(plain.params['squared'], 'false');
  checkTripletLoss(plain);
  // hand values: max(0.5² − 1.2² + 0.85, 0) = 0; max(1.2 − 0.5 + 0.85, 0) = 1.55
  assert.equal(tripletLoss().value(0.5, 1.2), 0);
  assert.ok(Math.abs(plain.value(1.2, 0.5) - 1.55) < 1e-12);
});

test('the loss tensors do not accumulate over repeated steps', () => {
  const loss = yukawaLoss();
  const d = tf.tensor1d([0, 0.3, 1]);
  const y = tf.tensor1d([1, 0, 0]);
  const before = tf.memory().numTensors;
  for (let i = 0; i < 20; i++) tf.tidy(() => { tf.mean(loss.perPair(d, y) as tf.Tensor1D); });
  assert.equal(tf.memory().numTensors, before);
  tf.dispose([d, y]);
});
