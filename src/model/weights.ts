/** A named float32 array with a shape: the unit of weight files (safetensors, Keras HDF5). */
export interface NamedTensor {
  name: string;
  shape: number[];
  data: Float32Array;
}

/** Name and shape a network expects for one of its weights. */
export interface TensorSpec {
  name: string;
  shape: number[];
}

/** The number of NaN or Inf values in a set of weights, and the first tensor that holds one. */
export function countNonFinite(weights: readonly NamedTensor[]): { count: number; first?: string } {
  let count = 0;
  let first: string | undefined;
  for (const w of weights) {
    let n = 0;
    for (let i = 0; i < w.data.length; i++) if (!Number.isFinite(w.data[i]!)) n++;
    if (n > 0) first ??= w.name;
    count += n;
  }
  return { count, first };
}
