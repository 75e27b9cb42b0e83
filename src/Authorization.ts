/**
 * Starting a user authorization: `POST /v1/connect/authorize/{connector}`.
 *
 * @since 0.1.0
 */
import { Schema } from "effect"
import { optionalNullable } from "./internal/schema.js"
import { TokenRequestFields } from "./Token.js"

const isLoopbackHost = (hostname: string): boolean =>
  hostname === "localhost" || hostname.endsWith(".localhost") || hostname === "127.0.0.1" || hostname === "[::1]"

/**
 * A URL the user's browser is sent back to: `https://`, or `http://` on a
 * loopback host (localhost, `*.localhost`, 127.0.0.1, [::1]).
 *
 * @since 0.1.0
 * @category schemas
 */
export const ReturnUrl = Schema.String.pipe(
  Schema.filter((value) => {
    let url: URL
    try {
      url = new URL(value)
    } catch {
      return "Expected an absolute URL"
    }
    if (url.protocol === "https:") return true
    if (url.protocol === "http:" && isLoopbackHost(url.hostname)) return true
    return "Expected an https:// URL, or http:// on localhost"
  })
).annotations({ identifier: "ReturnUrl" })

/**
 * Options of `startAuthorization`: where the user returns to, a webhook told of
 * the outcome, the device-code flow for command-line use, how long the request
 * stays open, and the provider's `prompt`.
 *
 * @since 0.1.0
 * @category schemas
 */
export const AuthorizationOptions = Schema.Struct({
  callbackUrl: Schema.optional(ReturnUrl),
  webhook: Schema.optional(ReturnUrl),
  deviceCode: Schema.optional(Schema.Boolean),
  expiresInMs: Schema.optional(Schema.Number.pipe(Schema.int(), Schema.positive())),
  prompt: Schema.optional(Schema.NonEmptyString)
}).annotations({ identifier: "AuthorizationOptions" })

/**
 * @since 0.1.0
 * @category models
 */
export interface AuthorizationOptions extends Schema.Schema.Type<typeof AuthorizationOptions> {}

/**
 * The body of `POST /v1/connect/authorize/{connector}`.
 *
 * @since 0.1.0
 * @category schemas
 */
export const AuthorizationRequest = Schema.Struct({
  ...TokenRequestFields,
  returnUrl: Schema.optional(ReturnUrl),
  webhook: Schema.optional(ReturnUrl),
  deviceCode: Schema.optional(Schema.Boolean),
  expiresInMs: Schema.optional(Schema.Number.pipe(Schema.int(), Schema.positive())),
  prompt: Schema.optional(Schema.NonEmptyString)
}).annotations({ identifier: "AuthorizationRequest" })

/**
 * @since 0.1.0
 * @category models
 */
export interface AuthorizationRequest extends Schema.Schema.Type<typeof AuthorizationRequest> {}

/**
 * A started authorization: `url` is where to send the user, `request` names the
 * request and `verifier` (a secret) proves the caller started it.
 *
 * @since 0.1.0
 * @category schemas
 */
export const AuthorizationResponse = Schema.Struct({
  request: Schema.String,
  verifier: Schema.Redacted(Schema.String),
  url: Schema.String,
  deviceCode: optionalNullable(Schema.String),
  expiresAt: optionalNullable(Schema.Number),
  connector: optionalNullable(
    Schema.Struct({
      id: Schema.String,
      uid: Schema.String,
      type: Schema.String,
      name: Schema.String,
      service: optionalNullable(Schema.String),
      serviceName: optionalNullable(Schema.String)
    })
  )
}).annotations({ identifier: "AuthorizationResponse" })

/**
 * @since 0.1.0
 * @category models
 */
export interface AuthorizationResponse extends Schema.Schema.Type<typeof AuthorizationResponse> {}
