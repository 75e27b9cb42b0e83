/**
 * The admin token: the credential of the broker's admin API
 * (`/v1/admin/…`), from `CONNECT_ADMIN_TOKEN`. Without it the admin API is
 * disabled: every admin request is answered `401 unauthorized`.
 *
 * @since 0.1.0
 */
import { createHash, timingSafeEqual } from "node:crypto"
import { Config, Context, Effect, Layer, Option, Redacted } from "effect"

/**
 * The environment variable that holds the admin token.
 *
 * @since 0.1.0
 * @category constants
 */
export const ADMIN_TOKEN_VARIABLE = "CONNECT_ADMIN_TOKEN"

/**
 * The admin token, when one is configured.
 *
 * @since 0.1.0
 * @category tags
 */
export class AdminToken extends Context.Tag("effect-connect/broker/AdminToken")<
  AdminToken,
  Option.Option<Redacted.Redacted<string>>
>() {
  /** From `CONNECT_ADMIN_TOKEN`; unset, empty or blank disables the admin API. */
  static readonly layerConfig: Layer.Layer<AdminToken> = Layer.effect(
    AdminToken,
    Config.option(Config.redacted(ADMIN_TOKEN_VARIABLE)).pipe(
      Effect.map(Option.filter((token) => Redacted.value(token).trim().length > 0)),
      // A variable that cannot be read is a variable that is not set.
      Effect.orElseSucceed(() => Option.none())
    )
  )

  /** A fixed token (or none), for tests and embedding. */
  static readonly layer = (token: Option.Option<Redacted.Redacted<string>>): Layer.Layer<AdminToken> =>
    Layer.succeed(AdminToken, token)
}

const digest = (value: string): Buffer => createHash("sha256").update(value).digest()

/**
 * Whether a presented token is the admin token, compared in constant time
 * (both are hashed first, so their lengths do not show either).
 *
 * @since 0.1.0
 * @category utils
 */
export const matches = (expected: Redacted.Redacted<string>, presented: Redacted.Redacted<string>): boolean =>
  timingSafeEqual(digest(Redacted.value(expected)), digest(Redacted.value(presented)))
