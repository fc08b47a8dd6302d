// The sweep's search: determinism, the quasi-random start, and the search itself on functions
// whose optimum is known, against plain random search with the same budget.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { fromUnit, halton, type Observation, type SearchDim, suggest, toUnit } from '../../src/experiments/tpe.ts';
import { Rng } from '../../src/rng.ts';

const unit2: SearchDim[] = [
  { name: 'x', lo: 0, hi: 1, log: false, int: false },
  { name: 'y', lo: 0, hi: 1, log: false, int: false },
];

/** Run a whole search of `trials` on `f`; returns every observation. */
function search(space: SearchDim[], f: (p: Record<string, number>) => number, trials: number, seed: number): Observation[] {
  const h: Observation[] = [];
  for (let t = 0; t < trials; t++) {
    const params = suggest(space, h, { seed });
    h.push({ params, score: f(params) });
  }
  return h;
}

const best = (h: Observation[]) => Math.max(...h.map((o) => o.score));
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

test('the same seed and history give the same trials; another seed gives others', () => {
  const f = (p: Record<string, number>) => -((p.x! - 0.3) ** 2) - (p.y! - 0.7) ** 2;
  const a = search(unit2, f, 20, 5);
  const b = search(unit2, f, 20, 5);
  assert.deepEqual(a, b);
  const c = search(unit2, f, 20, 6);
  assert.notDeepEqual(a.map((o) => o.params), c.map((o) => o.params));
  // resuming: asking again with the first 12 observations gives trial 12 again
  assert.deepEqual(suggest(unit2, a.slice(0, 12), { seed: 5 }), a[12]!.params);
});

test('the Halton start covers the square evenly: 16 points put 4 in each quadrant, up to one', () => {
  const pts = Array.from({ length: 16 }, (_, i) => halton(2, i, 3));
  for (const p of pts) assert.ok(p.every((v) => v >= 0 && v < 1));
  const quadrant = [0, 0, 0, 0];
  for (const [x, y] of pts) quadrant[(x! < 0.5 ? 0 : 1) + (y! < 0.5 ? 0 : 2)]!++;
  for (const q of quadrant) assert.ok(q >= 3 && q <= 5, `quadrants ${quadrant}`);
});

test('log and integer scales map to and from the unit cube', () => {
  const space: SearchDim[] = [
    { name: 'lr', lo: 1e-4, hi: 1e-2, log: true, int: false },
    { name: 'power', lo: 1, hi: 4, log: false, int: true },
  ];
  assert.deepEqual(fromUnit(space, [0.5, 0.5]), { lr: 0.001, power: 3 }); // 2.5 rounds to 3
  assert.deepEqual(fromUnit(space, [0, 0]), { lr: 1e-4, power: 1 });
  assert.deepEqual(fromUnit(space, [1, 1]), { lr: 0.01, power: 4 });
  const u = toUnit(space, { lr: 0.001, power: 2 });
  assert.ok(Math.abs(u[0]! - 0.5) < 1e-12);
  assert.ok(Math.abs(u[1]! - 1 / 3) < 1e-12);
});

test('on a smooth 2-D bowl, 40 trials land near the optimum and beat random search over 11 seeds', () => {
  const f = (p: Record<string, number>) => -((p.x! - 0.3) ** 2) - (p.y! - 0.7) ** 2;
  const tpe: number[] = [];
  const random: number[] = [];
  for (let seed = 0; seed < 11; seed++) {
    tpe.push(best(search(unit2, f, 40, seed)));
    const rng = new Rng(1000 + seed);
    random.push(Math.max(...Array.from({ length: 40 }, () => f({ x: rng.next(), y: rng.next() }))));
  }
  // regret: squared distance to the optimum; 0.032 apart is a regret of 0.001
  assert.ok(median(tpe) > -0.001, `median best ${median(tpe)}`);
  assert.ok(median(tpe) > median(random), `TPE ${median(tpe)} against random ${median(random)}`);
});

test('a learning rate on a log scale: the best of 30 trials is within a factor 1.6 of 1e-3', () => {
  const space: SearchDim[] = [{ name: 'lr', lo: 1e-5, hi: 1e-1, log: true, int: false }];
  const h = search(space, (p) => -((Math.log10(p.lr!) + 3) ** 2), 30, 2);
  const top = h.reduce((a, b) => (b.score > a.score ? b : a));
  assert.ok(Math.abs(Math.log10(top.params.lr!) + 3) < 0.2, `best lr ${top.params.lr}`);
});

test('an integer parameter is searched over integers and its best value is found', () => {
  const space: SearchDim[] = [
    { name: 'power', lo: 1, hi: 4, log: false, int: true },
    { name: 'kappa', lo: 1, hi: 40, log: true, int: false },
  ];
  const h = search(space, (p) => -((p.power! - 3) ** 2) - (Math.log(p.kappa!) - Math.log(10)) ** 2, 30, 4);
  for (const o of h) assert.ok(Number.isInteger(o.params.power) && o.params.power! >= 1 && o.params.power! <= 4);
  const top = h.reduce((a, b) => (b.score > a.score ? b : a));
  assert.equal(top.params.power, 3);
});

test('trials that failed (NaN score) do not steer the search, and the search still converges', () => {
  const f = (p: Record<string, number>) => (p.x! > 0.9 ? NaN : -((p.x! - 0.3) ** 2) - (p.y! - 0.7) ** 2);
  const h = search(unit2, f, 40, 1);
  assert.ok(h.some((o) => Number.isNaN(o.score)) || h.every((o) => o.params.x! <= 0.9));
  assert.ok(best(h.filter((o) => Number.isFinite(o.score))) > -0.005);
});
