import { HttpClient, HttpClientResponse } from "@effect/platform"
import { describe, expect, it } from "@effect/vitest"
import { Cause, Clock, Effect, Exit, Fiber, Layer, Metric, Redacted, TestClock } from "effect"
import { make as makeClient } from "../src/ConnectClient.js"
import {
  deleteTokenCacheEntry,
  getToken,
  getTokenResponse,
  NoValidToken,
  revokeToken,
  ServiceUnavailable,
  TokenCache,
  type TokenParams
} from "../src/index.js"
import { subjectId } from "../src/internal/cacheKey.js"
import { GET_TOKEN_SPAN, refreshesAhead } from "../src/internal/telemetry.js"
import { make as makeTokenCache } from "../src/TokenCache.js"
import { ConnectTest, type RecordedRequest, raw, type ScriptedToken } from "../src/testing.js"

const CONNECTOR = "acme/api"
const OTHER = "beta/api"

const app: TokenParams = { subject: { type: "app" } }
const user = (id: string, installationId?: string): TokenParams =>
  installationId === undefined ? { subject: { type: "user", id } } : { subject: { type: "user", id }, installationId }

/**
 * A token answer that numbers what it issues (`<prefix>-1`, `<prefix>-2`, ...),
 * so that a test can tell a cached token from a fresh one.
 */
const numbered = (prefix = "tok", expiresInMs = 3_600_000): ((request: RecordedRequest) => ScriptedToken) => {
  let issued = 0
  return () => ({ token: `${prefix}-${++issued}`, expiresInMs })
}

/** The access token of a request, as a plain string. */
const tokenOf = (connector: string, params: TokenParams, options?: { readonly forceRefresh?: boolean }) =>
  Effect.map(getToken(connector, params, options), Redacted.value)

/** How many token requests the scripted server has received for a connector. */
const tokenRequests = (connector = CONNECTOR) =>
  Effect.flatMap(ConnectTest, (connect) => connect.requestCount({ connector, operation: "token" }))

/** The subjects of the cached keys, least recently used first. */
const cachedSubjects = Effect.map(
  Effect.flatMap(TokenCache, (cache) => cache.keys),
  (keys) => keys.map((key) => key.subject)
)
const userKey = (id: string) => subjectId({ type: "user", id })

describe("TokenCache", () => {
  describe("expiry and the validity buffer", () => {
    it.effect("serves a token while expiresAt - now > 30 000 ms, and fetches it again from then on", () =>
      Effect.gen(function* () {
        const connect = yield* ConnectTest
        yield* connect.script(CONNECTOR, { token: numbered("tok", 60_000) })

        expect(yield* tokenOf(CONNECTOR, app)).toBe("tok-1") // expires at 60 000
        yield* TestClock.adjust(29_999) // 30 001 ms left
        expect(yield* tokenOf(CONNECTOR, app)).toBe("tok-1")
        expect(yield* tokenRequests()).toBe(1)

        yield* TestClock.adjust(1) // 30 000 ms left: not more than the buffer
        expect(yield* tokenOf(CONNECTOR, app)).toBe("tok-2") // expires at 90 000
        expect(yield* tokenRequests()).toBe(2)

        yield* TestClock.adjust(29_999)
        expect(yield* tokenOf(CONNECTOR, app)).toBe("tok-2")
        yield* TestClock.adjust(1)
        expect(yield* tokenOf(CONNECTOR, app)).toBe("tok-3")
        expect(yield* tokenRequests()).toBe(3)
        // Without refresh-ahead, which renews the token before the buffer.
      }).pipe(Effect.provide(ConnectTest.layer({ client: { refreshAhead: false } })))
    )

    it.effect("a per-call validityBufferMs decides when one shared entry is fetched again", () =>
      Effect.gen(function* () {
        const connect = yield* ConnectTest
        const cache = yield* TokenCache
        yield* connect.script(CONNECTOR, { token: numbered("tok", 60_000) })
        const withBuffer = (validityBufferMs: number): TokenParams => ({ ...app, validityBufferMs })

        expect(yield* tokenOf(CONNECTOR, withBuffer(0))).toBe("tok-1") // expires at 60 000
        yield* TestClock.adjust(40_000) // 20 000 ms left

        // Cached under a buffer of 0, served under a buffer of 10 000: one entry.
        expect(yield* tokenOf(CONNECTOR, withBuffer(10_000))).toBe("tok-1")
        expect(yield* tokenOf(CONNECTOR, withBuffer(19_999))).toBe("tok-1")
        expect(yield* tokenRequests()).toBe(1)
        expect(yield* cache.size).toBe(1)

        // 20 000 ms left is not more than 20 000, nor than the default 30 000.
        expect(yield* tokenOf(CONNECTOR, withBuffer(20_000))).toBe("tok-2") // expires at 100 000
        expect(yield* tokenRequests()).toBe(2)
        // The answer replaced the entry for every buffer.
        expect(yield* tokenOf(CONNECTOR, withBuffer(0))).toBe("tok-2")
        expect(yield* tokenOf(CONNECTOR, app)).toBe("tok-2")
        expect(yield* cache.size).toBe(1)

        // A buffer as long as the token's whole lifetime never lets it be served.
        expect(yield* tokenOf(CONNECTOR, withBuffer(60_000))).toBe("tok-3") // expires at 100 000
        expect(yield* tokenOf(CONNECTOR, withBuffer(60_000))).toBe("tok-4")
        expect(yield* tokenRequests()).toBe(4)
        expect(yield* cache.size).toBe(1)
      }).pipe(Effect.provide(ConnectTest.layer()))
    )

    it.effect("params that only validation accepts are cached under their validated form, with their buffer", () =>
      Effect.gen(function* () {
        const connect = yield* ConnectTest
        yield* connect.script(CONNECTOR, { token: numbered("tok", 60_000) })
        // A `__proto__` member, as JSON.parse makes it: validation drops it, so
        // the cache-hit shortcut leaves such a request to validation.
        const detail: { readonly type: string } = JSON.parse('{"type":"t","__proto__":1}')
        const params = (validityBufferMs: number): TokenParams => ({
          ...app,
          authorizationDetails: [detail],
          validityBufferMs
        })

        expect(yield* tokenOf(CONNECTOR, params(0))).toBe("tok-1")
        expect(yield* tokenOf(CONNECTOR, { ...app, authorizationDetails: [{ type: "t" }] })).toBe("tok-1")
        yield* TestClock.adjust(40_000) // 20 000 ms left
        expect(yield* tokenOf(CONNECTOR, params(19_999))).toBe("tok-1")
        expect(yield* tokenRequests()).toBe(1)
        expect(yield* tokenOf(CONNECTOR, params(20_000))).toBe("tok-2")
        expect(yield* tokenRequests()).toBe(2)
      }).pipe(Effect.provide(ConnectTest.layer()))
    )

    it.effect("TokenCache.get serves an entry while expiresAt - now > bufferMs", () =>
      Effect.gen(function* () {
        const cache = yield* TokenCache
        const key = { id: "k", connector: CONNECTOR, subject: "app", installationId: undefined }
        let lookups = 0
        const lookup = Effect.sync(() => {
          lookups++
          return {
            token: Redacted.make(`direct-${lookups}`),
            expiresAt: 60_000,
            connector: { id: "conn_1", uid: CONNECTOR, type: "oauth" }
          }
        })
        const get = (bufferMs: number) =>
          Effect.map(cache.get(key, lookup, { bufferMs }), (response) => Redacted.value(response.token))

        expect(yield* get(0)).toBe("direct-1")
        yield* TestClock.adjust(40_000)
        expect(yield* get(19_999)).toBe("direct-1")
        expect(cache.unsafeGetFresh("k", 40_000, 19_999)).toBeDefined()
        expect(cache.unsafeGetFresh("k", 40_000, 20_000)).toBeUndefined() // and drops the stale entry
        expect(yield* cache.size).toBe(0)
        expect(yield* get(0)).toBe("direct-2")
        expect(lookups).toBe(2)
      }).pipe(Effect.provide(TokenCache.layer()))
    )

    it.effect("the client's validityBufferMs replaces the default buffer", () =>
      Effect.gen(function* () {
        const connect = yield* ConnectTest
        yield* connect.script(CONNECTOR, { token: numbered("tok", 60_000) })
        expect(yield* tokenOf(CONNECTOR, app)).toBe("tok-1")
        yield* TestClock.adjust(54_999) // 5 001 ms left
        expect(yield* tokenOf(CONNECTOR, app)).toBe("tok-1")
        yield* TestClock.adjust(1)
        expect(yield* tokenOf(CONNECTOR, app)).toBe("tok-2")
        expect(yield* tokenRequests()).toBe(2)
      }).pipe(Effect.provide(ConnectTest.layer({ client: { validityBufferMs: 5_000 } })))
    )
  })

  describe("least recently used eviction", () => {
    it.effect("at the default capacity of 100, a new key evicts the least recently used one", () =>
      Effect.gen(function* () {
        const connect = yield* ConnectTest
        const cache = yield* TokenCache
        expect(cache.capacity).toBe(100)
        yield* connect.script(CONNECTOR, { token: numbered() })

        for (let i = 1; i <= 100; i++) yield* getToken(CONNECTOR, user(`u${i}`))
        expect(yield* tokenRequests()).toBe(100)
        expect(yield* cache.size).toBe(100)
        expect((yield* cachedSubjects)[0]).toBe(userKey("u1"))

        // A hit on #1 moves it up: #2 is now the least recently used.
        yield* getToken(CONNECTOR, user("u1"))
        expect(yield* tokenRequests()).toBe(100)
        expect((yield* cachedSubjects)[0]).toBe(userKey("u2"))

        yield* getToken(CONNECTOR, user("u101"))
        expect(yield* tokenRequests()).toBe(101)
        expect(yield* cache.size).toBe(100)
        const subjects = yield* cachedSubjects
        expect(subjects).not.toContain(userKey("u2"))
        expect(subjects).toContain(userKey("u1"))
        expect(subjects.slice(-2)).toEqual([userKey("u1"), userKey("u101")])

        // #1 is still served from the cache; #2 needs a new request.
        yield* getToken(CONNECTOR, user("u1"))
        expect(yield* tokenRequests()).toBe(101)
        yield* getToken(CONNECTOR, user("u2"))
        expect(yield* tokenRequests()).toBe(102)
        expect(yield* cache.size).toBe(100)
      }).pipe(Effect.provide(ConnectTest.layer()))
    )

    it.effect("a custom capacity of 3", () =>
      Effect.gen(function* () {
        const connect = yield* ConnectTest
        const cache = yield* TokenCache
        expect(cache.capacity).toBe(3)
        yield* connect.script(CONNECTOR, { token: numbered() })

        for (const id of ["a", "b", "c"]) yield* getToken(CONNECTOR, user(id))
        yield* getToken(CONNECTOR, user("a")) // a hit: b is now the oldest
        yield* getToken(CONNECTOR, user("d"))
        expect(yield* tokenRequests()).toBe(4)
        expect(yield* cachedSubjects).toEqual([userKey("c"), userKey("a"), userKey("d")])

        yield* getToken(CONNECTOR, user("a"))
        expect(yield* tokenRequests()).toBe(4)
        yield* getToken(CONNECTOR, user("b")) // evicted: asked for again, and evicts c
        expect(yield* tokenRequests()).toBe(5)
        expect(yield* cachedSubjects).toEqual([userKey("d"), userKey("a"), userKey("b")])
      }).pipe(Effect.provide(ConnectTest.layer({ capacity: 3 })))
    )

    it.effect("fetching a stale key again at capacity evicts no other entry", () =>
      Effect.gen(function* () {
        const connect = yield* ConnectTest
        const cache = yield* TokenCache
        yield* connect.script(CONNECTOR, { token: numbered("tok", 60_000) })
        yield* getToken(CONNECTOR, user("a"))
        yield* TestClock.adjust(20_000)
        yield* getToken(CONNECTOR, user("b"))
        yield* getToken(CONNECTOR, user("c"))
        yield* TestClock.adjust(10_000) // a is stale, b and c are not

        expect(yield* tokenOf(CONNECTOR, user("a"))).toBe("tok-4")
        expect(yield* cache.size).toBe(3)
        expect(yield* cachedSubjects).toEqual([userKey("b"), userKey("c"), userKey("a")])
        expect(yield* tokenRequests()).toBe(4)
      }).pipe(Effect.provide(ConnectTest.layer({ capacity: 3 })))
    )

    it.effect("rejects a capacity that is not a whole number of at least 1", () =>
      Effect.gen(function* () {
        for (const capacity of [0, -1, 1.5, Number.NaN]) {
          const exit = yield* Effect.exit(Effect.scoped(makeTokenCache({ capacity })))
          expect(Exit.isFailure(exit) && Cause.isDie(exit.cause)).toBe(true)
        }
      })
    )
  })

  describe("one request per key", () => {
    it.effect("1000 concurrent misses on one key make one request, and all get the token", () =>
      Effect.gen(function* () {
        const connect = yield* ConnectTest
        const cache = yield* TokenCache
        yield* connect.script(CONNECTOR, { token: numbered(), latency: "1 second" })

        const fiber = yield* Effect.fork(
          Effect.all(
            Array.from({ length: 1000 }, () => tokenOf(CONNECTOR, app)),
            { concurrency: "unbounded" }
          )
        )
        yield* connect.awaitRequests(1)
        yield* TestClock.adjust("1 second")
        const tokens = yield* Fiber.join(fiber)

        expect(tokens.length).toBe(1000)
        expect(new Set(tokens)).toEqual(new Set(["tok-1"]))
        expect(yield* tokenRequests()).toBe(1)
        expect(yield* cache.size).toBe(1)
        expect(yield* tokenOf(CONNECTOR, app)).toBe("tok-1")
        expect(yield* tokenRequests()).toBe(1)
      }).pipe(Effect.provide(ConnectTest.layer()))
    )

    it.effect("concurrent misses on different keys make one request each", () =>
      Effect.gen(function* () {
        const connect = yield* ConnectTest
        yield* connect.script(CONNECTOR, { token: numbered(), latency: "1 second" })
        const fiber = yield* Effect.fork(
          Effect.all(
            Array.from({ length: 30 }, (_, i) => tokenOf(CONNECTOR, user(`u${i % 3}`))),
            { concurrency: "unbounded" }
          )
        )
        yield* connect.awaitRequests(3)
        yield* TestClock.adjust("1 second")
        const tokens = yield* Fiber.join(fiber)
        expect(new Set(tokens).size).toBe(3)
        expect(yield* tokenRequests()).toBe(3)
      }).pipe(Effect.provide(ConnectTest.layer()))
    )

    it.effect("interrupting one waiter leaves the request running for the others, and its result is cached", () =>
      Effect.gen(function* () {
        const connect = yield* ConnectTest
        yield* connect.script(CONNECTOR, { token: numbered(), latency: "1 second" })

        const first = yield* Effect.fork(tokenOf(CONNECTOR, app)) // starts the request
        yield* connect.awaitRequests(1)
        const second = yield* Effect.fork(tokenOf(CONNECTOR, app)) // waits on it
        yield* TestClock.adjust("500 millis")
        expect(yield* tokenRequests()).toBe(1)

        const interrupted = yield* Fiber.interrupt(first)
        expect(Exit.isInterrupted(interrupted)).toBe(true)
        yield* TestClock.adjust("500 millis")

        expect(yield* Fiber.join(second)).toBe("tok-1")
        expect(yield* tokenOf(CONNECTOR, app)).toBe("tok-1")
        expect(yield* tokenRequests()).toBe(1)
      }).pipe(Effect.provide(ConnectTest.layer()))
    )

    it.effect("interrupting the only waiter still caches the answer", () =>
      Effect.gen(function* () {
        const connect = yield* ConnectTest
        yield* connect.script(CONNECTOR, { token: numbered(), latency: "1 second" })

        const only = yield* Effect.fork(tokenOf(CONNECTOR, app))
        yield* connect.awaitRequests(1)
        expect(Exit.isInterrupted(yield* Fiber.interrupt(only))).toBe(true)
        yield* TestClock.adjust("1 second")

        expect(yield* tokenOf(CONNECTOR, app)).toBe("tok-1")
        expect(yield* tokenRequests()).toBe(1)
      }).pipe(Effect.provide(ConnectTest.layer()))
    )
  })

  describe("failures", () => {
    it.effect("an error answer is not cached: the next call asks again", () =>
      Effect.gen(function* () {
        const connect = yield* ConnectTest
        const cache = yield* TokenCache
        yield* connect.script(CONNECTOR, { token: new NoValidToken({ connector: CONNECTOR }) })

        const error = yield* Effect.flip(getToken(CONNECTOR, app))
        expect(error._tag).toBe("NoValidToken")
        expect(yield* cache.size).toBe(0)
        expect((yield* Effect.flip(getToken(CONNECTOR, app)))._tag).toBe("NoValidToken")
        expect(yield* tokenRequests()).toBe(2)

        yield* connect.script(CONNECTOR, { token: { token: "good" } })
        expect(yield* tokenOf(CONNECTOR, app)).toBe("good")
        expect(yield* tokenRequests()).toBe(3)
        expect(yield* tokenOf(CONNECTOR, app)).toBe("good")
        expect(yield* tokenRequests()).toBe(3)
      }).pipe(Effect.provide(ConnectTest.layer()))
    )

    it.effect("an outage is not cached either", () =>
      Effect.gen(function* () {
        const connect = yield* ConnectTest
        yield* connect.script(CONNECTOR, { token: raw(503, "") })
        const error = yield* Effect.flip(getToken(CONNECTOR, app))
        expect(error).toBeInstanceOf(ServiceUnavailable)

        yield* connect.script(CONNECTOR, { token: { token: "good" } })
        expect(yield* tokenOf(CONNECTOR, app)).toBe("good")
        expect(yield* tokenRequests()).toBe(2)
      }).pipe(Effect.provide(ConnectTest.layer()))
    )

    it.effect("every waiter on a failed request gets the error, and the next call asks again", () =>
      Effect.gen(function* () {
        const connect = yield* ConnectTest
        yield* connect.script(CONNECTOR, { token: new NoValidToken({ connector: CONNECTOR }), latency: "1 second" })
        const fiber = yield* Effect.fork(
          Effect.all(
            Array.from({ length: 10 }, () => Effect.flip(getToken(CONNECTOR, app))),
            { concurrency: "unbounded" }
          )
        )
        yield* connect.awaitRequests(1)
        yield* TestClock.adjust("1 second")
        const errors = yield* Fiber.join(fiber)
        expect(errors.map((error) => error._tag)).toEqual(Array.from({ length: 10 }, () => "NoValidToken"))
        expect(yield* tokenRequests()).toBe(1)

        yield* connect.script(CONNECTOR, { token: { token: "good" } })
        expect(yield* tokenOf(CONNECTOR, app)).toBe("good")
        expect(yield* tokenRequests()).toBe(2)
      }).pipe(Effect.provide(ConnectTest.layer()))
    )
  })

  describe("invalidation during a request", () => {
    it.effect("a revocation that lands while a request is under way keeps its answer out of the cache", () =>
      Effect.gen(function* () {
        const connect = yield* ConnectTest
        const cache = yield* TokenCache
        yield* connect.script(CONNECTOR, { token: { token: "before-revoke" }, latency: "1 second" })
        const inFlight = yield* Effect.fork(tokenOf(CONNECTOR, app))
        yield* connect.awaitRequests(1, { operation: "token" })

        // Without latency from here on, so that the revocation completes while
        // the token request is still sleeping.
        yield* connect.script(CONNECTOR, { token: { token: "before-revoke" } })
        const summary = yield* revokeToken(CONNECTOR, { subject: { type: "app" } })
        expect(summary.tokensFound).toBe(0)
        expect(yield* connect.requestCount({ operation: "revoke" })).toBe(1)

        yield* TestClock.adjust("1 second")
        expect(yield* Fiber.join(inFlight)).toBe("before-revoke")
        expect(yield* cache.size).toBe(0)

        yield* connect.script(CONNECTOR, { token: { token: "after-revoke" } })
        expect(yield* tokenOf(CONNECTOR, app)).toBe("after-revoke")
        expect(yield* tokenRequests()).toBe(2)
        expect(yield* tokenOf(CONNECTOR, app)).toBe("after-revoke")
        expect(yield* tokenRequests()).toBe(2)
      }).pipe(Effect.provide(ConnectTest.layer()))
    )

    it.effect("a revocation sent at the same latency as the token request keeps it out too", () =>
      Effect.gen(function* () {
        const connect = yield* ConnectTest
        yield* connect.script(CONNECTOR, { token: numbered(), latency: "1 second" })
        const inFlight = yield* Effect.fork(tokenOf(CONNECTOR, app))
        yield* connect.awaitRequests(1, { operation: "token" })
        const revoke = yield* Effect.fork(revokeToken(CONNECTOR, {}))
        yield* connect.awaitRequests(1, { operation: "revoke" })
        yield* TestClock.adjust("1 second")

        expect(yield* Fiber.join(inFlight)).toBe("tok-1")
        yield* Fiber.join(revoke)
        const next = yield* Effect.fork(tokenOf(CONNECTOR, app))
        yield* connect.awaitRequests(2, { operation: "token" })
        yield* TestClock.adjust("1 second")
        expect(yield* Fiber.join(next)).toBe("tok-2")
      }).pipe(Effect.provide(ConnectTest.layer()))
    )

    it.effect("a token request that starts while a revocation is on its way is kept out of the cache", () =>
      Effect.gen(function* () {
        const connect = yield* ConnectTest
        const cache = yield* TokenCache
        const tokens = numbered()
        yield* connect.script(CONNECTOR, { token: tokens, latency: "1 second" })
        const revoke = yield* Effect.fork(revokeToken(CONNECTOR, { subject: { type: "app" } }))
        yield* connect.awaitRequests(1, { operation: "revoke" })

        // The token request starts after the revocation left, and ends after it.
        yield* connect.script(CONNECTOR, { token: tokens, latency: "2 seconds" })
        const inFlight = yield* Effect.fork(tokenOf(CONNECTOR, app))
        yield* connect.awaitRequests(1, { operation: "token" })
        yield* TestClock.adjust("1 second")
        yield* Fiber.join(revoke)
        yield* TestClock.adjust("1 second")
        expect(yield* Fiber.join(inFlight)).toBe("tok-1")
        expect(yield* cache.size).toBe(0)

        // One that ended before the revocation came back is dropped by it.
        const revokeAgain = yield* Effect.fork(revokeToken(CONNECTOR, { subject: { type: "app" } }))
        yield* connect.awaitRequests(2, { operation: "revoke" })
        yield* connect.script(CONNECTOR, { token: tokens })
        expect(yield* tokenOf(CONNECTOR, app)).toBe("tok-2")
        expect(yield* cache.size).toBe(1)
        yield* TestClock.adjust("2 seconds")
        yield* Fiber.join(revokeAgain)
        expect(yield* cache.size).toBe(0)
        expect(yield* tokenOf(CONNECTOR, app)).toBe("tok-3")
        expect(yield* tokenRequests()).toBe(3)
      }).pipe(Effect.provide(ConnectTest.layer()))
    )

    it.effect("deleteTokenCacheEntry during a request keeps its answer out of the cache", () =>
      Effect.gen(function* () {
        const connect = yield* ConnectTest
        const cache = yield* TokenCache
        yield* connect.script(CONNECTOR, { token: numbered(), latency: "1 second" })
        const inFlight = yield* Effect.fork(tokenOf(CONNECTOR, app))
        yield* connect.awaitRequests(1)
        yield* deleteTokenCacheEntry(CONNECTOR, { subject: { type: "app" }, scopes: ["*"] })
        yield* TestClock.adjust("1 second")
        expect(yield* Fiber.join(inFlight)).toBe("tok-1")
        expect(yield* cache.size).toBe(0)

        yield* connect.script(CONNECTOR, { token: numbered("next") })
        expect(yield* tokenOf(CONNECTOR, app)).toBe("next-1")
        expect(yield* tokenRequests()).toBe(2)
      }).pipe(Effect.provide(ConnectTest.layer()))
    )

    it.effect("a request for another key is not affected by an invalidation", () =>
      Effect.gen(function* () {
        const connect = yield* ConnectTest
        const tokens = numbered()
        yield* connect.script(CONNECTOR, { token: tokens, latency: "1 second" })
        const inFlight = yield* Effect.fork(tokenOf(CONNECTOR, user("u1")))
        yield* connect.awaitRequests(1)
        yield* deleteTokenCacheEntry(CONNECTOR, user("u2"))
        yield* connect.script(CONNECTOR, { token: tokens })
        yield* revokeToken(CONNECTOR, { subject: { type: "user", id: "u2" } })
        yield* TestClock.adjust("1 second")
        expect(yield* Fiber.join(inFlight)).toBe("tok-1")

        expect(yield* tokenOf(CONNECTOR, user("u1"))).toBe("tok-1")
        expect(yield* tokenRequests()).toBe(1)
      }).pipe(Effect.provide(ConnectTest.layer()))
    )

    it.effect("deleteTokenCacheEntry drops the one entry getToken would serve", () =>
      Effect.gen(function* () {
        const connect = yield* ConnectTest
        yield* connect.script(CONNECTOR, { token: numbered() })
        yield* getToken(CONNECTOR, app)
        yield* getToken(CONNECTOR, { ...app, scopes: ["repo"] })
        yield* deleteTokenCacheEntry(CONNECTOR, { ...app, validityBufferMs: 1 })
        expect(yield* tokenOf(CONNECTOR, { ...app, scopes: ["repo"] })).toBe("tok-2")
        expect(yield* tokenOf(CONNECTOR, app)).toBe("tok-3")
        expect(yield* tokenRequests()).toBe(3)
      }).pipe(Effect.provide(ConnectTest.layer()))
    )
  })

  describe("revokeToken", () => {
    it.effect("drops the entries of that connector and subject only", () =>
      Effect.gen(function* () {
        const connect = yield* ConnectTest
        yield* connect.script(CONNECTOR, { token: numbered("a") })
        yield* connect.script(OTHER, { token: numbered("b") })
        const cached: ReadonlyArray<readonly [string, TokenParams]> = [
          [CONNECTOR, user("u1")],
          [CONNECTOR, { ...user("u1"), scopes: ["repo"] }],
          [CONNECTOR, user("u1", "inst_1")],
          [CONNECTOR, user("u2")],
          [CONNECTOR, { subject: { type: "user", id: "u1", issuer: "https://idp.example" } }],
          [CONNECTOR, app],
          [OTHER, user("u1")]
        ]
        for (const [connector, params] of cached) yield* getToken(connector, params)
        expect(yield* tokenRequests(CONNECTOR)).toBe(6)
        expect(yield* tokenRequests(OTHER)).toBe(1)

        yield* revokeToken(CONNECTOR, { subject: { type: "user", id: "u1" } })
        expect(yield* connect.requestCount({ connector: CONNECTOR, operation: "revoke" })).toBe(1)

        // Kept: another subject, another issuer, the app, another connector.
        yield* getToken(CONNECTOR, user("u2"))
        yield* getToken(CONNECTOR, { subject: { type: "user", id: "u1", issuer: "https://idp.example" } })
        yield* getToken(CONNECTOR, app)
        yield* getToken(OTHER, user("u1"))
        expect(yield* tokenRequests(CONNECTOR)).toBe(6)
        expect(yield* tokenRequests(OTHER)).toBe(1)

        // Dropped: every entry of u1 at this connector, whatever the scopes or installation.
        yield* getToken(CONNECTOR, user("u1"))
        yield* getToken(CONNECTOR, { ...user("u1"), scopes: ["repo"] })
        yield* getToken(CONNECTOR, user("u1", "inst_1"))
        expect(yield* tokenRequests(CONNECTOR)).toBe(9)
      }).pipe(Effect.provide(ConnectTest.layer()))
    )

    it.effect("with an installation, drops that installation's entries and those cached without one", () =>
      Effect.gen(function* () {
        const connect = yield* ConnectTest
        yield* connect.script(CONNECTOR, { token: numbered() })
        yield* getToken(CONNECTOR, user("u1", "inst_1"))
        yield* getToken(CONNECTOR, user("u1", "inst_2"))
        yield* getToken(CONNECTOR, user("u1")) // may be of any installation
        yield* getToken(CONNECTOR, user("u2", "inst_1"))
        expect(yield* tokenRequests()).toBe(4)

        yield* revokeToken(CONNECTOR, { subject: { type: "user", id: "u1" }, installationId: "inst_1" })

        yield* getToken(CONNECTOR, user("u1", "inst_2"))
        yield* getToken(CONNECTOR, user("u2", "inst_1"))
        expect(yield* tokenRequests()).toBe(4)
        yield* getToken(CONNECTOR, user("u1", "inst_1"))
        expect(yield* tokenRequests()).toBe(5)
        yield* getToken(CONNECTOR, user("u1"))
        expect(yield* tokenRequests()).toBe(6)
      }).pipe(Effect.provide(ConnectTest.layer()))
    )

    it.effect("without a subject, drops every entry of the connector and no other", () =>
      Effect.gen(function* () {
        const connect = yield* ConnectTest
        const cache = yield* TokenCache
        yield* connect.script(CONNECTOR, { token: numbered("a") })
        yield* connect.script(OTHER, { token: numbered("b") })
        for (const params of [app, user("u1"), user("u2", "inst_1")]) {
          yield* getToken(CONNECTOR, params)
          yield* getToken(OTHER, params)
        }
        expect(yield* cache.size).toBe(6)

        yield* revokeToken(CONNECTOR, {})
        expect(yield* cache.size).toBe(3)
        expect((yield* cache.keys).every((key) => key.connector === OTHER)).toBe(true)
        for (const params of [app, user("u1"), user("u2", "inst_1")]) yield* getToken(OTHER, params)
        expect(yield* tokenRequests(OTHER)).toBe(3)
      }).pipe(Effect.provide(ConnectTest.layer()))
    )

    it.effect("matches an exchanged-token subject by its token, and a connector by its id", () =>
      Effect.gen(function* () {
        const connect = yield* ConnectTest
        const cache = yield* TokenCache
        yield* connect.script(CONNECTOR, { token: numbered() })
        const exchanged = (token: string): TokenParams => ({ subject: { type: "token", token: Redacted.make(token) } })
        yield* getToken(CONNECTOR, exchanged("held-1"))
        yield* getToken(CONNECTOR, exchanged("held-2"))
        yield* getToken(CONNECTOR, app)

        yield* revokeToken(CONNECTOR, { subject: { type: "token", token: Redacted.make("held-1") } })
        yield* getToken(CONNECTOR, exchanged("held-2"))
        expect(yield* tokenRequests()).toBe(3)
        yield* getToken(CONNECTOR, exchanged("held-1"))
        expect(yield* tokenRequests()).toBe(4)

        // The scripted server names the connector `conn_acme_api`.
        const byId = "conn_acme_api"
        yield* connect.script(byId, {})
        yield* revokeToken(byId, {})
        expect(yield* cache.size).toBe(0)
      }).pipe(Effect.provide(ConnectTest.layer()))
    )

    it.effect("a failed revocation still drops the entries", () =>
      Effect.gen(function* () {
        const connect = yield* ConnectTest
        yield* connect.script(CONNECTOR, { token: numbered(), revoke: raw(503, "") })
        yield* getToken(CONNECTOR, app)
        const error = yield* Effect.flip(revokeToken(CONNECTOR, { subject: { type: "app" } }))
        expect(error._tag).toBe("ServiceUnavailable")
        expect(yield* tokenOf(CONNECTOR, app)).toBe("tok-2")
      }).pipe(Effect.provide(ConnectTest.layer()))
    )
  })

  describe("forceRefresh", () => {
    it.effect("skips the cache read, asks the server, and the answer replaces the entry", () =>
      Effect.gen(function* () {
        const connect = yield* ConnectTest
        const cache = yield* TokenCache
        yield* connect.script(CONNECTOR, { token: numbered() })
        expect(yield* tokenOf(CONNECTOR, app)).toBe("tok-1")
        expect(yield* tokenOf(CONNECTOR, app, { forceRefresh: true })).toBe("tok-2")
        expect(yield* tokenRequests()).toBe(2)
        expect(yield* cache.size).toBe(1)

        expect(yield* tokenOf(CONNECTOR, app)).toBe("tok-2")
        expect(yield* tokenRequests()).toBe(2)
        const response = yield* getTokenResponse(CONNECTOR, app, { forceRefresh: true })
        expect(Redacted.value(response.token)).toBe("tok-3")
        expect(yield* tokenOf(CONNECTOR, { ...app, scopes: ["*", "*"] })).toBe("tok-3")
        expect(yield* tokenRequests()).toBe(3)
      }).pipe(Effect.provide(ConnectTest.layer()))
    )

    it.effect("while a forced refresh is under way, other callers wait for its answer, not the replaced token", () =>
      Effect.gen(function* () {
        const connect = yield* ConnectTest
        const tokens = numbered()
        yield* connect.script(CONNECTOR, { token: tokens })
        expect(yield* tokenOf(CONNECTOR, app)).toBe("tok-1")

        yield* connect.script(CONNECTOR, { token: tokens, latency: "1 second" })
        const forced = yield* Effect.fork(tokenOf(CONNECTOR, app, { forceRefresh: true }))
        yield* connect.awaitRequests(2)
        const other = yield* Effect.fork(tokenOf(CONNECTOR, app))
        yield* TestClock.adjust("1 second")
        expect(yield* Fiber.join(forced)).toBe("tok-2")
        expect(yield* Fiber.join(other)).toBe("tok-2")
        expect(yield* tokenRequests()).toBe(2)
      }).pipe(Effect.provide(ConnectTest.layer()))
    )

    it.effect("a forced refresh that fails does not leave the replaced token behind", () =>
      Effect.gen(function* () {
        const connect = yield* ConnectTest
        const tokens = numbered()
        yield* connect.script(CONNECTOR, { token: tokens })
        expect(yield* tokenOf(CONNECTOR, app)).toBe("tok-1")
        yield* connect.script(CONNECTOR, { token: new NoValidToken({ connector: CONNECTOR }) })
        const error = yield* Effect.flip(getToken(CONNECTOR, app, { forceRefresh: true }))
        expect(error._tag).toBe("NoValidToken")

        yield* connect.script(CONNECTOR, { token: tokens })
        expect(yield* tokenOf(CONNECTOR, app)).toBe("tok-2")
        expect(yield* tokenRequests()).toBe(3)
      }).pipe(Effect.provide(ConnectTest.layer()))
    )
  })

  describe("canonical keys", () => {
    it.effect("scopes, resources and audience are sets; omitted scopes are ['*']", () =>
      Effect.gen(function* () {
        const connect = yield* ConnectTest
        const cache = yield* TokenCache
        yield* connect.script(CONNECTOR, { token: numbered() })
        const u = { type: "user", id: "u1" } as const

        yield* getToken(CONNECTOR, { subject: u, scopes: ["repo", "read:org"] })
        yield* getToken(CONNECTOR, { subject: u, scopes: ["read:org", "repo"] })
        yield* getToken(CONNECTOR, { subject: u, scopes: ["repo", "read:org", "repo"] })
        expect(yield* tokenRequests()).toBe(1)

        yield* getToken(CONNECTOR, { subject: u })
        yield* getToken(CONNECTOR, { subject: u, scopes: ["*"] })
        yield* getToken(CONNECTOR, { subject: u, scopes: ["*", "*"] })
        expect(yield* tokenRequests()).toBe(2)

        yield* getToken(CONNECTOR, {
          subject: u,
          resources: ["https://b.example", "https://a.example"],
          audience: ["y", "x"]
        })
        yield* getToken(CONNECTOR, {
          subject: u,
          resources: ["https://a.example", "https://b.example", "https://a.example"],
          audience: ["x", "y", "x"]
        })
        expect(yield* tokenRequests()).toBe(3)

        // Different sets are different entries.
        yield* getToken(CONNECTOR, { subject: u, scopes: ["repo"] })
        yield* getToken(CONNECTOR, { subject: u, scopes: ["repo", "read:org", "admin"] })
        yield* getToken(CONNECTOR, { subject: u, scopes: [] })
        yield* getToken(CONNECTOR, { subject: u, resources: ["https://a.example"], audience: ["x", "y"] })
        yield* getToken(CONNECTOR, { subject: u, resources: ["https://a.example", "https://b.example"] })
        expect(yield* tokenRequests()).toBe(8)
        expect(yield* cache.size).toBe(8)
      }).pipe(Effect.provide(ConnectTest.layer()))
    )

    it.effect("authorization details with members in another order hit the same entry", () =>
      Effect.gen(function* () {
        const connect = yield* ConnectTest
        yield* connect.script(CONNECTOR, { token: numbered() })

        yield* getToken(CONNECTOR, {
          ...app,
          authorizationDetails: [{ type: "github_app_installation", org: "acme", limits: { repos: 3, read: true } }]
        })
        yield* getToken(CONNECTOR, {
          ...app,
          authorizationDetails: [{ limits: { read: true, repos: 3 }, org: "acme", type: "github_app_installation" }]
        })
        expect(yield* tokenRequests()).toBe(1)

        yield* getToken(CONNECTOR, {
          ...app,
          authorizationDetails: [{ type: "github_app_installation", org: "beta", limits: { repos: 3, read: true } }]
        })
        yield* getToken(CONNECTOR, app)
        expect(yield* tokenRequests()).toBe(3)
      }).pipe(Effect.provide(ConnectTest.layer()))
    )

    it.effect("subjects, installations and connectors are part of the key", () =>
      Effect.gen(function* () {
        const connect = yield* ConnectTest
        yield* connect.script(CONNECTOR, { token: numbered("a") })
        yield* connect.script(OTHER, { token: numbered("b") })
        const params: ReadonlyArray<TokenParams> = [
          app,
          user("u1"),
          user("u1", "inst_1"),
          { subject: { type: "user", id: "u1", issuer: "https://idp.example" } },
          { subject: { type: "jwt-bearer", sub: "u1" } },
          { subject: { type: "token", token: Redacted.make("exchanged-1") } },
          { subject: { type: "token", token: Redacted.make("exchanged-2") } }
        ]
        for (const p of params) yield* getToken(CONNECTOR, p)
        for (const p of params) yield* getToken(CONNECTOR, p)
        expect(yield* tokenRequests(CONNECTOR)).toBe(params.length)
        yield* getToken(OTHER, app)
        expect(yield* tokenRequests(OTHER)).toBe(1)
        // An exchanged token is kept only as its digest.
        const keys = yield* Effect.flatMap(TokenCache, (cache) => cache.keys)
        expect(keys.some((key) => key.id.includes("exchanged-"))).toBe(false)
      }).pipe(Effect.provide(ConnectTest.layer()))
    )
    it.effect("a request object changed in place between calls is the request it now is", () =>
      Effect.gen(function* () {
        const connect = yield* ConnectTest
        yield* connect.script(CONNECTOR, { token: numbered() })
        const subject = { type: "user" as const, id: "u1" }
        const params: { subject: typeof subject; scopes: Array<string>; installationId?: string } = {
          subject,
          scopes: ["repo"]
        }
        const sentScopes = Effect.map(connect.requests, (requests) => {
          const body = requests.at(-1)?.body
          return typeof body === "object" && body !== null ? (body as { scopes?: unknown }).scopes : undefined
        })

        expect(yield* tokenOf(CONNECTOR, params)).toBe("tok-1")
        expect(yield* tokenOf(CONNECTOR, params)).toBe("tok-1")
        params.scopes[0] = "admin"
        expect(yield* tokenOf(CONNECTOR, params)).toBe("tok-2")
        expect(yield* sentScopes).toEqual(["admin"])
        params.scopes.push("repo")
        expect(yield* tokenOf(CONNECTOR, params)).toBe("tok-3")
        subject.id = "u2"
        expect(yield* tokenOf(CONNECTOR, params)).toBe("tok-4")
        params.installationId = "inst_1"
        expect(yield* tokenOf(CONNECTOR, params)).toBe("tok-5")
        // Back to the first request: its entry answers.
        subject.id = "u1"
        params.scopes.splice(0, 2, "repo")
        delete params.installationId
        expect(yield* tokenOf(CONNECTOR, params)).toBe("tok-1")
        expect(yield* tokenRequests()).toBe(5)
      }).pipe(Effect.provide(ConnectTest.layer()))
    )
  })

  describe("callers", () => {
    /** An HTTP client that issues a token per caller credential and server, and records what it was asked. */
    const countingHttp = () => {
      const seen: Array<string> = []
      const http = HttpClient.make((request, url) =>
        Effect.sync(() => {
          const caller = `${url.host} ${(request.headers.authorization ?? "").replace(/^Bearer /, "")}`
          seen.push(caller)
          const body = {
            token: `${caller} #${seen.length}`,
            expiresAt: 3_600_000,
            connector: { id: "conn_1", uid: CONNECTOR, type: "oauth" }
          }
          return HttpClientResponse.fromWeb(
            request,
            new Response(JSON.stringify(body), { status: 200, headers: { "content-type": "application/json" } })
          )
        })
      )
      return { http, seen }
    }

    it.effect("clients with different credentials or servers never share entries of one cache", () => {
      const { http, seen } = countingHttp()
      return Effect.gen(function* () {
        const cache = yield* TokenCache
        const client = (baseUrl: string, token: string) => makeClient({ baseUrl, token: Redacted.make(token) })
        const a = yield* client("http://connect.test", "key-a")
        const b = yield* client("http://connect.test", "key-b")
        const c = yield* client("http://other.test", "key-a")
        const aAgain = yield* client("http://connect.test/", "key-a")
        const token = (of: typeof a) => Effect.map(of.getToken(CONNECTOR, app), Redacted.value)

        expect(yield* token(a)).toBe("connect.test key-a #1")
        expect(yield* token(b)).toBe("connect.test key-b #2")
        expect(yield* token(c)).toBe("other.test key-a #3")
        expect(seen.length).toBe(3)
        expect(yield* cache.size).toBe(3)

        // Each is served its own entry; a client with the same server and
        // credential shares it.
        expect(yield* token(a)).toBe("connect.test key-a #1")
        expect(yield* token(b)).toBe("connect.test key-b #2")
        expect(yield* token(c)).toBe("other.test key-a #3")
        expect(yield* token(aAgain)).toBe("connect.test key-a #1")
        const hit = a.unsafeCachedResponse(CONNECTOR, app, 0)
        expect(hit === undefined ? undefined : Redacted.value(hit.token)).toBe("connect.test key-a #1")
        expect(seen.length).toBe(3)

        // Dropping one caller's entry leaves the others.
        yield* b.deleteTokenCacheEntry(CONNECTOR, app)
        expect(yield* cache.size).toBe(2)
        expect(yield* token(a)).toBe("connect.test key-a #1")
        expect(yield* token(b)).toBe("connect.test key-b #4")
        expect(seen).toEqual(["connect.test key-a", "connect.test key-b", "other.test key-a", "connect.test key-b"])
      }).pipe(Effect.provide(Layer.merge(TokenCache.layer(), Layer.succeed(HttpClient.HttpClient, http))))
    })
  })

  describe("refresh-ahead", () => {
    // A 60 s token with the default 30 s buffer: its window is a quarter of its
    // lifetime (15 s), so hits with 30 000 < left <= 45 000 ms renew it.
    const LIFETIME = 60_000
    const WINDOW_OPENS = 15_000
    const BUFFER_REACHED = 30_000

    /** How many background refreshes were started, by the counter. */
    const refreshesStarted = Effect.map(Metric.value(refreshesAhead), (state) => state.count)

    /** Lets fibers started outside the test's (background refreshes) run. */
    const settle = Effect.repeatN(Effect.yieldNow(), 20)

    it.effect("a hit in the window is served at once and sends one background request; then the new token", () =>
      Effect.gen(function* () {
        const connect = yield* ConnectTest
        const cache = yield* TokenCache
        const token = numbered("tok", LIFETIME)
        yield* connect.script(CONNECTOR, { token })
        expect(yield* tokenOf(CONNECTOR, app)).toBe("tok-1")
        yield* connect.script(CONNECTOR, { token, latency: "200 millis" })

        yield* TestClock.adjust(WINDOW_OPENS - 1)
        expect(yield* tokenOf(CONNECTOR, app)).toBe("tok-1")
        yield* settle
        expect(yield* tokenRequests()).toBe(1)

        const before = yield* refreshesStarted
        yield* TestClock.adjust(1)
        // Answered without moving the clock: the server takes 200 ms.
        expect(yield* tokenOf(CONNECTOR, app)).toBe("tok-1")
        expect(yield* tokenOf(CONNECTOR, app)).toBe("tok-1")
        yield* connect.awaitRequests(2, { operation: "token" })
        expect(yield* refreshesStarted).toBe(before + 1)

        yield* TestClock.adjust("200 millis")
        yield* settle
        expect(yield* tokenOf(CONNECTOR, app)).toBe("tok-2")
        expect(yield* tokenRequests()).toBe(2)
        expect(yield* cache.size).toBe(1)
      }).pipe(Effect.provide(ConnectTest.layer()))
    )

    it.effect("TokenCache.get reports refreshed_ahead on the getToken span, and callers at the buffer join", () =>
      Effect.gen(function* () {
        const cache = yield* TokenCache
        const key = { id: "k", connector: CONNECTOR, subject: "app", installationId: undefined }
        let lookups = 0
        const lookup = Effect.gen(function* () {
          lookups++
          yield* Effect.sleep("20 seconds") // callers reach the buffer while a refresh runs
          const now = yield* Clock.currentTimeMillis
          return {
            token: Redacted.make(`direct-${lookups}`),
            expiresAt: now + LIFETIME,
            connector: { id: "conn_1", uid: CONNECTOR, type: "oauth" }
          }
        })
        const options = { bufferMs: BUFFER_REACHED, refreshAheadMs: 300_000 }
        const outcome = Effect.gen(function* () {
          const response = yield* cache.get(key, lookup, options)
          const span = yield* Effect.currentSpan
          return [Redacted.value(response.token), span.attributes.get("connect.outcome")] as const
        }).pipe(Effect.withSpan(GET_TOKEN_SPAN))

        const first = yield* Effect.fork(outcome)
        yield* TestClock.adjust("20 seconds") // cached at 20 000, expires at 80 000
        expect(yield* Fiber.join(first)).toEqual(["direct-1", "miss"])
        yield* TestClock.adjust(WINDOW_OPENS - 1)
        expect(yield* outcome).toEqual(["direct-1", "hit"])
        yield* TestClock.adjust(1) // 45 000 ms left
        expect(yield* outcome).toEqual(["direct-1", "refreshed_ahead"])
        expect(yield* outcome).toEqual(["direct-1", "hit"]) // a refresh is under way
        expect(lookups).toBe(2)

        yield* TestClock.adjust(WINDOW_OPENS) // at the buffer, the refresh still runs: join it
        const atBuffer = yield* Effect.fork(outcome)
        yield* TestClock.adjust("5 seconds")
        expect(yield* Fiber.join(atBuffer)).toEqual(["direct-2", "joined"])
        expect(lookups).toBe(2)
      }).pipe(Effect.provide(TokenCache.layer()))
    )

    /**
     * `calls` token calls spread evenly over `spanMs` of test clock, in steps of
     * the server's latency; each call's wait is the test-clock time between its
     * start and its answer. The cache is warm when the first one starts.
     */
    const slowestOf = (calls: number, spanMs: number, latencyMs: number) =>
      Effect.gen(function* () {
        const connect = yield* ConnectTest
        const token = numbered("tok", LIFETIME)
        yield* connect.script(CONNECTOR, { token })
        yield* tokenOf(CONNECTOR, app)
        yield* connect.script(CONNECTOR, { token, latency: latencyMs })
        // Steps of a second: the clock stops at each sleeper's instant on the way.
        const steps = spanMs / 1_000
        const perStep = Math.ceil(calls / steps)
        const timed = Effect.gen(function* () {
          const start = yield* Clock.currentTimeMillis
          yield* getToken(CONNECTOR, app)
          return (yield* Clock.currentTimeMillis) - start
        })
        let slowest = 0
        for (let step = 0; step < steps; step++) {
          const batch = yield* Effect.fork(
            Effect.all(
              Array.from({ length: perStep }, () => timed),
              { concurrency: 32 }
            )
          )
          yield* settle
          yield* TestClock.adjust(1_000)
          const waits = yield* Fiber.join(batch)
          for (const wait of waits) slowest = Math.max(slowest, wait)
        }
        return { slowest, requests: yield* tokenRequests() }
      })

    it.effect("calls over three token lifetimes with a 200 ms server: the slowest waits 0", () =>
      Effect.gen(function* () {
        const { slowest, requests } = yield* slowestOf(30_000, 3 * LIFETIME, 200)
        expect(slowest).toBe(0)
        expect(requests).toBeGreaterThanOrEqual(6) // renewed about every 15 s
      }).pipe(Effect.provide(ConnectTest.layer()))
    )

    it.effect("the same calls without refresh-ahead: callers at the buffer wait the full latency", () =>
      Effect.gen(function* () {
        const { slowest } = yield* slowestOf(30_000, 3 * LIFETIME, 200)
        expect(slowest).toBe(200)
      }).pipe(Effect.provide(ConnectTest.layer({ client: { refreshAhead: false } })))
    )

    it.effect(
      "a failed background refresh: the old token until the buffer, never after; retried after a cool-down",
      () =>
        Effect.gen(function* () {
          const connect = yield* ConnectTest
          yield* connect.script(CONNECTOR, { token: numbered("tok", LIFETIME) })
          expect(yield* tokenOf(CONNECTOR, app)).toBe("tok-1")
          yield* connect.script(CONNECTOR, { token: raw(503, "") })

          // Hits at these instants, and the requests sent by then: the cool-down
          // doubles from 1 s after each failure.
          const schedule: ReadonlyArray<readonly [number, number]> = [
            [WINDOW_OPENS, 2],
            [WINDOW_OPENS + 999, 2],
            [WINDOW_OPENS + 1_000, 3],
            [WINDOW_OPENS + 2_999, 3],
            [WINDOW_OPENS + 3_000, 4],
            [WINDOW_OPENS + 6_999, 4],
            [WINDOW_OPENS + 7_000, 5],
            [BUFFER_REACHED - 1, 5]
          ]
          for (const [at, requests] of schedule) {
            yield* TestClock.setTime(at)
            expect(yield* tokenOf(CONNECTOR, app)).toBe("tok-1")
            yield* settle
            expect(yield* tokenRequests()).toBe(requests)
          }

          // At the buffer the old token is not served: the caller gets the error.
          yield* TestClock.setTime(BUFFER_REACHED)
          expect(yield* Effect.flip(getToken(CONNECTOR, app))).toBeInstanceOf(ServiceUnavailable)
          yield* connect.script(CONNECTOR, { token: { token: "recovered" } })
          expect(yield* tokenOf(CONNECTOR, app)).toBe("recovered")
        }).pipe(Effect.provide(ConnectTest.layer()))
    )

    it.effect("a refresh that brings no later token cools down instead of asking on every hit", () =>
      Effect.gen(function* () {
        const connect = yield* ConnectTest
        // The server hands out the same stored token every time.
        yield* connect.script(CONNECTOR, { token: { token: "same", expiresAt: LIFETIME } })
        expect(yield* tokenOf(CONNECTOR, app)).toBe("same")
        const schedule: ReadonlyArray<readonly [number, number]> = [
          [WINDOW_OPENS, 2],
          [WINDOW_OPENS + 500, 2],
          [WINDOW_OPENS + 1_000, 3],
          [WINDOW_OPENS + 2_000, 3],
          [WINDOW_OPENS + 3_000, 4]
        ]
        for (const [at, requests] of schedule) {
          yield* TestClock.setTime(at)
          expect(yield* tokenOf(CONNECTOR, app)).toBe("same")
          yield* settle
          expect(yield* tokenRequests()).toBe(requests)
        }
      }).pipe(Effect.provide(ConnectTest.layer()))
    )

    /** Hits at 1 ms steps from `from` to `to`: how many token requests were sent by then. */
    const requestsAfterHits = (from: number, to: number) =>
      Effect.gen(function* () {
        const connect = yield* ConnectTest
        yield* connect.script(CONNECTOR, { token: numbered("tok", LIFETIME) })
        expect(yield* tokenOf(CONNECTOR, app)).toBe("tok-1")
        for (const at of [from, to]) {
          yield* TestClock.setTime(at)
          expect(yield* tokenOf(CONNECTOR, app)).toBe("tok-1")
        }
        yield* settle
        return yield* tokenRequests()
      })

    it.effect("refreshAhead: false turns it off", () =>
      Effect.gen(function* () {
        expect(yield* requestsAfterHits(WINDOW_OPENS, BUFFER_REACHED - 1)).toBe(1)
        yield* TestClock.setTime(BUFFER_REACHED)
        expect(yield* tokenOf(CONNECTOR, app)).toBe("tok-2")
      }).pipe(Effect.provide(ConnectTest.layer({ client: { refreshAhead: false } })))
    )

    it.effect("a shorter refreshAhead narrows the window", () =>
      Effect.gen(function* () {
        expect(yield* requestsAfterHits(WINDOW_OPENS, BUFFER_REACHED - 5_001)).toBe(1)
        yield* TestClock.setTime(BUFFER_REACHED - 5_000)
        expect(yield* tokenOf(CONNECTOR, app)).toBe("tok-1")
        yield* settle
        expect(yield* tokenRequests()).toBe(2)
        expect(yield* tokenOf(CONNECTOR, app)).toBe("tok-2")
      }).pipe(Effect.provide(ConnectTest.layer({ client: { refreshAhead: "5 seconds" } })))
    )

    it.effect("an invalidation during a background refresh wins: its answer is not cached", () =>
      Effect.gen(function* () {
        const connect = yield* ConnectTest
        const cache = yield* TokenCache
        const token = numbered("tok", LIFETIME)
        yield* connect.script(CONNECTOR, { token })
        expect(yield* tokenOf(CONNECTOR, app)).toBe("tok-1")
        yield* connect.script(CONNECTOR, { token, latency: "1 second" })

        yield* TestClock.setTime(WINDOW_OPENS)
        expect(yield* tokenOf(CONNECTOR, app)).toBe("tok-1")
        yield* connect.awaitRequests(2, { operation: "token" })
        yield* deleteTokenCacheEntry(CONNECTOR, app)
        yield* TestClock.adjust("1 second")
        yield* settle
        expect(yield* cache.size).toBe(0)

        yield* connect.script(CONNECTOR, { token })
        expect(yield* tokenOf(CONNECTOR, app)).toBe("tok-3")
        expect(yield* tokenRequests()).toBe(3)
      }).pipe(Effect.provide(ConnectTest.layer()))
    )

    it.effect("closing the cache's scope interrupts a background refresh under way", () =>
      Effect.gen(function* () {
        const key = { id: "k", connector: CONNECTOR, subject: "app", installationId: undefined }
        const response = {
          token: Redacted.make("direct-1"),
          expiresAt: LIFETIME,
          connector: { id: "conn_1", uid: CONNECTOR, type: "oauth" }
        }
        let lookups = 0
        let interrupted = false
        // The refresh never answers: only the interruption ends it.
        const lookup = Effect.suspend(() =>
          ++lookups === 1
            ? Effect.succeed(response)
            : Effect.onInterrupt(Effect.never, () =>
                Effect.sync(() => {
                  interrupted = true
                })
              )
        )
        const options = { bufferMs: BUFFER_REACHED, refreshAheadMs: 300_000 }
        yield* Effect.scoped(
          Effect.gen(function* () {
            const cache = yield* makeTokenCache()
            yield* cache.get(key, lookup, options)
            yield* TestClock.setTime(WINDOW_OPENS)
            yield* cache.get(key, lookup, options)
            yield* settle
            expect(lookups).toBe(2)
          })
        )
        expect(interrupted).toBe(true)
      })
    )
  })
})
