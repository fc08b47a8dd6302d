import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { readSafetensors } from '../../src/io/safetensors.ts';
import { siamese, siameseAsync } from '../cli/run.ts';

const args = ['train', '--loss', 'yukawa', '--epochs', '4', '--train-pairs', '3000', '--seed', '5'];

async function weightsOf(dir: string): Promise<Float32Array[]> {
  return (await readSafetensors(join(dir, 'weights.safetensors'))).tensors.map((t) => t.data);
}

function epochsLogged(dir: string): number {
  const p = join(dir, 'log.jsonl');
  return existsSync(p) ? readFileSync(p, 'utf8').split('\n').filter(Boolean).length : 0;
}

/** Start a training child, wait until it has finished `epochs` epochs, then send `signal`. */
async function interruptAfter(out: string, epochs: number, signal: NodeJS.Signals): Promise<{ code: number | null; stderr: string }> {
  const child = siameseAsync([...args, '--out', out]);
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<number | null>((res) => child.on('exit', (code) => res(code)));
  const deadline = Date.now() + 120_000;
  while (epochsLogged(out) < epochs) {
    if (Date.now() > deadline) throw new Error(`no epoch ${epochs} after 120 s: ${stderr}`);
    if (child.exitCode !== null) throw new Error(`training ended early: ${stderr}`);
    await new Promise((r) => setTimeout(r, 25));
  }
  child.kill(signal);
  const code = await exited;
  return { code, stderr };
}

test('a run killed with SIGKILL and resumed ends bit-identical to an uninterrupted run', async () => {
  const root = mkdtempSync(join(tmpdir(), 'resume-'));
  const straight = join(root, 'straight');
  const r = siamese([...args, '--out', straight]);
  assert.equal(r.code, 0, r.stderr);

  const killed = join(root, 'killed');
  const k = await interruptAfter(killed, 1, 'SIGKILL');
  assert.equal(k.code, null, 'the child died of the signal');
  assert.ok(epochsLogged(killed) < 4, 'it was killed before the end');
  assert.ok(existsSync(join(killed, '.siamese.lock')), 'SIGKILL leaves the lock of the run folder behind');
  const resumed = siamese(['train', '--resume', killed]);
  assert.equal(resumed.code, 0, resumed.stderr);
  // the dead run's lock is taken over with a note, and the resumed run releases its own
  assert.match(resumed.stderr, /^siamese: note: .*: took over the lock of train \(pid \d+ on [^)]+\): process \d+ is no longer running$/m);
  assert.ok(!existsSync(join(killed, '.siamese.lock')));
  assert.equal(epochsLogged(killed), 4);

  const a = await weightsOf(straight);
  const b = await weightsOf(killed);
  a.forEach((w, i) => assert.deepEqual(b[i], w, `tensor ${i} differs after resume`));
  const logA = readFileSync(join(straight, 'log.jsonl'), 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l).loss);
  const logB = readFileSync(join(killed, 'log.jsonl'), 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l).loss);
  assert.deepEqual(logB, logA, 'same per-epoch losses');
  // the per-epoch distance histograms too: no epoch twice, none missing, the same counts
  assert.equal(readFileSync(join(killed, 'distances.jsonl'), 'utf8'), readFileSync(join(straight, 'distances.jsonl'), 'utf8'));
  // the per-epoch embeddings (on by default) continue too: the same file, byte for byte
  assert.ok(readFileSync(join(straight, 'embeddings.bin')).equals(readFileSync(join(killed, 'embeddings.bin'))), 'same embeddings.bin');

  // SIGINT: a clean stop with a message saying how to resume, then the resume finishes identically.
  const stopped = join(root, 'stopped');
  const s = await interruptAfter(stopped, 1, 'SIGINT');
  assert.equal(s.code, 130);
  assert.match(s.stderr, /stopped by SIGINT after epoch \d; the checkpoint is saved\. Resume with: siamese train --resume /);
  assert.equal(JSON.parse(readFileSync(join(stopped, 'manifest.json'), 'utf8')).status, 'interrupted');
  assert.ok(!existsSync(join(stopped, '.siamese.lock')), 'a clean stop releases the lock');
  assert.equal(siamese(['train', '--resume', stopped]).code, 0);
  const c = await weightsOf(stopped);
  a.forEach((w, i) => assert.deepEqual(c[i], w, `tensor ${i} differs after SIGINT + resume`));
});

test('training into an existing run directory without --resume is refused', () => {
  const root = mkdtempSync(join(tmpdir(), 'resume-'));
  const out = join(root, 'r');
  assert.equal(siamese(['train', '--epochs', '0', '--out', out]).code, 0);
  const again = siamese(['train', '--epochs', '0', '--out', out]);
  assert.equal(again.code, 2);
  assert.match(again.stderr, /already holds a run; use --resume/);
});
