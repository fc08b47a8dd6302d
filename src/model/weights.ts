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
