/** Keras' guard: D = sqrt(max(Σ(a − b)², 1e-7)), so the gradient of sqrt stays finite at 0. */
export const SQUARED_DISTANCE_FLOOR = 1e-7;

/**
 * The distance of pairDistance (engine/distance.ts) in plain arithmetic, for embeddings on the
 * host: rows a[i] and b[i] of emb [rows, dim]. Sums in float64, stored as float32 like the TF.js
 * distances. When `sq` is given, the squared sums go there too (the native engine's backward
 * pass needs them).
 */
export function pairDistancesHost(emb: Float32Array, dim: number, a: Int32Array, b: Int32Array, sq?: Float64Array): Float32Array {
  const out = new Float32Array(a.length);
  for (let i = 0; i < a.length; i++) {
    const oa = a[i]! * dim;
    const ob = b[i]! * dim;
    let s = 0;
    for (let j = 0; j < dim; j++) {
      const t = emb[oa + j]! - emb[ob + j]!;
      s += t * t;
    }
    if (sq) sq[i] = s;
    out[i] = Math.sqrt(Math.max(s, SQUARED_DISTANCE_FLOOR));
  }
  return out;
}
