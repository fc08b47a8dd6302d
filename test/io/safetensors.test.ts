import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { DataError, UsageError } from '../../src/errors.ts';
import {
  encodeSafetensors,
  parseSafetensors,
  readSafetensors,
  writeSafetensors,
} from '../../src/io/safetensors.ts';
import type { NamedTensor } from '../../src/io/safetensors.ts';

/** A safetensors file from a header object and raw data bytes, built by hand from the spec. */
function build(header: unknown, data: Uint8Array, headerText?: string): Uint8Array {
  const json = new TextEncoder().encode(headerText ?? JSON.stringify(header));
  const out = new Uint8Array(8 + json.length + data.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
  out.set(json, 8);
  out.set(data, 8 + json.length);
  return out;
}
const f32 = (...v: number[]): Uint8Array => new Uint8Array(new Float32Array(v).buffer);
const concat = (...parts: Uint8Array[]): Uint8Array => new Uint8Array(Buffer.concat(parts));

function rejects(bytes: Uint8Array, re: RegExp): void {
  assert.throws(
    () => parseSafetensors(bytes, 'w.safetensors'),
    (e: unknown) => {
      assert.ok(e instanceof DataError, String(e));
      assert.match(e.message, re);
      assert.ok(e.message.startsWith('w.safetensors: ') && !e.message.includes('\n'), e.message);
      return true;
    },
  );
}

let dir = '';
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'siamese-st-'));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

const TENSORS: NamedTensor[] = [
  { name: 'dense_1.kernel', shape: [3, 2], data: new Float32Array([1, 2, 3, 4, 5, -6.5]) },
  { name: 'dense_1.bias', shape: [2], data: new Float32Array([0.5, -0]) },
  { name: 'scalar', shape: [], data: new Float32Array([42]) },
  { name: 'empty', shape: [0, 4], data: new Float32Array(0) },
];

test('round trip keeps order, shapes, values and metadata; header is padded to 8 bytes', () => {
  const bytes = encodeSafetensors(TENSORS, { format: 'pt', seed: '7' });
  const n = Number(new DataView(bytes.buffer).getBigUint64(0, true));
  assert.equal(n % 8, 0);
  const { tensors, metadata } = parseSafetensors(bytes);
  assert.deepEqual(metadata, { format: 'pt', seed: '7' });
  assert.deepEqual(
    tensors.map((t) => t.name),
    TENSORS.map((t) => t.name),
  );
  for (let i = 0; i < TENSORS.length; i++) {
    assert.deepEqual(tensors[i]!.shape, TENSORS[i]!.shape);
    assert.deepEqual(tensors[i]!.data, TENSORS[i]!.data);
  }
  assert.deepEqual(parseSafetensors(encodeSafetensors([])).tensors, []);
});

test('the header is what the spec describes', () => {
  const bytes = encodeSafetensors([{ name: 'w', shape: [2], data: new Float32Array([1, 2]) }], { k: 'v' });
  const n = Number(new DataView(bytes.buffer).getBigUint64(0, true));
  const header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + n))) as unknown;
  assert.deepEqual(header, { __metadata__: { k: 'v' }, w: { dtype: 'F32', shape: [2], data_offsets: [0, 8] } });
  assert.equal(bytes.length, 8 + n + 8);
});

test('reads a file whose header order differs from the data order (sorted by offset)', () => {
  const header = {
    b: { dtype: 'F32', shape: [1], data_offsets: [4, 8] },
    a: { dtype: 'F32', shape: [1], data_offsets: [0, 4] },
  };
  const { tensors } = parseSafetensors(build(header, f32(1, 2)));
  assert.deepEqual(
    tensors.map((t) => [t.name, t.data[0]]),
    [
      ['a', 1],
      ['b', 2],
    ],
  );
});

test('F64, I32 and U8 convert to Float32Array; other dtypes are refused', () => {
  const data = concat(
    new Uint8Array(new Float64Array([0.1]).buffer),
    new Uint8Array(new Int32Array([-3]).buffer),
    new Uint8Array([200]),
  );
  const header = {
    d: { dtype: 'F64', shape: [1], data_offsets: [0, 8] },
    i: { dtype: 'I32', shape: [1], data_offsets: [8, 12] },
    u: { dtype: 'U8', shape: [1], data_offsets: [12, 13] },
  };
  const { tensors } = parseSafetensors(build(header, data));
  assert.deepEqual(
    tensors.map((t) => t.data[0]),
    [Math.fround(0.1), -3, 200],
  );
  assert.ok(tensors.every((t) => t.data instanceof Float32Array));
  rejects(build({ h: { dtype: 'F16', shape: [1], data_offsets: [0, 2] } }, new Uint8Array(2)), /tensor 'h': dtype F16 is not supported/);
});

test('a tensor at an unaligned offset reads correctly (from a Buffer, too)', () => {
  const header = {
    u: { dtype: 'U8', shape: [1], data_offsets: [0, 1] },
    f: { dtype: 'F32', shape: [2], data_offsets: [1, 9] },
  };
  const bytes = Buffer.from(build(header, concat(new Uint8Array([7]), f32(1.5, -2))));
  const { tensors } = parseSafetensors(bytes);
  assert.deepEqual([...tensors[1]!.data], [1.5, -2]);
});

test('refuses bad header lengths, JSON, entries and offsets with one-line messages', () => {
  const ok = { a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] } };
  rejects(new Uint8Array(5), /too short/);
  const huge = build(ok, f32(1, 2));
  new DataView(huge.buffer).setBigUint64(0, 2n ** 63n, true);
  rejects(huge, /header length 9223372036854775808 is over this reader.s limit of 1048576 bytes/);
  const long = build(ok, f32(1, 2));
  new DataView(long.buffer).setBigUint64(0, 1000n, true);
  rejects(long, /truncated safetensors file: the header needs 1008 bytes/);
  rejects(build(null, f32(), '[1,2]'), /not a JSON object/);
  rejects(build(null, f32(), '{"a": '), /not valid JSON/);
  rejects(build(ok, f32(1)), /tensor 'a': data_offsets \[0,8\] lie outside the 4 data bytes/);
  rejects(build(ok, f32(1, 2, 3)), /data is 12 bytes but the tensors cover 8/);
  rejects(build({ a: { dtype: 'F32', shape: [3], data_offsets: [0, 8] } }, f32(1, 2)), /shape \[3\] of F32 needs 12 bytes, data_offsets give 8/);
  rejects(build({ a: { dtype: 'F32', shape: [2 ** 52, 2 ** 52], data_offsets: [0, 8] } }, f32(1, 2)), /needs 81129638414606681695789005144064 bytes, data_offsets give 8/);
  rejects(build({ a: { dtype: 'F32', shape: [-1], data_offsets: [0, 8] } }, f32(1, 2)), /non-negative/);
  rejects(build({ a: { dtype: 'F32', shape: [2], data_offsets: [8, 0] } }, f32(1, 2)), /lie outside/);
  rejects(build({ a: { dtype: 'F32', shape: [2], data_offsets: [0] } }, f32(1, 2)), /two non-negative integers/);
  rejects(build({ a: { dtype: 'F32', shape: [2], data_offsets: [0, 8], x: 1 } }, f32(1, 2)), /unexpected field 'x'/);
  rejects(build({ a: 5 }, f32()), /entry is not an object/);
  rejects(
    build(
      {
        a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] },
        b: { dtype: 'F32', shape: [1], data_offsets: [4, 8] },
      },
      f32(1, 2),
    ),
    /tensor 'b' overlaps another tensor/,
  );
  rejects(build({ a: { dtype: 'F32', shape: [1], data_offsets: [4, 8] } }, f32(1, 2)), /gap before tensor 'a'/);
  rejects(build({ __metadata__: { k: 1 } }, f32()), /__metadata__ value 'k' is not a string/);
  rejects(build({ __metadata__: [] }, f32()), /__metadata__ is not an object/);
  rejects(build(null, f32(), '{"a":"\uFFFD"}'.replace('\uFFFD', '\\u00')), /not valid JSON/);
});

test('metadata key "__proto__" and tensor "__proto__" stay plain data', () => {
  const bytes = encodeSafetensors([{ name: '__proto__', shape: [1], data: new Float32Array([3]) }], JSON.parse('{"__proto__":"x"}') as Record<string, string>);
  const { tensors, metadata } = parseSafetensors(bytes);
  assert.equal(tensors[0]!.name, '__proto__');
  assert.equal(Object.getOwnPropertyDescriptor(metadata, '__proto__')?.value, 'x');
});

test('encodeSafetensors refuses bad input with UsageError', () => {
  const t = (name: string, shape: number[], n: number): NamedTensor => ({ name, shape, data: new Float32Array(n) });
  assert.throws(() => encodeSafetensors([t('a', [2], 3)]), UsageError);
  assert.throws(() => encodeSafetensors([t('a', [1], 1), t('a', [1], 1)]), /duplicate tensor name 'a'/);
  assert.throws(() => encodeSafetensors([t('__metadata__', [1], 1)]), UsageError);
  assert.throws(() => encodeSafetensors([t('a', [-1], 0)]), UsageError);
});

test('writeSafetensors / readSafetensors on disk', async () => {
  const p = join(dir, 'w.safetensors');
  await writeSafetensors(p, TENSORS, { note: 'hi' });
  const back = await readSafetensors(p);
  assert.deepEqual(back.metadata, { note: 'hi' });
  assert.deepEqual(back.tensors[0]!.data, TENSORS[0]!.data);
  const some = await readSafetensors(p, { only: (name) => name.startsWith('dense_1.') });
  assert.deepEqual(some.tensors.map((t) => t.name), ['dense_1.kernel', 'dense_1.bias']);
  assert.deepEqual(some.tensors[1]!.data, TENSORS[1]!.data);
  await writeFile(join(dir, 'bad.safetensors'), 'not safetensors at all');
  await assert.rejects(readSafetensors(join(dir, 'bad.safetensors')), DataError);
  await assert.rejects(readSafetensors(join(dir, 'none.safetensors')), /none\.safetensors: no such file/);
});

test('a file over 2 GiB (sparse) is read in pieces: its header first, then only the tensors asked for', async () => {
  const { truncateSync } = await import('node:fs');
  const pad = 2.5 * 2 ** 30;
  const header = {
    w: { dtype: 'F32', shape: [2], data_offsets: [0, 8] },
    pad: { dtype: 'U8', shape: [pad], data_offsets: [8, 8 + pad] },
  };
  const head = build(header, f32(1.5, -2));
  const p = join(dir, 'huge.safetensors');
  await writeFile(p, head);
  truncateSync(p, head.length + pad);
  const { tensors } = await readSafetensors(p, { only: (name) => name === 'w' });
  assert.deepEqual(tensors.map((t) => [t.name, [...t.data]]), [['w', [1.5, -2]]]);
});
