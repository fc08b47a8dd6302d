import assert from 'node:assert/strict';
import { test } from 'node:test';
import { UsageError } from '../../src/errors.ts';
import {
  coulombLoss,
  gaussianLoss,
  LENNARD_JONES_CORE,
  lennardJonesLoss,
  powerLoss,
  springLoss,
} from '../../src/losses/potentials.ts';
import { createLoss } from '../../src/losses/registry.ts';
import { CHECK_DISTANCES, checkPairLoss } from './gradcheck.ts';

test('spring: tensor = scalar, gradient = finite differences, hand values', () => {
  checkPairLoss(springLoss());
  checkPairLoss(springLoss({ posMargin: 0.3, negMargin: 1.5 }));
  const s = springLoss();
  // max(0.5 − 0.1, 0)² = 0.16 ; max(1 − 0.5, 0)² = 0.25 ; both zero inside their margins
  assert.ok(Math.abs(s.pos(0.5) - 0.16) < 1e-12);
  assert.equal(s.neg(0.5), 0.25);
  assert.equal(s.pos(0.05), 0);
  assert.equal(s.neg(1.2), 0);
});

test('coulomb: tensor = scalar, gradient = finite differences, guarded at 0', () => {
  checkPairLoss(coulombLoss());
  checkPairLoss(coulombLoss({ charge: 2 }));
  const c = coulombLoss();
  assert.ok(Math.abs(c.neg(0.5) - 0.2) < 1e-12);
  assert.ok(Math.abs(c.neg(0) - 0.1 / 1e-7) < 1e-3); // q / eps
});

test('lennard-jones: tensor = scalar, gradients, zero beyond sigma, linear core', () => {
  const lj = lennardJonesLoss();
  // 1e-3 and 0.01 lie in the linear core (D < 0.1 sigma); 0.2, 0.5, 0.9 on the 12-6 curve
  checkPairLoss(lj, [...CHECK_DISTANCES, 0.2, 0.9]);
  checkPairLoss(lennardJonesLoss({ sigma: 0.5, depth: 0.01 }), [1e-3, 0.3, 0.45, 0.7]);
  // (σ/D)^12 − 2(σ/D)^6 + 1 at D = σ/2: 4096 − 128 + 1
  assert.ok(Math.abs(lj.neg(0.5) - 3969) < 1e-9);
  assert.equal(lj.neg(1), 0);
  assert.equal(lj.neg(3), 0);
  // >= 0 everywhere, decreasing toward sigma, continuous at the core radius
  let prev = Infinity;
  for (let d = 0; d <= 1.5; d += 0.01) {
    const v = lj.neg(d);
    assert.ok(v >= 0 && v <= prev + 1e-9, `V_neg(${d}) = ${v}`);
    prev = v;
  }
  const rc = LENNARD_JONES_CORE;
  assert.ok(Math.abs(lj.neg(rc - 1e-12) - lj.neg(rc + 1e-12)) / lj.neg(rc) < 1e-9);
});

test('gaussian: tensor = scalar, gradient = finite differences, bounded in [0, 1]', () => {
  checkPairLoss(gaussianLoss());
  checkPairLoss(gaussianLoss({ scale: 1.3 }));
  const g = gaussianLoss();
  assert.equal(g.pos(0), 0);
  assert.equal(g.neg(0), 1);
  assert.ok(Math.abs(g.neg(0.5) - Math.exp(-1)) < 1e-15);
});

test('power: tensor = scalar, gradients, steep laws stay finite at 0', () => {
  checkPairLoss(powerLoss());
  checkPairLoss(powerLoss({ p: 3, q: 2, a: 0.01 }));
  checkPairLoss(powerLoss({ p: 0.5, q: 6, a: 1 })); // guarded attraction and a steep repulsion
  checkPairLoss(powerLoss({ p: 1.5, q: 12, a: 1e-6 }), [0.01, 0.5, 1.2]);
  const p = powerLoss();
  assert.equal(p.pos(0.5), 0.25);
  assert.ok(Math.abs(p.neg(0.5) - 0.2) < 1e-12);
});

test('bad parameters are usage errors', () => {
  assert.throws(() => gaussianLoss({ scale: 0 }), UsageError);
  assert.throws(() => lennardJonesLoss({ sigma: -1 }), UsageError);
  assert.throws(() => powerLoss({ q: Number.NaN }), UsageError);
  assert.throws(() => springLoss({ negMargin: -0.5 }), UsageError);
  assert.throws(() => createLoss('power', { q: 'steep' }), UsageError);
});

test('registry: every family by name, with its parameters', () => {
  const cases: [string, Record<string, number | string>, string][] = [
    ['spring', { posMargin: 0.2, negMargin: 2 }, 'spring'],
    ['coulomb', { charge: 0.5 }, 'coulomb'],
    ['lennard-jones', { sigma: 0.8, depth: 0.1 }, 'lennard-jones'],
    ['gaussian', { scale: '0.7' }, 'gaussian'],
    ['power', { p: 3, q: 2, a: 0.5 }, 'power'],
  ];
  for (const [name, params, expected] of cases) {
    const loss = createLoss(name, params);
    assert.equal(loss.kind, 'pair');
    assert.equal(loss.name, expected);
    for (const [k, v] of Object.entries(params)) assert.equal(loss.params[k], Number(v), `${name}.${k}`);
  }
});
