/**
 * How the dashboard answers and reads requests: HTML pages with a strict
 * Content-Security-Policy and no caching, redirects after a change, its two
 * static files, and forms read strictly (a field the form does not have is
 * refused by name, and so is a form too large).
 *
 * @internal
 */
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import { Effect, Schema } from "effect"
import type { Html } from "./html.js"

/**
 * The policy of every dashboard answer: its own files only, no inline script
 * or style, forms posted only to itself, never framed.
 */
export const CONTENT_SECURITY_POLICY =
  "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'"

const SECURITY_HEADERS: Readonly<Record<string, string>> = {
  "content-security-policy": CONTENT_SECURITY_POLICY,
  "cache-control": "no-store",
  "x-content-type-options": "nosniff",
  "x-frame-options": "DENY",
  // Not `no-referrer`: with it, browsers send `Origin: null` on the dashboard's own form posts.
  "referrer-policy": "same-origin"
}

/** A page. */
export const page = (status: number, body: Html): HttpServerResponse.HttpServerResponse =>
  HttpServerResponse.html(body.text).pipe(
    HttpServerResponse.setStatus(status),
    HttpServerResponse.setHeaders(SECURITY_HEADERS)
  )

/** A redirect after a change (`303`: the browser follows with a GET). */
export const seeOther = (location: string): HttpServerResponse.HttpServerResponse =>
  HttpServerResponse.empty({ status: 303, headers: { ...SECURITY_HEADERS, location } })

/** A small JSON answer of the dashboard's own (the status that "Try it" polls). */
export const dashboardJson = (body: Readonly<Record<string, string>>): HttpServerResponse.HttpServerResponse =>
  HttpServerResponse.unsafeJson(body).pipe(HttpServerResponse.setHeaders(SECURITY_HEADERS))

/** A static file; it may be cached for a while, it holds nothing of anyone's. */
export const asset = (text: string, contentType: string): HttpServerResponse.HttpServerResponse =>
  HttpServerResponse.text(text, { contentType }).pipe(
    HttpServerResponse.setHeaders({
      ...SECURITY_HEADERS,
      "cache-control": "public, max-age=300"
    })
  )

/**
 * A form the dashboard refused: what was wrong, by field.
 *
 * @internal
 */
export class DashboardFormError extends Schema.TaggedError<DashboardFormError>()("DashboardFormError", {
  detail: Schema.String
}) {
  override get message(): string {
    return this.detail
  }
}

/** The most a dashboard form may weigh. */
export const MAX_FORM_BYTES = 16_384

/** The form of the request: only `fields` (each once, each at most 2048 characters). */
export const readForm = <const F extends string>(
  fields: ReadonlyArray<F>
): Effect.Effect<Readonly<Record<F, string | undefined>>, DashboardFormError, HttpServerRequest.HttpServerRequest> =>
  Effect.gen(function* () {
    const request = yield* HttpServerRequest.HttpServerRequest
    const length = Number(request.headers["content-length"] ?? "0")
    if (!(length <= MAX_FORM_BYTES)) {
      return yield* new DashboardFormError({ detail: `the form is larger than ${MAX_FORM_BYTES} bytes` })
    }
    const params = yield* request.urlParamsBody.pipe(
      Effect.mapError(() => new DashboardFormError({ detail: "the request is not a form" }))
    )
    const form: Partial<Record<F, string>> = {}
    for (const [name, value] of params) {
      if (!(fields as ReadonlyArray<string>).includes(name)) {
        return yield* new DashboardFormError({ detail: `unknown field "${name}"` })
      }
      if (form[name as F] !== undefined) return yield* new DashboardFormError({ detail: `field "${name}" given twice` })
      if (value.length > 2048) return yield* new DashboardFormError({ detail: `field "${name}" is too long` })
      form[name as F] = value
    }
    return form as Readonly<Record<F, string | undefined>>
  })
