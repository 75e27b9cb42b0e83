/**
 * The broker against a scripted provider: a plain HTTP server that records
 * every request it gets and answers as each test tells it to. Each test checks
 * both sides: what the broker answers its caller, and what it sent the provider.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http"
import type { AddressInfo } from "node:net"
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { type RunningBroker, startBroker } from "./support/broker.js"
import { sqlite, type TestDatabase } from "./support/databases.js"

const KEY = "ck_providers_key_5130"
const OTHER_KEY = "ck_providers_other_key_8264"
const CLIENT_ID = "broker client"
/** Characters that HTTP Basic must form-encode (RFC 6749 section 2.3.1). */
const CLIENT_SECRET = "cs:scripted+secret/4471"

// ---------------------------------------------------------------------------------------------------------------
// The scripted provider
// ---------------------------------------------------------------------------------------------------------------

/** One request as the provider received it. */
interface Received {
  readonly method: string
  readonly path: string
  readonly authorization: string | undefined
  /** The client id and secret of an HTTP Basic `authorization`, form-decoded. */
  readonly basic: { readonly clientId: string; readonly clientSecret: string } | undefined
  readonly form: URLSearchParams
}

/** What the provider answers: a JSON body, a raw text body, or nothing. */
interface Reply {
  readonly status: number
  readonly json?: unknown
  readonly text?: string
  readonly headers?: Readonly<Record<string, string>>
}

/** Answers the `n`th request (from 0) to a path. */
type Handler = (request: Received, n: number) => Reply

interface ScriptedProvider {
  readonly url: string
  /** Sets how a path answers; an unscripted path issues a fresh token each time. */
  readonly on: (path: string, handler: Handler) => void
  /** Answers a path with these replies in turn, the last one for every request after. */
  readonly replies: (path: string, ...replies: ReadonlyArray<Reply>) => void
  /** The requests received at a path, oldest first. */
  readonly received: (path: string) => ReadonlyArray<Received>
  /** The requests received at paths under a prefix. */
  readonly under: (prefix: string) => ReadonlyArray<Received>
  readonly close: () => Promise<void>
}

let issued = 0

/** A fresh access token, with the token response's other members as given. */
const tokenReply = (fields: Readonly<Record<string, unknown>> = {}): Reply => ({
  status: 200,
  json: { access_token: `at_scripted_${++issued}`, token_type: "Bearer", expires_in: 3600, ...fields }
})

const formDecode = (text: string): string => decodeURIComponent(text.replace(/\+/g, " "))

const basicOf = (header: string | undefined): Received["basic"] => {
  const match = header === undefined ? null : /^Basic\s+(\S+)$/i.exec(header)
  if (match === null || match[1] === undefined) return undefined
  const decoded = Buffer.from(match[1], "base64").toString("utf8")
  const colon = decoded.indexOf(":")
  if (colon < 0) return undefined
  return { clientId: formDecode(decoded.slice(0, colon)), clientSecret: formDecode(decoded.slice(colon + 1)) }
}

const startScriptedProvider = async (): Promise<ScriptedProvider> => {
  const log: Array<Received> = []
  const handlers = new Map<string, Handler>()
  const respond = (response: ServerResponse, reply: Reply) => {
    const body = reply.json === undefined ? (reply.text ?? "") : JSON.stringify(reply.json)
    response.writeHead(reply.status, {
      ...(reply.json === undefined ? {} : { "content-type": "application/json" }),
      ...reply.headers
    })
    response.end(body)
  }
  const server: Server = createServer((request: IncomingMessage, response: ServerResponse) => {
    const chunks: Array<Buffer> = []
    request.on("data", (chunk: Buffer) => chunks.push(chunk))
    request.on("end", () => {
      const path = (request.url ?? "").split("?")[0] ?? ""
      const received: Received = {
        method: request.method ?? "",
        path,
        authorization: request.headers.authorization,
        basic: basicOf(request.headers.authorization),
        form: new URLSearchParams(Buffer.concat(chunks).toString("utf8"))
      }
      const n = log.filter((r) => r.path === path).length
      log.push(received)
      const handler = handlers.get(path)
      respond(response, handler === undefined ? tokenReply() : handler(received, n))
    })
  })
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
  const { port } = server.address() as AddressInfo
  return {
    url: `http://127.0.0.1:${port}`,
    on: (path, handler) => {
      handlers.set(path, handler)
    },
    replies: (path, ...replies) => {
      handlers.set(path, (_request, n) => {
        const reply = replies[Math.min(n, replies.length - 1)]
        if (reply === undefined) throw new Error(`no reply scripted for ${path}`)
        return reply
      })
    },
    received: (path) => log.filter((r) => r.path === path),
    under: (prefix) => log.filter((r) => r.path.startsWith(prefix)),
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections()
        server.close(() => resolve())
      })
  }
}

// ---------------------------------------------------------------------------------------------------------------
// The broker
// ---------------------------------------------------------------------------------------------------------------

/** A connector whose token endpoint is `/{name}/token` at the provider, with its uid `scripted/{name}`. */
const connector = (provider: ScriptedProvider, name: string, extra: Readonly<Record<string, unknown>> = {}) => ({
  uid: `scripted/${name}`,
  name: `Scripted ${name}`,
  type: "oauth",
  clientId: CLIENT_ID,
  clientSecret: { env: "SCRIPTED_CLIENT_SECRET" },
  tokenEndpoint: `${provider.url}/${name}/token`,
  ...extra
})

const configFor = (provider: ScriptedProvider) => {
  const connectors = [
    connector(provider, "installations", {
      installations: {
        required: true,
        items: [
          { id: "T1", tenantId: "acme-eu", default: true, tokenEndpoint: `${provider.url}/{tenantId}/token` },
          { id: "T2", tenantId: "acme-us", tokenEndpoint: `${provider.url}/{tenantId}/token` }
        ]
      }
    }),
    connector(provider, "tenant-encoding", {
      installations: {
        items: [{ id: "T1", tenantId: "acme eu?x#1", tokenEndpoint: `${provider.url}/tenants/{tenantId}/token` }]
      }
    }),
    connector(provider, "cross", {
      installations: {
        required: true,
        crossInstallation: true,
        items: [
          { id: "T1", tenantId: "acme-eu", default: true, tokenEndpoint: `${provider.url}/cross/{tenantId}/token` }
        ]
      }
    }),
    connector(provider, "scopes", { defaultScopes: { app: ["orders:read", "orders:write"], user: ["openid"] } }),
    connector(provider, "scopes-star", { defaultScopes: { app: ["orders:read", "orders:write"] } }),
    connector(provider, "post", { tokenEndpointAuthMethod: "client_secret_post" }),
    connector(provider, "no-expiry", { defaultTokenLifetimeSeconds: 120 }),
    connector(provider, "string-expiry"),
    connector(provider, "lower-case"),
    connector(provider, "ok-false"),
    connector(provider, "recovers"),
    connector(provider, "unavailable"),
    connector(provider, "invalid-client"),
    connector(provider, "revoke-none"),
    connector(provider, "revoke-failing", { revocationEndpoint: `${provider.url}/revoke-failing/revoke` }),
    connector(provider, "revoke-all", { revocationEndpoint: `${provider.url}/revoke-all/revoke` }),
    connector(provider, "reuse-long"),
    connector(provider, "reuse-short")
  ]
  return {
    connectors,
    projects: [
      { id: "prj_main", keys: [{ environment: "production", secret: KEY }] },
      { id: "prj_other", keys: [{ environment: "production", secret: OTHER_KEY }] }
    ],
    links: [
      ...connectors.map((c) => ({ connector: c.uid, project: "prj_main", environments: ["production"] })),
      { connector: "scripted/revoke-all", project: "prj_other", environments: ["production"] }
    ]
  }
}

/** The broker's answer, as the wire protocol shapes it. */
interface Answer {
  readonly status: number
  readonly body: {
    readonly token?: string
    readonly tokenId?: string
    readonly expiresAt?: number
    readonly installationId?: string
    readonly tenantId?: string
    readonly error?: {
      readonly code?: string
      readonly message?: string
      readonly issues?: ReadonlyArray<{ readonly path: string; readonly message: string }>
    }
  }
}

describe("the broker against a scripted provider", () => {
  let provider: ScriptedProvider
  let database: TestDatabase
  let broker: RunningBroker

  const call = async (method: string, path: string, body: unknown, key = KEY): Promise<Answer> => {
    const response = await fetch(`${broker.url}${path}`, {
      method,
      headers: { authorization: `Bearer ${key}`, "content-type": "application/json", accept: "application/json" },
      body: JSON.stringify(body)
    })
    const text = await response.text()
    return { status: response.status, body: text === "" ? {} : JSON.parse(text) }
  }
  /** `POST /v1/connect/token/scripted%2F{name}`. */
  const token = (name: string, body: unknown = { subject: { type: "app" } }, key = KEY) =>
    call("POST", `/v1/connect/token/${encodeURIComponent(`scripted/${name}`)}`, body, key)
  /** `DELETE /v1/connect/connectors/scripted%2F{name}/tokens`. */
  const revoke = (name: string, body: unknown, key = KEY) =>
    call("DELETE", `/v1/connect/connectors/${encodeURIComponent(`scripted/${name}`)}/tokens`, body, key)
  const APP = { subject: { type: "app" } } as const

  beforeAll(async () => {
    provider = await startScriptedProvider()
    database = sqlite()
    broker = await startBroker({
      database,
      config: configFor(provider),
      env: { SCRIPTED_CLIENT_SECRET: CLIENT_SECRET }
    })
  })
  afterAll(async () => {
    await broker?.close()
    await provider?.close()
    await database?.drop()
  })

  describe("installations", () => {
    it("sends a request to its installation's token endpoint, the default one when the caller names none", async () => {
      const byDefault = await token("installations")
      expect(byDefault).toMatchObject({ status: 200, body: { installationId: "T1", tenantId: "acme-eu" } })
      expect(provider.received("/acme-eu/token")).toHaveLength(1)

      const us = await token("installations", { ...APP, installationId: "T2" })
      expect(us).toMatchObject({ status: 200, body: { installationId: "T2", tenantId: "acme-us" } })
      expect(us.body.tokenId).not.toBe(byDefault.body.tokenId)
      const [toUs] = provider.received("/acme-us/token")
      expect(provider.received("/acme-us/token")).toHaveLength(1)
      expect(toUs?.method).toBe("POST")
      expect(toUs?.form.get("grant_type")).toBe("client_credentials")
      expect(toUs?.basic).toEqual({ clientId: CLIENT_ID, clientSecret: CLIENT_SECRET })

      // Naming the default installation is the same request as naming none.
      const named = await token("installations", { ...APP, installationId: "T1" })
      expect(named).toMatchObject({ status: 200, body: { installationId: "T1", tokenId: byDefault.body.tokenId } })
      expect(provider.received("/acme-eu/token")).toHaveLength(1)
      // The connector's own endpoint is never used while installations have their own.
      expect(provider.under("/installations/")).toEqual([])
    })

    it("refuses an unknown installation, and '*' on a connector without cross-installation tokens", async () => {
      const before = provider.under("/").length
      const unknown = await token("installations", { ...APP, installationId: "T9" })
      expect(unknown).toMatchObject({ status: 403, body: { error: { code: "connector_installation_required" } } })

      const star = await token("installations", { ...APP, installationId: "*" })
      expect(star).toMatchObject({ status: 400, body: { error: { code: "bad_request" } } })
      expect(star.body.error?.issues?.map((issue) => issue.path)).toEqual(["installationId"])
      expect(provider.under("/").length).toBe(before)
    })

    it("puts the tenant id into the endpoint's path as one percent-encoded segment (a slash is refused: see input.test.ts)", async () => {
      const answer = await token("tenant-encoding", { ...APP, installationId: "T1" })
      expect(answer).toMatchObject({ status: 200, body: { installationId: "T1", tenantId: "acme eu?x#1" } })
      // As the configuration's `tokenEndpointFor` builds it: never another path, nor a query.
      expect(provider.under("/tenants/").map((r) => r.path)).toEqual(["/tenants/acme%20eu%3Fx%231/token"])
    })

    it("sends a cross-installation request to the connector's own token endpoint", async () => {
      const cross = await token("cross", { ...APP, installationId: "*" })
      expect(cross.status).toBe(200)
      expect(cross.body.installationId).toBeUndefined()
      expect(cross.body.tenantId).toBeUndefined()
      expect(provider.received("/cross/token")).toHaveLength(1)
      expect(provider.received("/cross/acme-eu/token")).toEqual([])
    })
  })

  describe("scopes, targets and client authentication", () => {
    it("sends the connector's app scopes when the caller names none, or names '*'", async () => {
      // Other tests ask this connector too: only the requests of this one.
      const before = provider.received("/scopes/token").length
      const omitted = await token("scopes")
      expect(omitted.status).toBe(200)
      const [first] = provider.received("/scopes/token").slice(before)
      expect(first?.form.get("scope")).toBe("orders:read orders:write")
      expect(first?.form.getAll("resource")).toEqual([])
      expect(first?.form.has("audience")).toBe(false)
      expect(first?.form.has("authorization_details")).toBe(false)
      // '*' is the same request: answered from the store.
      const sameAsOmitted = await token("scopes", { ...APP, scopes: ["*"] })
      expect(sameAsOmitted.body.tokenId).toBe(omitted.body.tokenId)
      expect(provider.received("/scopes/token")).toHaveLength(before + 1)

      expect((await token("scopes-star", { ...APP, scopes: ["*"] })).status).toBe(200)
      expect(provider.received("/scopes-star/token").map((r) => r.form.get("scope"))).toEqual([
        "orders:read orders:write"
      ])
    })

    it("sends explicit scopes, resources, audiences and authorization details as given", async () => {
      const details = [
        { type: "account_access", accounts: ["acc_1", "acc_2"], actions: ["read"] },
        { type: "payment_initiation", limit: { amount: "10.00", currency: "EUR" } }
      ]
      const answer = await token("scopes", {
        ...APP,
        scopes: ["orders:admin", "billing:read"],
        resources: ["https://api.test/orders", "https://api.test/billing"],
        audience: ["orders-service", "billing-service"],
        authorizationDetails: details
      })
      expect(answer.status).toBe(200)
      const sent = provider.received("/scopes/token").at(-1)
      expect(sent?.form.get("grant_type")).toBe("client_credentials")
      expect(sent?.form.get("scope")).toBe("orders:admin billing:read")
      expect(sent?.form.getAll("scope")).toHaveLength(1)
      expect(sent?.form.getAll("resource")).toEqual(["https://api.test/orders", "https://api.test/billing"])
      expect(sent?.form.getAll("audience")).toEqual(["orders-service", "billing-service"])
      expect(JSON.parse(sent?.form.get("authorization_details") ?? "null")).toEqual(details)
    })

    it("authenticates with HTTP Basic by default, form-encoding the id and secret", async () => {
      await token("scopes", { ...APP, scopes: ["basic:check"] })
      const sent = provider.received("/scopes/token").at(-1)
      expect(sent?.basic).toEqual({ clientId: CLIENT_ID, clientSecret: CLIENT_SECRET })
      expect(sent?.authorization).toBe(
        `Basic ${Buffer.from("broker+client:cs%3Ascripted%2Bsecret%2F4471").toString("base64")}`
      )
      expect(sent?.form.has("client_id")).toBe(false)
      expect(sent?.form.has("client_secret")).toBe(false)
    })

    it("authenticates in the form body with client_secret_post", async () => {
      expect((await token("post")).status).toBe(200)
      const [sent] = provider.received("/post/token")
      expect(sent?.authorization).toBeUndefined()
      expect(sent?.form.get("client_id")).toBe(CLIENT_ID)
      expect(sent?.form.get("client_secret")).toBe(CLIENT_SECRET)
      expect(sent?.form.get("grant_type")).toBe("client_credentials")
    })
  })

  describe("provider quirks", () => {
    it("gives a token without expires_in the connector's default lifetime", async () => {
      provider.replies("/no-expiry/token", {
        status: 200,
        json: { access_token: "at_no_expiry", token_type: "Bearer" }
      })
      const before = Date.now()
      const answer = await token("no-expiry")
      const after = Date.now()
      expect(answer).toMatchObject({ status: 200, body: { token: "at_no_expiry" } })
      expect(answer.body.expiresAt).toBeGreaterThanOrEqual(before + 120_000)
      expect(answer.body.expiresAt).toBeLessThanOrEqual(after + 120_000)
    })

    it("reads expires_in sent as a string", async () => {
      provider.replies("/string-expiry/token", {
        status: 200,
        json: { access_token: "at_string_expiry", token_type: "Bearer", expires_in: "3599" }
      })
      const before = Date.now()
      const answer = await token("string-expiry")
      const after = Date.now()
      expect(answer).toMatchObject({ status: 200, body: { token: "at_string_expiry" } })
      expect(answer.body.expiresAt).toBeGreaterThanOrEqual(before + 3_599_000)
      expect(answer.body.expiresAt).toBeLessThanOrEqual(after + 3_599_000)
    })

    it("accepts token_type in lower case", async () => {
      provider.replies("/lower-case/token", {
        status: 200,
        json: { access_token: "at_lower_case", token_type: "bearer", expires_in: 3600 }
      })
      expect(await token("lower-case")).toMatchObject({ status: 200, body: { token: "at_lower_case" } })
    })

    it("takes HTTP 200 with ok: false for an error, and stores nothing", async () => {
      provider.replies("/ok-false/token", { status: 200, json: { ok: false, error: "invalid_auth" } })
      const first = await token("ok-false")
      expect(first).toMatchObject({ status: 502, body: { error: { code: "provider_error" } } })
      expect(first.body.token).toBeUndefined()
      const second = await token("ok-false")
      expect(second).toMatchObject({ status: 502, body: { error: { code: "provider_error" } } })
      // Nothing was stored: the provider is asked again, and only once each time (no retries).
      expect(provider.received("/ok-false/token")).toHaveLength(2)
    })

    it("retries an empty 500 and a 503, and answers with the token of the third attempt", async () => {
      provider.replies(
        "/recovers/token",
        { status: 500, text: "" },
        { status: 503, text: "Service Unavailable", headers: { "content-type": "text/plain" } },
        { status: 200, json: { access_token: "at_third_time", token_type: "Bearer", expires_in: 3600 } }
      )
      expect(await token("recovers")).toMatchObject({ status: 200, body: { token: "at_third_time" } })
      const sent = provider.received("/recovers/token")
      expect(sent).toHaveLength(3)
      // Every attempt is the same request.
      expect(new Set(sent.map((r) => `${r.authorization} ${r.form.toString()}`)).size).toBe(1)
    })

    it("answers 502 provider_unavailable after the retries of a provider that stays unavailable", async () => {
      provider.replies("/unavailable/token", { status: 503, json: { error: "temporarily_unavailable" } })
      const answer = await token("unavailable")
      expect(answer).toMatchObject({ status: 502, body: { error: { code: "provider_unavailable" } } })
      expect(provider.received("/unavailable/token")).toHaveLength(3)
    })

    it("answers 502 provider_error for invalid_client, without the client secret", async () => {
      provider.replies("/invalid-client/token", {
        status: 400,
        json: { error: "invalid_client", error_description: `client secret ${CLIENT_SECRET} is not valid` }
      })
      const answer = await token("invalid-client")
      expect(answer).toMatchObject({ status: 502, body: { error: { code: "provider_error" } } })
      expect(answer.body.error?.message).toEqual(expect.any(String))
      expect(JSON.stringify(answer.body)).not.toContain(CLIENT_SECRET)
      expect(provider.received("/invalid-client/token")).toHaveLength(1)
    })
  })

  describe("revocation", () => {
    it("deletes the tokens of a connector without a revocation endpoint, and asks the provider for a new one", async () => {
      const first = await token("revoke-none")
      expect(first.status).toBe(200)
      const summary = await revoke("revoke-none", APP)
      expect(summary).toEqual({
        status: 200,
        body: { tokensFound: 1, deleted: 1, providerRevoked: 0, providerSkipped: 1, providerFailed: 0 }
      })
      // The provider heard of nothing but the token request.
      expect(provider.under("/revoke-none/").map((r) => r.path)).toEqual(["/revoke-none/token"])
      expect(provider.under("/").filter((r) => r.form.get("token") === first.body.token)).toEqual([])

      const next = await token("revoke-none")
      expect(next.status).toBe(200)
      expect(next.body.tokenId).not.toBe(first.body.tokenId)
      expect(next.body.token).not.toBe(first.body.token)
      expect(provider.received("/revoke-none/token")).toHaveLength(2)
    })

    it("counts a revocation the provider failed, and still hands out the token no more", async () => {
      provider.replies("/revoke-failing/revoke", { status: 503, text: "" })
      const first = await token("revoke-failing")
      expect(first.status).toBe(200)
      const summary = await revoke("revoke-failing", APP)
      expect(summary).toEqual({
        status: 200,
        body: { tokensFound: 1, deleted: 1, providerRevoked: 0, providerSkipped: 0, providerFailed: 1 }
      })
      const attempts = provider.received("/revoke-failing/revoke")
      expect(attempts).toHaveLength(3)
      for (const attempt of attempts) {
        expect(attempt.form.get("token")).toBe(first.body.token)
        expect(attempt.form.get("token_type_hint")).toBe("access_token")
        expect(attempt.basic).toEqual({ clientId: CLIENT_ID, clientSecret: CLIENT_SECRET })
      }

      const next = await token("revoke-failing")
      expect(next.status).toBe(200)
      expect(next.body.tokenId).not.toBe(first.body.tokenId)
      expect(provider.received("/revoke-failing/token")).toHaveLength(2)
    })

    it("revokes every token of the connector for the caller's project, and no other project's", async () => {
      provider.replies("/revoke-all/revoke", { status: 200, text: "" })
      const others = await token("revoke-all", APP, OTHER_KEY)
      const app = await token("revoke-all")
      const scoped = await token("revoke-all", { ...APP, scopes: ["reports:read"] })
      expect([others.status, app.status, scoped.status]).toEqual([200, 200, 200])
      expect(new Set([others.body.tokenId, app.body.tokenId, scoped.body.tokenId]).size).toBe(3)
      expect(provider.received("/revoke-all/token")).toHaveLength(3)

      const summary = await revoke("revoke-all", {})
      expect(summary).toEqual({
        status: 200,
        body: { tokensFound: 2, deleted: 2, providerRevoked: 2, providerSkipped: 0, providerFailed: 0 }
      })
      expect(
        provider
          .received("/revoke-all/revoke")
          .map((r) => r.form.get("token"))
          .sort()
      ).toEqual([app.body.token, scoped.body.token].sort())

      // The other project's token is still handed out, from the store.
      const othersAgain = await token("revoke-all", APP, OTHER_KEY)
      expect(othersAgain).toMatchObject({ status: 200, body: { tokenId: others.body.tokenId } })
      expect(provider.received("/revoke-all/token")).toHaveLength(3)
      // The caller's are not.
      const appAgain = await token("revoke-all")
      expect(appAgain.status).toBe(200)
      expect(appAgain.body.tokenId).not.toBe(app.body.tokenId)
      expect(provider.received("/revoke-all/token")).toHaveLength(4)
    })
  })

  describe("reuse", () => {
    it("answers a second identical request from its store while the token is far from expiry", async () => {
      provider.on("/reuse-long/token", () => tokenReply({ expires_in: 3600 }))
      const first = await token("reuse-long")
      const second = await token("reuse-long")
      expect(first.status).toBe(200)
      expect(second).toEqual(first)
      expect(provider.received("/reuse-long/token")).toHaveLength(1)
    })

    it("reuses a short-lived token while more than half its life is left", async () => {
      // 40 seconds: less than the 60-second reuse buffer, so only the half-life rule lets it be reused.
      provider.on("/reuse-short/token", () => tokenReply({ expires_in: 40 }))
      const first = await token("reuse-short")
      const second = await token("reuse-short")
      expect(first.status).toBe(200)
      expect(second).toEqual(first)
      expect(provider.received("/reuse-short/token")).toHaveLength(1)
    })
  })
})
