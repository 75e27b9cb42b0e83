/**
 * A GitHub App's installation tokens: the app authenticates as itself with a
 * JWT (RS256, `iss` the app id, `iat` 60 seconds in the past to allow for
 * clock drift, `exp` at most 10 minutes ahead), signed with the connector's
 * private key, and exchanges it at `POST /app/installations/{id}/access_tokens`
 * for a token of one installation. Fetched once across replicas by `direct.ts`.
 *
 * @since 0.2.0
 */
import { Clock, Effect, Redacted } from "effect"
import { ProviderError } from "effect-connect/ConnectError"
import { SignJWT } from "jose"
import { parsePrivateKey } from "../Assertion.js"
import type { AppInstallationGrant } from "../ProviderClient.js"
import type { Connector } from "../Store.js"

/** GitHub refuses a JWT whose `exp` is more than 10 minutes after `iat`. */
const LIFETIME_SECONDS = 9 * 60
/** Backdated for clock drift, as GitHub's documentation recommends. */
const BACKDATE_SECONDS = 60

/**
 * Signs a GitHub App's JWT: `iss` the app id, `iat` a minute ago, `exp` nine minutes ahead.
 *
 * @since 0.2.0
 * @category grants
 */
export const signAppJwt = (
  privateKey: Redacted.Redacted<string>,
  appId: string
): Effect.Effect<Redacted.Redacted<string>, string> =>
  Effect.gen(function* () {
    const key = yield* Effect.mapError(parsePrivateKey(privateKey, "RS256"), (error) => error.kind)
    const now = Math.floor((yield* Clock.currentTimeMillis) / 1000)
    const jwt = yield* Effect.tryPromise({
      try: () =>
        new SignJWT({})
          .setProtectedHeader({ alg: "RS256", typ: "JWT" })
          .setIssuer(appId)
          .setIssuedAt(now - BACKDATE_SECONDS)
          .setExpirationTime(now + LIFETIME_SECONDS)
          .sign(key),
      catch: () => "signing_failed"
    })
    return Redacted.make(jwt)
  })

/**
 * The installation token grant of a GitHub App connector; a connector without
 * a usable key is a typed error (its configuration must be fixed).
 *
 * @since 0.2.0
 * @category grants
 */
export const appInstallationGrant = (
  connector: Connector,
  appId: string
): Effect.Effect<AppInstallationGrant, ProviderError> => {
  const unusable = (why: string) =>
    new ProviderError({
      connector: connector.uid,
      status: 502,
      detail: `the GitHub App's private key cannot be used (${why}); fix the connector's privateKey`
    })
  if (connector.privateKey === undefined) return Effect.fail(unusable("missing"))
  return Effect.map(
    Effect.mapError(signAppJwt(connector.privateKey, appId), unusable),
    (appJwt): AppInstallationGrant => ({ type: "app_installation", appJwt })
  )
}
