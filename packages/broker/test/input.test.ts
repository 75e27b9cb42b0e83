/**
 * Bad input, on every endpoint that takes a body: the broker answers a typed
 * 4xx in the protocol's envelope, naming what was wrong (an unknown field, a
 * body over the size limit, JSON nested too deep, an id too long), never a 5xx
 * or an empty answer, and acts on nothing it refused.
 */
import { request as httpRequest } from "node:http"
import { ConfigProvider, Effect, Either } from "effect"
import fc from "fast-check"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import * as ConfigFile from "../src/ConfigFile.js"
import { type RunningBroker, startBroker } from "./support/broker.js"
import { backends, type TestDatabase } from "./support/databases.js"
import { type OAuthProviderHarness, startOAuthProvider } from "./support/oauthProvider.js"

const ADMIN_TOKEN = "adm_input_token_5521_that_stays_secret"
const KEY = "key_input_production_0123456789"
/** A small limit, so that over-limit bodies stay cheap to send. */
const LIMIT = 65_536

interface Answer {
  readonly status: number
  readonly text: string
  // biome-ignore lint/suspicious/noExplicitAny: test answers are read loosely.
  readonly body: any
}

const send = async (
  broker: RunningBroker,
  method: string,
  path: string,
  token: string,
  body: string | undefined
): Promise<Answer> => {
  const response = await fetch(`${broker.url}${path}`, {
    method,
    headers: { "content-type": "application/json", authorization: `Bearer ${token}` },
    ...(body === undefined ? {} : { body })
  })
  const text = await response.text()
  let parsed: unknown
  try {
    parsed = text === "" ? undefined : JSON.parse(text)
  } catch {
    parsed = undefined
  }
  return { status: response.status, text, body: parsed }
}

const UID = "acme/api"
const CONNECTOR = encodeURIComponent(UID)

/** Every endpoint that takes a body, with the credential it needs and the fields it knows. */
const endpoints = [
  { method: "POST", path: `/v1/connect/token/${CONNECTOR}`, token: KEY, fields: ["subject", "scopes", "resources"] },
  { method: "POST", path: `/v1/connect/token/${CONNECTOR}/import`, token: KEY, fields: ["tokens"] },
  { method: "DELETE", path: `/v1/connect/connectors/${CONNECTOR}/tokens`, token: KEY, fields: ["subject"] },
  { method: "POST", path: `/v1/connect/authorize/${CONNECTOR}`, token: KEY, fields: ["subject", "returnUrl"] },
  { method: "POST", path: `/v1/connect/install/${CONNECTOR}`, token: KEY, fields: ["tenantId", "returnUrl"] },
  { method: "POST", path: "/v1/connect/authorize/req_unknown/status", token: KEY, fields: ["verifier"] },
  { method: "POST", path: "/v1/admin/connectors", token: ADMIN_TOKEN, fields: ["uid", "name", "tokenEndpoint"] },
  {
    method: "PUT",
    path: `/v1/admin/connectors/${CONNECTOR}/links/prj_input`,
    token: ADMIN_TOKEN,
    fields: ["environments"]
  },
  {
    method: "DELETE",
    path: `/v1/admin/connectors/${CONNECTOR}/links/prj_input`,
    token: ADMIN_TOKEN,
    fields: ["environments"]
  },
  { method: "POST", path: "/v1/admin/projects", token: ADMIN_TOKEN, fields: ["id", "name", "returnUrls"] },
  { method: "POST", path: "/v1/admin/projects/prj_input/keys", token: ADMIN_TOKEN, fields: ["environment"] }
] as const

const deep = (levels: number) => `${"[".repeat(levels)}${"]".repeat(levels)}`
const deepObject = (levels: number) => `${'{"a":'.repeat(levels)}1${"}".repeat(levels)}`

/** Bodies no endpoint may accept, given the fields it knows. */
const badBody = (fields: ReadonlyArray<string>): fc.Arbitrary<string> =>
  fc.oneof(
    // Truncated JSON.
    fc
      .tuple(fc.json({ maxDepth: 3 }), fc.nat())
      .map(([text, cut]) => text.slice(0, 1 + (cut % Math.max(1, text.length - 1))))
      .filter((text) => {
        try {
          JSON.parse(text)
          return false
        } catch {
          return text.trim() !== ""
        }
      }),
    // Not an object.
    fc
      .oneof(fc.integer(), fc.string(), fc.boolean(), fc.constant(null), fc.array(fc.jsonValue({ maxDepth: 2 })))
      .map((value) => JSON.stringify(value)),
    // A known field of the wrong type.
    fc
      .tuple(fc.constantFrom(...fields), fc.oneof(fc.integer(), fc.boolean(), fc.constant(null), fc.constant([42])))
      .map(([field, value]) => JSON.stringify({ [field]: value })),
    // An unknown field.
    fc
      .tuple(
        fc.string({ minLength: 1, maxLength: 12 }).filter((key) => !fields.includes(key) && key !== "__proto__"),
        fc.jsonValue({ maxDepth: 2 })
      )
      .map(([key, value]) => JSON.stringify({ [key]: value })),
    // Deep nesting.
    fc.integer({ min: 33, max: 3000 }).chain((levels) => fc.constantFrom(deep(levels), deepObject(levels))),
    // A huge body (over the limit), and a huge string in a known field.
    fc
      .integer({ min: LIMIT + 1, max: LIMIT * 3 })
      .map((size) => JSON.stringify({ [fields[0] ?? "x"]: "x".repeat(size) })),
    fc
      .tuple(fc.constantFrom(...fields), fc.integer({ min: 257, max: 20_000 }))
      .map(([field, size]) => JSON.stringify({ [field]: "y".repeat(size) }))
  )

/** Sends a body by chunks, never ending it: the answer must come while the body is still arriving. */
const sendEndless = (url: string, token: string): Promise<{ status: number; text: string; sent: number }> =>
  new Promise((resolve, reject) => {
    const target = new URL(url)
    let sent = 0
    let answered = false
    const chunk = Buffer.alloc(16_384, "a")
    const request = httpRequest(
      {
        method: "POST",
        host: target.hostname,
        port: target.port,
        path: target.pathname,
        headers: {
          authorization: `Bearer ${token}`,
          "content-type": "application/json"
        }
      },
      (response) => {
        answered = true
        let text = ""
        response.on("data", (data: Buffer) => {
          text += data.toString("utf8")
        })
        response.on("end", () => {
          request.destroy()
          resolve({ status: response.statusCode ?? 0, text, sent })
        })
      }
    )
    request.on("error", (error) => {
      if (!answered) reject(error)
    })
    request.write('{"subject":"')
    const pump = () => {
      while (!answered && sent < 256 * 1024 * 1024) {
        sent += chunk.length
        if (!request.write(chunk)) return void request.once("drain", pump)
      }
      if (!answered) reject(new Error(`no answer after ${sent} bytes`))
    }
    pump()
  })

describe.each(backends)("bad input, on $name", ({ make }) => {
  let provider: OAuthProviderHarness
  let database: TestDatabase
  let broker: RunningBroker

  beforeAll(async () => {
    provider = await startOAuthProvider({ clientCredentialsTtl: 3600 })
    database = await make()
    broker = await startBroker({
      database,
      env: { CONNECT_ADMIN_TOKEN: ADMIN_TOKEN, CONNECT_MAX_BODY_BYTES: String(LIMIT) },
      config: {
        connectors: [
          {
            uid: UID,
            name: "Acme",
            type: "oauth",
            clientId: provider.clients.broker.clientId,
            clientSecret: provider.clients.broker.clientSecret,
            tokenEndpoint: provider.tokenEndpoint,
            revocationEndpoint: provider.revocationEndpoint,
            authorizationEndpoint: provider.authorizationEndpoint,
            defaultScopes: { app: ["api:read"] }
          }
        ],
        projects: [{ id: "prj_input", keys: [{ environment: "production", secret: KEY }] }],
        links: [{ connector: UID, project: "prj_input", environments: ["production"] }]
      }
    })
  }, 60_000)
  afterAll(async () => {
    await broker?.close()
    await provider?.close()
    await database?.drop()
  })

  it("answers every bad body with a 4xx in the protocol's envelope, never a 5xx or an empty body", async () => {
    for (const endpoint of endpoints) {
      await fc.assert(
        fc.asyncProperty(badBody(endpoint.fields), async (body) => {
          const answer = await send(broker, endpoint.method, endpoint.path, endpoint.token, body)
          expect(answer.status, `${endpoint.method} ${endpoint.path} ${body.slice(0, 80)}`).toBeGreaterThanOrEqual(400)
          expect(answer.status, `${endpoint.method} ${endpoint.path} ${body.slice(0, 80)}`).toBeLessThan(500)
          expect(typeof answer.body?.error?.code, answer.text.slice(0, 200)).toBe("string")
        }),
        { numRuns: 12 }
      )
    }
  }, 120_000)

  it("refuses a misspelt field of a revocation, naming it, and revokes nothing", async () => {
    for (const resource of ["https://api.test/a", "https://api.test/b", "https://api.test/c"]) {
      const issued = await send(
        broker,
        "POST",
        `/v1/connect/token/${CONNECTOR}`,
        KEY,
        JSON.stringify({ subject: { type: "app" }, resources: [resource] })
      )
      expect(issued.status, issued.text).toBe(200)
    }
    const refused = await send(
      broker,
      "DELETE",
      `/v1/connect/connectors/${CONNECTOR}/tokens`,
      KEY,
      JSON.stringify({ subjet: { type: "user", id: "u1" } })
    )
    expect(refused.status).toBe(400)
    expect(refused.body.error.code).toBe("bad_request")
    expect(refused.body.error.issues).toEqual([
      { path: "subjet", message: "is not a known field (check its spelling)" }
    ])
    // Nothing was revoked: the three tokens are all still there to revoke.
    const revoked = await send(
      broker,
      "DELETE",
      `/v1/connect/connectors/${CONNECTOR}/tokens`,
      KEY,
      JSON.stringify({ subject: { type: "app" } })
    )
    expect(revoked.status, revoked.text).toBe(200)
    expect(revoked.body.tokensFound).toBe(3)
  })

  it("answers 413 payload_too_large to a Content-Length over the limit, before reading it", async () => {
    const answer = await send(broker, "POST", `/v1/connect/token/${CONNECTOR}`, KEY, "x".repeat(LIMIT + 1))
    expect(answer.status).toBe(413)
    expect(answer.body.error.code).toBe("payload_too_large")
    expect(answer.body.error.message).toContain(String(LIMIT))
    const admin = await send(broker, "POST", "/v1/admin/projects", ADMIN_TOKEN, "x".repeat(LIMIT + 1))
    expect(admin.status).toBe(413)
    // At the limit, the body is read (and refused for what it says).
    const atLimit = await send(broker, "POST", `/v1/connect/token/${CONNECTOR}`, KEY, `${" ".repeat(LIMIT - 2)}[]`)
    expect(atLimit.status).toBe(400)
  })

  it("answers 413 to a chunked body as soon as it passes the limit, while it is still arriving", async () => {
    const protocol = await sendEndless(`${broker.url}/v1/connect/token/${CONNECTOR}`, KEY)
    expect(protocol.status).toBe(413)
    expect(JSON.parse(protocol.text).error.code).toBe("payload_too_large")
    const admin = await sendEndless(`${broker.url}/v1/admin/connectors`, ADMIN_TOKEN)
    expect(admin.status).toBe(413)
  })

  it("answers 400 to 3,000 levels of nesting on each endpoint", async () => {
    for (const endpoint of endpoints) {
      for (const body of [deep(3000), deepObject(3000), `{"${endpoint.fields[0]}":${deepObject(3000)}}`]) {
        const answer = await send(broker, endpoint.method, endpoint.path, endpoint.token, body)
        expect(answer.status, `${endpoint.method} ${endpoint.path}`).toBe(400)
        expect(answer.body.error.code).toBe("bad_request")
        expect(answer.body.error.issues[0].message).toContain("deeper than 32 levels")
      }
    }
  })

  it("refuses ids and lists over their bounds, naming the field and the limit", async () => {
    const subject = await send(
      broker,
      "POST",
      `/v1/connect/authorize/${CONNECTOR}`,
      KEY,
      JSON.stringify({ subject: { type: "user", id: "u".repeat(1_000) } })
    )
    expect(subject.status).toBe(400)
    expect(subject.body.error.issues).toEqual([{ path: "subject.id", message: "Expected at most 256 characters" }])
    const scopes = await send(
      broker,
      "POST",
      `/v1/connect/token/${CONNECTOR}`,
      KEY,
      JSON.stringify({ subject: { type: "app" }, scopes: Array.from({ length: 101 }, (_, i) => `s${i}`) })
    )
    expect(scopes.status).toBe(400)
    expect(scopes.body.error.issues).toEqual([{ path: "scopes", message: "Expected at most 100 items" }])
    const tenant = await send(
      broker,
      "POST",
      `/v1/connect/install/${CONNECTOR}`,
      KEY,
      JSON.stringify({ tenantId: "t".repeat(257) })
    )
    expect(tenant.status).toBe(400)
    expect(tenant.body.error.issues).toEqual([
      { path: "tenantId", message: "Expected a tenant id of at most 256 characters" }
    ])
    for (const tenantId of ["..", ".", "a/b"]) {
      const dotted = await send(broker, "POST", `/v1/connect/install/${CONNECTOR}`, KEY, JSON.stringify({ tenantId }))
      expect(dotted.status).toBe(400)
      expect(dotted.body.error.issues.map((issue: { path: string }) => issue.path)).toEqual(["tenantId"])
    }
    const name = await send(
      broker,
      "POST",
      "/v1/admin/projects",
      ADMIN_TOKEN,
      JSON.stringify({ id: "prj_long", name: "n".repeat(257) })
    )
    expect(name.status).toBe(400)
    expect(name.body.error.issues).toEqual([{ path: "name", message: "Expected at most 256 characters" }])
  })

  it("reaches a connector by any uid it created (up to 256 characters), and refuses longer ones everywhere", async () => {
    const declaration = (uid: string) =>
      JSON.stringify({
        uid,
        name: "Long",
        type: "oauth",
        clientId: "client",
        clientSecret: "secret",
        tokenEndpoint: provider.tokenEndpoint
      })
    for (const length of [101, 200, 256]) {
      const uid = `long/${"é/".repeat(length)}`.slice(0, length)
      const created = await send(broker, "POST", "/v1/admin/connectors", ADMIN_TOKEN, declaration(uid))
      expect(created.status, created.text).toBe(201)
      const path = `/v1/admin/connectors/${encodeURIComponent(uid)}`
      const linked = await send(
        broker,
        "PUT",
        `${path}/links/prj_input`,
        ADMIN_TOKEN,
        '{"environments":["production"]}'
      )
      expect(linked.status, linked.text).toBe(200)
      const metadata = await send(broker, "GET", `/v1/connect/connectors/${encodeURIComponent(uid)}`, KEY, undefined)
      expect(metadata.status, metadata.text).toBe(200)
      expect(metadata.body.uid).toBe(uid)
      expect((await send(broker, "DELETE", path, ADMIN_TOKEN, undefined)).status).toBe(200)
    }
    const tooLong = `long/${"x".repeat(252)}`
    const refused = await send(broker, "POST", "/v1/admin/connectors", ADMIN_TOKEN, declaration(tooLong))
    expect(refused.status).toBe(400)
    expect(refused.body.error.issues.map((issue: { path: string }) => issue.path)).toEqual(["uid"])
    const route = await send(broker, "GET", `/v1/connect/connectors/${encodeURIComponent(tooLong)}`, KEY, undefined)
    expect(route.status).toBe(400)
    expect(route.body.error.issues[0].path).toBe("connector")
  })
  it("refuses a connector endpoint at a metadata address or over plain http through the admin API; loopback is accepted", async () => {
    const declaration = (uid: string, tokenEndpoint: string) =>
      JSON.stringify({ uid, name: "Meta", type: "oauth", clientId: "client", clientSecret: "secret", tokenEndpoint })
    for (const url of [
      "http://169.254.169.254/latest/meta-data/",
      "https://169.254.169.254/token",
      "http://example.com/token"
    ]) {
      const refused = await send(broker, "POST", "/v1/admin/connectors", ADMIN_TOKEN, declaration("acme/meta", url))
      expect(refused.status, url).toBe(400)
      expect(refused.body.error.issues.map((issue: { path: string }) => issue.path)).toEqual(["tokenEndpoint"])
    }
    const loopback = await send(
      broker,
      "POST",
      "/v1/admin/connectors",
      ADMIN_TOKEN,
      declaration("acme/loopback", "http://127.0.0.1:9/token")
    )
    expect(loopback.status, loopback.text).toBe(201)
  })
})

describe("tenant ids, as path segments", () => {
  it("are refused in the configuration file when not a single plain segment", async () => {
    for (const tenantId of ["..", ".", "a/b", "a\\b", "a\u0001b", "t".repeat(257)]) {
      const result = await Effect.runPromise(
        Effect.either(
          ConfigFile.decode({
            connectors: [
              {
                uid: "acme/tenants",
                name: "Acme",
                type: "oauth",
                clientId: "client",
                clientSecret: "secret",
                tokenEndpoint: "https://login.acme.test/token",
                installations: {
                  items: [{ id: "one", tenantId, tokenEndpoint: "https://login.acme.test/{tenantId}/token" }]
                }
              }
            ]
          })
        )
      )
      expect(Either.isLeft(result), JSON.stringify(tenantId)).toBe(true)
      if (Either.isLeft(result)) {
        expect(result.left.issues.map((issue) => issue.path)).toEqual(["connectors[0].installations.items[0].tenantId"])
      }
    }
  })

  it("never turn a tenant's token endpoint into another path", () => {
    const connector = { tokenEndpoint: "https://login.acme.test/token" }
    const template = "https://login.acme.test/tenants/{tenantId}/token"
    expect(ConfigFile.tokenEndpointFor(connector, { tokenEndpoint: template, tenantId: "contoso" })).toBe(
      "https://login.acme.test/tenants/contoso/token"
    )
    for (const tenantId of ["..", ".", "", "a/b"]) {
      expect(() => ConfigFile.tokenEndpointFor(connector, { id: "x", tokenEndpoint: template, tenantId })).toThrow(
        /token endpoint of installation x/
      )
    }
  })
})

describe("connector endpoints", () => {
  const connector = (endpoints: Record<string, unknown>) => ({
    uid: "acme/endpoints",
    name: "Acme",
    type: "oauth",
    clientId: "client",
    clientSecret: "secret",
    tokenEndpoint: "https://login.acme.test/token",
    ...endpoints
  })
  const load = (endpoints: Record<string, unknown>, env: Record<string, string> = {}) =>
    Effect.runPromise(
      Effect.either(ConfigFile.decode({ connectors: [connector(endpoints)] })).pipe(
        Effect.withConfigProvider(ConfigProvider.fromMap(new Map(Object.entries(env))))
      )
    )
  const refusedAt = async (endpoints: Record<string, unknown>, env: Record<string, string> = {}) => {
    const result = await load(endpoints, env)
    return Either.isLeft(result) ? result.left.issues.map((issue) => issue.path) : []
  }

  it("refuses link-local and metadata addresses, even over https, and plain http off loopback, at config load", async () => {
    for (const url of [
      "http://169.254.169.254/latest/meta-data/iam/security-credentials/role",
      "https://169.254.169.254/token",
      "https://[fe80::1]/token",
      "https://[fd00:ec2::254]/token",
      "https://metadata.google.internal/computeMetadata/v1/token",
      "https://[::ffff:169.254.169.254]/token",
      "http://2852039166/token",
      "http://example.com/token"
    ]) {
      expect(await refusedAt({ tokenEndpoint: url }), url).toEqual(["connectors[0].tokenEndpoint"])
    }
    expect(
      await refusedAt({
        revocationEndpoint: "http://example.com/revoke",
        installations: { items: [{ id: "one", tenantId: "t", tokenEndpoint: "https://169.254.1.1/{tenantId}/token" }] }
      })
    ).toEqual(["connectors[0].revocationEndpoint", "connectors[0].installations.items[0].tokenEndpoint"])
  })

  it("accepts loopback over http, and the hosts CONNECT_ALLOWED_HTTP_HOSTS lists", async () => {
    for (const url of [
      "http://127.0.0.1:8080/token",
      "http://127.1.2.3/token",
      "http://[::1]:9/token",
      "http://localhost/t"
    ]) {
      expect(await refusedAt({ tokenEndpoint: url }), url).toEqual([])
    }
    const env = { CONNECT_ALLOWED_HTTP_HOSTS: "idp.internal, Other.internal" }
    expect(await refusedAt({ tokenEndpoint: "http://idp.internal/token" }, env)).toEqual([])
    expect(await refusedAt({ tokenEndpoint: "http://other.internal/token" }, env)).toEqual([])
    expect(await refusedAt({ tokenEndpoint: "http://idp.internal/token" })).toEqual(["connectors[0].tokenEndpoint"])
    // An allow-listed host still cannot be a metadata address.
    expect(
      await refusedAt(
        { tokenEndpoint: "http://169.254.169.254/token" },
        { CONNECT_ALLOWED_HTTP_HOSTS: "169.254.169.254" }
      )
    ).toEqual(["connectors[0].tokenEndpoint"])
  })
})
