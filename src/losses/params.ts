/**
 * The loss factories' parameter checks, one line each (UsageError: exit 2). A scale parameter of
 * a batch loss (a temperature, alpha, beta, gamma, scale) divides or multiplies every logit, so 0
 * gives NaN or an infinite loss and a negative value turns the objective round without a sign of
 * it (PML does not check); a potential's kappa or exponent likewise has a sign its formula needs.
 */
import { UsageError } from '../errors.ts';

export function positive(name: string, key: string, v: number): number {
  if (!(Number.isFinite(v) && v > 0)) throw new UsageError(`${name} loss: ${key} must be a number > 0, got ${v}`);
  return v;
}

export function nonNegative(name: string, key: string, v: number): number {
  if (!(Number.isFinite(v) && v >= 0)) throw new UsageError(`${name} loss: ${key} must be a number >= 0, got ${v}`);
  return v;
}

/**
 * Loss parameters whose 0 stands for a default, not for the value 0 (so a search range must not
 * reach it: a trial drawing 0 would silently train with the default), and what 0 stands for.
 */
const ZERO_MEANS: Readonly<Record<string, { means: string; what: string }>> = {
  'proxy-lr': { means: "100x the network's learning rate", what: 'a rate' },
};

/** 0 (the default, when `key` has one) or a number > 0. */
export function zeroOrPositive(key: string, v: number): number {
  const z = ZERO_MEANS[key];
  if (!(Number.isFinite(v) && v >= 0)) throw new UsageError(`loss parameter ${key} must be >= 0${z ? ` (0 = ${z.means})` : ''}, got ${v}`);
  return v;
}

/** Why a search range LO.. of `key` is refused (its 0 is a default, so LO must be above it), or undefined. */
export function rangeRefusal(key: string, lo: number): string | undefined {
  const z = ZERO_MEANS[key];
  if (z === undefined || lo > 0) return undefined;
  return `its low bound must be > 0 (${key} 0 means the default, ${z.means}, not ${z.what} of 0; give the default by leaving ${key} out)`;
}
