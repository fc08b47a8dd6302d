// `npm test`: every test/**/*.test.ts through Node's own test runner (Node 20's --test takes no
// glob patterns, so the files are listed here). Extra arguments pass through, e.g. a file list.
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';

function findTests(dir) {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = join(dir, e.name);
    if (e.isDirectory()) return findTests(p);
    return e.name.endsWith('.test.ts') ? [p] : [];
  });
}

const args = process.argv.slice(2);
const files = args.length > 0 ? args : findTests('test').sort();
const r = spawnSync(
  process.execPath,
  // A per-test timeout turns a hang into a failure instead of a stuck CI run.
  ['--import', 'tsx', '--test', '--test-concurrency=2', '--test-timeout=900000', ...files],
  { stdio: 'inherit' },
);
process.exit(r.status ?? 1);
