import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { REPO_ROOT } from '../helpers.ts';

const BIN = join(REPO_ROOT, 'bin', 'siamese.js');
const HOOK = join(REPO_ROOT, 'test', 'io', 'rssHook.mjs');

export interface MeasuredRun {
  code: number | null;
  stdout: string;
  stderr: string;
  /** the child's peak resident set in MB, as the child itself reported it on exit (NaN if it did not exit normally) */
  peakMB: number;
}

/** Run the CLI in a child process, as a user would, and report its peak memory. */
export function siameseMeasured(args: string[], opts: { timeout?: number } = {}): MeasuredRun {
  const dir = mkdtempSync(join(tmpdir(), 'siamese-rss-'));
  const file = join(dir, 'maxrss');
  try {
    const r = spawnSync(process.execPath, ['--import', HOOK, BIN, ...args], {
      cwd: REPO_ROOT,
      encoding: 'utf8',
      timeout: opts.timeout ?? 300_000,
      env: { ...process.env, CI: 'true', SIAMESE_RSS_FILE: file },
      maxBuffer: 16 * 2 ** 20,
    });
    let peakMB = NaN;
    try {
      peakMB = Number(readFileSync(file, 'utf8')) / 1024;
    } catch {
      // killed or crashed before its exit handler ran
    }
    return { code: r.status, stdout: r.stdout, stderr: r.stderr, peakMB };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
