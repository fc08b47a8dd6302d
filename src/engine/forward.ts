/**
 * The TF.js forward pass of a base network: its layers (data, src/model) run on this engine's
 * kernels (dense.ts, conv.ts), which carry the hand-written gradients.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { BaseNetwork, DropoutMasks } from '../model/network.ts';
import { convReluPool } from './conv.ts';
import { dense } from './dense.ts';

/**
 * G(x) for images x [n, inputSize] with weight tensors in weightSpecs() order; dropout only when
 * masks are given (training). Returns the embeddings [n, embeddingDim].
 */
export function applyNetwork(network: BaseNetwork, x: tf.Tensor2D, weights: readonly tf.Tensor[], dropout: DropoutMasks | null): tf.Tensor2D {
  return tf.tidy(() => {
    const n = x.shape[0];
    let h: tf.Tensor = x;
    let w = 0;
    for (const layer of network.layers) {
      switch (layer.type) {
        case 'dense':
          h = dense(h as tf.Tensor2D, weights[w] as tf.Tensor2D, weights[w + 1] as tf.Tensor1D, layer.relu);
          w += 2;
          break;
        case 'image':
          h = tf.reshape(h, [n, layer.height, layer.width, layer.channels]);
          break;
        case 'convReluPool':
          h = convReluPool(h as tf.Tensor4D, weights[w] as tf.Tensor4D, weights[w + 1] as tf.Tensor1D, { inputGradient: layer.inputGradient });
          w += 2;
          break;
        case 'flatten':
          h = tf.reshape(h, [n, layer.features]);
          break;
        case 'dropout':
          if (dropout && layer.rate > 0) h = tf.mul(h, dropout(n, h.shape[1]!, layer.rate) as tf.Tensor2D);
          break;
      }
    }
    if (w !== weights.length) throw new Error(`the network used ${w} weight tensors of ${weights.length}`);
    return h as tf.Tensor2D;
  });
}
