/**
 * Stopping `siamese train` with real signals sent to real processes: at the next batch (not at
 * the end of the epoch), 130 for SIGINT and 143 for SIGTERM, at once on a second signal even in
 * the middle of synchronous work, during the final evaluation, and when the npx that started it
 * is killed (npm does not pass the signal on).
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { REPO_ROOT } from '../helpers.ts';
import { siamese, siameseAsync } from './run.ts';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function manifestOf(out: string): { status: string; epochsDone: number } | undefined {
  try {
    return JSON.parse(readFileSync(join(out, 'manifest.json'), 'utf8'));
  } catch {
    return undefined; // not written yet
  }
}

/** Wait (bounded) until cond() holds; fail with what the child said. */
async function until(cond: () => boolean, what: string, log: () => string, ms = 180_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}: ${log()}`);
    await sleep(20);
  }
}

function collect(child: ChildProcess): { out: () => string; exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }> } {
  let text = '';
  child.stdout?.on('data', (d: Buffer) => (text += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (text += d.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((res) => child.on('exit', (code, signal) => res({ code, signal })));
  return { out: () => text, exited };
}

/** Processes whose command line holds `needle` (the unique out folder of a test). */
function pidsWith(needle: string): number[] {
  const pids: number[] = [];
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      if (readFileSync(`/proc/${d}/cmdline`, 'utf8').includes(needle)) pids.push(Number(d));
    } catch {
      // gone meanwhile
    }
  }
  return pids;
}

// One epoch over every train pair (about 850 batches): seconds, so a signal sent when the run
// starts lands in the middle of epoch 1.
const long = ['train', '--epochs', '3', '--batch-size', '128'];

for (const [sig, code] of [['SIGINT', 130], ['SIGTERM', 143]] as const) {
  test(`${sig} in the middle of an epoch stops at the next batch and exits ${code}`, async () => {
    const out = join(mkdtempSync(join(tmpdir(), 'sig-')), 'run');
    const child = siameseAsync([...long, '--out', out]);
    const c = collect(child);
    await until(() => manifestOf(out)?.status === 'running', 'the run to start', c.out);
    child.kill(sig);
    const r = await c.exited;
    assert.equal(r.code, code, c.out());
    // the epoch did not run to its end: nothing past epoch 0 was kept
    const m = manifestOf(out)!;
    assert.equal(m.status, 'interrupted');
    assert.equal(m.epochsDone, 0);
    assert.match(c.out(), new RegExp(`${sig}: stopping at the next batch`));
    assert.match(c.out(), new RegExp(`stopped by ${sig} after epoch 0; the checkpoint is saved\\. Resume with: siamese train --resume `));
  });
}

// On a terminal (a pseudo-terminal from util-linux's script): the bar hides the cursor; the first
// signal must show it again and clear the bar's line before the message, not leave it mid-line.
const hasScript = spawnSync('script', ['--version']).status === 0;
test('on a terminal, the first signal gives the cursor back and ends the progress line before its message', { skip: hasScript ? false : 'util-linux script is not installed' }, async () => {
  const out = join(mkdtempSync(join(tmpdir(), 'sig-tty-')), 'run');
  const cmd = [process.execPath, join(REPO_ROOT, 'bin', 'siamese.js'), ...long, '--out', out].map((a) => `'${a}'`).join(' ');
  const env = { ...process.env };
  delete env['CI']; // the bar shows on a terminal only, and never under CI
  const child = spawn('script', ['-qfec', cmd, '/dev/null'], { cwd: REPO_ROOT, env, stdio: ['pipe', 'pipe', 'pipe'] });
  const c = collect(child);
  try {
    await until(() => / batches \|/.test(c.out()), 'the progress bar', c.out);
    const [pid] = pidsWith(out).filter((p) => readFileSync(`/proc/${p}/cmdline`, 'utf8').startsWith(process.execPath));
    assert.ok(pid, 'the training process');
    process.kill(pid, 'SIGINT');
    await c.exited;
    const text = c.out();
    const msg = text.indexOf('SIGINT: stopping at the next batch');
    assert.ok(msg > 0, text.slice(-500));
    const before = text.slice(0, msg);
    assert.ok(before.lastIndexOf('\x1b[?25h') > before.lastIndexOf('\x1b[?25l'), 'the cursor is shown again before the message');
    assert.match(before, /(\x1b\[2K|\n)$/, 'the message starts on a clean line');
    assert.ok(text.lastIndexOf('\x1b[?25l') < msg, 'no bar (hidden cursor) after the stop');
    assert.match(text, /stopped by SIGINT after epoch 0/);
  } finally {
    for (const p of pidsWith(out)) process.kill(p, 'SIGKILL');
  }
});

// The process stays busy (a synchronous loop, as a long evaluation) after the first signal: a
// second one must end it anyway, by the signal's default action.
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  test(`a second ${sig} ends the process at once, even during synchronous work`, async () => {
    const script = [
      `import { onStopSignal } from ${JSON.stringify(join(REPO_ROOT, 'src/cli/signals.ts'))};`,
      "onStopSignal({ onStop: () => { process.stdout.write('first\\n'); const t = Date.now(); while (Date.now() - t < 60000); process.stdout.write('survived\\n'); } });",
      "process.stdout.write('ready\\n');",
      'setTimeout(() => {}, 60000);',
    ].join('\n');
    const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    const c = collect(child);
    try {
      await until(() => c.out().includes('ready'), 'ready', c.out, 60_000);
      child.kill(sig);
      await until(() => c.out().includes('first'), 'the first signal', c.out, 60_000);
      child.kill(sig);
      const r = await Promise.race([c.exited, sleep(30_000).then(() => 'hung' as const)]);
      assert.notEqual(r, 'hung', 'the second signal did not end the process');
      assert.deepEqual(r, { code: null, signal: sig });
      assert.doesNotMatch(c.out(), /survived/);
    } finally {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    }
  });
}

test('a signal during the final evaluation is honoured: interrupted, no result, and resume evaluates', async () => {
  const out = join(mkdtempSync(join(tmpdir(), 'sig-eval-')), 'run');
  // --epochs 0: the run goes straight from its manifest to the final evaluation (seconds)
  const child = siameseAsync(['train', '--epochs', '0', '--out', out]);
  const c = collect(child);
  await until(() => manifestOf(out)?.status === 'running', 'the run to start', c.out);
  child.kill('SIGINT');
  const r = await c.exited;
  assert.equal(r.code, 130, c.out());
  assert.equal(manifestOf(out)!.status, 'interrupted');
  assert.ok(!existsSync(join(out, 'result.json')), 'no result of an interrupted evaluation');
  assert.doesNotMatch(c.out(), /trained 0 epochs/);
  assert.match(c.out(), /all 0 epochs are saved\. Evaluate with: siamese train --resume /);
  const again = siamese(['train', '--resume', out]);
  assert.equal(again.code, 0, again.stderr);
  assert.equal(manifestOf(out)!.status, 'finished');
  assert.ok(existsSync(join(out, 'result.json')));
});

test('killing the npx that started a training stops the training as SIGTERM does, saving its state', async () => {
  const out = join(mkdtempSync(join(tmpdir(), 'sig-npx-')), 'run');
  const npx = spawn('npx', ['--yes', 'siamese', ...long, '--out', out], {
    cwd: REPO_ROOT,
    env: { ...process.env, CI: 'true' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const c = collect(npx);
  try {
    await until(() => manifestOf(out)?.status === 'running', 'the run to start', c.out, 300_000);
    npx.kill('SIGTERM'); // what `kill -TERM <npx pid>` does
    await c.exited;
    // the training, re-parented, notices within its poll and stops as on SIGTERM
    await until(() => manifestOf(out)?.status !== 'running', 'the orphaned training to stop', c.out, 60_000);
    const m = manifestOf(out)!;
    assert.equal(m.status, 'interrupted', c.out());
    assert.ok(m.epochsDone < 3, 'it stopped before its end');
    await until(() => pidsWith(out).length === 0, 'the training process to exit', c.out, 30_000);
    assert.equal(siamese(['train', '--resume', out, '--epochs', String(m.epochsDone)]).code, 0, 'the saved state resumes');
  } finally {
    for (const pid of pidsWith(out)) process.kill(pid, 'SIGKILL');
  }
});
