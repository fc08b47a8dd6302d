import assert from 'node:assert/strict';
import { test } from 'node:test';
import { UsageError } from '../../src/errors.ts';
import { canonicalSpec, parseLossList, parseLossSpec } from '../../src/experiments/lossSpec.ts';

test('plain names', () => {
  const specs = parseLossList('contrastive,yukawa,triplet');
  assert.deepEqual(
    specs.map((s) => [s.id, s.loss, s.label, s.params, s.miner]),
    [
      ['contrastive', 'contrastive', 'contrastive', {}, undefined],
      ['yukawa', 'yukawa', 'yukawa', {}, undefined],
      ['triplet', 'triplet', 'triplet', {}, undefined],
    ],
  );
  assert.equal(parseLossList(' Contrastive , YUKAWA ')[1]!.loss, 'yukawa');
});

test('parameters become numbers where the loss takes numbers', () => {
  const s = parseLossSpec('yukawa:kappa=5; power = 2');
  assert.deepEqual(s.params, { kappa: 5, power: 2 });
  assert.equal(s.id, 'yukawa-kappa5-power2');
  assert.equal(s.label, 'yukawa (kappa=5, power=2)');
  assert.equal(canonicalSpec(s), 'yukawa:kappa=5;power=2');
  assert.deepEqual(parseLossSpec('triplet:squared=false').params, { squared: 'false' });
});

test('custom formulas keep their text, commas inside parentheses included', () => {
  const specs = parseLossList('contrastive,custom:pos=d^3;neg=exp(-10*d)/d,custom:pos=max(d, 0.5)^2;neg=exp(-d);id=clamped');
  assert.equal(specs.length, 3);
  assert.deepEqual(specs[1]!.params, { pos: 'd^3', neg: 'exp(-10*d)/d' });
  assert.match(specs[1]!.id, /^custom-[0-9a-f]{8}$/);
  assert.equal(specs[1]!.label, 'custom (pos=d^3, neg=exp(-10*d)/d)');
  assert.deepEqual(specs[2]!.params, { pos: 'max(d, 0.5)^2', neg: 'exp(-d)' });
  assert.equal(specs[2]!.id, 'clamped');
  assert.equal(specs[2]!.label, 'clamped');
  // the same formulas always give the same id (run directories survive a rerun)
  assert.equal(parseLossSpec('custom:pos=d^3;neg=exp(-10*d)/d').id, specs[1]!.id);
});

test('miners and ids', () => {
  const s = parseLossSpec('triplet:margin=0.2;miner=batch-hard');
  assert.equal(s.miner, 'batch-hard');
  assert.equal(s.id, 'triplet-margin0.2-batch-hard');
  assert.equal(s.label, 'triplet (margin=0.2) + batch-hard');
  assert.equal(parseLossSpec('contrastive:miner=hard-negative').miner, 'hard-negative');
  assert.equal(parseLossSpec('contrastive:margin=2;id=wide').id, 'wide');
  assert.equal(canonicalSpec(parseLossSpec('contrastive:margin=2;id=wide')), 'contrastive:margin=2;id=wide');
});

test('invalid specs are one-line usage errors', () => {
  const bad: [string, RegExp][] = [
    ['', /no losses given/],
    ['contrastive,,yukawa', /entry 2 is empty/],
    ['nope', /unknown loss "nope"/],
    ['yukawa:', /nothing after ":"/],
    ['yukawa:kappa', /is not KEY=VALUE/],
    ['yukawa:kappa=', /kappa has no value/],
    ['yukawa:kappa=1;kappa=2', /kappa is given twice/],
    ['yukawa:kapa=3', /no parameter "kapa" \(its parameters: kappa, power, epsilon/],
    ['yukawa:kappa=abc', /must be a number/],
    ['custom:pos=d^2', /neg potential is missing/],
    ['custom:pos=d^2;neg=exp(', /neg potential/],
    ['contrastive:miner=batch-hard', /yields triplets, but loss contrastive is a pair loss/],
    ['triplet:miner=hard-negative', /yields pairs/],
    ['triplet:miner=greedy', /unknown miner "greedy"/],
    ['contrastive:id=a b', /id "a b" must be/],
    ['yukawa,yukawa', /listed twice/],
    ['yukawa,contrastive:id=yukawa', /two entries have the id "yukawa"/],
    ['yu kawa', /not a loss name/],
  ];
  for (const [text, re] of bad) {
    assert.throws(
      () => parseLossList(text),
      (e: unknown) => e instanceof UsageError && re.test(e.message) && !e.message.includes('\n'),
      `"${text}" should fail with ${re}`,
    );
  }
});
