/**
 * "Did you mean": the known name nearest to a mistyped one, by the
 * Damerau–Levenshtein distance (optimal string alignment: insertions,
 * deletions, substitutions and swaps of two neighbours each count one).
 *
 * @since 0.1.0
 */

/**
 * The edits that turn `a` into `b`.
 *
 * @since 0.1.0
 * @category utils
 */
export const distance = (a: string, b: string): number => {
  // Three rows suffice: a swap looks two rows back.
  let before = new Array<number>(b.length + 1).fill(0)
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j)
  for (let i = 1; i <= a.length; i++) {
    const current = [i]
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1
      let best = Math.min((previous[j] ?? 0) + 1, (current[j - 1] ?? 0) + 1, (previous[j - 1] ?? 0) + cost)
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1])
        best = Math.min(best, (before[j - 2] ?? 0) + 1)
      current[j] = best
    }
    before = previous
    previous = current
  }
  return previous[b.length] ?? 0
}

/**
 * The most edits a suggestion may be away: one for short names, a quarter of
 * the name's length for longer ones, at most three, so that an unrelated name
 * is never offered.
 *
 * @since 0.1.0
 * @category utils
 */
export const threshold = (name: string): number => Math.min(3, Math.max(1, Math.floor(name.length / 4)))

/**
 * The candidate nearest to `name` (letter case ignored) within
 * {@link threshold}, or `undefined`; `name` itself is never suggested.
 *
 * @since 0.1.0
 * @category utils
 */
export const closest = (name: string, candidates: Iterable<string>): string | undefined => {
  const wanted = name.toLowerCase()
  let best: { readonly candidate: string; readonly distance: number } | undefined
  for (const candidate of candidates) {
    if (candidate === name) continue
    const d = distance(wanted, candidate.toLowerCase())
    if (d <= threshold(name) && (best === undefined || d < best.distance)) best = { candidate, distance: d }
  }
  return best?.candidate
}
