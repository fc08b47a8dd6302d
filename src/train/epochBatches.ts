/**
 * How many batches one epoch of a training has, from its settings and its training labels alone:
 * the same counts Training's epoch plan arrives at, without drawing a pair or shuffling (the
 * time estimates of compare and sweep need them before anything runs).
 */
import { classCount } from '../data/dataset.ts';
import type { TrainConfig } from './config.ts';

/** What an epoch is made of: tuples (pairs or triplets) in batches, or class-balanced batches of images. */
export type EpochKind = 'pair' | 'triplet' | 'balanced';

/** Pair losses without a miner train on pairs, triplet losses on triplets; miners and batch losses on class-balanced batches. */
export function epochKind(lossKind: 'pair' | 'triplet' | 'batch', miner: string | undefined): EpochKind {
  if (lossKind === 'batch' || miner) return 'balanced';
  return lossKind;
}

/** The miners' class-balanced batch: images per class and classes per batch. */
export function balancedShape(batchSize: number, perClassOption: number, numClasses: number): { perClass: number; classes: number } {
  const perClass = perClassOption > 0 ? perClassOption : Math.max(2, Math.floor(batchSize / numClasses));
  const classes = Math.max(2, Math.min(numClasses, Math.floor(batchSize / perClass)));
  return { perClass, classes };
}

/** The pairs makePairs draws: a positive and a negative for each of the smallest class's images but one, in every class. */
export function pairCount(labels: Uint8Array): number {
  const k = classCount(labels);
  const sizes = new Array<number>(k).fill(0);
  for (let i = 0; i < labels.length; i++) sizes[labels[i]!]!++;
  return 2 * k * (Math.min(...sizes) - 1);
}

/** Batches per epoch of a training on these (already split) training labels. */
export function epochBatches(config: Pick<TrainConfig, 'batchSize' | 'trainPairs' | 'perClass'>, kind: EpochKind, labels: Uint8Array): number {
  const bs = config.batchSize;
  const slice = config.trainPairs;
  if (kind === 'balanced') {
    const { perClass, classes } = balancedShape(bs, config.perClass, classCount(labels));
    const count = Math.max(1, Math.round(labels.length / (perClass * classes)));
    return slice > 0 ? Math.min(count, Math.ceil((2 * slice) / (perClass * classes))) : count;
  }
  if (kind === 'pair') {
    const pairs = pairCount(labels);
    return Math.ceil((slice > 0 ? Math.min(pairs, slice) : pairs) / bs);
  }
  // one triplet per anchor image; a --train-pairs slice of N allows N/2 triplets
  const n = labels.length;
  return Math.ceil((slice > 0 ? Math.min(n, Math.ceil(slice / 2)) : n) / bs);
}
