import { createServer, type Server } from "node:http"
import type { AddressInfo } from "node:net"
import { FetchHttpClient } from "@effect/platform"
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { Effect, Layer, Metric, Redacted, Tracer } from "effect"
import { ConnectClient, getToken, getTokenResponse, TokenCache } from "../src/index.js"
import { cacheHits, GET_TOKEN_SPAN } from "../src/internal/telemetry.js"

// A Connect server that hands out a new token, valid for an hour, at each request.
describe("ConnectClient.layer", () => {
  let server: Server
  let baseUrl = ""
  let requests = 0
  beforeAll(async () => {
    server = createServer((_request, response) => {
      requests++
      response.writeHead(200, { "content-type": "application/json" }).end(
        JSON.stringify({
          token: `tok_${requests}`,
          expiresAt: Date.now() + 3_600_000,
          connector: { id: "conn_1", uid: "acme/api", type: "oauth" }
        })
      )
    })
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
    baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  })
  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())))

  const client = () => ConnectClient.layer({ baseUrl, token: Redacted.make("key") })
  const twice = Effect.zipWith(
    getToken("acme/api", { subject: { type: "app" } }),
    getToken("acme/api", { subject: { type: "app" } }),
    (first, second) => [first, second]
  )

  it.live("works with only an HttpClient beside it, caching in a cache of its own", () =>
    Effect.gen(function* () {
      const before = requests
      const tokens = yield* twice.pipe(Effect.provide(client().pipe(Layer.provide(FetchHttpClient.layer))))
      expect(tokens[0]).toBe(tokens[1])
      expect(requests - before).toBe(1)
    })
  )

  describe("telemetry of a hit", () => {
    const params = { subject: { type: "user", id: "u_telemetry" }, scopes: ["b", "a"] } as const
    const hitsCounted = Effect.map(Metric.value(cacheHits), (state) => state.count)

    /** Effect's own tracer, recording the spans it makes. */
    const recordingTracer = Effect.map(Effect.tracer, (native) => {
      const spans: Array<Tracer.Span> = []
      const tracer = Tracer.make({
        span: (...args) => {
          const span = native.span(...args)
          spans.push(span)
          return span
        },
        context: (f, fiber) => native.context(f, fiber)
      })
      return { spans, tracer }
    })

    it.live("every hit counts, through each operation; under a tracer each call has a span with its outcome", () =>
      Effect.gen(function* () {
        const { spans, tracer } = yield* recordingTracer
        const client = yield* ConnectClient
        const token = yield* getToken("acme/api", params).pipe(Effect.withTracer(tracer))
        const before = yield* hitsCounted
        const answers = yield* Effect.all([
          getToken("acme/api", params),
          getTokenResponse("acme/api", params),
          client.getToken("acme/api", params),
          client.getTokenResponse("acme/api", params),
          getToken("acme/api", params)
        ]).pipe(Effect.withTracer(tracer))
        expect(yield* hitsCounted).toBe(before + 5)
        expect(answers.map((answer) => Redacted.value(Redacted.isRedacted(answer) ? answer : answer.token))).toEqual(
          Array(5).fill(Redacted.value(token))
        )
        const getTokenSpans = spans.filter((span) => span.name === GET_TOKEN_SPAN)
        expect(getTokenSpans.map((span) => span.attributes.get("connect.outcome"))).toEqual([
          "miss",
          ...Array(5).fill("hit")
        ])
        expect(getTokenSpans.every((span) => span.status._tag === "Ended")).toBe(true)
        // Without a tracer of its own, a hit still counts and makes no span.
        const made = spans.length
        yield* getToken("acme/api", params)
        expect(yield* hitsCounted).toBe(before + 6)
        expect(spans).toHaveLength(made)
      }).pipe(Effect.provide(client().pipe(Layer.provide(FetchHttpClient.layer))))
    )
  })

  it.live("uses the program's TokenCache when there is one, so that clients can share it", () =>
    Effect.gen(function* () {
      const cache = yield* TokenCache
      yield* twice.pipe(Effect.provide(client().pipe(Layer.provide(FetchHttpClient.layer))))
      expect(yield* cache.size).toBe(1)
    }).pipe(Effect.provide(TokenCache.layer()))
  )
})
