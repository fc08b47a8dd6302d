/**
 * Exact k nearest neighbours (squared Euclidean) by blocked dot products.
 *
 * ||q - r||^2 = ||q||^2 + ||r||^2 - 2 q.r, so the work is one dense product, computed in 4x4
 * tiles: rows are packed as float64 in panels of four, interleaved by coordinate
 * (panel[d*4 + j]), and one tile is 16 dot products kept in registers while the coordinates
 * stream past. The tile kernel is a tiny hand-assembled WebAssembly SIMD function (f64x2:
 * V8 gives plain JS no vector instructions, and this loop is nearly all of the time); where
 * WebAssembly SIMD is missing, the same tiles are computed in plain JS. A block of reference
 * panels stays in cache while every query panel passes over it.
 *
 * Each query keeps its k best in a bounded max-heap ordered by (distance, index), so ties go
 * to the smaller index, as a stable sort would give. Without `queries` the references are their
 * own queries, self-matches are excluded, and the product is symmetric: only tiles on or above
 * the diagonal are computed and each is offered to both sides, which halves the arithmetic.
 *
 * The selection uses the expanded formula in float64; distances small enough to have lost
 * digits to cancellation are recomputed directly, so duplicates come out at exactly 0.
 */
import { DataError, UsageError } from '../errors.ts';

export interface KnnResult {
  /** [m, k] neighbour indices, nearest first (ties: smaller index first) */
  indices: Int32Array;
  /** [m, k] squared Euclidean distances, ascending */
  sqDistances: Float32Array;
  k: number;
}

export interface KnnOptions {
  /** queries, [m, dim]; defaults to the references themselves (then self-matches are excluded) */
  queries?: Float32Array;
  /** reference rows per cache block (rounded to a multiple of 4); default 512 */
  blockSize?: number;
  /** tile kernel: 'auto' (WebAssembly SIMD when available) or 'js'; the results are identical */
  kernel?: 'auto' | 'js';
}

export function knn(refs: Float32Array, dim: number, k: number, opts: KnnOptions = {}): KnnResult {
  if (!Number.isInteger(dim) || dim < 1 || refs.length % dim !== 0) {
    throw new UsageError(`knn: ${refs.length} values do not split into rows of ${dim}`);
  }
  const n = refs.length / dim;
  const self = opts.queries === undefined;
  const queries = opts.queries ?? refs;
  if (queries.length % dim !== 0) {
    throw new UsageError(`knn: ${queries.length} query values do not split into rows of ${dim}`);
  }
  const m = queries.length / dim;
  const available = self ? n - 1 : n;
  if (!Number.isInteger(k) || k < 1 || k > available) {
    throw new UsageError(`knn: k must be an integer in 1..${available} (${n} references), got ${k}`);
  }
  const blockPanels = Math.max(1, Math.round((opts.blockSize ?? 512) / 4));
  const nP = Math.ceil(n / 4);
  const mP = Math.ceil(m / 4);
  const panelLen = 4 * dim;

  // One buffer holds both packed matrices and the tile output, so that the wasm kernel can
  // address them all (the JS kernel reads the same layout).
  const rOff = 0;
  const qOff = self ? rOff : nP * panelLen;
  const outOff = nP * panelLen + (self ? 0 : mP * panelLen);
  const total = outOff + 16 * blockPanels;
  const kernel = opts.kernel === 'js' ? undefined : wasmKernel(total * 8);
  const buf = kernel ? new Float64Array(kernel.memory.buffer, 0, total) : new Float64Array(total);
  pack(refs, n, dim, buf, rOff);
  if (!self) pack(queries, m, dim, buf, qOff);

  const rNorm = panelNorms(buf, rOff, nP, n, dim);
  const qNorm = self ? rNorm : panelNorms(buf, qOff, mP, m, dim, 'query row');
  const heapD = new Float64Array(m * k).fill(Infinity);
  const heapI = new Int32Array(m * k).fill(0x7fffffff);
  // Padded query rows get a threshold of -Infinity, so nothing is ever offered to them.
  const thr = new Float64Array(mP * 4).fill(-Infinity).fill(Infinity, 0, m);
  const h: Heaps = { d: heapD, i: heapI, thr, k, n, self };

  for (let b0 = 0; b0 < nP; b0 += blockPanels) {
    const b1 = Math.min(nP, b0 + blockPanels);
    // In self mode only query panels up to the block's last panel meet it on or above the diagonal.
    const qEnd = self ? b1 : mP;
    for (let qp = 0; qp < qEnd; qp++) {
      const p0 = self ? Math.max(b0, qp) : b0;
      const qo = qOff + qp * panelLen;
      const ro = rOff + p0 * panelLen;
      if (kernel) kernel.tiles(qo * 8, ro * 8, panelLen * 8, b1 - p0, outOff * 8);
      else jsTiles(buf, qo, ro, panelLen, b1 - p0, outOff);
      select(buf, outOff, qp, p0, b1, qNorm, rNorm, h);
    }
  }

  return finish(refs, queries, dim, m, k, heapD, heapI, qNorm, rNorm);
}

/**
 * Full rows of the squared-distance matrix of `x` with itself, a block at a time:
 * `onBlock(start, end, d)` gets d[(i - start) * n + j] = ||x_i - x_j||^2 for start <= i < end
 * (the diagonal is 0). Same kernel and precision as `knn`; for statistics that need every
 * rank (trustworthiness), without holding the n x n matrix.
 */
export function forEachDistanceRows(
  x: Float32Array, dim: number, onBlock: (start: number, end: number, d: Float64Array) => void,
  opts: { rowsPerBlock?: number; kernel?: 'auto' | 'js' } = {},
): void {
  if (!Number.isInteger(dim) || dim < 1 || x.length % dim !== 0) {
    throw new UsageError(`distance rows: ${x.length} values do not split into rows of ${dim}`);
  }
  const n = x.length / dim;
  const nP = Math.ceil(n / 4);
  const panelLen = 4 * dim;
  const blockPanels = Math.max(1, Math.round((opts.rowsPerBlock ?? 64) / 4));
  const outOff = nP * panelLen;
  const total = outOff + 16 * nP;
  const kernel = opts.kernel === 'js' ? undefined : wasmKernel(total * 8);
  const buf = kernel ? new Float64Array(kernel.memory.buffer, 0, total) : new Float64Array(total);
  pack(x, n, dim, buf, 0);
  const norm = panelNorms(buf, 0, nP, n, dim);
  const cancel = 1e-8 * dim;
  const rowsBuf = new Float64Array(blockPanels * 4 * n);
  for (let b0 = 0; b0 < nP; b0 += blockPanels) {
    const b1 = Math.min(nP, b0 + blockPanels);
    const start = b0 * 4;
    const end = Math.min(n, b1 * 4);
    for (let qp = b0; qp < b1; qp++) {
      if (kernel) kernel.tiles(qp * panelLen * 8, 0, panelLen * 8, nP, outOff * 8);
      else jsTiles(buf, qp * panelLen, 0, panelLen, nP, outOff);
      for (let i = 0; i < 4; i++) {
        const qi = qp * 4 + i;
        if (qi >= n) break;
        const qn = norm[qi]!;
        const row = (qi - start) * n;
        for (let j = 0; j < n; j++) {
          let s = qn + norm[j]! - 2 * buf[outOff + 16 * (j >> 2) + 4 * i + (j & 3)]!;
          if (s < cancel * (qn + norm[j]!)) s = directSq(x, dim, qi, j);
          rowsBuf[row + j] = s;
        }
      }
    }
    onBlock(start, end, rowsBuf.subarray(0, (end - start) * n));
  }
}

function directSq(x: Float32Array, dim: number, i: number, j: number): number {
  let s = 0;
  for (let d = 0, a = i * dim, b = j * dim; d < dim; d++) {
    const t = x[a + d]! - x[b + d]!;
    s += t * t;
  }
  return s;
}

/** Rows into panels of 4, coordinate-interleaved, at `off`; the last panel is zero-padded. */
function pack(x: Float32Array, rows: number, dim: number, out: Float64Array, off: number): void {
  const panels = Math.ceil(rows / 4);
  out.fill(0, off, off + panels * 4 * dim);
  for (let r = 0; r < rows; r++) {
    const base = off + (r >> 2) * 4 * dim + (r & 3);
    const src = r * dim;
    for (let d = 0; d < dim; d++) out[base + 4 * d] = x[src + d]!;
  }
}

/**
 * Squared norms per row; padded rows get +Infinity so that their distances never qualify.
 * A row with NaN or Infinity would never be anyone's neighbour: rejected here, where it shows.
 */
function panelNorms(p: Float64Array, off: number, panels: number, rows: number, dim: number, what = 'row'): Float64Array {
  const out = new Float64Array(panels * 4).fill(Infinity);
  for (let r = 0; r < rows; r++) {
    const base = off + (r >> 2) * 4 * dim + (r & 3);
    let s = 0;
    for (let d = 0; d < dim; d++) {
      const v = p[base + 4 * d]!;
      s += v * v;
    }
    if (!Number.isFinite(s)) throw new DataError(`knn: ${what} ${r} has a NaN or infinite value`);
    out[r] = s;
  }
  return out;
}

/**
 * The JS tile kernel: query panel at `qo` against `count` reference panels from `ro`;
 * tile t goes to out[outOff + 16t + 4i + j] = q_i . r_j, the wasm kernel's layout.
 */
function jsTiles(buf: Float64Array, qo: number, ro: number, panelLen: number, count: number, outOff: number): void {
  for (let t = 0; t < count; t++, ro += panelLen) {
    let c00 = 0, c01 = 0, c02 = 0, c03 = 0;
    let c10 = 0, c11 = 0, c12 = 0, c13 = 0;
    let c20 = 0, c21 = 0, c22 = 0, c23 = 0;
    let c30 = 0, c31 = 0, c32 = 0, c33 = 0;
    for (let p = 0; p < panelLen; p += 4) {
      const a0 = buf[qo + p]!, a1 = buf[qo + p + 1]!, a2 = buf[qo + p + 2]!, a3 = buf[qo + p + 3]!;
      const b0 = buf[ro + p]!, b1 = buf[ro + p + 1]!, b2 = buf[ro + p + 2]!, b3 = buf[ro + p + 3]!;
      c00 += a0 * b0; c01 += a0 * b1; c02 += a0 * b2; c03 += a0 * b3;
      c10 += a1 * b0; c11 += a1 * b1; c12 += a1 * b2; c13 += a1 * b3;
      c20 += a2 * b0; c21 += a2 * b1; c22 += a2 * b2; c23 += a2 * b3;
      c30 += a3 * b0; c31 += a3 * b1; c32 += a3 * b2; c33 += a3 * b3;
    }
    const o = outOff + 16 * t;
    buf[o] = c00; buf[o + 1] = c01; buf[o + 2] = c02; buf[o + 3] = c03;
    buf[o + 4] = c10; buf[o + 5] = c11; buf[o + 6] = c12; buf[o + 7] = c13;
    buf[o + 8] = c20; buf[o + 9] = c21; buf[o + 10] = c22; buf[o + 11] = c23;
    buf[o + 12] = c30; buf[o + 13] = c31; buf[o + 14] = c32; buf[o + 15] = c33;
  }
}

/**
 * Per-query bounded heaps plus `thr`, a copy of each heap's root distance, so the hot path is
 * one comparison; a candidate equal to the root still goes to `push`, which breaks the tie.
 */
interface Heaps {
  d: Float64Array;
  i: Int32Array;
  thr: Float64Array;
  k: number;
  /** number of real reference rows (the rest are padding) */
  n: number;
  /** queries are the references: a row is not its own neighbour */
  self: boolean;
}

/** Turns the dot products of query panel `qp` x reference panels [p0, p1) into heap offers. */
function select(
  T: Float64Array, outOff: number, qp: number, p0: number, p1: number,
  qNorm: Float64Array, rNorm: Float64Array, h: Heaps,
): void {
  const thr = h.thr;
  const q0 = qp * 4;
  const qn0 = qNorm[q0]!, qn1 = qNorm[q0 + 1]!, qn2 = qNorm[q0 + 2]!, qn3 = qNorm[q0 + 3]!;
  for (let rp = p0, o = outOff; rp < p1; rp++, o += 16) {
    const r0 = rp * 4;
    const rn0 = rNorm[r0]!, rn1 = rNorm[r0 + 1]!, rn2 = rNorm[r0 + 2]!, rn3 = rNorm[r0 + 3]!;
    // Padded rows have an infinite norm, so their distances never beat a real threshold.
    const d00 = qn0 + rn0 - 2 * T[o]!, d01 = qn0 + rn1 - 2 * T[o + 1]!;
    const d02 = qn0 + rn2 - 2 * T[o + 2]!, d03 = qn0 + rn3 - 2 * T[o + 3]!;
    const d10 = qn1 + rn0 - 2 * T[o + 4]!, d11 = qn1 + rn1 - 2 * T[o + 5]!;
    const d12 = qn1 + rn2 - 2 * T[o + 6]!, d13 = qn1 + rn3 - 2 * T[o + 7]!;
    const d20 = qn2 + rn0 - 2 * T[o + 8]!, d21 = qn2 + rn1 - 2 * T[o + 9]!;
    const d22 = qn2 + rn2 - 2 * T[o + 10]!, d23 = qn2 + rn3 - 2 * T[o + 11]!;
    const d30 = qn3 + rn0 - 2 * T[o + 12]!, d31 = qn3 + rn1 - 2 * T[o + 13]!;
    const d32 = qn3 + rn2 - 2 * T[o + 14]!, d33 = qn3 + rn3 - 2 * T[o + 15]!;
    let t0 = thr[q0]!, t1 = thr[q0 + 1]!, t2 = thr[q0 + 2]!, t3 = thr[q0 + 3]!;
    if (d00 <= t0) t0 = push(h, q0, r0, d00);
    if (d01 <= t0) t0 = push(h, q0, r0 + 1, d01);
    if (d02 <= t0) t0 = push(h, q0, r0 + 2, d02);
    if (d03 <= t0) t0 = push(h, q0, r0 + 3, d03);
    if (d10 <= t1) t1 = push(h, q0 + 1, r0, d10);
    if (d11 <= t1) t1 = push(h, q0 + 1, r0 + 1, d11);
    if (d12 <= t1) t1 = push(h, q0 + 1, r0 + 2, d12);
    if (d13 <= t1) t1 = push(h, q0 + 1, r0 + 3, d13);
    if (d20 <= t2) t2 = push(h, q0 + 2, r0, d20);
    if (d21 <= t2) t2 = push(h, q0 + 2, r0 + 1, d21);
    if (d22 <= t2) t2 = push(h, q0 + 2, r0 + 2, d22);
    if (d23 <= t2) t2 = push(h, q0 + 2, r0 + 3, d23);
    if (d30 <= t3) t3 = push(h, q0 + 3, r0, d30);
    if (d31 <= t3) t3 = push(h, q0 + 3, r0 + 1, d31);
    if (d32 <= t3) t3 = push(h, q0 + 3, r0 + 2, d32);
    if (d33 <= t3) push(h, q0 + 3, r0 + 3, d33);
    // Symmetric mode: the same tile read the other way, except on the diagonal, where the
    // tile already holds both orders.
    if (h.self && rp !== qp) {
      let u0 = thr[r0]!, u1 = thr[r0 + 1]!, u2 = thr[r0 + 2]!, u3 = thr[r0 + 3]!;
      if (d00 <= u0) u0 = push(h, r0, q0, d00);
      if (d10 <= u0) u0 = push(h, r0, q0 + 1, d10);
      if (d20 <= u0) u0 = push(h, r0, q0 + 2, d20);
      if (d30 <= u0) push(h, r0, q0 + 3, d30);
      if (d01 <= u1) u1 = push(h, r0 + 1, q0, d01);
      if (d11 <= u1) u1 = push(h, r0 + 1, q0 + 1, d11);
      if (d21 <= u1) u1 = push(h, r0 + 1, q0 + 2, d21);
      if (d31 <= u1) push(h, r0 + 1, q0 + 3, d31);
      if (d02 <= u2) u2 = push(h, r0 + 2, q0, d02);
      if (d12 <= u2) u2 = push(h, r0 + 2, q0 + 1, d12);
      if (d22 <= u2) u2 = push(h, r0 + 2, q0 + 2, d22);
      if (d32 <= u2) push(h, r0 + 2, q0 + 3, d32);
      if (d03 <= u3) u3 = push(h, r0 + 3, q0, d03);
      if (d13 <= u3) u3 = push(h, r0 + 3, q0 + 1, d13);
      if (d23 <= u3) u3 = push(h, r0 + 3, q0 + 2, d23);
      if (d33 <= u3) push(h, r0 + 3, q0 + 3, d33);
    }
  }
}

/**
 * Offers reference `ri` at distance `dist` to query `qi`'s heap; returns the new threshold.
 * Rejects padded rows, self-matches and ties lost on the index.
 */
function push(h: Heaps, qi: number, ri: number, dist: number): number {
  const k = h.k;
  const o = qi * k;
  const hd = h.d, hi = h.i;
  if (ri >= h.n || (h.self && ri === qi)) return hd[o]!;
  if (dist < 0) dist = 0; // rounding can make a tiny negative
  if (dist > hd[o]! || (dist === hd[o]! && ri >= hi[o]!)) return hd[o]!;
  // Max-heap by (distance, index): replace the root and sift down.
  let pos = 0;
  for (;;) {
    const l = 2 * pos + 1;
    if (l >= k) break;
    const r = l + 1;
    let c = l;
    if (r < k && (hd[o + r]! > hd[o + l]! || (hd[o + r]! === hd[o + l]! && hi[o + r]! > hi[o + l]!))) c = r;
    const cd = hd[o + c]!;
    if (cd < dist || (cd === dist && hi[o + c]! < ri)) break;
    hd[o + pos] = cd;
    hi[o + pos] = hi[o + c]!;
    pos = c;
  }
  hd[o + pos] = dist;
  hi[o + pos] = ri;
  h.thr[qi] = hd[o]!;
  return hd[o]!;
}

/**
 * Sorts each heap by (distance, index). A distance that is small next to the norms may have
 * lost digits to cancellation in the expanded formula, so it is recomputed directly; above
 * 1e-8 * dim * (|q|^2 + |r|^2) the float64 value (|error| <= (dim + 2) * 2^-53 * (|q|^2 + |r|^2))
 * is already good to float32's last bit.
 */
function finish(
  refs: Float32Array, queries: Float32Array, dim: number, m: number, k: number,
  heapD: Float64Array, heapI: Int32Array, qNorm: Float64Array, rNorm: Float64Array,
): KnnResult {
  const indices = new Int32Array(m * k);
  const sqDistances = new Float32Array(m * k);
  const dist = new Float64Array(k);
  const idx = new Int32Array(k);
  const cancel = 1e-8 * dim;
  for (let qi = 0; qi < m; qi++) {
    const ho = qi * k;
    const qo = qi * dim;
    const qn = qNorm[qi]!;
    for (let j = 0; j < k; j++) {
      const ri = heapI[ho + j]!;
      let s = heapD[ho + j]!;
      if (s < cancel * (qn + rNorm[ri]!)) {
        s = 0;
        for (let d = 0, ro = ri * dim; d < dim; d++) {
          const t = queries[qo + d]! - refs[ro + d]!;
          s += t * t;
        }
      }
      // Insertion sort: k is small.
      let p = j;
      while (p > 0 && (dist[p - 1]! > s || (dist[p - 1] === s && idx[p - 1]! > ri))) {
        dist[p] = dist[p - 1]!;
        idx[p] = idx[p - 1]!;
        p--;
      }
      dist[p] = s;
      idx[p] = ri;
    }
    indices.set(idx, ho);
    for (let j = 0; j < k; j++) sqDistances[ho + j] = dist[j]!;
  }
  return { indices, sqDistances, k };
}

// ---------------------------------------------------------------------------------------------
// The WebAssembly SIMD tile kernel, assembled from its opcodes (no toolchain needed).
// tiles(qo, ro, panelBytes, count, out): for t < count, the 4x4 tile of query panel at byte qo
// against reference panel ro + t*panelBytes, stored as 8 v128 (f64x2) at out + 128t in the
// layout of jsTiles. Accumulators: acc[2i] = q_i x (r0, r1), acc[2i+1] = q_i x (r2, r3).

interface WasmKernel {
  memory: { buffer: ArrayBuffer };
  tiles: (qo: number, ro: number, panelBytes: number, count: number, out: number) => void;
}

/** The few WebAssembly calls used here (the project's TS lib has no WebAssembly types). */
interface WasmApi {
  validate(bytes: Uint8Array): boolean;
  Module: new (bytes: Uint8Array) => object;
  Memory: new (desc: { initial: number }) => { buffer: ArrayBuffer };
  Instance: new (module: object, imports: object) => { exports: Record<string, unknown> };
}

let compiled: object | null | undefined;

/** A kernel instance with at least `bytes` of memory, or undefined without wasm SIMD / memory. */
function wasmKernel(bytes: number): WasmKernel | undefined {
  const wasm = (globalThis as { WebAssembly?: WasmApi }).WebAssembly;
  if (compiled === undefined) {
    try {
      const code = assembleTiles();
      compiled = wasm && wasm.validate(code) ? new wasm.Module(code) : null;
    } catch {
      compiled = null;
    }
  }
  if (!compiled || !wasm) return undefined;
  const pages = Math.ceil(bytes / 65536);
  if (pages > 32768) return undefined; // stay well inside the 4 GiB of wasm32; JS handles the rest
  try {
    const memory = new wasm.Memory({ initial: pages });
    const inst = new wasm.Instance(compiled, { m: { mem: memory } });
    return { memory, tiles: inst.exports['tiles'] as WasmKernel['tiles'] };
  } catch {
    return undefined;
  }
}

function assembleTiles(): Uint8Array {
  const I32 = 0x7f, V128 = 0x7b;
  const simd = (op: number): number[] => [0xfd, ...uleb(op)];
  const get = (i: number): number[] => [0x20, i];
  const set = (i: number): number[] => [0x21, i];
  const tee = (i: number): number[] => [0x22, i];
  const memarg = (align: number, offset: number): number[] => [align, ...uleb(offset)];
  const V128_LOAD = 0x00, LOAD64_SPLAT = 0x0a, V128_STORE = 0x0b, V128_CONST = 0x0c;
  const F64X2_ADD = 0xf0, F64X2_MUL = 0xf2;
  const I32_ADD = 0x6a, I32_SUB = 0x6b, I32_LT_U = 0x49, I32_EQZ = 0x45, I32_CONST = 0x41;
  const BLOCK = 0x02, LOOP = 0x03, BR_IF = 0x0d, END = 0x0b, VOID = 0x40;
  // params 0 qo, 1 ro, 2 panelBytes, 3 count, 4 out; locals 5 p, 6..13 acc, 14 b01, 15 b23,
  // 16 a, 17 rAddr, 18 qAddr
  const P = 5, ACC = 6, B01 = 14, B23 = 15, A = 16, RA = 17, QA = 18;
  const body: number[] = [];
  body.push(BLOCK, VOID, ...get(3), I32_EQZ, BR_IF, 0);
  body.push(LOOP, VOID);
  for (let a = 0; a < 8; a++) body.push(...simd(V128_CONST), ...new Array<number>(16).fill(0), ...set(ACC + a));
  body.push(I32_CONST, 0, ...set(P));
  body.push(LOOP, VOID);
  body.push(...get(1), ...get(P), I32_ADD, ...set(RA));
  body.push(...get(0), ...get(P), I32_ADD, ...set(QA));
  body.push(...get(RA), ...simd(V128_LOAD), ...memarg(3, 0), ...set(B01));
  body.push(...get(RA), ...simd(V128_LOAD), ...memarg(3, 16), ...set(B23));
  for (let i = 0; i < 4; i++) {
    body.push(...get(QA), ...simd(LOAD64_SPLAT), ...memarg(3, 8 * i), ...set(A));
    for (const [acc, b] of [[ACC + 2 * i, B01], [ACC + 2 * i + 1, B23]] as const) {
      body.push(...get(acc), ...get(A), ...get(b), ...simd(F64X2_MUL), ...simd(F64X2_ADD), ...set(acc));
    }
  }
  body.push(...get(P), I32_CONST, ...sleb(32), I32_ADD, ...tee(P), ...get(2), I32_LT_U, BR_IF, 0);
  body.push(END);
  for (let a = 0; a < 8; a++) body.push(...get(4), ...get(ACC + a), ...simd(V128_STORE), ...memarg(3, 16 * a));
  body.push(...get(4), I32_CONST, ...sleb(128), I32_ADD, ...set(4));
  body.push(...get(1), ...get(2), I32_ADD, ...set(1));
  body.push(...get(3), I32_CONST, 1, I32_SUB, ...tee(3), BR_IF, 0);
  body.push(END, END, END);
  const locals = [3, 1, I32, 11, V128, 2, I32]; // 3 groups: p; acc x8 + b01, b23, a; rAddr, qAddr
  const func = [...locals, ...body];
  const section = (id: number, content: number[]): number[] => [id, ...uleb(content.length), ...content];
  const name = (s: string): number[] => [s.length, ...Array.from(s, (c) => c.charCodeAt(0))];
  return new Uint8Array([
    0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00,
    ...section(1, [1, 0x60, 5, I32, I32, I32, I32, I32, 0]),
    ...section(2, [1, ...name('m'), ...name('mem'), 0x02, 0x00, 1]),
    ...section(3, [1, 0]),
    ...section(7, [1, ...name('tiles'), 0x00, 0]),
    ...section(10, [1, ...uleb(func.length), ...func]),
  ]);
}

function uleb(v: number): number[] {
  const out: number[] = [];
  do {
    let b = v & 0x7f;
    v >>>= 7;
    if (v !== 0) b |= 0x80;
    out.push(b);
  } while (v !== 0);
  return out;
}

function sleb(v: number): number[] {
  const out: number[] = [];
  for (;;) {
    const b = v & 0x7f;
    v >>= 7;
    if ((v === 0 && (b & 0x40) === 0) || (v === -1 && (b & 0x40) !== 0)) {
      out.push(b);
      return out;
    }
    out.push(b | 0x80);
  }
}
