import * as tf from '@tensorflow/tfjs-core';
import type { TripletLoss } from './types.ts';

export interface SoftTripletOptions {
  /** compare squared distances instead of plain ones; default false (Hermans et al.) */
  squared?: boolean;
}

/** log(1 + e^x), computed without overflow for large x. */
function softplus(x: number): number {
  return x > 0 ? x + Math.log1p(Math.exp(-x)) : Math.log1p(Math.exp(x));
}

/**
 * Soft-margin triplet loss (Hermans, Beyer, Leibe 2017): log(1 + exp(D_ap − D_an)), a smooth
 * hinge with no margin to tune; it never reaches 0, so it keeps pulling already-correct
 * triplets a little. No singular point.
 */
export function softMarginTripletLoss(opts: SoftTripletOptions = {}): TripletLoss {
  const squared = opts.squared ?? false;
  const f = (x: number): number => (squared ? x * x : x);
  const value = (dap: number, dan: number): number => softplus(f(dap) - f(dan));
  return {
    kind: 'triplet',
    name: 'soft-triplet',
    formula: squared ? 'log(1 + exp(D_ap² − D_an²))' : 'log(1 + exp(D_ap − D_an))',
    params: { squared: squared ? 'true' : 'false' },
    perTriplet: (dap: tf.Tensor1D, dan: tf.Tensor1D) =>
      tf.tidy(() => {
        const a = squared ? tf.square(dap) : dap;
        const n = squared ? tf.square(dan) : dan;
        return tf.softplus(tf.sub(a, n)) as tf.Tensor1D;
      }),
    value,
    pos: (d) => value(d, 1),
    neg: (d) => value(0, d),
  };
}
