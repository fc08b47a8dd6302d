/**
 * `npm test` on a machine without a program some tests need (Debian's chromium, redis-server):
 * one line saying which and how to get it, exit 1, no test run. The real script, in a child
 * process whose PATH holds no such program.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
// @ts-expect-error: a plain .mjs script without type declarations
import { missingPrograms, needs as needsOf } from '../../scripts/prerequisites.mjs';
import { REPO_ROOT } from '../helpers.ts';

type Missing = { name: string; files: string[] }[];
const missing = missingPrograms as (files: string[], env: NodeJS.ProcessEnv, programs?: unknown[]) => Missing;

const needs = needsOf as (source: string) => string[];

test('@needs lines name programs; other mentions do not count', () => {
  const at = '@' + 'needs';
  assert.deepEqual(needs(`/**\n * Opens the report.\n * ${at} chromium\n */\nconst c = 'redis-server';`), ['chromium']);
  assert.deepEqual(needs(`// ${at} chromium redis-server\n`), ['chromium', 'redis-server']);
  assert.deepEqual(needs('// uses chromium and redis-server\n'), []);
});

test('a test file that needs redis-server needs it; PATH without it: npm test says how to get it and runs nothing', () => {
  const dir = mkdtempSync(join(tmpdir(), 'siamese-prereq-'));
  try {
    const file = join(dir, 'queue.test.ts');
    // would fail if it ran: the script must stop before
    // (the marker is split here so that this file itself needs nothing)
    writeFileSync(file, `// @${'needs'} redis-server\nimport { test } from 'node:test';\ntest('x', () => { throw new Error('ran'); });\n`);
    const plain = join(dir, 'plain.test.ts');
    writeFileSync(plain, "import { test } from 'node:test';\ntest('y', () => {});\n");
    const bin = join(dir, 'bin');
    assert.deepEqual(missing([file, plain], { PATH: bin }), [{ name: 'redis-server', files: [file] }]);
    // found in PATH: nothing missing
    writeFileSync(join(dir, 'redis-server'), '');
    assert.deepEqual(missing([file], { PATH: dir }), []);
    // a fixed path counts too (chromium: the browser test drives /usr/bin/chromium)
    assert.deepEqual(missing([file], { PATH: bin }, [{ name: 'redis-server', paths: [join(dir, 'redis-server')] }]), []);

    rmSync(join(dir, 'redis-server'));
    const r = spawnSync(process.execPath, [join(REPO_ROOT, 'scripts', 'test.mjs'), file, plain], {
      cwd: REPO_ROOT,
      encoding: 'utf8',
      env: { ...process.env, PATH: bin },
      timeout: 60_000,
    });
    assert.equal(r.status, 1, r.stderr);
    const lines = r.stderr.trim().split('\n');
    assert.equal(lines.length, 1, r.stderr);
    assert.match(lines[0]!, /^npm test: redis-server \(for .*queue\.test\.ts\) not installed; get everything the tests need with: sudo apt-get install chromium redis-server$/);
    assert.doesNotMatch(r.stdout, /# Subtest/, 'no test ran');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
