/**
 * native/src/vmath.c: exp and log over arrays (the batch losses' per-pair arithmetic) against
 * V8's Math.exp and Math.log (fdlibm, within 1 ulp of the exact value): within 2 ulp everywhere
 * they are finite, the specials exact; expf against the float rounding of Math.exp.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { nativeAddon, nativeStatus } from '../../src/engine/native.ts';
import { probeInputs, vmathDigest } from './vmathProbe.ts';

const status = nativeStatus();

/** distance in units in the last place, through the ordered integer images of the bits */
function ulps64(a: number, b: number): number {
  const key = (x: number): bigint => {
    const v = new BigInt64Array(Float64Array.of(x).buffer)[0]!;
    return v < 0n ? -(v & 0x7fffffffffffffffn) : v;
  };
  const d = key(a) - key(b);
  return Number(d < 0n ? -d : d);
}

function ulps32(a: number, b: number): number {
  const key = (x: number): number => {
    const v = new Int32Array(Float32Array.of(x).buffer)[0]!;
    return v < 0 ? -(v & 0x7fffffff) : v;
  };
  return Math.abs(key(a) - key(b));
}

function worst(x: ArrayLike<number>, y: ArrayLike<number>, ref: (v: number) => number, ulps: (a: number, b: number) => number): { ulp: number; at: number } {
  let w = { ulp: 0, at: NaN };
  for (let i = 0; i < x.length; i++) {
    const r = ref(x[i]!);
    const u = Number.isNaN(r) ? (Number.isNaN(y[i]!) ? 0 : Infinity) : ulps(y[i]!, r);
    if (u > w.ulp) w = { ulp: u, at: x[i]! };
  }
  return w;
}

if (!status.available) {
  test('vmath: the native addon is not available here, nothing to check', (t) => {
    t.diagnostic(`native addon: ${status.detail}`);
    assert.equal(status.available, false);
  });
} else {
  const addon = nativeAddon();
  const { x64, pos64, x32 } = probeInputs();

  test('vm_exp is within 2 ulp of Math.exp from -1000 to 1000, exact at 0, +-inf, NaN and the over/underflow edges', () => {
    const y = new Float64Array(x64.length);
    addon.vmath(0, x64, y);
    const w = worst(x64, y, Math.exp, ulps64);
    assert.ok(w.ulp <= 2, `${w.ulp} ulp from Math.exp at ${w.at}`);
    const specials = Float64Array.of(-Infinity, Infinity, NaN, 0, -0, 709.79, -745.2, 1000, -1000, 1e300, -1e300);
    const s = new Float64Array(specials.length);
    addon.vmath(0, specials, s);
    assert.deepEqual([...s], [0, Infinity, NaN, 1, 1, Infinity, 0, Infinity, 0, Infinity, 0]);
    // in place, and the smallest subnormal
    const inPlace = Float64Array.of(1, -745.1);
    addon.vmath(0, inPlace, inPlace);
    assert.ok(ulps64(inPlace[0]!, Math.E) <= 2, `exp(1) in place: ${inPlace[0]}`);
    assert.equal(inPlace[1], 5e-324);
  });

  test('vm_log is within 2 ulp of Math.log over normal and subnormal inputs; 0, negatives, NaN and inf as Math.log', () => {
    const y = new Float64Array(pos64.length);
    addon.vmath(1, pos64, y);
    const w = worst(pos64, y, Math.log, ulps64);
    assert.ok(w.ulp <= 2, `${w.ulp} ulp from Math.log at ${w.at}`);
    const specials = Float64Array.of(0, -0, -1, -Infinity, NaN, Infinity, 1);
    const s = new Float64Array(specials.length);
    addon.vmath(1, specials, s);
    assert.deepEqual([...s], [-Infinity, -Infinity, NaN, NaN, NaN, Infinity, 0]);
  });

  test('vm_expf is within 2 float ulp of Math.exp rounded to float, to the float subnormals and overflow', () => {
    const y = new Float32Array(x32.length);
    addon.vmath(2, x32, y);
    const w = worst(x32, y, (v) => Math.fround(Math.exp(v)), ulps32);
    assert.ok(w.ulp <= 2, `${w.ulp} float ulp from Math.exp at ${w.at}`);
    const s = new Float32Array(5);
    addon.vmath(2, Float32Array.of(-Infinity, Infinity, NaN, 89, -104), s);
    assert.deepEqual([...s], [0, Infinity, NaN, Infinity, 0]);
  });

  test('vmath refuses mismatched arrays with one line', () => {
    assert.throws(() => addon.vmath(0, new Float64Array(3), new Float64Array(2)), /^Error: vmath: x and y must be arrays of the same length/);
    assert.throws(() => addon.vmath(2, new Float64Array(3) as unknown as Float32Array, new Float32Array(3)), /vmath: x and y must be/);
    assert.throws(() => addon.vmath(3 as 0, new Float64Array(1), new Float64Array(1)), /vmath: op must be 0/);
  });

  test('the probe digest is stable within a build (marchBuilds.test.ts compares it across builds)', () => {
    assert.match(vmathDigest(addon), /^[0-9a-f]{64}$/);
    assert.equal(vmathDigest(addon), vmathDigest(addon));
  });
}
