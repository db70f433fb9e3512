// "Did you mean": the known names nearest to a mistyped one, by edit distance (insertions, deletions, substitutions
// and swaps of neighbours each count one), so `usr` finds `user`, `lsit` finds `list` and `--clinet` finds `--client`.

/** Optimal string alignment distance between a and b. */
export function editDistance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) => [i]);
  for (let j = 1; j <= b.length; j++) d[0]![j] = j;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let best = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) {
        best = Math.min(best, d[i - 2]![j - 2]! + 1);
      }
      d[i]![j] = best;
    }
  }
  return d[a.length]![b.length]!;
}

/**
 * The candidates close enough to `typed` to be what was meant, nearest first: within two edits (one for names of
 * up to four letters), or beginning with what was typed (at least two letters).
 */
export function nearest(typed: string, candidates: Iterable<string>): string[] {
  const word = typed.toLowerCase();
  const scored: [string, number][] = [];
  for (const c of new Set(candidates)) {
    const distance = editDistance(word, c.toLowerCase());
    const limit = Math.min(2, Math.max(1, Math.floor(c.length / 3)));
    if (distance <= limit) scored.push([c, distance]);
    else if (word.length >= 2 && c.toLowerCase().startsWith(word)) scored.push([c, limit + 1]);
  }
  return scored.sort((x, y) => x[1] - y[1] || x[0].localeCompare(y[0])).map(([c]) => c);
}

/** `; did you mean 'x'?` (or `'x' or 'y'`), or nothing when nothing is near. */
export function didYouMean(suggestions: readonly string[]): string {
  if (suggestions.length === 0) return '';
  const shown = suggestions.slice(0, 2).map((s) => `'${s}'`);
  return `; did you mean ${shown.join(' or ')}?`;
}
