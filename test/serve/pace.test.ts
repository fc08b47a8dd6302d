/**
 * The page's redraw pacing (src/web/pace.ts), on a simulated clock: a view that draws in 1 ms is
 * drawn at every ask; one that takes 300 ms (a table of hundreds of runs) under asks every 50 ms
 * draws at most about half of the time, every ask is drawn by a drawing that starts after it, and
 * the last one within two drawings' time; an ask of the user's (`now`) draws at once.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { pacer } from '../../src/web/pace.ts';

/** A simulated clock: timers run when the time passes theirs, in order. */
function simulated() {
  let t = 0;
  let next = 1;
  const timers = new Map<number, { at: number; f: () => void }>();
  return {
    clock: {
      now: () => t,
      setTimeout: (f: () => void, ms: number) => {
        timers.set(next, { at: t + ms, f });
        return next++;
      },
      clearTimeout: (id: unknown) => void timers.delete(id as number),
    },
    /** let the time run to `to`, running the timers due on the way */
    advance(to: number) {
      for (;;) {
        const due = [...timers].filter(([, x]) => x.at <= to).sort((a, b) => a[1].at - b[1].at)[0];
        if (!due) break;
        timers.delete(due[0]);
        t = Math.max(t, due[1].at);
        due[1].f();
      }
      t = Math.max(t, to);
    },
    spend(ms: number) {
      t += ms;
    },
  };
}

/** asks every `every` ms until `until`, each drawing costing `cost` ms: the drawings' start and end times, and each ask's time */
function run(cost: number, every: number, until: number) {
  const sim = simulated();
  const draws: { start: number; end: number }[] = [];
  let due = false;
  const p = pacer(
    sim.clock,
    () => {
      if (!due) return null;
      due = false;
      const start = sim.clock.now();
      sim.spend(cost);
      draws.push({ start, end: sim.clock.now() });
      return 'runs';
    },
    () => 'runs',
  );
  const asks: number[] = [];
  for (let at = 0; at <= until; at += every) {
    sim.advance(at);
    // an event that arrives while a drawing runs is handled after it
    asks.push(sim.clock.now());
    due = true;
    p.ask();
  }
  sim.advance(until + 10 * cost);
  return { draws, asks, p, sim, setDue: () => (due = true) };
}

test('cheap drawings are drawn at every ask, at once', () => {
  const { draws, asks } = run(1, 50, 1000);
  assert.equal(draws.length, asks.length);
  draws.forEach((d, i) => assert.equal(d.start, asks[i]));
});

test('costly drawings under a flood of asks: at most about half the time drawing, every ask drawn within two drawings', () => {
  const { draws, asks } = run(300, 50, 6000);
  // unpaced: 121 drawings, each ask waiting for the ones before (the page never idle)
  assert.ok(draws.length < asks.length / 5, `${draws.length} drawings for ${asks.length} asks`);
  for (let i = 1; i < draws.length; i++) {
    const gap = draws[i]!.start - draws[i - 1]!.end;
    assert.ok(gap >= 300 - 1e-9, `drawing ${i} began ${gap} ms after the one before ended`);
  }
  const busy = draws.reduce((s, d) => s + d.end - d.start, 0);
  assert.ok(busy <= 0.5 * draws.at(-1)!.end + 300, `busy ${busy} ms of ${draws.at(-1)!.end}`);
  for (const a of asks) {
    const by = draws.find((d) => d.start >= a);
    assert.ok(by, `the ask at ${a} ms was drawn`);
    assert.ok(by.end - a <= 2 * 300 + 300, `the ask at ${a} ms drawn by ${by.end} ms`);
  }
});

test("the user's ask draws at once, also while a redraw waits, and takes its place", () => {
  const { draws, p, sim, setDue } = run(300, 50, 100);
  // a drawing (300 ms) has just ended: an ask now waits...
  setDue();
  p.ask();
  assert.equal(p.waiting, false, 'the last drawing ended long ago: drawn at once');
  const before = draws.length;
  const t = sim.clock.now();
  setDue();
  p.ask();
  assert.equal(p.waiting, true);
  // ...unless the user asks
  p.ask(true);
  assert.equal(draws.length, before + 1);
  assert.equal(draws.at(-1)!.start, t);
  assert.equal(p.waiting, false);
  sim.advance(t + 5000);
  assert.equal(draws.length, before + 1, 'nothing left to draw');
});
