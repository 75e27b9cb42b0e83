/**
 * Who may see and change what on the dashboard. A page needs the admin token
 * configured (else it says how to enable the dashboard, and nothing else) and
 * a session (else the sign-in form). A change needs, besides, a request from
 * the dashboard's own pages (see `csrf.ts`) with the session's CSRF token.
 * Failures become pages, never a 500 with a cause: the cause is logged.
 *
 * @internal
 */
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import type * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import { Clock, Effect, Option, type Redacted } from "effect"
import { isConnectError } from "effect-connect/ConnectError"
import { AdminConflict, AdminNotFound } from "../../Admin.js"
import { AdminToken } from "../../AdminToken.js"
import { Cipher } from "../../Cipher.js"
import { PublicUrl } from "../../PublicUrl.js"
import { CSRF_FIELD, crossSiteProblem, csrfMatches } from "./csrf.js"
import { DashboardFormError, page, readForm } from "./responses.js"
import { open, SESSION_COOKIE, type Session, seal, secureCookie, withSession } from "./session.js"
import { disabledPage, messagePage, signInPage } from "./views.js"

/** A signed-in request: its session, and how to answer with a changed session. */
export interface SignedIn {
  readonly session: Session
  readonly token: Redacted.Redacted<string>
  /** Seals `session` into the answer's cookie. */
  readonly keep: (
    session: Session,
    response: HttpServerResponse.HttpServerResponse
  ) => Effect.Effect<HttpServerResponse.HttpServerResponse>
}

/** The session of the request, with the admin token it was opened with; none for either missing. */
const signedIn = Effect.gen(function* () {
  const token = yield* AdminToken
  if (Option.isNone(token)) return { token: Option.none<Redacted.Redacted<string>>(), session: Option.none<SignedIn>() }
  const request = yield* HttpServerRequest.HttpServerRequest
  const cipher = yield* Cipher
  const secure = secureCookie(yield* PublicUrl)
  const now = yield* Clock.currentTimeMillis
  const session = yield* open(cipher, request.cookies[SESSION_COOKIE], token.value, now)
  return {
    token,
    session: Option.map(
      session,
      (session): SignedIn => ({
        session,
        token: token.value,
        keep: (next, response) =>
          Effect.map(seal(cipher, next), (sealed) => withSession(sealed, next, now, secure)(response))
      })
    )
  }
})

/** The page of a failure: not found, conflict, bad form, or the broker's own (logged, never shown). */
const failurePage = (error: unknown, csrf: string | undefined) => {
  const signed = csrf === undefined ? undefined : { section: "none" as const, csrf }
  if (error instanceof AdminNotFound) return Effect.succeed(page(404, messagePage("Not found", error.detail, signed)))
  if (error instanceof AdminConflict) return Effect.succeed(page(409, messagePage("Conflict", error.detail, signed)))
  if (error instanceof DashboardFormError) {
    return Effect.succeed(page(400, messagePage("Invalid form", error.detail, signed)))
  }
  if (isConnectError(error)) return Effect.succeed(page(502, messagePage("Refused", error.message, signed)))
  return Effect.as(
    Effect.logError("dashboard request failed", error),
    page(500, messagePage("Something went wrong", "The broker could not do this; its log says why.", signed))
  )
}

/** A page for the signed-in operator; the sign-in form (401) for anyone else. */
export const view = <R>(
  handler: (signed: SignedIn) => Effect.Effect<HttpServerResponse.HttpServerResponse, unknown, R>
) =>
  Effect.gen(function* () {
    const { token, session } = yield* signedIn
    if (Option.isNone(token)) return page(404, disabledPage())
    if (Option.isNone(session)) return page(401, signInPage(undefined))
    return yield* handler(session.value).pipe(
      Effect.catchAll((error) => failurePage(error, session.value.session.csrf))
    )
  })

/**
 * A change by the signed-in operator: only from the dashboard's own pages,
 * with the session's CSRF token; anything else is refused (403) and changes
 * nothing. The form may hold only `fields` (and the CSRF token).
 */
export const action = <const F extends string, R>(
  fields: ReadonlyArray<F>,
  handler: (
    signed: SignedIn,
    form: Readonly<Record<F, string | undefined>>
  ) => Effect.Effect<HttpServerResponse.HttpServerResponse, unknown, R>
) =>
  Effect.gen(function* () {
    const { token, session } = yield* signedIn
    if (Option.isNone(token)) return page(404, disabledPage())
    const request = yield* HttpServerRequest.HttpServerRequest
    const crossSite = crossSiteProblem(request.headers)
    if (crossSite !== undefined) {
      return page(403, messagePage("Refused", `Refused: ${crossSite}. Nothing was changed.`, undefined))
    }
    if (Option.isNone(session)) {
      return page(403, messagePage("Refused", "Sign in first. Nothing was changed.", undefined))
    }
    const csrf = session.value.session.csrf
    return yield* Effect.gen(function* () {
      const form = yield* readForm([...fields, CSRF_FIELD])
      if (!csrfMatches(session.value.session, form[CSRF_FIELD])) {
        return page(403, messagePage("Refused", "The form is not from this session. Nothing was changed.", undefined))
      }
      return yield* handler(session.value, form)
    }).pipe(Effect.catchAll((error) => failurePage(error, csrf)))
  })
