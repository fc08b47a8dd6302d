import assert from 'node:assert/strict';
import { before, test } from 'node:test';
import { initBackend } from '../../src/engine/backend.ts';
import { tf } from '../../src/engine/tfjs.ts';
import { createOptimizer } from '../../src/engine/optimizers.ts';
import { UsageError } from '../../src/errors.ts';

before(async () => {
  await initBackend('cpu');
});

/** Run `steps` updates of one scalar weight with the gradient sequence `gs` and return the weights. */
function run(name: string, gs: number[], opts: Record<string, number | boolean> = {}): number[] {
  const opt = createOptimizer(name, opts);
  const w = tf.variable(tf.scalar(1));
  const out: number[] = [];
  for (const g of gs) {
    const gt = tf.scalar(g);
    opt.apply([w], [gt]);
    gt.dispose();
    out.push(w.dataSync()[0]!);
  }
  opt.dispose();
  w.dispose();
  return out;
}

const close = (a: number[], b: number[]) => a.forEach((x, i) => assert.ok(Math.abs(x - b[i]!) < 1e-6, `step ${i}: ${x} vs ${b[i]}`));

test('RMSprop has Keras 2 semantics: epsilon outside the square root', () => {
  const gs = [0.5, -0.2, 0.1];
  let v = 0;
  let w = 1;
  const expected = gs.map((g) => {
    v = 0.9 * v + 0.1 * g * g;
    w -= (0.001 * g) / (Math.sqrt(v) + 1e-7);
    return w;
  });
  close(run('RMSprop', gs), expected);
});

test('Adam, SGD with momentum and Adagrad follow their Keras 2 updates', () => {
  const gs = [0.3, 0.1, -0.4];
  let m = 0;
  let v = 0;
  let w = 1;
  close(
    run('adam', gs),
    gs.map((g, i) => {
      const t = i + 1;
      m = 0.9 * m + 0.1 * g;
      v = 0.999 * v + 0.001 * g * g;
      w -= ((0.001 * Math.sqrt(1 - 0.999 ** t)) / (1 - 0.9 ** t)) * (m / (Math.sqrt(v) + 1e-7));
      return w;
    }),
  );
  let u = 0;
  w = 1;
  close(
    run('SGD', gs, { momentum: 0.9, learningRate: 0.1 }),
    gs.map((g) => {
      u = 0.9 * u - 0.1 * g;
      w += u;
      return w;
    }),
  );
  let a = 0;
  w = 1;
  close(
    run('Adagrad', gs),
    gs.map((g) => {
      a += g * g;
      w -= (0.01 * g) / (Math.sqrt(a) + 1e-7);
      return w;
    }),
  );
});

test('optimizer state round-trips: a restored optimizer continues identically', () => {
  const gs = [0.3, 0.1, -0.4, 0.2];
  const full = run('adam', gs);
  const opt = createOptimizer('adam');
  const w = tf.variable(tf.scalar(1));
  for (const g of gs.slice(0, 2)) opt.apply([w], [tf.scalar(g)]);
  const state = opt.getState();
  const weight = w.dataSync()[0]!;
  const opt2 = createOptimizer('adam');
  opt2.setState(state);
  const w2 = tf.variable(tf.scalar(weight));
  const rest = gs.slice(2).map((g) => {
    opt2.apply([w2], [tf.scalar(g)]);
    return w2.dataSync()[0]!;
  });
  assert.deepEqual(rest, full.slice(2));
});

test('names are case-insensitive; unknown names and bad learning rates are usage errors', () => {
  assert.equal(createOptimizer('RMSprop').name, 'rmsprop');
  assert.throws(() => createOptimizer('lbfgs'), (e: unknown) => e instanceof UsageError && /valid optimizers: rmsprop, adam, sgd, adagrad/.test(e.message));
  assert.throws(() => createOptimizer('adam', { learningRate: -1 }), UsageError);
});
