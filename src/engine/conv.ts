import * as tf from '@tensorflow/tfjs-core';

/**
 * One convolutional block, y = maxPool2x2(relu(conv_kxk_valid(x, W) + b)), with a hand-written
 * gradient built only from kernels that are fast on the wasm backend.
 *
 * Why: tfjs-wasm has no Conv2DBackpropFilter kernel at all (the built-in conv2d gradient throws
 * there), and its Conv2DBackpropInput, MaxPoolGrad and Conv3DBackpropFilter kernels are plain
 * loops several times slower than a forward convolution. XNNPACK's forward convolution and
 * matMul are the fast kernels, and both gradients of a convolution can be written with them:
 *   dX = conv(dZ padded by k−1, W rotated 180° with in/out swapped)   (the "full" correlation)
 *   dW = conv(X with batch and channels swapped, dZ as the filter)    (then transposed back)
 * The max-pool gradient sends each pooled gradient to its window's argmax (MaxPoolWithArgmax:
 * one index per window, so a tie goes to one unit, as in TensorFlow), scattered back with
 * ScatterNd; the ReLU gradient is folded into it (a window whose maximum is 0 has no positive
 * unit, so no gradient). The first block (its input is the batch of images: no input gradient,
 * 1 to 4 channels) computes dW on the host straight from the argmaxes instead: k·k·cIn
 * multiply-adds per pooled value, 1.7x faster than the scatter and the convolution (measured).
 *
 * Cost on MNIST (batch of 128 pairs = 256 images, 32 and 64 filters, one core, under load):
 * 0.26-0.4 s of CPU per training step; inference uses the fused forward pass only.
 *
 * Layout: x [n, h, w, cIn] (NHWC), W [k, k, cIn, cOut] (HWIO, as Keras stores conv kernels),
 * b [cOut]. Output [n, floor((h−k+1)/2), floor((w−k+1)/2), cOut]; a last odd row or column of
 * the convolution output is dropped by the pool, as Keras' MaxPooling2D does.
 */
export function convReluPool(x: tf.Tensor4D, w: tf.Tensor4D, b: tf.Tensor1D, opts: { inputGradient?: boolean } = {}): tf.Tensor4D {
  // Outside a gradient computation (embedding, evaluation) no argmax needs keeping: the plain
  // fused forward pass is the fastest.
  if (!tf.engine().isTapeOn()) return tf.tidy(() => tf.maxPool(convRelu(x, w, b), 2, 2, 'valid'));
  return (opts.inputGradient === false ? firstBlock : block)(x, w, b);
}

/** relu(conv(x, W) + b) in one fused kernel (XNNPACK applies bias and ReLU as it writes). */
function convRelu(x: tf.Tensor4D, w: tf.Tensor4D, b: tf.Tensor1D): tf.Tensor4D {
  return tf.fused.conv2d({ x, filter: w, bias: b, activation: 'relu', strides: 1, pad: 'valid' });
}

function makeBlock(first: boolean) {
  return tf.customGrad((x, w, b, save) => {
    const xt = x as tf.Tensor4D;
    const wt = w as tf.Tensor4D;
    const z = convRelu(xt, wt, b as tf.Tensor1D);
    // The values come from maxPool: tfjs-wasm's MaxPoolWithArgmax starts its running maximum at
    // FLT_MIN, so a window of zeros yields 1.2e-38 (denormal products then slow the next
    // convolution 3x) and index 0. Its indexes are right wherever the true maximum is positive,
    // and the gradient below is zero wherever it is not.
    const p = tf.maxPool(z, 2, 2, 'valid');
    const { result: pa, indexes } = tf.maxPoolWithArgmax(z, 2, 2, 'valid', true);
    pa.dispose();
    (save as tf.GradSaveFunc)([xt, wt, p, indexes]);
    const zShape = z.shape;
    z.dispose();
    return {
      value: p,
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [sx, sw, sp, si] = saved as [tf.Tensor4D, tf.Tensor4D, tf.Tensor4D, tf.Tensor];
        const cOut = zShape[3];
        // no gradient through a window whose maximum is 0 (the ReLU's gradient)
        const g = tf.mul(dy, tf.step(sp, 0)) as tf.Tensor4D;
        // the bias gradient sums dZ, whose non-zeros are exactly g's values: sum the 4x smaller g
        const db = tf.sum(tf.reshape(g, [g.size / cOut, cOut]), 0) as tf.Tensor1D;
        const k = sw.shape[0];
        if (first) return [tf.zerosLike(sx), filterGradFromArgmax(sx, g, si, zShape, k), db];
        const dz = scatterToArgmax(g, si, zShape);
        return [inputGrad(dz, sw), filterGradConv(sx, dz, k), db];
      },
    };
  }) as (x: tf.Tensor4D, w: tf.Tensor4D, b: tf.Tensor1D) => tf.Tensor4D;
}

const block = makeBlock(false);
const firstBlock = makeBlock(true);

/** dL/dz: each pooled gradient goes to its window's argmax (flat indexes into z, batch included). */
function scatterToArgmax(g: tf.Tensor4D, argmax: tf.Tensor, zShape: [number, number, number, number]): tf.Tensor4D {
  const m = g.size;
  const flat = tf.scatterND(tf.reshape(argmax, [m, 1]), tf.reshape(g, [m]), [zShape[0] * zShape[1] * zShape[2] * zShape[3]]);
  return tf.reshape(flat, zShape);
}

/** dL/dW of a valid, stride-1 convolution, as a convolution in which batch and channels swap roles. */
function filterGradConv(x: tf.Tensor4D, dz: tf.Tensor4D, k: number): tf.Tensor4D {
  const xs = tf.transpose(x, [3, 1, 2, 0]) as tf.Tensor4D; // [cIn, h, w, n]
  const f = tf.transpose(dz, [1, 2, 0, 3]) as tf.Tensor4D; // [oh, ow, n, cOut]
  const r = tf.conv2d(xs, f, 1, 'valid'); // [cIn, k, k, cOut]
  if (r.shape[1] !== k) throw new Error(`filter gradient has size ${r.shape[1]}, expected ${k}`);
  return tf.transpose(r, [1, 2, 0, 3]);
}

/**
 * dL/dW on the host, from the pooled gradient g and the argmax of every window: dZ is non-zero only
 * at the argmaxes, so dW[ky, kx, ci, co] = Σ g · x[n, y + ky, x + kx, ci] over the windows of
 * channel co, with (y, x) the window's argmax. For the first block (its input is the batch of
 * images, 1 to 4 channels) this is k·k·cIn multiply-adds per pooled value, cheaper than scattering
 * g back to full resolution and multiplying by an im2col matrix.
 */
function filterGradFromArgmax(x: tf.Tensor4D, g: tf.Tensor4D, argmax: tf.Tensor, zShape: [number, number, number, number], k: number): tf.Tensor4D {
  const [, h, w, c] = x.shape;
  const [, zh, zw, cOut] = zShape;
  const xs = x.dataSync() as Float32Array;
  const gs = g.dataSync() as Float32Array;
  const idx = argmax.dataSync() as Int32Array;
  const acc = new Float64Array(k * k * c * cOut);
  for (let m = 0; m < gs.length; m++) {
    const gv = gs[m]!;
    if (gv === 0) continue;
    // idx = ((n·zh + y)·zw + x)·cOut + co
    const flat = idx[m]!;
    const co = flat % cOut;
    const pix = (flat - co) / cOut;
    const px = pix % zw;
    const t = (pix - px) / zw;
    const py = t % zh;
    const n = (t - py) / zh;
    for (let ky = 0; ky < k; ky++) {
      const row = ((n * h + py + ky) * w + px) * c;
      for (let kx = 0; kx < k; kx++) {
        const src = row + kx * c;
        const dst = ((ky * k + kx) * c) * cOut + co;
        for (let ci = 0; ci < c; ci++) acc[dst + ci * cOut]! += gv * xs[src + ci]!;
      }
    }
  }
  return tf.tensor4d(Float32Array.from(acc), [k, k, c, cOut]);
}

/** dL/dx of a valid, stride-1 convolution: the full correlation with the rotated kernel. */
function inputGrad(dz: tf.Tensor4D, w: tf.Tensor4D): tf.Tensor4D {
  const k = w.shape[0];
  const rot = tf.transpose(tf.reverse(w, [0, 1]), [0, 1, 3, 2]) as tf.Tensor4D; // [k, k, cOut, cIn]
  return tf.conv2d(dz, rot, 1, [[0, 0], [k - 1, k - 1], [k - 1, k - 1], [0, 0]]);
}
