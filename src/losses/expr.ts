/**
 * A small, safe expression language for custom potentials V(d): parsed by recursive descent
 * into a tree and compiled to closures. Nothing is ever evaluated as JavaScript source
 * (no eval, no Function), and names are looked up in fixed tables, never on objects.
 *
 * Grammar (whitespace = spaces and tabs, ignored between tokens):
 *   expr    := term (("+" | "-") term)*
 *   term    := unary (("*" | "/") unary)*
 *   unary   := "-" unary | power                (no unary plus: "d^ + 1" is an error)
 *   power   := primary ("^" unary)?             right-associative: 2^3^2 = 2^(3^2)
 *   primary := number | "d" | "D" | func "(" expr ("," expr)? ")" | "(" expr ")"
 *   number  := digits ["." digits] | "." digits, then optionally (e|E) [+-] digits
 *   func    := exp | log | sqrt | abs (one argument) | max | min (two arguments)
 * Unary minus binds looser than "^", as in mathematics: -d^2 = -(d^2), while d^-2 = d^(-2).
 *
 * Limits: at most 500 characters and 64 levels of nesting (parentheses, calls, unary signs
 * and exponents all count). Errors are UsageErrors naming the 1-based column (counted in
 * characters, i.e. Unicode code points) and what was expected there.
 *
 * Guards (identical in the scalar and the tensor form, so both compute the same function):
 * with ε = DISTANCE_EPSILON,
 * - log(x)  evaluates log(max(x, ε));
 * - sqrt(x) evaluates sqrt(max(x, ε))  (so its slope stays finite; sqrt(0) gives √ε ≈ 3.2e-4);
 * - x / y   divides by y pushed away from 0 keeping its sign: max(y, ε) if y >= 0, else min(y, −ε);
 * - x ^ y   y a constant 0: the constant 1; y a constant positive integer: no guard;
 *           y a constant negative integer: x pushed away from 0 keeping its sign, to at least
 *           negativePowerFloor(|y|) = max(ε, 10^(−30/(|y|+1))) in magnitude, so that x^y and
 *           its slope stay below float32's maximum even for large |y|;
 *           y any other constant: x >= ε (>= negativePowerFloor(|y|) when y < 0), because a
 *           real power of a negative number does not exist and x^y with 0 < y < 1 has an
 *           infinite slope at 0; y depending on d: x >= ε;
 * - exp(x)  evaluates exp(min(x, 80)) (e^80 ≈ 5.5e34, inside float32's range).
 * Below a guard the guarded quantity is constant, so its gradient there is 0, never Inf/NaN.
 * At d = 0 every expression built from these is therefore finite, with a finite gradient,
 * unless it overflows float32 by composition (e.g. exp(80)*exp(80), or 1/d/d/d/d/d/d).
 */
import * as tf from '@tensorflow/tfjs-core';
import { UsageError } from '../errors.ts';
import type { Tensor1D } from '../tensor.ts';
import { DISTANCE_EPSILON } from './types.ts';

export const MAX_EXPRESSION_LENGTH = 500;
export const MAX_EXPRESSION_DEPTH = 64;
/** exp's argument is capped here (see the guards above) */
export const EXP_ARGUMENT_CAP = 80;

export type ExprNode =
  | { readonly type: 'number'; readonly value: number }
  | { readonly type: 'variable' }
  | { readonly type: 'negate'; readonly arg: ExprNode }
  | { readonly type: 'binary'; readonly op: '+' | '-' | '*' | '/' | '^'; readonly left: ExprNode; readonly right: ExprNode }
  | { readonly type: 'call'; readonly fn: FunctionName; readonly args: readonly ExprNode[] };

export type FunctionName = 'exp' | 'log' | 'sqrt' | 'abs' | 'max' | 'min';

/** Arity per function; a Map, so that names like "constructor" find nothing. */
const FUNCTIONS = new Map<string, { name: FunctionName; arity: 1 | 2 }>([
  ['exp', { name: 'exp', arity: 1 }],
  ['log', { name: 'log', arity: 1 }],
  ['sqrt', { name: 'sqrt', arity: 1 }],
  ['abs', { name: 'abs', arity: 1 }],
  ['max', { name: 'max', arity: 2 }],
  ['min', { name: 'min', arity: 2 }],
]);

const EXPECT_OPERAND = 'a number, d, a function or "("';
const EXPECT_OPERATOR = 'an operator or the end of the expression';
const FUNCTION_LIST = [...FUNCTIONS.keys()].join(', ');

/** 'invalid' carries a lexical error, raised only when the parser reaches it (leftmost first) */
type TokenType = 'number' | 'name' | 'op' | 'end' | 'invalid';
interface Token {
  type: TokenType;
  text: string;
  /** 1-based column in code points */
  col: number;
  value?: number;
  message?: string;
}

/** The expression as quoted in messages: cut to 60 characters, escaped (one line). */
function shown(source: string): string {
  const chars = Array.from(source);
  return JSON.stringify(chars.length <= 60 ? source : `${chars.slice(0, 57).join('')}...`);
}

function fail(source: string, message: string): never {
  throw new UsageError(`expression ${shown(source)}: ${message}`);
}

function describe(t: Token): string {
  if (t.type === 'end') return 'end of input';
  return `"${t.text}"`;
}

function isDigit(c: string | undefined): boolean {
  return c !== undefined && c >= '0' && c <= '9';
}

function isNameStart(c: string): boolean {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c === '_' || c === '$';
}

function tokenize(source: string): Token[] {
  const chars = Array.from(source);
  const tokens: Token[] = [];
  const invalid = (col: number, message: string): Token[] => {
    tokens.push({ type: 'invalid', text: '', col, message });
    return tokens;
  };
  let i = 0;
  while (i < chars.length) {
    const c = chars[i]!;
    const col = i + 1;
    if (c === ' ' || c === '\t') {
      i++;
    } else if (isDigit(c) || (c === '.' && isDigit(chars[i + 1]))) {
      let j = i;
      while (isDigit(chars[j])) j++;
      if (chars[j] === '.') {
        j++;
        while (isDigit(chars[j])) j++;
      }
      if (chars[j] === 'e' || chars[j] === 'E') {
        let k = j + 1;
        if (chars[k] === '+' || chars[k] === '-') k++;
        if (!isDigit(chars[k])) {
          const text = chars.slice(i, k + 1).join('');
          return invalid(col, `malformed number "${text}" at column ${col}, expected digits after "${chars[j]}"`);
        }
        while (isDigit(chars[k])) k++;
        j = k;
      }
      const text = chars.slice(i, j).join('');
      const value = Number(text);
      if (!Number.isFinite(value)) return invalid(col, `number "${text}" at column ${col} is out of range`);
      tokens.push({ type: 'number', text, col, value });
      i = j;
    } else if (isNameStart(c)) {
      let j = i;
      while (j < chars.length && (isNameStart(chars[j]!) || isDigit(chars[j]))) j++;
      tokens.push({ type: 'name', text: chars.slice(i, j).join(''), col });
      i = j;
    } else if ('+-*/^(),'.includes(c)) {
      tokens.push({ type: 'op', text: c, col });
      i++;
    } else {
      const code = c.codePointAt(0)!;
      const what = code < 0x20 || code === 0x7f ? `U+${code.toString(16).toUpperCase().padStart(4, '0')}` : c;
      return invalid(col, `unexpected character "${what}" at column ${col}; allowed are numbers, d, + - * / ^ ( ) , and ${FUNCTION_LIST}`);
    }
  }
  tokens.push({ type: 'end', text: '', col: chars.length + 1 });
  return tokens;
}

/** Parses an expression in the variable d (or D). Throws UsageError on anything else. */
export function parseExpression(source: string): ExprNode {
  if (typeof source !== 'string') throw new UsageError('expression: expected a string');
  const length = Array.from(source).length;
  if (length > MAX_EXPRESSION_LENGTH) {
    throw new UsageError(`expression is too long (${length} characters, at most ${MAX_EXPRESSION_LENGTH})`);
  }
  if (source.trim() === '') throw new UsageError('expression is empty, expected a formula in d such as "d^2"');
  const tokens = tokenize(source);
  let pos = 0;
  let depth = 0;
  const peek = (): Token => {
    const t = tokens[pos]!;
    if (t.type === 'invalid') fail(source, t.message!);
    return t;
  };
  const isOp = (t: Token, text: string): boolean => t.type === 'op' && t.text === text;
  const enter = (t: Token): void => {
    if (++depth > MAX_EXPRESSION_DEPTH) fail(source, `nesting deeper than ${MAX_EXPRESSION_DEPTH} levels at column ${t.col}`);
  };
  const expect = (text: string): void => {
    const t = peek();
    if (!isOp(t, text)) fail(source, `unexpected ${describe(t)} at column ${t.col}, expected "${text}"`);
    pos++;
  };

  function expr(): ExprNode {
    let left = term();
    for (let t = peek(); isOp(t, '+') || isOp(t, '-'); t = peek()) {
      pos++;
      left = { type: 'binary', op: t.text as '+' | '-', left, right: term() };
    }
    return left;
  }

  function term(): ExprNode {
    let left = unary();
    for (let t = peek(); isOp(t, '*') || isOp(t, '/'); t = peek()) {
      pos++;
      left = { type: 'binary', op: t.text as '*' | '/', left, right: unary() };
    }
    return left;
  }

  function unary(): ExprNode {
    const t = peek();
    if (isOp(t, '-')) {
      pos++;
      enter(t);
      const arg = unary();
      depth--;
      return { type: 'negate', arg };
    }
    return power();
  }

  function power(): ExprNode {
    const base = primary();
    const t = peek();
    if (!isOp(t, '^')) return base;
    pos++;
    enter(t);
    const exponent = unary();
    depth--;
    return { type: 'binary', op: '^', left: base, right: exponent };
  }

  function primary(): ExprNode {
    const t = peek();
    if (t.type === 'number') {
      pos++;
      return { type: 'number', value: t.value! };
    }
    if (t.type === 'name') {
      pos++;
      if (t.text === 'd' || t.text === 'D') return { type: 'variable' };
      const fn = FUNCTIONS.get(t.text);
      if (!fn) {
        fail(source, `unknown name "${t.text}" at column ${t.col}, expected d or a function (${FUNCTION_LIST})`);
      }
      const open = peek();
      if (!isOp(open, '(')) fail(source, `unexpected ${describe(open)} at column ${open.col}, expected "(" after ${fn.name}`);
      pos++;
      enter(open);
      const args = [expr()];
      if (fn.arity === 2) {
        expect(',');
        args.push(expr());
      }
      expect(')');
      depth--;
      return { type: 'call', fn: fn.name, args };
    }
    if (isOp(t, '(')) {
      pos++;
      enter(t);
      const inner = expr();
      expect(')');
      depth--;
      return inner;
    }
    return fail(source, `unexpected ${describe(t)} at column ${t.col}, expected ${EXPECT_OPERAND}`);
  }

  const root = expr();
  const rest = peek();
  if (rest.type !== 'end') fail(source, `unexpected ${describe(rest)} at column ${rest.col}, expected ${EXPECT_OPERATOR}`);
  return root;
}

/** True when the subtree does not depend on d. */
function isConstant(node: ExprNode): boolean {
  switch (node.type) {
    case 'number':
      return true;
    case 'variable':
      return false;
    case 'negate':
      return isConstant(node.arg);
    case 'binary':
      return isConstant(node.left) && isConstant(node.right);
    case 'call':
      return node.args.every(isConstant);
  }
}

const EPS = DISTANCE_EPSILON;

/**
 * The smallest magnitude a base may have under a negative exponent −q: max(ε, 10^(−30/(q+1))).
 * Then |base|^−q <= 1e30 and its slope q·|base|^−(q+1) <= q·1e30, both inside float32's range
 * (for q <= 3 this is just ε). Shared with the `power` loss.
 */
export function negativePowerFloor(q: number): number {
  return Math.max(EPS, 10 ** (-30 / (q + 1)));
}

/**
 * How the base x of x^y is guarded, from the exponent y:
 * - y a constant 0: the result is the constant 1 (also at x = 0, whose slope would be 0·0^−1);
 * - y a constant positive integer: no guard;
 * - y a constant negative integer: |x| >= negativePowerFloor(|y|), keeping the sign of x;
 * - y any other constant: x >= ε (or >= negativePowerFloor(|y|) when y < 0);
 * - y depending on d: x >= ε.
 */
type PowerGuard =
  | { kind: 'one' }
  | { kind: 'none' }
  | { kind: 'signed'; floor: number }
  | { kind: 'positive'; floor: number };

function powerGuard(exponent: ExprNode): PowerGuard {
  if (!isConstant(exponent)) return { kind: 'positive', floor: EPS };
  const y = compileScalar(exponent)(0);
  if (y === 0) return { kind: 'one' };
  const floor = y < 0 ? negativePowerFloor(-y) : EPS;
  if (!Number.isInteger(y)) return { kind: 'positive', floor };
  return y > 0 ? { kind: 'none' } : { kind: 'signed', floor };
}

const awayFromZero = (y: number, floor: number): number => (y < 0 ? Math.min(y, -floor) : Math.max(y, floor));

function scalarPower(a: (d: number) => number, b: (d: number) => number, guard: PowerGuard): (d: number) => number {
  switch (guard.kind) {
    case 'one':
      return () => 1;
    case 'none':
      return (d) => a(d) ** b(d);
    case 'signed':
      return (d) => awayFromZero(a(d), guard.floor) ** b(d);
    case 'positive':
      return (d) => Math.max(a(d), guard.floor) ** b(d);
  }
}

function scalarBinary(node: Extract<ExprNode, { type: 'binary' }>): (d: number) => number {
  const a = compileScalar(node.left);
  const b = compileScalar(node.right);
  switch (node.op) {
    case '+':
      return (d) => a(d) + b(d);
    case '-':
      return (d) => a(d) - b(d);
    case '*':
      return (d) => a(d) * b(d);
    case '/':
      return (d) => a(d) / awayFromZero(b(d), EPS);
    case '^':
      return scalarPower(a, b, powerGuard(node.right));
  }
}

function scalarCall(node: Extract<ExprNode, { type: 'call' }>): (d: number) => number {
  const a = compileScalar(node.args[0]!);
  switch (node.fn) {
    case 'exp':
      return (d) => Math.exp(Math.min(a(d), EXP_ARGUMENT_CAP));
    case 'log':
      return (d) => Math.log(Math.max(a(d), EPS));
    case 'sqrt':
      return (d) => Math.sqrt(Math.max(a(d), EPS));
    case 'abs':
      return (d) => Math.abs(a(d));
    case 'max': {
      const b = compileScalar(node.args[1]!);
      return (d) => Math.max(a(d), b(d));
    }
    case 'min': {
      const b = compileScalar(node.args[1]!);
      return (d) => Math.min(a(d), b(d));
    }
  }
}

/** The scalar form, in float64, with the same guards as the tensor form. */
export function compileScalar(node: ExprNode): (d: number) => number {
  switch (node.type) {
    case 'number': {
      const v = node.value;
      return () => v;
    }
    case 'variable':
      return (d) => d;
    case 'negate': {
      const a = compileScalar(node.arg);
      return (d) => -a(d);
    }
    case 'binary':
      return scalarBinary(node);
    case 'call':
      return scalarCall(node);
  }
}

type TensorFn = (d: tf.Tensor1D) => tf.Tensor;

/**
 * sign(y)·max(|y|, floor) with sign(0) = +1. Written with sign/abs rather than tf.where,
 * because the comparison tf.where needs has no gradient in tfjs (sign's gradient is 0).
 */
function tensorAwayFromZero(y: tf.Tensor, floor: number): tf.Tensor {
  const s = tf.sign(tf.add(tf.sign(y), 0.5));
  return tf.mul(s, tf.maximum(tf.abs(y), floor));
}

function tensorBinary(node: Extract<ExprNode, { type: 'binary' }>): TensorFn {
  const a = compileTensorNode(node.left);
  const b = compileTensorNode(node.right);
  switch (node.op) {
    case '+':
      return (d) => tf.add(a(d), b(d));
    case '-':
      return (d) => tf.sub(a(d), b(d));
    case '*':
      return (d) => tf.mul(a(d), b(d));
    case '/': {
      if (isConstant(node.right)) {
        const y = awayFromZero(compileScalar(node.right)(0), EPS);
        return (d) => tf.div(a(d), y);
      }
      return (d) => tf.div(a(d), tensorAwayFromZero(b(d), EPS));
    }
    case '^': {
      const guard = powerGuard(node.right);
      switch (guard.kind) {
        case 'one':
          return (d) => tf.onesLike(d);
        case 'none':
          return (d) => tf.pow(a(d), b(d));
        case 'signed':
          return (d) => tf.pow(tensorAwayFromZero(a(d), guard.floor), b(d));
        case 'positive':
          return (d) => tf.pow(tf.maximum(a(d), guard.floor), b(d));
      }
    }
  }
}

function tensorCall(node: Extract<ExprNode, { type: 'call' }>): TensorFn {
  const a = compileTensorNode(node.args[0]!);
  switch (node.fn) {
    case 'exp':
      return (d) => tf.exp(tf.minimum(a(d), EXP_ARGUMENT_CAP));
    case 'log':
      return (d) => tf.log(tf.maximum(a(d), EPS));
    case 'sqrt':
      return (d) => tf.sqrt(tf.maximum(a(d), EPS));
    case 'abs':
      return (d) => tf.abs(a(d));
    case 'max': {
      const b = compileTensorNode(node.args[1]!);
      return (d) => tf.maximum(a(d), b(d));
    }
    case 'min': {
      const b = compileTensorNode(node.args[1]!);
      return (d) => tf.minimum(a(d), b(d));
    }
  }
}

function compileTensorNode(node: ExprNode): TensorFn {
  if (isConstant(node)) {
    // constant subtrees are folded once, in float64
    const v = compileScalar(node)(0);
    return () => tf.scalar(v);
  }
  switch (node.type) {
    case 'number': {
      const v = node.value;
      return () => tf.scalar(v);
    }
    case 'variable':
      return (d) => d;
    case 'negate': {
      const a = compileTensorNode(node.arg);
      return (d) => tf.neg(a(d));
    }
    case 'binary':
      return tensorBinary(node);
    case 'call':
      return tensorCall(node);
  }
}

/** The tensor form: element-wise V(d), differentiable by the engine, inside tidy. */
export function compileTensor(node: ExprNode): (d: Tensor1D) => Tensor1D {
  const f = compileTensorNode(node);
  return (t) =>
    tf.tidy(() => {
      const d = t as tf.Tensor1D;
      const r = f(d);
      // A constant (or constant-folded) result still gets d's shape and a path to d (slope 0).
      return (r.rank === 0 ? tf.add(tf.mul(d, 0), r) : r) as tf.Tensor1D;
    });
}

export interface CompiledExpression {
  readonly source: string;
  readonly ast: ExprNode;
  /** V(d) in float64, with the guards */
  scalar(d: number): number;
  /** V(d) element-wise on a tensor, with the same guards */
  tensor(d: Tensor1D): Tensor1D;
}

/** Parses and compiles; throws UsageError with the column of the first problem. */
export function compileExpression(source: string): CompiledExpression {
  const ast = parseExpression(source);
  const scalar = compileScalar(ast);
  const tensor = compileTensor(ast);
  return { source, ast, scalar, tensor };
}
