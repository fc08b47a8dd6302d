import * as tf from '@tensorflow/tfjs-core';
import { UsageError } from '../errors.ts';
import { compileExpression } from './expr.ts';
import type { PairLoss } from './types.ts';

export interface CustomPotentials {
  /** V_pos(d), the potential felt by same-class pairs, e.g. "d^2" */
  pos: string;
  /** V_neg(d), the potential felt by different-class pairs, e.g. "exp(-10*d)/d" */
  neg: string;
}

/**
 * A pair loss from two user formulas in d: L = Y·V_pos(D) + (1 − Y)·V_neg(D). The formulas
 * are parsed by the safe expression language of expr.ts (never evaluated as code), which
 * also guards singular points (log, sqrt, division, negative powers) so that training never
 * sees Inf or NaN at D = 0; see expr.ts for exactly what is guarded.
 */
export function customPotentialLoss(potentials: CustomPotentials): PairLoss {
  const parse = (which: 'pos' | 'neg') => {
    const src = potentials[which];
    if (typeof src !== 'string') throw new UsageError(`custom loss: the ${which} potential is missing, e.g. ${which}="d^2"`);
    try {
      return compileExpression(src);
    } catch (e) {
      if (e instanceof UsageError) throw new UsageError(`custom loss, ${which} potential: ${e.message}`);
      throw e;
    }
  };
  const pos = parse('pos');
  const neg = parse('neg');
  return {
    kind: 'pair',
    name: 'custom',
    formula: `Y·(${pos.source.trim()}) + (1−Y)·(${neg.source.trim()})`,
    params: { pos: pos.source, neg: neg.source },
    perPair: (d: tf.Tensor1D, y: tf.Tensor1D) =>
      tf.tidy(() => tf.add(tf.mul(y, pos.tensor(d) as tf.Tensor1D), tf.mul(tf.sub(1, y), neg.tensor(d) as tf.Tensor1D)) as tf.Tensor1D),
    pos: pos.scalar,
    neg: neg.scalar,
  };
}
