import assert from 'node:assert/strict';
import { before, test } from 'node:test';
import { initBackend } from '../../src/engine/backend.ts';
import { tf } from '../../src/engine/tfjs.ts';
import { dense } from '../../src/engine/dense.ts';
import { Rng } from '../../src/rng.ts';

before(async () => {
  await initBackend('cpu');
});

const rows = 5;
const inDim = 7;
const outDim = 4;

function randomArray(rng: Rng, n: number, scale = 1): Float32Array {
  return Float32Array.from({ length: n }, () => (2 * rng.next() - 1) * scale);
}

/** An independent float64 forward pass: L = Σ c ⊙ act(xW + b), with a fixed weighting c. */
function referenceLoss(x: Float64Array, w: Float64Array, b: Float64Array, c: Float64Array, relu: boolean): number {
  let s = 0;
  for (let r = 0; r < rows; r++) {
    for (let o = 0; o < outDim; o++) {
      let z = b[o]!;
      for (let i = 0; i < inDim; i++) z += x[r * inDim + i]! * w[i * outDim + o]!;
      s += c[r * outDim + o]! * (relu ? Math.max(z, 0) : z);
    }
  }
  return s;
}

for (const relu of [true, false]) {
  test(`dense (${relu ? 'ReLU' : 'linear'}) gradients match central finite differences`, () => {
    const rng = new Rng(11);
    const x = randomArray(rng, rows * inDim);
    const w = randomArray(rng, inDim * outDim);
    const b = randomArray(rng, outDim, 0.5);
    const c = randomArray(rng, rows * outDim);
    const f = (xt: tf.Tensor, wt: tf.Tensor, bt: tf.Tensor) =>
      tf.sum(tf.mul(dense(xt as tf.Tensor2D, wt as tf.Tensor2D, bt as tf.Tensor1D, relu), tf.tensor2d(c, [rows, outDim])));
    const grads = tf.grads(f)([tf.tensor2d(x, [rows, inDim]), tf.tensor2d(w, [inDim, outDim]), tf.tensor1d(b)]);
    const [gx, gw, gb] = grads.map((g) => g.dataSync());
    const x64 = Float64Array.from(x);
    const w64 = Float64Array.from(w);
    const b64 = Float64Array.from(b);
    const c64 = Float64Array.from(c);
    const h = 1e-6;
    const check = (arr: Float64Array, analytic: ArrayLike<number>, name: string) => {
      for (let i = 0; i < arr.length; i++) {
        const keep = arr[i]!;
        arr[i] = keep + h;
        const up = referenceLoss(x64, w64, b64, c64, relu);
        arr[i] = keep - h;
        const down = referenceLoss(x64, w64, b64, c64, relu);
        arr[i] = keep;
        const fd = (up - down) / (2 * h);
        assert.ok(Math.abs(fd - analytic[i]!) <= 1e-4 + 1e-4 * Math.abs(fd), `${name}[${i}]: finite difference ${fd}, gradient ${analytic[i]}`);
      }
    };
    check(x64, gx!, 'dx');
    check(w64, gw!, 'dW');
    check(b64, gb!, 'db');
    tf.dispose(grads);
  });
}

test('dense gradients equal tfjs built-in matMul gradients', () => {
  const rng = new Rng(5);
  const x = tf.tensor2d(randomArray(rng, rows * inDim), [rows, inDim]);
  const w = tf.tensor2d(randomArray(rng, inDim * outDim), [inDim, outDim]);
  const b = tf.tensor1d(randomArray(rng, outDim));
  const ours = tf.grads((a, bb, cc) => tf.sum(tf.square(dense(a as tf.Tensor2D, bb as tf.Tensor2D, cc as tf.Tensor1D, true))))([x, w, b]);
  const builtin = tf.grads((a, bb, cc) => tf.sum(tf.square(tf.relu(tf.add(tf.matMul(a as tf.Tensor2D, bb as tf.Tensor2D), cc)))))([x, w, b]);
  for (let i = 0; i < 3; i++) {
    const o = ours[i]!.dataSync();
    const r = builtin[i]!.dataSync();
    for (let j = 0; j < o.length; j++) assert.ok(Math.abs(o[j]! - r[j]!) < 1e-5 * (1 + Math.abs(r[j]!)));
  }
});

test('dense leaves no tensors behind', () => {
  const before = tf.memory().numTensors;
  for (let i = 0; i < 5; i++) {
    const x = tf.randomNormal([3, 4]) as tf.Tensor2D;
    const w = tf.randomNormal([4, 2]) as tf.Tensor2D;
    const b = tf.zeros([2]) as tf.Tensor1D;
    const g = tf.grads((a, bb, cc) => tf.sum(dense(a as tf.Tensor2D, bb as tf.Tensor2D, cc as tf.Tensor1D, true)))([x, w, b]);
    tf.dispose([x, w, b, ...g]);
  }
  assert.equal(tf.memory().numTensors, before);
});
