import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DataError } from '../../src/errors.ts';
import {
  bestThreshold,
  distanceStats,
  equalErrorRate,
  pairAccuracy,
  pairMetrics,
  rocAuc,
} from '../../src/eval/pairs.ts';
import { Rng } from '../../src/rng.ts';

const near = (a: number, b: number, tol = 1e-6): void => assert.ok(Math.abs(a - b) <= tol, `${a} vs ${b}`);

// positives 0.1, 0.2, 0.6 ; negatives 0.4, 0.7, 0.3
const d = Float32Array.from([0.1, 0.2, 0.6, 0.4, 0.7, 0.3]);
const y = Uint8Array.from([1, 1, 1, 0, 0, 0]);

test('hand example: accuracy, best threshold, AUC, EER', () => {
  // D < 0.5 predicts [1,1,0,1,0,1] against [1,1,1,0,0,0]: right at 0, 1, 4 → 3/6
  assert.equal(pairAccuracy(d, y), 0.5);
  // sorted: .1P .2P .3N .4N .6P .7N; best split after .2: 2 positives below + 3 negatives above
  const best = bestThreshold(d, y);
  near(best.threshold, 0.25);
  assert.equal(best.accuracy, 5 / 6);
  assert.equal(pairAccuracy(d, y, best.threshold), best.accuracy);
  // P(D_pos < D_neg): .1 beats 3, .2 beats 3, .6 beats only .7 → 7 of 9
  assert.equal(rocAuc(d, y), 7 / 9);
  // splits: (FAR, FRR) = (0,1) (0,2/3) (0,1/3) (1/3,1/3) ...: they meet at 1/3, between .3 and .4
  const eer = equalErrorRate(d, y);
  near(eer.eer, 1 / 3, 1e-12);
  near(eer.threshold, 0.35);
});

test('hand example: distance statistics, population std, the D < 0.4 view', () => {
  const s = distanceStats(d, y);
  // positives: mean 0.3, variance (0.04 + 0.01 + 0.09)/3
  assert.equal(s.pos.n, 3);
  near(s.pos.mean, 0.3);
  near(s.pos.std, Math.sqrt(0.14 / 3));
  // negatives: mean 1.4/3, deviations −0.2/3, 0.7/3, −0.5/3 → variance (0.04 + 0.49 + 0.25)/9/3
  near(s.neg.mean, 1.4 / 3);
  near(s.neg.std, Math.sqrt(0.78 / 27));
  // positives below 0.4: 0.1 and 0.2 → mean 0.15, std 0.05
  assert.equal(s.posBelow04.n, 2);
  near(s.posBelow04.mean, 0.15);
  near(s.posBelow04.std, 0.05);
});

test('ties, perfect separation and missing classes', () => {
  assert.equal(rocAuc(Float32Array.from([0.5, 0.5]), Uint8Array.from([1, 0])), 0.5);
  const sep = Float32Array.from([0.1, 0.2, 0.8, 0.9]);
  const sy = Uint8Array.from([1, 1, 0, 0]);
  assert.equal(rocAuc(sep, sy), 1);
  assert.deepEqual(equalErrorRate(sep, sy), { eer: 0, threshold: bestThreshold(sep, sy).threshold });
  assert.equal(bestThreshold(sep, sy).accuracy, 1);
  // reversed: positives far → AUC 0
  assert.equal(rocAuc(sep, Uint8Array.from([0, 0, 1, 1])), 0);
  const onlyPos = Uint8Array.from([1, 1, 1, 1]);
  assert.ok(Number.isNaN(rocAuc(sep, onlyPos)));
  assert.ok(Number.isNaN(equalErrorRate(sep, onlyPos).eer));
  assert.ok(Number.isNaN(distanceStats(sep, onlyPos).neg.mean));
  assert.equal(distanceStats(sep, onlyPos).neg.n, 0);
  assert.ok(Number.isNaN(pairAccuracy(new Float32Array(0), new Uint8Array(0))));
});

test('bad input is a DataError', () => {
  assert.throws(() => pairAccuracy(d, Uint8Array.from([1])), DataError);
  assert.throws(() => rocAuc(Float32Array.from([Number.NaN]), Uint8Array.from([1])), DataError);
  assert.throws(() => rocAuc(Float32Array.from([1]), Uint8Array.from([2])), DataError);
});

test('random data against brute force', () => {
  const rng = new Rng(7);
  for (let trial = 0; trial < 5; trial++) {
    const n = 60 + rng.int(40);
    const dd = new Float32Array(n);
    const yy = new Uint8Array(n);
    for (let i = 0; i < n; i++) {
      yy[i] = rng.int(2);
      // positives nearer on average; rounding to 0.05 makes ties
      dd[i] = Math.round((rng.next() + (yy[i] ? 0 : 0.4)) * 20) / 20;
    }
    // AUC over all positive-negative pairs
    let wins = 0;
    let np = 0;
    let nn = 0;
    for (let i = 0; i < n; i++) {
      if (yy[i]) np++;
      else nn++;
      for (let j = 0; j < n; j++) {
        if (yy[i] === 1 && yy[j] === 0) wins += dd[i]! < dd[j]! ? 1 : dd[i] === dd[j] ? 0.5 : 0;
      }
    }
    near(rocAuc(dd, yy), wins / (np * nn), 1e-12);
    // best accuracy over every threshold that can matter: each distance, and above all
    let bestAcc = 0;
    for (const t of [...dd, Infinity]) bestAcc = Math.max(bestAcc, pairAccuracy(dd, yy, t));
    const best = bestThreshold(dd, yy);
    near(best.accuracy, bestAcc, 1e-12);
    assert.equal(pairAccuracy(dd, yy, best.threshold), best.accuracy);
    // EER: no threshold does better on max(FAR, FRR); the crossing is within one step of it
    let minMax = 1;
    for (const t of [...dd, Infinity]) {
      let fa = 0;
      let fr = 0;
      for (let i = 0; i < n; i++) {
        if (yy[i] === 0 && dd[i]! < t) fa++;
        if (yy[i] === 1 && dd[i]! >= t) fr++;
      }
      minMax = Math.min(minMax, Math.max(fa / nn, fr / np));
    }
    const e = equalErrorRate(dd, yy);
    assert.ok(e.eer <= minMax + 1e-12, `eer ${e.eer} above ${minMax}`);
    // a group of tied distances moves a rate by at most its size
    const maxGroup = Math.max(...[...new Set(dd)].map((v) => dd.filter((x) => x === v).length));
    assert.ok(e.eer >= minMax - maxGroup / Math.min(np, nn), `eer ${e.eer} far below ${minMax}`);
  }
});

test('pairMetrics gathers everything', () => {
  const m = pairMetrics(d, y);
  assert.equal(m.n, 6);
  assert.equal(m.threshold, 0.5);
  assert.equal(m.accuracy, 0.5);
  assert.equal(m.auc, 7 / 9);
  assert.deepEqual(m.best, bestThreshold(d, y));
  assert.deepEqual(m.eer, equalErrorRate(d, y));
  assert.deepEqual(m.stats, distanceStats(d, y));
  assert.equal(pairMetrics(d, y, 0.25).accuracy, 5 / 6);
});
