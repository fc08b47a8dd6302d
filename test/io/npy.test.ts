import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { DataError, UsageError } from '../../src/errors.ts';
import { encodeNpy, parseNpy, readNpy, readNpyFloat32Matrix, writeNpy } from '../../src/io/npy.ts';
import type { NpyArray } from '../../src/io/npy.ts';

// Bytes written by numpy 2.4 (np.save / np.lib.format.write_array), kept as golden files.
const NUMPY = {
  f4: '934e554d5059010076007b276465736372273a20273c6634272c2027666f727472616e5f6f72646572273a2046616c73652c20277368617065273a2028322c2033292c207d202020202020202020202020202020202020202020202020202020202020202020202020202020202020202020202020202020202020202020200a000000000000803e0000003f0000403f0000803f0000a03f',
  i8: '934e554d5059010076007b276465736372273a20273c6938272c2027666f727472616e5f6f72646572273a2046616c73652c20277368617065273a2028332c292c207d2020202020202020202020202020202020202020202020202020202020202020202020202020202020202020202020202020202020202020202020200affffffffffffffff00000000000100000300000000000000',
  u1Scalar: '934e554d5059010076007b276465736372273a20277c7531272c2027666f727472616e5f6f72646572273a2046616c73652c20277368617065273a2028292c207d20202020202020202020202020202020202020202020202020202020202020202020202020202020202020202020202020202020202020202020202020200a07',
  f8v2: '934e554d50590200740000007b276465736372273a20273c6638272c2027666f727472616e5f6f72646572273a2046616c73652c20277368617065273a2028312c2032292c207d20202020202020202020202020202020202020202020202020202020202020202020202020202020202020202020202020202020202020200a000000000000f83f00000000000000c0',
  bigEndian: '934e554d5059010076007b276465736372273a20273e6634272c2027666f727472616e5f6f72646572273a2046616c73652c20277368617065273a2028322c292c207d2020202020202020202020202020202020202020202020202020202020202020202020202020202020202020202020202020202020202020202020200a000000003f800000',
  fortran: '934e554d5059010076007b276465736372273a20273c6634272c2027666f727472616e5f6f72646572273a20547275652c20277368617065273a2028322c2032292c207d20202020202020202020202020202020202020202020202020202020202020202020202020202020202020202020202020202020202020202020200a00000000000000400000803f00004040',
};
const hex = (h: string): Uint8Array => new Uint8Array(Buffer.from(h, 'hex'));

/** A .npy file with an arbitrary header dict (padded like numpy) and data bytes. */
function withHeader(dict: string, data: Uint8Array = new Uint8Array(0)): Uint8Array {
  const len = Math.ceil((10 + dict.length + 1) / 64) * 64 - 10;
  const header = dict.padEnd(len - 1, ' ') + '\n';
  const out = new Uint8Array(10 + len + data.length);
  out.set([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0]);
  new DataView(out.buffer).setUint16(8, len, true);
  out.set(Buffer.from(header, 'latin1'), 10);
  out.set(data, 10 + len);
  return out;
}

function rejects(bytes: Uint8Array, re: RegExp): void {
  assert.throws(
    () => parseNpy(bytes, 'x.npy'),
    (e: unknown) => {
      assert.ok(e instanceof DataError, String(e));
      assert.match(e.message, re);
      assert.ok(e.message.startsWith('x.npy: ') && !e.message.includes('\n'), e.message);
      return true;
    },
  );
}

let dir = '';
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'siamese-npy-'));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

test('reads what numpy writes: float32 2-D, int64, uint8 scalar, version 2.0 float64', () => {
  const f4 = parseNpy(hex(NUMPY.f4));
  assert.equal(f4.dtype, 'float32');
  assert.deepEqual(f4.shape, [2, 3]);
  assert.deepEqual([...f4.data], [0, 0.25, 0.5, 0.75, 1, 1.25]);
  const i8 = parseNpy(hex(NUMPY.i8));
  assert.equal(i8.dtype, 'int64');
  assert.deepEqual([...(i8.data as BigInt64Array)], [-1n, 2n ** 40n, 3n]);
  const u1 = parseNpy(hex(NUMPY.u1Scalar));
  assert.deepEqual([u1.dtype, u1.shape, [...u1.data]], ['uint8', [], [7]]);
  const f8 = parseNpy(hex(NUMPY.f8v2));
  assert.deepEqual([f8.dtype, f8.shape, [...f8.data]], ['float64', [1, 2], [1.5, -2]]);
});

test('encodeNpy produces numpy\'s exact bytes', () => {
  const f4 = encodeNpy({ dtype: 'float32', shape: [2, 3], data: new Float32Array([0, 0.25, 0.5, 0.75, 1, 1.25]) });
  assert.equal(Buffer.from(f4).toString('hex'), NUMPY.f4);
  const i8 = encodeNpy({ dtype: 'int64', shape: [3], data: new BigInt64Array([-1n, 2n ** 40n, 3n]) });
  assert.equal(Buffer.from(i8).toString('hex'), NUMPY.i8);
  const u1 = encodeNpy({ dtype: 'uint8', shape: [], data: new Uint8Array([7]) });
  assert.equal(Buffer.from(u1).toString('hex'), NUMPY.u1Scalar);
});

test('round trip of every dtype, data aligned at 64, header ends with a newline', () => {
  const arrays: NpyArray[] = [
    { dtype: 'float32', shape: [3, 2], data: new Float32Array([1, -2, 3.5, 0, Infinity, -0]) },
    { dtype: 'int32', shape: [2, 1, 2], data: new Int32Array([1, -2, 2147483647, -2147483648]) },
    { dtype: 'uint8', shape: [4], data: new Uint8Array([0, 1, 128, 255]) },
    { dtype: 'float64', shape: [1, 1], data: new Float64Array([Math.PI]) },
    { dtype: 'int64', shape: [2], data: new BigInt64Array([-(2n ** 63n), 2n ** 63n - 1n]) },
    { dtype: 'float32', shape: [0, 5], data: new Float32Array(0) },
  ];
  for (const a of arrays) {
    const bytes = encodeNpy(a);
    const headerLen = new DataView(bytes.buffer).getUint16(8, true);
    assert.equal((10 + headerLen) % 64, 0);
    assert.equal(bytes[10 + headerLen - 1], 0x0a);
    const b = parseNpy(bytes);
    assert.equal(b.dtype, a.dtype);
    assert.deepEqual(b.shape, a.shape);
    assert.deepEqual(b.data, a.data);
  }
});

test('a parsed array owns aligned memory even when the input is a sub-view at an odd offset', () => {
  const bytes = encodeNpy({ dtype: 'float64', shape: [2], data: new Float64Array([1, 2]) });
  const shifted = new Uint8Array(bytes.length + 3);
  shifted.set(bytes, 3);
  const a = parseNpy(shifted.subarray(3));
  assert.deepEqual([...a.data], [1, 2]);
});

test('header dict syntax: double quotes, no trailing comma, any key order, spaces', () => {
  const data = new Uint8Array(new Float32Array([1, 2]).buffer);
  const a = parseNpy(withHeader(`{"shape":(2,),"fortran_order":False,"descr":"<f4"}`, data));
  assert.deepEqual([a.shape, [...a.data]], [[2], [1, 2]]);
  const b = parseNpy(withHeader(`{ 'descr' : '<u1' , 'fortran_order' : False , 'shape' : ( 2 , ) , }`, new Uint8Array([3, 4])));
  assert.deepEqual([...b.data], [3, 4]);
});

test('refuses big-endian, Fortran order, object and other dtypes with a clear message', () => {
  rejects(hex(NUMPY.bigEndian), /big-endian dtype '>f4' is not supported; save it with arr\.astype\('<f4'\)/);
  rejects(hex(NUMPY.fortran), /Fortran-order arrays are not supported/);
  rejects(withHeader(`{'descr': '|O', 'fortran_order': False, 'shape': (2,), }`), /object arrays/);
  rejects(withHeader(`{'descr': '<f2', 'fortran_order': False, 'shape': (1,), }`, new Uint8Array(2)), /dtype '<f2' is not supported/);
  rejects(withHeader(`{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (1,), }`, new Uint8Array(4)), /structured/);
});

test('refuses bad magic, version, header length, syntax and shapes', () => {
  const good = hex(NUMPY.f4);
  rejects(new Uint8Array([1, 2, 3]), /not a \.npy file/);
  const v = good.slice();
  v[6] = 4;
  rejects(v, /unsupported \.npy format version 4\.0/);
  const hl = good.slice();
  new DataView(hl.buffer).setUint16(8, 0xffff, true);
  rejects(hl, /truncated \.npy file/);
  rejects(good.subarray(0, 60), /truncated \.npy file/);
  rejects(good.subarray(0, good.length - 1), /data size does not match the header: shape \[2,3\] of float32 needs 24 bytes, the file has 23/);
  rejects(withHeader(`{'descr': '<f4', 'fortran_order': False, 'shape': (2,), 'x': 1}`, new Uint8Array(8)), /unexpected key 'x'/);
  rejects(withHeader(`{'descr': '<f4', 'fortran_order': False}`), /needs 'descr', 'fortran_order' and 'shape'/);
  rejects(withHeader(`{'descr': '<f4', 'fortran_order': False, 'shape': (-1,), }`), /non-negative/);
  rejects(withHeader(`{'descr': '<f4', 'fortran_order': False, 'shape': [2], }`, new Uint8Array(8)), /'shape' is not a tuple/);
  rejects(withHeader(`{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999,), }`), /too large/);
  rejects(withHeader(`{'descr': '<f4', 'fortran_order': False, 'shape': (9007199254740991, 9007199254740991), }`), /needs 324518553658426654725561982648324 bytes, the file has 0/);
  rejects(withHeader(`{'descr': '<f4', 'fortran_order': 0, 'shape': (), }`, new Uint8Array(4)), /'fortran_order' is not True\/False/);
  rejects(withHeader(`{'descr': '<f4', 'fortran_order': False, 'shape': (1,), `), /unexpected end|expected/);
  rejects(withHeader(`__import__('os').system('true')`), /malformed \.npy header/);
  rejects(withHeader('('.repeat(100) + ')'.repeat(100)), /nesting too deep/);
  // a header that does not end with a newline
  const nl = good.slice();
  nl[10 + 0x76 - 1] = 0x20;
  rejects(nl, /does not end with a newline/);
});

test('encodeNpy refuses mismatched data with UsageError', () => {
  assert.throws(() => encodeNpy({ dtype: 'float32', shape: [3], data: new Float32Array(2) }), UsageError);
  assert.throws(() => encodeNpy({ dtype: 'int32', shape: [2], data: new Float32Array(2) }), UsageError);
  assert.throws(() => encodeNpy({ dtype: 'float32', shape: [-2], data: new Float32Array(0) }), UsageError);
});

test('a header over 64 KiB switches to version 2.0', () => {
  const shape = [...Array<number>(30000).fill(1)];
  // numpy caps dims at 64 on reading; this only checks the writer's version switch
  const bytes = encodeNpy({ dtype: 'uint8', shape, data: new Uint8Array([5]) });
  assert.equal(bytes[6], 2);
  assert.equal((12 + new DataView(bytes.buffer).getUint32(8, true)) % 64, 0);
  rejects(bytes, /30000 dimensions/);
});

test('writeNpy / readNpy / readNpyFloat32Matrix on disk', async () => {
  const p = join(dir, 'emb.npy');
  await writeNpy(p, { dtype: 'float64', shape: [2, 2], data: new Float64Array([1, 2, 3, 0.1]) });
  const m = await readNpyFloat32Matrix(p);
  assert.deepEqual([m.rows, m.cols], [2, 2]);
  assert.ok(m.data instanceof Float32Array);
  assert.deepEqual([...m.data], [1, 2, 3, Math.fround(0.1)]);
  assert.equal((await readNpy(p)).dtype, 'float64');
  await writeNpy(p, { dtype: 'int32', shape: [2, 2], data: new Int32Array(4) });
  await assert.rejects(readNpyFloat32Matrix(p), /emb\.npy: expected a 2-D float32 or float64 array, found int32 with shape \[2,2\]/);
  await writeNpy(p, { dtype: 'float32', shape: [4], data: new Float32Array(4) });
  await assert.rejects(readNpyFloat32Matrix(p), /found float32 with shape \[4\]/);
  await writeFile(join(dir, 'junk.npy'), 'hello');
  await assert.rejects(readNpy(join(dir, 'junk.npy')), DataError);
  await assert.rejects(readNpy(join(dir, 'missing.npy')), /missing\.npy: no such file/);
});
