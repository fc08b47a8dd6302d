import * as tf from '@tensorflow/tfjs-core';
import type { Rng } from '../rng.ts';
import type { DropoutMasks } from './network.ts';

/**
 * Inverted dropout masks drawn from the project's Rng (tf.dropout has its own generator, which
 * would make runs depend on hidden state): each unit kept with probability 1 − rate and scaled by
 * 1/(1 − rate), as Keras does in training.
 */
export function rngDropout(rng: Rng): DropoutMasks {
  return (rows, cols, rate) => {
    const keep = 1 - rate;
    const scale = 1 / keep;
    const m = new Float32Array(rows * cols);
    for (let i = 0; i < m.length; i++) m[i] = rng.next() < keep ? scale : 0;
    return tf.tensor2d(m, [rows, cols]);
  };
}
