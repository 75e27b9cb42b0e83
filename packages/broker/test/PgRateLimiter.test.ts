/**
 * The rate limit shared through Postgres: the same buckets and answers as the
 * per-process limiter, one limit for every limiter on the database, open when
 * the table is out of reach, and pruned.
 */
import { SqlClient } from "@effect/sql"
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { type Context, Effect, FastCheck as fc, Layer, Logger, ManagedRuntime, TestClock } from "effect"
import * as PgRateLimiter from "../src/PgRateLimiter.js"
import { make as makeInMemory, type RateDecision, RateLimiter } from "../src/RateLimiter.js"
import { layerOf, postgres, postgresAvailable, sqlite, type TestDatabase } from "./support/databases.js"

/** A key no other test uses, so that no test sees another's bucket. */
const freshKey = () => `prj_${Math.random().toString(36).slice(2, 12)}`

const allowedCount = (decisions: ReadonlyArray<RateDecision>) => decisions.filter((d) => d.allowed).length

/** What a limiter logs, collected. */
const collectLogs = () => {
  const messages: Array<string> = []
  const logger = Logger.make(({ message }) => {
    messages.push((Array.isArray(message) ? message : [message]).map(String).join(" "))
  })
  return { messages, layer: Logger.replace(Logger.defaultLogger, logger) }
}

describe.skipIf(!postgresAvailable)("PgRateLimiter on Postgres", () => {
  let database: TestDatabase
  let runtime: ManagedRuntime.ManagedRuntime<SqlClient.SqlClient, never>
  let context: Context.Context<SqlClient.SqlClient>

  beforeAll(async () => {
    database = await postgres()
    runtime = ManagedRuntime.make(layerOf(database))
    context = await runtime.runPromise(Effect.context<SqlClient.SqlClient>())
  })
  afterAll(async () => {
    await runtime?.dispose()
    await database?.drop()
  })

  /** A shared limiter on the test database, for the length of the test. */
  const shared = (perMinute: number) => PgRateLimiter.make({ perMinute }).pipe(Effect.provide(context))

  it.scoped("the first `limit` requests of an instant pass, the next waits 60 000 / limit ms, then one passes", () =>
    Effect.gen(function* () {
      const limiter = yield* shared(200)
      const key = freshKey()
      const decisions = yield* Effect.forEach(Array.from({ length: 200 }), () => limiter.take(key))
      expect(allowedCount(decisions)).toBe(200)
      expect(decisions[0]).toEqual({ allowed: true, remaining: 199 })
      expect(decisions.at(-1)).toEqual({ allowed: true, remaining: 0 })
      expect(yield* limiter.take(key)).toEqual({ allowed: false, retryAfterMs: 300 })
      yield* TestClock.adjust("299 millis")
      expect(yield* limiter.take(key)).toEqual({ allowed: false, retryAfterMs: 1 })
      yield* TestClock.adjust("1 millis")
      expect(yield* limiter.take(key)).toEqual({ allowed: true, remaining: 0 })
      expect(yield* limiter.take(key)).toEqual({ allowed: false, retryAfterMs: 300 })
    })
  )

  it.scoped("two limiters on the database (two connection pools) allow the limit together, not twice it", () =>
    Effect.gen(function* () {
      const other = yield* Layer.build(layerOf(database))
      const first = yield* shared(20)
      const second = yield* PgRateLimiter.make({ perMinute: 20 }).pipe(Effect.provide(other))
      const key = freshKey()
      const decisions = yield* Effect.forEach(
        Array.from({ length: 60 }, (_, i) => (i % 2 === 0 ? first : second)),
        (limiter) => limiter.take(key),
        { concurrency: 16 }
      )
      expect(allowedCount(decisions)).toBe(20)
      // Each refusal names the same wait: one request's refill.
      for (const decision of decisions) if (!decision.allowed) expect(decision.retryAfterMs).toBe(3_000)
    })
  )

  it.scoped("a step back of the clock neither refills nor drains a bucket", () =>
    Effect.gen(function* () {
      const limiter = yield* shared(2)
      const key = freshKey()
      yield* TestClock.setTime(60_000)
      yield* limiter.take(key)
      yield* limiter.take(key)
      // Another replica, its clock 30 s behind, sees the same empty bucket and the same wait.
      yield* TestClock.setTime(30_000)
      expect(yield* limiter.take(key)).toEqual({ allowed: false, retryAfterMs: 30_000 })
      yield* TestClock.setTime(60_000 + 29_999)
      expect(yield* limiter.take(key)).toEqual({ allowed: false, retryAfterMs: 1 })
      yield* TestClock.setTime(90_000)
      expect(yield* limiter.take(key)).toEqual({ allowed: true, remaining: 0 })
    })
  )

  const operation = fc.record({
    key: fc.constantFrom("a", "b"),
    stepMs: fc.oneof(
      { arbitrary: fc.constant(0), weight: 4 },
      { arbitrary: fc.integer({ min: 1, max: 2_000 }), weight: 2 },
      { arbitrary: fc.integer({ min: 1, max: 90_000 }), weight: 1 }
    )
  })

  it.effect.prop(
    "decides every request as the per-process limiter does",
    { limit: fc.integer({ min: 1, max: 20 }), operations: fc.array(operation, { maxLength: 60 }) },
    ({ limit, operations }) =>
      Effect.scoped(
        Effect.gen(function* () {
          const inMemory = yield* makeInMemory({ perMinute: limit })
          const limiter = yield* shared(limit)
          const prefix = freshKey()
          for (const { key, stepMs } of operations) {
            if (stepMs > 0) yield* TestClock.adjust(stepMs)
            const expected = yield* inMemory.take(key)
            expect(yield* limiter.take(`${prefix}_${key}`)).toEqual(expected)
          }
        })
      ),
    { fastCheck: { numRuns: 25 } }
  )

  it.scoped("buckets untouched for two windows are pruned, the others kept", () =>
    Effect.gen(function* () {
      const limiter = yield* shared(5)
      const [old, recent] = [freshKey(), freshKey()]
      yield* limiter.take(old)
      yield* TestClock.adjust("61 seconds")
      yield* limiter.take(recent)
      yield* TestClock.adjust("60 seconds")
      yield* Effect.provide(PgRateLimiter.prune, context)
      const sql = yield* Effect.provide(SqlClient.SqlClient, context)
      const rows = yield* sql<{ readonly key: string }>`SELECT key FROM rate_limits WHERE key IN (${old}, ${recent})`
      expect(rows.map((row) => row.key)).toEqual([recent])
      // A pruned bucket was full: the key starts over with a full one.
      expect(yield* limiter.take(old)).toEqual({ allowed: true, remaining: 4 })
    })
  )

  it.scoped("the table out of reach: requests are limited per process, and the outage is logged once", () =>
    Effect.gen(function* () {
      const sql = yield* Effect.provide(SqlClient.SqlClient, context)
      const logs = collectLogs()
      const limiter = yield* shared(3)
      const key = freshKey()
      expect(yield* limiter.take(key)).toEqual({ allowed: true, remaining: 2 })
      yield* Effect.acquireRelease(sql`ALTER TABLE rate_limits RENAME TO rate_limits_away`, () =>
        sql`ALTER TABLE IF EXISTS rate_limits_away RENAME TO rate_limits`.pipe(Effect.orDie)
      )
      const during = yield* Effect.forEach(Array.from({ length: 5 }), () => limiter.take(key)).pipe(
        Effect.provide(logs.layer)
      )
      // This process's own bucket: full at the outage, three pass, then the same wait as ever.
      expect(allowedCount(during)).toBe(3)
      expect(during.at(-1)).toEqual({ allowed: false, retryAfterMs: 20_000 })
      const outage = logs.messages.filter((message) => message.includes("out of reach"))
      expect(outage).toHaveLength(1)
      expect(outage[0]).toContain("limiting per process")

      yield* sql`ALTER TABLE rate_limits_away RENAME TO rate_limits`
      // Back on the shared bucket, which still holds the request taken before the outage.
      expect(yield* limiter.take(key).pipe(Effect.provide(logs.layer))).toEqual({ allowed: true, remaining: 1 })
      expect(logs.messages.filter((message) => message.includes("is back"))).toHaveLength(1)
    })
  )

  it.effect("its table is unlogged: a take does not wait for the write-ahead log", () =>
    Effect.gen(function* () {
      const sql = yield* Effect.provide(SqlClient.SqlClient, context)
      const rows = yield* sql<{ readonly persistence: string }>`SELECT relpersistence AS persistence FROM pg_class
        WHERE relname = 'rate_limits' AND relkind = 'r'`
      expect(rows).toEqual([{ persistence: "u" }])
    })
  )

  it.scoped("a limit of 0 allows everything and writes nothing", () =>
    Effect.gen(function* () {
      const limiter = yield* shared(0)
      const key = freshKey()
      const decisions = yield* Effect.forEach(Array.from({ length: 50 }), () => limiter.take(key))
      expect(allowedCount(decisions)).toBe(50)
      const sql = yield* Effect.provide(SqlClient.SqlClient, context)
      expect(yield* sql`SELECT key FROM rate_limits WHERE key = ${key}`).toEqual([])
    })
  )
})

describe("PgRateLimiter.layerConfig", () => {
  const rowsAfterTakes = async (database: TestDatabase) => {
    const layer = PgRateLimiter.layerConfig.pipe(Layer.provideMerge(layerOf(database)), Layer.orDie)
    const runtime = ManagedRuntime.make(layer)
    try {
      return await runtime.runPromise(
        Effect.gen(function* () {
          const limiter = yield* RateLimiter
          const decisions = yield* Effect.forEach(Array.from({ length: 3 }), () => limiter.take("prj_web"))
          const sql = yield* SqlClient.SqlClient
          const rows = yield* sql<{ readonly key: string }>`SELECT key FROM rate_limits`
          return { allowed: allowedCount(decisions), keys: rows.map((row) => row.key) }
        })
      )
    } finally {
      await runtime.dispose()
      await database.drop()
    }
  }

  it.skipIf(!postgresAvailable)("shares the limit through the table on Postgres", async () => {
    expect(await rowsAfterTakes(await postgres())).toEqual({ allowed: 3, keys: ["prj_web"] })
  })

  it("limits per process on SQLite, with nothing in the table", async () => {
    expect(await rowsAfterTakes(sqlite())).toEqual({ allowed: 3, keys: [] })
  })
})
