/** "1 run", "3 runs": a count with its noun in the right number (the plural is the noun + s unless given). */
export function count(n: number, singular: string, plural = `${singular}s`): string {
  return `${n} ${n === 1 ? singular : plural}`;
}

/** "p < 0.001", "p = 0.004", "p = 0.03" (name: the p's name, e.g. "Holm p"). */
export function formatP(p: number, name = 'p'): string {
  return p < 0.001 ? `${name} < 0.001` : `${name} = ${p < 0.01 ? p.toFixed(3) : p.toFixed(2)}`;
}
