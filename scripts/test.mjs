// `npm test`: every test/**/*.test.ts through Node's own test runner (Node 20's --test takes no
// glob patterns, so the files are listed here). Extra arguments pass through, e.g. a file list.
//
// Some tests drive Debian programs: first it checks that the ones the chosen files need are
// installed, and when one is not it says in one line how to get it and runs nothing (a test
// that cannot run must not pass quietly). `.ci/run` installs them on a fresh machine.
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { missingPrograms, PROGRAMS } from './prerequisites.mjs';

function findTests(dir) {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = join(dir, e.name);
    if (e.isDirectory()) return findTests(p);
    return e.name.endsWith('.test.ts') ? [p] : [];
  });
}

const args = process.argv.slice(2);
const files = args.filter((a) => !a.startsWith('-')).length > 0 ? args : [...args, ...findTests('test').sort()];
const missing = missingPrograms(files.filter((a) => !a.startsWith('-')));
if (missing.length > 0) {
  process.stderr.write(
    `npm test: ${missing.map((m) => `${m.name} (for ${m.files.join(', ')})`).join(' and ')} not installed; ` +
      `get everything the tests need with: sudo apt-get install ${PROGRAMS.map((p) => p.name).join(' ')}\n`,
  );
  process.exit(1);
}
const r = spawnSync(
  process.execPath,
  // A per-test timeout turns a hang into a failure instead of a stuck CI run.
  ['--import', 'tsx', '--test', '--test-concurrency=2', '--test-timeout=900000', ...files],
  { stdio: 'inherit' },
);
process.exit(r.status ?? 1);
