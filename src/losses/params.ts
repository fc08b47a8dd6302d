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
