/**
 * Per-epoch histograms of the test pair distances, positives and negatives apart, written to
 * `distances.jsonl` in the run directory (one JSON line per epoch) for `siamese serve`'s epoch
 * slider. Recording only reads the distances the epoch's test evaluation computed already: the
 * training's numbers do not change.
 *
 * Bin edges are fixed for the whole run, so that epochs compare bin by bin: DISTANCE_BINS equal
 * bins over [0, dmax), plus an overflow count (D >= dmax, or not finite). dmax is
 *  - 2 for batch losses: they compare L2-normalised embeddings, whose distances are at most 2;
 *  - otherwise the smallest power of two at least DMAX_HEADROOM times the largest distance of the
 *    first epoch recorded. Distances of the other losses have no fixed scale (the contrastive
 *    margin keeps them near 1, semi-hard triplets let them grow past 20), so the run's own first
 *    epoch sets it, with room for the distances to grow. A power of two makes D * (bins / dmax)
 *    exact in floating point, so a distance's bin is exactly the one its edges say, and two runs
 *    with different dmax have grids that nest (the page can pool them on the coarser one).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomic } from '../io/atomic.ts';
import type { EvalResult, Training } from './trainer.ts';

export const DISTANCES_FILE = 'distances.jsonl';
export const DISTANCE_BINS = 64;
/** dmax is at least this many times the first epoch's largest distance */
export const DMAX_HEADROOM = 1.5;

/** The histogram of one side (positive or negative pairs) of one epoch. */
export interface SideHistogram {
  /** pairs on this side: the sum of counts and over */
  n: number;
  /** counts[i]: pairs with i * dmax / bins <= D < (i + 1) * dmax / bins */
  counts: number[];
  /** pairs with D >= dmax, or D not finite */
  over: number;
  /** mean of the finite distances (null when there are none) */
  mean: number | null;
}

/** One line of distances.jsonl. */
export interface EpochDistances {
  epoch: number;
  dmax: number;
  bins: number;
  pos: SideHistogram;
  neg: SideHistogram;
}

/** The histograms of one epoch's distances (labels: 1 = same class). */
export function histogramOf(distances: ArrayLike<number>, labels: ArrayLike<number>, epoch: number, dmax: number, bins = DISTANCE_BINS): EpochDistances {
  const side = (): { counts: number[]; over: number; sum: number; finite: number } => ({ counts: new Array<number>(bins).fill(0), over: 0, sum: 0, finite: 0 });
  const pos = side();
  const neg = side();
  const scale = bins / dmax;
  for (let i = 0; i < distances.length; i++) {
    const d = distances[i]!;
    const s = labels[i] ? pos : neg;
    if (Number.isFinite(d)) {
      s.sum += d;
      s.finite++;
    }
    // NaN fails both tests and lands in over, as do +Infinity and D >= dmax
    const b = Math.floor(d * scale);
    if (b >= 0 && b < bins) s.counts[b]!++;
    else s.over++;
  }
  const out = (s: ReturnType<typeof side>): SideHistogram => ({
    n: s.counts.reduce((a, c) => a + c, 0) + s.over,
    counts: s.counts,
    over: s.over,
    mean: s.finite > 0 ? s.sum / s.finite : null,
  });
  return { epoch, dmax, bins, pos: out(pos), neg: out(neg) };
}

/** dmax of a run (see the file comment): 2 for batch losses, else from its first epoch's distances. */
export function distanceRange(distances: ArrayLike<number>, batchLoss: boolean): number {
  if (batchLoss) return 2;
  let max = 0;
  for (let i = 0; i < distances.length; i++) if (Number.isFinite(distances[i]) && distances[i]! > max) max = distances[i]!;
  // all distances 0 (or none finite): a unit range; below 2^-20 the embedding has collapsed anyway
  if (!(max > 0)) return 1;
  return 2 ** Math.max(-20, Math.ceil(Math.log2(DMAX_HEADROOM * max)));
}

/**
 * The lines of an existing distances.jsonl that a resumed run keeps: the leading valid lines
 * with increasing epochs up to `upTo`, on one grid. Anything after the first line that breaks
 * this (a torn or foreign line, an epoch past the checkpoint) is dropped and written again.
 */
export function keptLines(text: string, upTo: number): EpochDistances[] {
  const kept: EpochDistances[] = [];
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue;
    let v: EpochDistances;
    try {
      v = JSON.parse(line) as EpochDistances;
    } catch {
      break;
    }
    const prev = kept[kept.length - 1];
    const ok =
      typeof v === 'object' && v !== null && Number.isInteger(v.epoch) && v.epoch >= 1 && v.epoch <= upTo &&
      (!prev || (v.epoch > prev.epoch && v.dmax === prev.dmax && v.bins === prev.bins)) &&
      typeof v.dmax === 'number' && v.dmax > 0 && v.bins === DISTANCE_BINS &&
      [v.pos, v.neg].every((s) => Array.isArray(s?.counts) && s.counts.length === v.bins);
    if (!ok) break;
    kept.push(v);
  }
  return kept;
}

/** Records a run's per-epoch distance histograms: open it once per (re)start, then record() after each epoch. */
export class EpochDistanceRecorder {
  private constructor(
    private readonly path: string,
    private readonly lines: string[],
    private dmax: number | undefined,
  ) {}

  /**
   * A new run starts an empty file. A resumed one keeps the lines of the epochs its checkpoint
   * holds; when the line of the checkpoint's own epoch is missing (the run stopped between the
   * checkpoint and this file), it is computed again from the checkpoint's weights: the same
   * distances, so the file ends as an uninterrupted run's would.
   */
  static async open(dir: string, training: Training, resume: boolean): Promise<EpochDistanceRecorder> {
    const path = join(dir, DISTANCES_FILE);
    let kept: EpochDistances[] = [];
    if (resume) {
      let text = '';
      try {
        text = readFileSync(path, 'utf8');
      } catch {
        // no file (a run from an older version): recording starts at this epoch
      }
      kept = keptLines(text, training.epoch);
    }
    const rec = new EpochDistanceRecorder(path, kept.map((l) => JSON.stringify(l)), kept[0]?.dmax);
    const last = kept[kept.length - 1]?.epoch ?? 0;
    if (resume && training.epoch > 0 && last < training.epoch) rec.add(training.epoch, training.evaluate(), training.loss.kind === 'batch');
    await rec.write();
    return rec;
  }

  /** Append the epoch just trained (its test evaluation, kept by the Training). */
  async record(training: Training): Promise<void> {
    const t = training.lastTest;
    // the evaluation of another epoch (never, in trainRun's loop): evaluate this one
    const res = t && t.epoch === training.epoch ? t : training.evaluate();
    this.add(training.epoch, res, training.loss.kind === 'batch');
    await this.write();
  }

  private add(epoch: number, res: EvalResult, batchLoss: boolean): void {
    this.dmax ??= distanceRange(res.distances, batchLoss);
    this.lines.push(JSON.stringify(histogramOf(res.distances, res.labels, epoch, this.dmax)));
  }

  /** Whole and atomic, as log.jsonl: a reader never sees half a line; about 700 bytes an epoch. */
  private async write(): Promise<void> {
    await writeFileAtomic(this.path, this.lines.map((l) => l + '\n').join(''));
  }
}
