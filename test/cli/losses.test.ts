import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { formatLossList, listLosses, lossesCommand, plotSpecs, sampleLossShape } from '../../src/cli/losses.ts';
import { UsageError } from '../../src/errors.ts';
import { lossNames } from '../../src/losses/registry.ts';

const root = mkdtempSync(join(tmpdir(), 'siamese-losses-'));
after(() => rmSync(root, { recursive: true, force: true }));

test('siamese losses lists every registered loss with its formula and parameters', () => {
  const infos = listLosses();
  assert.deepEqual(infos.map((i) => i.name), lossNames());
  const byName = new Map(infos.map((i) => [i.name, i]));
  assert.equal(byName.get('contrastive')!.formula, 'Y·D² + (1−Y)·max(1 − D, 0)²');
  assert.deepEqual(byName.get('yukawa')!.params, { kappa: 10, power: 3, epsilon: 1e-7 });
  assert.equal(byName.get('triplet')!.kind, 'triplet');
  assert.deepEqual(Object.keys(byName.get('custom')!.params), ['pos', 'neg']);
  const text = formatLossList(infos);
  for (const i of infos) assert.match(text, new RegExp(`^${i.name} +${i.kind}`, 'm'));
  assert.match(text, /parameters: margin=1/);
});

test('the plot draws the default losses, any list, and --pos/--neg as a custom loss', () => {
  assert.deepEqual(plotSpecs({}).map((s) => s.id), ['contrastive', 'yukawa', 'triplet']);
  assert.deepEqual(plotSpecs({ pos: 'd^2', neg: 'exp(-5*d)' }).map((s) => s.loss), ['custom']);
  const specs = plotSpecs({ losses: 'yukawa:kappa=5,custom:pos=d^3;neg=exp(-10*d)/d', pos: 'd', neg: '1/(1+d)' });
  assert.deepEqual(specs.map((s) => s.loss), ['yukawa', 'custom', 'custom']);
  assert.equal(new Set(specs.map((s) => s.id)).size, 3);
  // the custom shape is the formula, sampled on [0, 1.5] and capped at 4
  const shape = sampleLossShape(specs[2]!);
  assert.equal(shape.d.length, 151);
  assert.equal(shape.d[150], 1.5);
  assert.equal(shape.pos[100], 1);
  assert.ok(Math.abs(shape.neg[100]! - 0.5) < 1e-6);
  const yukawa = sampleLossShape(specs[0]!);
  assert.equal(yukawa.neg[0], 4);
  assert.match(yukawa.label, /values above 4 drawn at 4/);
  assert.throws(() => plotSpecs({ pos: 'd' }), (e: Error) => e instanceof UsageError && /needs both --pos and --neg/.test(e.message));
  assert.throws(() => plotSpecs({ pos: 'd^', neg: 'd' }), UsageError);
  assert.throws(() => plotSpecs({ losses: 'nope' }), /unknown loss "nope"/);
});

test('siamese losses --plot writes an SVG or a PNG, atomically, with every loss in the legend', async () => {
  const svgPath = join(root, 'losses.svg');
  const r = await lossesCommand({ losses: 'yukawa,contrastive', pos: 'd^3', neg: 'exp(-10*d)/d', out: svgPath, print: false });
  assert.deepEqual(r.plotted, ['yukawa', 'contrastive', 'custom']);
  const svg = readFileSync(svgPath, 'utf8');
  assert.match(svg, /^<svg/);
  for (const label of ['yukawa', 'contrastive', 'custom: pos = d^3']) assert.ok(svg.includes(label), `legend has ${label}`);
  assert.match(svg, /L_pos\(D\)/);
  const pngPath = join(root, 'losses.png');
  await lossesCommand({ plot: true, out: pngPath, print: false });
  assert.deepEqual([...readFileSync(pngPath).subarray(0, 8)], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  await assert.rejects(lossesCommand({ out: join(root, 'x.jpg'), print: false }), /written as \.svg or \.png/);
});
