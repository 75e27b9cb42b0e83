/**
 * A provider's token as kept, sealed, in a request that awaits its user's
 * confirmation: JSON of what `recordAuthorization` keeps once it is
 * confirmed. The JSON holds the access and refresh tokens in clear, so it only
 * ever travels as a `Redacted` and is sealed by the store.
 */
import { Effect, Redacted, Schema } from "effect"
import type { ProviderToken } from "../ProviderClient.js"

const Parked = Schema.parseJson(
  Schema.Struct({
    accessToken: Schema.Redacted(Schema.String),
    tokenType: Schema.String,
    expiresAt: Schema.Number,
    refreshToken: Schema.optionalWith(Schema.Redacted(Schema.String), { exact: true }),
    refreshTokenExpiresAt: Schema.optionalWith(Schema.Number, { exact: true }),
    scope: Schema.optionalWith(Schema.String, { exact: true }),
    expiresInSent: Schema.optionalWith(Schema.Boolean, { exact: true }),
    fields: Schema.optionalWith(Schema.Record({ key: Schema.String, value: Schema.Unknown }), { exact: true })
  })
)

/** The token to park, as a secret. */
export const park = (token: ProviderToken): Effect.Effect<Redacted.Redacted<string>> =>
  Schema.encode(Parked)({
    accessToken: token.accessToken,
    tokenType: token.tokenType,
    expiresAt: token.expiresAt,
    ...(token.refreshToken === undefined ? {} : { refreshToken: token.refreshToken }),
    ...(token.refreshTokenExpiresAt === undefined ? {} : { refreshTokenExpiresAt: token.refreshTokenExpiresAt }),
    ...(token.scope === undefined ? {} : { scope: token.scope }),
    ...(token.expiresInSent === undefined ? {} : { expiresInSent: token.expiresInSent }),
    ...(token.fields === undefined ? {} : { fields: token.fields })
  }).pipe(Effect.map(Redacted.make), Effect.orDie)

/** The parked token back. */
export const unpark = (parked: Redacted.Redacted<string>): Effect.Effect<ProviderToken> =>
  Schema.decode(Parked)(Redacted.value(parked)).pipe(
    Effect.map((token): ProviderToken => ({ ...token, refreshToken: token.refreshToken })),
    Effect.orDie
  )
