import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { lossPlotSpec, plotSpecs } from '../../src/cli/losses.ts';
import { siamese } from './run.ts';

const dir = mkdtempSync(join(tmpdir(), 'loss-plot-'));
after(() => rmSync(dir, { recursive: true, force: true }));

function texts(svg: string): string[] {
  return [...svg.matchAll(/<(text|tspan)[^>]*>([^<]*)<\/\1>/g)].map((m) => m[2]!);
}

/** The dash pattern of every drawn line (SVG paths with a stroke), in drawing order. */
function lineDashes(svg: string): string[] {
  return [...svg.matchAll(/<path [^>]*stroke-dasharray="([^"]+)"/g)].map((m) => m[1]!);
}

test('losses --plot: curves that coincide are dashed over one another and named in the caption', () => {
  const out = join(dir, 'losses.svg');
  const r = siamese(['losses', '--plot', '--losses', 'contrastive,coulomb,spring,power,yukawa', '--out', out]);
  assert.equal(r.code, 0, r.stderr);
  const svg = readFileSync(out, 'utf8');
  const t = texts(svg);
  // by hand, with the defaults: L_pos is D² for contrastive, coulomb and power (p = 2), spring's
  // is max(D − 0.1, 0)², yukawa's D³; L_neg is max(1 − D, 0)² for contrastive and spring (mn = 1),
  // 0.1/D for coulomb (q = 0.1) and power (a = 0.1, q = 1), exp(−10D)/D for yukawa
  assert.ok(t.includes('same L_pos(D): contrastive, coulomb and power (dashed over one another)'), t.join(' | '));
  assert.ok(t.includes('same L_neg(D): contrastive and spring (dashed over one another)'));
  assert.ok(t.includes('same L_neg(D): coulomb and power (dashed over one another)'));
  assert.equal(t.filter((s) => s.startsWith('same L_')).length, 3);
  // 10 curves: the first of each group and the loners solid, the 4 that lie on another dashed
  const dashes = lineDashes(svg);
  assert.equal(dashes.length, 10);
  assert.equal(dashes.filter((d) => d === '1,0').length, 6);
  assert.equal(new Set(dashes.filter((d) => d !== '1,0')).size, 2, 'the third of a group gets a pattern of its own');
});

test('the caption says one thing about the cut: no "drawn at 4" beside "cut at 2"', async () => {
  // yukawa's exp(−10D)/D is stored capped at 4 by the sampler; the axis is cut lower
  const spec = (await lossPlotSpec(plotSpecs({ losses: 'contrastive,yukawa' }))) as { title: { subtitle: string[] } };
  const subtitle = spec.title.subtitle;
  const cut = subtitle.map((s) => /^y axis cut at ([0-9.]+): curves that leave the top go higher/.exec(s)).find(Boolean);
  assert.ok(cut, subtitle.join(' | '));
  assert.ok(Number(cut[1]) <= 4);
  assert.ok(!subtitle.some((s) => /drawn at/.test(s)), subtitle.join(' | '));
  // nothing coincides here: no dashes, no note
  assert.ok(!subtitle.some((s) => s.startsWith('same L_')));
  const r = siamese(['losses', '--plot', '--losses', 'contrastive,yukawa', '--out', join(dir, 'two.svg')]);
  assert.equal(r.code, 0, r.stderr);
  assert.ok(lineDashes(readFileSync(join(dir, 'two.svg'), 'utf8')).every((d) => d === '1,0'));
});
