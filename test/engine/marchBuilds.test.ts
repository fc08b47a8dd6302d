/**
 * The addon built for other instruction sets than this CPU's best (SIAMESE_MARCH=x86-64-v3: AVX2,
 * SIAMESE_MARCH=x86-64: SSE2), each loaded through SIAMESE_NATIVE_DIR in a child process of its
 * own (test/engine/marchCheck.ts): it reports that build's kernels, its MLP and CNN steps agree
 * with TF.js to 1e-5 (loss, distances, gradients), one and two threads give the same bits, the
 * batch losses (whole in one call: the pair-based ones in batchpair.c on this build's float32
 * GEMM, the class-weight ones in batchproxy.c) agree with the reference within their tolerances
 * and repeat their own bits, both paths' float32 batch accuracy (batchsweep.c) equals a
 * sort-and-sweep oracle on this build's similarities, and vmath.c's exp/log the default build's
 * bits. SIAMESE_NATIVE_DIR itself: a missing addon and one built from other sources are refused
 * and said, never replaced.
 *
 * A CPU without AVX2 cannot run the x86-64-v3 build: that test says so and checks the others.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { nativeAddon, nativeStatus } from '../../src/engine/native.ts';
import { vmathDigest } from './vmathProbe.ts';
import { REPO_ROOT } from '../helpers.ts';

const BUILD = join(REPO_ROOT, 'native', 'build.mjs');
const CHECK = join(REPO_ROOT, 'test', 'engine', 'marchCheck.ts');

/** the -march targets and the kernels each must select (ISA_NAME in native/src/siamese.h) */
const MARCHES = [
  { march: 'x86-64-v3', isa: 'avx2', needs: ['avx2', 'fma', 'bmi2', 'f16c', 'movbe'] },
  { march: 'x86-64', isa: 'sse/neon', needs: [] as string[] },
];

const cpuFlags = ((): Set<string> => {
  try {
    const line = readFileSync('/proc/cpuinfo', 'utf8')
      .split('\n')
      .find((l) => /^flags\s*:/.test(l));
    return new Set(line?.split(':')[1]!.trim().split(/\s+/) ?? []);
  } catch {
    return new Set();
  }
})();

const x64 = process.arch === 'x64';
const root = mkdtempSync(join(tmpdir(), 'siamese-march-'));
const built = new Map<string, { status: number | null; out: string }>();

/** node native/build.mjs --out dir --strict under SIAMESE_MARCH=march, without waiting on the other */
function build(march: string): Promise<void> {
  return new Promise((resolve) => {
    const env: NodeJS.ProcessEnv = { ...process.env, SIAMESE_MARCH: march };
    delete env['SIAMESE_NATIVE'];
    const p = spawn(process.execPath, [BUILD, '--out', join(root, march), '--strict'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    p.stdout.on('data', (d: Buffer) => (out += d));
    p.stderr.on('data', (d: Buffer) => (out += d));
    p.on('close', (status) => {
      built.set(march, { status, out });
      resolve();
    });
  });
}

/** marchCheck.ts (or `args`) in a child process loading only the addon in dir */
function child(dir: string, args: string[] = [CHECK]) {
  const env: NodeJS.ProcessEnv = { ...process.env, SIAMESE_NATIVE_DIR: dir, SIAMESE_REQUIRE_NATIVE: '1' };
  delete env['SIAMESE_NATIVE'];
  delete env['NODE_TEST_CONTEXT'];
  return spawnSync(process.execPath, ['--import', 'tsx', ...args], { cwd: REPO_ROOT, encoding: 'utf8', env, timeout: 240_000 });
}

before(async () => {
  if (x64) await Promise.all(MARCHES.map((m) => build(m.march)));
});

after(() => {
  rmSync(root, { recursive: true, force: true });
});

if (!x64) {
  test(`SIAMESE_MARCH builds are x86 targets; this is ${process.arch}: nothing to build`, (t) => {
    t.diagnostic(`the ${process.arch} build (-march=native) is the one test/engine/native*.test.ts check`);
  });
} else {
  const defaultIsa = nativeStatus().info?.isa;

  for (const m of MARCHES) {
    const missing = m.needs.filter((f) => !cpuFlags.has(f));
    test(`SIAMESE_MARCH=${m.march}: ${m.isa} kernels agree with TF.js and the reference, same bits on 1 and 2 threads`, (t) => {
      const b = built.get(m.march)!;
      assert.equal(b.status, 0, `the ${m.march} build failed: ${b.out}`);
      if (missing.length > 0) {
        // built (the compiler checked it), but this CPU cannot run it
        t.diagnostic(`this CPU lacks ${missing.join(', ')}: the ${m.march} build cannot run here and is not checked; the others are`);
        return;
      }
      const r = child(join(root, m.march));
      const why = /^marchCheck failed: .*$/m.exec(r.stderr)?.[0] ?? r.stderr.slice(-3000);
      assert.equal(r.status, 0, `the ${m.march} build's checks failed: ${why}`);
      const res = JSON.parse(r.stdout.trim().split('\n').at(-1)!) as { isa: string; path: string; march: string; mlpWorst: number; cnnWorst: number; vmath: string };
      assert.equal(res.isa, m.isa, `the ${m.march} build reports ${res.isa}`);
      assert.equal(res.march, m.march);
      assert.equal(res.path, join(root, m.march, 'siamese.node'));
      if (defaultIsa === 'avx512') assert.notEqual(res.isa, defaultIsa, 'the default build was loaded instead');
      // vmath.c's exp and log: the same bits at every vector width (the default build's, here)
      if (nativeStatus().available) assert.equal(res.vmath, vmathDigest(nativeAddon()), `the ${m.march} build's exp/log bits differ from the default build's`);
      t.diagnostic(`${res.isa} (default build: ${defaultIsa ?? 'none'}); worst gradient difference from TF.js: MLP ${res.mlpWorst.toExponential(2)}, CNN ${res.cnnWorst.toExponential(2)}`);
    });
  }

  test('SIAMESE_NATIVE_DIR: siamese doctor names the addon it loaded', () => {
    const m = MARCHES[1]!;
    assert.equal(built.get(m.march)!.status, 0, 'the build failed');
    const r = child(join(root, m.march), [join(REPO_ROOT, 'bin', 'siamese.js'), 'doctor']);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, new RegExp(`engine: native \\(sse/neon, 4 floats a vector, .*\\), from SIAMESE_NATIVE_DIR: ${join(root, m.march, 'siamese.node').replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}\n`));
    assert.match(r.stdout, /-march=x86-64,/);
  });

  test('SIAMESE_NATIVE_DIR: a missing addon, or one built from other sources, is refused and said; nothing else loads', () => {
    const probe = ['--input-type=module', '-e', "import { nativeStatus } from './src/engine/native.ts'; process.stdout.write(JSON.stringify(nativeStatus()));"];
    const status = (dir: string) => {
      const r = child(dir, probe);
      assert.equal(r.status, 0, r.stderr);
      return JSON.parse(r.stdout) as ReturnType<typeof nativeStatus>;
    };
    const empty = join(root, 'empty');
    mkdirSync(empty);
    const none = status(empty);
    assert.equal(none.available, false);
    assert.equal(none.reason, 'missing');
    assert.match(none.detail, /no addon at .*empty\/siamese\.node \(SIAMESE_NATIVE_DIR\)/);
    assert.ok(!existsSync(join(empty, 'siamese.node')), 'no first-use build');

    // the x86-64 build, its build info saying other sources (as after an edit of native/src)
    const from = join(root, 'x86-64');
    const stale = join(root, 'stale');
    mkdirSync(stale);
    copyFileSync(join(from, 'siamese.node'), join(stale, 'siamese.node'));
    const info = JSON.parse(readFileSync(join(from, 'build-info.json'), 'utf8')) as Record<string, string>;
    writeFileSync(join(stale, 'build-info.json'), JSON.stringify({ ...info, sources: '000000000000' }));
    const st = status(stale);
    assert.equal(st.available, false);
    assert.equal(st.reason, 'stale');
    assert.match(st.detail, /stale\/siamese\.node was built from other sources than native\/src/);
    // and the checks fail on it, rather than check another build
    const r = child(stale);
    assert.notEqual(r.status, 0);
    assert.match(r.stderr, /marchCheck failed: the addon in SIAMESE_NATIVE_DIR did not load: .*stale\/siamese\.node was built from other sources/);
  });
}
