/**
 * The broker's housekeeping: issued tokens are kept after they expire, as the
 * record of what was handed out to whom, for `CONNECT_TOKEN_RETENTION_DAYS`
 * (30 by default); then they are deleted, once at start and every hour. Each
 * replica does it; deleting what another already deleted is harmless.
 *
 * @since 0.1.0
 */
import { Clock, Config, ConfigError, Effect, Either, Layer, Option, Schedule } from "effect"
import { Store } from "./Store.js"

const DAY_MS = 86_400_000

/**
 * How many days issued tokens are kept past their expiry; `off` keeps them
 * for good.
 *
 * @since 0.1.0
 * @category config
 */
export const retentionConfig: Config.Config<Option.Option<number>> = Config.string("CONNECT_TOKEN_RETENTION_DAYS").pipe(
  Config.mapOrFail((raw) => {
    const text = raw.trim()
    if (text.toLowerCase() === "off") return Either.right(Option.none())
    const days = Number(text)
    return /^\d+$/.test(text) && days >= 1 && days <= 36_500
      ? Either.right(Option.some(days))
      : Either.left(
          ConfigError.InvalidData(
            [],
            `CONNECT_TOKEN_RETENTION_DAYS must be a whole number of days from 1 to 36500, or off to keep issued tokens for good, got ${JSON.stringify(raw)}`
          )
        )
  }),
  Config.withDefault(Option.some(30))
)

/**
 * Deletes the issued tokens that expired more than `retentionDays` ago, and
 * says how many.
 *
 * @since 0.1.0
 * @category operations
 */
export const pruneOnce = (retentionDays: number): Effect.Effect<number, never, Store> =>
  Effect.gen(function* () {
    const store = yield* Store
    const now = yield* Clock.currentTimeMillis
    const deleted = yield* store.pruneIssuedTokens(now - retentionDays * DAY_MS)
    if (deleted > 0) {
      yield* Effect.logInfo(`housekeeping: deleted ${deleted} issued tokens expired over ${retentionDays} days ago`)
    }
    return deleted
  }).pipe(
    // A failed round is tried again at the next one.
    Effect.catchAll((error) => Effect.as(Effect.logWarning("housekeeping failed", error.message), 0))
  )

/**
 * Housekeeping for as long as the layer lives, with the retention given.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (retentionDays: Option.Option<number>): Layer.Layer<never, never, Store> =>
  Option.match(retentionDays, {
    onNone: () => Layer.empty,
    onSome: (days) => Layer.scopedDiscard(Effect.forkScoped(Effect.repeat(pruneOnce(days), Schedule.spaced("1 hour"))))
  })

/**
 * Housekeeping with the retention of `CONNECT_TOKEN_RETENTION_DAYS`.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerConfig: Layer.Layer<never, ConfigError.ConfigError, Store> = Layer.unwrapEffect(
  Effect.map(retentionConfig, layer)
)
