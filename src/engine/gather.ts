import * as tf from '@tensorflow/tfjs-core';

/**
 * Rows of x [n, d] at `indices` with a gradient that scatter-adds on the host.
 * Why: tf.gather's gradient needs the UnsortedSegmentSum kernel, which the wasm backend lacks;
 * a mined batch is small (a few hundred rows), so the host loop is cheap.
 */
export function gatherRows(x: tf.Tensor2D, indices: Int32Array): tf.Tensor2D {
  const n = x.shape[0];
  const d = x.shape[1];
  const f = tf.customGrad((xt, save) => {
    (save as tf.GradSaveFunc)([]);
    return {
      value: tf.gather(xt as tf.Tensor2D, tf.tensor1d(indices, 'int32')) as tf.Tensor2D,
      gradFunc: (dy: tf.Tensor) => {
        const g = dy.dataSync();
        const out = new Float32Array(n * d);
        for (let r = 0; r < indices.length; r++) {
          const src = r * d;
          const dst = indices[r]! * d;
          for (let j = 0; j < d; j++) out[dst + j]! += g[src + j]!;
        }
        return [tf.tensor2d(out, [n, d])];
      },
    };
  });
  return f(x) as tf.Tensor2D;
}
