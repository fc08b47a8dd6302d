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

export function sizeOf(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

export function cloneTensors(ts: readonly NamedTensor[]): NamedTensor[] {
  return ts.map((t) => ({ name: t.name, shape: [...t.shape], data: t.data.slice() }));
}
