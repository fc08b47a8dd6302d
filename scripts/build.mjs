#!/usr/bin/env node
// `npm run build` (and `prepare`, so `npm ci` in a clone and `npm pack` build it): the compiled
// package in dist/ — ESM JavaScript and .d.ts types from src/ by tsc (tsconfig.build.json), plus
// dist/engine/tfjs-gradients.js: tfjs-core's gradient definitions, which it ships only as ESM
// files that plain Node cannot import (extension-less specifiers), bundled by esbuild into one
// file that Node can. dist/ is built beside (dist.next/) and swapped in whole: a failed build
// leaves the last one.
import { execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(join(root, 'package.json'));
const next = join(root, 'dist.next');
const dist = join(root, 'dist');

function fail(msg) {
  process.stderr.write(`siamese-lab build: ${msg}\n`);
  process.exit(1);
}

let tsc, esbuild;
try {
  tsc = join(dirname(require.resolve('typescript/package.json')), 'bin', 'tsc');
  esbuild = require('esbuild');
} catch {
  fail('typescript and esbuild (devDependencies) are not installed: run `npm ci` in the clone');
}

rmSync(next, { recursive: true, force: true });
try {
  execFileSync(process.execPath, [tsc, '-p', join(root, 'tsconfig.build.json'), '--outDir', next], { stdio: 'inherit', cwd: root });
} catch {
  rmSync(next, { recursive: true, force: true });
  fail('tsc failed (above)');
}
await esbuild.build({
  entryPoints: [require.resolve('@tensorflow/tfjs-core/dist/register_all_gradients.js')],
  bundle: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  outfile: join(next, 'engine', 'tfjs-gradients.js'),
  // tfjs' Apache-2.0 headers, once each
  legalComments: 'eof',
  banner: { js: `// tfjs-core ${require('@tensorflow/tfjs-core/package.json').version} dist/register_all_gradients.js and the modules it imports, bundled by scripts/build.mjs (Apache-2.0, Google LLC)` },
  logLevel: 'warning',
});
// the page of `siamese serve` (src/web), bundled with uPlot and its CSS
execFileSync(process.execPath, [join(root, 'src', 'web', 'build.mjs'), '--out', join(next, 'web')], { stdio: ['ignore', 'ignore', 'inherit'], cwd: root });
// plain JavaScript that tsc does not copy: the HDF5 worker thread's source (model/keras.ts starts it)
copyFileSync(join(root, 'src', 'model', 'hdf5Worker.js'), join(next, 'model', 'hdf5Worker.js'));
// the newest build time, for bin/siamese.js to tell a clone's sources newer than its build
writeFileSync(join(next, 'build.json'), JSON.stringify({ builtAt: new Date().toISOString() }) + '\n');
// two renames: a CLI running from dist/ meanwhile finds a whole build at every moment but one
const old = join(root, 'dist.old');
rmSync(old, { recursive: true, force: true });
if (existsSync(dist)) renameSync(dist, old);
renameSync(next, dist);
rmSync(old, { recursive: true, force: true });
if (!existsSync(join(dist, 'index.js'))) fail('dist/index.js missing after the build');
process.stderr.write('siamese-lab: built dist/ (tsc + tfjs gradients)\n');
