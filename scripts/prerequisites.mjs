// The programs some tests need beyond npm's packages (Debian's), and which of them this machine
// lacks, for scripts/test.mjs. A test file says what it needs in a comment line:
//   * @needs chromium
// (one or more names, space-separated).
import { existsSync, readFileSync } from 'node:fs';
import { delimiter, join } from 'node:path';

/** Programs some tests need: found in PATH (or at a fixed path), and which files need them. */
export const PROGRAMS = [
  { name: 'chromium', paths: ['/usr/bin/chromium'] },
  { name: 'redis-server', paths: [] },
];

const NEEDS = /^\s*(?:\/\/|\*|\/\*\*?)\s*@needs\s+([^\n*]+)/gm;

/** The programs a test file's `@needs` lines name. */
export function needs(source) {
  return [...source.matchAll(NEEDS)].flatMap((m) => m[1].trim().split(/\s+/));
}

function installed(program, env) {
  const dirs = (env.PATH ?? '').split(delimiter).filter((d) => d !== '');
  return program.paths.some((p) => existsSync(p)) || dirs.some((d) => existsSync(join(d, program.name)));
}

/** The programs the files need and this machine lacks: [{ name, files }] */
export function missingPrograms(files, env = process.env, programs = PROGRAMS) {
  const out = [];
  for (const program of programs) {
    const users = files.filter((f) => existsSync(f) && needs(readFileSync(f, 'utf8')).includes(program.name));
    if (users.length > 0 && !installed(program, env)) out.push({ name: program.name, files: users });
  }
  return out;
}

