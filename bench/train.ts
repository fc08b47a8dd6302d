/**
 * Training speed of the seed's model (MLP 784-128-128-128, contrastive, RMSprop, batch 128 pairs
 * on MNIST): steady-state pairs per second and per CPU-second for the TF.js engine, the native
 * engine on one thread and on every core (with its first layer's sparse path, the default on
 * MNIST, and with its dense path; on two cores also with each schedule of two threads forced,
 * roles with each of its stores, and without the next step's first layer run ahead), with the
 * cores' round trip before each round; embedding images per second; RSS per epoch; where the
 * time of a step goes; and, where Python has PyTorch, PyTorch with one thread side by side.
 *
 *   npm run bench                      # about a minute
 *   npm run bench -- --quick           # fewer steps, one epoch for RSS, no profile
 *   npm run bench -- --epochs 5 --json bench.json --no-torch
 *   npm run bench -- --rounds 9         # more alternating 1-thread / all-core rounds (default 5)
 *   npm run bench -- --base cnn         # the CNN base instead: native 1 and 2 threads, TF.js, PyTorch
 *   npm run bench -- --only batch-losses  # only the batch losses' host time against the native step
 *
 * Wall-clock figures swing with whatever else runs on the machine (the load average is printed);
 * pairs per CPU-second are the steady figure.
 */
import { writeFileSync } from 'node:fs';
import { availableParallelism, cpus, loadavg } from 'node:os';
import { Worker } from 'node:worker_threads';
import { loadMnist } from '../src/data/mnist.ts';
import { initBackend } from '../src/engine/backend.ts';
import { tf } from '../src/engine/tfjs.ts';
import { NativeMlp, nativeStatus } from '../src/engine/native.ts';
import { backpropDistances, pairLossGrad, rowDistances, tfPairLossGrad } from '../src/engine/lossTail.ts';
import { createLoss } from '../src/losses/registry.ts';
import type { PairLoss } from '../src/losses/types.ts';
import { mlpNetwork } from '../src/model/mlp.ts';
import { Rng } from '../src/rng.ts';
import { startTsWorker } from '../src/experiments/pool.ts';
import { BATCH_LOSSES, batchLossOverhead, formatOverhead } from './batchLosses.ts';
import { coreRoundTripNs } from './cores.ts';
import { resolveConfig } from '../src/train/config.ts';
import { Training } from '../src/train/trainer.ts';
import { BENCH_CONFIG, cpuMs, pooled, quantile, throughput, type Throughput } from './throughput.ts';
import { cnnBench } from './cnn.ts';
import { torchReference } from './torch.ts';

const args = process.argv.slice(2);
const flag = (f: string): boolean => args.includes(f);
const value = (f: string): string | undefined => {
  const i = args.indexOf(f);
  return i >= 0 ? args[i + 1] : undefined;
};
const quick = flag('--quick');
const epochs = Number(value('--epochs') ?? (quick ? 1 : 3));
const jsonOut = value('--json');

const mb = (b: number): number => Math.round(b / 2 ** 20);
const fmt = (x: number): string => Math.round(x).toLocaleString('en-US');
const log = (s = ''): void => void process.stdout.write(s + '\n');

await initBackend('wasm');
const ds = await loadMnist();
const cores = availableParallelism();
const machine = {
  cpu: cpus()[0]?.model ?? 'unknown',
  cores,
  node: process.version,
  date: new Date().toISOString(),
  loadAverageAtStart: loadavg().map((x) => Number(x.toFixed(2))),
  native: nativeStatus(),
};
log(`# siamese-lab training benchmark`);
log(`machine: ${machine.cpu}, ${cores} cores, Node ${machine.node}, ${machine.date}`);
log(`load average at start: ${machine.loadAverageAtStart.join(' ')} (wall-clock figures swing with it; per-CPU-second ones do not)`);
log(`native engine: ${machine.native.available ? machine.native.detail : `not available (${machine.native.detail})`}`);
log();

if (value('--base') === 'cnn') {
  // the CNN base alone (bench/cnn.ts)
  // how much of a second core this process gets, before and after (the two-thread figure's context)
  const capacity = async (): Promise<number> => (cores > 1 ? await parallelCapacity(2) : 1);
  const before = await capacity();
  const r = cnnBench(ds, { steps: quick ? 20 : 80, rounds: quick ? 1 : 2, nativeAvailable: machine.native.available, torch: !flag('--no-torch'), log });
  const after = await capacity();
  log(`parallel capacity: two threads of plain arithmetic ran ${before.toFixed(2)}x as fast as one before, ${after.toFixed(2)}x after (2.00x = two idle cores)`);
  if (jsonOut) writeFileSync(jsonOut, JSON.stringify({ machine, parallelCapacity: { before, after }, cnn: r }, null, 2) + '\n');
  process.exit(0);
}

if (value('--only') === 'batch-losses') {
  // the batch losses' section alone (bench/batchLosses.ts)
  const batchLosses = batchLossRows();
  batchLossSection(batchLosses);
  if (!machine.native.available) log('native engine not available: no batch-loss section');
  if (jsonOut) writeFileSync(jsonOut, JSON.stringify({ machine, batchLosses }, null, 2) + '\n');
  process.exit(0);
}

/**
 * each batch loss with the addon's kernels, then with the TypeScript products (the kernels taken
 * out), on the seed's MLP and on the CNN base (a CNN step costs ~40 MLP steps: fewer of them)
 */
function batchLossRows(): ReturnType<typeof batchLossOverhead> {
  if (!machine.native.available) return [];
  const mlp = { steps: quick ? 30 : 100, warm: quick ? 10 : 30, base: 'mlp' } as const;
  const cnn = { steps: quick ? 10 : 30, warm: quick ? 3 : 10, base: 'cnn' } as const;
  return [mlp, cnn].flatMap((o) => [...batchLossOverhead(ds, BATCH_LOSSES, o), ...batchLossOverhead(ds, BATCH_LOSSES, { ...o, reference: true })]);
}

function batchLossSection(rows: ReturnType<typeof batchLossOverhead>): void {
  if (!rows.length) return;
  log(`## Batch losses: host time per step against the native step (native engine, 1 thread, MLP and CNN bases; bar: at most 10%)`);
  log();
  for (const line of formatOverhead(rows)) log(line);
  log();
}

function embedSpeed(engine: 'tfjs' | 'native', threads: number, reps: number): { imagesPerSecond: number; imagesPerCpuSecond: number } {
  const t = new Training(ds, resolveConfig({ ...BENCH_CONFIG, engine, threads, epochs: 0 }));
  t.embed(ds.test);
  const w0 = performance.now();
  const c0 = cpuMs();
  for (let i = 0; i < reps; i++) t.embed(ds.test);
  const wall = (performance.now() - w0) / 1000;
  const cpu = (cpuMs() - c0) / 1000;
  t.dispose();
  return { imagesPerSecond: (reps * ds.test.n) / wall, imagesPerCpuSecond: (reps * ds.test.n) / cpu };
}

/**
 * How many cores this process really gets right now: plain arithmetic on 1 worker thread, then on
 * `cores` at once (each doing the same work). 2.0x on two idle cores; near 1.0x when other
 * processes (or other virtual machines on the host) hold the second core.
 */
async function parallelCapacity(n: number): Promise<number> {
  const code = `const { parentPort } = require('node:worker_threads');
    let x = 1; const t = performance.now(); for (let i = 0; i < 6e7; i++) x = x * 1.0000001 + 1e-9;
    parentPort.postMessage(performance.now() - t + (x > 0 ? 0 : 1));`;
  const run = async (k: number): Promise<number> => {
    const t0 = performance.now();
    await Promise.all(Array.from({ length: k }, () => new Promise((ok) => new Worker(code, { eval: true }).once('message', ok))));
    return performance.now() - t0;
  };
  const one = Math.min(await run(1), await run(1));
  const many = await run(n);
  return (n * one) / many;
}

const capacityBefore = cores > 1 ? await parallelCapacity(cores) : 1;
log(`parallel capacity now: ${cores} threads of plain arithmetic run ${capacityBefore.toFixed(2)}x as fast as one (${cores}.00x = idle cores)`);
log();

// ---------------------------------------------------------------------------------------------
const rows: Throughput[] = [];
const tfSteps = quick ? 20 : 60;
const natSteps = quick ? 150 : 400;
// The machine's speed drifts (other virtual machines share the host): one thread and every core
// are measured in alternating rounds, and the speedup is taken round by round.
const rounds = Math.max(1, Number(value('--rounds') ?? (quick ? 1 : 5)));
const ratios: number[] = [];
const ratiosDense: number[] = [];
// the cores' distance, measured before each round: the speedup of one training over cores follows it
const roundTrips: number[] = [];
// A run's first steps are slower (2x and more over its first 50 to 150 steps here), and on two
// threads auto mode times its two schedules from step 200 to 248: neither is measured.
const nativeWarm = quick ? 260 : 300;
// two threads in each schedule, forced, beside auto mode's choice (sparse path, two cores)
const ratiosSplit: number[] = [];
const ratiosRoles: number[] = [];
const ratiosRolesPlain: number[] = [];
const ratiosRolesStreamed: number[] = [];
const ratiosNoAhead: number[] = [];
rows.push(throughput(ds, 'tfjs', 1, 10, tfSteps));
if (machine.native.available) {
  // the first layer's sparse path (the default on MNIST) and its dense path (what input without
  // zeros gets), each on one thread and on every core
  const runs = {
    one: [] as Throughput[],
    all: [] as Throughput[],
    split: [] as Throughput[],
    roles: [] as Throughput[],
    rolesPlain: [] as Throughput[],
    rolesStreamed: [] as Throughput[],
    noAhead: [] as Throughput[],
    oneDense: [] as Throughput[],
    allDense: [] as Throughput[],
  };
  for (let r = 0; r < rounds; r++) {
    if (cores > 1) roundTrips.push(await coreRoundTripNs());
    runs.one.push(throughput(ds, 'native', 1, nativeWarm, natSteps));
    if (cores > 1) {
      runs.all.push(throughput(ds, 'native', cores, nativeWarm, natSteps));
      ratios.push(runs.all[r]!.pairsPerSecond / runs.one[r]!.pairsPerSecond);
    }
    if (cores === 2) {
      runs.split.push(throughput(ds, 'native', 2, nativeWarm, natSteps, 'auto', 'split'));
      ratiosSplit.push(runs.split[r]!.pairsPerSecond / runs.one[r]!.pairsPerSecond);
      runs.roles.push(throughput(ds, 'native', 2, nativeWarm, natSteps, 'auto', 'roles'));
      ratiosRoles.push(runs.roles[r]!.pairsPerSecond / runs.one[r]!.pairsPerSecond);
      // roles with each way of handing rows over forced (auto mode times both)
      runs.rolesPlain.push(throughput(ds, 'native', 2, nativeWarm, natSteps, 'auto', 'roles', true, 'plain'));
      ratiosRolesPlain.push(runs.rolesPlain[r]!.pairsPerSecond / runs.one[r]!.pairsPerSecond);
      runs.rolesStreamed.push(throughput(ds, 'native', 2, nativeWarm, natSteps, 'auto', 'roles', true, 'streamed'));
      ratiosRolesStreamed.push(runs.rolesStreamed[r]!.pairsPerSecond / runs.one[r]!.pairsPerSecond);
      // auto mode without the next step's first layer run ahead
      runs.noAhead.push(throughput(ds, 'native', 2, nativeWarm, natSteps, 'auto', 'auto', false));
      ratiosNoAhead.push(runs.noAhead[r]!.pairsPerSecond / runs.one[r]!.pairsPerSecond);
    }
    runs.oneDense.push(throughput(ds, 'native', 1, nativeWarm, natSteps, 'dense'));
    if (cores > 1) {
      runs.allDense.push(throughput(ds, 'native', cores, nativeWarm, natSteps, 'dense'));
      ratiosDense.push(runs.allDense[r]!.pairsPerSecond / runs.oneDense[r]!.pairsPerSecond);
    }
  }
  for (const k of ['one', 'all', 'split', 'roles', 'rolesPlain', 'rolesStreamed', 'noAhead', 'oneDense', 'allDense'] as const)
    if (runs[k].length) rows.push(pooled(runs[k]));
}

const torchSteps = quick ? 100 : 300;
const noTorch = flag('--no-torch');
const torch = noTorch ? { unavailable: 'skipped (--no-torch)' } : torchReference(1, torchSteps);
const torchLoose = noTorch || 'unavailable' in torch ? null : torchReference(1, torchSteps, { pinBlas: false });
const torch2 = noTorch || 'unavailable' in torch || cores < 2 ? null : torchReference(cores, torchSteps);

log(`## Training throughput (MNIST, contrastive, RMSprop, batch 128 pairs; steady state)`);
log();
log(`| engine | threads | steps | pairs/s (wall) | pairs per CPU-second | ms/step (wall, mean) | median / fastest-10% step ms | CPU ms/step |`);
log(`|---|---|---|---|---|---|---|---|`);
for (const r of rows) {
  log(`| ${r.engine} | ${r.threads} | ${r.steps} | ${fmt(r.pairsPerSecond)} | ${fmt(r.pairsPerCpuSecond)} | ${r.msPerStep.toFixed(2)} | ${r.medianStepMs.toFixed(2)} / ${r.p10StepMs.toFixed(2)} | ${r.cpuMsPerStep.toFixed(2)} |`);
}
if ('unavailable' in torch) {
  log(`| PyTorch reference | 1 | - | unavailable: ${torch.unavailable} | | | | |`);
} else {
  const row = (label: string, r: Record<string, unknown>): void => {
    const pps = r['pairsPerSecond'] as number;
    const ppc = r['pairsPerCpuSecond'] as number;
    log(`| ${label} | ${String(r['threads'])} | ${String(r['steps'])} | ${fmt(pps)} | ${fmt(ppc)} | ${((128 / pps) * 1000).toFixed(2)} | | ${((128 / ppc) * 1000).toFixed(2)} |`);
  };
  row(`PyTorch ${String(torch['torch'])}, ${String(torch['blas'])}, BLAS pinned to 1 thread`, torch);
  if (torchLoose && !('unavailable' in torchLoose)) row(`PyTorch, torch.set_num_threads(1) only (OpenBLAS spins a 2nd thread)`, torchLoose);
  if (torch2 && !('unavailable' in torch2)) row(`PyTorch, ${cores} threads`, torch2);
}
log();
const tfRow = rows[0]!;
const nativeRow = (engine: string, many: boolean): Throughput | undefined =>
  rows.find((r) => r.engine === engine && (many ? r.threads > 1 : r.threads === 1));
const n1 = nativeRow('native', false);
const nAll = nativeRow('native', true);
if (n1) log(`native 1 thread vs TF.js: ${(n1.pairsPerCpuSecond / tfRow.pairsPerCpuSecond).toFixed(1)}x per CPU-second`);
const capacityAfter = cores > 1 ? await parallelCapacity(cores) : 1;
const speedup = (label: string, one: Throughput | undefined, all: Throughput | undefined, perRound: number[]): void => {
  if (!one || !all) return;
  log(
    `${label} ${all.threads} threads vs 1 thread: ${(all.pairsPerSecond / one.pairsPerSecond).toFixed(2)}x wall-clock over all steps; ` +
      `median of ${perRound.length} alternating rounds ${quantile(perRound, 0.5).toFixed(2)}x (rounds: ${perRound.map((x) => x.toFixed(2)).join(', ')}); ` +
      `step time: median ${(one.medianStepMs / all.medianStepMs).toFixed(2)}x, fastest tenth ${(one.p10StepMs / all.p10StepMs).toFixed(2)}x`,
  );
};
speedup('native', n1, nAll, ratios);
speedup('native, split schedule forced,', n1, nativeRow('native, split schedule', true), ratiosSplit);
speedup('native, roles forced,', n1, nativeRow('native, roles schedule', true), ratiosRoles);
speedup('native, roles with plain stores forced,', n1, nativeRow('native, roles schedule, plain stores', true), ratiosRolesPlain);
speedup('native, roles with streamed stores forced,', n1, nativeRow('native, roles schedule, streamed stores', true), ratiosRolesStreamed);
speedup('native, no run-ahead,', n1, nativeRow('native, no run-ahead', true), ratiosNoAhead);
speedup('native, dense first layer,', nativeRow('native, dense first layer', false), nativeRow('native, dense first layer', true), ratiosDense);
if (n1 && nAll) {
  log(
    `(parallel capacity ${capacityBefore.toFixed(2)}x before, ${capacityAfter.toFixed(2)}x after: the speedup cannot exceed what the machine gives; ` +
      `the fastest steps are those no other process interrupted)`,
  );
  log(
    `core-to-core round trip before each round: ${roundTrips.map((x) => x.toFixed(0)).join(', ')} ns ` +
      `(the host places the virtual CPUs: the closer they are, the cheaper the data a step exchanges between them)`,
  );
}
if (!('unavailable' in torch)) {
  const ppc = torch['pairsPerCpuSecond'] as number;
  const pps = torch['pairsPerSecond'] as number;
  if (n1) log(`native 1 thread vs PyTorch 1 thread: ${(n1.pairsPerCpuSecond / ppc).toFixed(2)}x per CPU-second, ${(n1.pairsPerSecond / pps).toFixed(2)}x wall-clock`);
  if (nAll) log(`native ${nAll.threads} threads vs PyTorch 1 thread: ${(nAll.pairsPerSecond / pps).toFixed(2)}x wall-clock`);
  const d1 = nativeRow('native, dense first layer', false);
  if (d1) log(`native, dense first layer, 1 thread vs PyTorch 1 thread: ${(d1.pairsPerCpuSecond / ppc).toFixed(2)}x per CPU-second`);
  log(`TF.js vs PyTorch 1 thread: ${(tfRow.pairsPerCpuSecond / ppc).toFixed(2)}x per CPU-second`);
}
log();

// ---------------------------------------------------------------------------------------------
log(`## Embedding the 10,000 test images (no dropout)`);
log();
log(`| engine | threads | images/s (wall) | images per CPU-second |`);
log(`|---|---|---|---|`);
const embeds: Record<string, unknown>[] = [];
for (const [engine, threads, reps] of [['tfjs', 1, quick ? 1 : 2], ['native', 1, quick ? 3 : 10], ['native', cores, quick ? 3 : 10]] as const) {
  if (engine === 'native' && !machine.native.available) continue;
  if (engine === 'native' && threads === cores && cores === 1) continue;
  const e = embedSpeed(engine, threads, reps);
  embeds.push({ engine, threads, ...e });
  log(`| ${engine} | ${threads} | ${fmt(e.imagesPerSecond)} | ${fmt(e.imagesPerCpuSecond)} |`);
}
log();

// ---------------------------------------------------------------------------------------------
const fastEngine = machine.native.available ? 'native' : 'tfjs';
log(`## Memory: full epochs of the ${fastEngine} engine (108,400 pairs + test evaluation each)`);
log();
log(`| epoch | seconds | test accuracy | RSS MB | heap MB | TF.js tensors |`);
log(`|---|---|---|---|---|---|`);
const perEpoch: Record<string, number>[] = [];
{
  const t = new Training(ds, resolveConfig({ ...BENCH_CONFIG, engine: fastEngine, epochs }));
  for (let e = 0; e < epochs; e++) {
    const l = t.runEpoch()!;
    const m = process.memoryUsage();
    perEpoch.push({ epoch: l.epoch, seconds: l.seconds, testAccuracy: l.testAccuracy, rssMB: mb(m.rss), heapMB: mb(m.heapUsed), tensors: tf.memory().numTensors });
    log(`| ${l.epoch} | ${l.seconds.toFixed(1)} | ${(100 * l.testAccuracy).toFixed(2)}% | ${mb(m.rss)} | ${mb(m.heapUsed)} | ${tf.memory().numTensors} |`);
  }
  t.dispose();
}
const peakRss = process.resourceUsage().maxRSS * 1024;
log();
log(`peak RSS of this whole benchmark process: ${mb(peakRss)} MB`);
log();

// ---------------------------------------------------------------------------------------------
// the field's batch losses: their loss and gradient run on the host, beside the native kernels
const batchLosses = batchLossRows();
batchLossSection(batchLosses);

// ---------------------------------------------------------------------------------------------
/** pairs/s of each of n single-thread trainings run at once, each in a worker thread */
async function sideBySide(n: number, steps: number): Promise<number[]> {
  const workers = Array.from({ length: n }, () => startTsWorker(new URL('./sideBySide.ts', import.meta.url), { warm: nativeWarm, steps }));
  await Promise.all(workers.map((w) => new Promise((ok) => w.once('message', ok))));
  const done = workers.map((w) => new Promise<{ pairsPerSecond: number }>((ok) => w.once('message', ok)));
  for (const w of workers) w.postMessage('go');
  const res = await Promise.all(done);
  await Promise.all(workers.map((w) => w.terminate()));
  return res.map((r) => r.pairsPerSecond);
}
// The ceiling two cores give this workload right now: independent trainings share nothing.
let independent: { alone: number; together: number[] } | undefined;
if (machine.native.available && cores > 1) {
  const [alone] = await sideBySide(1, natSteps);
  independent = { alone: alone!, together: await sideBySide(cores, natSteps) };
}
if (independent) {
  const sum = independent.together.reduce((a, b) => a + b, 0);
  log(`## ${cores} independent 1-thread native trainings side by side (worker threads; the ceiling ${cores} cores give this work now)`);
  log();
  log(
    `${independent.together.map(fmt).join(' + ')} pairs/s: ${(sum / independent.alone).toFixed(2)}x one alone (${fmt(independent.alone)} pairs/s); ` +
      `one training on ${cores} threads above: ${quantile(ratios, 0.5).toFixed(2)}x its one-thread speed`,
  );
  log();
}

// ---------------------------------------------------------------------------------------------
let profile: Record<string, number> | undefined;
if (!quick) {
  log(`## Where a step's time goes (CPU microseconds per step of 128 pairs)`);
  log();
  profile = {};
  const time = (name: string, n: number, f: () => void): number => {
    for (let i = 0; i < Math.min(10, n); i++) f();
    const c0 = cpuMs();
    for (let i = 0; i < n; i++) f();
    const us = ((cpuMs() - c0) / n) * 1000;
    profile![name] = Math.round(us);
    return us;
  };
  const rowsIdx = Int32Array.from({ length: 256 }, (_, i) => (i * 211) % ds.train.n);
  const w = mlpNetwork().initWeights(new Rng(0));
  const lines: [string, number][] = [];
  if (machine.native.available) {
    const m = new NativeMlp([784, 128, 128, 128], 0.1, 1);
    m.setWeights(w);
    const emb = new Float32Array(256 * 128);
    const rng = new Rng(1);
    const g = new Float32Array(256 * 128).map(() => (Math.random() - 0.5) * 1e-4);
    const coef = Float32Array.of(0.9, 0.1, 0.001, 1e-7);
    lines.push(['native: forward (gather, 3 layers, dropout masks; sparse first layer on MNIST)', time('nativeForward', 300, () => m.forwardTrain(ds.train.images, 784, rowsIdx, rng, emb))]);
    lines.push(['native: backward (dZ chain, dW, biases) + RMSprop; sparse first layer', time('nativeBackward', 300, () => m.backward(g, 3, coef, true))]);
    const ia = Int32Array.from({ length: 128 }, (_, i) => i);
    const ib = Int32Array.from({ length: 128 }, (_, i) => 128 + i);
    const y = Uint8Array.from({ length: 128 }, (_, i) => i % 2);
    const sq = new Float64Array(128);
    const d = rowDistances(emb, 128, ia, ib, sq);
    const loss = createLoss('contrastive') as PairLoss;
    const closed = pairLossGrad(loss).fn;
    const generic = tfPairLossGrad(loss);
    const gE = new Float32Array(256 * 128);
    const gE64 = new Float64Array(256 * 128);
    lines.push(['host: distances of 128 pairs (C)', time('hostDistances', 2000, () => m.distances(emb, 128, ia, ib, sq))]);
    lines.push(['host: distances of 128 pairs (TypeScript, before)', time('hostDistancesTs', 2000, () => rowDistances(emb, 128, ia, ib, sq))]);
    lines.push(['host: contrastive loss + dL/dD, closed form', time('lossClosedForm', 2000, () => closed(d, y))]);
    lines.push(['host: contrastive loss + dL/dD through TF.js (any loss)', time('lossTfjs', 300, () => generic(d, y))]);
    const gD = closed(d, y).grad;
    lines.push(['host: dL/dD -> dL/d(embeddings) (C)', time('backpropDistances', 2000, () => m.backpropDistances(emb, 128, ia, ib, d, sq, gD, gE))]);
    lines.push(['host: dL/dD -> dL/d(embeddings) (TypeScript, before)', time('backpropDistancesTs', 2000, () => backpropDistances(emb, 128, ia, ib, d, sq, gD, gE64))]);
    m.dispose();
  }
  {
    // the TF.js engine's step, kernel by kernel (tf.profile)
    const t = new Training(ds, resolveConfig({ ...BENCH_CONFIG, engine: 'tfjs', trainPairs: 128 * 3 }));
    t.runEpoch();
    const c0 = cpuMs();
    const info = await tf.profile(() => {
      const stop = new AbortController();
      t.runEpoch(() => stop.abort(), { signal: stop.signal });
    });
    const total = (cpuMs() - c0) * 1000;
    const byKernel = new Map<string, { n: number; ms: number }>();
    for (const k of info.kernels) {
      const e = byKernel.get(k.name) ?? { n: 0, ms: 0 };
      e.n++;
      e.ms += typeof k.kernelTimeMs === 'number' ? k.kernelTimeMs : 0;
      byKernel.set(k.name, e);
    }
    const top = [...byKernel.entries()].sort((a, b) => b[1].ms - a[1].ms).slice(0, 6);
    const kernelUs = [...byKernel.values()].reduce((s, e) => s + e.ms, 0) * 1000;
    lines.push([`tfjs: one step under tf.profile (${info.kernels.length} kernel calls)`, total]);
    lines.push(['tfjs:   of which kernel time', kernelUs]);
    for (const [name, e] of top) lines.push([`tfjs:     ${name} x${e.n}`, e.ms * 1000]);
    t.dispose();
  }
  log(`| part | CPU us |`);
  log(`|---|---|`);
  for (const [name, us] of lines) log(`| ${name} | ${fmt(us)} |`);
  log();
}

if (jsonOut) {
  writeFileSync(
    jsonOut,
    JSON.stringify({ machine, parallelCapacity: { before: capacityBefore, after: capacityAfter }, training: rows.map(({ stepTimes: _, ...r }) => r), speedupRounds: ratios, speedupRoundsSplit: ratiosSplit, speedupRoundsRoles: ratiosRoles, speedupRoundsRolesPlainStores: ratiosRolesPlain, speedupRoundsRolesStreamedStores: ratiosRolesStreamed, speedupRoundsNoRunAhead: ratiosNoAhead, speedupRoundsDenseFirstLayer: ratiosDense, coreRoundTripNs: roundTrips, independentTrainings: independent, torch, torchSetNumThreadsOnly: torchLoose, torchAllThreads: torch2, embedding: embeds, epochs: perEpoch, peakRssMB: mb(peakRss), batchLosses, profile }, null, 2) + '\n',
  );
  log(`wrote ${jsonOut}`);
}
