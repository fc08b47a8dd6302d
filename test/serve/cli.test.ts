/**
 * `siamese serve` as a user runs it: the URL on stdout, the folders served, Ctrl-C (SIGTERM
 * here) stops it with exit 0; bad arguments give one line on stderr and exit 2.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, it } from 'node:test';
import { isLoopback } from '../../src/serve/server.ts';
import { syntheticResults } from '../fixtures/compareResults.ts';
import { ensureWebBuilt, rawGet } from './helpers.ts';

const dir = mkdtempSync(join(tmpdir(), 'siamese-serve-cli-'));
after(() => rmSync(dir, { recursive: true, force: true }));

function fails(args: string[]): { status: number | null; stderr: string } {
  const r = spawnSync(process.execPath, ['bin/siamese.js', 'serve', ...args], { encoding: 'utf8', timeout: 60_000 });
  return { status: r.status, stderr: r.stderr };
}

it('prints its URL, serves the folder, and stops on SIGTERM with exit 0', { timeout: 120_000 }, async () => {
  ensureWebBuilt();
  writeFileSync(join(dir, 'results.json'), JSON.stringify(syntheticResults()));
  const child = spawn(process.execPath, ['bin/siamese.js', 'serve', dir, '--port', '0'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stderr.setEncoding('utf8').on('data', (c: string) => (err += c));
  const url = await new Promise<string>((resolve, reject) => {
    child.stdout.setEncoding('utf8').on('data', (c: string) => {
      out += c;
      const m = /http:\/\/127\.0\.0\.1:(\d+)\//.exec(out);
      if (m) resolve(m[0]);
    });
    child.on('exit', (code) => reject(new Error(`serve exited (${code}) before printing its URL: ${err}`)));
  });
  try {
    const port = Number(/:(\d+)\//.exec(url)![1]);
    const r = await rawGet(port, '/api/runs');
    assert.equal(r.status, 200);
    assert.equal((JSON.parse(r.body) as { runs: unknown[] }).runs.length, syntheticResults().runs.length);
    assert.equal(err, '', 'no warning on 127.0.0.1');
  } finally {
    const code = await new Promise<number | null>((resolve) => {
      child.on('exit', (c) => resolve(c));
      child.kill('SIGTERM');
    });
    assert.equal(code, 0);
  }
});

it('refuses a missing folder and a bad port with one line and exit 2', { timeout: 120_000 }, () => {
  const missing = fails([join(dir, 'nope'), '--port', '0']);
  assert.equal(missing.status, 2);
  assert.match(missing.stderr, /^siamese: .*nope: no such folder\n$/);
  const port = fails([dir, '--port', '70000']);
  assert.equal(port.status, 2);
  assert.equal(port.stderr, 'siamese: --port must be an integer in 0..65535, got 70000\n');
  const neg = fails([dir, '--port', '-1']);
  assert.equal(neg.status, 2);
  assert.equal(neg.stderr.split('\n').length, 2, 'one line');
});

it('knows which hosts are local (no warning for them)', () => {
  for (const h of ['127.0.0.1', 'localhost', '::1', '127.1.2.3']) assert.equal(isLoopback(h), true, h);
  for (const h of ['0.0.0.0', '192.168.1.2', '::', 'example.com']) assert.equal(isLoopback(h), false, h);
});
