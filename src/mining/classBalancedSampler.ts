import { UsageError } from '../errors.ts';
import type { Rng } from '../rng.ts';

/**
 * An endless stream of one set's items in shuffled order: each pass is a fresh permutation,
 * so every item comes once per pass. `take(count)` returns `count` items all distinct
 * whenever the set has at least `count` items: when the pass runs out midway, the rest comes
 * from the next permutation, skipping the items already taken in this call (they stay at the
 * front of that pass). A set smaller than `count` repeats whole passes.
 */
class PermutationStream {
  private queue: number[] = [];

  constructor(
    private readonly items: readonly number[],
    private readonly rng: Rng,
  ) {}

  take(count: number): number[] {
    const out: number[] = [];
    while (out.length < count) {
      if (this.queue.length === 0) this.queue = this.rng.shuffle(this.items.slice());
      const need = count - out.length;
      if (this.queue.length >= need) {
        out.push(...this.queue.splice(0, need));
      } else if (this.items.length <= count) {
        // the set cannot fill one request without repeats: take the whole pass
        out.push(...this.queue.splice(0));
      } else {
        out.push(...this.queue.splice(0));
        const taken = new Set(out);
        const next = this.rng.shuffle(this.items.slice());
        const rest: number[] = [];
        for (const item of next) {
          if (out.length < count && !taken.has(item)) out.push(item);
          else rest.push(item);
        }
        this.queue = rest;
      }
    }
    return out;
  }
}

/**
 * Class-balanced batches for online mining ("P×K" sampling): each batch holds
 * `classesPerBatch` distinct classes and `m` items of each, grouped by class
 * (m·classesPerBatch indices). One epoch is round(N / (m·classesPerBatch)) batches (at least 1).
 *
 * - Classes are visited in shuffled passes over all classes, so every class gets its turn
 *   equally often, whatever its size (small classes are thereby oversampled).
 * - Within a class, items are drawn without replacement in shuffled passes; when a class is
 *   used up its pass restarts with a fresh shuffle (a batch never holds the same item twice
 *   unless the class has fewer than m items, where repeats are unavoidable).
 * - The passes carry over from batch to batch within the call; each call starts fresh.
 * Everything random comes from `rng`.
 */
export function classBalancedBatches(
  labels: ArrayLike<number>,
  m: number,
  classesPerBatch: number,
  rng: Rng,
): Int32Array[] {
  if (!Number.isInteger(m) || m < 1) throw new UsageError(`sampler: m (items per class) must be a positive integer, got ${m}`);
  if (!Number.isInteger(classesPerBatch) || classesPerBatch < 1) {
    throw new UsageError(`sampler: classes per batch must be a positive integer, got ${classesPerBatch}`);
  }
  const members = new Map<number, number[]>();
  for (let i = 0; i < labels.length; i++) {
    const c = labels[i]!;
    let list = members.get(c);
    if (!list) members.set(c, (list = []));
    list.push(i);
  }
  if (classesPerBatch > members.size) {
    throw new UsageError(`sampler: ${classesPerBatch} classes per batch asked, but the labels hold only ${members.size}`);
  }
  const classes = [...members.keys()].sort((a, b) => a - b);
  const classStream = new PermutationStream(classes.map((_, i) => i), rng);
  const itemStreams = classes.map((c) => new PermutationStream(members.get(c)!, rng));
  const perBatch = m * classesPerBatch;
  const count = Math.max(1, Math.round(labels.length / perBatch));
  const batches: Int32Array[] = [];
  for (let b = 0; b < count; b++) {
    const batch = new Int32Array(perBatch);
    let o = 0;
    for (const ci of classStream.take(classesPerBatch)) {
      for (const item of itemStreams[ci]!.take(m)) batch[o++] = item;
    }
    batches.push(batch);
  }
  return batches;
}
