/**
 * Production code does not read test-only environment variables (SIAMESE_TEST_*) where it works:
 * one module, src/testHooks.ts, reads each once, at load (top-level statements), and hands out the
 * hooks. Before, the queue coordinator read SIAMESE_TEST_COLLECT_CRASH_AFTER at every step of
 * every collect.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { test } from 'node:test';
import { REPO_ROOT } from '../helpers.ts';

function files(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = join(dir, e.name);
    return e.isDirectory() ? files(p) : /\.(ts|mjs|js|c|h)$/.test(e.name) ? [p] : [];
  });
}

test('only src/testHooks.ts names a SIAMESE_TEST_ variable, and it reads it at load, not in a function', () => {
  const src = join(REPO_ROOT, 'src');
  const naming = files(src)
    .filter((f) => readFileSync(f, 'utf8').includes('SIAMESE_TEST_'))
    .map((f) => relative(REPO_ROOT, f));
  assert.deepEqual(naming, ['src/testHooks.ts']);
  const reads = readFileSync(join(src, 'testHooks.ts'), 'utf8')
    .split('\n')
    .filter((l) => l.includes('process.env'));
  assert.ok(reads.length > 0);
  // a top-level const: evaluated once, when the module loads
  for (const l of reads) assert.match(l, /^const \w+ = .*process\.env\['SIAMESE_TEST_[A-Z_]+'\]/, l);
});
