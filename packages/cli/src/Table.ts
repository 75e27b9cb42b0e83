/**
 * Plain-text tables for the command line's `--format plain`: columns padded
 * to their widest cell, two spaces apart, no trailing spaces.
 *
 * @since 0.1.0
 */

/**
 * The rows (the first one the header) as aligned lines.
 *
 * @since 0.1.0
 * @category utils
 */
export const table = (rows: ReadonlyArray<ReadonlyArray<string>>): string => {
  const widths: Array<number> = []
  for (const row of rows) {
    row.forEach((cell, index) => {
      widths[index] = Math.max(widths[index] ?? 0, cell.length)
    })
  }
  return rows
    .map((row) =>
      row
        .map((cell, index) => (index === row.length - 1 ? cell : cell.padEnd(widths[index] ?? 0)))
        .join("  ")
        .trimEnd()
    )
    .join("\n")
}

/**
 * A time in milliseconds since the epoch, as ISO 8601 (UTC).
 *
 * @since 0.1.0
 * @category utils
 */
export const isoTime = (ms: number): string => (Number.isFinite(ms) ? new Date(ms).toISOString() : String(ms))
