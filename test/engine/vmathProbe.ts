/**
 * The addon's vectorised exp and log (native/src/vmath.c) on a fixed seeded input, as one digest
 * of the output bits: vmath.test.ts takes it in this process, marchCheck.ts in each -march build,
 * and marchBuilds.test.ts compares them (vmath.c promises the same bits on every build).
 */
import { createHash } from 'node:crypto';
import type { NativeAddon } from '../../src/engine/native.ts';
import { Rng } from '../../src/rng.ts';

/** inputs across the ranges the losses use, the subnormal and overflow edges, and the specials */
export function probeInputs(): { x64: Float64Array; pos64: Float64Array; x32: Float32Array } {
  const r = new Rng(2026);
  const x64 = Float64Array.from({ length: 4099 }, (_, i) => (i < 4000 ? (r.next() - 0.5) * (i < 2000 ? 60 : 1500) : [-Infinity, Infinity, NaN, 0, -0, 709.78, 709.79, -745.1, -745.2][i % 9]!));
  const pos64 = Float64Array.from({ length: 4099 }, (_, i) => (i < 4000 ? Math.exp((r.next() - 0.5) * (i < 2000 ? 40 : 1480)) : [0, -1, NaN, Infinity, 5e-324, 1e-310, 1, 2, 0.5][i % 9]!));
  const x32 = Float32Array.from({ length: 4099 }, (_, i) => (i < 4000 ? (r.next() - 0.5) * (i < 2000 ? 60 : 220) : [-Infinity, Infinity, NaN, 0, 88.7, 88.8, -103.9, -104, -87.5][i % 9]!));
  return { x64, pos64, x32 };
}

/** sha256 of exp(x64), log(pos64) and expf(x32) as computed by `addon` */
export function vmathDigest(addon: Pick<NativeAddon, 'vmath'>): string {
  const { x64, pos64, x32 } = probeInputs();
  const e = new Float64Array(x64.length);
  const l = new Float64Array(pos64.length);
  const f = new Float32Array(x32.length);
  addon.vmath(0, x64, e);
  addon.vmath(1, pos64, l);
  addon.vmath(2, x32, f);
  const h = createHash('sha256');
  for (const a of [e, l, f]) h.update(new Uint8Array(a.buffer, a.byteOffset, a.byteLength));
  return h.digest('hex');
}
