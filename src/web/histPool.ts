/**
 * Pooling per-epoch distance histograms (distances.jsonl lines) of several seeds into one. Runs
 * of one loss usually share their grid; where a seed's first epoch gave it a narrower range
 * (dmax is a power of two, so grids nest), its bins are merged onto the widest grid exactly,
 * and its overflow (pairs beyond its own dmax) stays overflow: the panel says how many.
 */
import type { EpochDistances } from '../serve/distances.ts';

export interface PooledSide {
  n: number;
  counts: number[];
  over: number;
  mean: number | null;
}

export interface Pooled {
  dmax: number;
  bins: number;
  pos: PooledSide;
  neg: PooledSide;
  /** the lines pooled */
  runs: number;
  /** pairs beyond the narrower range of some seeds, counted in `over` though they may lie below dmax */
  narrowOver: number;
  /** lines left out: another bin count, or a range that does not nest */
  skipped: number;
}

/** Merge a side's counts from dmax `from` onto the grid of dmax `to` (to = from * 2^k). */
function coarsen(counts: readonly number[], factor: number): number[] {
  const out = new Array<number>(counts.length).fill(0);
  counts.forEach((c, i) => (out[Math.floor(i / factor)]! += c));
  return out;
}

/** `range`: pool onto this dmax (default: the widest of the lines), so a chart keeps its grid across epochs. */
export function poolHistograms(lines: readonly EpochDistances[], range?: number): Pooled | null {
  if (lines.length === 0) return null;
  const bins = lines[0]!.bins;
  const dmax = range ?? Math.max(...lines.filter((l) => l.bins === bins).map((l) => l.dmax));
  const side = (): PooledSide & { sum: number; weight: number } => ({ n: 0, counts: new Array<number>(bins).fill(0), over: 0, mean: null, sum: 0, weight: 0 });
  const pos = side();
  const neg = side();
  let runs = 0;
  let narrowOver = 0;
  let skipped = 0;
  for (const l of lines) {
    const factor = dmax / l.dmax;
    if (l.bins !== bins || !Number.isInteger(Math.log2(factor)) || factor > bins) {
      skipped++;
      continue;
    }
    runs++;
    for (const [into, from] of [[pos, l.pos], [neg, l.neg]] as const) {
      const c = factor === 1 ? from.counts : coarsen(from.counts, factor);
      c.forEach((v, i) => (into.counts[i]! += v));
      into.over += from.over;
      into.n += from.n;
      // weighted by n: pairs with a non-finite distance are rare enough not to matter here
      if (from.mean !== null) {
        into.sum += from.mean * from.n;
        into.weight += from.n;
      }
      if (factor > 1) narrowOver += from.over;
    }
  }
  if (runs === 0) return null;
  const done = (s: ReturnType<typeof side>): PooledSide => ({ n: s.n, counts: s.counts, over: s.over, mean: s.weight > 0 ? s.sum / s.weight : null });
  return { dmax, bins, pos: done(pos), neg: done(neg), runs, narrowOver, skipped };
}

/** The upper edge of the last non-empty bin over several histograms (at least one bin): a fixed x range across epochs. */
export function occupiedRange(hs: readonly Pooled[]): number {
  let top = 0;
  for (const p of hs) {
    const width = p.dmax / p.bins;
    for (const s of [p.pos, p.neg]) {
      for (let i = s.counts.length - 1; i >= 0; i--) {
        if (s.counts[i]! > 0) {
          top = Math.max(top, (i + 1) * width);
          break;
        }
      }
    }
  }
  return top > 0 ? top : Math.max(0, ...hs.map((p) => p.dmax / p.bins));
}

/** A sample of final test pair distances (results.json keeps up to 4,000 of each side per run). */
export interface FinalSample {
  pos: readonly number[];
  neg: readonly number[];
}

/**
 * The x range of results.json's final histograms: just above the largest finite distance of the
 * runs shown (one axis for every loss). A loop, not Math.max(...all): a compare of 30 runs holds
 * 240,000 distances, more arguments than a call's stack takes.
 */
export function finalRange(runs: readonly FinalSample[]): number {
  let top = 1e-9;
  for (const r of runs) {
    for (const side of [r.pos, r.neg]) for (const v of side) if (Number.isFinite(v) && v > top) top = v;
  }
  return top * 1.0001;
}

/**
 * Density per unit distance of the pooled finite values over `bins` equal bins of [0, max), so
 * that positive and negative samples of different sizes compare.
 */
export function densityHistogram(lists: readonly (readonly number[])[], max: number, bins: number): number[] {
  const counts = new Array<number>(bins).fill(0);
  let n = 0;
  for (const values of lists) {
    for (const v of values) {
      if (!Number.isFinite(v)) continue;
      counts[Math.min(bins - 1, Math.max(0, Math.floor((v / max) * bins)))]! += 1;
      n++;
    }
  }
  const width = max / bins;
  return counts.map((c) => (n > 0 ? c / (n * width) : 0));
}

/** What finalMeans reads of a results.json run (a run may lack its evaluation). */
export interface FinalRun {
  evaluation?: { pairs?: { stats?: { pos?: { mean: number }; neg?: { mean: number } } } };
}

/**
 * The mean positive and negative distance noted under a final histogram of `runs`, the seeds
 * shown: the mean over them of each run's own (over all its test pairs, not the histogram's
 * sample). With every seed shown that is the summary's mean over seeds; with one, that seed's
 * (the summary's figure beside one seed's histogram would describe other runs).
 */
export function finalMeans(runs: readonly FinalRun[]): { pos: number | null; neg: number | null } {
  const mean = (side: 'pos' | 'neg'): number | null => {
    const v = runs.map((r) => r.evaluation?.pairs?.stats?.[side]?.mean).filter((x): x is number => typeof x === 'number' && Number.isFinite(x));
    return v.length > 0 ? v.reduce((s, x) => s + x, 0) / v.length : null;
  };
  return { pos: mean('pos'), neg: mean('neg') };
}
