/**
 * `siamese report` on hostile or unusual folders, run as a user would, in child processes: memory
 * stays bounded on huge results.json files, a build killed halfway leaves figures/ as it was, a
 * training run folder is named as such.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import type { CompareResults } from '../../src/experiments/results.ts';
import { REPO_ROOT } from '../helpers.ts';
import { syntheticResults } from '../fixtures/compareResults.ts';

const root = mkdtempSync(join(tmpdir(), 'siamese-report-limits-'));
after(() => rmSync(root, { recursive: true, force: true }));

const CHILD = join(REPO_ROOT, 'test', 'viz', 'reportChild.ts');
const MB = 1024 * 1024;

function report(dir: string): { code: number | null; stdout: string; stderr: string; peakMB: number } {
  const r = spawnSync(process.execPath, ['--import', 'tsx', CHILD, 'report', dir], {
    cwd: REPO_ROOT,
    encoding: 'utf8',
    timeout: 600_000,
    env: { ...process.env, CI: 'true' },
  });
  const m = /maxrss_kb=(\d+)/.exec(r.stderr);
  return { code: r.status, stdout: r.stdout, stderr: r.stderr.replace(/maxrss_kb=\d+\n/, ''), peakMB: m ? Number(m[1]) / 1024 : Infinity };
}

function folderWith(name: string, results: CompareResults): string {
  const dir = join(root, name);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'results.json'), JSON.stringify(results));
  return dir;
}

/** A spread of points in [-50, 50]^2, deterministic. */
const layout = (n: number, k: number): number[] => Array.from({ length: 2 * n }, (_, i) => Math.round(((Math.sin(i * 12.9898 + k) * 43758.5453) % 1) * 50000) / 1000);

test('800 t-SNE panels of 2,000 points: a report under 500 MB, the panels capped with a note', (t) => {
  const r = syntheticResults({ tsne: true });
  const n = 2000;
  r.tsne = {
    indices: Array.from({ length: n }, (_, i) => i),
    labels: Array.from({ length: n }, (_, i) => i % 10),
    panels: Array.from({ length: 800 }, (_, k) => ({ title: `panel ${k}`, points: layout(n, k) })),
    params: { perplexity: 30, iterations: 1000, seed: 0, theta: 0.5 },
  };
  const dir = folderWith('tsne-panels', r);
  const out = report(dir);
  t.diagnostic(`peak RSS ${out.peakMB.toFixed(0)} MB`);
  assert.equal(out.code, 0, out.stderr);
  assert.ok(out.peakMB < 500, `peak RSS ${out.peakMB.toFixed(0)} MB`);
  assert.match(out.stdout, /note: t-SNE: 800 panels in results.json, the first 9 are drawn\./);
  assert.match(readFileSync(join(dir, 'report.md'), 'utf8'), /t-SNE: 800 panels in results\.json, the first 9 are drawn/);
});

test('100,000 learning-curve points: a report under 500 MB, the curves decimated with a note', (t) => {
  const r = syntheticResults({ tsne: false });
  const stat = (v: number) => ({ mean: v, ci95: 0.01, std: 0.01, values: [v, v, v] });
  for (const s of r.summary) {
    s.curves = Array.from({ length: 50_000 }, (_, i) => ({ epoch: i + 1, loss: stat(1 / (i + 1)), trainAccuracy: stat(0.9), testAccuracy: stat(0.9) }));
  }
  const dir = folderWith('curves', r);
  const out = report(dir);
  t.diagnostic(`peak RSS ${out.peakMB.toFixed(0)} MB`);
  assert.equal(out.code, 0, out.stderr);
  assert.ok(out.peakMB < 500, `peak RSS ${out.peakMB.toFixed(0)} MB`);
  assert.match(out.stdout, /note: Learning curves: 100000 loss-epoch points in results\.json, at most 750 evenly spaced epochs per loss are drawn\./);
});

test('a results.json over 64 MB: one line, exit 2, little memory', (t) => {
  const dir = join(root, 'huge');
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'results.json'), Buffer.alloc(65 * MB, 0x20));
  const out = report(dir);
  t.diagnostic(`peak RSS ${out.peakMB.toFixed(0)} MB`);
  assert.equal(out.code, 2);
  assert.equal(out.stderr, `siamese: ${join(dir, 'results.json')}: 65 MB, more than the 64 MB a results.json may have; not a comparison's or a sweep's results\n`);
  assert.ok(out.peakMB < 300, `peak RSS ${out.peakMB.toFixed(0)} MB`);
});

test('report on a training run folder says so in one line, exit 2', () => {
  const dir = join(root, 'a-run');
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'manifest.json'), JSON.stringify({ status: 'finished' }));
  const out = report(dir);
  assert.equal(out.code, 2);
  assert.equal(
    out.stderr,
    `siamese: ${dir} is a training run, not a comparison or a sweep: report rebuilds the report of a \`siamese compare\` or \`siamese sweep\` directory (one with results.json)\n`,
  );
});

test('a report killed while drawing leaves figures/ as it was; the next build clears its leftovers', async () => {
  const dir = folderWith('killed', syntheticResults({ tsne: true }));
  const first = report(dir);
  assert.equal(first.code, 0, first.stderr);
  const snapshot = (): Map<string, string> =>
    new Map(readdirSync(join(dir, 'figures')).sort().map((f) => [f, createHash('sha256').update(readFileSync(join(dir, 'figures', f))).digest('hex')]));
  const before = snapshot();
  assert.equal(before.size, 14);

  // other labels: every picture of this build differs from the first build's
  const changed = syntheticResults({ tsne: true });
  for (const l of changed.spec.losses) l.label = `${l.label} (again)`;
  writeFileSync(join(dir, 'results.json'), JSON.stringify(changed));
  const child = spawn(process.execPath, ['--import', 'tsx', CHILD, 'report', dir], { cwd: REPO_ROOT, env: { ...process.env, CI: 'true' }, stdio: 'ignore' });
  const exited = new Promise((resolve) => child.once('exit', resolve));
  // kill it as soon as its first picture is written (bounded wait: 2 minutes)
  let killed = false;
  for (let i = 0; i < 24_000 && !killed; i++) {
    const tmp = readdirSync(dir).find((f) => /^\.figures\..*\.tmp$/.test(f));
    if (tmp && readdirSync(join(dir, tmp)).length > 0) {
      child.kill('SIGKILL');
      killed = true;
    } else await sleep(5);
  }
  await exited;
  assert.ok(killed, 'the build wrote its pictures into a folder of its own');
  assert.deepEqual(snapshot(), before, 'figures/ is the first build, complete and unchanged');

  const again = report(dir);
  assert.equal(again.code, 0, again.stderr);
  assert.deepEqual(readdirSync(dir).filter((f) => f.startsWith('.figures')), [], 'no leftover picture folders');
  const rebuilt = snapshot();
  assert.deepEqual([...rebuilt.keys()], [...before.keys()]);
  // the labels are drawn in the accuracy chart's axis: the new build's picture is in place
  assert.notEqual(rebuilt.get('accuracy.svg'), before.get('accuracy.svg'));
});

test('a small results.json that would parse into hundreds of megabytes: one line, exit 2, little memory', (t) => {
  // 30 MB of empty arrays: ten million arrays once parsed
  const dir = join(root, 'arrays');
  mkdirSync(dir, { recursive: true });
  const body = Buffer.alloc(30 * MB, '[],');
  body.write('{"a":[', 0);
  body.write('[]]}', body.length - 4);
  writeFileSync(join(dir, 'results.json'), body);
  const out = report(dir);
  t.diagnostic(`peak RSS ${out.peakMB.toFixed(0)} MB`);
  assert.equal(out.code, 2);
  assert.match(out.stderr, /^siamese: .*results\.json: parsing it would take about \d+ MB, more than the 224 MB allowed; not a comparison's or a sweep's results\n$/);
  assert.ok(out.peakMB < 300, `peak RSS ${out.peakMB.toFixed(0)} MB`);
});
