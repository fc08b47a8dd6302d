import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { test } from 'node:test';
import { REPO_ROOT } from '../helpers.ts';
import { BIN } from './run.ts';

interface Ended {
  code: number | null;
  signal: NodeJS.Signals | null;
  stderr: string;
}

/**
 * Run the CLI with a stdout whose reader is already gone when the CLI writes (`siamese ... | head`
 * once head has quit). A shell holds the CLI back until this side has closed its end of the pipe,
 * so every write gets EPIPE, whatever the scheduling: a reader that closes after a line races the
 * writer, and a help text that fits the pipe's buffer would slip through before it closes.
 */
async function withClosedStdout(args: string[]): Promise<Ended> {
  const child = spawn('sh', ['-c', 'read go && exec "$0" "$@"', process.execPath, BIN, ...args], {
    cwd: REPO_ROOT,
    env: { ...process.env, CI: 'true' },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  // bounded: a CLI that hangs on a dead pipe fails the test instead of stalling it
  const guard = setTimeout(() => child.kill('SIGKILL'), 60_000);
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (s: string) => (stderr += s));
  child.stdout.destroy(); // the reader is gone
  child.stdin.end('go\n');
  const [code, signal] = (await once(child, 'exit')) as [number | null, NodeJS.Signals | null];
  clearTimeout(guard);
  if (!child.stderr.readableEnded) await once(child.stderr, 'end');
  return { code, signal, stderr };
}

test('a closed stdout (`siamese ... | head`) ends every command quietly with 141, the shell\'s code for SIGPIPE', async () => {
  for (const args of [['sweep', '--help'], ['--help'], ['--version'], ['losses'], ['train', '--help']]) {
    const r = await withClosedStdout(args);
    assert.equal(r.signal, null, `${args.join(' ')}: not killed by the guard`);
    assert.equal(r.stderr, '', `${args.join(' ')}: nothing on stderr, no stack trace`);
    assert.equal(r.code, 141, `${args.join(' ')}: exit code`);
  }
});
