/**
 * The broker's rate limiter: requests per project on the token endpoint, by
 * default 200 a minute, answered over the limit with 429 `rate_limited` and a
 * `Retry-After` in whole seconds (see {@link retryAfterSeconds}).
 *
 * - A token bucket per key: it holds at most `perMinute` requests and refills
 *   continuously at `perMinute` per 60 000 ms, so a burst of `perMinute` passes
 *   at once and a steady caller gets one request every `60 000 / perMinute` ms.
 *   Each call is O(1); the arithmetic is in whole units, so it is exact.
 * - Time comes from Effect's `Clock`, so tests drive refill with `TestClock`. A
 *   step back of the clock neither refills nor drains a bucket.
 * - Memory is bounded: a bucket that has refilled to full is the same as no
 *   bucket, so the least recently used ones are dropped as they fill up; and at
 *   most `maxKeys` keys (default 10 000) are kept, the least recently used
 *   going first, so a flood of distinct keys cannot grow memory. An evicted
 *   bucket that was not full forgets what it owed: the bound on memory wins.
 * - This limiter is per process: each process keeps its own buckets. Broker
 *   replicas on Postgres share one limit instead, with the same buckets kept in
 *   a table (`PgRateLimiter`); `PgRateLimiter.layerConfig` picks the one that
 *   fits the database.
 *
 * @since 0.1.0
 */
import { Config, ConfigError, Context, Effect, Either, Layer } from "effect"

/**
 * The default limit, in requests per minute per key.
 *
 * @since 0.1.0
 * @category constants
 */
export const DEFAULT_PER_MINUTE = 200

/**
 * The largest limit accepted, in requests per minute per key.
 *
 * @since 0.1.0
 * @category constants
 */
export const MAX_PER_MINUTE = 1_000_000_000

/**
 * The default number of keys whose buckets are kept.
 *
 * @since 0.1.0
 * @category constants
 */
export const DEFAULT_MAX_KEYS = 10_000

/**
 * The environment variable that sets the limit: a whole number of requests per
 * minute per project of at least 1, or `0` or `off` to disable limiting.
 *
 * @since 0.1.0
 * @category constants
 */
export const PER_MINUTE_VARIABLE = "CONNECT_RATE_LIMIT_PER_MINUTE"

/**
 * The limiter's window, in milliseconds: a key's bucket refills fully in it.
 *
 * @since 0.1.0
 * @category constants
 */
export const WINDOW_MS = 60_000

/**
 * What the limiter decided for one request.
 *
 * A decision rather than a failure: the endpoint maps both outcomes onto its
 * answer (`remaining` for the rate headers of a request that passes,
 * `retryAfterMs` for the 429 of one that does not), and being over the limit is
 * an expected outcome of a healthy limiter, not an error of `take`.
 *
 * @since 0.1.0
 * @category models
 */
export type RateDecision =
  | {
      readonly allowed: true
      /** Requests the key may still make at once; `Infinity` when limiting is disabled. */
      readonly remaining: number
    }
  | {
      readonly allowed: false
      /** Milliseconds until the key may make one more request, at least 1. */
      readonly retryAfterMs: number
    }

/**
 * @since 0.1.0
 * @category models
 */
export interface RateLimiterService {
  /** The limit in requests per minute per key; `0` when limiting is disabled. */
  readonly perMinute: number
  /** The most keys whose buckets are kept. */
  readonly maxKeys: number
  /** Takes one request from the key's bucket, if it has one. A refusal takes nothing. */
  readonly take: (key: string) => Effect.Effect<RateDecision>
  /** The number of keys whose buckets are kept. */
  readonly size: Effect.Effect<number>
}

/**
 * The options of {@link make}.
 *
 * @since 0.1.0
 * @category models
 */
export interface RateLimiterOptions {
  /** Requests per minute per key: a whole number from 1 to {@link MAX_PER_MINUTE}, or `0` to disable limiting. */
  readonly perMinute: number
  /** The most keys whose buckets are kept (default {@link DEFAULT_MAX_KEYS}). */
  readonly maxKeys?: number | undefined
}

/**
 * The `Retry-After` header value, in whole seconds, for a refusal's
 * `retryAfterMs`: rounded up, and at least 1.
 *
 * @since 0.1.0
 * @category utils
 */
export const retryAfterSeconds = (retryAfterMs: number): number => Math.max(1, Math.ceil(retryAfterMs / 1000))

/** A bucket's level, in units of `1 / WINDOW_MS` of a request, at `updatedAt`. */
interface Bucket {
  units: number
  updatedAt: number
}

/** How many buckets at the least recently used end are looked at, per call, for being full. */
const SWEEP_PER_CALL = 2

/**
 * One request costs `WINDOW_MS` units, a full bucket holds `perMinute * WINDOW_MS`
 * units and a millisecond adds `perMinute` units: whole numbers for whole
 * milliseconds, so `300` ms after a burst at 200 a minute is exactly one request.
 */
class Buckets {
  private readonly buckets = new Map<string, Bucket>()
  private readonly capacity: number

  constructor(
    private readonly perMinute: number,
    private readonly maxKeys: number
  ) {
    this.capacity = perMinute * WINDOW_MS
  }

  get size(): number {
    return this.buckets.size
  }

  /** The bucket's level at `now`, refilled for the time since it was last updated. */
  private level(bucket: Bucket, now: number): number {
    const elapsed = Math.max(0, now - bucket.updatedAt)
    return Math.min(this.capacity, bucket.units + elapsed * this.perMinute)
  }

  take(key: string, now: number): RateDecision {
    const existing = this.buckets.get(key)
    const units = existing === undefined ? this.capacity : this.level(existing, now)
    // Re-inserted below, so that the map stays in least recently used order.
    if (existing !== undefined) this.buckets.delete(key)
    this.sweep(now)
    const allowed = units >= WINDOW_MS
    const bucket: Bucket = { units: allowed ? units - WINDOW_MS : units, updatedAt: now }
    this.buckets.set(key, bucket)
    if (this.buckets.size > this.maxKeys) this.evictOldest()
    return allowed
      ? { allowed: true, remaining: Math.floor(bucket.units / WINDOW_MS) }
      : { allowed: false, retryAfterMs: Math.max(1, Math.ceil((WINDOW_MS - units) / this.perMinute)) }
  }

  /** Drops the least recently used buckets that have refilled to full, a few per call. */
  private sweep(now: number): void {
    let looked = 0
    for (const [key, bucket] of this.buckets) {
      if (looked++ >= SWEEP_PER_CALL || this.level(bucket, now) < this.capacity) return
      this.buckets.delete(key)
    }
  }

  private evictOldest(): void {
    for (const key of this.buckets.keys()) {
      this.buckets.delete(key)
      return
    }
  }
}

const unlimited: RateDecision = { allowed: true, remaining: Number.POSITIVE_INFINITY }

/**
 * Makes a rate limiter; `perMinute: 0` makes one that always allows.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (options: RateLimiterOptions): Effect.Effect<RateLimiterService> =>
  Effect.suspend(() => {
    const { perMinute } = options
    const maxKeys = options.maxKeys ?? DEFAULT_MAX_KEYS
    if (!Number.isInteger(perMinute) || perMinute < 0 || perMinute > MAX_PER_MINUTE) {
      return Effect.dieMessage(
        `RateLimiter perMinute must be a whole number from 1 to ${MAX_PER_MINUTE}, or 0 to disable limiting, got ${perMinute}`
      )
    }
    if (!Number.isInteger(maxKeys) || maxKeys < 1) {
      return Effect.dieMessage(`RateLimiter maxKeys must be a whole number of at least 1, got ${maxKeys}`)
    }
    if (perMinute === 0) {
      return Effect.succeed<RateLimiterService>({
        perMinute,
        maxKeys,
        take: () => Effect.succeed(unlimited),
        size: Effect.succeed(0)
      })
    }
    const buckets = new Buckets(perMinute, maxKeys)
    return Effect.succeed<RateLimiterService>({
      perMinute,
      maxKeys,
      // The time is read in the same synchronous step as the bucket is updated.
      take: (key) => Effect.clockWith((clock) => Effect.sync(() => buckets.take(key, clock.unsafeCurrentTimeMillis()))),
      size: Effect.sync(() => buckets.size)
    })
  })

/**
 * Parses a limit as written in {@link PER_MINUTE_VARIABLE}: a whole number of at
 * most {@link MAX_PER_MINUTE}, where `0` (or `off`, in any case) disables limiting.
 */
const parsePerMinute = (raw: string): Either.Either<number, ConfigError.ConfigError> => {
  const text = raw.trim()
  if (text.toLowerCase() === "off") return Either.right(0)
  const value = Number(text)
  return /^\d+$/.test(text) && value <= MAX_PER_MINUTE
    ? Either.right(value)
    : Either.left(
        ConfigError.InvalidData(
          [],
          `${PER_MINUTE_VARIABLE} must be a whole number of requests per minute from 1 to ${MAX_PER_MINUTE}, or 0 or off to disable limiting, got ${JSON.stringify(raw)}`
        )
      )
}

/**
 * The limit from {@link PER_MINUTE_VARIABLE} (default {@link DEFAULT_PER_MINUTE});
 * `0` when limiting is disabled.
 *
 * @since 0.1.0
 * @category config
 */
export const perMinuteConfig: Config.Config<number> = Config.string(PER_MINUTE_VARIABLE).pipe(
  Config.mapOrFail(parsePerMinute),
  Config.withDefault(DEFAULT_PER_MINUTE)
)

/**
 * The rate limiter service. `RateLimiter.layer` limits per process (one broker
 * on SQLite); `PgRateLimiter.layer` shares the limit across replicas on Postgres.
 *
 * @since 0.1.0
 * @category tags
 */
export class RateLimiter extends Context.Tag("effect-connect/broker/RateLimiter")<RateLimiter, RateLimiterService>() {
  /**
   * A limiter of `perMinute` requests per minute per key (`0` disables
   * limiting), keeping at most `maxKeys` keys (default 10 000).
   */
  static readonly layer = (options: RateLimiterOptions): Layer.Layer<RateLimiter> =>
    Layer.effect(RateLimiter, make(options))

  /**
   * A limiter set by `CONNECT_RATE_LIMIT_PER_MINUTE` (default 200; `0` or `off`
   * disables limiting).
   */
  static readonly layerConfig: Layer.Layer<RateLimiter, ConfigError.ConfigError> = Layer.unwrapEffect(
    Effect.map(perMinuteConfig, (perMinute) => RateLimiter.layer({ perMinute }))
  )
}
