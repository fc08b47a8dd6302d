/**
 * report.html and report.md say the same numbers: every table cell of the one is the same text
 * in the other (HTML unescaped, Markdown's escapes undone), for a comparison and for a sweep, and
 * a few cells hold the results' own numbers, formatted here independently.
 */
import assert from 'node:assert/strict';
import { cpSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, it } from 'node:test';
import type { SweepResults } from '../../src/experiments/sweep.ts';
import { readResults } from '../../src/viz/readResults.ts';
import { buildReport } from '../../src/viz/report.ts';
import { sweepHtml, sweepMarkdown } from '../../src/viz/sweepReport.ts';
import { REPO_ROOT } from '../helpers.ts';
import { syntheticResults, syntheticTestSplit } from '../fixtures/compareResults.ts';

const dirs: string[] = [];
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

const unHtml = (s: string): string =>
  s
    .replace(/<[^>]+>/g, '')
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&quot;/g, '"')
    .replace(/&#39;/g, "'")
    .replace(/&amp;/g, '&')
    .trim();

/** every table of an HTML page, as rows of cell texts */
function htmlTables(html: string): string[][][] {
  return [...html.matchAll(/<table[\s\S]*?<\/table>/g)].map((t) =>
    [...t[0].matchAll(/<tr\b[^>]*>([\s\S]*?)<\/tr>/g)].map((r) => [...r[1]!.matchAll(/<t[hd]\b[^>]*>([\s\S]*?)<\/t[hd]>/g)].map((c) => unHtml(c[1]!))),
  );
}

/** every table of a Markdown text, as rows of cell texts (the --- row left out, escapes and bold undone) */
function mdTables(md: string): string[][][] {
  const out: string[][][] = [];
  let cur: string[][] = [];
  for (const line of [...md.split('\n'), '']) {
    if (line.startsWith('|')) {
      const cells = line
        .trim()
        .slice(1, -1)
        .split(/(?<!\\)\|/)
        .map((c) =>
          c
            .trim()
            .replace(/^\*\*(.*)\*\*$/, '$1')
            .replace(/\\([\\`*_[\]|#~>])/g, '$1')
            .replace(/&lt;/g, '<')
            .replace(/&amp;/g, '&'),
        );
      if (!cells.every((c) => /^-+$/.test(c))) cur.push(cells);
    } else if (cur.length) {
      out.push(cur);
      cur = [];
    }
  }
  return out;
}

/** the HTML tables' cells against the Markdown tables' (an HTML section row is one cell, Markdown pads it) */
function assertSameTables(html: string, md: string): number {
  const h = htmlTables(html);
  const m = mdTables(md);
  assert.equal(h.length, m.length, 'as many tables');
  let cells = 0;
  h.forEach((t, i) => {
    assert.equal(t.length, m[i]!.length, `table ${i}: rows`);
    t.forEach((row, j) => {
      const mrow = m[i]![j]!;
      assert.deepEqual(row, mrow.slice(0, row.length), `table ${i} row ${j}`);
      assert.ok(mrow.slice(row.length).every((c) => c === ''), `table ${i} row ${j}: nothing more in Markdown`);
      cells += row.length;
    });
  });
  return cells;
}

const pct = (x: number): string => `${(100 * x).toFixed(2)}%`;

it('a comparison: every table cell of report.html is the one of report.md, and they hold results.json\'s numbers', async () => {
  const results = syntheticResults({ nastyLabel: true });
  for (const r of results.runs) r.distances = { pos: r.distances.pos.slice(0, 100), neg: r.distances.neg.slice(0, 90) };
  const dir = mkdtempSync(join(tmpdir(), 'siamese-tables-'));
  dirs.push(dir);
  const files = await buildReport(results, dir, { testSplit: syntheticTestSplit(), pngScale: 1 });
  const html = readFileSync(files.html, 'utf8');
  const md = readFileSync(files.md, 'utf8');
  assert.ok(assertSameTables(html, md) > 50);
  const results_ = htmlTables(html).find((t) => t[0]![0] === 'measure')!;
  const row = (name: string): string[] => results_.find((r) => r[0] === name)!.slice(1);
  results.summary.forEach((s, i) => {
    assert.ok(row('MAP@R')[i]!.startsWith(pct(s.mapAtR!.mean)), `${s.lossId} MAP@R`);
    assert.ok(row('precision@1')[i]!.startsWith(pct(s.precisionAt1!.mean)), `${s.lossId} P@1`);
    assert.equal(row('accuracy per seed (%)')[i], s.accuracy.values.map((v) => (100 * v).toFixed(2)).join(', '), `${s.lossId} per seed`);
    assert.ok(row('ROC AUC')[i]!.startsWith(s.auc.mean.toFixed(4)), `${s.lossId} AUC`);
    assert.ok(row('positive (same-class) pairs')[i]!.startsWith(s.posMean.mean.toFixed(3)), `${s.lossId} positive D`);
  });
});

it('a sweep (the committed docs/sweep-mnist): every table cell of report.html is the one of report.md, with results.json\'s numbers', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'siamese-tables-'));
  dirs.push(dir);
  cpSync(join(REPO_ROOT, 'docs', 'sweep-mnist', 'results.json'), join(dir, 'results.json'));
  const r = (await readResults(dir)) as SweepResults;
  const html = sweepHtml(r);
  const md = sweepMarkdown(r);
  assert.ok(assertSameTables(html, md) > 50);
  const test = htmlTables(html)[0]!;
  for (const l of r.losses) {
    const row = test.find((x) => x[0] === l.label)!;
    assert.equal(row[2], pct(l.best.validation.mapAtR!), `${l.id} validation`);
    assert.equal(row[3], `${pct(l.test.mapAtR.mean)} ± ${(100 * l.test.mapAtR.ci95).toFixed(2)}`, `${l.id} test MAP@R`);
    assert.equal(row[4], `${pct(l.test.precisionAt1.mean)} ± ${(100 * l.test.precisionAt1.ci95).toFixed(2)}`, `${l.id} P@1`);
    assert.equal(row[8], pct(l.foldModels.separate.mapAtR.mean), `${l.id} fold models`);
    assert.equal(row[9], pct(l.foldModels.concatenated.mapAtR!), `${l.id} concatenated`);
  }
});
