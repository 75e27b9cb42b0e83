import { Deferred, Effect, Exit, FiberId, Runtime, type Scope } from "effect"
import type { TokenResponse } from "../Token.js"
import type { CacheKey } from "./cacheKey.js"
import { recordOutcome, refreshesAhead } from "./telemetry.js"

/**
 * The longest refresh-ahead window by default: five minutes before the
 * validity buffer, enough for a slow server to answer long before any caller
 * would have to wait for it.
 */
export const DEFAULT_REFRESH_AHEAD_MS = 5 * 60_000

/**
 * The share of a token's lifetime (as seen when it was cached) that the window
 * may take: a short token is not renewed for most of its life.
 */
export const REFRESH_AHEAD_FRACTION = 1 / 4

/**
 * How long before the validity buffer a hit starts a background refresh: the
 * smaller of `maxMs` and a quarter of the token's lifetime when it was cached.
 */
export const refreshWindowMs = (response: TokenResponse, storedAtMs: number, maxMs: number): number =>
  Math.max(0, Math.min(maxMs, (response.expiresAt - storedAtMs) * REFRESH_AHEAD_FRACTION))

/** The cool-down after the first failed (or useless) background refresh. */
export const REFRESH_RETRY_FIRST_MS = 1_000

/** The longest cool-down between background refresh attempts. */
export const REFRESH_RETRY_MAX_MS = 30_000

/**
 * The cool-down after `attempts` failed background refreshes in a row: doubling
 * from one second, at most 30 seconds, so that a server that is down (or that
 * hands out the same token again) is not asked on every hit.
 */
export const refreshRetryDelayMs = (attempts: number): number =>
  Math.min(REFRESH_RETRY_MAX_MS, REFRESH_RETRY_FIRST_MS * 2 ** Math.max(0, attempts - 1))

/** A cached token and what it was cached under. */
export interface Entry {
  readonly key: CacheKey
  readonly response: TokenResponse
  /** When it was cached: the token's lifetime as seen then sizes the window. */
  readonly storedAtMs: number
  /** The request that fetched it, sent again to refresh it ahead. */
  readonly lookup: Effect.Effect<TokenResponse, unknown>
  /** Background refreshes in a row that failed or brought no later token. */
  failedRefreshes: number
  /** No background refresh starts before this instant. */
  nextRefreshMs: number
}

/** A request under way for a key; every caller of that key waits on it. */
interface Flight {
  readonly key: CacheKey
  readonly deferred: Deferred.Deferred<TokenResponse, unknown>
}

/** The options of one cache read. */
export interface GetOptions {
  /** Serve a cached token only while `expiresAt - now > bufferMs`. */
  readonly bufferMs: number
  /** Skip the cache read; the answer replaces the entry. */
  readonly forceRefresh?: boolean | undefined
  /** The longest refresh-ahead window; 0 or none turns refresh-ahead off. */
  readonly refreshAheadMs?: number | undefined
}

/**
 * A token cache: at most `capacity` entries with least-recently-used eviction,
 * expiry against a per-call buffer, and one request per key at a time.
 *
 * The LRU order is the insertion order of a `Map`: a hit deletes and re-inserts
 * the entry, so the first key is always the least recently used. Every
 * operation is O(1).
 */
export class TokenCacheImpl {
  private readonly entries = new Map<string, Entry>()
  private readonly flights = new Map<string, Flight>()
  /** The id of the most recently used entry. */
  private newest: string | undefined = undefined
  /** Whether the last `unsafeGetFresh` started a background refresh. */
  lastHitRefreshedAhead = false

  constructor(
    readonly capacity: number,
    private readonly scope: Scope.Scope,
    /** Runs background refreshes started by a synchronous hit. */
    private readonly runtime: Runtime.Runtime<never>
  ) {}

  /** The number of cached entries. */
  get size(): number {
    return this.entries.size
  }

  /**
   * The fresh entry of `id` at `nowMs`, moved up; a stale one is dropped. A hit
   * within `refreshAheadMs` of the buffer also starts a background refresh.
   */
  unsafeGetFresh(id: string, nowMs: number, bufferMs: number, refreshAheadMs = 0): TokenResponse | undefined {
    const entry = this.entries.get(id)
    if (entry === undefined) return undefined
    const left = entry.response.expiresAt - nowMs
    if (left > bufferMs) {
      // Repeated hits on the newest entry are the common case: no need to move it.
      if (id !== this.newest) {
        this.entries.delete(id)
        this.entries.set(id, entry)
        this.newest = id
      }
      this.lastHitRefreshedAhead =
        left - bufferMs <= refreshAheadMs && this.unsafeRefreshAhead(entry, nowMs, left - bufferMs, refreshAheadMs)
      return entry.response
    }
    this.entries.delete(id)
    return undefined
  }

  /** Starts the background refresh of an entry whose window is open, unless one runs or it cools down. */
  private unsafeRefreshAhead(entry: Entry, nowMs: number, beforeBufferMs: number, maxMs: number): boolean {
    if (beforeBufferMs > refreshWindowMs(entry.response, entry.storedAtMs, maxMs)) return false
    if (nowMs < entry.nextRefreshMs || this.flights.has(entry.key.id)) return false
    const [flight] = this.startFlight(entry.key, entry.lookup)
    refreshesAhead.unsafeUpdate(1, [])
    // The flight is the one `join` waits on: callers that reach the buffer
    // while it runs join it. It lives in the cache's scope, like join's.
    Runtime.runFork(this.runtime)(flight, { scope: this.scope })
    return true
  }

  private store(key: CacheKey, response: TokenResponse, storedAtMs: number, lookup: Entry["lookup"]): void {
    const previous = this.entries.get(key.id)
    this.entries.delete(key.id)
    if (this.entries.size >= this.capacity) {
      const oldest = this.entries.keys().next()
      if (oldest.done !== true) this.entries.delete(oldest.value)
    }
    // A refresh that brought no later token (a server that hands out the same
    // stored token) cools down as a failure does, or every hit would ask again;
    // the token's lifetime stays as first seen, and with it the window.
    const same = previous !== undefined && response.expiresAt <= previous.response.expiresAt
    const entry: Entry = {
      key,
      response,
      storedAtMs: same ? previous.storedAtMs : storedAtMs,
      lookup,
      failedRefreshes: same ? previous.failedRefreshes : 0,
      nextRefreshMs: 0
    }
    if (same) this.coolDown(entry, storedAtMs)
    this.entries.set(key.id, entry)
    this.newest = key.id
  }

  private coolDown(entry: Entry, nowMs: number): void {
    entry.failedRefreshes++
    entry.nextRefreshMs = nowMs + refreshRetryDelayMs(entry.failedRefreshes)
  }

  get<E>(key: CacheKey, lookup: Effect.Effect<TokenResponse, E>, options: GetOptions): Effect.Effect<TokenResponse, E> {
    return Effect.clockWith((clock) => {
      if (options.forceRefresh !== true) {
        const hit = this.unsafeGetFresh(
          key.id,
          clock.unsafeCurrentTimeMillis(),
          options.bufferMs,
          options.refreshAheadMs ?? 0
        )
        if (hit !== undefined)
          return Effect.as(recordOutcome(this.lastHitRefreshedAhead ? "refreshed_ahead" : "hit"), hit)
      }
      return this.join(key, lookup, options.forceRefresh === true)
    })
  }

  /**
   * Registers a request for the key and returns the effect that runs it and
   * settles its waiters. Only the current flight of a key may fill the cache:
   * an invalidation that landed meanwhile removed this one, and its result
   * stays out. A failure leaves the entry (if any) in place, cooling down.
   */
  private startFlight<E>(
    key: CacheKey,
    lookup: Effect.Effect<TokenResponse, E>
  ): readonly [run: Effect.Effect<void>, deferred: Deferred.Deferred<TokenResponse, E>] {
    const deferred = Deferred.unsafeMake<TokenResponse, E>(FiberId.none)
    // Flights of one key come from one client, so they share an error type.
    const flight: Flight = { key, deferred: deferred as Deferred.Deferred<TokenResponse, unknown> }
    this.flights.set(key.id, flight)
    const run = Effect.interruptible(lookup).pipe(
      Effect.exit,
      Effect.flatMap((exit) =>
        Effect.clockWith((clock) =>
          Effect.suspend(() => {
            if (this.flights.get(key.id) === flight) {
              this.flights.delete(key.id)
              const nowMs = clock.unsafeCurrentTimeMillis()
              if (Exit.isSuccess(exit)) this.store(key, exit.value, nowMs, lookup)
              else {
                const entry = this.entries.get(key.id)
                if (entry !== undefined) this.coolDown(entry, nowMs)
              }
            }
            return Deferred.done(deferred, exit)
          })
        )
      ),
      Effect.asVoid
    )
    return [run, deferred]
  }

  /**
   * Waits on the request under way for the key, or starts it. Starting is
   * uninterruptible so that a flight, once registered, always runs; waiting is
   * interruptible, and interrupting one waiter leaves the request running for
   * the others.
   */
  private join<E>(
    key: CacheKey,
    lookup: Effect.Effect<TokenResponse, E>,
    force: boolean
  ): Effect.Effect<TokenResponse, E> {
    return Effect.uninterruptibleMask((restore) =>
      Effect.suspend(() => {
        if (force) this.entries.delete(key.id)
        const existing = this.flights.get(key.id)
        if (existing !== undefined) {
          return Effect.zipRight(
            recordOutcome("joined"),
            restore(Deferred.await(existing.deferred as Deferred.Deferred<TokenResponse, E>))
          )
        }
        const [run, deferred] = this.startFlight(key, lookup)
        return Effect.zipRight(recordOutcome("miss"), Effect.forkIn(run, this.scope)).pipe(
          Effect.zipRight(restore(Deferred.await(deferred)))
        )
      })
    )
  }

  /**
   * Drops the entries that match, and detaches the requests under way for
   * matching keys so that their results are not cached. Returns how many
   * entries were dropped.
   */
  invalidate(predicate: (key: CacheKey, response: TokenResponse | undefined) => boolean): number {
    let dropped = 0
    for (const [id, entry] of this.entries) {
      if (predicate(entry.key, entry.response)) {
        this.entries.delete(id)
        dropped++
      }
    }
    for (const [id, flight] of this.flights) {
      if (predicate(flight.key, undefined)) this.flights.delete(id)
    }
    return dropped
  }

  /** The cached keys, least recently used first. */
  keys(): ReadonlyArray<CacheKey> {
    return Array.from(this.entries.values(), (entry) => entry.key)
  }
}
