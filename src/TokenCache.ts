/**
 * The token cache: provider tokens are reused until they come within the
 * caller's validity buffer of expiry.
 *
 * - At most `capacity` entries (default 100); when full, the least recently
 *   used entry goes, and a hit moves an entry up.
 * - Keys are canonical (scopes, resources and audience as sorted sets,
 *   authorization details with sorted keys), and include the server and a
 *   digest of the caller credential, so tokens never cross callers.
 * - Concurrent misses on one key send one request; interrupting one waiter does
 *   not cancel it for the others; failures are never cached; an invalidation
 *   that lands while a request is under way keeps its result out.
 * - Refresh-ahead (when a read asks for it): a hit shortly before the buffer is
 *   served at once and starts one background request for the key, so callers
 *   do not wait at expiry; a failed one is retried after a cool-down, and the
 *   old token is served until its buffer, never after.
 * - Time comes from Effect's `Clock`, so tests drive expiry with `TestClock`.
 *
 * @since 0.1.0
 */
import { Config, type ConfigError, Context, Effect, Layer, type Scope } from "effect"
import type { CacheKey } from "./internal/cacheKey.js"
import {
  type GetOptions,
  DEFAULT_REFRESH_AHEAD_MS as internalDefaultRefreshAhead,
  TokenCacheImpl
} from "./internal/tokenCache.js"
import type { TokenResponse } from "./Token.js"

export type { CacheKey } from "./internal/cacheKey.js"
export type { GetOptions } from "./internal/tokenCache.js"

/**
 * The longest refresh-ahead window by default (5 minutes); a token's window is
 * also at most a quarter of its lifetime.
 *
 * @since 0.1.0
 * @category constants
 */
export const DEFAULT_REFRESH_AHEAD_MS: number = internalDefaultRefreshAhead

/**
 * The default number of entries.
 *
 * @since 0.1.0
 * @category constants
 */
export const DEFAULT_CAPACITY = 100

/**
 * @since 0.1.0
 * @category models
 */
export interface TokenCacheService {
  /** The most entries the cache holds. */
  readonly capacity: number
  /**
   * A fresh cached token for the key, or the answer of `lookup`, run once for
   * all concurrent callers of the key and cached when it succeeds.
   */
  readonly get: <E>(
    key: CacheKey,
    lookup: Effect.Effect<TokenResponse, E>,
    options: GetOptions
  ) => Effect.Effect<TokenResponse, E>
  /**
   * The fresh cached token for a key id at `nowMs`, synchronously, for adapters
   * that answer a hit without entering the Effect runtime. A hit within
   * `refreshAheadMs` (default 0: off) of the buffer also starts a background
   * refresh of the entry.
   */
  readonly unsafeGetFresh: (
    id: string,
    nowMs: number,
    bufferMs: number,
    refreshAheadMs?: number
  ) => TokenResponse | undefined
  /**
   * Whether the last `unsafeGetFresh` started a background refresh (read right
   * after the call: it is how a hit reports `refreshed_ahead`).
   */
  readonly lastHitRefreshedAhead: boolean
  /**
   * Drops matching entries and keeps the results of matching requests under way
   * out of the cache. `response` is `undefined` for a request under way.
   * Succeeds with the number of entries dropped.
   */
  readonly invalidate: (
    predicate: (key: CacheKey, response: TokenResponse | undefined) => boolean
  ) => Effect.Effect<number>
  /** The number of cached entries. */
  readonly size: Effect.Effect<number>
  /** The cached keys, least recently used first. */
  readonly keys: Effect.Effect<ReadonlyArray<CacheKey>>
}

/**
 * Makes a token cache whose background requests live in the given scope.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (options?: {
  readonly capacity?: number | undefined
}): Effect.Effect<TokenCacheService, never, Scope.Scope> =>
  Effect.gen(function* () {
    const capacity = options?.capacity ?? DEFAULT_CAPACITY
    if (!Number.isInteger(capacity) || capacity < 1) {
      return yield* Effect.dieMessage(`TokenCache capacity must be a whole number of at least 1, got ${capacity}`)
    }
    const impl = new TokenCacheImpl(capacity, yield* Effect.scope, yield* Effect.runtime<never>())
    return {
      capacity,
      get: (key, lookup, getOptions) => impl.get(key, lookup, getOptions),
      unsafeGetFresh: (id, nowMs, bufferMs, refreshAheadMs) => impl.unsafeGetFresh(id, nowMs, bufferMs, refreshAheadMs),
      get lastHitRefreshedAhead() {
        return impl.lastHitRefreshedAhead
      },
      invalidate: (predicate) => Effect.sync(() => impl.invalidate(predicate)),
      size: Effect.sync(() => impl.size),
      keys: Effect.sync(() => impl.keys())
    }
  })

/**
 * The token cache service.
 *
 * @since 0.1.0
 * @category tags
 */
export class TokenCache extends Context.Tag("effect-connect/TokenCache")<TokenCache, TokenCacheService>() {
  /**
   * A cache of `capacity` entries (default 100).
   */
  static readonly layer = (options?: { readonly capacity?: number | undefined }): Layer.Layer<TokenCache> =>
    Layer.scoped(TokenCache, make(options))

  /**
   * A cache sized by `CONNECT_TOKEN_CACHE_SIZE` (default 100).
   */
  static readonly layerConfig: Layer.Layer<TokenCache, ConfigError.ConfigError> = Layer.unwrapEffect(
    Config.integer("CONNECT_TOKEN_CACHE_SIZE").pipe(
      Config.validate({ message: "Expected a whole number of at least 1", validation: (n) => n >= 1 }),
      Config.withDefault(DEFAULT_CAPACITY),
      Effect.map((capacity) => TokenCache.layer({ capacity }))
    )
  )
}
