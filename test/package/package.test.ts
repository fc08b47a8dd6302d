/**
 * siamese-lab as a dependency: packed with `npm pack`, installed from the tarball into a new
 * project (install scripts not run, as npm 11 does by default), then used from there as a user
 * would: imported from plain Node (no loader) and from TypeScript under tsx, its types checked by
 * tsc, its CLI run, including 1-epoch trainings on the TF.js fallback (no C compiler: one line
 * says so and how to fix it) and on the native engine, built on first use into the cache.
 * Inside the clone, the package imports itself by name through its exports map. The README's
 * library examples run exactly as printed from the dependent project, under tsx as the README says.
 */
import assert from 'node:assert/strict';
import { copyFileSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { REPO_ROOT } from '../helpers.ts';
import { node, packAndInstall, type PackedProject, siamese } from './project.ts';
import { readmeExamples } from './readme.ts';

let p: PackedProject;

before(() => {
  p = packAndInstall();
});

after(() => p?.cleanup());

const manifestEngine = (run: string): string =>
  (JSON.parse(readFileSync(join(p.dir, run, 'manifest.json'), 'utf8')) as { engine: { name: string } }).engine.name;

/** The lines the package itself printed on stderr (its notices start with "siamese-lab: "). */
const notices = (stderr: string): string[] => stderr.split('\n').filter((l) => l.startsWith('siamese-lab: '));

test('the tarball: compiled code, types, the native sources; no tests, no study; under 2 MB', () => {
  assert.ok(p.size < 2_000_000, `packed ${p.size} bytes`);
  for (const f of ['package.json', 'README.md', 'bin/siamese.js', 'dist/index.js', 'dist/index.d.ts', 'dist/cli/main.js', 'dist/engine/tfjs-gradients.js', 'native/build.mjs', 'native/cpu.mjs', 'native/src/mlp.c']) {
    assert.ok(p.files.includes(f), `${f} missing from the package`);
  }
  const unwanted = p.files.filter((f) => /^(test|docs|bench|src|scripts|\.ci)\//.test(f) || f.startsWith('native/build/') || f.endsWith('.ts') && !f.endsWith('.d.ts'));
  assert.deepEqual(unwanted, []);
  const pkg = JSON.parse(readFileSync(join(p.dir, 'node_modules', 'siamese-lab', 'package.json'), 'utf8')) as Record<string, unknown>;
  assert.deepEqual(pkg['exports'], { '.': { types: './dist/index.d.ts', default: './dist/index.js' }, './package.json': './package.json' });
  assert.equal((pkg['dependencies'] as Record<string, string>)['tsx'], undefined, 'tsx is needed at build and test time only');
  // npm ran no script: no addon in the package
  assert.equal(existsSync(join(p.dir, 'node_modules', 'siamese-lab', 'native', 'build')), false);
});

test('plain Node (no loader) imports the package and trains with the library', () => {
  writeFileSync(
    join(p.dir, 'plain.mjs'),
    `import * as lab from 'siamese-lab';
const names = Object.keys(lab);
await lab.initBackend();
const r = await lab.trainRun({ config: { loss: 'contrastive', epochs: 1, trainPairs: 2000, engine: 'tfjs' }, out: 'runs/plain' });
console.log(JSON.stringify({ tf: names.includes('tf'), trainRun: typeof lab.trainRun, status: typeof lab.nativeStatus().available, acc: r.evaluation?.pairs.accuracy }));
`,
  );
  const r = node(p, ['plain.mjs'], { SIAMESE_NATIVE: '0' });
  assert.equal(r.code, 0, r.stderr);
  const out = JSON.parse(r.stdout.trim().split('\n').pop()!) as { tf: boolean; trainRun: string; status: string; acc: number };
  assert.deepEqual({ ...out, acc: undefined }, { tf: false, trainRun: 'function', status: 'boolean', acc: undefined });
  // one epoch on 2,000 pairs learns something (chance is 0.5)
  assert.ok(out.acc > 0.55 && out.acc <= 1, `accuracy ${out.acc}`);
  assert.equal(manifestEngine('runs/plain'), 'tfjs');
});

test('TypeScript under tsx imports the package from the dependent project and trains on TF.js (its gradients)', () => {
  writeFileSync(
    join(p.dir, 'grad.ts'),
    `import { initBackend, loadMnist, mlpNetwork, resolveConfig, Rng, Training, type BaseNetwork } from 'siamese-lab';
await initBackend();
const net: BaseNetwork = mlpNetwork({ inputSize: 4, hidden: [3], embeddingDim: 2, dropout: 0 });
// TF.js computes every gradient here: the definitions tfjs-core keeps out of its bundles must be registered
const run = new Training(await loadMnist(), resolveConfig({ loss: 'contrastive', epochs: 1, trainPairs: 2000, engine: 'tfjs' }));
const log = run.runEpoch();
console.log(JSON.stringify({ layers: net.layers.map((l) => l.type), weights: net.initWeights(new Rng(1)).map((w) => w.name), engine: log?.engine, acc: log?.testAccuracy }));
`,
  );
  const r = node(p, ['--import', 'tsx', 'grad.ts']);
  assert.equal(r.code, 0, r.stderr);
  const out = JSON.parse(r.stdout.trim().split('\n').pop()!) as { layers: string[]; weights: string[]; engine: string; acc: number };
  assert.deepEqual(out.layers, ['dense', 'dropout', 'dense']);
  assert.deepEqual(out.weights, ['dense_1.kernel', 'dense_1.bias', 'dense_2.kernel', 'dense_2.bias']);
  assert.equal(out.engine, 'tfjs');
  assert.ok(out.acc > 0.55 && out.acc <= 1, `test accuracy ${out.acc} after one epoch`);
});

test("the package's types: a dependent project's TypeScript sees them (tsc)", () => {
  writeFileSync(
    join(p.dir, 'types.ts'),
    `import { mlpNetwork, nativeStatus, type NativeStatus, type TrainConfig } from 'siamese-lab';
const s: NativeStatus = nativeStatus();
const ok: boolean = s.available;
const epochs: TrainConfig['epochs'] = 1;
const kind: 'mlp' | 'cnn' = mlpNetwork().kind;
// @ts-expect-error: the types are real (were they missing, everything would be any and this no error)
const wrong: number = mlpNetwork().kind;
export { ok, epochs, kind, wrong };
`,
  );
  writeFileSync(
    join(p.dir, 'tsconfig.json'),
    JSON.stringify({ compilerOptions: { module: 'nodenext', moduleResolution: 'nodenext', target: 'es2022', strict: true, noEmit: true, skipLibCheck: true, types: ['node'] }, files: ['types.ts'] }),
  );
  const tsc = join(REPO_ROOT, 'node_modules', 'typescript', 'bin', 'tsc');
  const r = node(p, [tsc, '-p', 'tsconfig.json']);
  assert.equal(r.code, 0, r.stdout + r.stderr);
});

test("a strict consumer with TypeScript's defaults (skipLibCheck off) type-checks the README's examples with no error", () => {
  // skipLibCheck off: tsc checks every declaration file the package's types load. tfjs-core's and
  // its backends' do not pass (Long, EmscriptenModule, @webgpu/types against lib.dom), so the
  // package's public types must not load them (docs/package.md)
  const examples = readmeExamples(readFileSync(join(p.clone, 'README.md'), 'utf8'));
  const files = examples.map((ex, i) => {
    const file = `strict-example-${i + 1}.ts`;
    writeFileSync(join(p.dir, file), ex.code);
    return file;
  });
  writeFileSync(
    join(p.dir, 'strict-api.ts'),
    `import { compileExpression, createOptimizer, initBackend, mlpNetwork, pairDistancesHost, yukawaLoss, type BaseNetwork, type Loss } from 'siamese-lab';
await initBackend('cpu');
const net: BaseNetwork = mlpNetwork();
const loss: Loss = yukawaLoss();
const v: number = compileExpression('exp(-d)').scalar(1) + pairDistancesHost(Float32Array.of(0, 1), 1, Int32Array.of(0), Int32Array.of(1))[0]!;
createOptimizer('adam').dispose();
export { net, loss, v };
`,
  );
  writeFileSync(
    join(p.dir, 'tsconfig.strict.json'),
    JSON.stringify({ compilerOptions: { module: 'nodenext', strict: true, noEmit: true, types: ['node'] }, files: [...files, 'strict-api.ts'] }),
  );
  const tsc = join(REPO_ROOT, 'node_modules', 'typescript', 'bin', 'tsc');
  const r = node(p, [tsc, '-p', 'tsconfig.strict.json']);
  assert.equal(r.stdout + r.stderr, '');
  assert.equal(r.code, 0);
});

test('inside the clone the package imports itself by name (the exports map)', () => {
  const r = node({ ...p, dir: p.clone }, ['--input-type=module', '-e', "const m = await import('siamese-lab'); console.log(typeof m.trainRun, typeof m.doctorReport)"]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout.trim(), 'function function');
});

test('the installed CLI: --help runs the compiled code', () => {
  const r = siamese(p, ['--help']);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^Usage: siamese /);
  assert.match(r.stdout, /\bdoctor\b/);
  // no TypeScript in the package to fall back on: this was dist/
  assert.equal(existsSync(join(p.dir, 'node_modules', 'siamese-lab', 'src')), false);
});

test('no C compiler: training falls back to TF.js and says so in one line, with the fix', () => {
  const cache = join(p.dir, 'cache-no-cc');
  const r = siamese(p, ['train', '--epochs', '1', '--train-pairs', '2000', '--out', 'runs/no-cc'], { SIAMESE_CACHE_DIR: cache, CC: '/nonexistent/cc' });
  assert.equal(r.code, 0, r.stderr);
  const lines = notices(r.stderr);
  assert.equal(lines.filter((l) => /TF\.js/.test(l)).length, 1, r.stderr);
  const line = lines.find((l) => /TF\.js/.test(l))!;
  assert.match(line, /^siamese-lab: training on the TF\.js engine \(about 25x slower\): .*no C compiler.*; fix: install a C compiler .*npm rebuild siamese-lab/);
  assert.equal(manifestEngine('runs/no-cc'), 'tfjs');
  // the failed build is remembered: the next run does not try again, and still says it
  const again = siamese(p, ['doctor'], { SIAMESE_CACHE_DIR: cache, CC: '/nonexistent/cc' });
  assert.equal(again.code, 0, again.stderr);
  assert.doesNotMatch(again.stderr, /building the native engine/);
  assert.match(again.stdout, /^engine: TF\.js \(wasm\).*no C compiler/m);
});

test('with a C compiler: the first run builds the native engine into the cache, says so, and trains on it', () => {
  const cache = join(p.dir, 'cache');
  const first = siamese(p, ['train', '--epochs', '1', '--train-pairs', '2000', '--out', 'runs/first'], { SIAMESE_CACHE_DIR: cache });
  assert.equal(first.code, 0, first.stderr);
  const lines = notices(first.stderr);
  assert.match(lines[0] ?? '', /^siamese-lab: building the native engine for this CPU into .*cache\/0\.1\.0-/);
  assert.match(lines[1] ?? '', /^siamese-lab: native engine built \(/);
  assert.equal(lines.length, 2, first.stderr);
  assert.equal(manifestEngine('runs/first'), 'native');

  const second = siamese(p, ['train', '--epochs', '1', '--train-pairs', '2000', '--out', 'runs/second'], { SIAMESE_CACHE_DIR: cache });
  assert.equal(second.code, 0, second.stderr);
  assert.deepEqual(notices(second.stderr), []);
  assert.equal(manifestEngine('runs/second'), 'native');
  // the same weights from the same seed, however the engine came to be
  const w = (run: string) => readFileSync(join(p.dir, run, 'weights.safetensors'));
  assert.ok(w('runs/first').equals(w('runs/second')));

  const doctor = siamese(p, ['doctor'], { SIAMESE_CACHE_DIR: cache });
  assert.equal(doctor.code, 0, doctor.stderr);
  assert.match(doctor.stdout, /^engine: native \(.*\), from the cache: .*siamese\.node$/m);
  assert.match(doctor.stdout, /^ {2}mnist: found, /m);
});

test('an addon built for another CPU is not loaded: doctor says so and how to fix it', () => {
  const cache = join(p.dir, 'cache');
  const built = join(cache, JSON.parse(siamese(p, ['doctor', '--json'], { SIAMESE_CACHE_DIR: cache }).stdout).native.cacheDir.split('/').pop());
  const pkgBuild = join(p.dir, 'node_modules', 'siamese-lab', 'native', 'build');
  mkdirSync(pkgBuild, { recursive: true });
  try {
    copyFileSync(join(built, 'siamese.node'), join(pkgBuild, 'siamese.node'));
    const info = JSON.parse(readFileSync(join(built, 'build-info.json'), 'utf8')) as Record<string, string>;
    writeFileSync(join(pkgBuild, 'build-info.json'), JSON.stringify({ ...info, cpu: 'Another CPU 9000', cpuFingerprint: '0123456789abcdef' }));
    // no cache and no compiler: the package's own addon is all there is
    const r = siamese(p, ['doctor'], { SIAMESE_CACHE_DIR: join(p.dir, 'cache-none'), CC: '/nonexistent/cc' });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^engine: TF\.js .*built for another CPU \(Another CPU 9000\)/m);
    assert.match(r.stdout, /^ {2}fix: .*npm rebuild siamese-lab/m);
  } finally {
    rmSync(pkgBuild, { recursive: true, force: true });
  }
});

/** Examples must stay small: a user copies them to see the API work, not to wait. */
const EXAMPLE_LIMIT_MS = 240_000;

test("the README's library examples run as printed from the dependent project (tsx)", () => {
  const examples = readmeExamples(readFileSync(join(p.clone, 'README.md'), 'utf8'));
  assert.ok(examples.length > 0, 'README.md has no library example');
  for (const [i, ex] of examples.entries()) {
    const file = `readme-example-${i + 1}.ts`;
    writeFileSync(join(p.dir, file), ex.code);
    const r = node(p, ['--import', 'tsx', file], { SIAMESE_CACHE_DIR: join(p.dir, 'cache') }, EXAMPLE_LIMIT_MS);
    assert.notEqual(r.code, null, `README.md line ${ex.line}: the example did not finish within ${EXAMPLE_LIMIT_MS / 1000} s (keep examples small, e.g. epochs: 1, trainPairs: 2000)`);
    assert.equal(r.code, 0, `README.md line ${ex.line}: exit ${r.code}\n${r.stderr.slice(-2000)}`);
  }
});
