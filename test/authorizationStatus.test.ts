/**
 * `authorizationStatus`, in the Effect API and the Promise API, against a
 * local HTTP server: the request it sends, what it decodes, and its errors.
 * The verifier is a secret: it travels in the body only, and no error shows it.
 */
import { createServer, type Server } from "node:http"
import type { AddressInfo } from "node:net"
import { FetchHttpClient } from "@effect/platform"
import { Cause, Effect, Exit, Layer, Redacted } from "effect"
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest"
import * as Connect from "../src/index.js"
import * as ConnectPromise from "../src/promise.js"

const CALLER = "status-caller-key"
const VERIFIER = "vfy_the-secret-verifier-5521"

interface Seen {
  readonly method: string
  readonly path: string
  readonly authorization: string | undefined
  readonly contentType: string | undefined
  readonly body: unknown
}

interface Reply {
  readonly status: number
  readonly body?: unknown
  readonly raw?: string
}

let server: Server
let baseUrl = ""
const seen: Array<Seen> = []
let reply: (request: Seen) => Reply = () => ({ status: 500 })

beforeAll(async () => {
  server = createServer((request, response) => {
    const chunks: Array<Buffer> = []
    request.on("data", (chunk: Buffer) => chunks.push(chunk))
    request.on("end", () => {
      const text = Buffer.concat(chunks).toString("utf8")
      const recorded: Seen = {
        method: request.method ?? "",
        path: request.url ?? "",
        authorization: request.headers.authorization,
        contentType: request.headers["content-type"],
        body: text.length === 0 ? undefined : JSON.parse(text)
      }
      seen.push(recorded)
      const answer = reply(recorded)
      response.writeHead(answer.status, { "content-type": "application/json" })
      response.end(answer.raw ?? (answer.body === undefined ? "" : JSON.stringify(answer.body)))
    })
  })
  await new Promise<void>((listening) => server.listen(0, "127.0.0.1", listening))
  baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
})

afterAll(async () => {
  server.closeAllConnections()
  await new Promise<void>((closed) => server.close(() => closed()))
})

beforeEach(() => {
  seen.length = 0
})

/** Runs an Effect against the local server, with no retries. */
const runEffect = <A>(effect: Effect.Effect<A, Connect.ConnectError, Connect.ConnectClient>) =>
  Effect.runPromiseExit(
    Effect.provide(
      effect,
      Connect.ConnectClient.layer({ baseUrl, token: Redacted.make(CALLER), retries: 0 }).pipe(
        Layer.provide(Layer.merge(Connect.TokenCache.layer(), FetchHttpClient.layer))
      )
    )
  )

const failureOf = async <A>(effect: Effect.Effect<A, Connect.ConnectError, Connect.ConnectClient>) => {
  const exit = await runEffect(effect)
  if (Exit.isSuccess(exit)) throw new Error("expected a failure")
  return Cause.squash(exit.cause)
}

const status = (request: string, verifier = VERIFIER) => Connect.authorizationStatus(request, Redacted.make(verifier))

describe("authorizationStatus", () => {
  it("sends the verifier in the body of POST /v1/connect/authorize/{request}/status and decodes the answer", async () => {
    reply = () => ({ status: 200, body: { request: "req_1", status: "pending" } })
    const exit = await runEffect(status("req_1"))
    expect(exit).toStrictEqual(Exit.succeed({ request: "req_1", status: "pending" }))
    expect(seen).toEqual([
      {
        method: "POST",
        path: "/v1/connect/authorize/req_1/status",
        authorization: `Bearer ${CALLER}`,
        contentType: "application/json",
        body: { verifier: VERIFIER }
      }
    ])
  })

  it("percent-encodes the request in the path", async () => {
    reply = () => ({ status: 200, body: { request: "req/2", status: "completed" } })
    await runEffect(status("req/2"))
    expect(seen[0]?.path).toBe("/v1/connect/authorize/req%2F2/status")
  })

  it("decodes every state, with the error of a failed request; a null error reads as absent", async () => {
    for (const state of ["pending", "completing", "completed", "expired"] as const) {
      reply = () => ({ status: 200, body: { request: "req_3", status: state, error: null } })
      expect(await runEffect(status("req_3"))).toStrictEqual(Exit.succeed({ request: "req_3", status: state }))
    }
    reply = () => ({ status: 200, body: { request: "req_3", status: "failed", error: "access_denied" } })
    expect(await runEffect(status("req_3"))).toStrictEqual(
      Exit.succeed({ request: "req_3", status: "failed", error: "access_denied" })
    )
  })

  it("fails with InvalidResponse on a state it does not know or a body that is not JSON", async () => {
    reply = () => ({ status: 200, body: { request: "req_4", status: "done" } })
    const unknown = await failureOf(status("req_4"))
    expect(unknown).toBeInstanceOf(Connect.InvalidResponse)
    expect(String((unknown as Error).message)).toContain("status")
    reply = () => ({ status: 200, raw: "<html>" })
    expect(await failureOf(status("req_4"))).toBeInstanceOf(Connect.InvalidResponse)
  })

  it("fails with InvalidRequest on the server's bad_request (an unknown request or a wrong verifier)", async () => {
    reply = () => ({
      status: 400,
      body: {
        error: {
          code: "bad_request",
          message: "no authorization request matches this id and verifier",
          issues: [{ path: "verifier", message: "no authorization request matches this id and verifier" }]
        }
      }
    })
    const error = await failureOf(status("req_5", "vfy_wrong"))
    expect(error).toBeInstanceOf(Connect.InvalidRequest)
    expect((error as Connect.InvalidRequest).issues).toEqual([
      { path: "verifier", message: "no authorization request matches this id and verifier" }
    ])
    expect((error as Error).message).not.toContain("vfy_wrong")
  })

  it("reads not_found as an InvalidRequest about the request, not a missing connector", async () => {
    reply = () => ({ status: 404, body: { error: { code: "not_found", message: "no such endpoint" } } })
    const error = await failureOf(status("req_6"))
    expect(error).toBeInstanceOf(Connect.InvalidRequest)
    expect((error as Connect.InvalidRequest).issues[0]?.path).toBe("request")
    expect((error as Connect.InvalidRequest).status).toBe(404)
  })

  it("keeps the other errors of the protocol: Unauthorized, ServiceUnavailable", async () => {
    reply = () => ({ status: 401, body: { error: { code: "unauthorized", message: "unknown key" } } })
    expect(await failureOf(status("req_7"))).toBeInstanceOf(Connect.Unauthorized)
    reply = () => ({ status: 503 })
    const unavailable = await failureOf(status("req_7"))
    expect(unavailable).toBeInstanceOf(Connect.ServiceUnavailable)
    expect(String(unavailable)).not.toContain(VERIFIER)
  })

  it("refuses an empty request or verifier before sending anything", async () => {
    const noRequest = await failureOf(status(" "))
    expect(noRequest).toBeInstanceOf(Connect.InvalidRequest)
    expect((noRequest as Connect.InvalidRequest).issues[0]?.path).toBe("request")
    const noVerifier = await failureOf(status("req_8", ""))
    expect((noVerifier as Connect.InvalidRequest).issues[0]?.path).toBe("verifier")
    expect(seen).toHaveLength(0)
  })
})

describe("authorizationStatus (Promise)", () => {
  it("answers the same status", async () => {
    reply = () => ({ status: 200, body: { request: "req_9", status: "failed", error: "access_denied" } })
    const answer = await ConnectPromise.authorizationStatus("req_9", VERIFIER, { baseUrl, token: CALLER })
    expect(answer).toEqual({ request: "req_9", status: "failed", error: "access_denied" })
    expect(seen[0]?.body).toEqual({ verifier: VERIFIER })
  })

  it("rejects with the same error classes as the Effect API", async () => {
    reply = () => ({ status: 400, body: { error: { code: "bad_request", message: "no match" } } })
    const rejected = await ConnectPromise.authorizationStatus("req_10", VERIFIER, { baseUrl, token: CALLER }).then(
      () => undefined,
      (error: unknown) => error
    )
    expect(rejected).toBeInstanceOf(ConnectPromise.InvalidRequest)
    const notAString = await ConnectPromise.authorizationStatus("req_10", 42 as unknown as string, {
      baseUrl,
      token: CALLER
    }).then(
      () => undefined,
      (error: unknown) => error
    )
    expect(notAString).toBeInstanceOf(ConnectPromise.InvalidRequest)
    expect((notAString as Connect.InvalidRequest).issues[0]?.path).toBe("verifier")
  })
})
