/**
 * report.md and report.html of `siamese sweep`, from its results.json alone. The HTML page is
 * self-contained (inline CSS and SVG, no script, no network): per loss the chosen parameters,
 * the search trace (validation MAP@R per trial and best so far), parallel coordinates of the
 * parameters against validation MAP@R (HTML), the test measures with 95% CIs
 * tuned and untuned, the fold models; then the paired tests and the verdict.
 */
import { join } from 'node:path';
import { writeFileAtomic } from '../io/atomic.ts';
import { groupsOverlap } from '../data/split.ts';
import type { Measure, SweepLossResult, SweepResults } from '../experiments/sweep.ts';
import { bestThresholdWords } from './accuracyWords.ts';
import { sweepVerdict, verdictDifferences } from './sweepVerdict.ts';
import { LOSS_PALETTE } from './charts.ts';
import { CLIPPED_CI_NOTE, fractionWithCi, isClipped } from './ciText.ts';

const esc = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
const mdCell = (s: string): string => s.replace(/\|/g, '\\|').replace(/\n/g, ' ');
const pct = (x: number | null | undefined): string => (x === null || x === undefined || !Number.isFinite(x) ? '-' : `${(100 * x).toFixed(2)}%`);
/** mean ± half-width, or the clipped interval where that passes 0% or 100% (ciText.ts); a half-width that could not be computed (null, NaN): '± -' */
function withCi(m: Measure): string {
  if (m.values.length < 2 || m.mean === null || !Number.isFinite(m.mean)) return pct(m.mean);
  return m.ci95 === null || !Number.isFinite(m.ci95) ? `${pct(m.mean)} ± -` : fractionWithCi(m.mean, m.ci95);
}
/** the test table's note on clipped intervals, only where the table has one */
function clippedNote(r: SweepResults): string {
  const shown = r.losses.flatMap((l) => [l.test.mapAtR, l.test.precisionAt1, l.test.rPrecision, ...(l.test.bestAccuracy ? [l.test.bestAccuracy] : []), l.untuned.test.mapAtR]);
  return shown.some((m) => m.values.length > 1 && isClipped(m.mean, m.ci95)) ? ` ${CLIPPED_CI_NOTE}` : '';
}
const params = (p: Record<string, number | string>): string => Object.entries(p).map(([k, v]) => `${k}=${v}`).join(', ') || '(none)';

interface Table {
  head: string[];
  rows: string[][];
}

function mdTable(t: Table): string {
  return [`| ${t.head.map(mdCell).join(' | ')} |`, `| ${t.head.map(() => '---').join(' | ')} |`, ...t.rows.map((r) => `| ${r.map(mdCell).join(' | ')} |`)].join('\n');
}

function htmlTable(t: Table): string {
  return `<table><thead><tr>${t.head.map((h) => `<th>${esc(h)}</th>`).join('')}</tr></thead><tbody>${t.rows
    .map((r) => `<tr>${r.map((c) => `<td>${esc(c)}</td>`).join('')}</tr>`)
    .join('')}</tbody></table>`;
}

function testTable(r: SweepResults): Table {
  return {
    head: ['loss', 'chosen parameters', 'val MAP@R', 'test MAP@R (95% CI)', 'P@1', 'R-precision', 'pair accuracy, best threshold', 'untuned MAP@R', 'fold models (mean)', 'fold models (concat.)'],
    rows: r.losses.map((l) => [
      l.label,
      params(l.best.params),
      pct(l.best.validation.mapAtR),
      withCi(l.test.mapAtR),
      withCi(l.test.precisionAt1),
      withCi(l.test.rPrecision),
      l.test.bestAccuracy ? withCi(l.test.bestAccuracy) : '-',
      withCi(l.untuned.test.mapAtR),
      pct(l.foldModels.separate.mapAtR.mean),
      pct(l.foldModels.concatenated.mapAtR),
    ]),
  };
}

function trialTable(l: SweepLossResult): Table {
  const names = l.space.map((d) => d.name);
  let best = -Infinity;
  return {
    head: ['trial', ...names, 'val MAP@R', 'per fold', 'best so far'],
    rows: l.trials.map((t) => {
      if (t.validation.mapAtR !== null) best = Math.max(best, t.validation.mapAtR);
      return [
        String(t.trial + 1),
        ...names.map((n) => String(t.params[n])),
        pct(t.validation.mapAtR),
        t.validation.folds.map((f) => pct(f.mapAtR)).join(' / '),
        pct(Number.isFinite(best) ? best : null),
      ];
    }),
  };
}

/**
 * The validation and test MAP@R sit side by side in the test table but measure different things:
 * a fold validates on a few held-out training classes, the test on all the test classes, and
 * MAP@R is higher with fewer classes (sweep.md). Said beside the table, in one sentence.
 */
function unlikeMapAtRNote(r: SweepResults): string {
  const sizes = [...new Set(r.protocol.groups.map((g) => g.length))].sort((a, b) => a - b);
  const per = sizes.length > 1 ? `${sizes[0]}-${sizes[sizes.length - 1]}` : String(sizes[0] ?? '?');
  const n = r.split.testClasses.length;
  return `Val MAP@R is not comparable with test MAP@R: it is measured on ${per} held-out training classes per fold, test MAP@R on the ${n} test classes, and MAP@R is higher with fewer classes.`;
}

/**
 * The pair accuracy column is the best-threshold accuracy of every loss: a batch loss has no
 * absolute distance scale, so its accuracy is measured at the best threshold, and the others' at
 * D < threshold would set two conventions side by side. Said beside the table; a results.json
 * written before the column existed has only each loss's own convention, and the note says how
 * to add it (the same command in the folder trains nothing and summarises again).
 */
function accuracyNote(r: SweepResults): string {
  if (r.losses.some((l) => !l.test.bestAccuracy)) {
    return 'This results.json was written before the best-threshold pair accuracy was kept: run the same sweep command on this folder again to add it (nothing is retrained).';
  }
  const t = r.protocol.config.threshold ?? 0.5;
  const fixed = r.losses.filter((l) => l.test.accuracyAt === 'threshold');
  const at = fixed.length ? ` At the fixed D < ${t}: ${fixed.map((l) => `${l.label} ${pct(l.test.accuracy.mean)}`).join(', ')} (results.json: test.accuracy).` : '';
  const batch = r.losses.filter((l) => l.test.accuracyAt === 'best').map((l) => l.label);
  return `Pair accuracy: at the threshold that classifies the test-class pairs best (in-sample, so optimistic), ${bestThresholdWords(batch)}.${at}`;
}

/** The measure of a paired test, in the report's words. */
const measureName = (m: string): string =>
  m === 'mapAtR' ? 'MAP@R' : m === 'bestAccuracy' ? 'pair accuracy (best threshold)' : "pair accuracy (each loss's own threshold convention, a file from before like-for-like tests)";

function comparisonLines(r: SweepResults): { tuned: string[]; untuned: string[] } {
  const f = (list: SweepResults['comparisons']['tuned']): string[] => list.map((c) => `${measureName(c.measure)}: ${c.verdict}`);
  return { tuned: f(r.comparisons.tuned), untuned: f(r.comparisons.untuned) };
}


/** Said once above the paired tests (a file from before the like-for-like tests has none). */
const pairedNote = (r: SweepResults): string =>
  [...r.comparisons.tuned, ...r.comparisons.untuned].some((c) => c.measure === 'bestAccuracy')
    ? "Pair accuracy is tested at each loss's best threshold, so that every two losses are compared like for like."
    : "Pair accuracy here is each loss's own convention (a batch loss's at its best threshold, the others' at the fixed one): not like for like between the two kinds.";

/** " (1 for a loss with nothing to search: yukawa)": such a loss runs one trial (lossTrials in sweep.ts) */
function fixedWords(r: SweepResults): string {
  const fixed = r.protocol.trials > 1 ? r.losses.filter((l) => l.space.length === 0).map((l) => l.id) : [];
  return fixed.length ? ` (1 for a loss with nothing to search: ${fixed.join(', ')})` : '';
}

/** " (for yukawa, with nothing to search, the defaults are the tuned settings: ...)": sharesFinals in sweep.ts */
function sharedWords(r: SweepResults): string {
  const shared = r.losses.filter((l) => l.untuned.sameAsTuned).map((l) => l.id);
  return shared.length
    ? ` (for ${shared.join(', ')}, with nothing to search, the defaults are the tuned settings: the same trainings, trained once, their numbers given for both)`
    : '';
}

function intro(r: SweepResults): string[] {
  const p = r.protocol;
  return [
    `Data: ${r.dataset.name}; training classes ${r.split.trainClasses.join(', ')}; test classes ${r.split.testClasses.join(', ')} (never seen before the final tests).`,
    `Protocol: per loss ${p.trials} trials${fixedWords(r)} (quasi-random start, then TPE), each scored by the mean validation MAP@R of ${p.folds} folds, each validated on training classes it does not train on ` +
      `(validation groups ${p.groups.map((g) => `{${g.join(',')}}`).join(' ')}${groupsOverlap(p.groups) ? ': too few training classes for disjoint groups, so pairs that overlap between folds' : ''}); the best parameters and the defaults each trained with ${p.seeds} seeds on all training classes${sharedWords(r)}; ` +
      `${p.config.epochs} epoch(s), batch ${p.config.batchSize}, ${p.config.optimizer}${p.config.trainPairs ? `, first ${p.config.trainPairs} train pairs` : ''}.`,
    `Machine: ${r.machine.cores} cores, node ${r.machine.node}. ${r.machine.trainings} trainings; the invocation that finished the sweep trained ${r.machine.trainedNow} of them ` +
      `on ${r.machine.workers} workers${r.machine.queue ? ' of a Redis queue (the cores are the coordinator\'s)' : ''} in ${r.machine.wallSeconds} s (earlier ones, if interrupted, are not counted).` +
      (r.machine.summarisedAgain
        ? ` Summarised again from the stored runs by siamese-lab ${r.machine.summarisedAgain.version} (node ${r.machine.summarisedAgain.node}) in ${r.machine.summarisedAgain.wallSeconds} s, nothing retrained.`
        : ''),
  ];
}

/** An SVG line chart of validation MAP@R per trial (dots) and best so far (line). */
function traceSvg(l: SweepLossResult, color: string): string {
  const W = 420;
  const H = 160;
  const m = { l: 44, r: 10, t: 10, b: 28 };
  const ys = l.trials.map((t) => t.validation.mapAtR).filter((v): v is number => v !== null);
  if (ys.length === 0) return '';
  let lo = Math.min(...ys);
  let hi = Math.max(...ys);
  if (hi - lo < 1e-6) {
    lo -= 0.01;
    hi += 0.01;
  }
  const n = Math.max(2, l.trials.length);
  const x = (i: number): number => m.l + ((W - m.l - m.r) * i) / (n - 1);
  const y = (v: number): number => m.t + (H - m.t - m.b) * (1 - (v - lo) / (hi - lo));
  let best = -Infinity;
  const line: string[] = [];
  const dots: string[] = [];
  l.trials.forEach((t, i) => {
    const v = t.validation.mapAtR;
    if (v === null) return;
    best = Math.max(best, v);
    line.push(`${x(i).toFixed(1)},${y(best).toFixed(1)}`);
    dots.push(`<circle cx="${x(i).toFixed(1)}" cy="${y(v).toFixed(1)}" r="3" fill="${color}"><title>trial ${t.trial + 1}: ${pct(v)}</title></circle>`);
  });
  const axis = [
    `<line x1="${m.l}" y1="${H - m.b}" x2="${W - m.r}" y2="${H - m.b}" stroke="#888"/>`,
    `<line x1="${m.l}" y1="${m.t}" x2="${m.l}" y2="${H - m.b}" stroke="#888"/>`,
    `<text x="${m.l - 4}" y="${y(hi) + 4}" text-anchor="end">${pct(hi)}</text>`,
    `<text x="${m.l - 4}" y="${y(lo) + 4}" text-anchor="end">${pct(lo)}</text>`,
    `<text x="${(W + m.l) / 2}" y="${H - 6}" text-anchor="middle">trial (1..${l.trials.length}); dots: validation MAP@R, line: best so far</text>`,
  ];
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" role="img" aria-label="search trace of ${esc(l.label)}" font-size="10" font-family="sans-serif">${axis.join('')}<polyline fill="none" stroke="${color}" stroke-width="1.5" points="${line.join(' ')}"/>${dots.join('')}</svg>`;
}

/**
 * Parallel coordinates: one axis per searched parameter (on its own scale, log where searched on
 * a log scale) and a last one for the validation MAP@R; one line per trial, the better trials
 * more opaque, the best one thick.
 */
function parallelSvg(l: SweepLossResult, color: string): string {
  const scored = l.trials.filter((t) => t.validation.mapAtR !== null);
  if (l.space.length === 0 || scored.length === 0) return '';
  const W = 120 * (l.space.length + 1) + 60;
  const H = 200;
  const m = { t: 24, b: 30, side: 50 };
  const axes = l.space.length + 1;
  const ax = (i: number): number => m.side + ((W - 2 * m.side) * i) / (axes - 1);
  const ys = scored.map((t) => t.validation.mapAtR!);
  const lo = Math.min(...ys);
  const hi = Math.max(...ys) > lo ? Math.max(...ys) : lo + 1e-6;
  const y = (u: number): number => m.t + (H - m.t - m.b) * (1 - Math.min(1, Math.max(0, u)));
  const unit = (i: number, t: (typeof scored)[number]): number => {
    if (i === l.space.length) return (t.validation.mapAtR! - lo) / (hi - lo);
    const d = l.space[i]!;
    const v = t.params[d.name]!;
    return d.log ? Math.log(v / d.lo) / Math.log(d.hi / d.lo) : (v - d.lo) / (d.hi - d.lo);
  };
  const best = scored.reduce((a, b) => (b.validation.mapAtR! > a.validation.mapAtR! ? b : a));
  const lines = scored.map((t) => {
    const pts = Array.from({ length: axes }, (_, i) => `${ax(i).toFixed(1)},${y(unit(i, t)).toFixed(1)}`).join(' ');
    const q = (t.validation.mapAtR! - lo) / (hi - lo);
    return `<polyline fill="none" stroke="${color}" stroke-opacity="${(0.2 + 0.8 * q).toFixed(2)}" stroke-width="${t === best ? 3 : 1.2}" points="${pts}"><title>trial ${t.trial + 1}: ${esc(params(t.params))}; ${pct(t.validation.mapAtR)}</title></polyline>`;
  });
  const labels = [...l.space.map((d) => ({ name: `${d.name}${d.log ? ' (log)' : ''}`, lo: String(d.lo), hi: String(d.hi) })), { name: 'val MAP@R', lo: pct(lo), hi: pct(hi) }];
  const axisMarks = labels.map(
    (a, i) =>
      `<line x1="${ax(i)}" y1="${m.t}" x2="${ax(i)}" y2="${H - m.b}" stroke="#888"/><text x="${ax(i)}" y="${m.t - 8}" text-anchor="middle">${esc(a.hi)}</text>` +
      `<text x="${ax(i)}" y="${H - m.b + 12}" text-anchor="middle">${esc(a.lo)}</text><text x="${ax(i)}" y="${H - 4}" text-anchor="middle" font-weight="bold">${esc(a.name)}</text>`,
  );
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" role="img" aria-label="parallel coordinates of ${esc(l.label)}" font-size="10" font-family="sans-serif">${axisMarks.join('')}${lines.join('')}</svg>`;
}

export function sweepMarkdown(r: SweepResults): string {
  const out: string[] = ['# Sweep report', '', ...intro(r).map((s) => `${s}\n`), '## Test classes: tuned losses', '', mdTable(testTable(r)), ''];
  out.push(`Fractions as percentages; ± is the 95% confidence half-width over seeds.${clippedNote(r)} ${unlikeMapAtRNote(r)} ${accuracyNote(r)} "untuned": the loss's defaults, same seeds. Fold models: the best trial's fold models on the test classes, each alone (mean) and with their embeddings concatenated.`, '');
  const v = sweepVerdict(r);
  const d = verdictDifferences(v);
  out.push('## Verdict', '', v.summary, '', ...(d ? [d.heading, '', ...d.items.map((s) => `- ${s}`), ''] : []));
  const c = comparisonLines(r);
  out.push('## Paired tests over seeds (Holm-corrected per measure)', '', pairedNote(r), '', '**Tuned:**', '', ...c.tuned.map((s) => `- ${s}`), '', '**Untuned (defaults):**', '', ...c.untuned.map((s) => `- ${s}`), '');
  for (const l of r.losses) {
    out.push(`## ${l.label}`, '', `Spec: \`${l.spec}\`; fixed: ${params(l.fixed)}; chosen (trial ${l.best.trial + 1}): ${params(l.best.params)}.`, '', mdTable(trialTable(l)), '');
  }
  return out.join('\n');
}

export function sweepHtml(r: SweepResults): string {
  const c = comparisonLines(r);
  const v = sweepVerdict(r);
  const d = verdictDifferences(v);
  const body: string[] = [
    '<h1>Sweep report</h1>',
    ...intro(r).map((s) => `<p>${esc(s)}</p>`),
    '<h2>Test classes: tuned losses</h2>',
    htmlTable(testTable(r)),
    `<p class="note">Fractions as percentages; ± is the 95% confidence half-width over seeds.${esc(clippedNote(r))} ${esc(unlikeMapAtRNote(r))} ${esc(accuracyNote(r))} "untuned": the loss's defaults, same seeds. Fold models: the best trial's fold models on the test classes, each alone (mean) and with their embeddings concatenated.</p>`,
    '<h2>Verdict</h2>',
    `<p>${esc(v.summary)}</p>`,
    ...(d ? [`<p>${esc(d.heading)}</p>`, `<ul>${d.items.map((s) => `<li>${esc(s)}</li>`).join('')}</ul>`] : []),
    '<h2>Paired tests over seeds (Holm-corrected per measure)</h2>',
    `<p class="note">${esc(pairedNote(r))}</p>`,
    '<h3>Tuned</h3>',
    `<ul>${c.tuned.map((s) => `<li>${esc(s)}</li>`).join('')}</ul>`,
    '<h3>Untuned (defaults)</h3>',
    `<ul>${c.untuned.map((s) => `<li>${esc(s)}</li>`).join('')}</ul>`,
  ];
  r.losses.forEach((l, i) => {
    body.push(
      `<h2>${esc(l.label)}</h2>`,
      `<p>Spec: <code>${esc(l.spec)}</code>; fixed: ${esc(params(l.fixed))}; chosen (trial ${l.best.trial + 1}): ${esc(params(l.best.params))}.</p>`,
      traceSvg(l, LOSS_PALETTE[i % LOSS_PALETTE.length]!),
      parallelSvg(l, LOSS_PALETTE[i % LOSS_PALETTE.length]!),
      htmlTable(trialTable(l)),
    );
  });
  const css =
    'body{font-family:sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}table{border-collapse:collapse;margin:1em 0;font-size:13px}' +
    'th,td{border:1px solid #ccc;padding:3px 6px;text-align:left}th{background:#f3f3f3}.note{color:#555;font-size:13px}code{background:#f3f3f3;padding:0 3px}';
  return `<!doctype html>\n<html lang="en"><head><meta charset="utf-8"><title>Sweep report</title><style>${css}</style></head><body>${body.join('\n')}</body></html>\n`;
}

/**
 * Write report.md and report.html into `out` (each atomically, both rendered before either is
 * written). The report is made from the results as results.json holds them (NaN as null), so
 * that `siamese report DIR` rebuilds the very bytes `sweep` wrote; nothing in it is read from
 * the clock or the machine (its times and machine facts are results.json's).
 */
export async function writeSweepReport(r: SweepResults, out: string): Promise<{ html: string; md: string }> {
  const stored = JSON.parse(JSON.stringify(r)) as SweepResults;
  const mdText = sweepMarkdown(stored);
  const htmlText = sweepHtml(stored);
  const md = join(out, 'report.md');
  const html = join(out, 'report.html');
  await writeFileAtomic(md, mdText);
  await writeFileAtomic(html, htmlText);
  return { html, md };
}
