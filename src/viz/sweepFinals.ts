/**
 * The final trainings a sweep runs, from its definition's outline (no Node imports: `serve`'s
 * page counts them while a sweep runs): per loss its seeds tuned and at the defaults, but once for
 * a loss with nothing to search, whose tuned seeds stand for its default ones (sharesFinals in
 * experiments/sweep.ts, which an empty search space always satisfies: the defaults replace
 * searched values only).
 */
export function sweepFinalTrainings(outline: { seeds: number; losses: readonly { space: readonly unknown[] }[] }): number {
  return outline.losses.reduce((n, l) => n + (l.space.length > 0 ? 2 : 1) * outline.seeds, 0);
}
