import { UsageError } from '../errors.ts';
import { readNpyFloat32Matrix, writeNpy } from '../io/npy.ts';
import { samePlace } from '../io/places.ts';
import { DEFAULT_PERPLEXITY, maxPerplexity, runTsne } from '../viz/tsne.ts';

export interface TsneCommandOptions {
  /** float32 (or float64) .npy matrix [N, D] */
  in: string;
  /** where to write the [N, 2] float32 .npy */
  out: string;
  perplexity?: number;
  seed?: number;
  theta?: number;
  iterations?: number;
  /** progress, e.g. for a progress bar: called after every iteration */
  onStep?: (iteration: number, total: number) => void;
}

/** `siamese tsne`: a 2-D t-SNE layout of an embedding matrix, .npy in, .npy out. */
export async function tsneCommand(o: TsneCommandOptions): Promise<{ rows: number; seconds: number }> {
  // the layout is a .npy (np.load reads it) and its own file: written over --in, the matrix is gone
  if (!/\.npy$/i.test(o.out)) throw new UsageError(`--out must name a .npy file, got "${o.out}"`);
  if (samePlace(o.in, o.out)) throw new UsageError(`--out names the --in file (${o.out}): write the layout to its own .npy`);
  const { rows, cols, data } = await readNpyFloat32Matrix(o.in);
  // floor(3 x perplexity) neighbours per point, and a point has rows - 1: more would make the
  // affinities dense, minutes and gigabytes for a mistyped value (the rule of bhtsne)
  // (the default perplexity too: 20 rows got "below the number of rows (20), got 30", a rule not this one)
  if (rows < 2) throw new UsageError(`${o.in} holds ${rows} row${rows === 1 ? '' : 's'}: a t-SNE layout needs 2 or more`);
  const perplexity = o.perplexity ?? DEFAULT_PERPLEXITY;
  if (perplexity > maxPerplexity(rows)) {
    const max = maxPerplexity(rows);
    const most = Number.isInteger(max) ? `${max}` : max.toFixed(2);
    throw new UsageError(
      o.perplexity !== undefined
        ? `--perplexity ${o.perplexity} is too large for ${rows} rows: at most (rows - 1) / 3 = ${most}`
        : `the default perplexity ${DEFAULT_PERPLEXITY} is too large for ${rows} rows: give --perplexity ${most} or less ((rows - 1) / 3)`,
    );
  }
  const t0 = performance.now();
  const y = runTsne(data, rows, cols, {
    perplexity: o.perplexity,
    seed: o.seed,
    theta: o.theta,
    iterations: o.iterations,
  }, o.onStep);
  const seconds = (performance.now() - t0) / 1000;
  await writeNpy(o.out, { dtype: 'float32', shape: [rows, 2], data: y });
  return { rows, seconds };
}

