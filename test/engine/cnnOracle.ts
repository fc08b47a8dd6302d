/**
 * A float64 brute-force oracle of the CNN base (src/model/cnn.ts) for engine tests (not a test
 * file itself): the forward pass and, from a given dL/d(embeddings), every weight's gradient,
 * with plain loops in float64 straight from the definitions (valid k x k convolution, ReLU,
 * 2x2 max-pooling sending a tie's gradient to the last of equals, flatten, dropout mask, dense
 * + ReLU). Small shapes only.
 */
import type { ImageSplit } from '../../src/data/dataset.ts';
import type { NativeCnnShape } from '../../src/engine/nativeCnn.ts';
import type { NamedTensor } from '../../src/model/weights.ts';

/** the embeddings of images[rows] and the gradients of sum(emb * dEmb), in weightSpecs() order */
export function cnnOracle(
  s: NativeCnnShape,
  weights: readonly NamedTensor[],
  split: ImageSplit,
  rows: Int32Array,
  mask: Float32Array | null,
  dEmb: Float64Array,
): { emb: Float64Array; grads: Float64Array[] } {
  const k = s.kernelSize;
  const nb = s.filters.length;
  const E = s.embeddingDim;
  const dim = s.height * s.width * s.channels;
  const grads = weights.map((w) => new Float64Array(w.data.length));
  const emb = new Float64Array(rows.length * E);
  rows.forEach((row, r) => {
    // forward, keeping each block's input, output maps and argmaxes
    let h = s.height;
    let w = s.width;
    let c = s.channels;
    let x = Float64Array.from({ length: dim }, (_, j) => Math.fround(split.images[row * dim + j]! / 255));
    const saved: { x: Float64Array; h: number; w: number; c: number; co: number; p: Float64Array; arg: Int32Array; oh: number; ow: number }[] = [];
    for (let b = 0; b < nb; b++) {
      const co = s.filters[b]!;
      const W = weights[2 * b]!.data;
      const B = weights[2 * b + 1]!.data;
      const oh = h - k + 1;
      const ow = w - k + 1;
      const z = new Float64Array(oh * ow * co);
      for (let oy = 0; oy < oh; oy++)
        for (let ox = 0; ox < ow; ox++)
          for (let o = 0; o < co; o++) {
            let sum = B[o]!;
            for (let ky = 0; ky < k; ky++)
              for (let kx = 0; kx < k; kx++)
                for (let ci = 0; ci < c; ci++) sum += x[((oy + ky) * w + ox + kx) * c + ci]! * W[((ky * k + kx) * c + ci) * co + o]!;
            z[(oy * ow + ox) * co + o] = Math.max(sum, 0);
          }
      const ph = Math.floor(oh / 2);
      const pw = Math.floor(ow / 2);
      const p = new Float64Array(ph * pw * co);
      const arg = new Int32Array(ph * pw * co);
      for (let py = 0; py < ph; py++)
        for (let px = 0; px < pw; px++)
          for (let o = 0; o < co; o++) {
            let best = -1;
            let v = -Infinity;
            for (const [dy, dx] of [[0, 0], [0, 1], [1, 0], [1, 1]] as const) {
              const i = ((2 * py + dy) * ow + 2 * px + dx) * co + o;
              if (z[i]! >= v) {
                v = z[i]!;
                best = i;
              }
            }
            p[(py * pw + px) * co + o] = v;
            arg[(py * pw + px) * co + o] = best;
          }
      saved.push({ x, h, w, c, co, p, arg, oh, ow });
      x = p;
      h = ph;
      w = pw;
      c = co;
    }
    const F = x.length;
    const xd = Float64Array.from(x, (v, j) => (mask ? v * mask[r * F + j]! : v));
    const Wd = weights[2 * nb]!.data;
    const Bd = weights[2 * nb + 1]!.data;
    const dz = new Float64Array(E);
    for (let e = 0; e < E; e++) {
      let sum = Bd[e]!;
      for (let j = 0; j < F; j++) sum += xd[j]! * Wd[j * E + e]!;
      const y = Math.max(sum, 0);
      emb[r * E + e] = y;
      dz[e] = y > 0 ? dEmb[r * E + e]! : 0;
    }
    // backward: the head, then block by block
    let g = new Float64Array(F);
    for (let e = 0; e < E; e++) {
      grads[2 * nb + 1]![e]! += dz[e]!;
      for (let j = 0; j < F; j++) {
        grads[2 * nb]![j * E + e]! += xd[j]! * dz[e]!;
        g[j]! += Wd[j * E + e]! * dz[e]!;
      }
    }
    if (mask) for (let j = 0; j < F; j++) g[j]! *= mask[r * F + j]!;
    for (let b = nb - 1; b >= 0; b--) {
      const { x: bx, w: bw, c: bc, co, p, arg, ow } = saved[b]!;
      const W = weights[2 * b]!.data;
      const gin = new Float64Array(bx.length);
      for (let i = 0; i < p.length; i++) {
        if (!(p[i]! > 0)) continue;
        const zi = arg[i]!;
        const o = zi % co;
        const pix = (zi - o) / co;
        const ox = pix % ow;
        const oy = (pix - ox) / ow;
        const d = g[i]!;
        grads[2 * b + 1]![o]! += d;
        for (let ky = 0; ky < k; ky++)
          for (let kx = 0; kx < k; kx++)
            for (let ci = 0; ci < bc; ci++) {
              const xi = ((oy + ky) * bw + ox + kx) * bc + ci;
              const wi = ((ky * k + kx) * bc + ci) * co + o;
              grads[2 * b]![wi]! += bx[xi]! * d;
              gin[xi]! += W[wi]! * d;
            }
      }
      g = gin;
    }
  });
  return { emb, grads };
}
