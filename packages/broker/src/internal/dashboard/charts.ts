/**
 * The dashboard's charts, as inline SVG (no script, no style attribute: the
 * Content-Security-Policy allows neither): token requests and failures per
 * hour, as pairs of bars.
 *
 * @internal
 */
import { type Html, html } from "./html.js"

/** Counts per hour, oldest first, ending with the hour under way. */
export interface HourlySeries {
  readonly issued: ReadonlyArray<number>
  readonly failed: ReadonlyArray<number>
  /** The start of the last hour, in milliseconds. */
  readonly lastHourStart: number
}

const HOUR_MS = 3_600_000

/** Counts events into the `hours` hours that end with the one under way at `now`. */
export const hourly = (
  events: ReadonlyArray<{
    readonly occurredAt: number
    readonly outcome: "issued" | "failed"
    /** How many it stands for (an event of answers given from memory counts them), 1 by default. */
    readonly count?: number
  }>,
  now: number,
  hours: number
): HourlySeries => {
  const lastHourStart = Math.floor(now / HOUR_MS) * HOUR_MS
  const first = lastHourStart - (hours - 1) * HOUR_MS
  const issued = new Array<number>(hours).fill(0)
  const failed = new Array<number>(hours).fill(0)
  for (const event of events) {
    const index = Math.floor((event.occurredAt - first) / HOUR_MS)
    if (index < 0 || index >= hours) continue
    const count = event.count ?? 1
    if (event.outcome === "issued") issued[index] = (issued[index] ?? 0) + count
    else failed[index] = (failed[index] ?? 0) + count
  }
  return { issued, failed, lastHourStart }
}

const WIDTH = 480
const HEIGHT = 140
const LEFT = 28
const BOTTOM = 18

/** A bar chart of a series: for each hour a bar of tokens issued and one of failures, with a text summary. */
export const barChart = (title: string, series: HourlySeries): Html => {
  const hours = series.issued.length
  const max = Math.max(1, ...series.issued, ...series.failed)
  const slot = (WIDTH - LEFT) / hours
  const bar = Math.max(1, slot / 2 - 1)
  const plot = HEIGHT - BOTTOM
  const y = (n: number) => plot - (n / max) * (plot - 8)
  const bars = series.issued.map((issued, i) => {
    const failed = series.failed[i] ?? 0
    const x = LEFT + i * slot
    return html`<rect class="issued" x="${x.toFixed(1)}" y="${y(issued).toFixed(1)}" width="${bar.toFixed(1)}" height="${(plot - y(issued)).toFixed(1)}"><title>${issued} issued</title></rect><rect class="failed" x="${(x + bar).toFixed(1)}" y="${y(failed).toFixed(1)}" width="${bar.toFixed(1)}" height="${(plot - y(failed)).toFixed(1)}"><title>${failed} failed</title></rect>`
  })
  const firstHour = new Date(series.lastHourStart - (hours - 1) * HOUR_MS).toISOString().slice(11, 16)
  const total = (xs: ReadonlyArray<number>) => xs.reduce((a, b) => a + b, 0)
  const summary = `${title}: ${total(series.issued)} tokens issued and ${total(series.failed)} failures in the last ${hours} hours; at most ${max} in an hour`
  return html`<figure><svg class="chart" viewBox="0 0 ${WIDTH} ${HEIGHT}" role="img" aria-label="${summary}" xmlns="http://www.w3.org/2000/svg">
<line class="axis" x1="${LEFT}" y1="${plot}" x2="${WIDTH}" y2="${plot}"></line>
<text x="0" y="12">${max}</text><text x="0" y="${plot}">0</text>
${bars}
<text x="${LEFT}" y="${HEIGHT - 4}">${firstHour} UTC</text><text x="${WIDTH - 40}" y="${HEIGHT - 4}">now</text>
</svg><figcaption class="muted">${summary}. <span class="swatch-issued">■</span> issued <span class="bad">■</span> failed</figcaption></figure>`
}
