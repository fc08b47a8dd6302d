/**
 * Which classes a run trains and tests on.
 *
 *   pairs              every class on both sides (the seed's protocol; the data set unchanged)
 *   classes            class-disjoint: train on the first half of the sorted classes, test on
 *                      the second half (MNIST: 0-4 / 5-9; an odd count gives the extra class to
 *                      training)
 *   classes=5,6,7,8,9  class-disjoint: test on the classes named, train on the others
 *   train=1,2,3,4;test=0
 *                      class-disjoint, both sides named; classes named on neither side are left
 *                      out (a cross-validation fold of sweep: train on some training classes,
 *                      validate on others, never look at the held-out test classes)
 *
 * A class-disjoint split keeps the training split's images of the training classes and the test
 * split's images of the test classes, each relabelled 0..k−1 in class order (the pair recipe
 * needs contiguous labels); `classes` maps the new labels back to the original ones.
 */
import { createHash } from 'node:crypto';
import { UsageError } from '../errors.ts';
import { classCount, type Dataset, type ImageSplit } from './dataset.ts';

export type ClassSplitSpec = { kind: 'pairs' } | { kind: 'classes'; test?: number[]; train?: number[] };

/** The resolved split of one data set: original class ids on each side. */
export interface ClassSplit {
  kind: 'pairs' | 'classes';
  trainClasses: number[];
  testClasses: number[];
}

const USAGE = 'expected pairs, classes, classes=C1,C2,... (the test classes) or train=C1,C2,...;test=C3,...';

/** "5, 6,7" -> [5, 6, 7] sorted; one line naming `what` on bad text or a repeated class. */
function classList(text: string, list: string, what: string): number[] {
  const parts = list.split(',').map((s) => s.trim());
  if (parts.length === 0 || parts.some((p) => !/^\d+$/.test(p))) {
    throw new UsageError(`--split "${text}": the ${what} classes must be class numbers separated by commas, e.g. 5,6,7,8,9`);
  }
  const cs = parts.map(Number);
  if (new Set(cs).size !== cs.length) throw new UsageError(`--split "${text}": a class is listed twice`);
  return [...cs].sort((a, b) => a - b);
}

/** Parse a --split value; refuses bad text with one line. */
export function parseSplit(text: string): ClassSplitSpec {
  const t = text.trim();
  if (t === 'pairs') return { kind: 'pairs' };
  if (t === 'classes') return { kind: 'classes' };
  const both = /^train\s*=\s*([^;]*);\s*test\s*=\s*([^;]*)$/.exec(t);
  if (both) {
    const train = classList(text, both[1]!, 'training');
    const test = classList(text, both[2]!, 'test');
    const shared = train.find((c) => test.includes(c));
    if (shared !== undefined) throw new UsageError(`--split "${text}": class ${shared} is on both sides`);
    return { kind: 'classes', train, test };
  }
  const m = /^classes\s*=\s*(.*)$/.exec(t);
  if (!m) throw new UsageError(`--split "${text}": ${USAGE}`);
  return { kind: 'classes', test: classList(text, m[1]!, 'test') };
}

/** The canonical text of a split (what configs and manifests record). */
export function splitText(s: ClassSplitSpec): string {
  if (s.kind === 'pairs') return 'pairs';
  if (s.train && s.test) return `train=${s.train.join(',')};test=${s.test.join(',')}`;
  return s.test ? `classes=${s.test.join(',')}` : 'classes';
}

/** The classes on each side for a data set with `numClasses` classes; checks the named ones exist. */
export function resolveSplit(spec: ClassSplitSpec, numClasses: number): ClassSplit {
  const all = Array.from({ length: numClasses }, (_, i) => i);
  if (spec.kind === 'pairs') return { kind: 'pairs', trainClasses: all, testClasses: all };
  let test: number[];
  if (spec.test) {
    const bad = spec.test.filter((c) => c >= numClasses);
    if (bad.length) throw new UsageError(`--split ${splitText(spec)}: class ${bad[0]} does not exist (the data set has classes 0..${numClasses - 1})`);
    test = spec.test;
  } else {
    test = all.slice(Math.ceil(numClasses / 2));
  }
  const named = spec.train ?? [];
  const missing = named.find((c) => c >= numClasses);
  if (missing !== undefined) throw new UsageError(`--split ${splitText(spec)}: class ${missing} does not exist (the data set has classes 0..${numClasses - 1})`);
  const train = spec.train ? [...spec.train] : all.filter((c) => !test.includes(c));
  if (train.length < 2 || test.length < 2) {
    throw new UsageError(
      `--split ${splitText(spec)}: needs at least 2 training and 2 test classes, got ${train.length} and ${test.length} of ${numClasses}`,
    );
  }
  return { kind: 'classes', trainClasses: train, testClasses: test };
}

/** The positions of the labels whose class is in `classes`, and those labels renumbered by position in `classes`. */
export function subsetLabels(labels: Uint8Array, classes: readonly number[]): { keep: number[]; labels: Uint8Array } {
  const map = new Int16Array(256).fill(-1);
  classes.forEach((c, i) => (map[c] = i));
  const keep: number[] = [];
  for (let i = 0; i < labels.length; i++) if (map[labels[i]!]! >= 0) keep.push(i);
  return { keep, labels: Uint8Array.from(keep, (i) => map[labels[i]!]!) };
}

/**
 * The labels each side of a data set keeps under a split (`pairs`, `classes`, ...), renumbered as
 * applySplit renumbers them, without copying an image: what a run's pair recipe and counts see.
 */
export function splitLabels(ds: Pick<Dataset, 'train' | 'test'>, splitText: string): { split: ClassSplit; train: Uint8Array; test: Uint8Array } {
  const split = resolveSplit(parseSplit(splitText), classCount(ds.train.labels));
  if (split.kind === 'pairs') return { split, train: ds.train.labels, test: ds.test.labels };
  return { split, train: subsetLabels(ds.train.labels, split.trainClasses).labels, test: subsetLabels(ds.test.labels, split.testClasses).labels };
}

/** The images of `split` whose class is in `classes`, relabelled by position in `classes`. */
export function subsetClasses(split: ImageSplit, classes: readonly number[]): ImageSplit {
  const { keep, labels } = subsetLabels(split.labels, classes);
  const dim = split.height * split.width * split.channels;
  const images = new Uint8Array(keep.length * dim);
  keep.forEach((src, r) => images.set(split.images.subarray(src * dim, (src + 1) * dim), r * dim));
  const hash = createHash('sha256');
  hash.update(images);
  hash.update(labels);
  return { ...split, images, labels, n: keep.length, checksum: hash.digest('hex') };
}

/** The data set a run sees under a split: the same object for `pairs`. */
export function applySplit(ds: Dataset, split: ClassSplit): Dataset {
  if (split.kind === 'pairs') return ds;
  return { ...ds, train: subsetClasses(ds.train, split.trainClasses), test: subsetClasses(ds.test, split.testClasses) };
}

/** Whether a class is in two of the groups (a sweep's validation groups with fewer than 2K training classes: leave-2-classes-out). */
export function groupsOverlap(groups: readonly (readonly number[])[]): boolean {
  const all = groups.flat();
  return new Set(all).size < all.length;
}
