#!/usr/bin/env node
// Builds the optional native engine (native/build/siamese.node) with the machine's C compiler.
// Run by `npm ci` / `npm install` / `npm rebuild siamese-lab` (the package's install script), by
// `npm run build:native`, and by the library itself on first use when npm did not run the install
// script (src/engine/native.ts: into a cache folder, with --out). Never downloads anything and by
// default never fails the install: without a compiler or Node's headers it prints one line and the
// library uses its TF.js engine.
//
//   --out DIR            build into DIR instead of native/build
//   --strict             exit 1 when the engine was not built (also SIAMESE_REQUIRE_NATIVE=1: CI)
//   --verbose            print the compiler's command lines
//   SIAMESE_NATIVE=0     skip the build
//   CC=clang             choose the compiler (default: cc, gcc, clang, whichever works)
//   SIAMESE_MARCH=x86-64-v3  target another CPU than this one (default: -march=native)
import { execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, platform, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { cpuFingerprint, sourceHash } from './cpu.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const srcDir = join(here, 'src');
const argv = process.argv.slice(2);
const outArg = argv.indexOf('--out');
const outDir = outArg >= 0 && argv[outArg + 1] ? resolve(argv[outArg + 1]) : join(here, 'build');
const target = join(outDir, 'siamese.node');
const verbose = argv.includes('--verbose');
const strict = argv.includes('--strict') || process.env.SIAMESE_REQUIRE_NATIVE === '1';
let built = false;

function notice(msg) {
  process.stdout.write(`siamese-lab: ${msg}\n`);
}

function findHeaders() {
  const cands = [];
  if (process.env.npm_config_nodedir) cands.push(join(process.env.npm_config_nodedir, 'include', 'node'));
  cands.push(resolve(dirname(process.execPath), '..', 'include', 'node'));
  cands.push('/usr/include/node', '/usr/local/include/node');
  const home = process.env.HOME;
  if (home) {
    const v = process.versions.node;
    cands.push(join(home, '.cache', 'node-gyp', v, 'include', 'node'), join(home, '.node-gyp', v, 'include', 'node'));
  }
  return cands.find((d) => existsSync(join(d, 'node_api.h')) && existsSync(join(d, 'js_native_api.h')));
}

function findCompiler() {
  const cands = process.env.CC ? [process.env.CC] : ['cc', 'gcc', 'clang'];
  for (const cc of cands) {
    try {
      const v = execFileSync(cc, ['--version'], { stdio: ['ignore', 'pipe', 'ignore'] }).toString().split('\n')[0];
      return { cc, version: v.trim() };
    } catch {
      // try the next one
    }
  }
  return null;
}

function run(cc, args) {
  if (verbose) process.stdout.write(`${cc} ${args.join(' ')}\n`);
  execFileSync(cc, args, { stdio: ['ignore', 'pipe', 'pipe'] });
}

function build() {
  if (process.env.SIAMESE_NATIVE === '0') {
    notice('native engine build skipped (SIAMESE_NATIVE=0); training uses the TF.js engine');
    return;
  }
  const os = platform();
  if (os !== 'linux' && os !== 'darwin' && os !== 'freebsd') {
    notice(`native engine not built on ${os}; training uses the TF.js engine`);
    return;
  }
  const headers = findHeaders();
  if (!headers) {
    notice("native engine not built (Node's C headers, node_api.h, not found); training uses the TF.js engine");
    return;
  }
  const comp = findCompiler();
  if (!comp) {
    notice('native engine not built (no C compiler: install gcc or clang, then `npm run build:native`); training uses the TF.js engine');
    return;
  }
  const march = process.env.SIAMESE_MARCH ?? 'native';
  const common = ['-std=gnu11', '-O3', `-march=${march}`, '-fPIC', '-pthread', '-fno-math-errno', '-fvisibility=hidden', '-I', headers, '-I', srcDir];
  const files = [
    ['addon.c', ['-ffp-contract=fast']],
    ['mlp.c', ['-ffp-contract=fast']],
    ['mlp_kernels.c', ['-ffp-contract=fast']],
    ['mlp_schedule.c', ['-ffp-contract=fast']],
    ['tail.c', ['-ffp-contract=fast']],
    ['gemm.c', ['-ffp-contract=fast']],
    ['conv.c', ['-ffp-contract=fast']],
    ['cnn.c', ['-ffp-contract=fast']],
    ['pool.c', []],
    ['dropout.c', []],
    // the optimizer repeats TF.js' float32 rounding step by step: no fused multiply-add
    ['optim.c', ['-ffp-contract=off']],
    // the class-weight losses' whole step and their float32 batch accuracy: agreement with the
    // reference is to rounding, so fused multiply-adds where the target has them (as the
    // network's GEMM); one build still gives the same bits every time
    ['batchproxy.c', ['-ffp-contract=fast']],
    // the pair losses whole: float32 products on gemm.c's kernels (FMA there), the per-pair
    // arithmetic here without contraction (the same on every build, given S); the masks'
    // selects vectorise only with -fno-trapping-math
    ['batchpair.c', ['-ffp-contract=off', '-fno-trapping-math']],
    // both paths' batch accuracy: comparisons and one bucket map, exact for the float32 values;
    // its radix sort reads floats as their bits (no strict aliasing)
    ['batchsweep.c', ['-ffp-contract=fast', '-fno-strict-aliasing']],
    // exp and log over arrays: the same bits on every -march (no fused multiply-add); without
    // -fno-trapping-math GCC will not turn the range checks into vector selects
    ['vmath.c', ['-ffp-contract=off', '-fno-trapping-math']],
  ];
  const tmp = join(tmpdir(), `siamese-native-${process.pid}-${Date.now()}`);
  mkdirSync(tmp, { recursive: true });
  try {
    const objs = [];
    for (const [f, extra] of files) {
      const obj = join(tmp, f.replace(/\.c$/, '.o'));
      run(comp.cc, [...common, ...extra, '-c', join(srcDir, f), '-o', obj]);
      objs.push(obj);
    }
    const linkFlags = os === 'darwin' ? ['-bundle', '-undefined', 'dynamic_lookup'] : ['-shared'];
    const tmpOut = join(tmp, 'siamese.node');
    run(comp.cc, [...linkFlags, '-pthread', ...objs, '-o', tmpOut, '-lm']);
    mkdirSync(outDir, { recursive: true });
    // the build info first, the addon last (renamed into place): a reader that finds the addon
    // finds its info
    writeFileSync(
      join(outDir, 'build-info.json'),
      JSON.stringify(
        {
          compiler: comp.version,
          march,
          cpu: cpus()[0]?.model ?? 'unknown',
          cpuFingerprint: cpuFingerprint(),
          sources: sourceHash(),
          node: process.versions.node,
          napi: process.versions.napi,
          builtAt: new Date().toISOString(),
        },
        null,
        2,
      ) + '\n',
    );
    renameOrCopy(tmpOut, target);
    built = true;
    notice(`native engine built (${comp.cc}, -march=${march}) into ${target}`);
  } catch (e) {
    const err = e;
    const lines = String(err.stderr ?? err.message ?? err).split('\n');
    const first = lines.find((l) => /error/i.test(l)) ?? lines.find((l) => l.trim() !== '') ?? 'unknown error';
    notice(`native engine not built (${first.trim().slice(0, 160)}); training uses the TF.js engine`);
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

function renameOrCopy(from, to) {
  try {
    renameSync(from, to);
  } catch {
    // across file systems: copy next to the target, then rename (a reader never sees half a file)
    const near = `${to}.${process.pid}.tmp`;
    copyFileSync(from, near);
    renameSync(near, to);
  }
}

try {
  build();
} catch (e) {
  notice(`native engine not built (${String(e?.message ?? e).split('\n')[0]}); training uses the TF.js engine`);
}
if (strict && !built) {
  process.stderr.write('siamese-lab: the native engine is required (--strict or SIAMESE_REQUIRE_NATIVE=1) and was not built\n');
  process.exit(1);
}
