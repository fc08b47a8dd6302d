import assert from 'node:assert/strict';
import { before, test } from 'node:test';
import { initBackend } from '../../src/engine/backend.ts';
import { tf } from '../../src/engine/tfjs.ts';
import { applyNetwork } from '../../src/engine/forward.ts';
import { UsageError } from '../../src/errors.ts';
import { buildNetwork } from '../../src/model/build.ts';
import { cnnNetwork } from '../../src/model/cnn.ts';
import type { DropoutMasks } from '../../src/model/network.ts';
import { Rng } from '../../src/rng.ts';

before(async () => {
  await initBackend('cpu');
});

test('the default CNN on 28x28 images: weight names, shapes and 223,744 parameters', () => {
  const net = buildNetwork({ base: 'cnn', embeddingDim: 128, dropout: 0.1 }, 28, 28, 1);
  assert.equal(net.kind, 'cnn');
  assert.equal(net.inputSize, 784);
  assert.deepEqual(net.weightSpecs(), [
    { name: 'conv_1.kernel', shape: [3, 3, 1, 32] },
    { name: 'conv_1.bias', shape: [32] },
    { name: 'conv_2.kernel', shape: [3, 3, 32, 64] },
    { name: 'conv_2.bias', shape: [64] },
    { name: 'dense_1.kernel', shape: [1600, 128] },
    { name: 'dense_1.bias', shape: [128] },
  ]);
  const params = net.weightSpecs().reduce((s, w) => s + w.shape.reduce((a, b) => a * b, 1), 0);
  assert.equal(params, 223744);
  // --embedding-dim flows into the head
  const small = buildNetwork({ base: 'cnn', embeddingDim: 16, dropout: 0 }, 28, 28, 1);
  assert.deepEqual(small.weightSpecs().at(-2), { name: 'dense_1.kernel', shape: [1600, 16] });
  assert.equal(small.embeddingDim, 16);
});

test('CNN init: Glorot-uniform kernels within their limits, zero biases, seeded', () => {
  const net = cnnNetwork();
  const a = net.initWeights(new Rng(3));
  const b = net.initWeights(new Rng(3));
  assert.deepEqual(a.map((w) => Array.from(w.data.subarray(0, 5))), b.map((w) => Array.from(w.data.subarray(0, 5))));
  const limit = (fanIn: number, fanOut: number) => Math.sqrt(6 / (fanIn + fanOut));
  const expected = [limit(9, 288), 0, limit(288, 576), 0, limit(1600, 128), 0];
  a.forEach((w, i) => {
    let max = 0;
    for (const v of w.data) max = Math.max(max, Math.abs(v));
    if (expected[i] === 0) assert.equal(max, 0, `${w.name} is zero`);
    else assert.ok(max <= expected[i]! && max > 0.9 * expected[i]!, `${w.name}: max |w| ${max}, limit ${expected[i]}`);
  });
});

test('the CNN refuses images too small for its blocks and bad settings, saying what fits', () => {
  assert.throws(() => buildNetwork({ base: 'cnn', embeddingDim: 8, dropout: 0 }, 9, 9), (e: Error) => e instanceof UsageError && /at least 10x10/.test(e.message));
  // 10x10 is the smallest that fits: conv 8x8, pool 4x4, conv 2x2, pool 1x1 -> 64 features
  assert.deepEqual(
    cnnNetwork({ height: 10, width: 10 }).weightSpecs().map((s) => s.shape),
    [[3, 3, 1, 32], [32], [3, 3, 32, 64], [64], [64, 128], [128]],
  );
  assert.throws(() => cnnNetwork({ embeddingDim: 0 }), UsageError);
  assert.throws(() => cnnNetwork({ dropout: 1 }), UsageError);
  assert.throws(() => buildNetwork({ base: 'resnet' as 'cnn', embeddingDim: 8, dropout: 0 }, 28, 28), /valid: mlp, cnn/);
});

// ---------------------------------------------------------------------------------------------
// Gradients against finite differences of an independent float64 implementation.

interface Tiny {
  h: number;
  w: number;
  c: number;
  filters: [number, number];
  emb: number;
}

/** Σ coef ⊙ G(x) in float64 with naive loops: conv (valid) + ReLU + max-pool (floor), twice, then dense + ReLU. */
function referenceLoss(t: Tiny, n: number, x: Float64Array, ws: Float64Array[], mask: Float64Array, coef: Float64Array): number {
  const block = (inp: Float64Array, h: number, w: number, c: number, kern: Float64Array, bias: Float64Array, co: number) => {
    const oh = h - 2;
    const ow = w - 2;
    const z = new Float64Array(n * oh * ow * co);
    for (let b = 0; b < n; b++)
      for (let y = 0; y < oh; y++)
        for (let xx = 0; xx < ow; xx++)
          for (let o = 0; o < co; o++) {
            let s = bias[o]!;
            for (let ky = 0; ky < 3; ky++)
              for (let kx = 0; kx < 3; kx++)
                for (let ci = 0; ci < c; ci++) s += inp[((b * h + y + ky) * w + xx + kx) * c + ci]! * kern[((ky * 3 + kx) * c + ci) * co + o]!;
            z[((b * oh + y) * ow + xx) * co + o] = Math.max(s, 0);
          }
    const ph = Math.floor(oh / 2);
    const pw = Math.floor(ow / 2);
    const p = new Float64Array(n * ph * pw * co);
    for (let b = 0; b < n; b++)
      for (let y = 0; y < ph; y++)
        for (let xx = 0; xx < pw; xx++)
          for (let o = 0; o < co; o++) {
            let m = -Infinity;
            for (let dy = 0; dy < 2; dy++) for (let dx = 0; dx < 2; dx++) m = Math.max(m, z[((b * oh + 2 * y + dy) * ow + 2 * xx + dx) * co + o]!);
            p[((b * ph + y) * pw + xx) * co + o] = m;
          }
    return { p, h: ph, w: pw };
  };
  const b1 = block(x, t.h, t.w, t.c, ws[0]!, ws[1]!, t.filters[0]);
  const b2 = block(b1.p, b1.h, b1.w, t.filters[0], ws[2]!, ws[3]!, t.filters[1]);
  const feat = b2.h * b2.w * t.filters[1];
  let s = 0;
  for (let b = 0; b < n; b++)
    for (let o = 0; o < t.emb; o++) {
      let v = ws[5]![o]!;
      for (let f = 0; f < feat; f++) v += b2.p[b * feat + f]! * mask[b * feat + f]! * ws[4]![f * t.emb + o]!;
      s += coef[b * t.emb + o]! * Math.max(v, 0);
    }
  return s;
}

for (const t of [
  { h: 14, w: 15, c: 1, filters: [3, 4], emb: 5 },
  { h: 12, w: 12, c: 2, filters: [2, 3], emb: 3 },
] as Tiny[]) {
  test(`CNN gradients match finite differences (${t.h}x${t.w}x${t.c}, filters ${t.filters.join('/')}, odd sizes and dropout)`, () => {
    const n = 3;
    const rng = new Rng(21 + t.c);
    const net = cnnNetwork({ height: t.h, width: t.w, channels: t.c, filters: t.filters, embeddingDim: t.emb, dropout: 0.25 });
    const init = net.initWeights(rng);
    // non-zero biases, so that the bias gradients and the ReLU kinks are exercised
    for (const w of init) if (w.shape.length === 1) for (let i = 0; i < w.data.length; i++) w.data[i] = 0.1 * (2 * rng.next() - 1);
    const x = Float32Array.from({ length: n * net.inputSize }, () => rng.next());
    // a black corner: windows of zeros after the ReLU (no gradient may flow there)
    for (let i = 0; i < 4 * t.w * t.c; i++) x[i] = 0;
    const feat = net.weightSpecs()[4]!.shape[0]!;
    const mask = Float32Array.from({ length: n * feat }, () => (rng.next() < 0.75 ? 1 / 0.75 : 0));
    const coef = Float32Array.from({ length: n * t.emb }, () => 2 * rng.next() - 1);
    const masks: DropoutMasks = (rows, cols) => {
      assert.deepEqual([rows, cols], [n, feat]);
      return tf.tensor2d(mask, [rows, cols]);
    };
    const vars = init.map((w) => tf.variable(tf.tensor(w.data, w.shape)));
    const { grads } = tf.variableGrads(
      () => tf.sum(tf.mul(applyNetwork(net, tf.tensor2d(x, [n, net.inputSize]), vars, masks), tf.tensor2d(coef, [n, t.emb]))) as tf.Scalar,
      vars,
    );
    const analytic = vars.map((v) => grads[v.name]!.dataSync());
    const ws = init.map((w) => Float64Array.from(w.data));
    const x64 = Float64Array.from(x);
    const m64 = Float64Array.from(mask);
    const c64 = Float64Array.from(coef);
    const h = 1e-6;
    ws.forEach((arr, wi) => {
      for (let i = 0; i < arr.length; i++) {
        const keep = arr[i]!;
        arr[i] = keep + h;
        const up = referenceLoss(t, n, x64, ws, m64, c64);
        arr[i] = keep - h;
        const down = referenceLoss(t, n, x64, ws, m64, c64);
        arr[i] = keep;
        const fd = (up - down) / (2 * h);
        const got = analytic[wi]![i]!;
        assert.ok(Math.abs(fd - got) <= 1e-3 + 1e-3 * Math.abs(fd), `${init[wi]!.name}[${i}]: finite difference ${fd}, gradient ${got}`);
      }
    });
    tf.dispose([...vars, ...Object.values(grads)]);
  });
}

test('the CNN forward pass gives the same embeddings with and without a gradient tape', () => {
  const net = cnnNetwork({ height: 12, width: 12, filters: [2, 3], embeddingDim: 4 });
  const vars = net.initWeights(new Rng(4)).map((w) => tf.variable(tf.tensor(w.data, w.shape)));
  const rng = new Rng(5);
  const x = tf.tensor2d(Float32Array.from({ length: 2 * 144 }, () => rng.next()), [2, 144]);
  const plain = applyNetwork(net, x, vars, null).dataSync();
  let taped: Float32Array | undefined;
  const { grads } = tf.variableGrads(() => {
    const e = applyNetwork(net, x, vars, null);
    taped = e.dataSync() as Float32Array;
    return tf.sum(e) as tf.Scalar;
  }, vars);
  for (let i = 0; i < plain.length; i++) assert.ok(Math.abs(plain[i]! - taped![i]!) < 1e-6);
  tf.dispose([x, ...vars, ...Object.values(grads)]);
});

test('CNN steps leave no tensors behind', () => {
  const net = cnnNetwork({ height: 12, width: 12, filters: [2, 3], embeddingDim: 4, dropout: 0.1 });
  const vars = net.initWeights(new Rng(6)).map((w) => tf.variable(tf.tensor(w.data, w.shape)));
  const x = tf.randomUniform([4, 144]) as tf.Tensor2D;
  const masks: DropoutMasks = (r, c) => tf.ones([r, c]) as tf.Tensor2D;
  const step = () => {
    const { value, grads } = tf.variableGrads(() => tf.sum(applyNetwork(net, x, vars, masks)) as tf.Scalar, vars);
    tf.dispose([value, ...Object.values(grads)]);
    tf.dispose(applyNetwork(net, x, vars, null));
  };
  step();
  const before = tf.memory().numTensors;
  for (let i = 0; i < 4; i++) step();
  assert.equal(tf.memory().numTensors, before);
  tf.dispose([x, ...vars]);
});
