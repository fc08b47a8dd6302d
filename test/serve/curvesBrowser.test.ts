/**
 * The Curves view over a sweep folder of many trial runs, in headless Chromium (Debian's
 * `chromium`, driven by playwright-core). Opening it asks for the logs of the runs it draws (the
 * final runs) in one request, none of a trial's; ticking the trials fetches theirs in a bounded
 * number of batches; every line is the mean of its runs' log.jsonl numbers; an epoch logged
 * while the view is shown arrives by the event stream (no request) and is drawn, and the runs
 * table, hidden meanwhile, shows it when opened.
 * @needs chromium
 */
import assert from 'node:assert/strict';
import { appendFileSync, cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { after, it } from 'node:test';
import { type Served, startServer } from '../../src/serve/server.ts';
import { CHROMIUM, openBrowser } from './browser.ts';
import { ensureWebBuilt, epochLine, tinySweep } from './helpers.ts';

const WAIT = { timeout: 60_000 };
/** trials per loss in the served folder: the tiny sweep's 3, copied up to a real sweep's 30 */
const TRIALS = 30;
/** runs per /api/logs request (src/serve/server.ts MAX_LOGS) */
const BATCH = 64;
const METRICS = ['loss', 'trainAccuracy', 'testAccuracy'] as const;

interface El {
  getAttribute(name: string): string | null;
}
declare const document: { querySelectorAll(sel: string): Iterable<El>; body: { dataset: Record<string, string | undefined> } };

const dirs: string[] = [];
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

const pad = (t: number): string => String(t).padStart(2, '0');
type Epoch = Record<(typeof METRICS)[number] | 'epoch', number>;
const logOf = (dir: string): Epoch[] =>
  readFileSync(join(dir, 'log.jsonl'), 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as Epoch);

/** The oracle: per epoch, the mean of the runs' logged values (those that logged that epoch). */
function meanLine(runDirs: string[], metric: (typeof METRICS)[number]): (number | null)[] {
  const logs = runDirs.map(logOf);
  const epochs = Math.max(...logs.flatMap((l) => l.map((e) => e.epoch)));
  return Array.from({ length: epochs }, (_, i) => {
    const v = logs.map((l) => l.find((e) => e.epoch === i + 1)?.[metric]).filter((x): x is number => x !== undefined);
    return v.length === 0 ? null : v.reduce((s, x) => s + x, 0) / v.length;
  });
}

it('serve page: Curves over a 30-trial sweep fetches only the logs it draws, in batches, and stays live', { timeout: 300_000 }, async () => {
  if (!existsSync(CHROMIUM)) assert.fail(`${CHROMIUM} not found: this test needs Debian's Chromium (apt-get install -y chromium)`);
  ensureWebBuilt();
  const base = mkdtempSync(join(tmpdir(), 'siamese-serve-curves-'));
  const profile = mkdtempSync(join(tmpdir(), 'siamese-chromium-profile-'));
  dirs.push(base, profile);
  const { out, results } = await tinySweep(join(base, 'made'));
  const sw = join(base, 'served', 'sw');
  cpSync(out, sw, { recursive: true });
  // trials 4 to 30: copies of the three real ones (their runs' manifests, logs and results)
  const runFiles = new Set(['manifest.json', 'log.jsonl', 'result.json']);
  for (const l of results.losses) {
    for (let t = 3; t < TRIALS; t++) {
      cpSync(join(sw, 'runs', l.id, `trial${pad(t % 3)}`), join(sw, 'runs', l.id, `trial${pad(t)}`), {
        recursive: true,
        filter: (src) => statSync(src).isDirectory() || runFiles.has(basename(src)),
      });
    }
  }
  const folds = results.protocol.folds;
  const trialRuns = results.losses.length * TRIALS * folds;
  /** the final runs' folders per group (loss/tuned, loss/default) */
  const finals = new Map<string, string[]>();
  for (const l of results.losses) {
    for (const kind of ['tuned', 'default']) {
      const names = readdirSync(join(sw, 'runs', l.id)).filter((n) => n.startsWith(`${kind}-seed`));
      assert.ok(names.length >= 2, `${l.id}: ${kind} seeds`);
      finals.set(`0:sw|${l.id}/${kind}`, names.map((n) => join(sw, 'runs', l.id, n)));
    }
  }
  const finalIds = [...finals.values()].flat().map((d) => `0:sw/runs/${basename(join(d, '..'))}/${basename(d)}`);

  const served: Served = await startServer({ dirs: [join(base, 'served')], port: 0, pollMs: 200 });
  const { context, page, errors, outside } = await openBrowser(profile, { viewport: { width: 1280, height: 900 }, origin: served.url });
  /** the runs each log request asked for */
  const asked: string[][] = [];
  page.on('request', (r) => {
    const u = new URL(r.url());
    if (u.pathname === '/api/log' || u.pathname === '/api/logs') asked.push(u.searchParams.getAll('run'));
  });
  const legend = (): Promise<{ group: string; epochs: string; values: Record<string, string> }[]> =>
    page.evaluate(
      (ms) =>
        [...document.querySelectorAll('[data-testid=curves-legend] span')].map((e) => ({
          group: e.getAttribute('data-group') ?? '',
          epochs: e.getAttribute('data-epochs') ?? '',
          values: Object.fromEntries(ms.map((m) => [m, e.getAttribute(`data-curve-${m.toLowerCase()}`) ?? ''])),
        })),
      [...METRICS],
    );
  const drawnEqualsLogs = async (groups: Map<string, string[]>): Promise<void> => {
    const shown = new Map((await legend()).map((s) => [s.group, s]));
    for (const [g, runDirs] of groups) {
      const s = shown.get(g);
      assert.ok(s, `${g} drawn`);
      for (const m of METRICS) {
        const got: (number | null)[] = s.values[m]!.split(',').map((v) => (v === '' ? null : Number(v)));
        const want = meanLine(runDirs, m);
        assert.equal(got.length, want.length, `${g} ${m}: epochs drawn`);
        got.forEach((v, i) => assert.ok(v !== null && want[i] !== null && Math.abs(v - want[i]!) <= 1e-12 * Math.max(1, Math.abs(want[i]!)), `${g} ${m} epoch ${i + 1}: drawn ${v}, logs ${want[i]}`));
      }
    }
  };
  try {
    await page.goto(served.url, { waitUntil: 'load' });
    await page.waitForFunction(() => document.body.dataset['ready'] === '1', undefined, WAIT);
    assert.equal(await page.locator('tr.run').count(), trialRuns + finalIds.length, 'every run listed');
    assert.deepEqual(asked, [], 'the runs table reads no log');
    const tuned = finals.get('0:sw|yukawa/tuned')![0]!;
    const tunedRow = `tr[data-run="0:sw/runs/yukawa/${basename(tuned)}"] td[data-col=testAccuracy]`;
    assert.equal(Number(await page.getAttribute(tunedRow, 'data-value')), logOf(tuned).at(-1)!.testAccuracy);

    // ---- Curves: the final runs' logs, in one request; no trial's ------------------------------
    await page.click('#tabs button[data-tab=curves]');
    await page.waitForFunction((n) => [...document.querySelectorAll('[data-testid=curves-legend] span')].filter((e) => e.getAttribute('data-epochs') !== '0').length === n, finals.size, WAIT);
    assert.ok(asked.length <= Math.ceil(finalIds.length / BATCH), `${asked.length} log requests for ${finalIds.length} runs drawn (of ${trialRuns + finalIds.length} in the folder)`);
    assert.deepEqual(asked.flat().sort(), [...finalIds].sort(), 'the logs of the runs drawn, each once');
    assert.deepEqual((await legend()).map((s) => s.group).sort(), [...finals.keys()].sort());
    await drawnEqualsLogs(finals);

    // ---- the trials, when asked for: their logs in batches ------------------------------------
    const before = asked.length;
    await page.check('#sweep-trials');
    const groups = finals.size + results.losses.length * TRIALS;
    await page.waitForFunction((n) => [...document.querySelectorAll('[data-testid=curves-legend] span')].filter((e) => e.getAttribute('data-epochs') !== '0').length === n, groups, WAIT);
    const trialAsks = asked.slice(before);
    assert.ok(trialAsks.length <= Math.ceil(trialRuns / BATCH), `${trialAsks.length} log requests for ${trialRuns} trial runs`);
    const trialIds = results.losses.flatMap((l) => Array.from({ length: TRIALS }, (_, t) => Array.from({ length: folds }, (_, k) => `0:sw/runs/${l.id}/trial${pad(t)}/fold${k}`)).flat());
    assert.deepEqual(trialAsks.flat().sort(), [...trialIds].sort(), 'each trial run once');
    const trialGroups = new Map(
      results.losses.flatMap((l) => Array.from({ length: TRIALS }, (_, t) => [`0:sw|${l.id}/trial${pad(t)}`, Array.from({ length: folds }, (_, k) => join(sw, 'runs', l.id, `trial${pad(t)}`, `fold${k}`))] as const)),
    );
    await drawnEqualsLogs(new Map([...finals, ...trialGroups]));

    // ---- live: an epoch logged while Curves is shown comes with the event, no request -----------
    const asks = asked.length;
    appendFileSync(join(tuned, 'log.jsonl'), JSON.stringify(epochLine(2)) + '\n');
    await page.waitForFunction(() => [...document.querySelectorAll('[data-testid=curves-legend] span')].some((e) => e.getAttribute('data-group') === '0:sw|yukawa/tuned' && e.getAttribute('data-epochs') === '2'), undefined, WAIT);
    await drawnEqualsLogs(new Map([['0:sw|yukawa/tuned', finals.get('0:sw|yukawa/tuned')!]]));
    assert.equal(asked.length, asks, 'no log request for a live epoch');

    // ---- the runs table, hidden while that epoch arrived, shows it when opened ----------------
    await page.click('#tabs button[data-tab=runs]');
    assert.equal(Number(await page.getAttribute(tunedRow, 'data-value')), epochLine(2)['testAccuracy']);

    assert.deepEqual(errors, [], 'no console errors');
    assert.deepEqual(outside, [], 'no request outside the server');
  } finally {
    await context.close();
    await served.close();
  }
});
