/**
 * What the broker shows the user's browser during an authorization: a
 * redirect (to the provider, or to the request's return URL), or a small page
 * of its own, and how either becomes an HTTP response.
 *
 * @since 0.1.0
 */
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import { withParams } from "./internal/authorizationRequest.js"
import type { AuthorizationRequestRecord } from "./Store.js"

/**
 * Where the user's browser goes next: a redirect, or a page of its own.
 *
 * @since 0.1.0
 * @category models
 */
export type BrowserAnswer =
  | { readonly _tag: "Redirect"; readonly location: string }
  | { readonly _tag: "Page"; readonly status: number; readonly title: string; readonly text: string }

/**
 * A redirect of the browser to `location`.
 *
 * @since 0.1.0
 * @category constructors
 */
export const redirect = (location: string): BrowserAnswer => ({ _tag: "Redirect", location })

/**
 * A page of the broker's own.
 *
 * @since 0.1.0
 * @category constructors
 */
export const page = (status: number, title: string, text: string): BrowserAnswer => ({
  _tag: "Page",
  status,
  title,
  text
})

/**
 * The page of a failure of the broker's own, while starting or completing an authorization.
 *
 * @since 0.1.0
 * @category pages
 */
export const somethingWentWrong = (doing: "start" | "complete"): BrowserAnswer =>
  page(500, "Something went wrong", `The broker could not ${doing} this authorization.`)

/**
 * The page of a callback that does not belong to a request of this broker.
 *
 * @since 0.1.0
 * @category pages
 */
export const invalidCallback = (why: "no state" | "unknown state"): BrowserAnswer =>
  why === "no state"
    ? page(400, "Invalid request", "The provider's answer has no state: this link was not made by this broker.")
    : page(400, "Invalid request", "This authorization is unknown to the broker: the state does not match.")

/**
 * Where the user goes once a request is over: its return URL (with the
 * request, its status and its error or installation in the query), or a page.
 *
 * @since 0.1.0
 * @category pages
 */
export const finished = (
  record: AuthorizationRequestRecord,
  outcome: { readonly error?: string; readonly installationId?: string }
): BrowserAnswer => {
  const params: Record<string, string> = {
    request: record.id,
    status: outcome.error === undefined ? "completed" : "failed",
    ...(outcome.error === undefined ? {} : { error: outcome.error }),
    ...(outcome.installationId === undefined ? {} : { installationId: outcome.installationId })
  }
  if (record.returnUrl !== undefined) return redirect(withParams(record.returnUrl, params))
  return outcome.error === undefined
    ? page(200, "Connected", "Your account is connected. You can close this window.")
    : page(400, "Not connected", `The authorization did not complete (${outcome.error}). You can close this window.`)
}

/**
 * What a request already taken shows a replayed callback: its outcome, once
 * it has one. A request awaiting confirmation never shows its code again.
 *
 * @since 0.1.0
 * @category pages
 */
export const outcome = (record: AuthorizationRequestRecord): BrowserAnswer => {
  switch (record.status) {
    case "completed":
      return finished(record, record.kind === "install" ? { installationId: record.installationId } : {})
    case "failed":
      return finished(record, { error: record.error ?? "failed" })
    case "awaiting_confirmation":
      // Never the code again: whoever replays the state (it is in the link's first redirect) must not get it.
      return record.returnUrl === undefined
        ? page(200, "Connected", "Return to the application to finish connecting your account.")
        : redirect(withParams(record.returnUrl, { request: record.id, status: "awaiting_confirmation" }))
    case "completing":
      return page(503, "Still connecting", "The authorization is still being completed. Reload this page.")
    default:
      return page(400, "Link expired", "This authorization has expired. Ask for a new one.")
  }
}

const escapeHtml = (text: string) => text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`)

/**
 * The HTTP response for an answer: a `302`, or the page as HTML; neither is cached.
 *
 * @since 0.1.0
 * @category responses
 */
export const toResponse = (answer: BrowserAnswer): HttpServerResponse.HttpServerResponse =>
  answer._tag === "Redirect"
    ? HttpServerResponse.empty({ status: 302, headers: { location: answer.location, "cache-control": "no-store" } })
    : HttpServerResponse.html(
        `<!doctype html><html><head><meta charset="utf-8"><title>${escapeHtml(answer.title)}</title></head>` +
          `<body><h1>${escapeHtml(answer.title)}</h1><p>${escapeHtml(answer.text)}</p></body></html>`
      ).pipe(HttpServerResponse.setStatus(answer.status), HttpServerResponse.setHeader("cache-control", "no-store"))
