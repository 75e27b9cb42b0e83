import { describe, expect, it } from "@effect/vitest"
import { Effect, Fiber, Redacted, TestClock } from "effect"
import { getToken, revokeToken, UserAuthorizationRequired } from "../src/index.js"
import { ConnectTest } from "../src/testing.js"

describe("smoke", () => {
  it.effect("caches and expires", () =>
    Effect.gen(function* () {
      const connect = yield* ConnectTest
      yield* connect.script("acme/api", { token: { token: "t1", expiresInMs: 60_000 } })
      const a = yield* getToken("acme/api", { subject: { type: "app" } })
      const b = yield* getToken("acme/api", { subject: { type: "app" }, scopes: ["*"] })
      expect(Redacted.value(a)).toBe("t1")
      expect(Redacted.value(b)).toBe("t1")
      expect(yield* connect.requestCount()).toBe(1)
      yield* TestClock.adjust("31 seconds")
      yield* getToken("acme/api", { subject: { type: "app" } })
      expect(yield* connect.requestCount()).toBe(2)
    }).pipe(Effect.provide(ConnectTest.layer()))
  )
  it.effect("stampede and error", () =>
    Effect.gen(function* () {
      const connect = yield* ConnectTest
      yield* connect.script("acme/api", { token: { token: "t1" }, latency: "1 second" })
      const fiber = yield* Effect.fork(
        Effect.all(
          Array.from({ length: 1000 }, () => getToken("acme/api", { subject: { type: "app" } })),
          {
            concurrency: "unbounded"
          }
        )
      )
      yield* connect.awaitRequests(1)
      yield* TestClock.adjust("1 second")
      const all = yield* Fiber.join(fiber)
      expect(all.length).toBe(1000)
      expect(yield* connect.requestCount()).toBe(1)
      yield* connect.script("slack/x", {
        token: new UserAuthorizationRequired({ connector: "slack/x", authorizeUrl: "https://a.example/x" })
      })
      const error = yield* Effect.flip(getToken("slack/x", { subject: { type: "user", id: "u1" } }))
      expect(error._tag).toBe("UserAuthorizationRequired")
      expect(error.message).toContain("https://a.example/x")
      const bad = yield* Effect.flip(getToken("slack/x", { subject: { type: "user", id: "" } }))
      expect(bad.message).toContain("params.subject.id")
      const summary = yield* revokeToken("slack/x", { subject: { type: "app" } })
      expect(summary.tokensFound).toBe(0)
    }).pipe(Effect.provide(ConnectTest.layer()))
  )
})
