/**
 * Token requests and token responses of the Connect wire protocol, shared by the
 * SDK, the broker and the CLI.
 *
 * @since 0.1.0
 */
import { Schema } from "effect"
import { isJsonValue } from "./internal/json.js"
import * as internal from "./internal/schema.js"
import { optionalNullable } from "./internal/schema.js"
import { Subject } from "./Subject.js"

/**
 * Any JSON value (plain data that survives `JSON.stringify` unchanged).
 *
 * @since 0.1.0
 * @category schemas
 */
export const JsonValue = internal.JsonValue

/**
 * A JSON object with string keys.
 *
 * @since 0.1.0
 * @category schemas
 */
export const JsonObject = internal.JsonObject

/**
 * One rich authorization request (RFC 9396): a `type` and the members that type
 * defines, such as `{ type: "github_app_installation", org: "acme" }`.
 *
 * @since 0.1.0
 * @category schemas
 */
export const AuthorizationDetail = Schema.Struct(
  { type: Schema.NonEmptyString },
  Schema.Record({ key: Schema.String, value: JsonValue })
)
  .pipe(Schema.filter((detail) => isJsonValue(detail) || "Expected plain JSON data"))
  .annotations({ identifier: "AuthorizationDetail" })

/**
 * @since 0.1.0
 * @category models
 */
export type AuthorizationDetail = Schema.Schema.Type<typeof AuthorizationDetail>

const Strings = Schema.Array(Schema.NonEmptyString)

/**
 * The wildcard scope: "the connector's default scopes for this subject type".
 * The official client sends it when the caller names no scopes.
 *
 * @since 0.1.0
 * @category constants
 */
export const DefaultScopes: ReadonlyArray<string> = ["*"]

/**
 * The fields of a token request, without the client-side cache buffer.
 *
 * @since 0.1.0
 * @category schemas
 */
export const TokenRequestFields = {
  subject: Subject,
  installationId: Schema.optional(Schema.NonEmptyString),
  scopes: Schema.optional(Strings),
  resources: Schema.optional(Strings),
  authorizationDetails: Schema.optional(Schema.Array(AuthorizationDetail)),
  audience: Schema.optional(Strings)
}

/**
 * What a caller asks `getToken` for. `validityBufferMs` is how close to expiry a
 * cached token may come before it is fetched again (default 30 000 ms); it is a
 * client-side setting and not part of the cache key.
 *
 * @since 0.1.0
 * @category schemas
 */
export const TokenParams = Schema.Struct({
  ...TokenRequestFields,
  validityBufferMs: Schema.optional(Schema.Number.pipe(Schema.finite(), Schema.nonNegative()))
}).annotations({ identifier: "TokenParams" })

/**
 * @since 0.1.0
 * @category models
 */
export interface TokenParams extends Schema.Schema.Type<typeof TokenParams> {}

/**
 * Token parameters as plain data (the exchanged subject token as a string), the
 * form the Promise API and the wire use.
 *
 * @since 0.1.0
 * @category models
 */
export type TokenParamsEncoded = Schema.Schema.Encoded<typeof TokenParams>

/**
 * The body of `POST /v1/connect/token/{connector}`. `scopes` is always present
 * (`["*"]` when the caller named none).
 *
 * @since 0.1.0
 * @category schemas
 */
export const TokenRequest = Schema.Struct({
  ...TokenRequestFields,
  validityBufferMs: Schema.optional(Schema.Number)
}).annotations({ identifier: "TokenRequest" })

/**
 * @since 0.1.0
 * @category models
 */
export interface TokenRequest extends Schema.Schema.Type<typeof TokenRequest> {}

/**
 * The connector a response speaks of.
 *
 * @since 0.1.0
 * @category schemas
 */
export const ConnectorRef = Schema.Struct({
  id: Schema.String,
  uid: Schema.String,
  type: Schema.String
}).annotations({ identifier: "ConnectorRef" })

/**
 * @since 0.1.0
 * @category models
 */
export interface ConnectorRef extends Schema.Schema.Type<typeof ConnectorRef> {}

/**
 * The answer to a token request. `token` is the provider's access token, kept
 * `Redacted` so that it is never printed by accident; `expiresAt` is in
 * milliseconds since the epoch.
 *
 * @since 0.1.0
 * @category schemas
 */
export const TokenResponse = Schema.Struct({
  token: Schema.Redacted(Schema.NonEmptyString),
  tokenId: optionalNullable(Schema.String),
  expiresAt: Schema.Number.pipe(Schema.finite(), Schema.nonNegative()),
  connector: ConnectorRef,
  name: optionalNullable(Schema.String),
  installationId: optionalNullable(Schema.String),
  tenantId: optionalNullable(Schema.String),
  externalSubject: optionalNullable(Schema.String),
  metadata: optionalNullable(Schema.Record({ key: Schema.String, value: Schema.Unknown })),
  claims: optionalNullable(Schema.Record({ key: Schema.String, value: Schema.Unknown })),
  authorizationId: optionalNullable(Schema.String),
  tokenGroupId: optionalNullable(Schema.String)
}).annotations({ identifier: "TokenResponse" })

/**
 * @since 0.1.0
 * @category models
 */
export interface TokenResponse extends Schema.Schema.Type<typeof TokenResponse> {}

/**
 * The token response as plain data, the shape `@vercel/connect` returns.
 *
 * @since 0.1.0
 * @category models
 */
export type TokenResponseEncoded = Schema.Schema.Encoded<typeof TokenResponse>

/**
 * The body of `POST /v1/connect/token/{connector}/import`: tokens (and refresh
 * tokens) obtained elsewhere, handed to the server to hold.
 *
 * @since 0.1.0
 * @category schemas
 */
export const TokenImport = Schema.Struct({
  tokens: Schema.Array(
    Schema.Struct({
      accessToken: Schema.Redacted(Schema.NonEmptyString),
      expiresAt: Schema.Number.pipe(Schema.finite(), Schema.nonNegative()),
      refreshToken: Schema.optional(Schema.Redacted(Schema.NonEmptyString)),
      refreshTokenExpiresAt: Schema.optional(Schema.Number.pipe(Schema.finite(), Schema.nonNegative())),
      subject: Subject,
      environment: Schema.NonEmptyString,
      installationId: Schema.optional(Schema.NonEmptyString)
    })
  )
}).annotations({ identifier: "TokenImport" })

/**
 * @since 0.1.0
 * @category models
 */
export interface TokenImport extends Schema.Schema.Type<typeof TokenImport> {}

/**
 * The answer to `POST /v1/connect/token/{connector}/import`: how many tokens
 * the server now keeps.
 *
 * @since 0.2.0
 * @category schemas
 */
export const TokenImportResult = Schema.Struct({ imported: Schema.Number }).annotations({
  identifier: "TokenImportResult"
})

/**
 * @since 0.2.0
 * @category models
 */
export interface TokenImportResult extends Schema.Schema.Type<typeof TokenImportResult> {}
