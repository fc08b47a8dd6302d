/** Index tuples that miners hand to losses, and what a miner reports about its choice. */

/** One triplet per position: anchors[i], positives[i] (same label), negatives[i] (different). */
export interface TripletIndices {
  anchors: Int32Array;
  positives: Int32Array;
  negatives: Int32Array;
}

/** One pair per position: (a[i], b[i]) with y[i] = 1 for same label, 0 for different. */
export interface PairIndices {
  a: Int32Array;
  b: Int32Array;
  y: Uint8Array;
}

export interface MinerStats {
  /** tuples returned */
  kept: number;
  /** tuples the miner chose from (what "kept" is a subset of; each miner documents it) */
  candidates: number;
}

export interface MinerOptions {
  /** margin of the loss the mined tuples feed; defaults per miner */
  margin?: number;
  /** compare squared Euclidean distances (the seed's triplet form) instead of plain ones */
  squared?: boolean;
}
