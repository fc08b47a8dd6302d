// `npm run build:web`: bundle the page of `siamese serve` (src/web/main.ts, its CSS and uPlot's)
// into dist/web/ with esbuild, once, at build time: the server only reads these three files.
// Usage: node src/web/build.mjs [--out DIR] [--dev]   (--dev: no minification, inline source maps)
import { build } from 'esbuild';
import { copyFileSync, mkdirSync, readdirSync, renameSync, rmSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const args = process.argv.slice(2);
const outAt = args.indexOf('--out');
const out = outAt >= 0 ? resolve(args[outAt + 1] ?? '') : join(here, '..', '..', 'dist', 'web');
const dev = args.includes('--dev');

// Built beside the target and renamed into place file by file: a server or a test reading
// dist/web meanwhile (tests build it when missing, two at once) never sees half a file.
const tmp = `${out}.tmp-${process.pid}`;
mkdirSync(tmp, { recursive: true });
mkdirSync(out, { recursive: true });
try {
  await build({
    entryPoints: { app: join(here, 'main.ts') },
    outdir: tmp,
    bundle: true,
    format: 'iife',
    platform: 'browser',
    target: ['chrome110', 'firefox110', 'safari16'],
    minify: !dev,
    sourcemap: dev ? 'inline' : false,
    legalComments: 'none',
    logLevel: 'warning',
  });
  copyFileSync(join(here, 'index.html'), join(tmp, 'index.html'));
  for (const f of readdirSync(tmp)) renameSync(join(tmp, f), join(out, f));
} finally {
  rmSync(tmp, { recursive: true, force: true });
}
process.stdout.write(`built the serve page into ${out}\n`);
