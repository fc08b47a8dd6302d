import * as tf from '@tensorflow/tfjs-core';
import { nonNegative, positive } from './params.ts';
import { DISTANCE_EPSILON, type PairLoss } from './types.ts';

export interface YukawaOptions {
  /** screening constant of the negative potential exp(−κD)/D; default 10 */
  kappa?: number;
  /** exponent of the positive potential D^p; default 3 */
  power?: number;
  /** the 1/D singularity is guarded by max(D, epsilon); default 1e-7 */
  epsilon?: number;
}

/**
 * The seed's Yukawa ("potential") loss: positives feel D^p, negatives the screened
 * Coulomb repulsion exp(−κD)/D.  L = Y·D^p + (1−Y)·exp(−κD)/max(D, ε).
 */
export function yukawaLoss(opts: YukawaOptions = {}): PairLoss {
  // κ < 0 makes the "repulsion" grow with distance (negatives pulled together past 1/|κ|), a
  // power <= 0 makes D^p push positives apart (or do nothing): both turn the loss round silently
  const kappa = nonNegative('yukawa', 'kappa', opts.kappa ?? 10);
  const p = positive('yukawa', 'power', opts.power ?? 3);
  const eps = positive('yukawa', 'epsilon', opts.epsilon ?? DISTANCE_EPSILON);
  return {
    kind: 'pair',
    name: 'yukawa',
    formula: `Y·D^${p} + (1−Y)·exp(−${kappa}·D)/max(D, ${eps})`,
    params: { kappa, power: p, epsilon: eps },
    perPair: (d: tf.Tensor1D, y: tf.Tensor1D) =>
      tf.tidy(() => {
        const pos = p === 3 ? tf.mul(tf.square(d), d) : tf.pow(d, p);
        // Guard the singularity before dividing; the gradient of maximum is 0 below eps.
        const neg = tf.div(tf.exp(tf.mul(-kappa, d)), tf.maximum(d, eps));
        return tf.add(tf.mul(y, pos), tf.mul(tf.sub(1, y), neg)) as tf.Tensor1D;
      }),
    pos: (d) => d ** p,
    neg: (d) => Math.exp(-kappa * d) / Math.max(d, eps),
  };
}
