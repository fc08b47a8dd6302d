/**
 * Loss families written as a pair of potentials: L = Y·V_pos(D) + (1 − Y)·V_neg(D), with
 * positives (Y = 1) feeling V_pos and negatives V_neg. Each factory documents its parameters,
 * its defaults and how it guards its singular points; `pos`/`neg` are the same potentials as
 * scalar functions (float64) with the same guards, so they agree with `perPair`.
 */
import * as tf from '@tensorflow/tfjs-core';
import { negativePowerFloor } from './expr.ts';
import { nonNegative, positive } from './params.ts';
import { DISTANCE_EPSILON, type PairLoss } from './types.ts';

/** L = Y·pos + (1 − Y)·neg, element-wise. */
function mix(y: tf.Tensor1D, pos: tf.Tensor, neg: tf.Tensor): tf.Tensor1D {
  return tf.add(tf.mul(y, pos), tf.mul(tf.sub(1, y), neg)) as tf.Tensor1D;
}

// ---------------------------------------------------------------------------------------------

export interface SpringOptions {
  /** positives closer than this feel nothing (the spring's rest length); default 0.1 */
  posMargin?: number;
  /** negatives farther than this feel nothing; default 1 (as the contrastive margin) */
  negMargin?: number;
}

/**
 * Two one-sided springs (a double-margin contrastive loss):
 * L = Y·max(D − m_p, 0)² + (1 − Y)·max(m_n − D, 0)². No singular point.
 * With m_p = 0 it is the contrastive loss.
 */
export function springLoss(opts: SpringOptions = {}): PairLoss {
  const mp = nonNegative('spring', 'posMargin', opts.posMargin ?? 0.1);
  const mn = nonNegative('spring', 'negMargin', opts.negMargin ?? 1);
  return {
    kind: 'pair',
    name: 'spring',
    formula: `Y·max(D − ${mp}, 0)² + (1−Y)·max(${mn} − D, 0)²`,
    params: { posMargin: mp, negMargin: mn },
    perPair: (d: tf.Tensor1D, y: tf.Tensor1D) =>
      tf.tidy(() => mix(y, tf.square(tf.relu(tf.sub(d, mp))), tf.square(tf.relu(tf.sub(mn, d))))),
    pos: (d) => Math.max(d - mp, 0) ** 2,
    neg: (d) => Math.max(mn - d, 0) ** 2,
  };
}

// ---------------------------------------------------------------------------------------------

export interface CoulombOptions {
  /** strength q of the repulsion q/D between negatives; default 0.1 */
  charge?: number;
  /** the 1/D singularity is guarded by max(D, epsilon); default DISTANCE_EPSILON (1e-7) */
  epsilon?: number;
}

/**
 * Harmonic attraction of positives, unscreened Coulomb repulsion of negatives:
 * L = Y·D² + (1 − Y)·q/max(D, ε). (Yukawa without the screening, with a square.)
 * Guard: below ε the repulsion is the constant q/ε (1e6·q for the default ε), its slope 0.
 */
export function coulombLoss(opts: CoulombOptions = {}): PairLoss {
  const q = nonNegative('coulomb', 'charge', opts.charge ?? 0.1);
  const eps = positive('coulomb', 'epsilon', opts.epsilon ?? DISTANCE_EPSILON);
  return {
    kind: 'pair',
    name: 'coulomb',
    formula: `Y·D² + (1−Y)·${q}/max(D, ${eps})`,
    params: { charge: q, epsilon: eps },
    perPair: (d: tf.Tensor1D, y: tf.Tensor1D) => tf.tidy(() => mix(y, tf.square(d), tf.div(q, tf.maximum(d, eps)))),
    pos: (d) => d * d,
    neg: (d) => q / Math.max(d, eps),
  };
}

// ---------------------------------------------------------------------------------------------

export interface LennardJonesOptions {
  /** where the repulsion ends (the minimum of the 12-6 potential); default 1 */
  sigma?: number;
  /** depth ε of the 12-6 well, i.e. the strength of the repulsion; default 1 */
  depth?: number;
}

/** Radius, as a fraction of σ, below which the Lennard-Jones repulsion continues as a straight line. */
export const LENNARD_JONES_CORE = 0.1;

/**
 * A Lennard-Jones-like loss. Negatives feel the repulsive part of the 12-6 potential,
 * shifted and cut at its minimum (the Weeks-Chandler-Andersen form):
 *   V_neg(D) = ε·[(σ/D)¹² − 2(σ/D)⁶ + 1] for D < σ, and 0 for D >= σ,
 * which is >= 0, zero with zero slope at σ, and pushes negatives out to σ and no farther.
 * Positives feel a harmonic attraction V_pos(D) = D².
 * Guard: (σ/D)¹² overflows float32 near D = 6e-4·σ, so instead of max(D, DISTANCE_EPSILON) the
 * core D < r_c = 0.1·σ is replaced by the tangent line at r_c: V(r_c) + V'(r_c)·(D − r_c)
 * (V(r_c) ≈ 1e12·ε, slope ≈ −1.2e14·ε/σ). It is finite down to D = 0 and still pushes collapsed
 * negatives apart, with the (large, constant) force felt at r_c.
 */
export function lennardJonesLoss(opts: LennardJonesOptions = {}): PairLoss {
  const sigma = positive('lennard-jones', 'sigma', opts.sigma ?? 1);
  const depth = nonNegative('lennard-jones', 'depth', opts.depth ?? 1);
  const rc = LENNARD_JONES_CORE * sigma;
  const wca = (d: number): number => {
    const r6 = (sigma / Math.min(d, sigma)) ** 6;
    return depth * (r6 * r6 - 2 * r6 + 1);
  };
  const r6c = (sigma / rc) ** 6;
  // dV/dD = ε·(−12·r¹²/D + 12·r⁶/D) at D = r_c
  const slopeCore = (depth * 12 * (r6c - r6c * r6c)) / rc;
  const neg = (d: number): number => wca(Math.max(d, rc)) + slopeCore * Math.min(d - rc, 0);
  return {
    kind: 'pair',
    name: 'lennard-jones',
    formula: `Y·D² + (1−Y)·${depth}·[(${sigma}/D)¹² − 2(${sigma}/D)⁶ + 1] for D < ${sigma} (linear below ${rc})`,
    params: { sigma, depth },
    perPair: (d: tf.Tensor1D, y: tf.Tensor1D) =>
      tf.tidy(() => {
        // V(clip(D, r_c, σ)) + V'(r_c)·min(D − r_c, 0): the 12-6 curve on [r_c, σ], 0 beyond σ,
        // the tangent line below r_c (the clipped distance is constant outside [r_c, σ]).
        // Written without tf.where, whose comparison op has no gradient in tfjs.
        const r = tf.div(sigma, tf.clipByValue(d, rc, sigma));
        const r6 = tf.pow(r, 6);
        const v = tf.mul(depth, tf.add(tf.sub(tf.square(r6), tf.mul(2, r6)), 1));
        const line = tf.mul(slopeCore, tf.minimum(tf.sub(d, rc), 0));
        return mix(y, tf.square(d), tf.add(v, line));
      }),
    pos: (d) => d * d,
    neg,
  };
}

// ---------------------------------------------------------------------------------------------

export interface GaussianOptions {
  /** width s of the Gaussian exp(−D²/s²); default 0.5 */
  scale?: number;
}

/**
 * Bounded Gaussian wells: L = Y·(1 − exp(−D²/s²)) + (1 − Y)·exp(−D²/s²). Both terms lie in
 * [0, 1], so no pair can dominate a batch. No singular point (negatives at D = 0 feel no
 * force there: the slope of exp(−D²/s²) is 0 at 0).
 */
export function gaussianLoss(opts: GaussianOptions = {}): PairLoss {
  const s = positive('gaussian', 'scale', opts.scale ?? 0.5);
  const g = (d: number): number => Math.exp(-(d * d) / (s * s));
  return {
    kind: 'pair',
    name: 'gaussian',
    formula: `Y·(1 − exp(−D²/${s}²)) + (1−Y)·exp(−D²/${s}²)`,
    params: { scale: s },
    perPair: (d: tf.Tensor1D, y: tf.Tensor1D) =>
      tf.tidy(() => {
        const e = tf.exp(tf.div(tf.neg(tf.square(d)), s * s));
        return mix(y, tf.sub(1, e), e);
      }),
    pos: (d) => 1 - g(d),
    neg: g,
  };
}

// ---------------------------------------------------------------------------------------------

export interface PowerOptions {
  /** exponent p of the attraction D^p, > 0; default 2 */
  p?: number;
  /** exponent q of the repulsion a·D^(−q), > 0; default 1 */
  q?: number;
  /** strength a of the repulsion; default 0.1 */
  a?: number;
}

/**
 * Power laws: L = Y·D^p + (1 − Y)·a·D^(−q).
 * Guards: the repulsion is evaluated on max(D, f_q) with f_q = max(DISTANCE_EPSILON,
 * 10^(−30/(q+1))), which is DISTANCE_EPSILON for q <= 3 and grows for steeper laws so that
 * a·D^(−q) and its slope stay inside float32 (<= a·1e30, q·a·1e30). For p < 1 the attraction
 * D^p has an infinite slope at 0, so it is evaluated on max(D, DISTANCE_EPSILON); for p >= 1
 * it needs no guard.
 */
export function powerLoss(opts: PowerOptions = {}): PairLoss {
  const p = positive('power', 'p', opts.p ?? 2);
  const q = positive('power', 'q', opts.q ?? 1);
  const a = nonNegative('power', 'a', opts.a ?? 0.1);
  const floor = negativePowerFloor(q);
  const posFloor = p < 1 ? DISTANCE_EPSILON : 0;
  return {
    kind: 'pair',
    name: 'power',
    formula: `Y·D^${p} + (1−Y)·${a}·max(D, ${floor})^(−${q})`,
    params: { p, q, a },
    perPair: (d: tf.Tensor1D, y: tf.Tensor1D) =>
      tf.tidy(() => {
        const pos = p === 2 ? tf.square(d) : tf.pow(posFloor > 0 ? tf.maximum(d, posFloor) : d, p);
        const neg = tf.mul(a, tf.pow(tf.maximum(d, floor), -q));
        return mix(y, pos, neg);
      }),
    pos: (d) => Math.max(d, posFloor) ** p,
    neg: (d) => a * Math.max(d, floor) ** -q,
  };
}
