import * as tf from '@tensorflow/tfjs-core';
import type { TripletLoss } from './types.ts';

export interface TripletOptions {
  /** default 0.85, the seed's value */
  margin?: number;
  /** compare squared distances (the seed's form, default) or plain ones */
  squared?: boolean;
}

/** Margin triplet loss: max(D_ap² − D_an² + m, 0) (or on plain distances with squared=false). */
export function tripletLoss(opts: TripletOptions = {}): TripletLoss {
  const m = opts.margin ?? 0.85;
  const squared = opts.squared ?? true;
  const f = (x: number): number => (squared ? x * x : x);
  const value = (dap: number, dan: number): number => Math.max(f(dap) - f(dan) + m, 0);
  return {
    kind: 'triplet',
    name: 'triplet',
    formula: squared ? `max(D_ap² − D_an² + ${m}, 0)` : `max(D_ap − D_an + ${m}, 0)`,
    params: { margin: m, squared: squared ? 'true' : 'false' },
    perTriplet: (dap: tf.Tensor1D, dan: tf.Tensor1D) =>
      tf.tidy(() => {
        const a = squared ? tf.square(dap) : dap;
        const n = squared ? tf.square(dan) : dan;
        return tf.relu(tf.add(tf.sub(a, n), m)) as tf.Tensor1D;
      }),
    value,
    pos: (d) => value(d, 1),
    neg: (d) => value(0, d),
  };
}
