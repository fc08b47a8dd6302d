/**
 * Online miners by name. A triplet miner hands a triplet loss (anchor, positive, negative)
 * index tuples; a pair miner hands a pair loss (a, b, y). Each works on one batch of labelled
 * embeddings, in plain JS.
 *
 * | name          | kind    | returns                                                        |
 * |---------------|---------|----------------------------------------------------------------|
 * | all           | triplet | every valid triplet (the seed's naive way)                     |
 * | batch-all     | triplet | valid triplets with d(a,p) − d(a,n) + margin > 0               |
 * | batch-hard    | triplet | per anchor: farthest positive, nearest negative                |
 * | semihard      | triplet | per (a,p): the nearest negative with d(a,p) < d(a,n) < d(a,p)+m |
 * | hard-negative | pair    | all positive pairs + negative pairs with d < margin            |
 *
 * Defaults: triplet miners margin 0.85 on squared distances (the seed's triplet loss);
 * hard-negative margin 1 on plain distances (the contrastive loss).
 */
import { UsageError } from '../errors.ts';
import { batchAllTriplets } from './batchAll.ts';
import { batchHardTriplets } from './batchHard.ts';
import { hardNegativePairs } from './hardNegativePairs.ts';
import { semiHardTriplets } from './semiHard.ts';
import type { MinerOptions, MinerStats, PairIndices, TripletIndices } from './types.ts';

export type { MinerOptions, MinerStats, PairIndices, TripletIndices } from './types.ts';
export { batchAllTriplets, TRIPLET_MINER_DEFAULTS } from './batchAll.ts';
export type { BatchAllOptions } from './batchAll.ts';
export { batchHardTriplets } from './batchHard.ts';
export { semiHardTriplets } from './semiHard.ts';
export { hardNegativePairs, PAIR_MINER_DEFAULTS } from './hardNegativePairs.ts';
export { classBalancedBatches } from './classBalancedSampler.ts';

export const MINER_NAMES = ['all', 'batch-all', 'batch-hard', 'semihard', 'hard-negative'] as const;
export type MinerName = (typeof MINER_NAMES)[number];

export interface TripletMiner {
  readonly name: MinerName;
  readonly kind: 'triplet';
  mine(emb: Float32Array, dim: number, labels: ArrayLike<number>): { indices: TripletIndices; stats: MinerStats };
}

export interface PairMiner {
  readonly name: MinerName;
  readonly kind: 'pair';
  mine(emb: Float32Array, dim: number, labels: ArrayLike<number>): { indices: PairIndices; stats: MinerStats };
}

export type Miner = TripletMiner | PairMiner;

export function isMinerName(name: string): name is MinerName {
  return (MINER_NAMES as readonly string[]).includes(name);
}

export function createMiner(name: 'hard-negative', opts?: MinerOptions): PairMiner;
export function createMiner(name: 'all' | 'batch-all' | 'batch-hard' | 'semihard', opts?: MinerOptions): TripletMiner;
export function createMiner(name: string, opts?: MinerOptions): Miner;
export function createMiner(name: string, opts: MinerOptions = {}): Miner {
  const o: MinerOptions = { ...opts };
  switch (name) {
    case 'all':
      return { name, kind: 'triplet', mine: (e, d, l) => batchAllTriplets(e, d, l, { ...o, positiveLossOnly: false }) };
    case 'batch-all':
      return { name, kind: 'triplet', mine: (e, d, l) => batchAllTriplets(e, d, l, { ...o, positiveLossOnly: true }) };
    case 'batch-hard':
      return { name, kind: 'triplet', mine: (e, d, l) => batchHardTriplets(e, d, l, o) };
    case 'semihard':
      return { name, kind: 'triplet', mine: (e, d, l) => semiHardTriplets(e, d, l, o) };
    case 'hard-negative':
      return { name, kind: 'pair', mine: (e, d, l) => hardNegativePairs(e, d, l, o) };
    default:
      throw new UsageError(`unknown miner "${name}"; valid miners: ${MINER_NAMES.join(', ')}`);
  }
}
