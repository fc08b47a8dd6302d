import { UsageError } from '../errors.ts';
import type { LossParams } from '../losses/registry.ts';

/** Option value parsers for commander: they throw UsageError with the option's name. */
export const intArg =
  (name: string, min: number) =>
  (v: string): number => {
    const x = Number(v);
    if (!/^[+-]?\d+$/.test(v.trim()) || !Number.isSafeInteger(x) || x < min) {
      throw new UsageError(`${name} must be an integer >= ${min}, got "${v}"`);
    }
    return x;
  };

export const floatArg =
  (name: string, opts: { positive?: boolean } = {}) =>
  (v: string): number => {
    const x = Number(v);
    if (v.trim() === '' || !Number.isFinite(x) || (opts.positive && !(x > 0))) {
      throw new UsageError(`${name} must be a ${opts.positive ? 'positive ' : ''}number, got "${v}"`);
    }
    return x;
  };

/** `--param key=value`, repeatable, for loss parameters without their own option. */
export const collectParam = (v: string, prev: Record<string, string> = {}): Record<string, string> => {
  const eq = v.indexOf('=');
  if (eq < 1) throw new UsageError(`--param takes key=value, got "${v}"`);
  return { ...prev, [v.slice(0, eq)]: v.slice(eq + 1) };
};

export interface LossCliOptions {
  margin?: number;
  kappa?: number;
  power?: number;
  pos?: string;
  neg?: string;
  param?: Record<string, string>;
}

export function lossParamsFrom(o: LossCliOptions): LossParams {
  return { ...(o.param ?? {}), margin: o.margin, kappa: o.kappa, power: o.power, pos: o.pos, neg: o.neg };
}
