/**
 * The subject of a token request: on whose behalf a token is asked for.
 *
 * These schemas are the wire format of the Connect protocol (`subject` in a
 * token request) and are shared by the SDK, the broker and the CLI.
 *
 * @since 0.1.0
 */
import { Schema } from "effect"
import { JsonObject } from "./internal/schema.js"

/**
 * The application or bot itself (the OAuth 2.0 client credentials grant).
 *
 * @since 0.1.0
 * @category schemas
 */
export const AppSubject = Schema.Struct({
  type: Schema.Literal("app")
}).annotations({ identifier: "AppSubject" })

/**
 * @since 0.1.0
 * @category models
 */
export interface AppSubject extends Schema.Schema.Type<typeof AppSubject> {}

/**
 * A specific user who has authorized the connector. `issuer` distinguishes
 * user ids that come from different identity providers.
 *
 * @since 0.1.0
 * @category schemas
 */
export const UserSubject = Schema.Struct({
  type: Schema.Literal("user"),
  id: Schema.NonEmptyString,
  issuer: Schema.optional(Schema.NonEmptyString)
}).annotations({ identifier: "UserSubject" })

/**
 * @since 0.1.0
 * @category models
 */
export interface UserSubject extends Schema.Schema.Type<typeof UserSubject> {}

/**
 * A federated subject for the JWT bearer assertion grant (RFC 7523). `iss`
 * defaults to the connector's OAuth client id and `aud` to the provider's token
 * endpoint; `additionalClaims` are merged into the assertion.
 *
 * @since 0.1.0
 * @category schemas
 */
export const JwtBearerSubject = Schema.Struct({
  type: Schema.Literal("jwt-bearer"),
  sub: Schema.NonEmptyString,
  iss: Schema.optional(Schema.NonEmptyString),
  aud: Schema.optional(Schema.NonEmptyString),
  additionalClaims: Schema.optional(JsonObject)
}).annotations({ identifier: "JwtBearerSubject" })

/**
 * @since 0.1.0
 * @category models
 */
export interface JwtBearerSubject extends Schema.Schema.Type<typeof JwtBearerSubject> {}

/**
 * Token exchange (RFC 8693) of a token the caller already holds. The token is a
 * secret: it is `Redacted` in memory and a plain string only on the wire.
 *
 * @since 0.1.0
 * @category schemas
 */
export const TokenExchangeSubject = Schema.Struct({
  type: Schema.Literal("token"),
  token: Schema.Redacted(Schema.NonEmptyString)
}).annotations({ identifier: "TokenExchangeSubject" })

/**
 * @since 0.1.0
 * @category models
 */
export interface TokenExchangeSubject extends Schema.Schema.Type<typeof TokenExchangeSubject> {}

/**
 * Any subject of the wire protocol, discriminated by `type`.
 *
 * @since 0.1.0
 * @category schemas
 */
export const Subject = Schema.Union(AppSubject, UserSubject, JwtBearerSubject, TokenExchangeSubject).annotations({
  identifier: "Subject"
})

/**
 * @since 0.1.0
 * @category models
 */
export type Subject = Schema.Schema.Type<typeof Subject>

/**
 * The subject as it travels on the wire (the exchanged token as a plain string).
 *
 * @since 0.1.0
 * @category models
 */
export type SubjectEncoded = Schema.Schema.Encoded<typeof Subject>

/**
 * The kinds of subject: `app`, `user`, `jwt-bearer` and `token`.
 *
 * @since 0.1.0
 * @category models
 */
export type SubjectType = Subject["type"]

/**
 * The application itself.
 *
 * @since 0.1.0
 * @category constructors
 */
export const app: Subject = { type: "app" }

/**
 * A user of the application, optionally qualified by the issuer of their id.
 *
 * @since 0.1.0
 * @category constructors
 */
export const user = (id: string, issuer?: string): Subject =>
  issuer === undefined ? { type: "user", id } : { type: "user", id, issuer }
