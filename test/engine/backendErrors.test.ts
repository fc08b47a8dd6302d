// After initBackend(), a user's own error must look like the user's error: the wasm backend's
// Emscripten glue used to leave process handlers that rethrew it from inside the glue (about 38 KB
// of minified code on stderr) and exited with code 7.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { test } from 'node:test';
import { REPO_ROOT } from '../helpers.ts';

const index = pathToFileURL(join(REPO_ROOT, 'src', 'index.ts')).href;

function run(body: string): { code: number | null; stderr: string } {
  const dir = mkdtempSync(join(tmpdir(), 'siamese-user-error-'));
  try {
    const file = join(dir, 'user.mts');
    writeFileSync(file, `import { initBackend } from ${JSON.stringify(index)};\nawait initBackend();\n${body}\n`);
    const r = spawnSync(process.execPath, ['--import', 'tsx', file], { cwd: REPO_ROOT, encoding: 'utf8', timeout: 120_000 });
    return { code: r.status, stderr: r.stderr };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

test("a user's uncaught error after initBackend() is reported as Node reports it: their message, exit 1", () => {
  const r = run("throw new Error('the user\\'s own error');");
  assert.equal(r.code, 1, r.stderr.slice(0, 500));
  assert.match(r.stderr, /Error: the user's own error/);
  assert.doesNotMatch(r.stderr, /tf-backend-wasm/);
  assert.ok(r.stderr.length < 3000, `${r.stderr.length} bytes on stderr`);
});

test('an unhandled rejection after initBackend() also keeps its own message and exit code 1', () => {
  const r = run("await Promise.reject(new Error('rejected here'));");
  assert.equal(r.code, 1, r.stderr.slice(0, 500));
  assert.match(r.stderr, /rejected here/);
  assert.doesNotMatch(r.stderr, /tf-backend-wasm/);
});
