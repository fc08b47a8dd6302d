/**
 * A tolerant reader of a run's distances.jsonl (train/epochDistances.ts writes it): every
 * complete line that is a well-formed histogram, and a message for each thing skipped (a last
 * line still being written, a line that is not JSON or not a histogram, an epoch out of order).
 * The page may trust every line it gets: lengths, integer counts and totals are checked here.
 */
import type { EpochDistances, SideHistogram } from '../train/epochDistances.ts';
import type { LineParser } from './tail.ts';

export type { EpochDistances, SideHistogram };

/** more bins than any writer uses: a line claiming more is foreign */
const MAX_BINS = 4096;
const NAME = 'distances.jsonl';

const count = (v: unknown): v is number => Number.isSafeInteger(v) && (v as number) >= 0;

function side(v: unknown, bins: number): SideHistogram | null {
  if (typeof v !== 'object' || v === null) return null;
  const s = v as Record<string, unknown>;
  const counts = s['counts'];
  if (!Array.isArray(counts) || counts.length !== bins || !counts.every(count)) return null;
  if (!count(s['over']) || !count(s['n'])) return null;
  if ((counts as number[]).reduce((a, c) => a + c, 0) + (s['over'] as number) !== s['n']) return null;
  const mean = s['mean'];
  if (mean !== null && !(typeof mean === 'number' && Number.isFinite(mean))) return null;
  return { n: s['n'] as number, counts: counts as number[], over: s['over'] as number, mean: mean as number | null };
}

/** One line as a histogram, or null when it is not one. */
export function parseDistanceLine(v: unknown): EpochDistances | null {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return null;
  const o = v as Record<string, unknown>;
  const bins = o['bins'];
  const dmax = o['dmax'];
  if (!count(o['epoch']) || !Number.isInteger(bins) || (bins as number) < 1 || (bins as number) > MAX_BINS) return null;
  if (typeof dmax !== 'number' || !Number.isFinite(dmax) || dmax <= 0) return null;
  const pos = side(o['pos'], bins as number);
  const neg = side(o['neg'], bins as number);
  if (!pos || !neg) return null;
  return { epoch: o['epoch'] as number, dmax, bins: bins as number, pos, neg };
}

/** distances.jsonl's lines: a histogram per line, epochs increasing; the carry is the last epoch kept. */
export const DISTANCE_LINES: LineParser<EpochDistances, number | null> = {
  name: NAME,
  start: null,
  line(text, n, last) {
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch {
      return { skip: `${NAME} line ${n} is not JSON: skipped`, carry: last };
    }
    const e = parseDistanceLine(value);
    if (!e) return { skip: `${NAME} line ${n} is not a distance histogram: skipped`, carry: last };
    if (last !== null && e.epoch <= last) return { skip: `${NAME} line ${n}: epoch ${e.epoch} after epoch ${last}: skipped`, carry: last };
    return { record: e, carry: e.epoch };
  },
  partial: () => `${NAME}: the last line is incomplete (being written): not shown yet`,
};
