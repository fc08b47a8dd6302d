#!/usr/bin/env node
// The siamese command: the compiled CLI (dist/, built by `npm run build`, which `npm ci` runs in a
// clone through `prepare`). In a clone whose TypeScript sources are newer than that build, or with
// no build, it runs the sources through tsx instead, so that what runs is always what src/ says.
import { existsSync, readdirSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');

/** The newest modification time under dir (ms). */
function newest(dir) {
  let t = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    t = Math.max(t, e.isDirectory() ? newest(p) : statSync(p).mtimeMs);
  }
  return t;
}

function stale() {
  // the package as installed has no src/: always the build
  if (!existsSync(join(root, 'src'))) return false;
  const stamp = join(root, 'dist', 'build.json');
  return !existsSync(stamp) || newest(join(root, 'src')) > statSync(stamp).mtimeMs;
}

let main;
if (stale()) {
  try {
    await import('tsx');
  } catch {
    process.stderr.write('siamese: dist/ is missing or older than src/, and tsx is not installed: run `npm ci` (or `npm run build`)\n');
    process.exit(1);
  }
  ({ main } = await import('../src/cli/main.ts'));
} else {
  ({ main } = await import('../dist/cli/main.js'));
}
await main(process.argv.slice(2));
