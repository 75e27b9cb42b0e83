import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http"
import type { AddressInfo } from "node:net"
import { FetchHttpClient } from "@effect/platform"
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { Effect, Layer, Redacted } from "effect"
import { ConnectClient, getToken, InvalidResponse, TokenCache } from "../src/index.js"

// A server that is not a Connect server, answering by path as the servers a
// misconfigured CONNECT_URL reaches do.
const answers: Record<string, (response: ServerResponse) => void> = {
  "/html": (response) =>
    response.writeHead(404, { "content-type": "text/html" }).end("<!doctype html><h1>Not Found</h1>"),
  "/oauth": (response) =>
    response
      .writeHead(400, { "content-type": "application/json" })
      .end(JSON.stringify({ error: "invalid_request", error_description: "unsupported path" })),
  "/bare": (response) => response.writeHead(404, { "content-type": "text/plain" }).end("Not Found"),
  "/prefixed": (response) =>
    response
      .writeHead(404, { "content-type": "application/json" })
      .end(JSON.stringify({ error: { code: "endpoint_not_found", message: "no such endpoint" } })),
  "/proxy": (response) => response.writeHead(502, { "content-type": "text/html" }).end("<h1>Bad Gateway</h1>")
}

describe("an answer that is not a Connect server's", () => {
  let server: Server
  let origin = ""
  beforeAll(async () => {
    server = createServer((request: IncomingMessage, response: ServerResponse) => {
      const prefix = `/${(request.url ?? "").split("/")[1] ?? ""}`
      const answer = answers[prefix]
      if (answer === undefined) response.writeHead(500).end()
      else answer(response)
    })
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
    origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  })
  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())))

  const tokenFrom = (path: string) => {
    const client = ConnectClient.layer({ baseUrl: `${origin}${path}`, token: Redacted.make("key"), retries: 1 }).pipe(
      Layer.provide(Layer.merge(FetchHttpClient.layer, TokenCache.layer()))
    )
    return Effect.flip(getToken("acme/api", { subject: { type: "app" } })).pipe(Effect.provide(client))
  }

  it.live.each([
    ["/html", "an HTML page answered"],
    ["/oauth", "an OAuth server answered (error invalid_request)"],
    ["/bare", "no Connect server answers there"],
    ["/prefixed", "the server has no such endpoint"]
  ] as const)("%s: says what answered, with the URL it called and the setting to check", ([path, what]) =>
    Effect.gen(function* () {
      const error = yield* tokenFrom(path)
      expect(error).toBeInstanceOf(InvalidResponse)
      expect(error.message).toContain(what)
      expect(error.message).toContain(`${origin}${path}/v1/connect/token/acme%2Fapi`)
      expect(error.message).toContain("check CONNECT_URL")
    })
  )

  it.live("a proxy's HTML 502 is still the server being unavailable, retried", () =>
    Effect.gen(function* () {
      const error = yield* tokenFrom("/proxy")
      expect(error._tag).toBe("ServiceUnavailable")
    })
  )
})
