import * as tf from '@tensorflow/tfjs-core';
import { positive } from './params.ts';
import type { PairLoss } from './types.ts';

export interface ContrastiveOptions {
  /** negatives closer than this are pushed apart (Hadsell et al. 2006); default 1 */
  margin?: number;
}

/**
 * Contrastive loss as the seed's code computes it (and as the paper writes it):
 * L = Y·D² + (1−Y)·max(m − D, 0)².
 */
export function contrastiveLoss(opts: ContrastiveOptions = {}): PairLoss {
  // m <= 0 makes max(m − D, 0) zero for every D >= 0: nothing pushes negatives apart, the
  // embedding collapses to a point, and the run only says so after its first epoch
  const m = positive('contrastive', 'margin', opts.margin ?? 1);
  return {
    kind: 'pair',
    name: 'contrastive',
    formula: `Y·D² + (1−Y)·max(${m} − D, 0)²`,
    params: { margin: m },
    perPair: (d: tf.Tensor1D, y: tf.Tensor1D) =>
      tf.tidy(() => {
        const pos = tf.square(d);
        const neg = tf.square(tf.relu(tf.sub(m, d)));
        return tf.add(tf.mul(y, pos), tf.mul(tf.sub(1, y), neg)) as tf.Tensor1D;
      }),
    pos: (d) => d * d,
    neg: (d) => Math.max(m - d, 0) ** 2,
  };
}
