/**
 * A set of files replaced together (io/fileSet.ts): a crash after any step, then finishFileSet,
 * leaves the folder with all the old files (crash before the commit record) or all the new ones
 * (after it), never a mix, and no staging folder.
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { closeFileSet, finishFileSet, placedSetTag, singleFileStaging, STAGING_DIR, writeFileSet } from '../../src/io/fileSet.ts';

const root = mkdtempSync(join(tmpdir(), 'siamese-fileset-'));
after(() => rmSync(root, { recursive: true, force: true }));

const OLD: Record<string, string> = { 'manifest.json': 'old manifest', 'checkpoint.safetensors': 'old checkpoint', 'log.jsonl': 'old log', 'keep.txt': 'not in the set' };
const NEW: Record<string, string> = { 'manifest.json': 'new manifest', 'checkpoint.safetensors': 'new checkpoint', 'log.jsonl': 'new log', 'result.json': 'new result' };

function contents(dir: string): Record<string, string> {
  return Object.fromEntries(readdirSync(dir).sort().map((n) => [n, readFileSync(join(dir, n), 'utf8')]));
}

class Crash extends Error {}

test('a crash at every step leaves the old files or the new ones, completed or undone by finishFileSet', async () => {
  const names = Object.keys(NEW).length;
  // staged files, the commit record, files moved: 2n + 1 steps
  const steps = 2 * names + 1;
  const old = Object.fromEntries(Object.entries(OLD).sort());
  const done = Object.fromEntries(Object.entries({ ...OLD, ...NEW }).sort());
  for (let k = 1; k <= steps; k++) {
    const dir = join(root, `k${k}`);
    mkdirSync(dir);
    for (const [n, t] of Object.entries(OLD)) writeFileSync(join(dir, n), t);
    let step = 0;
    await assert.rejects(
      writeFileSet(dir, Object.fromEntries(Object.entries(NEW).map(([n, t]) => [n, Buffer.from(t)])), ['manifest.json'], () => {
        step++;
        // the moment the crash comes: nothing of the write runs after it
        if (step === k) throw new Crash(`step ${k}`);
      }),
      Crash,
    );
    assert.ok(readdirSync(dir).includes(STAGING_DIR), `step ${k}: the staging folder is left by the crash`);
    const what = finishFileSet(dir);
    assert.equal(what, k <= names ? 'undone' : 'completed', `step ${k}`);
    assert.deepEqual(contents(dir), k <= names ? old : done, `step ${k}`);
    assert.equal(finishFileSet(dir), 'none');
  }
});

test('the manifest is put in place last, and an uninterrupted write leaves no staging folder', async () => {
  const dir = join(root, 'order');
  const seen: string[][] = [];
  await writeFileSet(dir, Object.fromEntries(Object.entries(NEW).map(([n, t]) => [n, Buffer.from(t)])), ['manifest.json'], () => {
    seen.push(readdirSync(dir).filter((n) => n !== STAGING_DIR).sort());
  });
  const n = Object.keys(NEW).length;
  // nothing in place until the commit record; the manifest appears with the last move only
  for (let i = 0; i <= n; i++) assert.deepEqual(seen[i], [], `step ${i + 1}`);
  for (let i = n + 1; i < 2 * n; i++) assert.ok(!seen[i]!.includes('manifest.json'), `step ${i + 1}`);
  assert.ok(seen[2 * n]!.includes('manifest.json'));
  assert.deepEqual(contents(dir), Object.fromEntries(Object.entries(NEW).sort()));
});

test('a set interrupted before another is written is completed first, then replaced', async () => {
  const dir = join(root, 'twice');
  await assert.rejects(
    writeFileSet(dir, { 'a.txt': Buffer.from('first') }, [], (() => {
      let s = 0;
      return () => {
        if (++s === 2) throw new Crash('after the commit record');
      };
    })()),
    Crash,
  );
  await writeFileSet(dir, { 'b.txt': Buffer.from('second') });
  assert.deepEqual(contents(dir), { 'a.txt': 'first', 'b.txt': 'second' });
});

test('a tagged set keeps its commit record as a receipt: placedSetTag completes an interrupted one and names the tag, closeFileSet drops it', async () => {
  const names = Object.keys(NEW).length;
  const files = Object.fromEntries(Object.entries(NEW).map(([n, t]) => [n, Buffer.from(t)]));
  const done = Object.fromEntries(Object.entries({ ...OLD, ...NEW }).sort());
  // uninterrupted: every file in place, the record alone left, naming the job
  const whole = join(root, 'tagged');
  mkdirSync(whole);
  await writeFileSet(whole, files, ['manifest.json'], undefined, 'train-0123abcd');
  assert.deepEqual(readdirSync(join(whole, STAGING_DIR)), ['COMMIT.json']);
  assert.equal(placedSetTag(whole), 'train-0123abcd');
  closeFileSet(whole);
  assert.ok(!readdirSync(whole).includes(STAGING_DIR));
  assert.equal(placedSetTag(whole), undefined);
  // a crash before the record: no tag, the set is not decided (finishFileSet undoes it)
  // a crash while moving: the tag, and the files put in place; the record stays until closed
  for (const k of [1, names + 2]) {
    const dir = join(root, `tagged-k${k}`);
    mkdirSync(dir);
    for (const [n, t] of Object.entries(OLD)) writeFileSync(join(dir, n), t);
    let step = 0;
    await assert.rejects(
      writeFileSet(dir, files, ['manifest.json'], () => {
        if (++step === k) throw new Crash(`step ${k}`);
      }, 'train-0123abcd'),
      Crash,
    );
    if (k <= names) {
      assert.equal(placedSetTag(dir), undefined, `step ${k}`);
      assert.equal(finishFileSet(dir), 'undone');
      continue;
    }
    assert.equal(placedSetTag(dir), 'train-0123abcd', `step ${k}`);
    assert.deepEqual(readdirSync(join(dir, STAGING_DIR)), ['COMMIT.json'], `step ${k}`);
    closeFileSet(dir);
    assert.deepEqual(contents(dir), done, `step ${k}`);
  }
  await assert.rejects(writeFileSet(join(root, 'badtag'), files, [], undefined, '../x'), /bad tag/);
});

test('lone files of one folder, each a tagged set of one in its own staging folder: one decided, one not, neither touches the other', async () => {
  const dir = join(root, 'lone');
  mkdirSync(dir);
  writeFileSync(join(dir, 'b.json'), 'old b');
  // a.json: decided (its commit record written), not yet moved; b.json: staged, not decided
  let step = 0;
  await assert.rejects(
    writeFileSet(dir, { 'a.json': Buffer.from('new a') }, [], () => {
      if (++step === 2) throw new Crash('a');
    }, 'tsne-a', singleFileStaging('a.json')),
    Crash,
  );
  step = 0;
  await assert.rejects(
    writeFileSet(dir, { 'b.json': Buffer.from('new b') }, [], () => {
      if (++step === 1) throw new Crash('b');
    }, 'tsne-b', singleFileStaging('b.json')),
    Crash,
  );
  assert.deepEqual(readdirSync(dir).sort(), ['.commit-a.json', '.commit-b.json', 'b.json']);
  // the folder's own set is none of them
  assert.equal(placedSetTag(dir), undefined);
  assert.equal(placedSetTag(dir, singleFileStaging('b.json')), undefined, 'b was not decided');
  assert.equal(placedSetTag(dir, singleFileStaging('a.json')), 'tsne-a');
  assert.equal(readFileSync(join(dir, 'a.json'), 'utf8'), 'new a');
  closeFileSet(dir, singleFileStaging('a.json'));
  closeFileSet(dir, singleFileStaging('b.json'));
  assert.deepEqual(contents(dir), { 'a.json': 'new a', 'b.json': 'old b' });
  assert.throws(() => singleFileStaging('../x'), /bad file name/);
});
