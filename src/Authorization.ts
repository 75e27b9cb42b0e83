/**
 * Starting a user authorization, `POST /v1/connect/authorize/{connector}`, and
 * reading its status, `POST /v1/connect/authorize/{request}/status`.
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

const { subject: _subject, ...InstallationFields } = TokenRequestFields

/**
 * The body of `POST /v1/connect/install/{connector}`: what an installation is
 * for (no subject: a tenant's admin consents for the whole tenant), where the
 * admin returns to, the tenant it is meant for when known, and how long the
 * request stays open.
 *
 * @since 0.1.0
 * @category schemas
 */
export const InstallationRequest = Schema.Struct({
  ...InstallationFields,
  returnUrl: Schema.optional(ReturnUrl),
  tenantId: Schema.optional(Schema.NonEmptyString),
  deviceCode: Schema.optional(Schema.Boolean),
  expiresInMs: Schema.optional(Schema.Number.pipe(Schema.int(), Schema.positive()))
}).annotations({ identifier: "InstallationRequest" })

/**
 * @since 0.1.0
 * @category models
 */
export interface InstallationRequest extends Schema.Schema.Type<typeof InstallationRequest> {}

/**
 * The states of an authorization request: `pending` (the user has not come
 * back), `completing` (the broker is exchanging the code),
 * `awaiting_confirmation` (the grant waits for the application to confirm its
 * user, for a project with `confirmUsers`), `completed` (the grant is stored),
 * `failed` (`error` says why) and `expired`.
 *
 * @since 0.1.0
 * @category schemas
 */
export const AuthorizationState = Schema.Literal(
  "pending",
  "completing",
  "awaiting_confirmation",
  "completed",
  "failed",
  "expired"
)

/**
 * @since 0.1.0
 * @category models
 */
export type AuthorizationState = Schema.Schema.Type<typeof AuthorizationState>

/**
 * The body of `POST /v1/connect/authorize/{request}/status`: the verifier the
 * start answered.
 *
 * @since 0.1.0
 * @category schemas
 */
export const AuthorizationStatusRequest = Schema.Struct({
  verifier: Schema.Redacted(Schema.String)
}).annotations({ identifier: "AuthorizationStatusRequest" })

/**
 * The body of `POST /v1/connect/authorize/{request}/confirm`, for a project
 * that confirms its users: the verifier the start answered, and the one-time
 * code the return URL received.
 *
 * @since 0.1.0
 * @category schemas
 */
export const AuthorizationConfirmation = Schema.Struct({
  verifier: Schema.Redacted(Schema.String),
  code: Schema.Redacted(Schema.String)
}).annotations({ identifier: "AuthorizationConfirmation" })

/**
 * @since 0.1.0
 * @category models
 */
export interface AuthorizationConfirmation extends Schema.Schema.Type<typeof AuthorizationConfirmation> {}

/**
 * The status of an authorization request, as its caller reads it with the
 * request's verifier.
 *
 * @since 0.1.0
 * @category schemas
 */
export const AuthorizationStatus = Schema.Struct({
  request: Schema.String,
  status: AuthorizationState,
  error: optionalNullable(Schema.String),
  /** The installation a completed installation made. */
  installationId: optionalNullable(Schema.String)
}).annotations({ identifier: "AuthorizationStatus" })

/**
 * @since 0.1.0
 * @category models
 */
export interface AuthorizationStatus extends Schema.Schema.Type<typeof AuthorizationStatus> {}

/**
 * Options of `startInstallation`: what the installation is for (the scopes,
 * resources, audience and authorization details of its app tokens), the
 * tenant it is meant for when known, where the admin returns to, and how long
 * the request stays open.
 *
 * @since 0.1.0
 * @category schemas
 */
export const InstallationOptions = Schema.Struct({
  scopes: InstallationFields.scopes,
  resources: InstallationFields.resources,
  authorizationDetails: InstallationFields.authorizationDetails,
  audience: InstallationFields.audience,
  tenantId: Schema.optional(Schema.NonEmptyString),
  callbackUrl: Schema.optional(ReturnUrl),
  expiresInMs: Schema.optional(Schema.Number.pipe(Schema.int(), Schema.positive()))
}).annotations({ identifier: "InstallationOptions" })

/**
 * @since 0.1.0
 * @category models
 */
export interface InstallationOptions extends Schema.Schema.Type<typeof InstallationOptions> {}
