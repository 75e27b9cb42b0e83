/**
 * The broker's housekeeping: issued tokens are kept after they expire, as the
 * record of what was handed out to whom, for `CONNECT_TOKEN_RETENTION_DAYS`
 * (30 by default); then they are deleted, once at start and every hour. Each
 * replica does it; deleting what another already deleted is harmless. Events
 * are kept for `CONNECT_EVENT_RETENTION_DAYS` (90 by default) after they
 * occurred, and deleted the same way.
 *
 * @since 0.1.0
 */
import { Clock, Config, ConfigError, Effect, Either, Layer, Option, Schedule } from "effect"
import { Events } from "./Events.js"
import { Store } from "./Store.js"

const DAY_MS = 86_400_000

/**
 * A retention in days read from `name`: a whole number of days from 1 to
 * 36500, or `off` to keep for good (`Option.none`); `defaultDays` when unset.
 * `what` names what is kept, for the error.
 *
 * @since 0.1.0
 * @category config
 */
export const retentionDaysConfig = (
  name: string,
  defaultDays: number,
  what: string
): Config.Config<Option.Option<number>> =>
  Config.string(name).pipe(
    Config.mapOrFail((raw) => {
      const text = raw.trim()
      if (text.toLowerCase() === "off") return Either.right(Option.none())
      const days = Number(text)
      return /^\d+$/.test(text) && days >= 1 && days <= 36_500
        ? Either.right(Option.some(days))
        : Either.left(
            ConfigError.InvalidData(
              [],
              `${name} must be a whole number of days from 1 to 36500, or off to keep ${what} for good, got ${JSON.stringify(raw)}`
            )
          )
    }),
    Config.withDefault(Option.some(defaultDays))
  )

/**
 * How many days issued tokens are kept past their expiry; `off` keeps them
 * for good.
 *
 * @since 0.1.0
 * @category config
 */
export const retentionConfig: Config.Config<Option.Option<number>> = retentionDaysConfig(
  "CONNECT_TOKEN_RETENTION_DAYS",
  30,
  "issued tokens"
)

/**
 * How many days events are kept (`CONNECT_EVENT_RETENTION_DAYS`, 90 by
 * default); `off` keeps them for good.
 *
 * @since 0.1.0
 * @category config
 */
export const eventRetentionConfig: Config.Config<Option.Option<number>> = retentionDaysConfig(
  "CONNECT_EVENT_RETENTION_DAYS",
  90,
  "events"
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
 * Deletes the events that occurred more than `retentionDays` ago, and says
 * how many.
 *
 * @since 0.1.0
 * @category operations
 */
export const pruneEventsOnce = (retentionDays: number): Effect.Effect<number, never, Events> =>
  Effect.gen(function* () {
    const events = yield* Events
    const now = yield* Clock.currentTimeMillis
    const deleted = yield* events.prune(now - retentionDays * DAY_MS)
    if (deleted > 0) yield* Effect.logInfo(`housekeeping: deleted ${deleted} events over ${retentionDays} days old`)
    return deleted
  }).pipe(Effect.catchAll((error) => Effect.as(Effect.logWarning("housekeeping of events failed", error.message), 0)))

/** Runs a round at start and every hour, for as long as the layer lives; nothing when the retention is off. */
const hourly = <R>(retentionDays: Option.Option<number>, round: (days: number) => Effect.Effect<number, never, R>) =>
  Option.match(retentionDays, {
    onNone: () => Layer.empty,
    onSome: (days) => Layer.scopedDiscard(Effect.forkScoped(Effect.repeat(round(days), Schedule.spaced("1 hour"))))
  })

/**
 * Housekeeping of issued tokens for as long as the layer lives, with the
 * retention given.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (retentionDays: Option.Option<number>): Layer.Layer<never, never, Store> =>
  hourly(retentionDays, pruneOnce)

/**
 * Housekeeping of events for as long as the layer lives, with the retention
 * given.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerEvents = (retentionDays: Option.Option<number>): Layer.Layer<never, never, Events> =>
  hourly(retentionDays, pruneEventsOnce)

/**
 * Housekeeping with the retentions of `CONNECT_TOKEN_RETENTION_DAYS` and
 * `CONNECT_EVENT_RETENTION_DAYS`.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerConfig: Layer.Layer<never, ConfigError.ConfigError, Store | Events> = Layer.unwrapEffect(
  Effect.map(Config.all([retentionConfig, eventRetentionConfig]), ([tokens, events]) =>
    Layer.merge(layer(tokens), layerEvents(events))
  )
)
