/**
 * The Promise API against a real HTTP server: answers, the process-wide token
 * cache, configuration, and errors that are `instanceof` their classes and the
 * very errors the Effect API fails with.
 *
 * The Promise module keeps one cache for the process: every test uses its own
 * connectors so that tests do not see each other's entries.
 */
import { createServer } from "node:http"
import type { AddressInfo } from "node:net"
import { FetchHttpClient } from "@effect/platform"
import { Cause, Effect, Exit, Layer, Redacted } from "effect"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import * as Connect from "../src/index.js"
import * as ConnectPromise from "../src/promise.js"
import {
  type Recorded as Received,
  type RecordingServer,
  type Reply,
  type Operation as Route,
  routeOf,
  startRecordingServer
} from "./support/recordingServer.js"

// ---------------------------------------------------------------------------
// The local server
// ---------------------------------------------------------------------------

type Operation = Route | "unknown"

/** A request as the server saw it, with its operation and connector. */
interface Recorded extends Received {
  readonly operation: Operation
  readonly connector: string
}

/** Answers one request; `count` is how many requests the connector has seen, this one included. */
type Responder = (request: Recorded, count: number) => Reply | Promise<Reply>

const CALLER_TOKEN = "promise-caller-key"
const requests: Array<Recorded> = []
const scripts = new Map<string, Responder>()
let server: RecordingServer
let baseUrl = ""

const tokenBody = (connector: string, token: string, expiresAt = Date.now() + 3_600_000) => ({
  token,
  tokenId: `stk_${token}`,
  expiresAt,
  connector: { id: "scn_1", uid: connector, type: "oauth" },
  installationId: "T1"
})

const SUMMARY = { tokensFound: 2, deleted: 2, providerRevoked: 1, providerSkipped: 1, providerFailed: 0 }

const defaultReply = (request: Recorded): Reply => {
  const { connector } = request
  switch (request.operation) {
    case "token": {
      const n = requestsFor(connector, "token").length
      return { status: 200, body: tokenBody(connector, `${connector}#${n}`) }
    }
    case "revoke":
      return { status: 200, body: SUMMARY }
    case "metadata":
      return {
        status: 200,
        body: {
          id: "scn_1",
          uid: connector,
          name: "Acme GitHub",
          type: "oauth",
          service: "github",
          createdAt: 1_700_000_000_000,
          updatedAt: 1_700_000_500_000,
          data: { appSlug: "acme-app", installations: 3 }
        }
      }
    case "authorize":
      return {
        status: 200,
        body: {
          request: "areq_1",
          verifier: "the-verifier-secret",
          url: "https://connect.example/authorize/areq_1",
          expiresAt: Date.now() + 600_000
        }
      }
    case "unknown":
      return { status: 404, body: { error: { code: "not_found", message: "no such route" } } }
  }
}

/** Records the request and answers it: the connector's script, or a valid protocol body. */
const reply = async (received: Received): Promise<Reply> => {
  const recorded: Recorded = {
    ...(routeOf(received.method, received.path) ?? { operation: "unknown", connector: "" }),
    ...received
  }
  requests.push(recorded)
  const script = scripts.get(recorded.connector)
  return script === undefined ? defaultReply(recorded) : await script(recorded, requestsFor(recorded.connector).length)
}

const requestsFor = (connector: string, operation?: Operation): ReadonlyArray<Recorded> =>
  requests.filter((r) => r.connector === connector && (operation === undefined || r.operation === operation))

/** Answers the replies in order; the last one repeats. */
const sequence =
  (...replies: ReadonlyArray<Reply>): Responder =>
  (_request, count) => {
    const reply = replies[Math.min(count, replies.length) - 1]
    if (reply === undefined) throw new Error("empty sequence")
    return reply
  }

const deferred = <A>() => {
  let resolve: (value: A) => void = () => {}
  const promise = new Promise<A>((r) => {
    resolve = r
  })
  return { promise, resolve }
}

/** Waits, a turn of the event loop at a time (at most 5 s), until `done` holds. */
const until = async (done: () => boolean | Promise<boolean>): Promise<void> => {
  const deadline = Date.now() + 5_000
  while (!(await done())) {
    if (Date.now() > deadline) throw new Error("gave up waiting")
    await new Promise((resolve) => setTimeout(resolve, 5))
  }
}

// ---------------------------------------------------------------------------
// Environment
// ---------------------------------------------------------------------------

const CONFIG_ENV = ["CONNECT_URL", "CONNECT_TOKEN", "VERCEL_OIDC_TOKEN"] as const
const savedEnv = new Map<string, string | undefined>()

const setEnv = (name: string, value: string | undefined) => {
  if (value === undefined) Reflect.deleteProperty(process.env, name)
  else process.env[name] = value
}

/** Runs `f` with these variables set (or unset), then puts the previous values back. */
const withEnv = async <A>(vars: Readonly<Record<string, string | undefined>>, f: () => Promise<A>): Promise<A> => {
  const before = Object.keys(vars).map((name) => [name, process.env[name]] as const)
  for (const [name, value] of Object.entries(vars)) setEnv(name, value)
  try {
    return await f()
  } finally {
    for (const [name, value] of before) setEnv(name, value)
  }
}

/** A port nothing listens on. */
let closedUrl = ""

beforeAll(async () => {
  for (const name of CONFIG_ENV) {
    savedEnv.set(name, process.env[name])
    setEnv(name, undefined)
  }
  server = await startRecordingServer(reply)
  baseUrl = server.url
  const probe = createServer()
  await new Promise<void>((resolve) => probe.listen(0, "127.0.0.1", resolve))
  closedUrl = `http://127.0.0.1:${(probe.address() as AddressInfo).port}`
  await new Promise<void>((resolve, reject) => probe.close((error) => (error ? reject(error) : resolve())))
})

afterAll(async () => {
  for (const [name, value] of savedEnv) setEnv(name, value)
  await server.close()
})

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

const options = (extra?: { readonly forceRefresh?: boolean; readonly token?: string }) => ({
  baseUrl,
  token: extra?.token ?? CALLER_TOKEN,
  ...(extra?.forceRefresh === undefined ? {} : { forceRefresh: extra.forceRefresh })
})

/** The error a promise rejects with (fails the test when it resolves). */
const rejectionOf = (promise: Promise<unknown>): Promise<unknown> =>
  promise.then(
    (value) => {
      throw new Error(`expected a rejection, got ${JSON.stringify(value)}`)
    },
    (error: unknown) => error
  )

/** The error the Effect API fails with, squashed as the Promise API squashes it. */
const effectFailure = async <A>(
  effect: Effect.Effect<A, Connect.ConnectError, Connect.ConnectClient>,
  url = baseUrl
): Promise<unknown> => {
  const exit = await Effect.runPromiseExit(
    Effect.provide(
      effect,
      Connect.ConnectClient.layer({ baseUrl: url, token: Redacted.make(CALLER_TOKEN) }).pipe(
        Layer.provide(Layer.merge(Connect.TokenCache.layer(), FetchHttpClient.layer))
      )
    )
  )
  if (Exit.isSuccess(exit)) throw new Error("expected the Effect API to fail")
  return Cause.squash(exit.cause)
}

/** The Promise rejection and the Effect failure are the same error: class, fields and message. */
const expectSameError = (fromPromise: unknown, fromEffect: unknown) => {
  expect(fromPromise).toBeInstanceOf(Error)
  expect(fromEffect).toBeInstanceOf(Error)
  if (!(fromPromise instanceof Error) || !(fromEffect instanceof Error)) return
  expect(fromPromise.constructor).toBe(fromEffect.constructor)
  expect(fromPromise).toBeInstanceOf(fromEffect.constructor)
  // Only where the credential came from may differ: an option of the call, or the Effect client's layer.
  const { credentialSource: promiseSource, ...promiseFields } = { credentialSource: undefined, ...fromPromise }
  const { credentialSource: effectSource, ...effectFields } = { credentialSource: undefined, ...fromEffect }
  expect(promiseFields).toStrictEqual(effectFields)
  const unsourced = (error: Error, source: unknown) =>
    typeof source === "string" ? error.message.replace(source, "SOURCE") : error.message
  expect(unsourced(fromPromise, promiseSource)).toBe(unsourced(fromEffect, effectSource))
}

// ---------------------------------------------------------------------------
// Tokens and the cache
// ---------------------------------------------------------------------------

describe("getToken / getTokenResponse", () => {
  it("getTokenResponse answers the token as a plain string", async () => {
    const connector = "p/response"
    const response = await ConnectPromise.getTokenResponse(connector, { subject: { type: "app" } }, options())
    expect(typeof response.token).toBe("string")
    expect(response.token).toBe("p/response#1")
    expect(response.tokenId).toBe("stk_p/response#1")
    expect(response.connector).toStrictEqual({ id: "scn_1", uid: connector, type: "oauth" })
    expect(response.installationId).toBe("T1")
    expect(response.expiresAt).toBeGreaterThan(Date.now())
    const [request] = requestsFor(connector)
    expect(request).toMatchObject({
      method: "POST",
      path: "/v1/connect/token/p%2Fresponse",
      authorization: `Bearer ${CALLER_TOKEN}`,
      accept: "application/json",
      contentType: "application/json",
      body: { subject: { type: "app" }, scopes: ["*"] }
    })
  })

  it("a second call is answered from the cache", async () => {
    const connector = "p/cached"
    const params = { subject: { type: "user", id: "u1" }, scopes: ["repo", "read:org"] } as const
    const first = await ConnectPromise.getToken(connector, params, options())
    const second = await ConnectPromise.getToken(connector, params, options())
    // The same request with its scopes in another order, and getTokenResponse, share the entry.
    const reordered = await ConnectPromise.getToken(
      connector,
      { subject: { type: "user", id: "u1" }, scopes: ["read:org", "repo"] },
      options()
    )
    const response = await ConnectPromise.getTokenResponse(connector, params, options())
    expect(first).toBe("p/cached#1")
    expect(second).toBe(first)
    expect(reordered).toBe(first)
    expect(response.token).toBe(first)
    expect(requestsFor(connector)).toHaveLength(1)
  })

  it("a request object changed in place between calls is the request it now is", async () => {
    const connector = "p/changed"
    const subject = { type: "user" as const, id: "u1" }
    const params: { subject: typeof subject; scopes: Array<string>; validityBufferMs?: number } = {
      subject,
      scopes: ["repo"]
    }
    expect(await ConnectPromise.getToken(connector, params, options())).toBe("p/changed#1")
    expect(await ConnectPromise.getToken(connector, params, options())).toBe("p/changed#1")
    params.scopes[0] = "admin"
    expect(await ConnectPromise.getToken(connector, params, options())).toBe("p/changed#2")
    expect(requestsFor(connector).at(-1)?.body).toMatchObject({ scopes: ["admin"] })
    subject.id = "u2"
    expect(await ConnectPromise.getToken(connector, params, options())).toBe("p/changed#3")
    // A buffer longer than the token's hour: the cached token is too close to expiry.
    params.validityBufferMs = 2 * 3_600_000
    expect(await ConnectPromise.getToken(connector, params, options())).toBe("p/changed#4")
    delete params.validityBufferMs
    params.scopes[0] = "repo"
    subject.id = "u1"
    expect(await ConnectPromise.getToken(connector, params, options())).toBe("p/changed#1")
    expect(requestsFor(connector)).toHaveLength(4)
  })

  it("forceRefresh sends again and replaces the cached entry", async () => {
    const connector = "p/force"
    const params = { subject: { type: "app" } } as const
    expect(await ConnectPromise.getToken(connector, params, options())).toBe("p/force#1")
    expect(await ConnectPromise.getToken(connector, params, options({ forceRefresh: true }))).toBe("p/force#2")
    const response = await ConnectPromise.getTokenResponse(connector, params, options({ forceRefresh: true }))
    expect(response.token).toBe("p/force#3")
    expect(requestsFor(connector)).toHaveLength(3)
    // The refreshed token is the one cached.
    expect(await ConnectPromise.getToken(connector, params, options())).toBe("p/force#3")
    expect(requestsFor(connector)).toHaveLength(3)
  })

  it("concurrent misses of one request send one request", async () => {
    const connector = "p/single-flight"
    const arrived = deferred<void>()
    const answer = deferred<Reply>()
    scripts.set(connector, () => {
      arrived.resolve()
      return answer.promise
    })
    const params = { subject: { type: "app" } } as const
    const calls = Promise.all([
      ConnectPromise.getToken(connector, params, options()),
      ConnectPromise.getToken(connector, params, options()),
      ConnectPromise.getTokenResponse(connector, params, options())
    ])
    // The server holds the first request; were the calls answered before, it was not the server's answer.
    await Promise.race([
      arrived.promise,
      calls.then(() => {
        throw new Error("the calls were answered before the server answered")
      })
    ])
    answer.resolve({ status: 200, body: tokenBody(connector, "shared-token") })
    const [a, b, c] = await calls
    expect([a, b, c.token]).toStrictEqual(["shared-token", "shared-token", "shared-token"])
    expect(requestsFor(connector)).toHaveLength(1)
  })

  it("a token within its validity buffer is fetched again", async () => {
    const connector = "p/buffer"
    // Ten seconds left: inside the default 30-second buffer, outside a 1-second one.
    scripts.set(connector, (_request, count) => ({
      status: 200,
      body: tokenBody(connector, `short-${count}`, Date.now() + 10_000)
    }))
    const params = { subject: { type: "app" } } as const
    expect(await ConnectPromise.getToken(connector, params, options())).toBe("short-1")
    expect(await ConnectPromise.getToken(connector, params, options())).toBe("short-2")
    expect(await ConnectPromise.getToken(connector, { ...params, validityBufferMs: 1_000 }, options())).toBe("short-2")
    expect(requestsFor(connector)).toHaveLength(2)
  })

  it("a hit shortly before the buffer is answered at once and renews the token in the background", async () => {
    const connector = "p/refresh-ahead"
    const held = deferred<void>()
    // 36 s left: 6 s before the 30-second buffer, inside the window of a
    // quarter of the lifetime (9 s). The renewal is held until the test lets it go.
    scripts.set(connector, async (_request, count) => {
      if (count === 2) await held.promise
      return { status: 200, body: tokenBody(connector, `ahead-${count}`, Date.now() + 36_000) }
    })
    const params = { subject: { type: "app" } } as const
    expect(await ConnectPromise.getToken(connector, params, options())).toBe("ahead-1")
    // Answered while the server holds the renewal.
    expect(await ConnectPromise.getToken(connector, params, options())).toBe("ahead-1")
    expect(await ConnectPromise.getToken(connector, params, options())).toBe("ahead-1")
    await until(() => requestsFor(connector).length === 2)
    held.resolve()
    await until(async () => (await ConnectPromise.getToken(connector, params, options())) === "ahead-2")
    expect(requestsFor(connector)).toHaveLength(2)
  })

  it("CONNECT_REFRESH_AHEAD=false turns refresh-ahead off for the clients it makes", async () => {
    const connector = "p/refresh-ahead-off"
    scripts.set(connector, (_request, count) => ({
      status: 200,
      body: tokenBody(connector, `off-${count}`, Date.now() + 36_000)
    }))
    const params = { subject: { type: "app" } } as const
    // A credential of its own: the client is made under the variable.
    const caller = { baseUrl, token: "refresh-ahead-off-caller" }
    await withEnv({ CONNECT_REFRESH_AHEAD: "false" }, async () => {
      expect(await ConnectPromise.getToken(connector, params, caller)).toBe("off-1")
      expect(await ConnectPromise.getToken(connector, params, caller)).toBe("off-1")
    })
    // A request would have arrived by the time a local round trip answers.
    await ConnectPromise.getToken("p/refresh-ahead-probe", params, caller)
    expect(requestsFor(connector)).toHaveLength(1)
  })

  it("entries are kept per caller credential", async () => {
    const connector = "p/per-caller"
    const params = { subject: { type: "app" } } as const
    const a = await ConnectPromise.getToken(connector, params, options({ token: "caller-a" }))
    const b = await ConnectPromise.getToken(connector, params, options({ token: "caller-b" }))
    expect(a).not.toBe(b)
    expect(requestsFor(connector).map((r) => r.authorization)).toStrictEqual(["Bearer caller-a", "Bearer caller-b"])
    expect(await ConnectPromise.getToken(connector, params, options({ token: "caller-a" }))).toBe(a)
    expect(requestsFor(connector)).toHaveLength(2)
  })

  it("a 5xx answer is retried", async () => {
    const connector = "p/retry"
    scripts.set(
      connector,
      sequence(
        { status: 503, body: { error: { code: "service_unavailable", message: "restarting" } } },
        { status: 200, body: tokenBody(connector, "after-retry") }
      )
    )
    expect(await ConnectPromise.getToken(connector, { subject: { type: "app" } }, options())).toBe("after-retry")
    expect(requestsFor(connector)).toHaveLength(2)
  })
})

describe("revokeToken", () => {
  it("answers the summary and drops the revoked subject's cached entry", async () => {
    const connector = "p/revoke"
    const u1 = { subject: { type: "user", id: "u1" } } as const
    const u2 = { subject: { type: "user", id: "u2" } } as const
    const u1Token = await ConnectPromise.getToken(connector, u1, options())
    const u2Token = await ConnectPromise.getToken(connector, u2, options())
    const summary = await ConnectPromise.revokeToken(
      connector,
      { subject: u1.subject, installationId: "T1" },
      options()
    )
    expect(summary).toStrictEqual(SUMMARY)
    const [revocation] = requestsFor(connector, "revoke")
    expect(revocation).toMatchObject({
      method: "DELETE",
      path: "/v1/connect/connectors/p%2Frevoke/tokens",
      authorization: `Bearer ${CALLER_TOKEN}`,
      body: { subject: { type: "user", id: "u1" }, installationId: "T1" }
    })
    const u1Again = await ConnectPromise.getToken(connector, u1, options())
    expect(u1Again).not.toBe(u1Token)
    expect(await ConnectPromise.getToken(connector, u2, options())).toBe(u2Token)
    expect(requestsFor(connector, "token")).toHaveLength(3)
  })

  it("an empty 204 answer reads as zero counts", async () => {
    const connector = "p/revoke-204"
    scripts.set(connector, sequence({ status: 204 }))
    const summary = await ConnectPromise.revokeToken(connector, { subject: { type: "app" } }, options())
    expect(summary).toStrictEqual({
      tokensFound: 0,
      deleted: 0,
      providerRevoked: 0,
      providerSkipped: 0,
      providerFailed: 0
    })
  })
})

describe("deleteTokenCacheEntry", () => {
  it("synchronously drops one entry and leaves the others", async () => {
    const connector = "p/delete-entry"
    const a = { subject: { type: "user", id: "a" }, scopes: ["x", "y"] } as const
    const b = { subject: { type: "user", id: "b" } } as const
    const aToken = await ConnectPromise.getToken(connector, a, options())
    const bToken = await ConnectPromise.getToken(connector, b, options())
    // The same request with its scopes in another order names the same entry.
    const result = ConnectPromise.deleteTokenCacheEntry(
      connector,
      { subject: { type: "user", id: "a" }, scopes: ["y", "x"] },
      options()
    )
    expect(result).toBeUndefined()
    expect(await ConnectPromise.getToken(connector, a, options())).not.toBe(aToken)
    expect(await ConnectPromise.getToken(connector, b, options())).toBe(bToken)
    expect(requestsFor(connector)).toHaveLength(3)
  })

  it("throws InvalidRequest synchronously for bad input", () => {
    expect(() => ConnectPromise.deleteTokenCacheEntry("", { subject: { type: "app" } }, options())).toThrow(
      ConnectPromise.InvalidRequest
    )
    expect(() =>
      ConnectPromise.deleteTokenCacheEntry("p/delete-bad", { subject: { type: "user", id: "" } }, options())
    ).toThrow(/params\.subject\.id/)
  })
})

describe("startAuthorization", () => {
  it("answers the verifier as a plain string", async () => {
    const connector = "p/authorize"
    const started = await ConnectPromise.startAuthorization(
      connector,
      { subject: { type: "user", id: "u1" }, scopes: ["repo"] },
      { ...options(), callbackUrl: "https://app.example/done", prompt: "consent" }
    )
    expect(typeof started.verifier).toBe("string")
    expect(started.verifier).toBe("the-verifier-secret")
    expect(started.request).toBe("areq_1")
    expect(started.url).toBe("https://connect.example/authorize/areq_1")
    const [request] = requestsFor(connector)
    expect(request).toMatchObject({
      method: "POST",
      path: "/v1/connect/authorize/p%2Fauthorize",
      body: {
        subject: { type: "user", id: "u1" },
        scopes: ["repo"],
        returnUrl: "https://app.example/done",
        prompt: "consent"
      }
    })
    expect(request?.body).not.toHaveProperty("baseUrl")
    expect(request?.body).not.toHaveProperty("token")
  })
})

describe("getConnectorMetadata", () => {
  it("answers the metadata with data as vendor", async () => {
    const connector = "github/acme app"
    const metadata = await ConnectPromise.getConnectorMetadata(connector, options())
    expect(metadata).toStrictEqual({
      id: "scn_1",
      uid: connector,
      name: "Acme GitHub",
      type: "oauth",
      service: "github",
      createdAt: 1_700_000_000_000,
      updatedAt: 1_700_000_500_000,
      vendor: { appSlug: "acme-app", installations: 3 }
    })
    expect(requestsFor(connector)).toMatchObject([
      { method: "GET", path: "/v1/connect/connectors/github%2Facme%20app", body: undefined }
    ])
  })
})

// ---------------------------------------------------------------------------
// Configuration
// ---------------------------------------------------------------------------

describe("configuration", () => {
  it("reads CONNECT_URL and CONNECT_TOKEN from the environment", async () => {
    const connector = "p/env"
    const token = await withEnv({ CONNECT_URL: baseUrl, CONNECT_TOKEN: "env-caller-key" }, () =>
      ConnectPromise.getToken(connector, { subject: { type: "app" } })
    )
    expect(token).toBe("p/env#1")
    expect(requestsFor(connector).map((r) => r.authorization)).toStrictEqual(["Bearer env-caller-key"])
  })

  it("reads VERCEL_OIDC_TOKEN as the credential when CONNECT_TOKEN is not set", async () => {
    const connector = "p/env-oidc"
    await withEnv({ CONNECT_URL: baseUrl, VERCEL_OIDC_TOKEN: "oidc-jwt" }, () =>
      ConnectPromise.getConnectorMetadata(connector)
    )
    expect(requestsFor(connector).map((r) => r.authorization)).toStrictEqual(["Bearer oidc-jwt"])
  })

  it("per-call baseUrl and token win over the environment", async () => {
    const connector = "p/per-call"
    await withEnv({ CONNECT_URL: closedUrl, CONNECT_TOKEN: "env-caller-key" }, async () => {
      await ConnectPromise.getToken(connector, { subject: { type: "app" } }, { baseUrl, token: "call-key" })
      await ConnectPromise.getConnectorMetadata(connector, { baseUrl, vercelToken: "call-oidc" })
    })
    expect(requestsFor(connector).map((r) => r.authorization)).toStrictEqual(["Bearer call-key", "Bearer call-oidc"])
  })

  it("rejects with ConfigurationError saying what to set when nothing is configured", async () => {
    const params = { subject: { type: "app" } } as const
    const errors = await withEnv(
      { CONNECT_URL: undefined, CONNECT_TOKEN: undefined, VERCEL_OIDC_TOKEN: undefined },
      () =>
        Promise.all([
          rejectionOf(ConnectPromise.getToken("p/unconfigured", params)),
          rejectionOf(ConnectPromise.getTokenResponse("p/unconfigured", params)),
          rejectionOf(ConnectPromise.revokeToken("p/unconfigured", params)),
          rejectionOf(ConnectPromise.startAuthorization("p/unconfigured", params)),
          rejectionOf(ConnectPromise.getConnectorMetadata("p/unconfigured"))
        ])
    )
    for (const error of errors) {
      expect(error).toBeInstanceOf(ConnectPromise.ConfigurationError)
      expect(error).toHaveProperty("message", expect.stringContaining("CONNECT_URL"))
      expect(error).toHaveProperty("message", expect.stringContaining("CONNECT_TOKEN"))
      expect(error).toHaveProperty("message", expect.stringContaining("VERCEL_OIDC_TOKEN"))
    }
    expect(requestsFor("p/unconfigured")).toHaveLength(0)
    await withEnv({ CONNECT_URL: undefined, CONNECT_TOKEN: undefined, VERCEL_OIDC_TOKEN: undefined }, async () => {
      expect(() => ConnectPromise.deleteTokenCacheEntry("p/unconfigured", params)).toThrow(
        ConnectPromise.ConfigurationError
      )
    })
  })

  it("says which variable is missing when only one is set", async () => {
    const params = { subject: { type: "app" } } as const
    const noUrl = await withEnv({ CONNECT_TOKEN: "env-caller-key" }, () =>
      rejectionOf(ConnectPromise.getToken("p/half-configured", params))
    )
    expect(noUrl).toBeInstanceOf(ConnectPromise.ConfigurationError)
    expect(noUrl).toHaveProperty("message", expect.stringContaining("set the URL of your Connect server"))
    const noToken = await withEnv({ CONNECT_URL: baseUrl }, () =>
      rejectionOf(ConnectPromise.getToken("p/half-configured", params))
    )
    expect(noToken).toBeInstanceOf(ConnectPromise.ConfigurationError)
    expect(noToken).toHaveProperty("message", expect.stringContaining("set CONNECT_TOKEN"))
    const badUrl = await rejectionOf(
      ConnectPromise.getToken("p/half-configured", params, { baseUrl: "not a url", token: "k" })
    )
    expect(badUrl).toBeInstanceOf(ConnectPromise.ConfigurationError)
    expect(badUrl).toHaveProperty("message", expect.stringContaining("not an absolute URL"))
    expect(requestsFor("p/half-configured")).toHaveLength(0)
  })
})

// ---------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------

type ErrorClass = abstract new (...args: never[]) => Error

interface WireErrorCase {
  readonly code: string
  readonly status: number
  readonly name: string
  readonly Class: ErrorClass
  /** The `...Error` alias exported by the Promise module, where there is one. */
  readonly Alias: ErrorClass
  readonly headers?: Readonly<Record<string, string>>
  readonly extra?: Readonly<Record<string, unknown>>
  /** Fields the error must carry. */
  readonly expected: Readonly<Record<string, unknown>>
}

const wireErrorCases: ReadonlyArray<WireErrorCase> = [
  {
    code: "user_authorization_required",
    status: 403,
    name: "UserAuthorizationRequired",
    Class: ConnectPromise.UserAuthorizationRequired,
    Alias: ConnectPromise.UserAuthorizationRequiredError,
    extra: { authorizeUrl: "https://connect.example/authorize/x" },
    expected: { authorizeUrl: "https://connect.example/authorize/x" }
  },
  {
    code: "connector_installation_required",
    status: 403,
    name: "ConnectorInstallationRequired",
    Class: ConnectPromise.ConnectorInstallationRequired,
    Alias: ConnectPromise.ConnectorInstallationRequiredError,
    extra: { installUrl: "https://connect.example/install/x" },
    expected: { installUrl: "https://connect.example/install/x" }
  },
  {
    code: "client_installation_required",
    status: 403,
    name: "ConnectorInstallationRequired",
    Class: ConnectPromise.ConnectorInstallationRequired,
    Alias: ConnectPromise.ConnectorInstallationRequiredError,
    expected: {}
  },
  {
    code: "no_token",
    status: 409,
    name: "NoValidToken",
    Class: ConnectPromise.NoValidToken,
    Alias: ConnectPromise.NoValidTokenError,
    expected: {}
  },
  {
    code: "client_not_linked_to_project",
    status: 403,
    name: "ClientNotLinkedToProject",
    Class: ConnectPromise.ClientNotLinkedToProject,
    Alias: ConnectPromise.ClientNotLinkedToProjectError,
    expected: {}
  },
  {
    code: "client_not_enabled_for_environment",
    status: 403,
    name: "ClientNotEnabledForEnvironment",
    Class: ConnectPromise.ClientNotEnabledForEnvironment,
    Alias: ConnectPromise.ClientNotEnabledForEnvironmentError,
    expected: {}
  },
  {
    code: "not_found",
    status: 404,
    name: "ConnectorNotFound",
    Class: ConnectPromise.ConnectorNotFound,
    Alias: ConnectPromise.ConnectorNotFoundError,
    expected: {}
  },
  {
    code: "unauthorized",
    status: 401,
    name: "Unauthorized",
    Class: ConnectPromise.Unauthorized,
    Alias: ConnectPromise.Unauthorized,
    expected: {}
  },
  {
    // A Retry-After longer than the client waits for: answered at once, not retried.
    code: "rate_limited",
    status: 429,
    name: "RateLimited",
    Class: ConnectPromise.RateLimited,
    Alias: ConnectPromise.RateLimited,
    headers: { "retry-after": "3600" },
    expected: { retryAfterMs: 3_600_000 }
  },
  {
    code: "bad_request",
    status: 400,
    name: "InvalidRequest",
    Class: ConnectPromise.InvalidRequest,
    Alias: ConnectPromise.InvalidRequest,
    extra: { field: "scopes" },
    expected: { issues: [{ path: "scopes", message: "the server says bad_request" }] }
  },
  {
    code: "provider_error",
    status: 502,
    name: "ProviderError",
    Class: ConnectPromise.ProviderError,
    Alias: ConnectPromise.ProviderError,
    extra: { providerCode: "invalid_client" },
    expected: { providerCode: "invalid_client" }
  },
  {
    code: "quota_exceeded",
    status: 402,
    name: "UnknownConnectError",
    Class: ConnectPromise.UnknownConnectError,
    Alias: ConnectPromise.UnknownConnectError,
    expected: { code: "quota_exceeded" }
  }
]

describe("errors are instanceof their classes", () => {
  it.each(wireErrorCases)(
    "$status $code → $name",
    async ({ code, status, name, Class, Alias, headers, extra, expected }) => {
      const connector = `e/${code}`
      const message = `the server says ${code}`
      scripts.set(
        connector,
        sequence({
          status,
          body: { error: { code, message, ...extra } },
          ...(headers === undefined ? {} : { headers })
        })
      )
      const params = { subject: { type: "user", id: "u_err" } } as const
      const fromPromise = await rejectionOf(ConnectPromise.getToken(connector, params, options()))
      expect(fromPromise).toBeInstanceOf(Class)
      expect(fromPromise).toBeInstanceOf(Alias)
      expect(fromPromise).toBeInstanceOf(Error)
      expect(fromPromise).toHaveProperty("_tag", name)
      expect(fromPromise).toHaveProperty("status", status)
      expect(fromPromise).toHaveProperty("connector", connector)
      expect(fromPromise).toHaveProperty("message", expect.stringContaining(message))
      expect(fromPromise).toMatchObject(expected)
      expect(ConnectPromise.isConnectError(fromPromise)).toBe(true)
      // Nothing was retried, and nothing was cached.
      expect(requestsFor(connector)).toHaveLength(1)
      await rejectionOf(ConnectPromise.getToken(connector, params, options()))
      expect(requestsFor(connector)).toHaveLength(2)

      const fromEffect = await effectFailure(Connect.getToken(connector, params))
      expect(requestsFor(connector)).toHaveLength(3)
      expectSameError(fromPromise, fromEffect)
    }
  )

  it("InvalidRequest: bad input is rejected without any request", async () => {
    const connector = "e/bad-input"
    const badUser = { subject: { type: "user", id: "" } } as const
    const fromPromise = await rejectionOf(ConnectPromise.getToken(connector, badUser, options()))
    expect(fromPromise).toBeInstanceOf(ConnectPromise.InvalidRequest)
    expect(fromPromise).toHaveProperty("message", expect.stringContaining("params.subject.id"))
    expectSameError(fromPromise, await effectFailure(Connect.getToken(connector, badUser)))

    const noConnector = await rejectionOf(ConnectPromise.getTokenResponse("", { subject: { type: "app" } }, options()))
    expect(noConnector).toBeInstanceOf(ConnectPromise.InvalidRequest)
    expect(noConnector).toHaveProperty("issues", [expect.objectContaining({ path: "connector" })])
    expectSameError(noConnector, await effectFailure(Connect.getTokenResponse("", { subject: { type: "app" } })))

    const badBuffer = { subject: { type: "app" }, validityBufferMs: -1 } as const
    const negative = await rejectionOf(ConnectPromise.getToken(connector, badBuffer, options()))
    expect(negative).toBeInstanceOf(ConnectPromise.InvalidRequest)
    expect(negative).toHaveProperty("message", expect.stringContaining("params.validityBufferMs"))

    const badCallback = await rejectionOf(
      ConnectPromise.startAuthorization(
        connector,
        { subject: { type: "user", id: "u1" } },
        {
          ...options(),
          callbackUrl: "http://evil.example/callback"
        }
      )
    )
    expect(badCallback).toBeInstanceOf(ConnectPromise.InvalidRequest)
    expect(badCallback).toHaveProperty("message", expect.stringContaining("options.callbackUrl"))
    expectSameError(
      badCallback,
      await effectFailure(
        Connect.startAuthorization(
          connector,
          { subject: { type: "user", id: "u1" } },
          { callbackUrl: "http://evil.example/callback" }
        )
      )
    )
    expect(requestsFor(connector)).toHaveLength(0)
  })

  it("InvalidResponse: a malformed 200 body is rejected and not cached", async () => {
    const notJson = "e/not-json"
    scripts.set(notJson, sequence({ status: 200, raw: "<html>oops</html>" }))
    const params = { subject: { type: "app" } } as const
    const fromPromise = await rejectionOf(ConnectPromise.getToken(notJson, params, options()))
    expect(fromPromise).toBeInstanceOf(ConnectPromise.InvalidResponse)
    expect(fromPromise).toMatchObject({ status: 200, url: baseUrl })
    expect(fromPromise).toHaveProperty("reason", expect.stringContaining("not JSON"))
    expectSameError(fromPromise, await effectFailure(Connect.getToken(notJson, params)))

    const missingToken = "e/missing-token"
    scripts.set(missingToken, sequence({ status: 200, body: { tokenId: "stk_1", expiresAt: "soon" } }))
    const invalid = await rejectionOf(ConnectPromise.getTokenResponse(missingToken, params, options()))
    expect(invalid).toBeInstanceOf(ConnectPromise.InvalidResponse)
    expect(invalid).toHaveProperty("reason", expect.stringContaining("token"))
    await rejectionOf(ConnectPromise.getTokenResponse(missingToken, params, options()))
    expect(requestsFor(missingToken)).toHaveLength(2)
    expectSameError(invalid, await effectFailure(Connect.getTokenResponse(missingToken, params)))
  })

  it("ServiceUnavailable: nothing listens on the port", async () => {
    const params = { subject: { type: "app" } } as const
    // Both retry with backoff in real time: run them side by side.
    const [fromPromise, fromEffect] = await Promise.all([
      rejectionOf(ConnectPromise.getToken("e/closed", params, { baseUrl: closedUrl, token: CALLER_TOKEN })),
      effectFailure(Connect.getToken("e/closed", params), closedUrl)
    ])
    expect(fromPromise).toBeInstanceOf(ConnectPromise.ServiceUnavailable)
    expect(fromPromise).toMatchObject({ url: closedUrl, attempts: 4 })
    expect(fromPromise).toHaveProperty("message", expect.stringContaining(closedUrl))
    expectSameError(fromPromise, fromEffect)
  })
})
