/**
 * The dashboard's session: a sealed cookie. Its content (when it expires, the
 * session's CSRF token, a mark of the admin token it was opened with, and an
 * authorization being tried) is sealed with the broker's `Cipher` (AES-GCM
 * under the encryption key), so every replica with the same key reads it, and
 * nobody without the key can read or forge it. Changing the admin token ends
 * every session.
 *
 * @internal
 */
import { createHash, randomBytes, timingSafeEqual } from "node:crypto"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import { Duration, Effect, Option, Redacted, Schema } from "effect"
import type { CipherService } from "../../Cipher.js"

/** The cookie's name; it is sent only to the dashboard's paths. */
export const SESSION_COOKIE = "connect_dashboard"

/** Where the cookie is sent. */
export const DASHBOARD_PATH = "/dashboard"

/** What the associated data of a sealed session says: the cipher opens it only as a session. */
const SEALED_AS = "dashboard/session"

/** An authorization started from "Try it": what polling its status needs (the verifier is a secret). */
const Trying = Schema.Struct({
  request: Schema.String,
  verifier: Schema.String,
  connector: Schema.String,
  user: Schema.String,
  project: Schema.String,
  environment: Schema.String
})

/** A session, as sealed in the cookie. */
export const Session = Schema.Struct({
  expiresAt: Schema.Number,
  csrf: Schema.String,
  admin: Schema.String,
  trying: Schema.optional(Trying)
})

/** A session, as the dashboard reads it. */
export interface Session extends Schema.Schema.Type<typeof Session> {}

const SessionJson = Schema.parseJson(Session)

/** A mark of the admin token a session was opened with (a hash: the token is not in the cookie, even sealed). */
export const adminMark = (token: Redacted.Redacted<string>): string =>
  createHash("sha256")
    .update(`effect-connect dashboard session\n${Redacted.value(token)}`)
    .digest("base64url")

/** A new session for the holder of `token`, until `now + ttlMs`, with a fresh CSRF token. */
export const newSession = (token: Redacted.Redacted<string>, now: number, ttlMs: number): Session => ({
  expiresAt: now + ttlMs,
  csrf: randomBytes(32).toString("base64url"),
  admin: adminMark(token)
})

/** The session sealed, as the cookie's value. */
export const seal = (cipher: CipherService, session: Session): Effect.Effect<string> =>
  Effect.flatMap(Schema.encode(SessionJson)(session).pipe(Effect.orDie), (json) =>
    cipher.encrypt(Redacted.make(json), SEALED_AS)
  )

/**
 * The session of a cookie: none unless it opens with the broker's key, has
 * not expired, and was opened with the admin token configured now.
 */
export const open = (
  cipher: CipherService,
  cookie: string | undefined,
  token: Redacted.Redacted<string>,
  now: number
): Effect.Effect<Option.Option<Session>> =>
  cookie === undefined || cookie.length > 8192
    ? Effect.succeedNone
    : cipher.decrypt(cookie, SEALED_AS).pipe(
        Effect.flatMap((json) => Schema.decodeUnknown(SessionJson)(Redacted.value(json))),
        Effect.map((session) =>
          session.expiresAt > now && equal(session.admin, adminMark(token)) ? Option.some(session) : Option.none()
        ),
        Effect.orElseSucceed(() => Option.none<Session>())
      )

/** Whether two strings are the same, in constant time for strings of one length. */
export const equal = (a: string, b: string): boolean => {
  const left = Buffer.from(a)
  const right = Buffer.from(b)
  return left.length === right.length && timingSafeEqual(left, right)
}

const LOOPBACK = new Set(["127.0.0.1", "localhost", "[::1]"])

/**
 * Whether the cookie is `Secure`: always, except for a broker whose public URL
 * is plain HTTP on a loopback address (a developer's machine), where a
 * browser would not send a `Secure` cookie back.
 */
export const secureCookie = (publicUrl: string): boolean => {
  try {
    const url = new URL(publicUrl)
    return !(url.protocol === "http:" && LOOPBACK.has(url.hostname))
  } catch {
    return true
  }
}

/** Sets the session cookie: `HttpOnly`, `SameSite=Strict`, on the dashboard's paths, until the session ends. */
export const withSession =
  (sealed: string, session: Session, now: number, secure: boolean) =>
  (response: HttpServerResponse.HttpServerResponse): HttpServerResponse.HttpServerResponse =>
    HttpServerResponse.unsafeSetCookie(response, SESSION_COOKIE, sealed, {
      path: DASHBOARD_PATH,
      httpOnly: true,
      sameSite: "strict",
      secure,
      maxAge: Duration.millis(Math.max(0, session.expiresAt - now))
    })

/** Ends the session in the browser: the cookie expired. */
export const withoutSession =
  (secure: boolean) =>
  (response: HttpServerResponse.HttpServerResponse): HttpServerResponse.HttpServerResponse =>
    HttpServerResponse.expireCookie(response, SESSION_COOKIE, {
      path: DASHBOARD_PATH,
      httpOnly: true,
      sameSite: "strict",
      secure
    })
