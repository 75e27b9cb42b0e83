/**
 * The broker's memory of what a repeated token request reads: the caller of a
 * project key (by the key's hash) and the answer last given to an identical
 * request (same project, environment, connector and body) while its token may
 * still be handed out. With both, the token endpoint answers without the
 * database (see `internal/fastPath.ts`).
 *
 * It never answers what the database would not: every change to connectors,
 * installations, projects, keys or links empties it, and so does every
 * revocation of tokens, on this replica at once and on the others through
 * `Invalidation` (Postgres `LISTEN/NOTIFY`). While the channel is not known to
 * work, it answers nothing. A fill carries the generation in which its reads
 * began, and is refused when a change came in between.
 *
 * @since 0.3.0
 */
import type { SqlClient } from "@effect/sql"
import { Context, Effect, Layer } from "effect"
import { REUSE_BUFFER_MS } from "./grants/reuse.js"
import { type Invalidation, InvalidationChannel, type InvalidationScope } from "./internal/hotCache/invalidation.js"
import type { Caller } from "./Store.js"

export type { InvalidationScope } from "./internal/hotCache/invalidation.js"

/**
 * An answer given to a token request, kept to be given again.
 *
 * @since 0.3.0
 * @category models
 */
export interface StoredAnswer {
  /** The body answered (the protocol's `TokenResponse`, encoded). */
  readonly body: string
  /** When its token expires (epoch ms). */
  readonly expiresAt: number
  /** The connector's uid, for metrics and events. */
  readonly connector: string
  /** The subject key and installation of the request, for the `token.issued` event. */
  readonly subject: string
  readonly installationId: string | undefined
  /** The grant the token came by, for the `token.issued` event. */
  readonly grant: string
}

/**
 * The hot cache's operations. Lookups and fills are synchronous: they run on
 * the token endpoint's fast path, outside any fiber.
 *
 * @since 0.3.0
 * @category models
 */
export interface HotCacheService {
  /** The current generation: read it before the reads whose results a fill carries. */
  readonly generation: () => number
  /** Whether lookups may answer now (the invalidation channel is known to work). */
  readonly usable: () => boolean
  /** The caller of a project key, by the key's hash. */
  readonly caller: (keyHash: string) => Caller | undefined
  /** The answer to give again for a request key, while it is reusable at `now`. */
  readonly answer: (requestKey: string, now: number) => StoredAnswer | undefined
  /** Remembers a caller read in generation `generation`, unless a change came since. */
  readonly rememberCaller: (generation: number, keyHash: string, caller: Caller) => void
  /** Remembers an answer given in generation `generation`, unless a change came since. */
  readonly rememberAnswer: (generation: number, requestKey: string, answer: StoredAnswer) => void
  /**
   * A read of the configuration (connectors, installations, projects, keys or
   * links) remembered under `key`: what `read` gave the last time, while
   * lookups may answer and nothing changed since; else `read`, remembered
   * unless a change came while it ran.
   */
  readonly remembered: <A, E, R>(key: string, read: Effect.Effect<A, E, R>) => Effect.Effect<A, E, R>
  /** Forgets what `scope` covers here and on every other replica. */
  readonly invalidate: (scope: InvalidationScope) => Effect.Effect<void>
}

/**
 * The hot cache.
 *
 * @since 0.3.0
 * @category tags
 */
export class HotCache extends Context.Tag("effect-connect/broker/HotCache")<HotCache, HotCacheService>() {
  /**
   * The hot cache of the database in context: on Postgres, invalidated across
   * replicas by `LISTEN/NOTIFY`; on SQLite (one process), locally.
   */
  static readonly layer: Layer.Layer<HotCache, never, SqlClient.SqlClient> = Layer.effect(
    HotCache,
    Effect.map(InvalidationChannel, (channel) => make(channel))
  ).pipe(Layer.provide(InvalidationChannel.layer))
}

/**
 * The most entries of each kind: past it, the oldest is forgotten first.
 *
 * @since 0.3.0
 * @category constants
 */
export const MAX_ENTRIES = 10_000

/**
 * Whether a remembered answer may be given again at `now`: while its token has
 * more than {@link REUSE_BUFFER_MS} left. That is the reuse rule's first half
 * (`grants/reuse.ts`); a token closer to expiry goes to the database, which
 * applies the whole rule.
 *
 * @since 0.3.0
 * @category utils
 */
export const isServable = (answer: StoredAnswer, now: number): boolean => answer.expiresAt - now > REUSE_BUFFER_MS

const put = <V>(map: Map<string, V>, key: string, value: V) => {
  map.delete(key)
  map.set(key, value)
  if (map.size > MAX_ENTRIES) {
    const oldest = map.keys().next()
    if (oldest.done !== true) map.delete(oldest.value)
  }
}

/**
 * A hot cache over an invalidation channel.
 *
 * @since 0.3.0
 * @category constructors
 */
export const make = (channel: Invalidation): HotCacheService => {
  const callers = new Map<string, Caller>()
  const answers = new Map<string, StoredAnswer>()
  // Each key names its read (`internal/hotCache/remembering.ts`), and so the type of its value.
  const reads = new Map<string, unknown>()
  let generation = 0
  const forget = (scope: InvalidationScope) => {
    generation += 1
    answers.clear()
    if (scope === "all") {
      callers.clear()
      reads.clear()
    }
  }
  channel.subscribe(forget)
  const fresh = (at: number) => at === generation && channel.healthy()
  return {
    generation: () => generation,
    usable: channel.healthy,
    caller: (keyHash) => (channel.healthy() ? callers.get(keyHash) : undefined),
    answer: (requestKey, now) => {
      if (!channel.healthy()) return undefined
      const found = answers.get(requestKey)
      return found !== undefined && isServable(found, now) ? found : undefined
    },
    rememberCaller: (at, keyHash, caller) => {
      if (fresh(at)) put(callers, keyHash, caller)
    },
    rememberAnswer: (at, requestKey, answer) => {
      if (fresh(at) && isServable(answer, Date.now())) put(answers, requestKey, answer)
    },
    remembered: <A, E, R>(key: string, read: Effect.Effect<A, E, R>) =>
      Effect.suspend(() => {
        if (channel.healthy() && reads.has(key)) return Effect.succeed(reads.get(key) as A)
        const at = generation
        return Effect.tap(read, (value) => {
          if (fresh(at)) put(reads, key, value)
        })
      }),
    invalidate: (scope) =>
      Effect.zipRight(
        Effect.sync(() => forget(scope)),
        channel.publish(scope)
      )
  }
}
