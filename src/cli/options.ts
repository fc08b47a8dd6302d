import { UsageError } from '../errors.ts';
import { checkLossParams, paramList } from '../experiments/lossSpec.ts';
import type { LossParams } from '../losses/registry.ts';
import { LOSS_PARAM_OPTIONS } from '../train/config.ts';

/** Option value parsers for commander: they throw UsageError with the option's name. */
export const intArg =
  (name: string, min: number, max?: number) =>
  (v: string): number => {
    const x = Number(v);
    if (!/^[+-]?\d+$/.test(v.trim()) || !Number.isSafeInteger(x) || x < min || (max !== undefined && x > max)) {
      throw new UsageError(`${name} must be an integer ${max === undefined ? `>= ${min}` : `from ${min} to ${max}`}, got "${v}"`);
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

/**
 * A file or folder value: an empty one is refused. '' named the current folder (`train --out ''`
 * wrote its run files there, `compare --out ''` its whole comparison) or nothing at all (`train
 * --resume ''` started a new run, `train --init-weights ''` dropped the weights unsaid).
 * `what` is "a folder", "a file" or "a path".
 */
export const pathArg =
  (name: string, what: string) =>
  (v: string): string => {
    if (v.trim() === '') throw new UsageError(`${name} needs ${what}, got "${v}"`);
    return v;
  };

/** `--param key=value`, repeatable, for loss parameters without their own option. */
export const collectParam = (v: string, prev: Record<string, string> = {}): Record<string, string> => {
  const eq = v.indexOf('=');
  if (eq < 1) throw new UsageError(`--param takes key=value, got "${v}"`);
  return { ...prev, [v.slice(0, eq)]: v.slice(eq + 1) };
};

/** The loss options of `train`, one per LOSS_PARAM_OPTIONS key (commander names --proxy-lr's value proxyLr), and --param. */
export interface LossCliOptions {
  margin?: number;
  kappa?: number;
  power?: number;
  pos?: string;
  neg?: string;
  param?: Record<string, string>;
  /** arcface, cosface, proxy-anchor: the class weights' learning rate (the loss parameter proxy-lr) */
  proxyLr?: number;
}

/** The value of a loss parameter's own option, as commander stores it (--proxy-lr: proxyLr). */
const ownOption = (o: LossCliOptions, key: (typeof LOSS_PARAM_OPTIONS)[number]): number | string | undefined =>
  o[key === 'proxy-lr' ? 'proxyLr' : key];

/**
 * The loss parameters of `train`'s options, checked against the loss as `compare --losses` checks
 * a spec (the same function): an option the loss does not take, or a --param key it does not
 * know, is refused rather than silently ignored.
 */
export function lossParamsFrom(loss: string, o: LossCliOptions): LossParams {
  const raw: LossParams = { ...(o.param ?? {}) };
  const byOption = new Set<string>();
  for (const key of LOSS_PARAM_OPTIONS) {
    const v = ownOption(o, key);
    if (v === undefined) continue;
    if (o.param?.[key] !== undefined) throw new UsageError(`--${key} and --param ${key}=... set the same parameter; give one of them`);
    raw[key] = v;
    byOption.add(key);
  }
  // the refusal names what was typed: the parameter's own option, or the --param that set it
  const option = (key: string): string => (byOption.has(key) ? `--${key}` : `--param ${key}=${String(raw[key])}`);
  const { params } = checkLossParams(loss, raw, (key, known) =>
    key === 'pos' || key === 'neg'
      ? `--pos and --neg are for --loss custom; loss ${loss} has no formulas to set (${paramList(known)})`
      : `${option(key)}: loss ${loss} has no parameter "${key}" (${paramList(known)})`,
  );
  return params;
}
