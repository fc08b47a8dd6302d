/**
 * The TF.js distance, apart from model/siamese.ts (public API): tfjs types in a public file's
 * declarations would load tfjs-core's (src/tensor.ts says why).
 */
import * as tf from '@tensorflow/tfjs-core';
import { SQUARED_DISTANCE_FLOOR } from '../model/siamese.ts';

/** Euclidean distance between matching rows of a and b, [n, d] → [n]. */
export function pairDistance(a: tf.Tensor2D, b: tf.Tensor2D): tf.Tensor1D {
  return tf.tidy(() => tf.sqrt(tf.maximum(tf.sum(tf.square(tf.sub(a, b)), 1), SQUARED_DISTANCE_FLOOR)) as tf.Tensor1D);
}
