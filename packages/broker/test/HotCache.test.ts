import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { Effect, Layer, ManagedRuntime, Redacted } from "effect"
import { Cipher, generateKey } from "../src/Cipher.js"
import { HotCache, type HotCacheService, isServable, MAX_ENTRIES, make, type StoredAnswer } from "../src/HotCache.js"
import type { Invalidation, InvalidationScope } from "../src/internal/hotCache/invalidation.js"
import { Store } from "../src/Store.js"
import { backends, layerOf, postgres, postgresAvailable, type TestDatabase } from "./support/databases.js"

const caller = { projectId: "prj_a", environment: "production" }
const HOUR = 3_600_000

const answer = (expiresAt: number): StoredAnswer => ({
  body: `{"token":"t","expiresAt":${expiresAt}}`,
  expiresAt,
  connector: "acme/api",
  subject: "app",
  installationId: undefined,
  grant: "client_credentials"
})

/** A channel whose health and whose changes from elsewhere the test sets. */
const channel = () => {
  let healthy = true
  const listeners: Array<(scope: InvalidationScope) => void> = []
  const published: Array<InvalidationScope> = []
  const invalidation: Invalidation = {
    healthy: () => healthy,
    subscribe: (listener) => {
      listeners.push(listener)
    },
    publish: (scope) => Effect.sync(() => published.push(scope))
  }
  return {
    invalidation,
    published,
    setHealthy: (value: boolean) => {
      healthy = value
    },
    fromElsewhere: (scope: InvalidationScope) => {
      for (const listener of listeners) listener(scope)
    }
  }
}

describe("HotCache", () => {
  it("gives a remembered answer again while its token has more than the reuse buffer left", () => {
    const cache = make(channel().invalidation)
    const now = Date.now()
    cache.rememberAnswer(cache.generation(), "k", answer(now + HOUR))
    expect(cache.answer("k", now)?.expiresAt).toBe(now + HOUR)
    expect(cache.answer("k", now + HOUR - 60_000)).toBeUndefined()
    expect(isServable(answer(now + 60_001), now)).toBe(true)
    expect(isServable(answer(now + 60_000), now)).toBe(false)
  })

  it.effect("refuses a fill whose reads began before a change, and tells the other replicas", () =>
    Effect.gen(function* () {
      const { invalidation, published } = channel()
      const cache = make(invalidation)
      const before = cache.generation()
      yield* cache.invalidate("tokens")
      cache.rememberAnswer(before, "k", answer(Date.now() + HOUR))
      cache.rememberCaller(before, "hash", caller)
      expect(cache.answer("k", Date.now())).toBeUndefined()
      expect(cache.caller("hash")).toBeUndefined()
      expect(published).toEqual(["tokens"])
    })
  )

  it.effect("forgets answers on a revocation and everything on a change of configuration, made here or elsewhere", () =>
    Effect.gen(function* () {
      const test = channel()
      const cache = make(test.invalidation)
      const fill = () => {
        cache.rememberCaller(cache.generation(), "hash", caller)
        cache.rememberAnswer(cache.generation(), "k", answer(Date.now() + HOUR))
      }
      fill()
      yield* cache.invalidate("tokens")
      expect(cache.caller("hash")).toEqual(caller)
      expect(cache.answer("k", Date.now())).toBeUndefined()
      fill()
      test.fromElsewhere("all")
      expect(cache.caller("hash")).toBeUndefined()
      expect(cache.answer("k", Date.now())).toBeUndefined()
    })
  )

  it("answers nothing, and remembers nothing, while changes made elsewhere may not reach it", () => {
    const test = channel()
    const cache = make(test.invalidation)
    cache.rememberCaller(cache.generation(), "hash", caller)
    test.setHealthy(false)
    expect(cache.caller("hash")).toBeUndefined()
    cache.rememberAnswer(cache.generation(), "k", answer(Date.now() + HOUR))
    test.setHealthy(true)
    expect(cache.answer("k", Date.now())).toBeUndefined()
    expect(cache.usable()).toBe(true)
  })

  it("keeps at most MAX_ENTRIES answers, forgetting the oldest first", () => {
    const cache = make(channel().invalidation)
    const expiresAt = Date.now() + HOUR
    for (let i = 0; i <= MAX_ENTRIES; i++) cache.rememberAnswer(cache.generation(), `k${i}`, answer(expiresAt))
    expect(cache.answer("k0", Date.now())).toBeUndefined()
    expect(cache.answer("k1", Date.now())).toBeDefined()
    expect(cache.answer(`k${MAX_ENTRIES}`, Date.now())).toBeDefined()
  })
})

describe("HotCache.remembered", () => {
  it.effect("remembers a configuration read until a change of configuration, made here or elsewhere", () =>
    Effect.gen(function* () {
      const test = channel()
      const cache = make(test.invalidation)
      let reads = 0
      const read = Effect.sync(() => ++reads)
      expect(yield* cache.remembered("connector\nacme/api", read)).toBe(1)
      expect(yield* cache.remembered("connector\nacme/api", read)).toBe(1)
      // A revocation of tokens changes no configuration.
      yield* cache.invalidate("tokens")
      expect(yield* cache.remembered("connector\nacme/api", read)).toBe(1)
      yield* cache.invalidate("all")
      expect(yield* cache.remembered("connector\nacme/api", read)).toBe(2)
      test.fromElsewhere("all")
      expect(yield* cache.remembered("connector\nacme/api", read)).toBe(3)
      expect(yield* cache.remembered("connector\nacme/api", read)).toBe(3)
    })
  )

  it.effect(
    "does not remember a read a change came during, nor answer or remember while changes may not reach it",
    () =>
      Effect.gen(function* () {
        const test = channel()
        const cache = make(test.invalidation)
        let reads = 0
        // The read of the configuration as it was; a change is made and told while it runs.
        const racing = Effect.zipRight(
          cache.invalidate("all"),
          Effect.sync(() => ++reads)
        )
        expect(yield* cache.remembered("link", racing)).toBe(1)
        expect(
          yield* cache.remembered(
            "link",
            Effect.sync(() => ++reads)
          )
        ).toBe(2)
        expect(
          yield* cache.remembered(
            "link",
            Effect.sync(() => ++reads)
          )
        ).toBe(2)
        test.setHealthy(false)
        expect(
          yield* cache.remembered(
            "link",
            Effect.sync(() => ++reads)
          )
        ).toBe(3)
        expect(
          yield* cache.remembered(
            "other",
            Effect.sync(() => ++reads)
          )
        ).toBe(4)
        test.setHealthy(true)
        expect(
          yield* cache.remembered(
            "other",
            Effect.sync(() => ++reads)
          )
        ).toBe(5)
      })
  )
})

describe.each(backends)("the store's changes empty the hot cache, on $name", ({ make: makeDatabase }) => {
  let database: TestDatabase
  let runtime: ManagedRuntime.ManagedRuntime<Store | HotCache, never>
  beforeAll(async () => {
    database = await makeDatabase()
    runtime = ManagedRuntime.make(
      Store.layer.pipe(
        Layer.provide(layerOf(database)),
        Layer.provide(Cipher.layer(Redacted.make(generateKey())).pipe(Layer.orDie))
      )
    )
  })
  afterAll(async () => {
    await runtime.dispose()
    await database.drop()
  })

  const filled = (cache: HotCacheService) => {
    cache.rememberCaller(cache.generation(), "hash", caller)
    cache.rememberAnswer(cache.generation(), "k", answer(Date.now() + HOUR))
  }

  it("a change of configuration; and, inside a transaction, once more when it ends", async () => {
    await runtime.runPromise(
      Effect.gen(function* () {
        const store = yield* Store
        const cache = yield* HotCache
        yield* Effect.iterate(0, { while: () => !cache.usable(), body: (n) => Effect.as(Effect.sleep(10), n + 1) })
        filled(cache)
        yield* store.putProject({ id: "prj_hot", name: "Hot" })
        expect(cache.caller("hash")).toBeUndefined()
        yield* store.transaction(
          Effect.gen(function* () {
            yield* store.putProject({ id: "prj_hot", name: "Hotter" })
            // Filled after the change, before the commit: what was read may be what the commit replaces.
            filled(cache)
            expect(cache.caller("hash")).toEqual(caller)
          })
        )
        expect(cache.caller("hash")).toBeUndefined()
      })
    )
  })

  it("a revocation of tokens empties the answers only", async () => {
    await runtime.runPromise(
      Effect.gen(function* () {
        const store = yield* Store
        const cache = yield* HotCache
        filled(cache)
        yield* store.markTokens([], "revoked")
        expect(cache.answer("k", Date.now())).toBeUndefined()
        expect(cache.caller("hash")).toEqual(caller)
      })
    )
  })
})

describe.skipIf(!postgresAvailable)("the hot caches of two replicas on one Postgres database", () => {
  let database: TestDatabase
  let a: ManagedRuntime.ManagedRuntime<Store | HotCache, never>
  let b: ManagedRuntime.ManagedRuntime<Store | HotCache, never>
  const key = Redacted.make(generateKey())
  const replica = () =>
    ManagedRuntime.make(
      Store.layer.pipe(Layer.provide(layerOf(database)), Layer.provide(Cipher.layer(key).pipe(Layer.orDie)))
    )
  beforeAll(async () => {
    database = await postgres()
    a = replica()
    b = replica()
  })
  afterAll(async () => {
    await Promise.all([a?.dispose(), b?.dispose()])
    await database?.drop()
  })

  it("a change on one empties the other's, once its heartbeat is heard", async () => {
    const cacheB = await b.runPromise(HotCache)
    const storeA = await a.runPromise(Store)
    const deadline = Date.now() + 10_000
    while (!cacheB.usable() && Date.now() < deadline) await new Promise((done) => setTimeout(done, 20))
    expect(cacheB.usable()).toBe(true)
    cacheB.rememberCaller(cacheB.generation(), "hash", caller)
    expect(cacheB.caller("hash")).toEqual(caller)
    const changed = Date.now()
    await a.runPromise(storeA.putProject({ id: "prj_elsewhere", name: "Elsewhere" }))
    while (cacheB.caller("hash") !== undefined && Date.now() < deadline) {
      await new Promise((done) => setTimeout(done, 1))
    }
    expect(cacheB.caller("hash")).toBeUndefined()
    expect(Date.now() - changed).toBeLessThan(5_000)
  })
})
