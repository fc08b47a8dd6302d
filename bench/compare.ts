/**
 * Benchmark "compare in parallel": the same small grid of losses x seeds with 1 worker thread and
 * with 2, wall time and CPU time of each, and the ratio. The goal: 2 workers take at most 0.6 of
 * the time of 1 (the runs are independent, so on 2 free cores the ideal is 0.5).
 *
 *   node --import tsx bench/compare.ts [--losses contrastive,yukawa] [--seeds 2] [--epochs 2]
 *                                      [--train-pairs 20000] [--rounds 1] [--engine auto|tfjs|native]
 *                                      [--no-retrieval] [--keep DIR]
 *   npm run bench:compare
 *
 * Each measurement trains the whole grid into a fresh directory (no t-SNE, no report), so it
 * includes what a user waits for: worker start-up, training, the final evaluation of each run.
 * With 1 worker a run may use every core through the native engine's own threads; with 2,
 * each run takes one thread. Rounds alternate the order (1, 2, then 2, 1, ...) so that a change
 * in the machine's load weighs on both. CPU time is the whole process's, workers included: on a
 * shared machine other jobs inflate wall time, CPU time much less.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { availableParallelism, cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import type { EngineChoice } from '../src/engine/engine.ts';
import { runCompare } from '../src/experiments/compare.ts';

interface Args {
  losses: string;
  seeds: number;
  epochs: number;
  trainPairs: number;
  rounds: number;
  engine: EngineChoice | undefined;
  retrieval: boolean;
  keep: string | undefined;
}

function options(argv: string[]): Args {
  const { values: v } = parseArgs({
    args: argv,
    options: {
      losses: { type: 'string', default: 'contrastive,yukawa' },
      seeds: { type: 'string', default: '2' },
      epochs: { type: 'string', default: '2' },
      'train-pairs': { type: 'string', default: '20000' },
      rounds: { type: 'string', default: '1' },
      engine: { type: 'string' },
      'no-retrieval': { type: 'boolean', default: false },
      keep: { type: 'string' },
    },
  });
  return {
    losses: v.losses,
    seeds: Number(v.seeds),
    epochs: Number(v.epochs),
    trainPairs: Number(v['train-pairs']),
    rounds: Number(v.rounds),
    engine: v.engine as EngineChoice | undefined,
    retrieval: !v['no-retrieval'],
    keep: v.keep,
  };
}

function cpuModel(): string {
  try {
    const m = /^model name\s*:\s*(.+)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'));
    if (m?.[1]) return m[1].trim();
  } catch {
    // not Linux
  }
  return cpus()[0]?.model ?? 'unknown';
}

async function measure(a: Args, workers: number, root: string, round: number): Promise<{ wall: number; cpu: number; runs: number }> {
  const out = join(root, `round${round}-workers${workers}`);
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const o = await runCompare({
    losses: a.losses,
    seeds: a.seeds,
    epochs: a.epochs,
    trainPairs: a.trainPairs,
    workers,
    out,
    tsnePoints: 0,
    retrieval: a.retrieval,
    engine: a.engine,
  });
  const wall = (performance.now() - t0) / 1000;
  const c = process.cpuUsage(cpu0);
  if (o.status !== 'finished' || o.failures.length > 0) {
    throw new Error(`the grid did not finish: ${o.failures.map((f) => `${f.key}: ${f.message}`).join('; ') || o.status}`);
  }
  return { wall, cpu: (c.user + c.system) / 1e6, runs: o.trained.length };
}

async function main(): Promise<void> {
  const a = options(process.argv.slice(2));
  const root = a.keep ?? mkdtempSync(join(tmpdir(), 'bench-compare-'));
  const runs = a.losses.split(',').length * a.seeds;
  console.log(`bench compare: ${new Date().toISOString()}`);
  console.log(`machine: ${cpuModel()}, ${availableParallelism()} cores, node ${process.version}, load ${loadavg().map((x) => x.toFixed(2)).join(' ')}`);
  console.log(
    `grid: ${a.losses} x ${a.seeds} seeds = ${runs} runs, ${a.epochs} epochs on ${a.trainPairs} train pairs, ` +
      `engine ${a.engine ?? 'auto'}, retrieval ${a.retrieval ? 'on' : 'off'}`,
  );
  const results: Record<1 | 2, { wall: number; cpu: number }[]> = { 1: [], 2: [] };
  try {
    for (let r = 0; r < a.rounds; r++) {
      for (const w of (r % 2 === 0 ? [1, 2] : [2, 1]) as (1 | 2)[]) {
        const m = await measure(a, w, root, r);
        results[w].push(m);
        console.log(`  round ${r + 1}, ${w} worker${w === 1 ? ' ' : 's'}: ${m.wall.toFixed(1)} s wall, ${m.cpu.toFixed(1)} s CPU (${m.runs} runs)`);
      }
    }
  } finally {
    if (!a.keep) rmSync(root, { recursive: true, force: true });
  }
  const med = (xs: number[]): number => [...xs].sort((x, y) => x - y)[Math.floor((xs.length - 1) / 2)]!;
  const w1 = med(results[1].map((m) => m.wall));
  const w2 = med(results[2].map((m) => m.wall));
  const ratio = w2 / w1;
  console.log('');
  console.log('| workers | wall s (median) | CPU s (median) |');
  console.log('|---|---|---|');
  console.log(`| 1 | ${w1.toFixed(1)} | ${med(results[1].map((m) => m.cpu)).toFixed(1)} |`);
  console.log(`| 2 | ${w2.toFixed(1)} | ${med(results[2].map((m) => m.cpu)).toFixed(1)} |`);
  console.log('');
  console.log(`ratio 2 workers / 1 worker: ${ratio.toFixed(2)} (goal <= 0.60: ${ratio <= 0.6 ? 'met' : 'NOT met'}); load after: ${loadavg().map((x) => x.toFixed(2)).join(' ')}`);
}

await main();
