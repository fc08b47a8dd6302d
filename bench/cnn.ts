/**
 * `npm run bench -- --base cnn`: training speed of the CNN base (src/model/cnn.ts, 28x28 MNIST:
 * conv 32 + pool, conv 64 + pool, dropout, dense 128; contrastive, RMSprop, batch 128 pairs) on
 * the native engine with one thread and with two, on the TF.js engine, and PyTorch on the same
 * CNN where Python has it: pairs per second and pairs per CPU-second.
 */
import type { Dataset } from '../src/data/dataset.ts';
import { pooled, throughput, type Throughput } from './throughput.ts';
import { torchReference, type TorchResult } from './torch.ts';

export interface CnnBenchResult {
  training: Omit<Throughput, 'stepTimes'>[];
  /** two threads' pairs/s over one thread's, round by round */
  twoAgainstOneRounds: number[];
  torch: TorchResult;
}

/**
 * steps: measured native steps per thread count, in `rounds` alternating rounds of one thread
 * and two (so that a change in the host's load falls on both; TF.js gets a fifth of the steps,
 * PyTorch half); torch: whether to run PyTorch
 */
export function cnnBench(
  ds: Dataset,
  o: { steps: number; rounds: number; nativeAvailable: boolean; torch: boolean; log: (s?: string) => void },
): CnnBenchResult {
  const { log } = o;
  const cnn = { base: 'cnn' as const };
  const rows: Throughput[] = [];
  const ratios: number[] = [];
  if (o.nativeAvailable) {
    const per = Math.max(5, Math.round(o.steps / o.rounds));
    const ones: Throughput[] = [];
    const twos: Throughput[] = [];
    for (let r = 0; r < o.rounds; r++) {
      ones.push(throughput(ds, 'native', 1, 10, per, 'auto', 'auto', true, 'auto', cnn));
      twos.push(throughput(ds, 'native', 2, 10, per, 'auto', 'auto', true, 'auto', cnn));
      ratios.push(twos[r]!.pairsPerSecond / ones[r]!.pairsPerSecond);
    }
    rows.push(pooled(ones), pooled(twos));
  }
  rows.push(throughput(ds, 'tfjs', 1, 3, Math.max(5, Math.round(o.steps / 5)), 'auto', 'auto', true, 'auto', cnn));
  const torch = o.torch ? torchReference(1, Math.max(10, Math.round(o.steps / 2)), { args: ['--model', 'cnn', '--warmup', '10'] }) : { unavailable: 'skipped (--no-torch)' };
  log(`## CNN base (28x28: conv 32 + pool, conv 64 + pool, dropout 0.1, dense 128), batch 128 pairs`);
  log();
  log(`| engine | threads | steps | pairs/s | pairs per CPU-second | median step ms |`);
  log(`|---|---|---|---|---|---|`);
  const f = (x: number): string => Math.round(x).toLocaleString('en-US');
  for (const r of rows) log(`| ${r.engine} | ${r.threads} | ${r.steps} | ${f(r.pairsPerSecond)} | ${f(r.pairsPerCpuSecond)} | ${r.medianStepMs.toFixed(1)} |`);
  if ('unavailable' in torch) log(`| PyTorch | 1 | - | ${torch.unavailable} | | |`);
  else log(`| PyTorch ${String(torch['torch'])} (${String(torch['python'])}) | 1 | ${String(torch['steps'])} | ${f(Number(torch['pairsPerSecond']))} | ${f(Number(torch['pairsPerCpuSecond']))} | |`);
  const one = rows.find((r) => r.engine === 'native' && r.threads === 1);
  const two = rows.find((r) => r.engine === 'native' && r.threads === 2);
  if (one && two) {
    log(`\nnative, two threads against one: ${(two.pairsPerSecond / one.pairsPerSecond).toFixed(2)}x (rounds: ${ratios.map((x) => x.toFixed(2) + 'x').join(', ')})`);
  }
  if (one && !('unavailable' in torch))
    log(
      `native one thread against PyTorch's one: ${(one.pairsPerSecond / Number(torch['pairsPerSecond'])).toFixed(2)}x in pairs/s, ` +
        `${(one.pairsPerCpuSecond / Number(torch['pairsPerCpuSecond'])).toFixed(2)}x in pairs per CPU-second`,
    );
  log();
  return { training: rows.map(({ stepTimes: _, ...r }) => r), twoAgainstOneRounds: ratios, torch };
}
