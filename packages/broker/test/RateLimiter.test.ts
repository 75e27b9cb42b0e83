import { describe, expect, it } from "@effect/vitest"
import { Cause, ConfigError, ConfigProvider, Effect, Exit, FastCheck as fc, TestClock } from "effect"
import {
  DEFAULT_MAX_KEYS,
  DEFAULT_PER_MINUTE,
  MAX_PER_MINUTE,
  make,
  PER_MINUTE_VARIABLE,
  type RateDecision,
  RateLimiter,
  retryAfterSeconds
} from "../src/RateLimiter.js"

const environment = (vars: Readonly<Record<string, string>>) => ConfigProvider.fromMap(new Map(Object.entries(vars)))

const take = (key: string) => Effect.flatMap(RateLimiter, (limiter) => limiter.take(key))

/** Takes `count` requests for `key` in one instant, and returns the decisions. */
const takeMany = (key: string, count: number) => Effect.forEach(Array.from({ length: count }), () => take(key))

const allowedCount = (decisions: ReadonlyArray<RateDecision>) => decisions.filter((d) => d.allowed).length

const retryAfterOf = (decision: RateDecision): number => {
  if (decision.allowed) throw new Error("expected a refusal")
  return decision.retryAfterMs
}

/** `RateLimiter.layerConfig` built from `vars`. */
const fromConfig = (vars: Readonly<Record<string, string>>) =>
  Effect.provide(RateLimiter, RateLimiter.layerConfig).pipe(Effect.withConfigProvider(environment(vars)))

describe("RateLimiter", () => {
  describe("token bucket", () => {
    it.effect("the first `limit` requests of an instant pass and the next waits 60 000 / limit ms", () =>
      Effect.gen(function* () {
        const decisions = yield* takeMany("prj_1", DEFAULT_PER_MINUTE)
        expect(allowedCount(decisions)).toBe(DEFAULT_PER_MINUTE)
        expect(decisions[0]).toEqual({ allowed: true, remaining: DEFAULT_PER_MINUTE - 1 })
        expect(decisions.at(-1)).toEqual({ allowed: true, remaining: 0 })
        const refused = yield* take("prj_1")
        expect(refused).toEqual({ allowed: false, retryAfterMs: 300 })
        expect(retryAfterSeconds(retryAfterOf(refused))).toBe(1)
      }).pipe(Effect.provide(RateLimiter.layer({ perMinute: DEFAULT_PER_MINUTE })))
    )

    it.effect("after the announced delay exactly one more request passes", () =>
      Effect.gen(function* () {
        yield* takeMany("prj_1", DEFAULT_PER_MINUTE)
        yield* TestClock.adjust("299 millis")
        expect(yield* take("prj_1")).toEqual({ allowed: false, retryAfterMs: 1 })
        yield* TestClock.adjust("1 millis")
        expect(yield* take("prj_1")).toEqual({ allowed: true, remaining: 0 })
        expect(yield* take("prj_1")).toEqual({ allowed: false, retryAfterMs: 300 })
      }).pipe(Effect.provide(RateLimiter.layer({ perMinute: DEFAULT_PER_MINUTE })))
    )

    it.effect("a refusal takes nothing from the bucket", () =>
      Effect.gen(function* () {
        yield* takeMany("prj_1", 2)
        yield* takeMany("prj_1", 10)
        yield* TestClock.adjust("30 seconds")
        expect(yield* take("prj_1")).toEqual({ allowed: true, remaining: 0 })
      }).pipe(Effect.provide(RateLimiter.layer({ perMinute: 2 })))
    )

    it.effect("keys are independent", () =>
      Effect.gen(function* () {
        yield* takeMany("prj_1", 3)
        expect((yield* take("prj_1")).allowed).toBe(false)
        expect(allowedCount(yield* takeMany("prj_2", 3))).toBe(3)
        expect((yield* take("prj_2")).allowed).toBe(false)
      }).pipe(Effect.provide(RateLimiter.layer({ perMinute: 3 })))
    )

    it.effect("a minute refills the bucket fully, and no further", () =>
      Effect.gen(function* () {
        yield* takeMany("prj_1", DEFAULT_PER_MINUTE + 5)
        yield* TestClock.adjust("30 seconds")
        expect(yield* take("prj_1")).toEqual({ allowed: true, remaining: 99 })
        yield* TestClock.adjust("10 minutes")
        const decisions = yield* takeMany("prj_1", DEFAULT_PER_MINUTE + 1)
        expect(allowedCount(decisions)).toBe(DEFAULT_PER_MINUTE)
        expect(decisions.at(-1)?.allowed).toBe(false)
      }).pipe(Effect.provide(RateLimiter.layer({ perMinute: DEFAULT_PER_MINUTE })))
    )

    it.effect("a limit of one a minute waits the whole minute", () =>
      Effect.gen(function* () {
        expect(yield* take("prj_1")).toEqual({ allowed: true, remaining: 0 })
        const refused = yield* take("prj_1")
        expect(refused).toEqual({ allowed: false, retryAfterMs: 60_000 })
        expect(retryAfterSeconds(retryAfterOf(refused))).toBe(60)
        yield* TestClock.adjust("1 minute")
        expect((yield* take("prj_1")).allowed).toBe(true)
      }).pipe(Effect.provide(RateLimiter.layer({ perMinute: 1 })))
    )

    it.effect("an uneven delay is rounded up to the next millisecond", () =>
      Effect.gen(function* () {
        yield* takeMany("prj_1", 7)
        // 60 000 / 7 = 8 571.43 ms
        expect(yield* take("prj_1")).toEqual({ allowed: false, retryAfterMs: 8572 })
        yield* TestClock.adjust("8571 millis")
        expect(yield* take("prj_1")).toEqual({ allowed: false, retryAfterMs: 1 })
        yield* TestClock.adjust("1 millis")
        expect((yield* take("prj_1")).allowed).toBe(true)
      }).pipe(Effect.provide(RateLimiter.layer({ perMinute: 7 })))
    )
  })

  describe("retryAfterSeconds", () => {
    it("rounds up to whole seconds, at least 1", () => {
      expect(retryAfterSeconds(300)).toBe(1)
      expect(retryAfterSeconds(1)).toBe(1)
      expect(retryAfterSeconds(0)).toBe(1)
      expect(retryAfterSeconds(999)).toBe(1)
      expect(retryAfterSeconds(1000)).toBe(1)
      expect(retryAfterSeconds(1001)).toBe(2)
      expect(retryAfterSeconds(8572)).toBe(9)
      expect(retryAfterSeconds(60_000)).toBe(60)
    })
  })

  describe("memory", () => {
    it.effect("keeps at most maxKeys keys, evicting the least recently used", () =>
      Effect.gen(function* () {
        const limiter = yield* RateLimiter
        expect(limiter.maxKeys).toBe(2)
        yield* takeMany("prj_a", 2)
        yield* takeMany("prj_b", 2)
        // A refused request is a use too: prj_a is now more recent than prj_b.
        expect((yield* take("prj_a")).allowed).toBe(false)
        yield* take("prj_c")
        expect(yield* limiter.size).toBe(2)
        // prj_b, the least recently used, was evicted; prj_a was kept and is still exhausted.
        expect((yield* take("prj_a")).allowed).toBe(false)
        expect(yield* take("prj_b")).toEqual({ allowed: true, remaining: 1 })
        expect(yield* limiter.size).toBe(2)
        // ...which evicted prj_c, by then the least recently used: it starts over too.
        expect(yield* take("prj_c")).toEqual({ allowed: true, remaining: 1 })
      }).pipe(Effect.provide(RateLimiter.layer({ perMinute: 2, maxKeys: 2 })))
    )

    it.effect("a flood of distinct keys stays within the bound", () =>
      Effect.gen(function* () {
        const limiter = yield* RateLimiter
        yield* Effect.forEach(
          Array.from({ length: 1000 }, (_, i) => `prj_${i}`),
          take,
          { discard: true }
        )
        expect(yield* limiter.size).toBe(10)
      }).pipe(Effect.provide(RateLimiter.layer({ perMinute: 5, maxKeys: 10 })))
    )

    it.effect("buckets that have refilled to full are dropped", () =>
      Effect.gen(function* () {
        const limiter = yield* RateLimiter
        yield* take("prj_a")
        yield* takeMany("prj_b", 3)
        expect(yield* limiter.size).toBe(2)
        yield* TestClock.adjust("30 seconds")
        yield* take("prj_c")
        // prj_a (one request short, 20 s to refill) is full again; prj_b (emptied, 60 s) is not.
        expect(yield* limiter.size).toBe(2)
        yield* TestClock.adjust("1 minute")
        yield* take("prj_d")
        // prj_b and prj_c have refilled; prj_d's own bucket is kept.
        expect(yield* limiter.size).toBe(1)
        expect(yield* take("prj_b")).toEqual({ allowed: true, remaining: 2 })
      }).pipe(Effect.provide(RateLimiter.layer({ perMinute: 3 })))
    )

    it.effect("the default bound is 10 000 keys", () =>
      Effect.gen(function* () {
        expect(DEFAULT_MAX_KEYS).toBe(10_000)
        expect((yield* RateLimiter).maxKeys).toBe(DEFAULT_MAX_KEYS)
      }).pipe(Effect.provide(RateLimiter.layer({ perMinute: 1 })))
    )
  })

  describe("disabled", () => {
    it.effect("perMinute 0 always allows and keeps nothing", () =>
      Effect.gen(function* () {
        const limiter = yield* RateLimiter
        expect(limiter.perMinute).toBe(0)
        const decisions = yield* takeMany("prj_1", 1000)
        expect(decisions.every((d) => d.allowed && d.remaining === Number.POSITIVE_INFINITY)).toBe(true)
        expect(yield* limiter.size).toBe(0)
      }).pipe(Effect.provide(RateLimiter.layer({ perMinute: 0 })))
    )

    it.effect.each(["0", "off", "OFF", " off "])("%j in the environment disables limiting", (value) =>
      Effect.gen(function* () {
        const limiter = yield* fromConfig({ [PER_MINUTE_VARIABLE]: value })
        expect(limiter.perMinute).toBe(0)
        const decisions = yield* Effect.forEach(Array.from({ length: 500 }), () => limiter.take("prj_1"))
        expect(allowedCount(decisions)).toBe(500)
      })
    )
  })

  describe("configuration", () => {
    it.effect("defaults to 200 a minute", () =>
      Effect.gen(function* () {
        const limiter = yield* fromConfig({})
        expect(limiter.perMinute).toBe(200)
        const decisions = yield* Effect.forEach(Array.from({ length: 201 }), () => limiter.take("prj_1"))
        expect(allowedCount(decisions)).toBe(200)
      })
    )

    it.effect("takes a custom limit", () =>
      Effect.gen(function* () {
        const limiter = yield* fromConfig({ [PER_MINUTE_VARIABLE]: "5" })
        expect(limiter.perMinute).toBe(5)
        const decisions = yield* Effect.forEach(Array.from({ length: 6 }), () => limiter.take("prj_1"))
        expect(allowedCount(decisions)).toBe(5)
        expect(decisions[5]).toEqual({ allowed: false, retryAfterMs: 12_000 })
      })
    )

    it.effect.each(["abc", "-1", "1.5", "", "1e3", "0x10", String(MAX_PER_MINUTE + 1)])(
      "%j is a ConfigError naming the variable and the expected form",
      (value) =>
        Effect.gen(function* () {
          const error = yield* Effect.flip(fromConfig({ [PER_MINUTE_VARIABLE]: value }))
          expect(ConfigError.isConfigError(error)).toBe(true)
          expect(error._op).toBe("InvalidData")
          const text = String(error)
          expect(text).toContain(PER_MINUTE_VARIABLE)
          expect(text).toContain("whole number")
          expect(text).toContain("0 or off to disable")
        })
    )

    it.effect("layer rejects an invalid limit or bound", () =>
      Effect.gen(function* () {
        for (const options of [{ perMinute: -1 }, { perMinute: 1.5 }, { perMinute: 1, maxKeys: 0 }]) {
          const exit = yield* Effect.exit(Effect.provide(RateLimiter, RateLimiter.layer(options)))
          expect(Exit.isFailure(exit) && Cause.isDie(exit.cause)).toBe(true)
        }
      })
    )
  })

  describe("properties", () => {
    const operation = fc.record({
      key: fc.constantFrom("prj_a", "prj_b", "prj_c"),
      // Mostly bursts in one instant (and each adjustment of the clock waits for a real timer tick).
      stepMs: fc.oneof(
        { arbitrary: fc.constant(0), weight: 4 },
        { arbitrary: fc.integer({ min: 1, max: 2_000 }), weight: 2 },
        { arbitrary: fc.integer({ min: 1, max: 90_000 }), weight: 1 }
      )
    })

    it.effect.prop(
      "within any window of W ms a key is allowed at most limit + W · limit / 60 000 requests",
      { limit: fc.integer({ min: 1, max: 20 }), operations: fc.array(operation, { maxLength: 150 }) },
      ({ limit, operations }) =>
        Effect.gen(function* () {
          const limiter = yield* make({ perMinute: limit })
          const allowedAt = new Map<string, Array<number>>()
          let now = 0
          for (const { key, stepMs } of operations) {
            if (stepMs > 0) yield* TestClock.adjust(stepMs)
            now += stepMs
            const decision = yield* limiter.take(key)
            if (decision.allowed) {
              const times = allowedAt.get(key) ?? []
              times.push(now)
              allowedAt.set(key, times)
              expect(decision.remaining).toBeLessThan(limit)
            } else {
              expect(decision.retryAfterMs).toBeGreaterThanOrEqual(1)
              expect(decision.retryAfterMs).toBeLessThanOrEqual(Math.ceil(60_000 / limit))
            }
          }
          // The fullest windows start and end at allowed requests: check every such pair,
          // in whole units (count · 60 000 ≤ limit · 60 000 + W · limit).
          for (const times of allowedAt.values()) {
            times.forEach((start, i) => {
              for (let j = i; j < times.length; j++) {
                const width = (times[j] ?? start) - start
                expect((j - i + 1) * 60_000).toBeLessThanOrEqual(limit * 60_000 + width * limit)
              }
            })
          }
        }),
      { fastCheck: { numRuns: 100 } }
    )

    it.effect.prop(
      "a refusal's delay is exact: one millisecond earlier is refused, at the delay one request passes",
      { limit: fc.integer({ min: 1, max: 300 }), operations: fc.array(operation, { maxLength: 30 }) },
      ({ limit, operations }) =>
        Effect.gen(function* () {
          const limiter = yield* make({ perMinute: limit })
          for (const { key, stepMs } of operations) {
            if (stepMs > 0) yield* TestClock.adjust(stepMs)
            yield* limiter.take(key)
          }
          let decision = yield* limiter.take("prj_a")
          for (let i = 0; decision.allowed && i < limit; i++) decision = yield* limiter.take("prj_a")
          const delay = retryAfterOf(decision)
          if (delay > 1) {
            yield* TestClock.adjust(delay - 1)
            expect(yield* limiter.take("prj_a")).toEqual({ allowed: false, retryAfterMs: 1 })
            yield* TestClock.adjust(1)
          } else {
            yield* TestClock.adjust(delay)
          }
          expect(yield* limiter.take("prj_a")).toEqual({ allowed: true, remaining: 0 })
        }),
      { fastCheck: { numRuns: 100 } }
    )
  })
})
