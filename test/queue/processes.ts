/**
 * `siamese` commands as child processes for the queue tests (workers, coordinators): their
 * output kept, killed with the test process even when the runner's timeout kills it.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { after, before } from 'node:test';
import { BIN } from '../cli/run.ts';
import { loadDataset } from '../../src/data/registry.ts';
import { jobDataOf, toQueueJob } from '../../src/experiments/queue/payload.ts';
import { resolveConfig } from '../../src/train/config.ts';
import { sharedInitialWeights } from '../../src/train/run.ts';
import { type RedisServer, startRedis } from './redis.ts';

export interface CliProcess {
  child: ChildProcess;
  /** stdout and stderr as they arrived */
  out: () => string;
  /** stderr alone */
  err: () => string;
  /** the exit code (null when a signal ended it: then child.signalCode says which) */
  exited: Promise<number | null>;
}

const children = new Set<ChildProcess>();
process.on('exit', stopAll);

/** `siamese ARGS` with CI=true (one line per unit of work) and `env` added; `node`: options for node itself (`--import` a fault). */
export function startCli(args: string[], env: Record<string, string> = {}, node: string[] = []): CliProcess {
  const child = spawn(process.execPath, [...node, BIN, ...args], { env: { ...process.env, CI: 'true', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout!.on('data', (b: Buffer) => (out += b.toString()));
  child.stderr!.on('data', (b: Buffer) => {
    out += b.toString();
    err += b.toString();
  });
  children.add(child);
  const exited = new Promise<number | null>((resolve) =>
    child.once('exit', (code) => {
      children.delete(child);
      resolve(code);
    }),
  );
  return { child, out: () => out, err: () => err, exited };
}

/** SIGKILL, unless it has ended already; resolves when it has. */
export async function stopCli(p: CliProcess): Promise<void> {
  if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill('SIGKILL');
  await p.exited;
}

/** SIGKILL every command still running (a test's `after`, before its Redis stops). */
export function stopAll(): void {
  for (const c of children) c.kill('SIGKILL');
}

/** Polls `cond` every 100 ms until it holds; throws after `seconds`. */
export async function waitFor(what: string, cond: () => boolean | Promise<boolean>, seconds = 120): Promise<void> {
  const end = Date.now() + seconds * 1000;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/**
 * A queue test file's hooks: a redis-server started before its tests and handed to `use`; after
 * them, every child process stopped, the server stopped and `root` removed.
 */
export function queueTestHooks(root: string, use: (redis: RedisServer) => void): void {
  let server: RedisServer | undefined;
  before(async () => {
    server = await startRedis();
    use(server);
  });
  after(async () => {
    stopAll();
    await server?.stop();
    rmSync(root, { recursive: true, force: true });
  });
}

/** A small native training of `epochs` epochs as a queue job, its run folder and initial weights under root. */
export async function smallTrainJob(root: string, epochs: number): Promise<ReturnType<typeof toQueueJob>> {
  const ds = await loadDataset({ name: 'mnist' });
  const config = resolveConfig({ epochs, trainPairs: 400, testPairs: 400, engine: 'native' });
  const reset = join(root, 'initial.safetensors');
  await sharedInitialWeights(reset, config, ds);
  return toQueueJob(
    { type: 'train', out: join(root, 'run'), config, resetWeights: reset, resume: false, retrieval: false, distanceSample: 10 },
    jobDataOf(ds),
  );
}
