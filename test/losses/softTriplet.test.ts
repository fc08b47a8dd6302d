import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createLoss } from '../../src/losses/registry.ts';
import { softMarginTripletLoss } from '../../src/losses/softTriplet.ts';
import { checkTripletLoss } from './gradcheck.ts';

test('soft-margin triplet: tensor = scalar, gradients = finite differences', () => {
  checkTripletLoss(softMarginTripletLoss());
  checkTripletLoss(softMarginTripletLoss({ squared: true }));
});

test('soft-margin triplet: hand values and no overflow', () => {
  const l = softMarginTripletLoss();
  assert.ok(Math.abs(l.value(1, 1) - Math.log(2)) < 1e-15); // log(1 + e^0)
  assert.ok(Math.abs(l.value(0.5, 1.5) - Math.log1p(Math.exp(-1))) < 1e-15);
  assert.ok(Math.abs(l.value(1000, 0) - 1000) < 1e-9); // softplus(x) ≈ x, not Infinity
  assert.ok(l.value(0, 1000) >= 0 && l.value(0, 1000) < 1e-300); // e^-1000 underflows to 0
});

test('registry: soft-triplet', () => {
  const l = createLoss('soft-triplet');
  assert.equal(l.kind, 'triplet');
  assert.equal(l.name, 'soft-triplet');
  assert.equal(createLoss('soft-triplet', { squared: 'true' }).params['squared'], 'true');
});
