/**
 * Pacing of the page's redraws. Events ask for redraws as data arrives; a redraw asked for waits,
 * after the last drawing ended, as long as the view's last drawing took. A table of hundreds of
 * runs takes a few hundred ms to lay out, and epochs arriving faster than that (a fleet, a
 * sweep's folds) would otherwise keep the page drawing all the time, deaf to the user; paced,
 * drawing takes at most about half of the time, and the asks that come while one waits are
 * drawn together by it. A view that draws in a few ms is drawn as good as at once.
 */

export interface Clock {
  now(): number;
  setTimeout(f: () => void, ms: number): unknown;
  clearTimeout(t: unknown): void;
}

export interface Pacer {
  /** a redraw: now (`now`, the user asked), or once the pace allows */
  ask(now?: boolean): void;
  /** a redraw waits */
  readonly waiting: boolean;
}

/**
 * `draw` draws what is due and returns the key of the view it drew (its cost is kept under it),
 * or null when nothing was due; `key` is the view a redraw would draw now.
 */
export function pacer(clock: Clock, draw: () => string | null, key: () => string): Pacer {
  const cost = new Map<string, number>();
  let drawnAt = -Infinity;
  let timer: unknown;
  const run = (): void => {
    if (timer !== undefined) clock.clearTimeout(timer);
    timer = undefined;
    const t0 = clock.now();
    const drawn = draw();
    if (drawn === null) return;
    drawnAt = clock.now();
    cost.set(drawn, drawnAt - t0);
  };
  return {
    ask(now = false): void {
      if (now) return run();
      if (timer !== undefined) return;
      const wait = drawnAt + (cost.get(key()) ?? 0) - clock.now();
      if (wait <= 0) return run();
      timer = clock.setTimeout(run, wait);
    },
    get waiting(): boolean {
      return timer !== undefined;
    },
  };
}
