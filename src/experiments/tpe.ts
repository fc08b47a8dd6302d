/**
 * The hyperparameter search of `sweep`: a scrambled Halton start, then a tree-structured Parzen
 * estimator (Bergstra, Bardenet, Bengio, Kégl 2011), maximising a score. Written here because no
 * maintained npm package does sequential model-based search; it is small.
 *
 * A suggestion is a pure function of (space, seed, trial number, the scores so far): a sweep that
 * is interrupted and resumed asks again with the same history and gets the same trials.
 */
import { Rng } from '../rng.ts';

/** One searched parameter: a range, on a linear or log scale, real or integer. */
export interface SearchDim {
  name: string;
  lo: number;
  hi: number;
  log: boolean;
  int: boolean;
}

export interface TpeOptions {
  seed: number;
  /** trials drawn from the quasi-random start before the model takes over (default 8) */
  startup?: number;
  /** fraction of the trials that form the "good" density (default 0.25) */
  gamma?: number;
  /** candidates drawn from the good density per suggestion (default 24) */
  candidates?: number;
}

export interface Observation {
  params: Record<string, number>;
  score: number;
}

const PRIMES = [2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37, 41, 43, 47, 53];

/** The next trial's parameters, given the finished ones (in trial order). */
export function suggest(space: readonly SearchDim[], history: readonly Observation[], opts: TpeOptions): Record<string, number> {
  if (space.length > PRIMES.length) throw new RangeError(`at most ${PRIMES.length} searched parameters`);
  const trial = history.length;
  const startup = Math.max(1, opts.startup ?? 8);
  // one stream per trial, so a trial never depends on how many draws the ones before it made
  const rng = new Rng((opts.seed * 7919 + trial * 104729) >>> 0);
  const usable = history.filter((h) => Number.isFinite(h.score));
  let u: number[];
  if (trial < startup || usable.length < 2) {
    u = halton(space.length, trial, opts.seed);
  } else {
    u = tpeCandidate(space, usable, rng, opts.gamma ?? 0.25, opts.candidates ?? 24);
  }
  return fromUnit(space, u);
}

/** Point `index` of a Halton sequence, shifted by a seeded random offset per dimension. */
export function halton(dims: number, index: number, seed: number): number[] {
  const shift = new Rng(seed >>> 0);
  return Array.from({ length: dims }, (_, d) => {
    let f = 1;
    let r = 0;
    // index + 1: the sequence's point 0 is the corner, which the shift would put anywhere anyway
    for (let i = index + 1; i > 0; i = Math.floor(i / PRIMES[d]!)) {
      f /= PRIMES[d]!;
      r += f * (i % PRIMES[d]!);
    }
    return (r + shift.next()) % 1;
  });
}

/** Parameter values from a point of the unit cube. */
export function fromUnit(space: readonly SearchDim[], u: readonly number[]): Record<string, number> {
  const out: Record<string, number> = {};
  space.forEach((d, i) => {
    const t = Math.min(1, Math.max(0, u[i]!));
    let v = d.log ? Math.exp(Math.log(d.lo) + t * (Math.log(d.hi) - Math.log(d.lo))) : d.lo + t * (d.hi - d.lo);
    if (d.int) v = Math.min(d.hi, Math.max(d.lo, Math.round(v)));
    // 6 significant digits: parameters read well in reports and survive JSON unchanged
    out[d.name] = d.int ? v : Number(v.toPrecision(6));
  });
  return out;
}

/** A point of the unit cube from parameter values. */
export function toUnit(space: readonly SearchDim[], params: Record<string, number>): number[] {
  return space.map((d) => {
    const v = params[d.name]!;
    const t = d.log ? (Math.log(v) - Math.log(d.lo)) / (Math.log(d.hi) - Math.log(d.lo)) : (v - d.lo) / (d.hi - d.lo);
    return Math.min(1, Math.max(0, Number.isFinite(t) ? t : 0));
  });
}

/**
 * Split the history into the best ceil(gamma n) and the rest, fit a Parzen density to each (per
 * dimension, in the unit cube, with a uniform prior component), draw candidates from the good
 * density and keep the one with the highest ratio good / rest.
 */
function tpeCandidate(space: readonly SearchDim[], history: readonly Observation[], rng: Rng, gamma: number, candidates: number): number[] {
  // ties keep trial order, so the split is deterministic
  const order = history.map((h, i) => ({ h, i })).sort((a, b) => b.h.score - a.h.score || a.i - b.i);
  const nGood = Math.max(1, Math.ceil(gamma * order.length));
  const points = (part: typeof order) => part.map(({ h }) => toUnit(space, h.params));
  const good = points(order.slice(0, nGood));
  const bad = points(order.slice(nGood));
  const lGood = space.map((_, d) => parzen(good.map((p) => p[d]!)));
  const lBad = space.map((_, d) => parzen(bad.map((p) => p[d]!)));
  let best: number[] = [];
  let bestScore = -Infinity;
  for (let c = 0; c < candidates; c++) {
    const x = lGood.map((p) => p.sample(rng));
    let s = 0;
    for (let d = 0; d < x.length; d++) s += Math.log(lGood[d]!.pdf(x[d]!)) - Math.log(lBad[d]!.pdf(x[d]!));
    if (s > bestScore) {
      bestScore = s;
      best = x;
    }
  }
  return best;
}

interface Parzen {
  pdf(x: number): number;
  sample(rng: Rng): number;
}

/**
 * A mixture on [0, 1] of Gaussians truncated to [0, 1], one at each point with a bandwidth of the
 * larger gap to its neighbours (hyperopt's rule), plus the uniform prior as one more component.
 */
function parzen(xs: readonly number[]): Parzen {
  const sorted = [...xs].sort((a, b) => a - b);
  const n = sorted.length;
  const minSigma = 1 / Math.min(100, n + 1);
  const sigmas = sorted.map((x, i) => {
    const left = x - (i > 0 ? sorted[i - 1]! : 0);
    const right = (i < n - 1 ? sorted[i + 1]! : 1) - x;
    return Math.min(1, Math.max(minSigma, left, right));
  });
  const w = 1 / (n + 1);
  const mass = sorted.map((m, i) => normCdf((1 - m) / sigmas[i]!) - normCdf((0 - m) / sigmas[i]!));
  return {
    pdf(x: number): number {
      let p = w; // the uniform prior's density on [0, 1] is 1
      for (let i = 0; i < n; i++) {
        const z = (x - sorted[i]!) / sigmas[i]!;
        p += (w * Math.exp(-0.5 * z * z)) / (sigmas[i]! * Math.sqrt(2 * Math.PI) * mass[i]!);
      }
      return p;
    },
    sample(rng: Rng): number {
      const k = rng.int(n + 1);
      if (k === n) return rng.next();
      // rejection from the untruncated Gaussian; its mass in [0, 1] is at least about 0.16
      for (let tries = 0; tries < 1000; tries++) {
        const x = sorted[k]! + sigmas[k]! * rng.normal();
        if (x >= 0 && x <= 1) return x;
      }
      return Math.min(1, Math.max(0, sorted[k]!));
    },
  };
}

/** The standard normal CDF (Abramowitz and Stegun 7.1.26 for erf: |error| < 1.5e-7). */
function normCdf(z: number): number {
  const x = Math.abs(z) / Math.SQRT2;
  const t = 1 / (1 + 0.3275911 * x);
  const y = 1 - ((((1.061405429 * t - 1.453152027) * t + 1.421413741) * t - 0.284496736) * t + 0.254829592) * t * Math.exp(-x * x);
  return z >= 0 ? 0.5 * (1 + y) : 0.5 * (1 - y);
}
