import { join } from 'node:path';
import { UsageError } from '../errors.ts';
import { writeFileAtomic } from '../io/atomic.ts';
import { lockOutputs } from '../io/lock.ts';
import { writeNpy } from '../io/npy.ts';
import { samePlace } from '../io/places.ts';
import type { TrainConfig } from '../train/config.ts';
import { embedSplit } from '../train/run.ts';
import { count } from '../words.ts';

export interface EmbedCommandOptions {
  weights: string;
  split: string;
  out: string;
  labels?: string;
  format: string;
  config: Partial<TrainConfig>;
}

/**
 * `siamese embed`: embeddings of a split as float32 [N, dim] NPY (np.load reads it), optional
 * labels as int32 NPY; or the TensorBoard Embedding Projector's vectors.tsv + metadata.tsv.
 */
export async function embedCommand(o: EmbedCommandOptions): Promise<{ rows: number; dim: number; files: string[] }> {
  if (o.split !== 'train' && o.split !== 'test') {
    // train, predict and compare take a class split under the same name: say where embed's comes from
    const classSplit = /^\s*(pairs|classes|train\s*=)/.test(o.split)
      ? "; embed's --split is the image split, and the classes come from the run: embed a run folder trained with --split classes (its manifest holds the split)"
      : '';
    throw new UsageError(`--split must be train or test, got "${o.split}"${classSplit}`);
  }
  if (o.format !== 'npy' && o.format !== 'projector') throw new UsageError(`--format must be npy or projector, got "${o.format}"`);
  if (o.format === 'npy' && !o.out.endsWith('.npy')) throw new UsageError(`--out must name a .npy file for --format npy, got "${o.out}"`);
  // the labels written over the embeddings would leave one file that is neither
  if (o.format === 'npy' && o.labels !== undefined && samePlace(o.labels, o.out)) {
    throw new UsageError(`--labels and --out name the same file (${o.out}); give the labels their own .npy`);
  }
  // one writer per output: two embeds into one place would mix one's vectors with the other's labels
  const lock = o.format === 'npy'
    ? lockOutputs([o.out, ...(o.labels ? [o.labels] : [])], { command: 'embed', file: true, dataDir: o.config.data?.dir })
    : lockOutputs([o.out], { command: 'embed', dataDir: o.config.data?.dir });
  try {
    return await embedLocked(o, o.split);
  } finally {
    lock.release();
  }
}

async function embedLocked(o: EmbedCommandOptions, split: 'train' | 'test'): Promise<{ rows: number; dim: number; files: string[] }> {
  const e = await embedSplit({ weights: o.weights, split, config: o.config });
  const files: string[] = [];
  if (o.format === 'npy') {
    await writeNpy(o.out, { dtype: 'float32', shape: [e.rows, e.dim], data: e.embeddings });
    files.push(o.out);
    if (o.labels) {
      await writeNpy(o.labels, { dtype: 'int32', shape: [e.rows], data: Int32Array.from(e.labels) });
      files.push(o.labels);
    }
  } else {
    // the folder is there: the lock made it (io/lock.ts)
    const vectors: string[] = [];
    for (let r = 0; r < e.rows; r++) {
      const row = e.embeddings.subarray(r * e.dim, (r + 1) * e.dim);
      vectors.push(Array.from(row, (v) => String(v)).join('\t'));
    }
    // Two metadata columns need a header row (the Projector's rule); the label and its class name.
    const meta = ['label\tclass', ...Array.from(e.labels, (l) => `${l}\t${e.classes[l] ?? l}`)];
    await writeFileAtomic(join(o.out, 'vectors.tsv'), vectors.join('\n') + '\n');
    await writeFileAtomic(join(o.out, 'metadata.tsv'), meta.join('\n') + '\n');
    files.push(join(o.out, 'vectors.tsv'), join(o.out, 'metadata.tsv'));
  }
  process.stdout.write(`embedded ${count(e.rows, `${o.split} image`)} (${e.dim}-d): ${files.join(', ')}\n`);
  return { rows: e.rows, dim: e.dim, files };
}
