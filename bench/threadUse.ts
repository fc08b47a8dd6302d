/**
 * Which threads a training at `--threads 1` keeps busy: per loss and engine, processor time
 * (process.cpuUsage(), every thread) against wall time over a window of steps, and the
 * processor time of each OS thread of the process (Linux: /proc/self/task/<tid>/schedstat,
 * nanoseconds), the main thread apart from the others. A ratio above 1 means some thread other
 * than the training's own worked meanwhile.
 *
 *   npm run bench:threads                          # every loss below, native and TF.js
 *   npm run bench:threads -- --engine native --loss triplet:semihard
 *   npm run bench:threads -- --node-flags=--single-threaded   # V8 without its helper threads
 *   npm run bench:threads -- --engine tfjs --from 300          # the steady window from step 301
 *   npm run bench:threads -- --calibrate   # also the sweep's calibration of these losses, warm-up 4 and 20
 *   npm run bench:threads -- --engine none --calibrate --rounds 3   # only the calibration, 3 rounds of each
 *
 * Two windows per training: steps 5 to 12 of the first epoch (the sweep estimate's calibration
 * timed these until 2026-12-06: src/experiments/estimate.ts) and the steady state (steps 51 on;
 * TF.js 10 or 60 steps, native 300). A second table gives one step's processor time as the
 * estimate takes it (the median of the timed steps) with the old warm-up of 4 steps and the
 * current one, against the steady state's median. "Cores busy" is the process's processor time
 * over its main thread's: what the training kept busy whatever the load (on a loaded machine
 * processor over wall time falls below 1 while a thread waits for a core). Each training runs in a
 * child process of its own, so one's compiled code and heap do not carry into the next.
 * Wall-clock figures swing with the machine's load; processor time per thread does not.
 */
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { stepCost as calibratedStep, TIMED_STEPS, WARMUP_STEPS } from '../src/experiments/estimate.ts';

interface Case {
  loss: string;
  miner?: string;
  engine: 'native' | 'tfjs';
}

interface Window {
  name: string;
  from: number;
  to: number;
}

interface WindowResult {
  window: string;
  steps: number;
  wallMs: number;
  cpuMs: number;
  mainMs: number;
  /** processor ms of every other thread that ran, by tid */
  others: Record<string, number>;
}

interface ChildResult {
  case: Case;
  /** one step's processor ms as the sweep estimate takes it: the median of steps 5-12 (before 2026-12-06), of steps 21-28 (now), of the steady window */
  stepCost: { old: number; now: number; steady: number };
  threadsAtStart: number;
  threadsAtEnd: number;
  engineThreads: number;
  windows: WindowResult[];
}

const LOSSES: Omit<Case, 'engine'>[] = [
  { loss: 'contrastive' },
  { loss: 'triplet' },
  { loss: 'triplet', miner: 'semihard' },
  { loss: 'triplet', miner: 'batch-hard' },
  { loss: 'triplet', miner: 'batch-all' },
  { loss: 'multi-similarity' },
];

/** Processor ns of every thread of this process, by tid (a thread that ended is gone). */
export function threadTimes(): Map<number, number> {
  const out = new Map<number, number>();
  for (const t of readdirSync('/proc/self/task')) {
    try {
      out.set(Number(t), Number(readFileSync(`/proc/self/task/${t}/schedstat`, 'utf8').split(' ')[0]));
    } catch {
      // the thread ended between the listing and the read
    }
  }
  return out;
}

const processCpuMs = (): number => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
};

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

const caseName = (c: Case): string => `${c.loss}${c.miner ? `:${c.miner}` : ''}`;

async function child(c: Case, from: number, steadySteps: number): Promise<ChildResult> {
  const { loadMnist } = await import('../src/data/mnist.ts');
  const { initBackend } = await import('../src/engine/backend.ts');
  const { resolveConfig } = await import('../src/train/config.ts');
  const { Training } = await import('../src/train/trainer.ts');
  await initBackend('wasm');
  const ds = await loadMnist();
  const threadsAtStart = threadTimes().size;
  const t = new Training(ds, resolveConfig({ loss: c.loss, miner: c.miner, engine: c.engine, threads: 1, batchSize: 128, seed: 0 }));
  const windows: Window[] = [
    { name: 'steps 5-12, the old calibration', from: 4, to: 12 },
    { name: `steps ${from + 1}-${from + steadySteps}`, from, to: from + steadySteps },
  ];
  const marks = new Map<number, { wall: number; cpu: number; threads: Map<number, number> }>();
  const last = Math.max(...windows.map((w) => w.to));
  const stop = new AbortController();
  // process processor ms before the first step and after each: the estimate's clock
  const readings = [processCpuMs()];
  const mark = (b: number): void => {
    if (!windows.some((w) => w.from === b || w.to === b)) return;
    const u = process.cpuUsage();
    marks.set(b, { wall: performance.now(), cpu: (u.user + u.system) / 1000, threads: threadTimes() });
  };
  // a class-balanced epoch of MNIST has about 470 batches: enough for both windows
  t.runEpoch(
    (b) => {
      readings.push(processCpuMs());
      mark(b.batch);
      if (b.batch >= last) stop.abort();
    },
    { signal: stop.signal },
  );
  const results = windows
    .filter((w) => marks.has(w.from) && marks.has(w.to))
    .map((w): WindowResult => {
      const a = marks.get(w.from)!;
      const b = marks.get(w.to)!;
      const others: Record<string, number> = {};
      for (const [tid, ns] of b.threads) {
        const ms = (ns - (a.threads.get(tid) ?? 0)) / 1e6;
        if (tid !== process.pid && ms > 0) others[String(tid - process.pid)] = ms;
      }
      // The main thread's figure is the process's less the others': a running thread's own
      // schedstat lags by up to a scheduler tick (milliseconds: a whole window of short steps),
      // while the others are read from outside, where it is current, and process.cpuUsage() is exact.
      const cpuMs = b.cpu - a.cpu;
      const mainMs = cpuMs - Object.values(others).reduce((x, y) => x + y, 0);
      return { window: w.name, steps: w.to - w.from, wallMs: b.wall - a.wall, cpuMs, mainMs, others };
    });
  const steps = readings.slice(1).map((x, k) => x - readings[k]!);
  const stepCost = { old: median(steps.slice(4, 12)), now: calibratedStep(readings.slice(0, WARMUP_STEPS + TIMED_STEPS + 1)), steady: median(steps.slice(from)) };
  const res: ChildResult = { case: c, stepCost, threadsAtStart, threadsAtEnd: threadTimes().size, engineThreads: t.engine.threads, windows: results };
  t.dispose();
  return res;
}

const args = process.argv.slice(2);
const value = (f: string): string | undefined => {
  const i = args.indexOf(f);
  return i >= 0 ? args[i + 1] : undefined;
};

/** The sweep estimate's calibration of every loss above (native engine where built) at one thread, warming up `warmup` steps. */
async function calibrateChild(warmup: number): Promise<{ step: Record<string, number>; cpuSeconds: number; wallSeconds: number }> {
  const { loadMnist } = await import('../src/data/mnist.ts');
  const { initBackend } = await import('../src/engine/backend.ts');
  const { resolveConfig } = await import('../src/train/config.ts');
  const { calibrate } = await import('../src/experiments/estimate.ts');
  await initBackend('wasm');
  const ds = await loadMnist();
  const losses = LOSSES.map((l) => ({ id: caseName({ ...l, engine: 'native' }), config: resolveConfig({ loss: l.loss, miner: l.miner, batchSize: 128, seed: 0 }) }));
  const c0 = processCpuMs();
  const w0 = performance.now();
  const costs = await calibrate(ds, losses, 1, 0, warmup);
  return { step: { ...costs.step }, cpuSeconds: (processCpuMs() - c0) / 1000, wallSeconds: (performance.now() - w0) / 1000 };
}

if (value('--calibrate-child')) {
  process.stdout.write(JSON.stringify(await calibrateChild(Number(value('--calibrate-child')))) + '\n');
} else if (value('--child')) {
  const c = JSON.parse(value('--child')!) as Case;
  const r = await child(c, Number(value('--from')), Number(value('--steps')));
  process.stdout.write(JSON.stringify(r) + '\n');
} else {
  const engines = (value('--engine') ?? 'native,tfjs').split(',').filter((e) => e !== 'none') as Case['engine'][];
  const only = value('--loss');
  const nodeFlags = args.filter((a) => a.startsWith('--node-flags=')).map((a) => a.slice('--node-flags='.length));
  const cases: Case[] = [];
  for (const engine of engines) for (const l of LOSSES) if (!only || only === caseName({ ...l, engine })) cases.push({ ...l, engine });
  const log = (s = ''): void => void process.stdout.write(s + '\n');
  log(`# processor time against wall time, one training at --threads 1${nodeFlags.length ? ` (node ${nodeFlags.join(' ')})` : ''}`);
  log('');
  log('| engine | loss | window | wall ms/step | CPU ms/step | CPU/wall | main thread ms/step | cores busy | other threads ms/step (busiest: tid-pid ms) | threads start/end |');
  log('|---|---|---|---|---|---|---|---|---|---|');
  // where the steady window starts (a class-balanced epoch of MNIST has about 470 batches)
  const from = Number(value('--from') ?? 50);
  const self = fileURLToPath(import.meta.url);
  const costs: string[] = [];
  for (const c of cases) {
    // TF.js's batch-all takes half a second a step
    const steps = c.engine === 'native' ? 300 : c.miner === 'batch-all' ? 10 : 60;
    const r = spawnSync(process.execPath, [...nodeFlags, '--import', 'tsx', self, '--child', JSON.stringify(c), '--from', String(from), '--steps', String(steps)], {
      encoding: 'utf8',
      maxBuffer: 1 << 20,
    });
    if (r.status !== 0) {
      log(`| ${c.engine} | ${caseName(c)} | failed: ${(r.stderr || '').trim().split('\n').at(-1)} |`);
      continue;
    }
    const res = JSON.parse(r.stdout.trim().split('\n').at(-1)!) as ChildResult;
    const k = res.stepCost;
    costs.push(`| ${c.engine} | ${caseName(c)} | ${k.old.toFixed(2)} | ${k.now.toFixed(2)} | ${k.steady.toFixed(2)} |`);
    for (const w of res.windows) {
      const other = Object.values(w.others).reduce((a, b) => a + b, 0);
      const busiest = Object.entries(w.others)
        .sort((a, b) => b[1] - a[1])
        .slice(0, 3)
        .map(([tid, ms]) => `${tid}: ${ms.toFixed(1)}`)
        .join(', ');
      const f = (x: number): string => (x / w.steps).toFixed(2);
      log(
        `| ${c.engine} | ${caseName(c)} | ${w.window} | ${f(w.wallMs)} | ${f(w.cpuMs)} | ${(w.cpuMs / w.wallMs).toFixed(2)} | ${f(w.mainMs)} | ${(w.cpuMs / w.mainMs).toFixed(2)} | ${f(other)}${busiest ? ` (${busiest})` : ''} | ${res.threadsAtStart}/${res.threadsAtEnd} |`,
      );
    }
  }
  log('');
  log(`# one step's processor ms as the sweep estimate calibrates it (median of the steps after the warm-up)`);
  log('');
  log(`| engine | loss | steps 5-12 (warm-up 4, before) | steps ${WARMUP_STEPS + 1}-${WARMUP_STEPS + TIMED_STEPS} (now) | steps ${from + 1} on (steady) |`);
  log('|---|---|---|---|---|');
  for (const line of costs) log(line);
  if (args.includes('--calibrate')) {
    // fresh processes, alternating, so that a change of the machine's load falls on both
    const rounds = Number(value('--rounds') ?? 1);
    const order = Array.from({ length: rounds }, () => [4, WARMUP_STEPS]).flat();
    const runs = order.map((w) => {
      const r = spawnSync(process.execPath, [...nodeFlags, '--import', 'tsx', self, '--calibrate-child', String(w)], { encoding: 'utf8', maxBuffer: 1 << 20 });
      if (r.status !== 0) throw new Error(`calibration failed: ${(r.stderr || '').trim().split('\n').at(-1)}`);
      return { warmup: w, ...(JSON.parse(r.stdout.trim().split('\n').at(-1)!) as Awaited<ReturnType<typeof calibrateChild>>) };
    });
    log('');
    log(`# the sweep's calibration (src/experiments/estimate.ts calibrate(), one thread, every loss in one process): one step's processor ms`);
    log('');
    log(`| loss | ${runs.map((r) => `warm-up ${r.warmup}`).join(' | ')} |`);
    // the runs in their order: warm-up 4, 20, 4, 20, ...
    log(`|---|${runs.map(() => '---|').join('')}`);
    for (const id of Object.keys(runs[0]!.step)) log(`| ${id} | ${runs.map((r) => (r.step[id]! * 1000).toFixed(2)).join(' | ')} |`);
    log(`| (the whole calibration, processor / wall s) | ${runs.map((r) => `${r.cpuSeconds.toFixed(2)} / ${r.wallSeconds.toFixed(2)}`).join(' | ')} |`);
  }
}
