import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm, writeFile, mkdir } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { DataError, UsageError } from '../../src/errors.ts';
import {
  readFileBytes,
  writeFileAtomic,
  writeFileAtomicSync,
  writeJsonAtomic,
  writeJsonAtomicSync,
} from '../../src/io/atomic.ts';

let dir = '';
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'siamese-atomic-'));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

test('writeFileAtomic writes bytes and strings, replaces an existing file, leaves no temp file', async () => {
  const p = join(dir, 'a.bin');
  await writeFileAtomic(p, new Uint8Array([1, 2, 3]));
  assert.deepEqual([...(await readFile(p))], [1, 2, 3]);
  await writeFileAtomic(p, 'héllo');
  assert.equal(await readFile(p, 'utf8'), 'héllo');
  assert.deepEqual(await readdir(dir), ['a.bin']);
});

test('writeFileAtomicSync is the same, synchronously', () => {
  const p = join(dir, 'b.txt');
  writeFileAtomicSync(p, 'one');
  writeFileAtomicSync(p, new TextEncoder().encode('two'));
  assert.equal(readFileSync(p, 'utf8'), 'two');
  assert.ok(!readFileSync(p, 'utf8').includes('one'));
});

test('writeJsonAtomic writes pretty JSON with a final newline', async () => {
  const p = join(dir, 'c.json');
  await writeJsonAtomic(p, { a: 1, b: [1, 2] });
  assert.equal(await readFile(p, 'utf8'), '{\n  "a": 1,\n  "b": [\n    1,\n    2\n  ]\n}\n');
  writeJsonAtomicSync(p, [true]);
  assert.equal(await readFile(p, 'utf8'), '[\n  true\n]\n');
  await assert.rejects(writeJsonAtomic(p, undefined), UsageError);
  await assert.rejects(writeJsonAtomic(p, { n: 1n }), UsageError);
});

test('a missing directory is a one-line DataError and leaves nothing behind', async () => {
  const p = join(dir, 'nope', 'x.bin');
  await assert.rejects(writeFileAtomic(p, 'x'), (e: unknown) => {
    assert.ok(e instanceof DataError);
    assert.match(e.message, /nope\/x\.bin: cannot write: directory .*nope does not exist/);
    assert.ok(!e.message.includes('\n'));
    return true;
  });
  assert.throws(() => writeFileAtomicSync(p, 'x'), DataError);
});

test('failing rename (target is a directory) removes the temp file', async () => {
  const target = join(dir, 'isdir');
  await mkdir(join(target, 'child'), { recursive: true });
  await assert.rejects(writeFileAtomic(target, 'x'), DataError);
  assert.throws(() => writeFileAtomicSync(target, 'x'), DataError);
  assert.deepEqual((await readdir(dir)).filter((n) => n.endsWith('.tmp')), []);
});

test('concurrent writers never leave a torn file', async () => {
  const p = join(dir, 'race.txt');
  const bodies = Array.from({ length: 8 }, (_, i) => String(i).repeat(100_000));
  await Promise.all(bodies.map((b) => writeFileAtomic(p, b)));
  const got = await readFile(p, 'utf8');
  assert.ok(bodies.includes(got));
  assert.deepEqual((await readdir(dir)).filter((n) => n.endsWith('.tmp')), []);
});

test('readFileBytes: missing file and directory are DataErrors', async () => {
  await writeFile(join(dir, 'r.bin'), new Uint8Array([9]));
  assert.deepEqual([...(await readFileBytes(join(dir, 'r.bin')))], [9]);
  await assert.rejects(readFileBytes(join(dir, 'missing.bin')), /missing\.bin: no such file/);
  await assert.rejects(readFileBytes(dir), DataError);
});
