/**
 * Sorting float64 values in place in the order of Float64Array.prototype.sort, in linear time
 * (a radix sort): the per-epoch sweeps over test pair distances and the batch accuracy's buckets.
 * Node 20's own typed-array sort takes about 0.1 µs a value; a comparator sort of indices more.
 * Imports nothing: both train/ and eval/ use it.
 */

function grown<T extends Uint32Array>(a: T, n: number, make: (n: number) => T): T {
  return a.length >= n ? a : make(n);
}

/** Slices up to this long are insertion-sorted; longer ones radix-sorted. */
const INSERTION_MAX = 32;

/** the radix sort's arrays (sortRange) */
const radix = {
  hi: new Uint32Array(0),
  lo: new Uint32Array(0),
  hi2: new Uint32Array(0),
  lo2: new Uint32Array(0),
  counts: new Int32Array(8 * 256),
};

/**
 * Sort a[from, to) ascending (no NaN). A few values: insertion sort. More: an LSD radix sort on
 * the values' 64 bits made unsigned-sortable (positive: the sign bit set; negative: every bit
 * flipped), 8 passes of 8 bits, those where every value has the same byte skipped: linear in the
 * count whatever the values, where Node 20's own typed-array sort takes about 0.1 µs a value. The
 * order of typed-array sort, −0 before +0 (the sweeps take them as one value anyway).
 */
export function sortRange(a: Float64Array, from: number, to: number): void {
  const len = to - from;
  if (len <= INSERTION_MAX) {
    for (let i = from + 1; i < to; i++) {
      const v = a[i]!;
      let j = i - 1;
      // (−0 before +0, as the radix sort and the typed-array sort place them)
      while (j >= from && (a[j]! > v || (a[j] === v && v === 0 && 1 / v < 1 / a[j]!))) {
        a[j + 1] = a[j]!;
        j--;
      }
      a[j + 1] = v;
    }
    return;
  }
  const words = new Uint32Array(a.buffer, a.byteOffset, a.length * 2);
  let hi = (radix.hi = grown(radix.hi, len, (k) => new Uint32Array(k)));
  let lo = (radix.lo = grown(radix.lo, len, (k) => new Uint32Array(k)));
  let hi2 = (radix.hi2 = grown(radix.hi2, len, (k) => new Uint32Array(k)));
  let lo2 = (radix.lo2 = grown(radix.lo2, len, (k) => new Uint32Array(k)));
  const counts = radix.counts;
  counts.fill(0);
  // (little-endian words: the low one first; typed arrays use the platform's order, and every
  // platform Node runs on is little-endian)
  for (let i = 0; i < len; i++) {
    const w = words[2 * (from + i) + 1]!;
    const flip = w >>> 31 ? 0xffffffff : 0;
    const h = (w ^ (flip | 0x80000000)) >>> 0;
    const l = (words[2 * (from + i)]! ^ flip) >>> 0;
    hi[i] = h;
    lo[i] = l;
    counts[l & 255]!++;
    counts[256 + ((l >>> 8) & 255)]!++;
    counts[512 + ((l >>> 16) & 255)]!++;
    counts[768 + (l >>> 24)]!++;
    counts[1024 + (h & 255)]!++;
    counts[1280 + ((h >>> 8) & 255)]!++;
    counts[1536 + ((h >>> 16) & 255)]!++;
    counts[1792 + (h >>> 24)]!++;
  }
  for (let pass = 0; pass < 8; pass++) {
    const c = pass * 256;
    const shift = (pass & 3) * 8;
    const key = pass < 4 ? lo : hi;
    // every value with the same byte here: nothing to move
    if (counts[c + ((key[0]! >>> shift) & 255)] === len) continue;
    for (let d = 0, sum = 0; d < 256; d++) {
      const x = counts[c + d]!;
      counts[c + d] = sum;
      sum += x;
    }
    for (let i = 0; i < len; i++) {
      const at = counts[c + ((key[i]! >>> shift) & 255)]!++;
      hi2[at] = hi[i]!;
      lo2[at] = lo[i]!;
    }
    [hi, hi2] = [hi2, hi];
    [lo, lo2] = [lo2, lo];
  }
  for (let i = 0; i < len; i++) {
    const h = hi[i]!;
    const flip = h >>> 31 ? 0 : 0xffffffff;
    words[2 * (from + i) + 1] = (h ^ (flip | 0x80000000)) >>> 0;
    words[2 * (from + i)] = (lo[i]! ^ flip) >>> 0;
  }
}
