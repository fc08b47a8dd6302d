import assert from 'node:assert/strict';
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { pathToFileURL } from 'node:url';
import { LOCK_FILE, LockHeldError, lockOutput } from '../../src/io/lock.ts';
import { processStartTick } from '../../src/io/processes.ts';
import { REPO_ROOT } from '../helpers.ts';
import { BIN, siamese } from '../cli/run.ts';

const FAULTS = pathToFileURL(join(REPO_ROOT, 'test', 'fixtures', 'faults.mjs')).href;
const HOLDER = join(REPO_ROOT, 'test', 'fixtures', 'holdLock.ts');
const HOST = hostname();
const esc = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

interface Started {
  child: ChildProcess;
  stdout: () => string;
  stderr: () => string;
  exit: Promise<number | null>;
  done: () => boolean;
}

function start(args: string[], env: Record<string, string> = {}): Started {
  const child = spawn(process.execPath, args, { cwd: REPO_ROOT, env: { ...process.env, CI: 'true', ...env }, stdio: ['pipe', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  let ended = false;
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const exit = new Promise<number | null>((res) => child.on('close', (code) => ((ended = true), res(code))));
  return { child, stdout: () => out, stderr: () => err, exit, done: () => ended };
}

/** Poll until `cond` holds; a bound, not a timing assumption: the asserts after it decide. */
async function until(cond: () => boolean, what: string, ms = 180_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`gave up waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** A pid that belonged to a process that has ended. */
function deadPid(): number {
  const r = spawnSync(process.execPath, ['-e', '0']);
  return r.pid!;
}

function holder(targets: string[], env: Record<string, string> = {}): Started {
  return start(['--import', 'tsx', '--import', FAULTS, HOLDER, ...targets], env);
}

test('two trainings released at the same instant into one folder: one trains, the other is refused at once naming it', async () => {
  const root = mkdtempSync(join(tmpdir(), 'lock-'));
  const out = join(root, 'run');
  const gate = join(root, 'gate');
  const args = ['--import', FAULTS, BIN, 'train', '--epochs', '1', '--train-pairs', '2000', '--out', out];
  const kids = [start(args, { SIAMESE_TEST_GATE: gate }), start(args, { SIAMESE_TEST_GATE: gate })];
  // both wait just before creating the lock; if one ends first there is no race, and the asserts fail
  await until(() => kids.every((k) => existsSync(`${gate}.ready.${k.child.pid}`)) || kids.some((k) => k.done()), 'both at the gate');
  writeFileSync(gate, '');
  const codes = await Promise.all(kids.map((k) => k.exit));
  assert.deepEqual([...codes].sort(), [0, 2], `exit codes ${codes}: ${kids.map((k) => k.stderr()).join(' | ')}`);
  const winner = kids[codes.indexOf(0)]!;
  const loser = kids[codes.indexOf(2)]!;
  const lines = loser.stderr().trim().split('\n');
  assert.equal(lines.length, 1, loser.stderr());
  assert.match(
    lines[0]!,
    new RegExp(`^siamese: ${esc(out)} is in use by another siamese train \\(pid ${winner.child.pid} on ${esc(HOST)}, since \\d{4}-\\d\\d-\\d\\dT[\\d:.]+Z\\); wait for it to end or stop it$`),
  );
  assert.equal(loser.stdout(), '', 'the refused run printed no result');
  // the folder holds the winner's run alone, finished, and the lock is gone
  const m = JSON.parse(readFileSync(join(out, 'manifest.json'), 'utf8'));
  assert.equal(m.status, 'finished');
  assert.equal(m.epochsDone, 1);
  assert.equal(readFileSync(join(out, 'log.jsonl'), 'utf8').trim().split('\n').length, 1);
  assert.ok(!existsSync(join(out, LOCK_FILE)), 'the lock is released at the end');
});

test('a folder held by a live process: train, train --resume, compare, compare --resume, embed and export are refused with exit 2 naming it', async (t) => {
  const root = mkdtempSync(join(tmpdir(), 'lock-'));
  const run = join(root, 'run');
  const cmp = join(root, 'cmp');
  const emb = join(root, 'emb');
  mkdirSync(emb);
  const h = holder([run, cmp, `file:${join(emb, 'e.npy')}`, `file:${join(emb, 'w.h5')}`]);
  await until(() => h.stdout().includes('held') || h.done(), 'the holder');
  assert.equal(h.stdout(), 'held\n', h.stderr());
  t.after(() => h.child.kill()); // a failed assert must not leave the holder running
  const pid = h.child.pid!;
  const named = (what: string): RegExp =>
    new RegExp(`^siamese: ${esc(what)} is in use by another siamese holder \\(pid ${pid} on ${esc(HOST)}, since [^)]+\\); wait for it to end or stop it\\n$`);
  const cases: [string[], string][] = [
    [['train', '--resume', run], run],
    [['train', '--epochs', '1', '--out', run], run],
    [['compare', '--quick', '--out', cmp], cmp],
    [['compare', '--resume', cmp], cmp],
    [['embed', '--weights', run, '--out', join(emb, 'e.npy')], join(emb, 'e.npy')],
    [['export', '--weights', run, '--out', join(emb, 'w.h5')], join(emb, 'w.h5')],
  ];
  for (const [args, what] of cases) {
    const r = siamese(args);
    assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, named(what), args.join(' '));
  }
  h.child.stdin!.end();
  assert.equal(await h.exit, 0);
  for (const p of [join(run, LOCK_FILE), join(cmp, LOCK_FILE), join(emb, `.e.npy${LOCK_FILE}`)]) assert.ok(!existsSync(p), `${p} released`);
});

test('a lock left by a killed process is taken over with a note, and released when the command fails', async () => {
  const root = mkdtempSync(join(tmpdir(), 'lock-'));
  const dir = join(root, 'run');
  const h = holder([dir]);
  await until(() => h.stdout().includes('held') || h.done(), 'the holder');
  h.child.kill('SIGKILL');
  await h.exit;
  assert.ok(existsSync(join(dir, LOCK_FILE)), 'SIGKILL leaves the lock behind');
  const r = siamese(['train', '--resume', dir]);
  assert.equal(r.code, 2);
  const lines = r.stderr.trim().split('\n');
  assert.match(lines[0]!, new RegExp(`^siamese: note: ${esc(dir)}: took over the lock of holder \\(pid ${h.child.pid} on ${esc(HOST)}, since [^)]+\\): process ${h.child.pid} is no longer running$`));
  assert.match(lines[1]!, /not a run directory/);
  assert.equal(lines.length, 2);
  assert.ok(!existsSync(join(dir, LOCK_FILE)), 'released after the error');
});

test('process.exit releases the lock, and removes the folder the lock created when it stayed empty', async () => {
  const root = mkdtempSync(join(tmpdir(), 'lock-'));
  const dir = join(root, 'new');
  const h = holder(['--exit', '3', dir]);
  assert.equal(await h.exit, 3);
  assert.equal(h.stdout(), 'held\n');
  assert.ok(!existsSync(dir), 'no lock and no empty folder left');
});

test('two processes that find the same stale lock at the same instant: exactly one takes it over', async (t) => {
  const root = mkdtempSync(join(tmpdir(), 'lock-'));
  const dir = join(root, 'run');
  mkdirSync(dir);
  const dead = deadPid();
  const stale = { tool: 'siamese-lab', host: HOST, pid: dead, since: '2026-01-01T00:00:00.000Z', command: 'train', token: 'deadbeef' };
  writeFileSync(join(dir, LOCK_FILE), JSON.stringify(stale));
  const gate = join(root, 'gate');
  const kids = [holder([dir], { SIAMESE_TEST_GATE: gate }), holder([dir], { SIAMESE_TEST_GATE: gate })];
  t.after(() => kids.forEach((k) => k.child.kill()));
  await until(() => kids.every((k) => existsSync(`${gate}.ready.${k.child.pid}`)) || kids.some((k) => k.done()), 'both at the gate');
  writeFileSync(gate, '');
  await until(() => kids.some((k) => k.stdout().includes('held')) && kids.some((k) => k.done()), 'one holder and one refusal');
  const win = kids.find((k) => k.stdout() === 'held\n')!;
  const lose = kids.find((k) => k !== win)!;
  assert.equal(await lose.exit, 2);
  assert.match(lose.stderr(), new RegExp(`(in use by another siamese holder \\(pid ${win.child.pid} on|being taken over by another process at this moment)`));
  assert.match(win.stderr(), new RegExp(`took over the lock of train \\(pid ${dead} on ${esc(HOST)}`));
  assert.equal(JSON.parse(readFileSync(join(dir, LOCK_FILE), 'utf8')).pid, win.child.pid);
  win.child.stdin!.end();
  assert.equal(await win.exit, 0);
});

test('in one process: a second lock is refused, a reused pid is stale, another host is never judged from here', () => {
  const root = mkdtempSync(join(tmpdir(), 'lock-'));
  const dir = join(root, 'a');
  mkdirSync(dir); // made here, so that release leaves it (a folder the lock made is removed when empty)
  const a = lockOutput(dir, { command: 'first' });
  assert.throws(() => lockOutput(dir, { command: 'second' }), (e: unknown) => e instanceof LockHeldError && e.message.includes(`first (pid ${process.pid} on ${HOST}`));
  a.release();
  const b = lockOutput(dir, { command: 'again' });
  b.release();

  // a live pid whose start time is not the recorded one: the recorded process has ended
  if (processStartTick(process.pid) !== undefined) {
    const reused = { tool: 'siamese-lab', host: HOST, pid: process.pid, since: '2026-01-01T00:00:00.000Z', command: 'train', procStart: '1', token: 'aa' };
    writeFileSync(join(dir, LOCK_FILE), JSON.stringify(reused));
    const notes: string[] = [];
    const c = lockOutput(dir, { command: 'taker', onNote: (n) => notes.push(n) });
    assert.deepEqual(notes, [`${dir}: took over the lock of train (pid ${process.pid} on ${HOST}, since 2026-01-01T00:00:00.000Z): process ${process.pid} has ended (its pid now belongs to another process)`]);
    // release removes only its own lock: here another writer has replaced it meanwhile
    writeFileSync(join(dir, LOCK_FILE), JSON.stringify({ ...reused, token: 'other' }));
    c.release();
    assert.ok(existsSync(join(dir, LOCK_FILE)), 'a lock that is not ours stays');
  }

  const far = { tool: 'siamese-lab', host: 'elsewhere.invalid', pid: deadPid(), since: '2026-01-01T00:00:00.000Z', command: 'compare', token: 'bb' };
  writeFileSync(join(dir, LOCK_FILE), JSON.stringify(far));
  assert.throws(
    () => lockOutput(dir, { command: 'x' }),
    (e: unknown) => e instanceof LockHeldError && e.message === `${dir} is in use by another siamese compare (pid ${far.pid} on elsewhere.invalid, since 2026-01-01T00:00:00.000Z); if that process has ended, remove ${join(dir, LOCK_FILE)}`,
  );
  // beside one output file: its own dead temporaries go, other files' stay
  const dead = deadPid();
  writeFileSync(join(dir, `.e.npy.${dead}.0123456789ab.tmp`), 'x');
  writeFileSync(join(dir, `.f.npy.${dead}.0123456789ab.tmp`), 'x');
  lockOutput(join(dir, 'e.npy'), { command: 'embed', file: true }).release();
  assert.ok(!existsSync(join(dir, `.e.npy.${dead}.0123456789ab.tmp`)));
  assert.ok(existsSync(join(dir, `.f.npy.${dead}.0123456789ab.tmp`)));

  writeFileSync(join(dir, LOCK_FILE), 'not json');
  assert.throws(() => lockOutput(dir, { command: 'x' }), /cannot read; remove it if no other siamese command writes there/);
});
