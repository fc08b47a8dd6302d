import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { before, test } from 'node:test';
import { pathToFileURL } from 'node:url';
import { DataError } from '../../src/errors.ts';
import { encodeSafetensors, parseSafetensors } from '../../src/io/safetensors.ts';
import { RunDir } from '../../src/train/runDir.ts';
import { REPO_ROOT } from '../helpers.ts';
import { BIN, siamese } from '../cli/run.ts';

const FAULTS = pathToFileURL(join(REPO_ROOT, 'test', 'fixtures', 'faults.mjs')).href;
const root = mkdtempSync(join(tmpdir(), 'runfolder-'));
const base = join(root, 'base');

/** The CLI with the fault-injection preload and extra environment. */
function faulty(args: string[], env: Record<string, string>) {
  const r = spawnSync(process.execPath, ['--import', FAULTS, BIN, ...args], {
    cwd: REPO_ROOT,
    encoding: 'utf8',
    env: { ...process.env, CI: 'true', ...env },
  });
  return { code: r.status, signal: r.signal, stdout: r.stdout, stderr: r.stderr, pid: r.pid };
}

/** A pid that belonged to a process that has ended. */
const deadPid = (): number => spawnSync(process.execPath, ['-e', '0']).pid!;

before(() => {
  const r = siamese(['train', '--epochs', '1', '--train-pairs', '2000', '--seed', '3', '--out', base]);
  assert.equal(r.code, 0, r.stderr);
});

function copyOfBase(name: string): string {
  const dir = join(root, name);
  cpSync(base, dir, { recursive: true });
  return dir;
}

function editCheckpoint(dir: string, edit: (meta: Record<string, string>) => void): void {
  const p = join(dir, 'checkpoint.safetensors');
  const { tensors, metadata } = parseSafetensors(readFileSync(p), p);
  edit(metadata);
  writeFileSync(p, encodeSafetensors(tensors, metadata));
}

function editManifest(dir: string, edit: (m: Record<string, any>) => void): void {
  const p = join(dir, 'manifest.json');
  const m = JSON.parse(readFileSync(p, 'utf8'));
  edit(m);
  writeFileSync(p, JSON.stringify(m, null, 2));
}

async function resumeRefusal(dir: string): Promise<string> {
  try {
    await new RunDir(dir, () => undefined).readCheckpoint();
  } catch (e) {
    assert.ok(e instanceof DataError, String(e));
    return e.message;
  }
  return 'accepted';
}

test('resume refuses a changed or corrupted run folder, naming what disagrees', async () => {
  const cases: [string, (dir: string) => void, string][] = [
    ['seed', (d) => editManifest(d, (m) => (m.config.seed = 4)), 'manifest.json and checkpoint.safetensors disagree on config.seed (4 in the manifest, 3 in the checkpoint)'],
    ['pairs', (d) => editManifest(d, (m) => (m.config.trainPairs = 3000)), 'manifest.json and checkpoint.safetensors disagree on config.trainPairs (3000 in the manifest, 2000 in the checkpoint)'],
    ['epochsDone', (d) => editManifest(d, (m) => (m.epochsDone = 3)), 'manifest.json says 3 epochs done, but checkpoint.safetensors is at epoch 1'],
    ['ckpt-epoch', (d) => editCheckpoint(d, (m) => (m['state'] = m['state']!.replace('"epoch":1,', '"epoch":0,'))), 'checkpoint.safetensors does not match its checksum (the file was changed or is corrupted)'],
    [
      'bit-flip',
      (d) => {
        const p = join(d, 'checkpoint.safetensors');
        const b = readFileSync(p);
        b[b.length - 1000]! ^= 0x01; // one bit of one optimizer or weight value
        writeFileSync(p, b);
      },
      'checkpoint.safetensors does not match its checksum (the file was changed or is corrupted)',
    ],
    ['log', (d) => writeFileSync(join(d, 'log.jsonl'), readFileSync(join(d, 'log.jsonl'), 'utf8').replace('"loss":0.', '"loss":1.')), 'log.jsonl line 1 differs from epoch 1 in checkpoint.safetensors'],
    ['log-gone', (d) => writeFileSync(join(d, 'log.jsonl'), ''), 'accepted'], // the log lags the checkpoint by one epoch after a crash
    // a checkpoint of an older version (no checksum, no config): the cross-checks still hold
    [
      'old-epoch',
      (d) =>
        editCheckpoint(d, (m) => {
          delete m['sha256'];
          delete m['config'];
          m['state'] = m['state']!.replace('"epoch":1,', '"epoch":2,');
        }),
      'checkpoint.safetensors is at epoch 2 but its history holds epochs [1]',
    ],
  ];
  for (const [name, tamper, expected] of cases) {
    const dir = copyOfBase(name);
    tamper(dir);
    const msg = await resumeRefusal(dir);
    assert.equal(msg, expected === 'accepted' ? expected : `${dir}: cannot resume: ${expected}`, name);
  }
});

test('an untouched run resumes; one from an older version without a checksum resumes with a note', async () => {
  const dir = copyOfBase('clean');
  assert.equal((await new RunDir(dir, () => assert.fail('no note expected')).readCheckpoint()).epoch, 1);
  editCheckpoint(dir, (m) => {
    delete m['sha256'];
    delete m['config'];
  });
  const notes: string[] = [];
  assert.equal((await new RunDir(dir, (n) => notes.push(n)).readCheckpoint()).epoch, 1);
  assert.deepEqual(notes, [`${join(dir, 'checkpoint.safetensors')} has no checksum (written by an older siamese-lab): resuming without checking its tensors`]);
});

test('siamese train --resume on a tampered folder: one line, exit 2, nothing trained', () => {
  const dir = copyOfBase('cli-seed');
  editManifest(dir, (m) => (m.config.seed = 7));
  const log = readFileSync(join(dir, 'log.jsonl'), 'utf8');
  const r = siamese(['train', '--resume', dir, '--epochs', '2']);
  assert.equal(r.code, 2);
  assert.equal(r.stderr, `siamese: ${dir}: cannot resume: manifest.json and checkpoint.safetensors disagree on config.seed (7 in the manifest, 3 in the checkpoint)\n`);
  assert.equal(readFileSync(join(dir, 'log.jsonl'), 'utf8'), log, 'the log is untouched');
});

test('temporary files of a writer killed mid-write are removed on the next start; a live writer\'s are kept', () => {
  const dir = join(root, 'killed');
  // SIGKILL just before the second checkpoint's rename (the one after epoch 1): its temporary file is left
  const k = faulty(['train', '--epochs', '2', '--train-pairs', '2000', '--seed', '3', '--out', dir], { SIAMESE_TEST_KILL_BEFORE_RENAME: 'checkpoint.safetensors:2' });
  assert.equal(k.signal, 'SIGKILL', k.stderr);
  const left = readdirSync(dir).filter((f) => f.endsWith('.tmp'));
  assert.equal(left.length, 1);
  assert.match(left[0]!, new RegExp(`^\\.checkpoint\\.safetensors\\.${k.pid}\\.[0-9a-f]{12}\\.tmp$`));
  const live = `.log.jsonl.${process.pid}.0123456789ab.tmp`; // this test process is alive: its file stays
  writeFileSync(join(dir, live), 'x');
  const r = siamese(['train', '--resume', dir]);
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(readdirSync(dir).filter((f) => f.endsWith('.tmp')), [live]);
});

test('export: stale scratch files of killed exports are removed; an unusable TMPDIR is named as such', () => {
  const tmp = join(root, 'tmp');
  mkdirSync(tmp);
  const stale = `siamese-keras-${deadPid()}-0123456789ab.h5`;
  const live = `siamese-keras-${process.pid}-0123456789ab.h5`;
  writeFileSync(join(tmp, stale), 'x');
  writeFileSync(join(tmp, live), 'x');
  const out = join(root, 'w.h5');
  const r = faulty(['export', '--weights', base, '--out', out], { TMPDIR: tmp });
  assert.equal(r.code, 0, r.stderr);
  assert.ok(existsSync(out));
  assert.ok(!existsSync(join(tmp, stale)), 'the dead export\'s scratch file is gone');
  assert.ok(existsSync(join(tmp, live)), 'a live one is kept');

  const notDir = join(root, 'tmp-is-a-file');
  writeFileSync(notDir, 'x');
  // TSX_DISABLE_CACHE: the TypeScript loader would itself fail on that TMPDIR before the CLI starts
  const bad = faulty(['export', '--weights', base, '--out', join(root, 'w2.h5')], { TMPDIR: notDir, TSX_DISABLE_CACHE: '1' });
  assert.equal(bad.code, 2);
  assert.equal(bad.stderr, `siamese: cannot write the temporary HDF5 file in ${notDir} (a part of the path is a file, not a folder); free space there or set TMPDIR to a writable folder\n`);
  assert.ok(!existsSync(join(root, 'w2.h5')));

  const full = faulty(['export', '--weights', base, '--out', join(root, 'w3.h5')], { TMPDIR: tmp, SIAMESE_TEST_FULL: tmp });
  assert.equal(full.code, 2);
  assert.equal(full.stderr, `siamese: cannot write the temporary HDF5 file in ${tmp} (no space left on device); free space there or set TMPDIR to a writable folder\n`);
  assert.ok(!existsSync(join(root, 'w3.h5')));
});

test('a run folder that cannot be created: read-only file system, no permission, a file in the way', () => {
  const ro = join(root, 'ro');
  mkdirSync(ro);
  const args = (out: string): string[] => ['train', '--epochs', '1', '--train-pairs', '2000', '--out', out];
  const r1 = faulty(args(join(ro, 'runs', 'a')), { SIAMESE_TEST_READONLY: ro });
  assert.equal(r1.code, 2);
  assert.equal(r1.stderr, `siamese: ${join(ro, 'runs', 'a')}: cannot create the output folder: ${ro} is on a read-only file system\n`);
  const r2 = faulty(args(join(ro, 'runs', 'a')), { SIAMESE_TEST_NOPERM: ro });
  assert.equal(r2.code, 2);
  assert.equal(r2.stderr, `siamese: ${join(ro, 'runs', 'a')}: cannot create the output folder: no permission to write in ${ro}\n`);
  const file = join(root, 'a-file');
  writeFileSync(file, 'x');
  const r3 = siamese(args(join(file, 'run')));
  assert.equal(r3.code, 2);
  assert.equal(r3.stderr, `siamese: ${join(file, 'run')}: cannot create the output folder: ${file} is a file, not a folder\n`);
});
