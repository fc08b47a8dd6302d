/**
 * CI requires the native engine (SIAMESE_REQUIRE_NATIVE=1, set by .ci/run): a failed addon build
 * fails `npm ci` (native/build.mjs exits 1), and the native agreement tests fail instead of
 * passing with nothing compared when the addon is missing. Without the requirement, a missing
 * addon is a fallback the tests check, not a failure.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { REPO_ROOT } from '../helpers.ts';

const BUILD = join(REPO_ROOT, 'native', 'build.mjs');

function build(env: Record<string, string>, args: string[] = []) {
  const out = mkdtempSync(join(tmpdir(), 'siamese-native-req-'));
  try {
    const r = spawnSync(process.execPath, [BUILD, '--out', out, ...args], { encoding: 'utf8', env: { ...process.env, ...env }, timeout: 120_000 });
    return { ...r, built: existsSync(join(out, 'siamese.node')) };
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
}

test('no C compiler: the build says so in one line; it fails only when the engine is required', () => {
  const soft = build({ CC: '/nonexistent/cc', SIAMESE_REQUIRE_NATIVE: '' });
  assert.equal(soft.status, 0, soft.stderr);
  assert.equal(soft.built, false);
  assert.match(soft.stdout, /^siamese-lab: native engine not built \(no C compiler: .*\); training uses the TF\.js engine\n$/);

  const strict = build({ CC: '/nonexistent/cc', SIAMESE_REQUIRE_NATIVE: '1' });
  assert.equal(strict.status, 1);
  assert.equal(strict.built, false);
  assert.match(strict.stderr, /the native engine is required .* and was not built/);

  assert.equal(build({ CC: '/nonexistent/cc', SIAMESE_REQUIRE_NATIVE: '' }, ['--strict']).status, 1);
});

test('native agreement tests: a missing addon fails them when required, passes as a checked fallback when not', () => {
  const files = ['test/engine/native.test.ts', 'test/engine/nativeOptimizers.test.ts'];
  const run = (require: string) => {
    // SIAMESE_NATIVE=0: the addon does not load, as where it failed to build
    const env: NodeJS.ProcessEnv = { ...process.env, SIAMESE_NATIVE: '0', SIAMESE_REQUIRE_NATIVE: require };
    // a test runner of its own, not a child reporting to this one
    delete env['NODE_TEST_CONTEXT'];
    return spawnSync(process.execPath, ['--import', 'tsx', '--test', '--test-reporter=tap', ...files], { cwd: REPO_ROOT, encoding: 'utf8', env, timeout: 300_000 });
  };
  const required = run('1');
  assert.notEqual(required.status, 0, 'the tests passed without the required native engine');
  const failures = required.stdout.split('\n').filter((l) => /^not ok \d+ - native/.test(l));
  assert.equal(failures.length, 2, required.stdout.slice(-3000));
  assert.match(required.stdout, /SIAMESE_REQUIRE_NATIVE=1 but the native engine did not load/);

  const optional = run('');
  assert.equal(optional.status, 0, optional.stdout.slice(-3000));
  assert.match(optional.stdout, /# pass 2\n/);
});
