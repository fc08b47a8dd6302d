/**
 * Benchmark "t-SNE quality and speed": our Barnes-Hut t-SNE against scikit-learn's on the same
 * data, 10,000 points of 128 dimensions in ten seeded Gaussian clusters.
 *
 *   node --import tsx bench/tsne.ts [--n 10000] [--dim 128] [--clusters 10] [--spread 1.68]
 *                                   [--seed 0] [--python python3] [--no-sklearn] [--keep DIR]
 *
 * Both embeddings are scored with the same trustworthiness@10 (src/eval/trustworthiness.ts,
 * which matches sklearn.manifold.trustworthiness). Wall time and CPU time are reported: other
 * jobs on a shared machine inflate wall time, CPU time much less. sklearn runs as
 * TSNE(n_components=2, perplexity=30, init='pca', method='barnes_hut', n_jobs=2, random_state=0)
 * in a Python found on the PATH (or /usr/bin/python3); when none imports sklearn, the table says so.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { readNpyFloat32Matrix, writeNpy } from '../src/io/npy.ts';
import { trustworthiness } from '../src/eval/trustworthiness.ts';
import { Rng } from '../src/rng.ts';
import { runTsne } from '../src/viz/tsne.ts';

interface Args {
  n: number;
  dim: number;
  clusters: number;
  spread: number;
  seed: number;
  python: string | undefined;
  sklearn: boolean;
  keep: string | undefined;
}

function options(argv: string[]): Args {
  const { values: v } = parseArgs({
    args: argv,
    options: {
      n: { type: 'string', default: '10000' },
      dim: { type: 'string', default: '128' },
      clusters: { type: 'string', default: '10' },
      spread: { type: 'string', default: '1.68' },
      seed: { type: 'string', default: '0' },
      python: { type: 'string' },
      'no-sklearn': { type: 'boolean', default: false },
      keep: { type: 'string' },
    },
  });
  return {
    n: Number(v.n),
    dim: Number(v.dim),
    clusters: Number(v.clusters),
    spread: Number(v.spread),
    seed: Number(v.seed),
    python: v.python,
    sklearn: !v['no-sklearn'],
    keep: v.keep,
  };
}

/**
 * Cluster centres from N(0, I), points = centre + spread * N(0, I). With 128 dimensions the
 * centres are about 16 apart and a cluster's radius is about 11 * spread; the spread sets how
 * much the clusters' fringes mix, hence the trustworthiness ceiling (1.68: sklearn ~0.945; 1.6: 0.951, 1.7: 0.944).
 */
function makeData(a: Args): { x: Float32Array; labels: Int32Array } {
  const rng = new Rng(a.seed);
  const centres = Float32Array.from({ length: a.clusters * a.dim }, () => rng.normal());
  const x = new Float32Array(a.n * a.dim);
  const labels = new Int32Array(a.n);
  for (let i = 0; i < a.n; i++) {
    const c = i % a.clusters;
    labels[i] = c;
    for (let d = 0; d < a.dim; d++) x[i * a.dim + d] = centres[c * a.dim + d]! + a.spread * rng.normal();
  }
  return { x, labels };
}

interface Row {
  name: string;
  wall: number;
  cpu: number;
  trust: number;
}

function findPython(preferred: string | undefined): string | undefined {
  const candidates = preferred ? [preferred] : ['python3', '/usr/bin/python3'];
  for (const py of candidates) {
    const r = spawnSync(py, ['-c', 'import sklearn'], { stdio: 'ignore' });
    if (r.status === 0) return py;
  }
  return undefined;
}

const SKLEARN = `
import sys, time, json, resource
import numpy as np
from sklearn.manifold import TSNE
import sklearn
x = np.load(sys.argv[1])
t0 = time.perf_counter(); c0 = time.process_time()
y = TSNE(n_components=2, perplexity=30, init='pca', method='barnes_hut', n_jobs=2,
         random_state=0).fit_transform(x)
wall = time.perf_counter() - t0; cpu = time.process_time() - c0
np.save(sys.argv[2], y.astype(np.float32))
print(json.dumps({"wall": wall, "cpu": cpu, "version": sklearn.__version__}))
`;

async function main(): Promise<void> {
  const a = options(process.argv.slice(2));
  const dir = a.keep ?? mkdtempSync(join(tmpdir(), 'tsne-bench-'));
  const { x } = makeData(a);
  const rows: Row[] = [];

  const c0 = process.cpuUsage();
  const t0 = performance.now();
  const ours = runTsne(x, a.n, a.dim, { perplexity: 30, seed: 0 });
  const wall = (performance.now() - t0) / 1000;
  const cu = process.cpuUsage(c0);
  rows.push({ name: 'siamese-lab runTsne', wall, cpu: (cu.user + cu.system) / 1e6, trust: trustworthiness(x, a.dim, ours, 2, 10) });

  let note = '';
  if (a.sklearn) {
    const py = findPython(a.python);
    if (!py) {
      note = 'scikit-learn reference: UNAVAILABLE (no python3 here imports sklearn; apt-get install python3-sklearn)';
    } else {
      const inPath = join(dir, 'x.npy');
      const outPath = join(dir, 'sklearn.npy');
      await writeNpy(inPath, { dtype: 'float32', shape: [a.n, a.dim], data: x });
      const r = spawnSync(py, ['-c', SKLEARN, inPath, outPath], { encoding: 'utf8', maxBuffer: 1 << 24 });
      if (r.status !== 0) {
        note = `scikit-learn reference: FAILED (${py}): ${(r.stderr || '').trim().split('\n').pop()}`;
      } else {
        const info = JSON.parse(r.stdout.trim().split('\n').pop()!) as { wall: number; cpu: number; version: string };
        const y = await readNpyFloat32Matrix(outPath);
        rows.push({ name: `sklearn ${info.version} TSNE, n_jobs=2`, wall: info.wall, cpu: info.cpu, trust: trustworthiness(x, a.dim, y.data, 2, 10) });
      }
    }
  } else {
    note = 'scikit-learn reference: skipped (--no-sklearn)';
  }
  if (!a.keep) rmSync(dir, { recursive: true, force: true });

  const cpu = readFileSync('/proc/cpuinfo', 'utf8').match(/model name\s*:\s*(.*)/)?.[1] ?? cpus()[0]?.model ?? 'unknown';
  console.log(`t-SNE benchmark: ${a.n} points x ${a.dim} dims, ${a.clusters} Gaussian clusters (spread ${a.spread}, seed ${a.seed}), perplexity 30, 1000 iterations`);
  console.log(`machine: ${cpu}, ${cpus().length} cores; node ${process.version}; ${new Date().toISOString()}; load average at the end ${loadavg().map((l) => l.toFixed(1)).join(' ')}`);
  console.log(`command: node --import tsx bench/tsne.ts ${process.argv.slice(2).join(' ')}`.trimEnd());
  console.log('');
  console.log('| implementation | wall s | CPU s | trustworthiness@10 |');
  console.log('|---|---|---|---|');
  for (const r of rows) console.log(`| ${r.name} | ${r.wall.toFixed(1)} | ${r.cpu.toFixed(1)} | ${r.trust.toFixed(4)} |`);
  if (note) console.log(`\n${note}`);
  if (rows.length === 2) {
    const [o, s] = rows as [Row, Row];
    console.log(`\ntrustworthiness difference (ours - sklearn): ${(o.trust - s.trust).toFixed(4)}; wall-time ratio (ours / sklearn): ${(o.wall / s.wall).toFixed(2)}`);
  }
}

await main();
