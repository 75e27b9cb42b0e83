import { createServer, type Server } from "node:http"
import type { AddressInfo } from "node:net"
import { FetchHttpClient } from "@effect/platform"
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { Effect, Layer, Redacted } from "effect"
import { ConnectClient, getToken, TokenCache } from "../src/index.js"

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

  it.live("uses the program's TokenCache when there is one, so that clients can share it", () =>
    Effect.gen(function* () {
      const cache = yield* TokenCache
      yield* twice.pipe(Effect.provide(client().pipe(Layer.provide(FetchHttpClient.layer))))
      expect(yield* cache.size).toBe(1)
    }).pipe(Effect.provide(TokenCache.layer()))
  )
})
