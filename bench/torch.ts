/**
 * PyTorch on the same training step (bench/torch_reference.py), where Python has torch: the
 * script's JSON line with the interpreter's name, or why there is none.
 */
import { execFileSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));

export type TorchResult = Record<string, unknown> | { unavailable: string };

/**
 * `pinBlas`: also OMP/OPENBLAS/MKL_NUM_THREADS = threads, which is the honest one-thread figure
 * (torch.set_num_threads alone does not stop OpenBLAS' own threads, which spin on the other core
 * and double the CPU time: that is the setting of an earlier design note's 11,208). `args`: more of the
 * script's options (--model cnn, --warmup N).
 */
/**
 * The Pythons to try, in order: SIAMESE_PYTHON alone where it is set; else `python3` on PATH, then
 * the system's /usr/bin/python3 (a pyenv or venv python3 first on PATH often lacks the torch that
 * Debian's python3-torch installed for the system one).
 */
export function pythonCandidates(env: NodeJS.ProcessEnv = process.env): string[] {
  const own = env['SIAMESE_PYTHON']?.trim();
  return own ? [own] : ['python3', '/usr/bin/python3'];
}

export function torchReference(threads: number, steps: number, o: { pinBlas?: boolean; args?: readonly string[] } = {}): TorchResult {
  const script = join(here, 'torch_reference.py');
  const pythons = pythonCandidates();
  for (const py of pythons) {
    try {
      execFileSync(py, ['-c', 'import torch'], { stdio: 'ignore', timeout: 60_000 });
    } catch {
      continue;
    }
    try {
      // one BLAS thread too: torch.set_num_threads does not reach OpenBLAS' own pool
      const env = o.pinBlas ?? true
        ? { ...process.env, OMP_NUM_THREADS: String(threads), OPENBLAS_NUM_THREADS: String(threads), MKL_NUM_THREADS: String(threads) }
        : { ...process.env };
      const args = [script, '--threads', String(threads), '--steps', String(steps), ...(o.args ?? [])];
      const out = execFileSync(py, args, { timeout: 600_000, env }).toString();
      return { python: py, ...(JSON.parse(out.trim().split('\n').pop()!) as Record<string, unknown>) };
    } catch (e) {
      return { unavailable: `PyTorch run failed: ${(e as Error).message.split('\n')[0]}` };
    }
  }
  return { unavailable: `no Python with torch (tried ${pythons.join(', ')}; SIAMESE_PYTHON=PATH names one; Debian: apt-get install python3-torch)` };
}
