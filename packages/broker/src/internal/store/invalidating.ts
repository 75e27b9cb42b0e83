/**
 * The store telling the hot cache of its changes: every operation that changes
 * what a token request reads empties the cache (here and on the other
 * replicas) once it has succeeded. A change made inside a transaction is told
 * again when the transaction ends: until the commit, another request could
 * still read, and remember, what was there before.
 *
 * @internal
 */
import { Effect, FiberRef } from "effect"
import type { HotCacheService, InvalidationScope } from "../../HotCache.js"
import type { StoreService } from "../../Store.js"

/** Operations that change connectors, installations, projects, keys or links: they change what any request reads. */
const CONFIGURATION_CHANGES: ReadonlySet<string> = new Set([
  "putConnector",
  "removeConnector",
  "setInstallations",
  "putInstallation",
  "removeInstallation",
  "putProject",
  "putProjectKey",
  "putLink",
  "removeLink"
])

/** Operations that end issued tokens before their expiry. */
const TOKEN_CHANGES: ReadonlySet<string> = new Set(["markTokens"])

/** Operations that run the caller's effect in a transaction. */
const ENCLOSING: ReadonlySet<string> = new Set(["transaction", "withGrantLock"])

const scopeOf = (name: string): InvalidationScope | undefined =>
  CONFIGURATION_CHANGES.has(name) ? "all" : TOKEN_CHANGES.has(name) ? "tokens" : undefined

const wider = (a: InvalidationScope | undefined, b: InvalidationScope | undefined) =>
  a === "all" || b === "all" ? "all" : (a ?? b)

/** What the current fiber changed in the transaction it is in, to be told again at its end. */
const changed = FiberRef.unsafeMake<InvalidationScope | undefined>(undefined)

/** Runs `effect` (a transaction); once it ends, tells the cache of what changed inside. */
const enclosing = <A, E, R>(cache: HotCacheService, effect: Effect.Effect<A, E, R>) =>
  Effect.gen(function* () {
    const outer = yield* FiberRef.get(changed)
    yield* FiberRef.set(changed, undefined)
    const exit = yield* Effect.exit(effect)
    const inner = yield* FiberRef.get(changed)
    yield* FiberRef.set(changed, wider(outer, inner))
    if (inner !== undefined) yield* cache.invalidate(inner)
    return yield* exit
  })

/** After a change succeeds: tell the cache, and remember it for the end of the enclosing transaction. */
const afterChange = <A, E, R>(cache: HotCacheService, scope: InvalidationScope, effect: Effect.Effect<A, E, R>) =>
  Effect.tap(effect, () =>
    Effect.zipRight(
      FiberRef.update(changed, (before) => wider(before, scope)),
      cache.invalidate(scope)
    )
  )

/** Wraps the store's changing operations so that the hot cache forgets what they change. */
export const invalidating = (store: StoreService, cache: HotCacheService): StoreService => {
  const wrapped: Record<string, unknown> = { ...store }
  for (const [name, value] of Object.entries(store)) {
    if (typeof value !== "function") continue
    const operation = value as (...args: ReadonlyArray<unknown>) => Effect.Effect<unknown, unknown, unknown>
    const scope = scopeOf(name)
    if (ENCLOSING.has(name)) {
      wrapped[name] = (...args: ReadonlyArray<unknown>) => enclosing(cache, operation(...args))
    } else if (scope !== undefined) {
      wrapped[name] = (...args: ReadonlyArray<unknown>) => afterChange(cache, scope, operation(...args))
    }
  }
  return wrapped as unknown as StoreService
}
