/** Search-space specs of sweep: ranges, flags, fixed values, lr; bad specs refused with one line. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { UsageError } from '../../src/errors.ts';
import { parseSweepList, parseSweepSpec, trialSettings } from '../../src/experiments/searchSpec.ts';

test('ranges, :log, :int, fixed values and lr', () => {
  const c = parseSweepSpec('contrastive:margin=0.2..2');
  assert.equal(c.spec.id, 'contrastive');
  assert.deepEqual(c.spec.params, {});
  assert.deepEqual(c.space, [{ name: 'margin', lo: 0.2, hi: 2, log: false, int: false }]);

  const y = parseSweepSpec(' yukawa : kappa = 1 .. 40 : log ; power=1..4:int; lr=1e-4..1e-2:log ');
  assert.deepEqual(y.space, [
    { name: 'kappa', lo: 1, hi: 40, log: true, int: false },
    { name: 'power', lo: 1, hi: 4, log: false, int: true },
    { name: 'lr', lo: 1e-4, hi: 1e-2, log: true, int: false },
  ]);
  assert.equal(y.learningRate, undefined);
  assert.deepEqual(trialSettings(y, { kappa: 3.5, power: 2, lr: 0.001 }), { lossParams: { kappa: 3.5, power: 2 }, learningRate: 0.001 });

  const f = parseSweepSpec('yukawa:kappa=5;power=1..4;lr=0.002');
  assert.deepEqual(f.spec.params, { kappa: 5 });
  assert.equal(f.spec.id, 'yukawa-kappa5');
  assert.equal(f.learningRate, 0.002);
  assert.deepEqual(f.space.map((d) => d.name), ['power']);
  assert.deepEqual(trialSettings(f, { power: 3 }), { lossParams: { kappa: 5, power: 3 }, learningRate: 0.002 });

  const t = parseSweepSpec('triplet:margin=0.05..0.5;miner=semihard');
  assert.equal(t.spec.miner, 'semihard');
  assert.equal(t.space[0]!.name, 'margin');

  const list = parseSweepList('contrastive:margin=0.2..2,yukawa:kappa=1..40:log;power=1..4');
  assert.deepEqual(list.map((l) => l.spec.id), ['contrastive', 'yukawa']);
});

test('bad specs: one UsageError line each', () => {
  const cases: [string, RegExp][] = [
    ['contrastive:marg=0.2..2', /has no parameter "marg"/],
    ['contrastive:marg=1', /has no parameter "marg"/],
    ['contrastive:margin=2..2', /empty range/],
    ['contrastive:margin=2..0.2', /reversed/],
    ['contrastive:margin=0.2..', /not a range/],
    ['contrastive:margin=0.2..2:cube', /unknown range flag/],
    ['yukawa:kappa=0..40:log', /positive low bound/],
    ['yukawa:power=1.5..4:int', /whole bounds/],
    ['custom:pos=d^2;neg=1..2', /neg is not a numeric parameter/],
    ['triplet:miner=1..2', /one value, not a range/],
    ['contrastive:lr=-1..1', /lr must be positive/],
    ['contrastive:lr=fast', /lr must be a positive number/],
    ['nosuchloss:margin=1..2', /unknown loss/],
    ['yukawa:kappa=1..4;kappa=2..3', /kappa is given twice/],
  ];
  for (const [spec, why] of cases) {
    assert.throws(
      () => parseSweepSpec(spec),
      (e: unknown) => e instanceof UsageError && why.test(e.message) && !e.message.includes('\n'),
      spec,
    );
  }
  assert.throws(() => parseSweepList('contrastive:margin=0.2..2,contrastive:margin=1..3'), /two entries have the id "contrastive"/);
});

test('a range of a parameter whose 0 means "default" (proxy-lr) must start above 0: one line, exit 2', async () => {
  for (const loss of ['proxy-anchor', 'arcface', 'cosface']) {
    for (const range of ['0..1', '-1..1', '0..1:int']) {
      assert.throws(
        () => parseSweepSpec(`${loss}:proxy-lr=${range}`),
        (e: unknown) =>
          e instanceof UsageError &&
          !e.message.includes('\n') &&
          e.message ===
            `sweep spec "${loss}:proxy-lr=${range}": proxy-lr=${range}: its low bound must be > 0 ` +
              "(proxy-lr 0 means the default, 100x the network's learning rate, not a rate of 0; give the default by leaving proxy-lr out)",
        `${loss}:proxy-lr=${range}`,
      );
    }
  }
  // a positive low bound is a range of rates; 0 as a fixed value is the default, as in train
  assert.deepEqual(parseSweepSpec('proxy-anchor:proxy-lr=0.01..1:log').space, [{ name: 'proxy-lr', lo: 0.01, hi: 1, log: true, int: false }]);
  assert.doesNotThrow(() => parseSweepSpec('proxy-anchor:proxy-lr=0;margin=0.05..0.2'));
  // the CLI: one line on stderr, exit 2, before anything is trained
  const { siamese } = await import('../cli/run.ts');
  const r = siamese(['sweep', '--losses', 'proxy-anchor:proxy-lr=0..1', '--plan']);
  assert.equal(r.code, 2, r.stderr);
  assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
  assert.match(r.stderr, /^siamese: sweep spec "proxy-anchor:proxy-lr=0\.\.1": proxy-lr=0\.\.1: its low bound must be > 0 /);
});
