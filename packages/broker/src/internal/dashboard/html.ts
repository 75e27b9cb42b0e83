/**
 * HTML for the dashboard, escaped by construction: `html` is a template tag
 * whose interpolated values are escaped unless they are `Html` already, so a
 * value from the store or the request can never become markup.
 *
 * @internal
 */

/** Markup that is safe to send: built by `html`, never from a plain string. */
export interface Html {
  readonly _tag: "Html"
  readonly text: string
}

/** What a template may interpolate: text (escaped), numbers, markup, lists of them; nothing for `undefined`/`false`. */
export type Interpolated = Html | string | number | boolean | undefined | null | ReadonlyArray<Interpolated>

const ESCAPES: Readonly<Record<string, string>> = {
  "&": "&amp;",
  "<": "&lt;",
  ">": "&gt;",
  '"': "&quot;",
  "'": "&#39;"
}

/** Text as HTML text or attribute value. */
export const escapeHtml = (text: string): string => text.replace(/[&<>"']/g, (c) => ESCAPES[c] ?? c)

const render = (value: Interpolated): string => {
  if (value === undefined || value === null || value === false || value === true) return ""
  if (typeof value === "string") return escapeHtml(value)
  if (typeof value === "number") return escapeHtml(String(value))
  if (Array.isArray(value)) return value.map(render).join("")
  return (value as Html).text
}

/** A template of markup: its literal parts as written, every value escaped. */
export const html = (strings: TemplateStringsArray, ...values: ReadonlyArray<Interpolated>): Html => ({
  _tag: "Html",
  text: strings.reduce((out, part, i) => out + part + (i < values.length ? render(values[i] as Interpolated) : ""), "")
})

/** Markup made elsewhere and known safe (the charts' SVG, built with `html` too). */
export const join = (parts: ReadonlyArray<Html>): Html => ({ _tag: "Html", text: parts.map((p) => p.text).join("") })

/** A time as the dashboard shows it: UTC, to the second. */
export const time = (millis: number | undefined): string =>
  millis === undefined
    ? "—"
    : new Date(millis)
        .toISOString()
        .replace("T", " ")
        .replace(/\.\d+Z$/, " UTC")

/**
 * A secret shortened for showing: its first and last four characters, so
 * that it can be recognised, never used.
 */
export const shortened = (value: string): string =>
  value.length <= 16 ? "…" : `${value.slice(0, 4)}…${value.slice(-4)}`
