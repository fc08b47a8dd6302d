import assert from 'node:assert/strict';
import { test } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import { UsageError } from '../../src/errors.ts';
import { compileExpression, parseExpression } from '../../src/losses/expr.ts';
import { checkPairLoss, TINY_DISTANCES } from './gradcheck.ts';
import { customPotentialLoss } from '../../src/losses/custom.ts';

const at = (src: string, d = 0): number => compileExpression(src).scalar(d);

test('numbers, precedence and associativity', () => {
  const cases: [string, number, number][] = [
    ['1 + 2 * 3', 0, 7],
    ['(1 + 2) * 3', 0, 9],
    ['1 - 2 - 3', 0, -4], // left-associative
    ['8 / 4 / 2', 0, 1],
    ['2 ^ 3 ^ 2', 0, 512], // right-associative: 2^9
    ['2 * 3 ^ 2', 0, 18],
    ['-d^2', 3, -9], // unary minus binds looser than ^
    ['(-d)^2', 3, 9],
    ['-2^-2', 0, -0.25], // -(2^(-2))
    ['d^-2', 2, 0.25],
    ['2*-d', 3, -6],
    ['d - -d', 1.5, 3],
    ['--d', 4, 4],
    ['.5', 0, 0.5],
    ['5.', 0, 5],
    ['1e-3', 0, 0.001],
    ['2.5E+2', 0, 250],
    ['D * 2', 0.25, 0.5],
    ['\td\t*\t2 ', 1, 2],
  ];
  for (const [src, d, expected] of cases) assert.equal(at(src, d), expected, src);
});

test('functions', () => {
  assert.equal(at('exp(0)'), 1);
  assert.ok(Math.abs(at('log(exp(2))') - 2) < 1e-15);
  assert.equal(at('sqrt(16)'), 4);
  assert.equal(at('abs(-3)'), 3);
  assert.equal(at('max(d, 1)', 0.5), 1);
  assert.equal(at('min(d, 1)', 0.5), 0.5);
  assert.equal(at('max(1 - d, 0)^2', 0.25), 0.5625);
  assert.ok(Math.abs(at('exp(-10*d)/d', 0.5) - Math.exp(-5) / 0.5) < 1e-15);
});

test('guards: finite at and below eps, in both forms, as documented', () => {
  assert.equal(at('1/d', 0), 1e7); // 1/max(d, 1e-7)
  assert.equal(at('1/(d - 1)', 1), 1e7); // sign kept, 0 → +eps
  assert.equal(at('1/(d - 1)', 0.5), -2);
  assert.equal(at('log(d)', 0), Math.log(1e-7));
  assert.equal(at('sqrt(d)', 0), Math.sqrt(1e-7));
  assert.equal(at('d^0', 0), 1);
  assert.equal(at('d^2', -3), 9); // positive integer powers unguarded
  assert.equal(at('(d - 2)^-1', 1), -1); // negative integer powers keep the sign
  assert.equal(at('d^0.5', 0), Math.sqrt(1e-7));
  assert.equal(at('exp(1000)'), Math.exp(80));
  assert.ok(Number.isFinite(at('d^-12', 0)) && at('d^-12', 0) <= 1.0000001e30);
  const srcs = ['1/d', 'log(d)', 'sqrt(d)', 'd^-3', 'd^-12', 'd^0.5', 'd^d', '1/(d*d)', 'exp(1/d)', 'log(sqrt(d))/d'];
  for (const src of srcs) {
    const e = compileExpression(src);
    const r = tf.tidy(() => {
      const d = tf.tensor1d(TINY_DISTANCES);
      const v = (e.tensor(d) as tf.Tensor1D).dataSync();
      const g = tf.grad((x) => tf.sum(e.tensor(x as tf.Tensor1D) as tf.Tensor1D))(d).dataSync();
      return { v: Array.from(v), g: Array.from(g) };
    });
    for (const x of [...r.v, ...r.g]) assert.ok(Number.isFinite(x), `${src} near 0: ${r.v} / ${r.g}`);
  }
});

test('tensor form = scalar form, gradient = finite differences', () => {
  const formulas = [
    'd^2', 'd^3', 'exp(-10*d)/d', 'log(1 + d)', '-log(d)', 'sqrt(d)', 'd^0.5', '1/d^2', 'd^-2',
    'abs(d - 0.3)', 'min(d, 2)^2', 'exp(-d^2/0.25)', '2^-d', 'd^d', 'max(1 - d, 0)^2 + 0.1', '3',
  ];
  for (let i = 0; i < formulas.length; i += 2) {
    checkPairLoss(customPotentialLoss({ pos: formulas[i]!, neg: formulas[i + 1] ?? 'd' }));
  }
});

test('constant expressions still give one value per distance', () => {
  const e = compileExpression('2 * 3');
  const v = tf.tidy(() => Array.from((e.tensor(tf.tensor1d([0, 1, 2])) as tf.Tensor1D).dataSync()));
  assert.deepEqual(v, [6, 6, 6]);
});

/** Asserts a UsageError whose message names `column` (and optionally matches `pattern`). */
function refused(src: string, column: number | null, pattern?: RegExp): void {
  assert.throws(
    () => compileExpression(src),
    (e: unknown) => {
      assert.ok(e instanceof UsageError, `${JSON.stringify(src.slice(0, 40))}: ${String(e)}`);
      if (column !== null) assert.match(e.message, new RegExp(`at column ${column}\\b`), e.message);
      if (pattern) assert.match(e.message, pattern);
      assert.ok(!e.message.includes('\n'), 'one line');
      return true;
    },
  );
}

test('errors name the column and what was expected', () => {
  assert.throws(() => compileExpression('d^ + 1'), {
    name: 'UsageError',
    message: 'expression "d^ + 1": unexpected "+" at column 4, expected a number, d, a function or "("',
  });
  refused('1/', 3, /end of input.*expected a number/);
  refused('((d)', 5, /expected "\)"/);
  refused('(d))', 4, /unexpected "\)"/);
  refused(')', 1);
  refused('max(d)', 6, /expected ","/);
  refused('log(d, 2)', 6, /expected "\)"/);
  refused('exp d', 5, /expected "\(" after exp/);
  refused('2d', 2, /expected an operator/);
  refused('1e', 1, /malformed number/);
  refused('1e999', 1, /out of range/);
  refused('1.2.3', 4);
  refused('d +', 4);
  refused('*d', 1);
  refused('d ** 2', 4);
  refused('EXP(d)', 1, /unknown name "EXP"/);
  refused('x', 1, /unknown name "x"/);
});

test('hostile input is refused, never evaluated', () => {
  refused('constructor', 1, /unknown name "constructor"/);
  refused('__proto__', 1, /unknown name "__proto__"/);
  refused('toString(d)', 1, /unknown name/);
  refused('process.exit()', 1, /unknown name "process"/);
  refused('d; process.exit(1)', 2, /unexpected character ";"/);
  refused('d;', 2);
  refused('this', 1);
  refused('d.constructor', 2, /unexpected character "\."|unexpected "\."/);
  refused('`${d}`', 1);
  refused('"d"', 1);
  refused('d\n', 2, /U\+000A/);
  refused('d × 2', 3, /"×"/);
  refused('𝑑 + 1', 1, /"𝑑"/); // an astral character counts as one column
  refused('d + 𝑑', 5);
  refused('d + é', 5);
  refused('', null, /empty/);
  refused('   ', null, /empty/);
  refused('('.repeat(10_000) + 'd' + ')'.repeat(10_000), null, /too long \(20001 characters, at most 500\)/);
  refused('('.repeat(65) + 'd' + ')'.repeat(65), 65, /nesting deeper than 64/);
  refused('-'.repeat(100) + 'd', 65, /nesting/);
  refused('d' + '^d'.repeat(70), null, /nesting/);
  assert.equal(at('('.repeat(60) + 'd' + ')'.repeat(60), 2), 2); // deep but allowed
  assert.throws(() => parseExpression(42 as unknown as string), UsageError);
});
