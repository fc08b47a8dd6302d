/**
 * A tolerant reader of a run's distances.jsonl (train/epochDistances.ts writes it): every
 * complete line that is a well-formed histogram, and a message for each thing skipped (a last
 * line still being written, a line that is not JSON or not a histogram, an epoch out of order).
 * The page may trust every line it gets: lengths, integer counts and totals are checked here.
 */
import type { EpochDistances, SideHistogram } from '../train/epochDistances.ts';
import { jsonLines, readTextFile } from './scan.ts';

export type { EpochDistances, SideHistogram };

export interface DistancesRead {
  epochs: EpochDistances[];
  messages: string[];
}

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

export function readDistances(p: string): DistancesRead {
  const t = readTextFile(p, NAME);
  if (!t.ok) return { epochs: [], messages: [t.message] };
  const { rows, messages, partial } = jsonLines(t.value, NAME);
  const epochs: EpochDistances[] = [];
  for (const { line, value } of rows) {
    const e = parseDistanceLine(value);
    if (!e) {
      messages.push(`${NAME} line ${line} is not a distance histogram: skipped`);
      continue;
    }
    const prev = epochs[epochs.length - 1];
    if (prev && e.epoch <= prev.epoch) {
      messages.push(`${NAME} line ${line}: epoch ${e.epoch} after epoch ${prev.epoch}: skipped`);
      continue;
    }
    epochs.push(e);
  }
  if (partial) messages.push(`${NAME}: the last line is incomplete (being written): not shown yet`);
  return { epochs, messages };
}
