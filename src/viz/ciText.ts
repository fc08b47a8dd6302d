/**
 * A mean with its 95% CI, as text, for a measure with hard bounds (a fraction in [0, 1], a distance
 * >= 0). No Node imports: `serve`'s page says it too. With few seeds the t half-width is wide, and
 * mean ± half-width can pass 100% or go below 0, an interval no such measure has; there the
 * interval is shown clipped to the bounds, as results.json keeps a sweep's `ci`, with its ends
 * written out: "78.49% (42.55 to 100)".
 */

import { boundedInterval, type Bounds, FRACTION } from '../stats.ts';

// the bounds and the clipping are statistics (summariseFraction clips a results.json's `ci` the same way)
export { boundedInterval, type Bounds, FRACTION, NON_NEGATIVE } from '../stats.ts';

export interface CiFormat {
  bounds?: Bounds;
  /** shown value = scale · value (100 for a fraction in percent) */
  scale?: number;
  digits?: number;
  /** after the mean ('%' for a percent) */
  unit?: string;
}

/**
 * "0.123 ± 0.004" where mean ± half lies within the bounds; "0.123 (0 to 0.735)" where it does not
 * (an end at a bound written as the bound itself). No half-width (undefined, null, NaN): the mean alone.
 */
export function boundedWithCi(mean: number, half: number | null | undefined, f: CiFormat = {}): string {
  const { bounds = FRACTION, scale = 1, digits = 2, unit = '' } = f;
  const show = (x: number): string => (scale * x).toFixed(digits);
  const m = `${show(mean)}${unit}`;
  if (half === null || half === undefined || !Number.isFinite(half) || !Number.isFinite(mean)) return m;
  const iv = boundedInterval(mean, half, bounds);
  if (iv.fits) return `${m} ± ${show(half)}`;
  const end = (x: number): string => (x === bounds.lo || x === bounds.hi ? String(scale * x) : show(x));
  return `${m} (${end(iv.lo)} to ${end(iv.hi)})`;
}

/** A fraction in percent: "97.34% ± 0.12", or "78.49% (42.55 to 100)" (unit '' in a page column titled in %). */
export function fractionWithCi(mean: number, half: number | null | undefined, unit = '%'): string {
  return boundedWithCi(mean, half, { bounds: FRACTION, scale: 100, digits: 2, unit });
}

/** Whether boundedWithCi shows this mean and half-width as a clipped interval. */
export function isClipped(mean: number | null | undefined, half: number | null | undefined, b: Bounds = FRACTION): boolean {
  if (mean === null || mean === undefined || half === null || half === undefined) return false;
  return Number.isFinite(mean) && Number.isFinite(half) && !boundedInterval(mean, half, b).fits;
}

/** The note beside a table where some interval was clipped. */
export const CLIPPED_CI_NOTE = 'Where mean ± half-width would pass a bound (below 0, above 100%) with few seeds, the 95% CI is shown clipped to it, as (low to high).';
