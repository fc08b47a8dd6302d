import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  ci95HalfWidth,
  holmAdjust,
  logGamma,
  mean,
  pairedTTest,
  regularizedBeta,
  sampleStd,
  summarise,
  summariseFraction,
  tCdf,
  tQuantile,
  tTwoSidedP,
} from '../../src/stats.ts';

const close = (a: number, b: number, tol: number, what = ''): void =>
  assert.ok(Math.abs(a - b) <= tol, `${what}: ${a} is not within ${tol} of ${b}`);

test('mean and sample std', () => {
  assert.equal(mean([1, 2, 3, 4]), 2.5);
  close(sampleStd([2, 4, 4, 4, 5, 5, 7, 9]), Math.sqrt(32 / 7), 1e-12, 'std');
  assert.equal(sampleStd([3]), 0);
  assert.ok(Number.isNaN(mean([])));
});

test('logGamma matches factorials and Γ(1/2) = √π', () => {
  close(logGamma(1), 0, 1e-13, 'Γ(1)');
  close(logGamma(5), Math.log(24), 1e-12, 'Γ(5)');
  close(logGamma(0.5), 0.5 * Math.log(Math.PI), 1e-12, 'Γ(1/2)');
  // Γ(20.5) = Γ(½) · ½ · 3/2 · … · 39/2
  let lg = 0.5 * Math.log(Math.PI);
  for (let k = 0; k < 20; k++) lg += Math.log(0.5 + k);
  close(logGamma(20.5), lg, 1e-10, 'Γ(20.5)');
});

test('regularized incomplete beta: closed forms', () => {
  // I_x(1, 1) = x; I_x(a, 1) = x^a; I_x(1, b) = 1 − (1 − x)^b
  close(regularizedBeta(0.3, 1, 1), 0.3, 1e-13, 'I(1,1)');
  close(regularizedBeta(0.6, 3, 1), 0.216, 1e-13, 'I(3,1)');
  close(regularizedBeta(0.2, 1, 4), 1 - 0.8 ** 4, 1e-13, 'I(1,4)');
  close(regularizedBeta(0.9, 2.5, 0.5) + regularizedBeta(0.1, 0.5, 2.5), 1, 1e-13, 'symmetry');
});

test('t quantiles match the printed tables', () => {
  const table: [number, number][] = [
    [1, 12.706],
    [2, 4.303],
    [3, 3.182],
    [4, 2.776],
    [9, 2.262],
    [29, 2.045],
    [100, 1.984],
  ];
  for (const [df, q] of table) close(tQuantile(0.975, df), q, 5e-4, `t_0.975,${df}`);
  close(tQuantile(0.95, 5), 2.015, 5e-4, 't_0.95,5');
  close(tQuantile(0.025, 2), -4.303, 5e-4, 'lower tail');
  assert.equal(tQuantile(0.5, 7), 0);
  // df = 1 is the Cauchy distribution: quantile tan(π (p − ½))
  close(tQuantile(0.9, 1), Math.tan(Math.PI * 0.4), 1e-9, 'Cauchy');
});

test('t CDF and two-sided p-values of known cases', () => {
  // df = 2: F(t) = ½ + t / (2 √(2 + t²))
  for (const t of [-3, -0.5, 0, 0.7, 4.303]) close(tCdf(t, 2), 0.5 + t / (2 * Math.sqrt(2 + t * t)), 1e-12, `F(${t}; 2)`);
  // df = 1: p = 1 − (2/π) atan|t|
  close(tTwoSidedP(1, 1), 0.5, 1e-12, 'Cauchy p');
  close(tTwoSidedP(2, 10), 0.07339, 1e-5, 'p(2; 10)');
  close(tTwoSidedP(-2.776, 4), 0.05, 2e-4, 'p(2.776; 4)');
  assert.equal(tTwoSidedP(0, 3), 1);
  assert.equal(tCdf(Infinity, 3), 1);
});

test('95% CI half-width', () => {
  // values 1, 2, 3: s = 1, n = 3 → 4.303 / √3
  close(ci95HalfWidth([1, 2, 3]), 4.302653 / Math.sqrt(3), 1e-5, 'ci');
  assert.equal(ci95HalfWidth([5]), 0);
});

test('summarise', () => {
  const s = summarise([0.97, 0.98, 0.99]);
  close(s.mean, 0.98, 1e-12, 'mean');
  close(s.std, 0.01, 1e-12, 'std');
  close(s.ci95, (4.302653 * 0.01) / Math.sqrt(3), 1e-6, 'ci');
  assert.deepEqual(s.values, [0.97, 0.98, 0.99]);
  const one = summarise([0.5]);
  assert.deepEqual(one, { mean: 0.5, ci95: 0, std: 0, values: [0.5] });
  // a measure undefined on one seed is left out of the statistics
  const some = summarise([1, NaN, 3]);
  assert.equal(some.mean, 2);
  assert.equal(some.values.length, 3);
});

test('paired t-test: a known case', () => {
  // differences 1, 2, 3, 4: mean 2.5, s = 1.29099, t = 3.873, df = 3, p = 0.03047
  const r = pairedTTest([2, 4, 6, 8], [1, 2, 3, 4]);
  assert.equal(r.n, 4);
  assert.equal(r.df, 3);
  close(r.meanDiff, 2.5, 1e-12, 'mean diff');
  close(r.t, 3.872983, 1e-5, 't');
  close(r.p, 0.030466, 1e-5, 'p');
  close(r.ci95, (3.182446 * 1.290994) / 2, 1e-5, 'ci');
  assert.equal(r.degenerate, undefined);
  // swapping the arguments flips the sign, not the p-value
  const s = pairedTTest([1, 2, 3, 4], [2, 4, 6, 8]);
  close(s.t, -r.t, 1e-12, 't flips');
  close(s.p, r.p, 1e-12, 'p stays');
});

test('paired t-test: degenerate inputs say so, never NaN', () => {
  const one = pairedTTest([0.98], [0.97]);
  assert.equal(one.degenerate, 'one-pair');
  assert.equal(one.p, 1);
  close(one.meanDiff, 0.01, 1e-12, 'one pair diff');
  const same = pairedTTest([0.9, 0.95, 0.97], [0.9, 0.95, 0.97]);
  assert.equal(same.degenerate, 'zero-variance');
  assert.equal(same.p, 1);
  assert.equal(same.t, 0);
  const shift = pairedTTest([0.91, 0.96, 0.98], [0.9, 0.95, 0.97]);
  assert.equal(shift.degenerate, 'zero-variance');
  assert.equal(shift.p, 0);
  for (const r of [one, same, shift]) for (const v of [r.t, r.p, r.ci95, r.std]) assert.ok(Number.isFinite(v));
  assert.throws(() => pairedTTest([1, 2], [1]), RangeError);
});

test('Holm adjustment: a hand-computed family of four, monotone, capped at 1, NaN left out', () => {
  // sorted: 0.005, 0.01, 0.03, 0.04; times m − j + 1 = 4, 3, 2, 1: 0.02, 0.03, 0.06, 0.04;
  // a running maximum makes the last 0.06; back in the input order:
  const adj = holmAdjust([0.01, 0.04, 0.03, 0.005]);
  [0.03, 0.06, 0.06, 0.02].forEach((want, i) => close(adj[i]!, want, 1e-15, `adjusted p ${i}`));
  // 2 x 0.7 = 1.4 is capped at 1, and the larger p cannot get a smaller adjusted value
  assert.deepEqual(holmAdjust([0.7, 0.8]), [1, 1]);
  // ties: 2 x 0.02 for both
  assert.deepEqual(holmAdjust([0.02, 0.02]), [0.04, 0.04]);
  // a NaN is no test: the family is the other two
  const withNaN = holmAdjust([NaN, 0.01, 0.02]);
  assert.ok(Number.isNaN(withNaN[0]));
  assert.deepEqual(withNaN.slice(1), [0.02, 0.02]);
  // one test: unchanged
  assert.deepEqual(holmAdjust([0.013]), [0.013]);
  assert.deepEqual(holmAdjust([]), []);
});

test('compare: the paired tests of one measure get Holm-adjusted p-values, and the verdicts use them', async () => {
  const { pairedComparisons } = await import('../../src/experiments/collect.ts');
  const { parseLossList } = await import('../../src/experiments/lossSpec.ts');
  const losses = parseLossList('contrastive,yukawa,triplet');
  const a = [0.9, 0.91, 0.92];
  const acc: Record<string, number[]> = {
    contrastive: a,
    yukawa: a.map((x, i) => x - [0.01, 0.012, 0.011][i]!),
    triplet: a.map((x, i) => x - [0.014, 0.02, 0.026][i]!),
  };
  const runs = Object.entries(acc).flatMap(([lossId, v]) =>
    v.map((accuracy, seed) => ({ lossId, seed, evaluation: { pairs: { accuracy } } as never })),
  );
  const c = pairedComparisons(losses, runs);
  assert.deepEqual(c.map((x) => [x.a, x.b, x.measure, x.tests]), [
    ['contrastive', 'yukawa', 'accuracy', 3],
    ['contrastive', 'triplet', 'accuracy', 3],
    ['yukawa', 'triplet', 'accuracy', 3],
  ]);
  // raw p of each paired t-test (df = 2), from the differences' mean and sample std by hand
  const p = (d: number[]): number => {
    const m = (d[0]! + d[1]! + d[2]!) / 3;
    const s = Math.sqrt(d.reduce((q, x) => q + (x - m) ** 2, 0) / 2);
    return tTwoSidedP(m / (s / Math.sqrt(3)), 2);
  };
  const raw = [p([0.01, 0.012, 0.011]), p([0.014, 0.02, 0.026]), p([0.004, 0.008, 0.015])];
  raw.forEach((want, i) => close(c[i]!.p, want, 1e-9, `raw p ${i}`));
  // sorted raw p: 0.0027 < 0.0287 < 0.107: Holm multiplies by 3, 2, 1
  assert.ok(raw[0]! < raw[1]! && raw[1]! < raw[2]! && raw[1]! < 0.05 && 2 * raw[1]! > 0.05);
  close(c[0]!.pHolm!, 3 * raw[0]!, 1e-12, 'Holm 1');
  close(c[1]!.pHolm!, 2 * raw[1]!, 1e-12, 'Holm 2');
  close(c[2]!.pHolm!, Math.max(2 * raw[1]!, raw[2]!), 1e-12, 'Holm 3');
  assert.match(c[0]!.verdict, /^contrastive > yukawa in accuracy by 1\.10 points .*Holm-adjusted p = 0\.008 over 3 tests, 3 seeds\)$/);
  // significant alone (p = 0.029), not once corrected (Holm p = 0.057); verdicts print two decimals above 0.01
  assert.match(c[1]!.verdict, /^no significant difference in accuracy after correcting for multiple tests: .*\(p = 0\.03, Holm-adjusted p = 0\.06 over 3 tests, 3 seeds\)$/);
  assert.match(c[2]!.verdict, /^no significant difference in accuracy: /);
});

test('compare: batch losses beside contrastive: accuracy is tested only between fixed-threshold losses, the best-threshold accuracy between every two', async () => {
  const { pairedComparisons } = await import('../../src/experiments/collect.ts');
  const { parseLossList } = await import('../../src/experiments/lossSpec.ts');
  const losses = parseLossList('contrastive,multi-similarity,nt-xent');
  // per seed: accuracy by the loss's convention (a batch loss's is its best threshold's) and the best-threshold accuracy
  const runs = [
    ...[
      [0.62, 0.66],
      [0.6, 0.65],
      [0.63, 0.67],
    ].map(([accuracy, best], seed) => ({ lossId: 'contrastive', seed, evaluation: { pairs: { accuracy, best: { accuracy: best, threshold: 0.7 } } } as never })),
    ...[0.64, 0.66, 0.645].map((a, seed) => ({ lossId: 'multi-similarity', seed, evaluation: { pairs: { accuracy: a, thresholdFrom: 'best', best: { accuracy: a, threshold: 0.9 } } } as never })),
    ...[0.67, 0.665, 0.69].map((a, seed) => ({ lossId: 'nt-xent', seed, evaluation: { pairs: { accuracy: a, thresholdFrom: 'best', best: { accuracy: a, threshold: 1.1 } } } as never })),
  ];
  const c = pairedComparisons(losses, runs);
  assert.deepEqual(c.map((x) => [x.a, x.b, x.measure, x.tests]), [
    ['contrastive', 'multi-similarity', 'bestAccuracy', 3],
    ['contrastive', 'nt-xent', 'bestAccuracy', 3],
    ['multi-similarity', 'nt-xent', 'bestAccuracy', 3],
  ]);
  // contrastive − multi-similarity at the best threshold: (0.66−0.64, 0.65−0.66, 0.67−0.645) / 3
  close(c[0]!.meanDiff, (0.02 - 0.01 + 0.025) / 3, 1e-12, 'best-threshold difference');
  // not its D < 0.5 accuracy: (0.62−0.64, 0.60−0.66, 0.63−0.645) / 3 would be −0.0317
  assert.match(c[0]!.verdict, /best-threshold accuracy/);
  // two batch losses: their accuracy is their best threshold's, tested once (in the best-threshold family)
  close(c[2]!.meanDiff, (-0.03 - 0.005 - 0.045) / 3, 1e-12, 'two batch losses');
  // two losses at D < 0.5 beside a batch loss: their accuracy test stays
  const two = pairedComparisons(parseLossList('contrastive,yukawa,nt-xent'), [
    ...runs.filter((r) => r.lossId !== 'multi-similarity'),
    ...[0.61, 0.6, 0.6].map((accuracy, seed) => ({ lossId: 'yukawa', seed, evaluation: { pairs: { accuracy, best: { accuracy: 0.7, threshold: 0.6 } } } as never })),
  ]);
  assert.deepEqual(two.filter((x) => x.measure === 'accuracy').map((x) => [x.a, x.b, x.tests]), [['contrastive', 'yukawa', 1]]);
  close(two.find((x) => x.measure === 'accuracy')!.meanDiff, (0.01 + 0 + 0.03) / 3, 1e-12, 'contrastive − yukawa at D < 0.5');
  // all of one convention (the seed's losses): accuracy and MAP@R only, as before
  const seedOnly = pairedComparisons(parseLossList('contrastive,yukawa'), [
    ...[0.9, 0.91].map((accuracy, seed) => ({ lossId: 'contrastive', seed, evaluation: { pairs: { accuracy, best: { accuracy, threshold: 0.5 } } } as never })),
    ...[0.92, 0.9].map((accuracy, seed) => ({ lossId: 'yukawa', seed, evaluation: { pairs: { accuracy, best: { accuracy, threshold: 0.5 } } } as never })),
  ]);
  assert.deepEqual(seedOnly.map((x) => x.measure), ['accuracy']);
});

test('compare: batch losses only: their accuracy is tested as the best-threshold accuracy it is, and said so', async () => {
  const { pairedComparisons } = await import('../../src/experiments/collect.ts');
  const { parseLossList } = await import('../../src/experiments/lossSpec.ts');
  const runs = [
    ...[0.67, 0.665, 0.69].map((a, seed) => ({ lossId: 'nt-xent', seed, evaluation: { pairs: { accuracy: a, thresholdFrom: 'best', best: { accuracy: a, threshold: 1.1 } } } as never })),
    ...[0.64, 0.66, 0.645].map((a, seed) => ({ lossId: 'supcon', seed, evaluation: { pairs: { accuracy: a, thresholdFrom: 'best', best: { accuracy: a, threshold: 0.9 } } } as never })),
  ];
  const c = pairedComparisons(parseLossList('nt-xent,supcon'), runs);
  assert.deepEqual(c.map((x) => [x.a, x.b, x.measure]), [['nt-xent', 'supcon', 'bestAccuracy']]);
  close(c[0]!.meanDiff, (0.03 + 0.005 + 0.045) / 3, 1e-12, 'nt-xent − supcon');
  assert.match(c[0]!.verdict, /in best-threshold accuracy/);
});

test('a results.json written before Holm: its stored tests get the correction and the verdicts it gives (hand-computed)', async () => {
  const { withHolm } = await import('../../src/viz/pairedVerdicts.ts');
  const losses = [
    { id: 'c', label: 'contrastive' },
    { id: 'y', label: 'yukawa' },
    { id: 't', label: 'triplet' },
    { id: 'x', label: 'extra' },
  ];
  // the old file's shape: raw p only, verdicts judged on it
  const old = (a: string, b: string, measure: 'accuracy' | 'mapAtR', meanDiff: number, p: number, seeds = 3) => ({
    a, b, measure, meanDiff, ci95: 0.01, t: seeds === 1 ? 0 : 4, p, seeds, verdict: `${a} > ${b} (p = ${p})`,
  });
  const stored = [
    old('c', 'y', 'accuracy', 0.02, 0.02),
    old('c', 'y', 'mapAtR', 0.02, 0.01),
    old('c', 't', 'mapAtR', -0.03, 0.04),
    old('y', 't', 'mapAtR', 0.01, 0.03),
    old('c', 'x', 'mapAtR', 0.05, 1, 1), // one seed: no test, not in the family
  ];
  const c = withHolm(losses, stored);
  // MAP@R family of 3: sorted 0.01, 0.03, 0.04 -> 3 x 0.01 = 0.03, 2 x 0.03 = 0.06, max(0.06, 1 x 0.04) = 0.06
  assert.deepEqual(c.map((x) => [x.a, x.b, x.measure, x.tests]), [
    ['c', 'y', 'accuracy', 1],
    ['c', 'y', 'mapAtR', 3],
    ['c', 't', 'mapAtR', 3],
    ['y', 't', 'mapAtR', 3],
    ['c', 'x', 'mapAtR', 3],
  ]);
  close(c[0]!.pHolm!, 0.02, 1e-15, 'accuracy alone');
  close(c[1]!.pHolm!, 0.03, 1e-15, 'Holm 1');
  close(c[2]!.pHolm!, 0.06, 1e-15, 'Holm 3');
  close(c[3]!.pHolm!, 0.06, 1e-15, 'Holm 2');
  assert.deepEqual(c.map((x) => [x.meanDiff, x.ci95, x.t, x.p, x.seeds]), stored.map((x) => [x.meanDiff, x.ci95, x.t, x.p, x.seeds]));
  assert.match(c[0]!.verdict, /^contrastive > yukawa in accuracy by 2\.00 points ± 1\.00 \(p = 0\.02, 3 seeds\)$/);
  assert.match(c[1]!.verdict, /^contrastive > yukawa in MAP@R by 2\.00 points .*Holm-adjusted p = 0\.03 over 3 tests, 3 seeds\)$/);
  // p = 0.04 alone, 0.06 once corrected: the old verdict called it significant
  assert.match(c[2]!.verdict, /^no significant difference in MAP@R after correcting for multiple tests: contrastive − triplet = −3\.00 ± 1\.00 points \(p = 0\.04, Holm-adjusted p = 0\.06 over 3 tests, 3 seeds\)$/);
  assert.match(c[4]!.verdict, /^one seed only, no test: contrastive − extra = /);
  // a file written with Holm is left as it is
  const current = c.map((x) => ({ ...x, verdict: 'kept' }));
  assert.deepEqual(withHolm(losses, current), current);
});

test("a comparison's summary: each fraction measure's 95% CI clipped to [0, 1] in `ci` (2 seeds, hand-computed)", async () => {
  const { lossSummary } = await import('../../src/experiments/collect.ts');
  // with 2 seeds the half-width is t(0.975, 1) · |a − b| / 2, and t(0.975, 1) = tan(0.475π) (Cauchy)
  const t1 = Math.tan(0.475 * Math.PI);
  const evaluation = (acc: number, best: number, eer: number, map: number, posMean: number) =>
    ({
      pairs: {
        accuracy: acc,
        best: { accuracy: best, threshold: 0.5 },
        auc: 0.9,
        eer: { eer },
        stats: { pos: { mean: posMean, std: 0.1 }, neg: { mean: 2, std: 0.1 }, posBelow04: { mean: 0.2, std: 0.1 } },
      },
      retrieval: { precisionAt1: map, rPrecision: map, mapAtR: map, knnAccuracy: map },
    }) as never;
  const s = lossSummary({ id: 'c', label: 'contrastive' }, [
    { evaluation: evaluation(0.95, 0.5, 0.02, 0.3, 1.2), history: [] },
    { evaluation: evaluation(0.99, 0.51, 0.06, 0.4, 1.4), history: [] },
  ])!;
  const ci = (x: { ci?: [number, number] } | undefined): [number, number] => x!.ci!;
  // 0.97 ± 0.254: above 1, clipped there
  close(s.accuracy.ci95, t1 * 0.02, 1e-9, 'accuracy ci95');
  close(ci(s.accuracy)[0], 0.97 - t1 * 0.02, 1e-9, 'accuracy low');
  assert.equal(ci(s.accuracy)[1], 1);
  // 0.505 ± 0.0635: inside, as it is
  close(ci(s.bestAccuracy)[0], 0.505 - t1 * 0.005, 1e-9, 'best low');
  close(ci(s.bestAccuracy)[1], 0.505 + t1 * 0.005, 1e-9, 'best high');
  // 0.04 ± 0.254: below 0, clipped there
  assert.equal(ci(s.eer)[0], 0);
  close(ci(s.eer)[1], 0.04 + t1 * 0.02, 1e-9, 'eer high');
  // the same value twice: no spread
  assert.deepEqual(ci(s.auc), [0.9, 0.9]);
  for (const k of ['precisionAt1', 'rPrecision', 'mapAtR', 'knnAccuracy'] as const) {
    assert.equal(ci(s[k])[0], 0, k);
    close(ci(s[k])[1], 0.35 + t1 * 0.05, 1e-9, k);
  }
  // distances are no fractions: no clipped interval
  for (const k of ['bestThreshold', 'posMean', 'posStd', 'negMean', 'negStd', 'posBelow04Mean', 'posBelow04Std'] as const) assert.equal(s[k].ci, undefined, k);
});

test('summariseFraction: one value gives [mean, mean]; no finite value gives no interval (NaN, stored as null)', () => {
  assert.deepEqual(summariseFraction([0.3]).ci, [0.3, 0.3]);
  assert.ok(summariseFraction([NaN]).ci.every((x) => Number.isNaN(x)));
});
