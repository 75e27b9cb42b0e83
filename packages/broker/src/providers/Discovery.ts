/**
 * OpenID Connect discovery (OpenID Connect Discovery 1.0, section 4): the
 * endpoints of an issuer, read from its `/.well-known/openid-configuration`
 * with a deadline and validated, for the `oidc` preset.
 *
 * @since 0.2.0
 */
import * as FetchHttpClient from "@effect/platform/FetchHttpClient"
import * as HttpClient from "@effect/platform/HttpClient"
import { Duration, Effect, Schema } from "effect"
import { describeParseError } from "effect-connect/Protocol"

/**
 * The members of a discovery document the broker uses.
 *
 * @since 0.2.0
 * @category schemas
 */
export const DiscoveryDocument = Schema.Struct({
  issuer: Schema.String,
  // Required by Discovery 1.0 section 3, optional here: a client-credentials-only connector needs none.
  authorization_endpoint: Schema.optional(Schema.String),
  token_endpoint: Schema.String,
  // Not a Discovery 1.0 member: RFC 8414 section 2 registers it (https://www.rfc-editor.org/rfc/rfc8414#section-2).
  revocation_endpoint: Schema.optional(Schema.String),
  // RFC 8628 section 4 (https://www.rfc-editor.org/rfc/rfc8628#section-4).
  device_authorization_endpoint: Schema.optional(Schema.String),
  // Absent means client_secret_basic (Discovery 1.0 section 3).
  token_endpoint_auth_methods_supported: Schema.optional(Schema.Array(Schema.String))
})

/**
 * @since 0.2.0
 * @category models
 */
export interface DiscoveryDocument extends Schema.Schema.Type<typeof DiscoveryDocument> {}

/**
 * How long the broker waits for a discovery document at start.
 *
 * @since 0.2.0
 * @category constants
 */
export const DISCOVERY_DEADLINE = Duration.seconds(5)

/**
 * The discovery document's URL for an issuer.
 *
 * @since 0.2.0
 * @category utils
 */
export const discoveryUrl = (issuer: string): string => `${issuer.replace(/\/+$/, "")}/.well-known/openid-configuration`

const decode = Schema.decodeUnknown(DiscoveryDocument, { errors: "all", onExcessProperty: "ignore" })

/**
 * Reads and checks an issuer's discovery document; fails with why it cannot
 * be used (a sentence, no secret: the document is public).
 *
 * @since 0.2.0
 * @category discovery
 */
export const discover = (issuer: string): Effect.Effect<DiscoveryDocument, string> => {
  const url = discoveryUrl(issuer)
  return Effect.gen(function* () {
    const response = yield* HttpClient.get(url, { acceptJson: true }).pipe(
      Effect.mapError((error) => `${url} could not be read (${error.reason})`)
    )
    if (response.status !== 200) return yield* Effect.fail(`${url} answered HTTP ${response.status}`)
    const body = yield* Effect.mapError(response.json, () => `${url} did not answer JSON`)
    const document = yield* Effect.mapError(decode(body), (error) => {
      const issues = describeParseError(error).map((issue) => `${issue.path}: ${issue.message}`)
      return `${url} is not a discovery document (${issues.join("; ")})`
    })
    // OpenID Connect Discovery 1.0 section 4.3: the issuer must be the one asked for. A trailing slash is let
    // pass: issuers differ in whether they publish one, and people in whether they write it.
    if (document.issuer.replace(/\/+$/, "") !== issuer.replace(/\/+$/, "")) {
      return yield* Effect.fail(`${url} names another issuer (${document.issuer})`)
    }
    return document
  }).pipe(
    Effect.scoped,
    Effect.timeoutFail({
      duration: DISCOVERY_DEADLINE,
      onTimeout: () => `${url} did not answer within ${Duration.format(DISCOVERY_DEADLINE)}`
    }),
    Effect.provide(FetchHttpClient.layer)
  )
}
