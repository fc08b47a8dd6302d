/**
 * Small-sample statistics for comparing losses over seeds: mean, sample standard deviation,
 * Student-t 95% confidence intervals and the paired t-test.
 *
 * The t distribution is computed, not tabulated: its CDF comes from the regularized incomplete
 * beta function, F(t; ν) = 1 − ½·I_{ν/(ν+t²)}(ν/2, ½) for t >= 0, and quantiles are found by
 * bisection on that CDF. Accurate to ~1e-10 for any ν > 0, which is far more than 3 seeds need.
 *
 * Degenerate inputs never give NaN: with a single value there is no spread (std and ci95 are 0,
 * and `values.length` says why); a paired test with one pair or with zero variance says so in
 * its `degenerate` field.
 */
import type { Stat } from './experiments/results.ts';

export function mean(values: readonly number[]): number {
  if (values.length === 0) return NaN;
  let s = 0;
  for (const v of values) s += v;
  return s / values.length;
}

/** Sample standard deviation (divides by n − 1); 0 for fewer than two values. */
export function sampleStd(values: readonly number[]): number {
  const n = values.length;
  if (n < 2) return 0;
  const m = mean(values);
  let ss = 0;
  for (const v of values) ss += (v - m) * (v - m);
  return Math.sqrt(ss / (n - 1));
}

/** ln Γ(x) for x > 0 (Lanczos approximation, g = 7, nine terms; relative error ~1e-15). */
export function logGamma(x: number): number {
  if (!(x > 0)) throw new RangeError(`logGamma: x must be positive, got ${x}`);
  if (x < 0.5) {
    // reflection: Γ(x)Γ(1−x) = π / sin(πx)
    return Math.log(Math.PI / Math.sin(Math.PI * x)) - logGamma(1 - x);
  }
  const c = [
    0.99999999999980993, 676.5203681218851, -1259.1392167224028, 771.32342877765313, -176.61502916214059,
    12.507343278686905, -0.13857109526572012, 9.9843695780195716e-6, 1.5056327351493116e-7,
  ];
  const z = x - 1;
  let sum = c[0]!;
  for (let i = 1; i < c.length; i++) sum += c[i]! / (z + i);
  const t = z + 7.5;
  return 0.5 * Math.log(2 * Math.PI) + (z + 0.5) * Math.log(t) - t + Math.log(sum);
}

/**
 * The continued fraction of the incomplete beta function, evaluated with the modified Lentz
 * method. Converges quickly for x < (a + 1) / (a + b + 2).
 */
function betaContinuedFraction(a: number, b: number, x: number): number {
  const tiny = 1e-300;
  const guard = (v: number): number => (Math.abs(v) < tiny ? tiny : v);
  let c = 1;
  let d = 1 / guard(1 - ((a + b) * x) / (a + 1));
  let f = d;
  for (let m = 1; m <= 500; m++) {
    // even step: d_{2m} = m (b − m) x / ((a + 2m − 1)(a + 2m))
    const even = (m * (b - m) * x) / ((a + 2 * m - 1) * (a + 2 * m));
    d = 1 / guard(1 + even * d);
    c = guard(1 + even / c);
    f *= d * c;
    // odd step: d_{2m+1} = −(a + m)(a + b + m) x / ((a + 2m)(a + 2m + 1))
    const odd = (-(a + m) * (a + b + m) * x) / ((a + 2 * m) * (a + 2 * m + 1));
    d = 1 / guard(1 + odd * d);
    c = guard(1 + odd / c);
    const delta = d * c;
    f *= delta;
    if (Math.abs(delta - 1) < 1e-15) break;
  }
  return f;
}

/** The regularized incomplete beta function I_x(a, b), a, b > 0, x in [0, 1]. */
export function regularizedBeta(x: number, a: number, b: number): number {
  if (!(a > 0 && b > 0)) throw new RangeError(`regularizedBeta: a and b must be positive, got ${a}, ${b}`);
  if (!(x >= 0 && x <= 1)) throw new RangeError(`regularizedBeta: x must be in [0, 1], got ${x}`);
  if (x === 0) return 0;
  if (x === 1) return 1;
  const logFront = a * Math.log(x) + b * Math.log1p(-x) - (logGamma(a) + logGamma(b) - logGamma(a + b));
  // Use the fraction where it converges fast, and the symmetry I_x(a,b) = 1 − I_{1−x}(b,a) elsewhere.
  if (x < (a + 1) / (a + b + 2)) return (Math.exp(logFront) * betaContinuedFraction(a, b, x)) / a;
  return 1 - (Math.exp(logFront) * betaContinuedFraction(b, a, 1 - x)) / b;
}

/** P(T <= t) for Student's t with `df` degrees of freedom (df > 0, need not be an integer). */
export function tCdf(t: number, df: number): number {
  if (!(df > 0)) throw new RangeError(`tCdf: degrees of freedom must be positive, got ${df}`);
  if (Number.isNaN(t)) return NaN;
  if (t === Infinity) return 1;
  if (t === -Infinity) return 0;
  const tail = 0.5 * regularizedBeta(df / (df + t * t), df / 2, 0.5);
  return t >= 0 ? 1 - tail : tail;
}

/** Two-sided p-value of a t statistic: P(|T| >= |t|). */
export function tTwoSidedP(t: number, df: number): number {
  if (!(df > 0)) throw new RangeError(`tTwoSidedP: degrees of freedom must be positive, got ${df}`);
  if (!Number.isFinite(t)) return Number.isNaN(t) ? NaN : 0;
  return regularizedBeta(df / (df + t * t), df / 2, 0.5);
}

/** The p-quantile of Student's t (0 < p < 1): the t with P(T <= t) = p, found by bisection. */
export function tQuantile(p: number, df: number): number {
  if (!(p > 0 && p < 1)) throw new RangeError(`tQuantile: p must be in (0, 1), got ${p}`);
  if (!(df > 0)) throw new RangeError(`tQuantile: degrees of freedom must be positive, got ${df}`);
  if (p === 0.5) return 0;
  if (p < 0.5) return -tQuantile(1 - p, df);
  let lo = 0;
  let hi = 1;
  while (tCdf(hi, df) < p) {
    lo = hi;
    hi *= 2;
    if (hi > 1e300) return Infinity;
  }
  for (let i = 0; i < 200 && hi - lo > 1e-12 * Math.max(1, hi); i++) {
    const mid = 0.5 * (lo + hi);
    if (tCdf(mid, df) < p) lo = mid;
    else hi = mid;
  }
  return 0.5 * (lo + hi);
}

/** Half-width of the two-sided 95% confidence interval of the mean: t_{0.975, n−1} · s / √n; 0 for n < 2. */
export function ci95HalfWidth(values: readonly number[]): number {
  const n = values.length;
  if (n < 2) return 0;
  return (tQuantile(0.975, n - 1) * sampleStd(values)) / Math.sqrt(n);
}

/**
 * Mean, 95% CI half-width, sample std and the values themselves. Non-finite values (a measure
 * undefined on some seed) are kept in `values` but left out of the statistics.
 */
export function summarise(values: readonly number[]): Stat {
  const finite = values.filter((v) => Number.isFinite(v));
  return { mean: mean(finite), ci95: ci95HalfWidth(finite), std: sampleStd(finite), values: [...values] };
}

/** Hard bounds of a measure: a fraction's [0, 1], a distance's [0, Infinity). */
export interface Bounds {
  lo: number;
  hi: number;
}

export const FRACTION: Bounds = { lo: 0, hi: 1 };
export const NON_NEGATIVE: Bounds = { lo: 0, hi: Infinity };

/** The interval mean ± half clipped to the bounds, and whether it needed no clipping. */
export function boundedInterval(mean: number, half: number, b: Bounds = FRACTION): { lo: number; hi: number; fits: boolean } {
  const lo = mean - half;
  const hi = mean + half;
  return { lo: Math.max(b.lo, lo), hi: Math.min(b.hi, hi), fits: lo >= b.lo && hi <= b.hi };
}

/**
 * summarise for a fraction (accuracy, AUC, MAP@R...), with `ci`, its 95% CI clipped to [0, 1]: a
 * fraction's true mean cannot lie outside, and with 2 seeds the t interval often would (0.95 and
 * 0.99 give 0.716 to 1.224). `ci95` stays the t half-width; one value gives [mean, mean].
 */
export function summariseFraction(values: readonly number[]): Stat & { ci: [number, number] } {
  const s = summarise(values);
  const iv = boundedInterval(s.mean, s.ci95);
  return { mean: s.mean, ci: [iv.lo, iv.hi], ci95: s.ci95, std: s.std, values: s.values };
}

export interface PairedTTest {
  /** number of pairs */
  n: number;
  df: number;
  /** mean of a − b */
  meanDiff: number;
  /** sample std of a − b */
  std: number;
  /** 95% CI half-width of the mean difference (0 when undefined) */
  ci95: number;
  /** t = meanDiff / (std / √n); 0 when degenerate (see `degenerate`) */
  t: number;
  /** two-sided p-value; 1 when there is nothing to test */
  p: number;
  /**
   * why the test could not be done as usual:
   * - 'one-pair': n = 1, no variance can be estimated: t = 0, p = 1;
   * - 'no-pairs': n = 0;
   * - 'zero-variance': every pair has the same difference. If that difference is 0 the two are
   *   identical (t = 0, p = 1); otherwise the difference is perfectly consistent (t = ±Infinity
   *   in the limit, reported as t = 0 and p = 0 so that JSON stays numeric).
   */
  degenerate?: 'no-pairs' | 'one-pair' | 'zero-variance';
}

/** Paired two-sided t-test of a against b (equal lengths, pairs matched by index, e.g. by seed). */
export function pairedTTest(a: readonly number[], b: readonly number[]): PairedTTest {
  if (a.length !== b.length) throw new RangeError(`pairedTTest: ${a.length} values against ${b.length}`);
  const d = a.map((x, i) => x - b[i]!);
  const n = d.length;
  if (n === 0) return { n, df: 0, meanDiff: NaN, std: 0, ci95: 0, t: 0, p: 1, degenerate: 'no-pairs' };
  const m = mean(d);
  if (n === 1) return { n, df: 0, meanDiff: m, std: 0, ci95: 0, t: 0, p: 1, degenerate: 'one-pair' };
  const s = sampleStd(d);
  // relative test: floating-point sums of equal numbers may leave ~1e-17 of "variance"
  if (s <= 1e-12 * Math.max(1, Math.abs(m))) {
    return { n, df: n - 1, meanDiff: m, std: 0, ci95: 0, t: 0, p: m === 0 ? 1 : 0, degenerate: 'zero-variance' };
  }
  const t = m / (s / Math.sqrt(n));
  return { n, df: n - 1, meanDiff: m, std: s, ci95: ci95HalfWidth(d), t, p: tTwoSidedP(t, n - 1) };
}

/**
 * Holm's step-down adjustment of a family of p-values (Holm 1979), which keeps the chance of any
 * false "significant" in the family at most alpha without assuming the tests independent. With
 * the m p-values sorted ascending, p(1) <= ... <= p(m), the adjusted value of the i-th is
 * max over j <= i of min(1, (m − j + 1) · p(j)). Returned in the input order; NaN stays NaN and
 * is not counted in m.
 */
export function holmAdjust(p: readonly number[]): number[] {
  const order = p
    .map((v, i) => [v, i] as const)
    .filter(([v]) => !Number.isNaN(v))
    .sort((x, y) => x[0] - y[0] || x[1] - y[1]);
  const m = order.length;
  const out = p.map(() => NaN);
  let running = 0;
  order.forEach(([v, i], j) => {
    running = Math.max(running, Math.min(1, (m - j) * v));
    out[i] = running;
  });
  return out;
}
