import { Deferred, Effect, Exit, FiberId, type Scope } from "effect"
import type { TokenResponse } from "../Token.js"
import type { CacheKey } from "./cacheKey.js"
import { recordOutcome } from "./telemetry.js"

/** A cached token and what it was cached under. */
export interface Entry {
  readonly key: CacheKey
  readonly response: TokenResponse
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

  constructor(
    readonly capacity: number,
    private readonly scope: Scope.Scope
  ) {}

  /** The number of cached entries. */
  get size(): number {
    return this.entries.size
  }

  /** The fresh entry of `id` at `nowMs`, moved up; a stale one is dropped. */
  unsafeGetFresh(id: string, nowMs: number, bufferMs: number): TokenResponse | undefined {
    const entry = this.entries.get(id)
    if (entry === undefined) return undefined
    if (entry.response.expiresAt - nowMs > bufferMs) {
      // Repeated hits on the newest entry are the common case: no need to move it.
      if (id !== this.newest) {
        this.entries.delete(id)
        this.entries.set(id, entry)
        this.newest = id
      }
      return entry.response
    }
    this.entries.delete(id)
    return undefined
  }

  private store(key: CacheKey, response: TokenResponse): void {
    this.entries.delete(key.id)
    if (this.entries.size >= this.capacity) {
      const oldest = this.entries.keys().next()
      if (oldest.done !== true) this.entries.delete(oldest.value)
    }
    this.entries.set(key.id, { key, response })
    this.newest = key.id
  }

  get<E>(key: CacheKey, lookup: Effect.Effect<TokenResponse, E>, options: GetOptions): Effect.Effect<TokenResponse, E> {
    return Effect.clockWith((clock) => {
      if (options.forceRefresh !== true) {
        const hit = this.unsafeGetFresh(key.id, clock.unsafeCurrentTimeMillis(), options.bufferMs)
        if (hit !== undefined) return Effect.as(recordOutcome("hit"), hit)
      }
      return this.join(key, lookup, options.forceRefresh === true)
    })
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
        const deferred = Deferred.unsafeMake<TokenResponse, E>(FiberId.none)
        // Flights of one key come from one client, so they share an error type.
        const flight: Flight = { key, deferred: deferred as Deferred.Deferred<TokenResponse, unknown> }
        this.flights.set(key.id, flight)
        const run = Effect.interruptible(lookup).pipe(
          Effect.exit,
          Effect.flatMap((exit) =>
            Effect.suspend(() => {
              // Only the current flight of a key may fill it: an invalidation
              // that landed meanwhile removed this one, and its result stays out.
              if (this.flights.get(key.id) === flight) {
                this.flights.delete(key.id)
                if (Exit.isSuccess(exit)) this.store(key, exit.value)
              }
              return Deferred.done(deferred, exit)
            })
          )
        )
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
