/** "1 run", "3 runs": a count with its noun in the right number (the plural is the noun + s unless given). */
export function count(n: number, singular: string, plural = `${singular}s`): string {
  return `${n} ${n === 1 ? singular : plural}`;
}
