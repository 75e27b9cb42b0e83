/**
 * The dashboard's defence against cross-site requests. Every change is a
 * form POST that must pass all three checks: the browser says the request
 * comes from the same origin (`Sec-Fetch-Site`, and `Origin` naming the host
 * the request was sent to), and the form carries the session's CSRF token.
 * The cookie being `SameSite=Strict` is a fourth: a cross-site POST carries no
 * session at all.
 *
 * @internal
 */
import type { Headers } from "@effect/platform/Headers"
import { equal, type Session } from "./session.js"

/** The form field that carries the CSRF token. */
export const CSRF_FIELD = "csrf"

/**
 * Why a request does not come from the dashboard's own pages, or none when
 * it does: a browser sends `Origin` with every POST, and `Sec-Fetch-Site`
 * with every request; a request with neither is refused too.
 */
export const crossSiteProblem = (headers: Headers): string | undefined => {
  const site = headers["sec-fetch-site"]
  if (site !== undefined && site !== "same-origin") return `the request came from another site (${site})`
  const origin = headers.origin
  if (origin === undefined) return site === undefined ? "the request has no Origin" : undefined
  const host = headers.host
  try {
    if (host !== undefined && new URL(origin).host === host) return undefined
  } catch {
    // An origin that is not a URL ("null") is not this one.
  }
  return "the request came from another origin"
}

/** Whether the form's CSRF token is the session's. */
export const csrfMatches = (session: Session, submitted: string | undefined): boolean =>
  submitted !== undefined && equal(submitted, session.csrf)
