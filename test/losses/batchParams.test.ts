/**
 * The batch losses' scale parameters (a temperature, alpha, beta, gamma, scale) divide or
 * multiply every logit: at 0 the loss is NaN or infinite, below 0 the objective turns round
 * (positives pushed apart, negatives pulled together) without any sign of it. They are refused
 * when the loss is made, in one line, as the pair losses refuse theirs; margins and the
 * multi-similarity base take any finite value (negative margins are used in the literature).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { UsageError } from '../../src/errors.ts';
import { parseSweepSpec } from '../../src/experiments/searchSpec.ts';
import { createLoss, lossOnBatch } from '../../src/losses/registry.ts';

const SCALES: [string, string][] = [
  ['multi-similarity', 'alpha'],
  ['multi-similarity', 'beta'],
  ['nt-xent', 'temperature'],
  ['supcon', 'temperature'],
  ['circle', 'gamma'],
  ['arcface', 'scale'],
  ['cosface', 'scale'],
  ['proxy-anchor', 'alpha'],
];

// anchors 0 and 1 of class 0 close together, 2 and 3 of class 1 close together, the classes apart
const E = Float32Array.of(1, 0, 0.8, 0.6, 0, 1, -0.6, 0.8);
const Y = Int32Array.of(0, 0, 1, 1);

for (const [loss, key] of SCALES) {
  test(`${loss}: ${key} must be > 0 (0 and negative values refused in one line)`, () => {
    for (const v of [0, -1, -0.07]) {
      assert.throws(
        () => createLoss(loss, { [key]: v }),
        (e: Error) => e instanceof UsageError && e.message === `${loss} loss: ${key} must be a number > 0, got ${v}`,
        `${key}=${v}`,
      );
      assert.throws(() => lossOnBatch(`${loss}:${key}=${v}`, E, Y, 2), UsageError);
    }
    // a positive value still works, and gives a finite loss
    assert.ok(Number.isFinite(lossOnBatch(`${loss}:${key}=0.5`, E, Y, 2).loss));
  });
}

test('margins and the multi-similarity base stay free (any finite value, negative included)', () => {
  for (const spec of ['multi-similarity:base=-0.5', 'circle:m=-0.1', 'arcface:margin=-10', 'cosface:margin=-0.2', 'proxy-anchor:margin=-0.1']) {
    assert.ok(Number.isFinite(lossOnBatch(spec, E, Y, 2).loss), spec);
  }
});

test('a sweep range reaching 0 or below is refused before any training, naming the parameter', () => {
  assert.throws(() => parseSweepSpec('nt-xent:temperature=0..0.5'), (e: Error) => e instanceof UsageError && /temperature must be a number > 0, got 0/.test(e.message));
  assert.throws(() => parseSweepSpec('circle:gamma=-10..80'), (e: Error) => e instanceof UsageError && /gamma must be a number > 0, got -10/.test(e.message));
});

test('hand-computed: before the check, a negative temperature reversed nt-xent (kept out now)', () => {
  // the batch above: with τ > 0 the loss is small (positives closer than negatives); −τ would
  // rank the negatives first. At τ = 0.5, anchor 0: s_01 = 0.8, negatives s_02 = 0, s_03 = −0.6
  const t = 0.5;
  const a0 = Math.log(1 + (Math.exp(0) + Math.exp(-0.6 / t)) / Math.exp(0.8 / t));
  // anchor 1: s_10 = 0.8, s_12 = 0.6, s_13 = 0; anchor 2: s_23 = 0.8, s_20 = 0, s_21 = 0.6; anchor 3: s_32 = 0.8, s_30 = −0.6, s_31 = 0
  const a1 = Math.log(1 + (Math.exp(0.6 / t) + Math.exp(0)) / Math.exp(0.8 / t));
  const expected = (a0 + a1 + a1 + a0) / 4;
  const got = lossOnBatch(`nt-xent:temperature=${t}`, E, Y, 2).loss;
  assert.ok(Math.abs(got - expected) < 1e-6, `got ${got}, expected ${expected}`);
});

test('the formula `siamese losses` prints names the reduction PML 2.9 applies by default', () => {
  // MeanReducer over anchors (multi-similarity), over positive pairs (nt-xent); AvgNonZeroReducer
  // over anchors (supcon, circle: anchors without a positive or a negative have loss 0, not counted)
  const reducer: [string, RegExp][] = [
    ['multi-similarity', /^mean over anchors: /],
    ['nt-xent', /^mean over positive pairs: /],
    ['supcon', /^mean over anchors with loss > 0: /],
    ['circle', /^mean over anchors with loss > 0: /],
  ];
  for (const [name, re] of reducer) assert.match(createLoss(name).formula, re, name);
});

test('a parameter given with no value is refused in one line, never read as 0 (lossOnBatch, --param, createLoss)', () => {
  // Number('') is 0: "cosface:margin=" trained a cosface without margin, silently
  for (const spec of ['cosface:margin=', 'cosface:margin= ', 'proxy-anchor:margin=;alpha=32', 'multi-similarity:base=']) {
    assert.throws(
      () => lossOnBatch(spec, E, Y, 2),
      (e: Error) => e instanceof UsageError && /^loss parameter (margin|base) has no value$/.test(e.message),
      spec,
    );
  }
  assert.throws(() => createLoss('contrastive', { margin: '' }), (e: Error) => e instanceof UsageError && e.message === 'loss parameter margin has no value');
  assert.throws(() => createLoss('arcface', { 'proxy-lr': ' ' }), (e: Error) => e instanceof UsageError && e.message === 'loss parameter proxy-lr has no value');
});

test('lossOnBatch refuses a parameter given twice (the last one won, silently) and an empty spec body', () => {
  assert.throws(
    () => lossOnBatch('multi-similarity:alpha=1;alpha=3', E, Y, 2),
    (e: Error) => e instanceof UsageError && e.message === 'loss spec "multi-similarity:alpha=1;alpha=3": alpha is given twice',
  );
  assert.throws(
    () => lossOnBatch('multi-similarity:', E, Y, 2),
    (e: Error) => e instanceof UsageError && e.message === 'loss spec "multi-similarity:": nothing after ":"; expected KEY=VALUE',
  );
  // the same values once each still work, and equal the defaults where they are the defaults
  assert.equal(lossOnBatch('multi-similarity:alpha=2;beta=50;base=0.5', E, Y, 2).loss, lossOnBatch('multi-similarity', E, Y, 2).loss);
});

test('lossOnBatch: a key named like an Object member is an unknown parameter, not ignored', () => {
  for (const key of ['__proto__', 'constructor', 'toString']) {
    assert.throws(() => lossOnBatch(`multi-similarity:${key}=1`, E, Y, 2), (e: Error) => e instanceof UsageError && e.message.startsWith(`loss multi-similarity has no parameter "${key}"`), key);
  }
});

test('lossOnBatch: an option it does not know, or class weights for a loss without them, is refused (they were ignored: a typo computed the loss on default weights)', () => {
  const W = Float32Array.of(1, 0, 0, 1);
  // "weigths" made arcface start from its own seed-0 weights without a word
  assert.throws(
    () => lossOnBatch('arcface', E, Y, 2, { weigths: W } as unknown as { weights?: Float32Array }),
    (e: Error) => e instanceof UsageError && e.message === 'lossOnBatch: unknown option "weigths" (the options are: weights)',
  );
  for (const name of ['multi-similarity', 'nt-xent', 'supcon', 'circle']) {
    assert.throws(
      () => lossOnBatch(name, E, Y, 2, { weights: W }),
      (e: Error) => e instanceof UsageError && e.message === `lossOnBatch: loss ${name} has no class weights; only arcface, cosface and proxy-anchor take opts.weights`,
      name,
    );
    // undefined weights (a spread of optional settings) stay allowed
    assert.equal(lossOnBatch(name, E, Y, 2, { weights: undefined }).loss, lossOnBatch(name, E, Y, 2).loss, name);
  }
  assert.ok(Number.isFinite(lossOnBatch('arcface', E, Y, 2, { weights: W }).loss));
});

test('lossOnBatch: a dim that is not a number says what it got', () => {
  assert.throws(() => lossOnBatch('nt-xent', E, Y, '2' as unknown as number), (e: Error) => e instanceof UsageError && e.message === 'nt-xent: dim must be a positive integer, got "2" (a string)');
  assert.throws(() => lossOnBatch('nt-xent', E, Y, 2.5), (e: Error) => e instanceof UsageError && e.message === 'nt-xent: dim must be a positive integer, got 2.5');
});
