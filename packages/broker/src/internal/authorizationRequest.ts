import { createHash, randomBytes } from "node:crypto"
import { Effect, Option, Redacted, Schema } from "effect"
import { InvalidRequest } from "effect-connect/ConnectError"
import { TokenRequest } from "effect-connect/Token"
import type { AuthorizationRequestRecord, Caller, Store } from "../Store.js"

/** How long an authorization request (code flow, installation or device) stays open by default. */
export const DEFAULT_EXPIRES_IN_MS = 10 * 60_000
/** How long an authorization request may stay open at most, whatever its caller asks. */
export const MAX_EXPIRES_IN_MS = 60 * 60_000

/** A fresh secret: a state, a verifier, a one-time code. */
export const random = () => randomBytes(32).toString("base64url")
/** The hash a secret is stored as (and a PKCE S256 code challenge). */
export const sha256 = (value: string) => createHash("sha256").update(value).digest("base64url")

/** What a request asks for, as the store keeps it (JSON). */
export const RequestJson = Schema.parseJson(TokenRequest)
/** What a request asks for, as the store keeps it. */
export const encodeRequest = (request: TokenRequest) => Schema.encode(RequestJson)(request).pipe(Effect.orDie)
/** What a stored request asks for. */
export const decodeRequest = (record: AuthorizationRequestRecord) =>
  Schema.decode(RequestJson)(record.request).pipe(Effect.orDie)

/** When a request made at `now` expires: as asked, by default {@link DEFAULT_EXPIRES_IN_MS}, at most the maximum. */
export const expiryOf = (now: number, expiresInMs: number | undefined) =>
  now + Math.min(expiresInMs ?? DEFAULT_EXPIRES_IN_MS, MAX_EXPIRES_IN_MS)

/** `url` with `params` set in its query. */
export const withParams = (url: string, params: Record<string, string>): string => {
  const target = new URL(url)
  for (const [key, value] of Object.entries(params)) target.searchParams.set(key, value)
  return target.toString()
}

/** A request of the caller's, found by its id and the verifier its start answered. */
export const ownRequest = (
  store: Store["Type"],
  caller: Caller,
  requestId: string,
  verifier: Redacted.Redacted<string>
) =>
  Effect.gen(function* () {
    const found = yield* store.findAuthorizationRequest({ id: requestId })
    if (
      Option.isNone(found) ||
      found.value.projectId !== caller.projectId ||
      found.value.environment !== caller.environment ||
      found.value.verifierHash !== sha256(Redacted.value(verifier))
    ) {
      return yield* new InvalidRequest({
        status: 400,
        issues: [{ path: "verifier", message: "no authorization request matches this id and verifier" }]
      })
    }
    return found.value
  })
