/**
 * The rate limit shared by every broker replica on one Postgres database: the
 * same token buckets as the per-process {@link RateLimiter}, kept in the
 * `rate_limits` table, so `n` replicas together allow the limit, not `n` times it.
 *
 * - One statement per request (`INSERT … ON CONFLICT DO UPDATE … RETURNING`):
 *   Postgres refills and takes from the bucket under the row's lock, for the
 *   length of that statement only; no transaction is held across anything else.
 * - Same limit, same answers: a burst of `perMinute` at once, one request every
 *   `60 000 / perMinute` ms after that, and the same exact `retryAfterMs`.
 * - Time is the replica's `Clock`. A bucket's time only moves forward, so a
 *   replica whose clock is behind refills nothing until it catches up; a clock
 *   `s` ms ahead lets at most `s · perMinute / 60 000` extra requests through.
 * - It fails open: when the table cannot be reached within
 *   {@link STATEMENT_DEADLINE} the request is limited by this process's own
 *   buckets instead (the limit per process, as with one replica), and the outage
 *   is logged once, with its end.
 * - Buckets untouched for {@link PRUNE_AFTER_MS} are full again, the same as no
 *   row: each replica deletes them every {@link PRUNE_EVERY}.
 *
 * @since 0.1.0
 */
import { SqlClient } from "@effect/sql"
import { Clock, type ConfigError, Duration, Effect, Layer, Ref, Schedule, type Scope } from "effect"
import {
  make as makeInMemory,
  perMinuteConfig,
  type RateDecision,
  RateLimiter,
  type RateLimiterOptions,
  type RateLimiterService,
  WINDOW_MS
} from "./RateLimiter.js"

/**
 * How long one request waits for the shared bucket before it is limited by the
 * process's own buckets instead. It bounds a database that does not answer, not
 * a busy one: the wait includes taking a connection from the pool, and a burst
 * of requests on a loaded host can queue for a second there; falling back then
 * would let each replica allow the whole limit just when it matters.
 *
 * @since 0.1.0
 * @category constants
 */
export const STATEMENT_DEADLINE = Duration.seconds(5)

/**
 * A bucket untouched this long is deleted: after one window it is full again,
 * and a second window leaves room for replicas' clocks that differ.
 *
 * @since 0.1.0
 * @category constants
 */
export const PRUNE_AFTER_MS = 2 * WINDOW_MS

/**
 * How often each replica deletes the buckets untouched for {@link PRUNE_AFTER_MS}.
 *
 * @since 0.1.0
 * @category constants
 */
export const PRUNE_EVERY = Duration.minutes(1)

const PRUNE_DEADLINE = Duration.seconds(10)

interface TakeRow {
  readonly units: number | string
  readonly allowed: number | string
}

/**
 * Takes one request from `key`'s bucket in one statement. The level is refilled
 * for the time since the bucket was last touched (at most one window, which
 * fills any bucket, so the arithmetic stays far inside BIGINT), then one
 * request's worth is taken if it is there. A refusal takes nothing.
 */
const takeStatement = (sql: SqlClient.SqlClient, key: string, now: number, perMinute: number) => {
  const capacity = perMinute * WINDOW_MS
  const level = sql`LEAST(${capacity}::bigint, rate_limits.units + LEAST(GREATEST(0, ${now}::bigint - rate_limits.updated_at), ${WINDOW_MS}::bigint) * ${perMinute}::bigint)`
  return sql<TakeRow>`INSERT INTO rate_limits (key, units, updated_at, allowed)
    VALUES (${key}, ${capacity - WINDOW_MS}::bigint, ${now}::bigint, 1)
    ON CONFLICT (key) DO UPDATE SET
      units = CASE WHEN ${level} >= ${WINDOW_MS}::bigint THEN ${level} - ${WINDOW_MS}::bigint ELSE ${level} END,
      updated_at = GREATEST(rate_limits.updated_at, ${now}::bigint),
      allowed = CASE WHEN ${level} >= ${WINDOW_MS}::bigint THEN 1 ELSE 0 END
    RETURNING units, allowed`
}

/** The decision a bucket's new level and flag stand for, as the per-process limiter words it. */
const decisionOf = (row: TakeRow, perMinute: number): RateDecision => {
  const units = Number(row.units)
  return Number(row.allowed) === 1
    ? { allowed: true, remaining: Math.floor(units / WINDOW_MS) }
    : { allowed: false, retryAfterMs: Math.max(1, Math.ceil((WINDOW_MS - units) / perMinute)) }
}

/**
 * Deletes the buckets untouched for {@link PRUNE_AFTER_MS} as of now, and says
 * how many.
 *
 * @since 0.1.0
 * @category operations
 */
export const prune: Effect.Effect<number, never, SqlClient.SqlClient> = Effect.gen(function* () {
  const sql = yield* SqlClient.SqlClient
  const now = yield* Clock.currentTimeMillis
  const deleted = yield* sql<{ readonly key: string }>`DELETE FROM rate_limits WHERE updated_at < ${
    now - PRUNE_AFTER_MS
  }::bigint RETURNING key`
  return deleted.length
}).pipe(
  Effect.timeout(PRUNE_DEADLINE),
  // A failed round is tried again at the next one.
  Effect.catchAll((error) => Effect.as(Effect.logWarning("rate limiter: pruning buckets failed", error.message), 0))
)

/**
 * Makes a limiter shared through the database's `rate_limits` table, pruned for
 * as long as `scope` lives; `perMinute: 0` makes one that always allows.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (
  options: RateLimiterOptions
): Effect.Effect<RateLimiterService, never, SqlClient.SqlClient | Scope.Scope> =>
  Effect.gen(function* () {
    // Validates the options, and limits per process while the table is out of reach.
    const local = yield* makeInMemory(options)
    const { perMinute } = options
    if (perMinute === 0) return local
    const sql = yield* SqlClient.SqlClient
    const failing = yield* Ref.make(false)
    const recovered = Effect.whenEffect(
      Effect.logInfo("rate limiter: the shared limit is back"),
      Ref.getAndSet(failing, false)
    )
    const fallBack = (key: string, reason: string) =>
      Effect.zipRight(
        Effect.whenEffect(
          Effect.logWarning(`rate limiter: the shared limit is out of reach, limiting per process: ${reason}`),
          Effect.map(Ref.getAndSet(failing, true), (wasFailing) => !wasFailing)
        ),
        local.take(key)
      )
    const take = (key: string): Effect.Effect<RateDecision> =>
      Clock.currentTimeMillis.pipe(
        Effect.flatMap((now) => takeStatement(sql, key, now, perMinute)),
        Effect.timeout(STATEMENT_DEADLINE),
        Effect.flatMap((rows) =>
          rows[0] === undefined
            ? fallBack(key, "the statement returned no bucket")
            : Effect.as(recovered, decisionOf(rows[0], perMinute))
        ),
        Effect.catchAll((error) => fallBack(key, error.message))
      )
    yield* Effect.forkScoped(
      Effect.repeat(Effect.provideService(prune, SqlClient.SqlClient, sql), Schedule.spaced(PRUNE_EVERY))
    )
    return {
      perMinute,
      maxKeys: local.maxKeys,
      take,
      // The buckets in the table, or none when it cannot be read.
      size: sql<{ readonly count: number | string }>`SELECT COUNT(*) AS count FROM rate_limits`.pipe(
        Effect.timeout(STATEMENT_DEADLINE),
        Effect.map((rows) => Number(rows[0]?.count ?? 0)),
        Effect.orElseSucceed(() => 0)
      )
    }
  })

/**
 * A limiter of `perMinute` requests per minute per key shared through Postgres.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (options: RateLimiterOptions): Layer.Layer<RateLimiter, never, SqlClient.SqlClient> =>
  Layer.scoped(RateLimiter, make(options))

/**
 * The limiter that fits the database, as `CONNECT_RATE_LIMIT_PER_MINUTE` sets
 * it: shared through the table on Postgres (where replicas may run), per process
 * on SQLite (one process).
 *
 * @since 0.1.0
 * @category layers
 */
export const layerConfig: Layer.Layer<RateLimiter, ConfigError.ConfigError, SqlClient.SqlClient> = Layer.scoped(
  RateLimiter,
  Effect.gen(function* () {
    const perMinute = yield* perMinuteConfig
    const sql = yield* SqlClient.SqlClient
    return yield* sql.onDialectOrElse({
      pg: () => make({ perMinute }),
      orElse: () => makeInMemory({ perMinute })
    })
  })
)
