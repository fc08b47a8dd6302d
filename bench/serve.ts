/**
 * Benchmark of `siamese serve` against its speed goals, in Debian's Chromium driven by
 * playwright-core:
 *
 *   first view     page load until the runs table shows every run of a 45-run compare folder
 *                  (3 losses x 15 seeds, 20 epochs each) beside two t-SNE folders          < 1 s
 *   map frames     frame time (requestAnimationFrame deltas, 95th percentile and max) while
 *                  hovering, zooming (wheel) and panning (shift-drag) the 2,000-point and the
 *                  10,000-point map                                                       < 50 ms
 *   epoch latency  an epoch line appended to a running run's log.jsonl until the page shows it
 *                                                                                          < 1 s
 *   server RSS     the `siamese serve` process, resident and peak, after all of the above  < 200 MB
 *
 * The folders are synthetic but in the formats `compare` and `train` write. The server is the
 * real command (`node bin/siamese.js serve`, compiled dist/ built first) in its own process,
 * on a free loopback port.
 *
 *   npm run bench:serve
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { appendFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { syntheticResults } from '../test/fixtures/compareResults.ts';
import { CHROMIUM, openBrowser } from '../test/serve/browser.ts';
import { epochLine, writeManifest } from '../test/serve/helpers.ts';

const LOSSES: { id: string; loss: string; params: Record<string, number>; label: string }[] = [
  { id: 'contrastive', loss: 'contrastive', params: { margin: 1 }, label: 'contrastive' },
  { id: 'yukawa', loss: 'yukawa', params: { kappa: 10, power: 3 }, label: 'Yukawa (κ = 10, p = 3)' },
  { id: 'triplet', loss: 'triplet', params: { margin: 0.2 }, label: 'triplet' },
];
const SEEDS = 15;
const EPOCHS = 20;
/** The little of the DOM the page-side callbacks use (the project compiles without lib "dom"). */
declare const document: { querySelector(sel: string): { textContent: string | null } | null };
declare const window: { __tableAt?: number; __readyAt?: number; __epochAt?: number };

/** the one run still training: its log grows during the epoch-latency measurement */
const LIVE = { loss: 'triplet', seed: 14, done: 10 };

function cpuModel(): string {
  const m = /^model name\s*:\s*(.+)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'));
  return m?.[1]?.trim() ?? 'unknown CPU';
}

const quantile = (xs: number[], q: number): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))] ?? NaN;
};
const median = (xs: number[]): number => quantile(xs, 0.5);

/** A compare folder of 45 runs: compare.json, and per run manifest.json, log.jsonl and result.json. */
function writeCompare(dir: string): void {
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'compare.json'), JSON.stringify({ tool: 'siamese-lab', spec: { losses: LOSSES, seeds: Array.from({ length: SEEDS }, (_, i) => i) } }));
  for (const l of LOSSES) {
    for (let seed = 0; seed < SEEDS; seed++) {
      const run = join(dir, 'runs', `${l.id}-seed${seed}`);
      const live = l.id === LIVE.loss && seed === LIVE.seed;
      const done = live ? LIVE.done : EPOCHS;
      writeManifest(run, { loss: l.loss, params: l.params, seed, epochs: EPOCHS, status: live ? 'running' : 'finished', epochsDone: done });
      writeFileSync(join(run, 'log.jsonl'), Array.from({ length: done }, (_, e) => JSON.stringify(epochLine(e + 1)) + '\n').join(''));
      if (!live) {
        const acc = 0.95 + 0.001 * ((seed * 7 + l.id.length) % 10);
        writeFileSync(join(run, 'result.json'), JSON.stringify({ evaluation: { pairs: { accuracy: acc, auc: 0.99 }, retrieval: { mapAtR: acc - 0.1 } } }));
      }
    }
  }
}

/** A compare results.json whose t-SNE panels hold n points (10 clusters, tighter after training). */
function writeMap(dir: string, n: number): void {
  mkdirSync(dir, { recursive: true });
  const r = syntheticResults({ seeds: [0, 1] });
  let s = n;
  const rand = (): number => (s = (s * 1103515245 + 12345) % 2 ** 31) / 2 ** 31 - 0.5;
  const labels = Array.from({ length: n }, (_, i) => i % 10);
  r.tsne = {
    indices: Array.from({ length: n }, (_, i) => i),
    labels,
    panels: [30, 6, 4].map((spread, p) => ({
      title: ['before training', 'after contrastive', 'after Yukawa'][p]!,
      points: labels.flatMap((c) => [Math.cos((c / 10) * 2 * Math.PI) * 25 * Math.min(p, 1) + spread * rand(), Math.sin((c / 10) * 2 * Math.PI) * 25 * Math.min(p, 1) + spread * rand()]),
    })),
    params: { perplexity: 30, iterations: 1000, seed: 0, theta: 0.5 },
  };
  writeFileSync(join(dir, 'results.json'), JSON.stringify(r));
}

/** `siamese serve ROOT --port 0` in its own process; resolves with its URL once it prints it. */
function startServe(root: string): Promise<{ child: ChildProcess; url: string }> {
  const child = spawn(process.execPath, ['bin/siamese.js', 'serve', root, '--port', '0'], { stdio: ['ignore', 'pipe', 'pipe'] });
  return new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`serve printed no URL in 60 s: ${out}`)), 60_000);
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /(http:\/\/127\.0\.0\.1:\d+\/)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve({ child, url: m[1]! });
      }
    });
    child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
    child.on('exit', (code) => reject(new Error(`serve exited (${code}): ${out}`)));
  });
}

function rssMb(pid: number): { rss: number; peak: number } {
  const s = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (k: string): number => Number(new RegExp(`^${k}:\\s+(\\d+) kB`, 'm').exec(s)?.[1] ?? NaN);
  return { rss: kb('VmRSS') / 1024, peak: kb('VmHWM') / 1024 };
}

/** requestAnimationFrame deltas (ms) while `gesture` runs. */
async function frames(page: Page, gesture: () => Promise<void>): Promise<number[]> {
  // as source text: tsx would wrap a named inner function in a helper the page does not have
  await page.evaluate(`(() => {
    window.__frames = [];
    window.__on = true;
    let last = performance.now();
    const step = (now) => {
      window.__frames.push(now - last);
      last = now;
      if (window.__on) requestAnimationFrame(step);
    };
    requestAnimationFrame(step);
  })()`);
  await gesture();
  return (await page.evaluate('(() => { window.__on = false; return window.__frames.slice(1); })()')) as number[];
}

async function main(): Promise<void> {
  if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} not found: apt-get install -y chromium`);
  // what users run: the compiled package and the bundled page
  execFileSync(process.execPath, ['scripts/build.mjs'], { stdio: 'ignore' });
  const base = mkdtempSync(join(tmpdir(), 'siamese-bench-serve-'));
  const root = join(base, 'runs');
  writeCompare(join(root, 'compare'));
  writeMap(join(root, 'map-2k'), 2000);
  writeMap(join(root, 'map-10k'), 10_000);
  const totalRuns = LOSSES.length * SEEDS + 2 * 4;

  const { child, url } = await startServe(root);
  const profile = mkdtempSync(join(tmpdir(), 'siamese-bench-chromium-'));
  // the browser as the tests drive it; each timed page below is a fresh one
  const { context, errors } = await openBrowser(profile, { viewport: { width: 1280, height: 900 } });
  try {
    // ---- first view: a fresh page each time; the first load also warms the browser -----------
    // timed inside the page, from the start of navigation (the driver's own polling is slow on a busy machine)
    await context.addInitScript(`(() => {
      const seen = (_, obs) => {
        if (!window.__tableAt && document.querySelectorAll('tr.run').length === ${totalRuns}) window.__tableAt = performance.now();
        if (!window.__readyAt && document.body.dataset.ready === '1') window.__readyAt = performance.now();
        if (window.__tableAt && window.__readyAt) obs.disconnect();
      };
      document.addEventListener('DOMContentLoaded', () => new MutationObserver(seen).observe(document.documentElement, { childList: true, subtree: true, attributes: true }));
    })()`);
    const firstViews: number[] = [];
    const allIn: number[] = [];
    for (let k = 0; k < 6; k++) {
      const page = await context.newPage();
      page.on('pageerror', (e) => errors.push(e.message));
      await page.goto(url, { waitUntil: 'load' });
      await page.waitForFunction(() => window.__tableAt && window.__readyAt, undefined, { timeout: 30_000 });
      const [table, ready] = (await page.evaluate('[window.__tableAt, window.__readyAt]')) as [number, number];
      firstViews.push(table);
      // and every results.json read (the t-SNE maps' 2,000 and 10,000 points included)
      allIn.push(ready);
      if (k < 5) await page.close();
    }
    const page = context.pages().at(-1)!;

    // ---- epoch latency: append a line, the page notes (its clock) when the runs table shows it --
    const liveDir = join(root, 'compare', 'runs', `${LIVE.loss}-seed${LIVE.seed}`);
    const cell = `tr[data-run="0:compare/runs/${LIVE.loss}-seed${LIVE.seed}"] td[data-col=epoch]`;
    const latencies: number[] = [];
    for (let e = LIVE.done + 1; e <= LIVE.done + 6; e++) {
      await new Promise((r) => setTimeout(r, 300));
      await page.evaluate(`(() => {
        window.__epochAt = 0;
        const check = () => {
          if (!window.__epochAt && document.querySelector(${JSON.stringify(cell)})?.textContent === '${e}/${EPOCHS}') window.__epochAt = Date.now();
        };
        new MutationObserver(check).observe(document.getElementById('view-runs'), { childList: true, subtree: true, characterData: true });
      })()`);
      const t0 = Date.now();
      appendFileSync(join(liveDir, 'log.jsonl'), JSON.stringify(epochLine(e)) + '\n');
      await page.waitForFunction(() => (window.__epochAt ?? 0) > 0, undefined, { timeout: 30_000 });
      latencies.push(((await page.evaluate('window.__epochAt')) as number) - t0);
    }

    // ---- the maps: hover, wheel zoom, shift-drag pan ----------------------------------------
    await page.click('#tabs button[data-tab=embedding]');
    const mapStats: { points: number; gesture: string; frames: number[] }[] = [];
    for (const [folder, points] of [['map-2k', 2000], ['map-10k', 10_000]] as const) {
      // the folder's "before training" map on the left, "after contrastive" on the right
      await page.selectOption('#view-embedding select[aria-label="left map"]', `panel:0:${folder}:0`);
      await page.selectOption('#view-embedding select[aria-label="right map"]', `panel:0:${folder}:1`);
      await page.waitForSelector(`#view-embedding canvas[data-source="panel:0:${folder}:0"]`, { timeout: 30_000 });
      await page.waitForSelector(`#view-embedding canvas[data-source="panel:0:${folder}:1"]`, { timeout: 30_000 });
      const box = (await page.locator('#view-embedding canvas').first().boundingBox())!;
      const at = (fx: number, fy: number): [number, number] => [box.x + fx * box.width, box.y + fy * box.height];
      mapStats.push({
        points,
        gesture: 'hover',
        frames: await frames(page, async () => {
          for (let k = 0; k < 120; k++) await page.mouse.move(...at(0.15 + 0.006 * k, 0.3 + 0.004 * k));
        }),
      });
      mapStats.push({
        points,
        gesture: 'zoom (wheel)',
        frames: await frames(page, async () => {
          await page.mouse.move(...at(0.5, 0.5));
          for (let k = 0; k < 30; k++) await page.mouse.wheel(0, k < 20 ? -60 : 60);
        }),
      });
      mapStats.push({
        points,
        gesture: 'pan (shift-drag)',
        frames: await frames(page, async () => {
          await page.mouse.move(...at(0.3, 0.3));
          await page.keyboard.down('Shift');
          await page.mouse.down();
          for (let k = 0; k < 120; k++) await page.mouse.move(...at(0.3 + 0.004 * k, 0.3 + 0.003 * k));
          await page.mouse.up();
          await page.keyboard.up('Shift');
        }),
      });
      await page.dblclick('#view-embedding canvas >> nth=0');
    }
    const mem = rssMb(child.pid!);

    // ---- report --------------------------------------------------------------------------------
    const ms = (x: number): string => `${Math.round(x)} ms`;
    console.log(`bench serve: ${new Date().toISOString()}`);
    console.log(`machine: ${cpuModel()}, ${availableParallelism()} cores, node ${process.version}, load ${loadavg().map((x) => x.toFixed(2)).join(' ')}; ${execFileSync(CHROMIUM, ['--version'], { encoding: 'utf8' }).trim()} headless, software rendering`);
    console.log(`folders: a compare of ${LOSSES.length * SEEDS} runs (${LOSSES.length} losses x ${SEEDS} seeds, ${EPOCHS} epochs, one still running) and two results.json with t-SNE maps of 2,000 and 10,000 points (${totalRuns} rows in all)`);
    console.log('');
    console.log('| measure | goal | measured | met |');
    console.log('|---|---|---|---|');
    const row = (what: string, goal: string, value: string, ok: boolean): void => console.log(`| ${what} | ${goal} | ${value} | ${ok ? 'yes' : 'NO'} |`);
    row(
      `first view of the 45-run folder (navigation start until the runs table is complete, timed in the page): median of 5 warm loads; first (cold) load`,
      '< 1 s',
      `${ms(median(firstViews.slice(1)))}; ${ms(firstViews[0]!)} (all: ${firstViews.map(ms).join(', ')})`,
      median(firstViews.slice(1)) < 1000,
    );
    console.log(`| the same, until the three results.json are read too (the maps' 2,000 and 10,000 points): median of 5 warm loads; first load | | ${ms(median(allIn.slice(1)))}; ${ms(allIn[0]!)} | |`);
    for (const m of mapStats) {
      const p95 = quantile(m.frames, 0.95);
      const max = Math.max(...m.frames);
      row(`map of ${m.points.toLocaleString('en')} points, ${m.gesture}: frame time 95th percentile; max (${m.frames.length} frames)`, '< 50 ms', `${p95.toFixed(1)} ms; ${max.toFixed(1)} ms`, p95 < 50);
    }
    row(`an epoch appended to a running run's log.jsonl until the runs table shows it (timed in the page): median; max of ${latencies.length}`, '< 1 s', `${ms(median(latencies))}; ${ms(Math.max(...latencies))}`, Math.max(...latencies) < 1000);
    row('`siamese serve` process memory after all of the above: RSS; peak (VmHWM)', '< 200 MB', `${mem.rss.toFixed(0)} MB; ${mem.peak.toFixed(0)} MB`, mem.peak < 200);
    if (errors.length > 0) console.log(`\npage errors: ${errors.join('; ')}`);
  } finally {
    await context.close();
    child.kill('SIGTERM');
    rmSync(base, { recursive: true, force: true });
    rmSync(profile, { recursive: true, force: true });
  }
}

await main();
