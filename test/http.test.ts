import { createServer } from "node:net"
import { FetchHttpClient } from "@effect/platform"
import { describe, expect, it } from "@effect/vitest"
import {
  Cause,
  Chunk,
  Clock,
  Effect,
  Exit,
  Fiber,
  FiberId,
  FastCheck as fc,
  Layer,
  Option,
  Redacted,
  TestClock
} from "effect"
import {
  ConnectClient,
  type ConnectClientOptions,
  type ConnectError,
  getConnectorMetadata,
  getToken,
  getTokenResponse,
  ProviderUnavailable,
  RateLimited,
  revokeToken,
  ServiceUnavailable,
  startAuthorization,
  TokenCache,
  type TokenParams
} from "../src/index.js"
import { ConnectTest, type RawAnswer, raw, type ScriptedToken, TEST_BASE_URL, TEST_TOKEN } from "../src/testing.js"

const CONNECTOR = "acme/api"
const APP: TokenParams = { subject: { type: "app" } }

type TokenAnswer = ScriptedToken | ConnectError | RawAnswer

/** Answers in turn, then keeps giving the last answer. */
const inTurn = (...answers: ReadonlyArray<TokenAnswer>) => {
  let next = 0
  return (): TokenAnswer => {
    const answer = answers[Math.min(next, answers.length - 1)]
    next++
    if (answer === undefined) throw new Error("inTurn needs at least one answer")
    return answer
  }
}

const rateLimited = (retryAfter: string) =>
  raw(429, JSON.stringify({ error: { code: "rate_limited", message: "slow down" } }), { "retry-after": retryAfter })

const withClient = (client: Partial<Omit<ConnectClientOptions, "baseUrl" | "token">>) => ConnectTest.layer({ client })

/** Lets other fibers run for one turn of the event loop (I/O callbacks included); no time passes. */
const tick = Effect.promise(() => new Promise<void>((resolve) => setImmediate(resolve)))

/**
 * Lets the other fibers run until they wait on the clock or are done: until
 * the set of pending sleeps stays the same for a few turns of the event loop.
 * (Sleeps of interrupted fibers, such as a finished attempt's timeout, stay in
 * the list; they fire harmlessly.)
 */
const settle = Effect.gen(function* () {
  let last = ""
  let stable = 0
  for (let turn = 0; turn < 1_000 && stable < 3; turn++) {
    yield* tick
    const sleeps = JSON.stringify(Chunk.toReadonlyArray(yield* TestClock.sleeps()))
    stable = sleeps === last ? stable + 1 : 0
    last = sleeps
  }
  return Chunk.toReadonlyArray(yield* TestClock.sleeps())
})

/**
 * Moves the test clock from one wake-up to the next, letting the fibers settle
 * in between, until the fiber is done; returns its exit.
 */
const runToEnd = <A, E>(fiber: Fiber.RuntimeFiber<A, E>) =>
  Effect.gen(function* () {
    for (let turn = 0; turn < 1_000; turn++) {
      const sleeps = yield* settle
      const done = yield* Fiber.poll(fiber)
      if (Option.isSome(done)) return done.value
      if (sleeps.length === 0) return yield* Effect.dieMessage("the call is stuck, and not on the clock")
      yield* TestClock.setTime(Math.min(...sleeps))
    }
    return yield* Effect.dieMessage("the call never finished")
  })

/** The failure of an exit, which must be a typed failure. */
const failureOf = <A, E>(exit: Exit.Exit<A, E>): E => {
  if (Exit.isSuccess(exit)) throw new Error("expected a failure, got a success")
  if (!Cause.isFailType(exit.cause)) throw new Error(`expected a typed failure, got ${Cause.pretty(exit.cause)}`)
  return exit.cause.error
}

/** The times between consecutive requests. */
const gaps = (times: ReadonlyArray<number>) => times.slice(1).map((time, i) => time - (times[i] ?? time))

describe("Retry-After", () => {
  it.effect("429 with Retry-After: 5 is retried after five seconds, not before", () =>
    Effect.gen(function* () {
      const connect = yield* ConnectTest
      yield* connect.script(CONNECTOR, { token: inTurn(rateLimited("5"), { token: "after-the-wait" }) })
      const start = yield* Clock.currentTimeMillis
      const fiber = yield* Effect.fork(getToken(CONNECTOR, APP))
      yield* connect.awaitRequests(1)
      expect(yield* settle).toContain(start + 5_000)
      yield* TestClock.adjust("4999 millis")
      yield* tick
      expect(yield* connect.requestCount()).toBe(1)
      expect(Option.isNone(yield* Fiber.poll(fiber))).toBe(true)
      yield* TestClock.adjust("1 millis")
      const token = yield* Fiber.join(fiber)
      expect(Redacted.value(token)).toBe("after-the-wait")
      const requests = yield* connect.requests
      expect(requests.map((request) => request.at)).toEqual([start, start + 5_000])
    }).pipe(Effect.provide(withClient({ retries: 3 })))
  )

  it.effect("Retry-After as an HTTP date is waited for", () =>
    Effect.gen(function* () {
      const connect = yield* ConnectTest
      const start = Date.parse("2030-03-01T12:00:00.000Z")
      yield* TestClock.setTime(start)
      const date = new Date(start + 10_000).toUTCString()
      yield* connect.script(CONNECTOR, { token: inTurn(rateLimited(date), { token: "dated" }) })
      const fiber = yield* Effect.fork(getToken(CONNECTOR, APP))
      yield* connect.awaitRequests(1)
      expect(yield* settle).toContain(start + 10_000)
      yield* TestClock.adjust("9999 millis")
      yield* tick
      expect(yield* connect.requestCount()).toBe(1)
      yield* TestClock.adjust("1 millis")
      expect(Redacted.value(yield* Fiber.join(fiber))).toBe("dated")
      const requests = yield* connect.requests
      expect(requests.map((request) => request.at)).toEqual([start, start + 10_000])
    }).pipe(Effect.provide(withClient({ retries: 3 })))
  )

  it.effect("a Retry-After date in the past is retried after the usual backoff", () =>
    Effect.gen(function* () {
      const connect = yield* ConnectTest
      const start = Date.parse("2030-03-01T12:00:00.000Z")
      yield* TestClock.setTime(start)
      const past = new Date(start - 60_000).toUTCString()
      yield* connect.script(CONNECTOR, { token: inTurn(rateLimited(past), { token: "soon" }) })
      const exit = yield* runToEnd(yield* Effect.fork(getToken(CONNECTOR, APP)))
      expect(Exit.isSuccess(exit)).toBe(true)
      const [gap] = gaps((yield* connect.requests).map((request) => request.at))
      expect(gap).toBeGreaterThanOrEqual(160)
      expect(gap).toBeLessThanOrEqual(240)
    }).pipe(Effect.provide(withClient({ retries: 3 })))
  )

  it.effect("a Retry-After longer than maxRetryAfter fails at once with the delay", () =>
    Effect.gen(function* () {
      const connect = yield* ConnectTest
      yield* connect.script(CONNECTOR, { token: inTurn(rateLimited("120"), { token: "never" }) })
      const start = yield* Clock.currentTimeMillis
      const error = failureOf(yield* runToEnd(yield* Effect.fork(getToken(CONNECTOR, APP))))
      // At once: the clock never had to move.
      expect(yield* Clock.currentTimeMillis).toBe(start)
      expect(error).toBeInstanceOf(RateLimited)
      if (!(error instanceof RateLimited)) return
      expect(error.retryAfterMs).toBe(120_000)
      expect(error.status).toBe(429)
      expect(error.message).toContain("retry in 120 seconds")
      yield* TestClock.adjust("10 minutes")
      yield* tick
      expect(yield* connect.requestCount()).toBe(1)
    }).pipe(Effect.provide(withClient({ retries: 3 })))
  )

  it.effect("a longer maxRetryAfter waits for the same answer", () =>
    Effect.gen(function* () {
      const connect = yield* ConnectTest
      yield* connect.script(CONNECTOR, { token: inTurn(rateLimited("120"), { token: "patient" }) })
      const exit = yield* runToEnd(yield* Effect.fork(getToken(CONNECTOR, APP)))
      expect(Exit.map(exit, Redacted.value)).toEqual(Exit.succeed("patient"))
      expect(gaps((yield* connect.requests).map((request) => request.at))).toEqual([120_000])
    }).pipe(Effect.provide(withClient({ retries: 3, maxRetryAfter: "3 minutes" })))
  )

  it.effect("429 on every attempt ends with RateLimited, not ServiceUnavailable", () =>
    Effect.gen(function* () {
      const connect = yield* ConnectTest
      yield* connect.script(CONNECTOR, { token: rateLimited("2") })
      const error = failureOf(yield* runToEnd(yield* Effect.fork(getToken(CONNECTOR, APP))))
      expect(error).toBeInstanceOf(RateLimited)
      if (error instanceof RateLimited) expect(error.retryAfterMs).toBe(2_000)
      const times = (yield* connect.requests).map((request) => request.at)
      expect(gaps(times)).toEqual([2_000, 2_000])
    }).pipe(Effect.provide(withClient({ retries: 2 })))
  )
})

describe("transient failures", () => {
  it.effect.each([500, 502, 503, 504, 408])("HTTP %i is retried a bounded number of times", (status) =>
    Effect.gen(function* () {
      const connect = yield* ConnectTest
      yield* connect.script(CONNECTOR, { token: raw(status, "temporarily broken") })
      const error = failureOf(yield* runToEnd(yield* Effect.fork(getToken(CONNECTOR, APP))))
      expect(error).toBeInstanceOf(ServiceUnavailable)
      if (!(error instanceof ServiceUnavailable)) return
      expect(error.attempts).toBe(4)
      expect(error.status).toBe(status)
      expect(error.url).toBe(TEST_BASE_URL)
      expect(error.reason).toBe(`HTTP ${status}`)
      expect(error.message).toContain("after 4 attempts")
      expect(error.message).toContain("retry later")
      const times = (yield* connect.requests).map((request) => request.at)
      expect(times).toHaveLength(4)
      // Exponential backoff from 200 ms with ±20 % jitter.
      gaps(times).forEach((gap, i) => {
        expect(gap).toBeGreaterThanOrEqual(0.8 * 200 * 2 ** i)
        expect(gap).toBeLessThanOrEqual(1.2 * 200 * 2 ** i)
      })
      yield* TestClock.adjust("10 minutes")
      yield* tick
      expect(yield* connect.requestCount()).toBe(4)
    }).pipe(Effect.provide(withClient({ retries: 3 })))
  )

  it.effect("a retry that succeeds returns the token", () =>
    Effect.gen(function* () {
      const connect = yield* ConnectTest
      yield* connect.script(CONNECTOR, { token: inTurn(raw(503, ""), raw(500, "{}"), { token: "third-time" }) })
      const exit = yield* runToEnd(yield* Effect.fork(getToken(CONNECTOR, APP)))
      expect(Exit.map(exit, Redacted.value)).toEqual(Exit.succeed("third-time"))
      expect(yield* connect.requestCount()).toBe(3)
    }).pipe(Effect.provide(withClient({ retries: 3 })))
  )

  it.effect("without retries a 503 fails after one attempt", () =>
    Effect.gen(function* () {
      const connect = yield* ConnectTest
      yield* connect.script(CONNECTOR, { token: raw(503, "") })
      const error = yield* Effect.flip(getToken(CONNECTOR, APP))
      expect(error).toBeInstanceOf(ServiceUnavailable)
      if (error instanceof ServiceUnavailable) expect(error.attempts).toBe(1)
      expect(error.message).toContain("after 1 attempt")
      expect(yield* connect.requestCount()).toBe(1)
    }).pipe(Effect.provide(ConnectTest.layer()))
  )

  it.effect.each([400, 401, 403, 404, 409, 410, 422])("HTTP %i is never retried", (status) =>
    Effect.gen(function* () {
      const connect = yield* ConnectTest
      yield* connect.script(CONNECTOR, { token: raw(status, JSON.stringify({ error: { message: "no" } })) })
      const start = yield* Clock.currentTimeMillis
      const error = failureOf(yield* runToEnd(yield* Effect.fork(getToken(CONNECTOR, APP))))
      expect(yield* Clock.currentTimeMillis).toBe(start)
      expect(error._tag).not.toBe("ServiceUnavailable")
      expect("status" in error ? error.status : undefined).toBe(status)
      yield* TestClock.adjust("10 minutes")
      yield* tick
      expect(yield* connect.requestCount()).toBe(1)
    }).pipe(Effect.provide(withClient({ retries: 3 })))
  )

  it.effect("an attempt longer than the timeout is abandoned, retried, then ServiceUnavailable", () =>
    Effect.gen(function* () {
      const connect = yield* ConnectTest
      yield* connect.script(CONNECTOR, { token: { token: "too-late" }, latency: "30 seconds" })
      const error = failureOf(yield* runToEnd(yield* Effect.fork(getToken(CONNECTOR, APP))))
      expect(error).toBeInstanceOf(ServiceUnavailable)
      if (!(error instanceof ServiceUnavailable)) return
      expect(error.attempts).toBe(3)
      expect(error.status).toBeUndefined()
      expect(error.reason).toContain("timed out after 1s")
      expect(error.message).toContain("timed out")
      const times = (yield* connect.requests).map((request) => request.at)
      expect(times).toHaveLength(3)
      for (const gap of gaps(times)) {
        // One second of waiting, then the backoff; never the full latency.
        expect(gap).toBeGreaterThanOrEqual(1_000 + 160)
        expect(gap).toBeLessThan(1_000 + 480 + 1)
      }
    }).pipe(Effect.provide(withClient({ retries: 2, timeout: "1 second" })))
  )

  it.effect("an attempt within the timeout succeeds", () =>
    Effect.gen(function* () {
      const connect = yield* ConnectTest
      yield* connect.script(CONNECTOR, { token: { token: "in-time" }, latency: "900 millis" })
      const exit = yield* runToEnd(yield* Effect.fork(getToken(CONNECTOR, APP)))
      expect(Exit.map(exit, Redacted.value)).toEqual(Exit.succeed("in-time"))
      expect(yield* connect.requestCount()).toBe(1)
    }).pipe(Effect.provide(withClient({ retries: 2, timeout: "1 second" })))
  )
})

/** A port on 127.0.0.1 that nothing listens on. */
const closedPort = Effect.async<number>((resume) => {
  const server = createServer()
  server.listen(0, "127.0.0.1", () => {
    const address = server.address()
    const port = typeof address === "object" && address !== null ? address.port : 0
    server.close(() => resume(Effect.succeed(port)))
  })
})

describe("a real transport failure", () => {
  it.live("a refused connection is ServiceUnavailable", () =>
    Effect.gen(function* () {
      const port = yield* closedPort
      expect(port).toBeGreaterThan(0)
      const baseUrl = `http://127.0.0.1:${port}`
      const client = ConnectClient.layer({ baseUrl, token: Redacted.make(TEST_TOKEN), retries: 0 }).pipe(
        Layer.provide(Layer.merge(FetchHttpClient.layer, TokenCache.layer()))
      )
      const error = yield* Effect.flip(getToken(CONNECTOR, APP).pipe(Effect.provide(client)))
      expect(error).toBeInstanceOf(ServiceUnavailable)
      if (!(error instanceof ServiceUnavailable)) return
      expect(error.url).toBe(baseUrl)
      expect(error.attempts).toBe(1)
      expect(error.status).toBeUndefined()
      expect(error.reason).toContain("request failed")
      expect(error.message).toContain(baseUrl)
      expect(error.message).not.toContain(TEST_TOKEN)
    })
  )
})

// A valid token response, to cut short and to spoil.
const validResponse = {
  token: "tok_valid",
  tokenId: "stk_1",
  expiresAt: 4_102_444_800_000,
  connector: { id: "conn_1", uid: CONNECTOR, type: "oauth" }
}
const validText = JSON.stringify(validResponse)
const fields = ["token", "tokenId", "expiresAt", "connector", "name", "installationId", "metadata", "claims"] as const

const malformedBody: fc.Arbitrary<string> = fc.oneof(
  fc.string(),
  fc.string({ unit: "binary", maxLength: 64 }),
  fc.nat({ max: validText.length - 1 }).map((length) => validText.slice(0, length)),
  fc.json({ maxDepth: 3 }),
  fc
    .record(
      { token: fc.jsonValue(), expiresAt: fc.jsonValue(), connector: fc.jsonValue(), tokenId: fc.jsonValue() },
      { requiredKeys: [] }
    )
    .map((value) => JSON.stringify(value)),
  fc
    .tuple(fc.constantFrom(...fields), fc.jsonValue({ maxDepth: 2 }))
    .map(([field, value]) => JSON.stringify({ ...validResponse, [field]: value })),
  fc
    .tuple(fc.constantFrom(...fields), fc.jsonValue({ maxDepth: 2 }))
    .map(([field, value]) =>
      JSON.stringify({ ...validResponse, connector: { ...validResponse.connector, [field]: value } })
    ),
  fc.constantFrom(
    "",
    "null",
    "[]",
    "[{}]",
    `[${validText}]`,
    "{}",
    "0",
    "true",
    '"tok_valid"',
    "undefined",
    `${validText}garbage`,
    '{"__proto__": {"token": "x"}}',
    JSON.stringify({ ...validResponse, expiresAt: null }),
    JSON.stringify({ ...validResponse, token: "" }),
    '{"token": "t", "expiresAt": 1e999, "connector": {"id": "c", "uid": "u", "type": "oauth"}}'
  )
)

/** A success, or a typed `InvalidResponse`; anything else (a defect, another error) throws. */
const expectSuccessOrInvalidResponse = <A>(exit: Exit.Exit<A, ConnectError>): void => {
  if (Exit.isSuccess(exit)) return
  if (!Cause.isFailType(exit.cause)) throw new Error(`expected a typed failure, got ${Cause.pretty(exit.cause)}`)
  if (exit.cause.error._tag !== "InvalidResponse") {
    throw new Error(`expected InvalidResponse, got ${exit.cause.error._tag}`)
  }
}

describe("malformed success bodies", () => {
  it("the check rejects defects and other errors", () => {
    expect(() => expectSuccessOrInvalidResponse(Exit.die(new TypeError("boom")))).toThrow("typed failure")
    expect(() => expectSuccessOrInvalidResponse(Exit.interrupt(FiberId.none))).toThrow()
    const unavailable = new ServiceUnavailable({ url: TEST_BASE_URL, reason: "x", attempts: 1 })
    expect(() => expectSuccessOrInvalidResponse(Exit.fail(unavailable))).toThrow("ServiceUnavailable")
  })

  it("a property whose effect dies fails", async () => {
    await expect(
      fc.assert(
        fc.asyncProperty(fc.string(), () => Effect.runPromise(Effect.die(new TypeError("boom")))),
        {
          numRuns: 1
        }
      )
    ).rejects.toThrow()
  })

  it.effect.prop(
    "any 200 body gives a token or InvalidResponse, and a failure is not cached",
    { body: malformedBody },
    ({ body }) =>
      Effect.gen(function* () {
        const connect = yield* ConnectTest
        yield* connect.script(CONNECTOR, { token: () => raw(200, body, { "content-type": "application/json" }) })
        const first = yield* Effect.exit(getTokenResponse(CONNECTOR, APP))
        expectSuccessOrInvalidResponse(first)
        if (Exit.isFailure(first)) {
          const error = failureOf(first)
          expect(error.message).toContain("HTTP 200")
          expect("status" in error ? error.status : undefined).toBe(200)
        }
        const now = yield* Clock.currentTimeMillis
        const second = yield* Effect.exit(getTokenResponse(CONNECTOR, APP))
        expectSuccessOrInvalidResponse(second)
        // Only a fresh token is served from the cache; a failed decode never is.
        const cached = Exit.isSuccess(first) && first.value.expiresAt - now > 30_000
        expect(yield* connect.requestCount()).toBe(cached ? 1 : 2)
      }).pipe(Effect.provide(ConnectTest.layer())),
    { fastCheck: { numRuns: 200 } }
  )

  it.effect.prop(
    "the other operations never die on a malformed body either",
    { body: malformedBody, operation: fc.constantFrom("revoke", "metadata", "authorize") },
    ({ body, operation }) =>
      Effect.gen(function* () {
        const connect = yield* ConnectTest
        const answer = () => raw(200, body)
        yield* connect.script(CONNECTOR, { revoke: answer, metadata: answer, authorize: answer })
        const call: Effect.Effect<unknown, ConnectError, ConnectClient> =
          operation === "revoke"
            ? revokeToken(CONNECTOR, {})
            : operation === "metadata"
              ? getConnectorMetadata(CONNECTOR)
              : startAuthorization(CONNECTOR, APP)
        expectSuccessOrInvalidResponse(yield* Effect.exit(call))
        expect(yield* connect.requestCount()).toBe(1)
      }).pipe(Effect.provide(ConnectTest.layer())),
    { fastCheck: { numRuns: 200 } }
  )

  it.effect("a valid body after an invalid one is fetched and cached", () =>
    Effect.gen(function* () {
      const connect = yield* ConnectTest
      yield* connect.script(CONNECTOR, {
        token: inTurn(raw(200, validText.slice(0, 20)), raw(200, validText))
      })
      const error = yield* Effect.flip(getToken(CONNECTOR, APP))
      expect(error._tag).toBe("InvalidResponse")
      expect(error.message).toContain("not JSON")
      expect(Redacted.value(yield* getToken(CONNECTOR, APP))).toBe("tok_valid")
      expect(Redacted.value(yield* getToken(CONNECTOR, APP))).toBe("tok_valid")
      expect(yield* connect.requestCount()).toBe(2)
    }).pipe(Effect.provide(ConnectTest.layer()))
  )
})

describe("5xx answers a retry cannot mend", () => {
  it.effect(
    "a 502 provider_error (a misconfigured connector) is not retried: ProviderError with the provider's code",
    () =>
      Effect.gen(function* () {
        const connect = yield* ConnectTest
        yield* connect.script("acme/broken", {
          token: raw(
            502,
            JSON.stringify({
              error: {
                code: "provider_error",
                message: "the connector is misconfigured",
                providerCode: "invalid_client"
              }
            })
          )
        })
        const error = yield* Effect.flip(getToken("acme/broken", { subject: { type: "app" } }))
        expect(error._tag).toBe("ProviderError")
        expect(error._tag === "ProviderError" && [error.code, error.status, error.providerCode]).toEqual([
          "provider_error",
          502,
          "invalid_client"
        ])
        expect(error.message).toContain('connector "acme/broken"')
        expect(yield* connect.requestCount({ connector: "acme/broken" })).toBe(1)
      }).pipe(Effect.provide(ConnectTest.layer({ client: { retries: 3 } })))
  )

  it.effect("a 502 provider_unavailable is retried, then is ProviderUnavailable, not the server's unavailability", () =>
    Effect.gen(function* () {
      const connect = yield* ConnectTest
      const unavailable = raw(
        502,
        JSON.stringify({ error: { code: "provider_unavailable", message: "the provider timed out" } })
      )
      yield* connect.script("acme/slow", { token: unavailable })
      const fiber = yield* Effect.fork(Effect.flip(getToken("acme/slow", { subject: { type: "app" } })))
      yield* TestClock.adjust("1 minute")
      const error = yield* Fiber.join(fiber)
      expect(error).toBeInstanceOf(ProviderUnavailable)
      expect(error.message).toContain("retry later")
      expect(yield* connect.requestCount({ connector: "acme/slow" })).toBe(4)
    }).pipe(Effect.provide(ConnectTest.layer({ client: { retries: 3 } })))
  )
})
