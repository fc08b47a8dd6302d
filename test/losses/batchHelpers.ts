/**
 * The oracle of the batch accuracy (the native sweeps' and the TypeScript's): every pair i < j
 * ranked by s (higher: "same"), sorted, and the count of pairs right swept over every cut (ties
 * move together), from the cut above all (every pair "different"). Plain and slow on purpose.
 */
export function sortAndSweep(s: ArrayLike<number>, labels: Int32Array): number {
  const n = labels.length;
  const pairs: { s: number; same: boolean }[] = [];
  for (let i = 0; i < n; i++) for (let j = i + 1; j < n; j++) pairs.push({ s: s[i * n + j]!, same: labels[i] === labels[j] });
  if (pairs.length === 0) return 0;
  pairs.sort((a, b) => b.s - a.s);
  let correct = pairs.filter((p) => !p.same).length;
  let best = correct;
  for (let q = 0; q < pairs.length; ) {
    const v = pairs[q]!.s;
    for (; q < pairs.length && pairs[q]!.s === v; q++) correct += pairs[q]!.same ? 1 : -1;
    best = Math.max(best, correct);
  }
  return best / pairs.length;
}
