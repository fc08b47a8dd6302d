/**
 * Seeded fuzzing of every binary reader: valid files are truncated, bit-flipped, given huge
 * header/shape/offset fields or replaced by random bytes. Every case must end in a consistent
 * parse or in our DataError: never another exception, a hang or a huge allocation.
 * A failing case is saved under os.tmpdir()/siamese-fuzz-failures/ to be replayed.
 */
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { deflateSync, gzipSync } from 'node:zlib';
import { after, before, test } from 'node:test';
import type { TestContext } from 'node:test';
import { parseIdx } from '../../src/data/idx.ts';
import { decodePng, MAX_PNG_PIXELS } from '../../src/data/png.ts';
import { encodeTestPng, pngChunk } from '../data/pngEncoder.ts';
import { DataError } from '../../src/errors.ts';
import { encodeNpy, parseNpy } from '../../src/io/npy.ts';
import { encodeSafetensors, parseSafetensors } from '../../src/io/safetensors.ts';
import { KerasH5Reader, writeKerasH5 } from '../../src/model/keras.ts';
import { hasShared, KERAS_FIXTURES, SEED_MLP_SPECS, SHARED_ABSENT_MESSAGE } from '../helpers.ts';
import type { ExpectedTensor } from '../../src/model/keras.ts';
import type { NamedTensor } from '../../src/model/weights.ts';
import { Rng } from '../../src/rng.ts';

// SIAMESE_FUZZ_SCALE=10 (say) for a deeper run than CI's.
const SCALE = Math.max(0.01, Number(process.env['SIAMESE_FUZZ_SCALE'] ?? 1) || 1);
const CASES = Math.round(10_000 * SCALE);
// HDF5 goes through WebAssembly in a worker thread and a file per case: about 3 ms of CPU per
// case against ~0.05 ms for the other formats. 10,000 cases on small files the test writes
// itself, run as two streams on two readers (one worker each) at once; plus a few hundred on the
// seed's real Keras file when it is present (each of those reads ~400 kB of weights).
const HDF5_CASES = Math.round(10_000 * SCALE);
const HDF5_STREAMS = 2;
const HDF5_FIXTURE_CASES = Math.round(300 * SCALE);
const SEED = 20261129;
// Anything above this in ArrayBuffers means some reader allocated from a corrupt size field.
const MAX_ARRAYBUFFER_BYTES = 256 * 2 ** 20;

type Mutator = (rng: Rng, b: Uint8Array) => Uint8Array;

const SPECIAL_BYTES = [0x00, 0xff, 0x7f, 0x80, 0x01, 0xfe];
const SPECIAL_NUMBERS = [
  '0',
  '1',
  '-1',
  '255',
  '65536',
  '2147483647',
  '4294967296',
  '9007199254740991',
  '9007199254740993',
  '18446744073709551616',
  '99999999999999999999999',
  '1e308',
  '1.5',
];
const SPECIAL_U32 = [0, 1, 0x7fffffff, 0x80000000, 0xffffffff, 0x10000, 60000];
const SPECIAL_U64 = [0n, 1n, 2n ** 32n, 2n ** 53n + 1n, 2n ** 63n, 2n ** 64n - 1n, 100_000_001n];

const pick = <T>(rng: Rng, xs: readonly T[]): T => xs[rng.int(xs.length)]!;
const copy = (b: Uint8Array): Uint8Array => new Uint8Array(b);
function randomBytes(rng: Rng, n: number): Uint8Array {
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = rng.int(256);
  return out;
}
const concat = (...parts: Uint8Array[]): Uint8Array => new Uint8Array(Buffer.concat(parts));

/** Format-agnostic damage. */
const GENERIC: Mutator[] = [
  (rng, b) => b.subarray(0, rng.int(b.length + 1)), // truncation
  (rng, b) => {
    const c = copy(b); // 1-8 bit flips
    for (let k = 1 + rng.int(8); k > 0 && c.length > 0; k--) c[rng.int(c.length)]! ^= 1 << rng.int(8);
    return c;
  },
  (rng, b) => {
    const c = copy(b); // a few bytes set to boundary values
    for (let k = 1 + rng.int(4); k > 0 && c.length > 0; k--) c[rng.int(c.length)] = pick(rng, SPECIAL_BYTES);
    return c;
  },
  (rng, b) => randomBytes(rng, rng.int(2 * b.length + 16)), // garbage
  (rng, b) => concat(b.subarray(0, rng.int(b.length + 1)), randomBytes(rng, rng.int(64))), // valid prefix, garbage tail
  (rng, b) => {
    const at = rng.int(b.length + 1); // delete a chunk
    return concat(b.subarray(0, at), b.subarray(Math.min(b.length, at + 1 + rng.int(16))));
  },
  (rng, b) => {
    const at = rng.int(b.length + 1); // insert a chunk
    return concat(b.subarray(0, at), randomBytes(rng, 1 + rng.int(16)), b.subarray(at));
  },
];

/** Replace one run of digits in the first `limit` bytes (a text header) with a special number. */
function replaceNumber(rng: Rng, b: Uint8Array, start: number, end: number): Uint8Array {
  const text = Buffer.from(b.subarray(start, end)).toString('latin1');
  const runs = [...text.matchAll(/\d+/g)];
  if (runs.length === 0) return b;
  const r = pick(rng, runs);
  const replaced = text.slice(0, r.index) + pick(rng, SPECIAL_NUMBERS) + text.slice(r.index + r[0].length);
  return concat(b.subarray(0, start), Buffer.from(replaced, 'latin1'), b.subarray(end));
}

interface Outcome {
  ok: number;
  errors: number;
  failures: string[];
  maxCaseMs: number;
}

function saveFailure(format: string, i: number, bytes: Uint8Array): string {
  const dir = join(tmpdir(), 'siamese-fuzz-failures');
  mkdirSync(dir, { recursive: true });
  const p = join(dir, `${format}-seed${SEED}-case${i}.bin`);
  writeFileSync(p, bytes);
  return p;
}

function record(out: Outcome, format: string, i: number, bytes: Uint8Array, e: unknown): void {
  if (e instanceof DataError) {
    out.errors++;
    if (!e.message || e.message.includes('\n')) {
      out.failures.push(`case ${i}: DataError message is not one line: ${JSON.stringify(e.message)}`);
    }
    return;
  }
  if (out.failures.length < 5) {
    out.failures.push(`case ${i}: ${e instanceof Error ? `${e.name}: ${e.message}` : String(e)} (saved to ${saveFailure(format, i, bytes)})`);
  } else out.failures.push(`case ${i}`);
}

/** Run `n` seeded cases: pick a base file and a mutator, parse, check. */
async function fuzz(
  format: string,
  bases: readonly Uint8Array[],
  mutators: readonly Mutator[],
  n: number,
  check: (bytes: Uint8Array) => void | Promise<void>,
  seed = SEED,
  signal?: AbortSignal,
): Promise<Outcome> {
  const rng = new Rng(seed);
  const out: Outcome = { ok: 0, errors: 0, failures: [], maxCaseMs: 0 };
  for (let i = 0; i < n; i++) {
    // A timed-out test must not go on reading in the background: that would keep the shared HDF5
    // worker busy after `after` closed it, and the file would never exit.
    if (signal?.aborted) break;
    const base = pick(rng, bases);
    // sometimes two mutations on top of each other
    let bytes = pick(rng, mutators)(rng, base);
    if (rng.int(4) === 0) bytes = pick(rng, mutators)(rng, bytes);
    const t0 = performance.now();
    try {
      await check(bytes);
      out.ok++;
    } catch (e) {
      record(out, format, i, bytes, e);
    }
    out.maxCaseMs = Math.max(out.maxCaseMs, performance.now() - t0);
    if (i % 1000 === 999) {
      const ab = process.memoryUsage().arrayBuffers;
      if (ab > MAX_ARRAYBUFFER_BYTES) out.failures.push(`after case ${i}: ${ab} bytes in ArrayBuffers`);
    }
  }
  return out;
}

function assertClean(t: TestContext, format: string, out: Outcome, n: number): void {
  t.diagnostic(`${format}: ${out.ok} parsed, ${out.errors} DataErrors, slowest case ${out.maxCaseMs.toFixed(1)} ms`);
  assert.deepEqual(out.failures.slice(0, 6), [], `${format}: ${out.failures.length} bad cases`);
  assert.equal(out.ok + out.errors, n);
  // a fuzzer whose every case fails the same way (or passes) is not exploring anything
  assert.ok(out.ok > 0 && out.errors > 0, `${format}: ok ${out.ok}, errors ${out.errors}`);
}

const product = (shape: readonly number[]): number => shape.reduce((a, b) => a * b, 1);

// ---------------- NPY ----------------

/** Re-frame a version 1.0 file as 2.0 (u32 header length) or 3.0 (same, utf-8 header). */
function npyAsVersion(v1: Uint8Array, major: 2 | 3): Uint8Array {
  const hl = new DataView(v1.buffer, v1.byteOffset).getUint16(8, true);
  const out = new Uint8Array(v1.length + 2);
  out.set(v1.subarray(0, 8));
  out[6] = major;
  new DataView(out.buffer).setUint32(8, hl, true);
  out.set(v1.subarray(10), 12);
  return out;
}

function npyBases(): Uint8Array[] {
  const f4 = encodeNpy({ dtype: 'float32', shape: [3, 4], data: Float32Array.from({ length: 12 }, (_, i) => i - 5.5) });
  return [
    f4,
    encodeNpy({ dtype: 'int64', shape: [5], data: new BigInt64Array([1n, -2n, 3n, 4n, -5n]) }),
    encodeNpy({ dtype: 'uint8', shape: [], data: new Uint8Array([9]) }),
    encodeNpy({ dtype: 'int32', shape: [2, 0, 3], data: new Int32Array(0) }),
    encodeNpy({ dtype: 'float64', shape: [2, 1, 2], data: new Float64Array([1, 2, 3, 4]) }),
    npyAsVersion(f4, 2),
    npyAsVersion(encodeNpy({ dtype: 'uint8', shape: [4], data: new Uint8Array([1, 2, 3, 4]) }), 3),
  ];
}

function npyHeaderEnd(b: Uint8Array): number {
  const major = b[6] ?? 1;
  const start = major === 1 ? 10 : 12;
  const len = b.length >= start ? (major === 1 ? b[8]! | (b[9]! << 8) : new DataView(b.buffer, b.byteOffset).getUint32(8, true)) : 0;
  return Math.min(b.length, start + len);
}

const NPY_MUTATORS: Mutator[] = [
  ...GENERIC,
  (rng, b) => {
    const c = copy(b); // header length field
    if (c.length >= 12) {
      if (c[6] === 1) new DataView(c.buffer).setUint16(8, pick(rng, SPECIAL_U32) & 0xffff, true);
      else new DataView(c.buffer).setUint32(8, pick(rng, SPECIAL_U32), true);
    }
    return c;
  },
  (rng, b) => replaceNumber(rng, b, 10, npyHeaderEnd(b)), // shape entries (and lengths)
  (rng, b) => {
    const c = copy(b); // version bytes
    c[6] = rng.int(5);
    c[7] = rng.int(2);
    return c;
  },
  (rng, b) => {
    const text = Buffer.from(b.subarray(10, npyHeaderEnd(b))).toString('latin1'); // descr
    const descr = pick(rng, ["'>f4'", "'|O'", "'<f2'", "'|b1'", "'<c8'", "''", "'<f4'", '[]', "'<i8'", "'|u1'", '1']);
    const swapped = text.replace(/'(?:[<>|=][a-zA-Z]\d*)'/, descr);
    return concat(b.subarray(0, 10), Buffer.from(swapped, 'latin1'), b.subarray(npyHeaderEnd(b)));
  },
];

function checkNpy(bytes: Uint8Array): void {
  const a = parseNpy(bytes, 'fuzz.npy');
  assert.ok(a.shape.every((d) => Number.isSafeInteger(d) && d >= 0), 'bad shape');
  assert.equal(a.data.length, product(a.shape), 'data length != product(shape)');
  const ctor = { float32: Float32Array, int32: Int32Array, uint8: Uint8Array, float64: Float64Array, int64: BigInt64Array }[a.dtype];
  assert.ok(a.data instanceof ctor, 'typed array does not match dtype');
}

// ---------------- safetensors ----------------

function safetensorsBases(): Uint8Array[] {
  const t = (name: string, shape: number[]): NamedTensor => ({
    name,
    shape,
    data: Float32Array.from({ length: product(shape) }, (_, i) => i * 0.5),
  });
  return [
    encodeSafetensors([t('dense_1.kernel', [4, 3]), t('dense_1.bias', [3]), t('s', [])], { loss: 'yukawa', epoch: '20' }),
    encodeSafetensors([t('a', [2, 2]), t('empty', [0, 3]), t('b', [5])]),
    encodeSafetensors([]),
  ];
}

function safetensorsHeaderEnd(b: Uint8Array): number {
  if (b.length < 8) return b.length;
  const n = new DataView(b.buffer, b.byteOffset).getBigUint64(0, true);
  return n > BigInt(b.length) ? b.length : Math.min(b.length, 8 + Number(n));
}

/** Rewrite the header text and, half the time, fix the length field so parsing goes deeper. */
function withSafetensorsHeader(rng: Rng, b: Uint8Array, edit: (text: string) => string): Uint8Array {
  const end = safetensorsHeaderEnd(b);
  const text = edit(Buffer.from(b.subarray(8, end)).toString('latin1'));
  const json = Buffer.from(text, 'latin1');
  const out = concat(b.subarray(0, 8), json, b.subarray(end));
  if (out.length >= 8 && rng.int(2) === 0) new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
  return out;
}

const SAFETENSORS_MUTATORS: Mutator[] = [
  ...GENERIC,
  (rng, b) => {
    const c = copy(b); // the u64 header length
    if (c.length >= 8) {
      const v = rng.int(2) === 0 ? pick(rng, SPECIAL_U64) : BigInt(Math.max(0, safetensorsHeaderEnd(b) - 8 + rng.int(17) - 8));
      new DataView(c.buffer).setBigUint64(0, v, true);
    }
    return c;
  },
  (rng, b) =>
    withSafetensorsHeader(rng, b, (text) => {
      // one number (a shape entry or a data offset) replaced
      const runs = [...text.matchAll(/\d+/g)];
      if (runs.length === 0) return text;
      const r = pick(rng, runs);
      return text.slice(0, r.index) + pick(rng, SPECIAL_NUMBERS) + text.slice(r.index + r[0].length);
    }),
  (rng, b) =>
    withSafetensorsHeader(rng, b, (text) =>
      text.replace(/"F32"/, pick(rng, ['"F16"', '"BF16"', '"I64"', '"F64"', '"U8"', '"I32"', '5', 'null', '"f32"'])),
    ),
  (rng, b) =>
    withSafetensorsHeader(rng, b, (text) =>
      text.replace(
        pick(rng, [/"shape":\[[^\]]*\]/, /"data_offsets":\[[^\]]*\]/, /"__metadata__":\{[^}]*\}/]),
        pick(rng, ['"shape":[]', '"shape":[-1]', '"data_offsets":[0,0]', '"data_offsets":[]', '"__metadata__":{"a":1}', '"x":{}']),
      ),
    ),
];

function checkSafetensors(bytes: Uint8Array): void {
  const { tensors, metadata } = parseSafetensors(bytes, 'fuzz.safetensors');
  let total = 0;
  const names = new Set<string>();
  for (const t of tensors) {
    assert.ok(t.data instanceof Float32Array);
    assert.equal(t.data.length, product(t.shape), `tensor ${t.name}: data length != product(shape)`);
    assert.ok(!names.has(t.name), 'duplicate name');
    names.add(t.name);
    total += t.data.length;
  }
  assert.ok(total <= bytes.length, 'more values than bytes');
  assert.ok(Object.values(metadata).every((v) => typeof v === 'string'));
}

// ---------------- IDX ----------------

function idxFile(dims: number[], fill: (i: number) => number): Uint8Array {
  const head = new Uint8Array(4 + 4 * dims.length);
  const view = new DataView(head.buffer);
  view.setUint32(0, 0x0800 | dims.length, false);
  dims.forEach((d, i) => view.setUint32(4 + 4 * i, d, false));
  return concat(head, Uint8Array.from({ length: product(dims) }, (_, i) => fill(i)));
}

function idxBases(): Uint8Array[] {
  const images = idxFile([3, 5, 4], (i) => (i * 37) & 0xff);
  return [images, idxFile([7], (i) => i % 10), gzipSync(images)];
}

const IDX_MUTATORS: Mutator[] = [
  ...GENERIC,
  (rng, b) => {
    const c = copy(b); // a dimension, or the magic number
    if (c.length >= 8) {
      const fields = Math.min(5, Math.floor(c.length / 4));
      new DataView(c.buffer).setUint32(4 * rng.int(fields), pick(rng, SPECIAL_U32), false);
    }
    return c;
  },
];

function checkIdx(bytes: Uint8Array): void {
  const a = parseIdx(bytes, 'fuzz-idx');
  assert.ok(a.dims.length >= 1 && a.dims.every((d) => Number.isSafeInteger(d) && d >= 0));
  assert.equal(a.data.length, product(a.dims), 'data length != product(dims)');
}

// ---------------- tests ----------------

test(`NPY: ${CASES} mutated files end in a consistent array or a DataError`, { timeout: 60_000 }, async (t) => {
  const out = await fuzz('npy', npyBases(), NPY_MUTATORS, CASES, checkNpy);
  assertClean(t, 'npy', out, CASES);
});

test(`safetensors: ${CASES} mutated files end in consistent tensors or a DataError`, { timeout: 60_000 }, async (t) => {
  const out = await fuzz('safetensors', safetensorsBases(), SAFETENSORS_MUTATORS, CASES, checkSafetensors);
  assertClean(t, 'safetensors', out, CASES);
});

test(`IDX: ${CASES} mutated files (raw and gzipped) end in a consistent array or a DataError`, { timeout: 60_000 }, async (t) => {
  const out = await fuzz('idx', idxBases(), IDX_MUTATORS, CASES, checkIdx);
  assertClean(t, 'idx', out, CASES);
});

// ---------------- PNG ----------------

function pngBases(): Uint8Array[] {
  const rng = new Rng(5);
  const samples = (n: number, max: number): number[] => Array.from({ length: n }, () => rng.int(max + 1));
  return [
    encodeTestPng(samples(5 * 4, 255), 5, 4, { color: 0, depth: 8, filters: [0, 1, 2, 3, 4] }),
    encodeTestPng(samples(6 * 3 * 3, 65535), 6, 3, { color: 2, depth: 16, interlace: true, filters: [4, 3] }),
    encodeTestPng(samples(7 * 5, 3), 7, 5, { color: 3, depth: 2, palette: [[1, 2, 3], [4, 5, 6], [7, 8, 9], [200, 100, 0]], trns: [0, 128] }),
    encodeTestPng(samples(3 * 3 * 2, 255), 3, 3, { color: 4, depth: 8, idatChunks: 2 }),
    encodeTestPng(samples(9 * 9 * 4, 255), 9, 9, { color: 6, depth: 8, interlace: true, filters: [1, 2, 3, 4, 0], extra: [{ type: 'tEXt', data: Buffer.from('k\0v') }] }),
    encodeTestPng(samples(17 * 2, 1), 17, 2, { color: 0, depth: 1, trns: [0, 1] }),
  ];
}

/** The chunks of a PNG (past the signature) as offsets; stops at the first that does not fit. */
function pngChunks(b: Uint8Array): { at: number; len: number; type: string }[] {
  const out: { at: number; len: number; type: string }[] = [];
  for (let at = 8; at + 12 <= b.length; ) {
    const len = new DataView(b.buffer, b.byteOffset).getUint32(at, false);
    if (at + 12 + len > b.length) break;
    out.push({ at, len, type: Buffer.from(b.subarray(at + 4, at + 8)).toString('latin1') });
    at += 12 + len;
  }
  return out;
}

/** Rebuild a PNG from edited chunk data with correct CRCs, so that parsing goes past the CRC check. */
function withChunk(b: Uint8Array, pick: (c: { type: string }) => boolean, edit: (data: Uint8Array) => Uint8Array): Uint8Array {
  const parts: Uint8Array[] = [b.subarray(0, 8)];
  let end = 8;
  for (const c of pngChunks(b)) {
    const data = b.subarray(c.at + 8, c.at + 8 + c.len);
    parts.push(pick(c) ? pngChunk(c.type, edit(new Uint8Array(data))) : b.subarray(c.at, c.at + 12 + c.len));
    end = c.at + 12 + c.len;
  }
  parts.push(b.subarray(end));
  return concat(...parts);
}

const PNG_MUTATORS: Mutator[] = [
  ...GENERIC,
  (rng, b) => {
    const c = copy(b); // a chunk length field
    const chunks = pngChunks(c);
    if (chunks.length > 0) new DataView(c.buffer).setUint32(pick(rng, chunks).at, pick(rng, SPECIAL_U32), false);
    return c;
  },
  (rng, b) =>
    withChunk(b, (c) => c.type === 'IHDR', (d) => {
      // width, height (huge values included), bit depth, colour type, interlace, with a valid CRC
      const v = new DataView(d.buffer);
      const field = rng.int(5);
      if (field < 2) v.setUint32(4 * field, rng.int(2) === 0 ? pick(rng, SPECIAL_U32) : 1 + rng.int(40), false);
      else if (field === 2) d[8] = pick(rng, [0, 1, 2, 4, 8, 16, 3]);
      else if (field === 3) d[9] = pick(rng, [0, 1, 2, 3, 4, 5, 6, 7]);
      else d[12] = rng.int(3);
      return d;
    }),
  (rng, b) =>
    withChunk(b, (c) => c.type === 'IDAT' || c.type === 'PLTE' || c.type === 'tRNS', (d) => {
      // damaged compressed data or palette, with a valid CRC: the inflater and the filters see it
      for (let k = 1 + rng.int(4); k > 0 && d.length > 0; k--) d[rng.int(d.length)]! ^= 1 << rng.int(8);
      return rng.int(3) === 0 ? d.subarray(0, rng.int(d.length + 1)) : d;
    }),
  (rng, b) =>
    withChunk(b, (c) => c.type === 'IDAT', () =>
      // well-formed zlib data of the wrong size, or of random row filters
      deflateSync(rng.int(2) === 0 ? randomBytes(rng, rng.int(400)) : new Uint8Array(rng.int(400))),
    ),
];

function checkPng(bytes: Uint8Array): void {
  const img = decodePng(bytes, 'fuzz.png');
  assert.ok(Number.isSafeInteger(img.width) && img.width > 0 && Number.isSafeInteger(img.height) && img.height > 0);
  assert.ok(img.width * img.height <= MAX_PNG_PIXELS, 'more pixels than allowed');
  assert.equal(img.rgba.length, img.width * img.height * 4, 'rgba length != 4 * pixels');
}

test(`PNG: ${CASES} mutated files end in a consistent image or a DataError`, { timeout: 60_000 }, async (t) => {
  const out = await fuzz('png', pngBases(), PNG_MUTATORS, CASES, checkPng);
  assertClean(t, 'png', out, CASES);
});

// ---------------- HDF5 (Keras weights) ----------------

const SMALL: NamedTensor[] = [
  { name: 'dense_1.kernel', shape: [4, 3], data: Float32Array.from({ length: 12 }, (_, i) => i / 8) },
  { name: 'dense_1.bias', shape: [3], data: new Float32Array([1, 2, 3]) },
  { name: 'dense_2.kernel', shape: [3, 2], data: Float32Array.from({ length: 6 }, (_, i) => -i) },
  { name: 'dense_2.bias', shape: [2], data: new Float32Array([0.5, -0.5]) },
];
const MLP: ExpectedTensor[] = SEED_MLP_SPECS;

/** HDF5 metadata holds 8-byte addresses and lengths: write boundary values over aligned words. */
const HDF5_MUTATORS = (metadataEnd: number): Mutator[] => [
  ...GENERIC.slice(0, 3),
  (rng, b) => {
    const c = copy(b);
    const at = 8 * rng.int(Math.max(1, Math.floor(Math.min(c.length, metadataEnd) / 8)));
    if (at + 8 <= c.length) new DataView(c.buffer).setBigUint64(at, pick(rng, SPECIAL_U64), true);
    return c;
  },
  (rng, b) => {
    const c = copy(b); // bit flips restricted to the metadata, where they matter
    for (let k = 1 + rng.int(4); k > 0; k--) {
      const at = rng.int(Math.min(c.length, metadataEnd));
      c[at]! ^= 1 << rng.int(8);
    }
    return c;
  },
];

let dir = '';
// one reader (one worker thread) per stream of cases
const readers = Array.from({ length: HDF5_STREAMS }, () => new KerasH5Reader({ timeoutMs: 20_000 }));
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'siamese-fuzz-'));
});
after(async () => {
  await Promise.all(readers.map((r) => r.close()));
  await rm(dir, { recursive: true, force: true });
});

function checkKeras(expected: readonly ExpectedTensor[], stream = 0): (bytes: Uint8Array) => Promise<void> {
  let n = 0;
  const reader = readers[stream]!;
  return async (bytes) => {
    // the reader takes a path: each case is a file (h5wasm reads through the filesystem)
    const p = join(dir, `s${stream}-case${n++ % 2}.h5`);
    writeFileSync(p, bytes);
    const got = await reader.readWeights(p, expected);
    assert.equal(got.length, expected.length);
    got.forEach((t, i) => {
      assert.deepEqual(t.shape, expected[i]!.shape);
      assert.equal(t.data.length, product(t.shape));
    });
  };
}

test(`HDF5: ${HDF5_CASES} mutated small Keras files (written by the test) end in weights of the right shapes or a DataError`, { timeout: 600_000 }, async (t) => {
  // written at test time: HDF5 stores creation times, so these bytes vary a little from run to run;
  // a failing case is saved to disk to be replayed
  const base = join(dir, 'base.h5');
  await writeKerasH5(base, SMALL);
  const bytes = new Uint8Array(readFileSync(base));
  const expected = SMALL.map(({ name, shape }) => ({ name, shape }));
  // the streams run at once, each with its own seed, reader and files; together HDF5_CASES cases
  const outs = await Promise.all(
    readers.map((_, s) => {
      const n = Math.floor(HDF5_CASES / HDF5_STREAMS) + (s < HDF5_CASES % HDF5_STREAMS ? 1 : 0);
      return fuzz(`hdf5-s${s}`, [bytes], HDF5_MUTATORS(bytes.length), n, checkKeras(expected, s), SEED + 100 + s, t.signal);
    }),
  );
  const out: Outcome = {
    ok: outs.reduce((a, o) => a + o.ok, 0),
    errors: outs.reduce((a, o) => a + o.errors, 0),
    failures: outs.flatMap((o) => o.failures),
    maxCaseMs: Math.max(...outs.map((o) => o.maxCaseMs)),
  };
  assertClean(t, 'hdf5', out, HDF5_CASES);
});

test(`HDF5: ${HDF5_FIXTURE_CASES} mutated copies of a real Keras 2.2.4 file`, { timeout: 600_000 }, async (t) => {
  if (!hasShared) return t.skip(SHARED_ABSENT_MESSAGE);
  const fixture = join(KERAS_FIXTURES, 'base_network.h5');
  const bytes = new Uint8Array(readFileSync(fixture));
  // h5py wrote the groups, attributes and object headers in the first few KiB; the rest is weights
  const out = await fuzz('hdf5-keras', [bytes], HDF5_MUTATORS(4096), HDF5_FIXTURE_CASES, checkKeras(MLP), SEED + 1, t.signal);
  assertClean(t, 'hdf5-keras', out, HDF5_FIXTURE_CASES);
});
