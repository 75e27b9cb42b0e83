import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { Effect, Redacted } from "effect"
import { getToken, getTokenResponse, revokeToken } from "effect-connect"
import { storedText } from "./support/atRest.js"
import { type RunningBroker, sdkClient, startBroker } from "./support/broker.js"
import { backends, sqlite, type TestDatabase } from "./support/databases.js"
import { type OAuthProviderHarness, startOAuthProvider } from "./support/oauthProvider.js"

const WEB_KEY = "ck_web_production_key_3381"
const PREVIEW_KEY = "ck_web_preview_key_7710"
const OTHER_KEY = "ck_other_project_key_0042"
const MOBILE_KEY = "ck_mobile_project_key_2290"
const RESOURCE = "https://api.test/orders"

const configFor = (provider: OAuthProviderHarness) => ({
  connectors: [
    {
      uid: "acme/api",
      name: "Acme API",
      type: "oauth",
      clientId: provider.clients.broker.clientId,
      clientSecret: { env: "ACME_CLIENT_SECRET" },
      tokenEndpoint: provider.tokenEndpoint,
      revocationEndpoint: provider.revocationEndpoint,
      defaultScopes: { app: ["api:read"], user: ["openid", "offline_access", "api:read"] }
    },
    {
      uid: "acme/default-installation",
      name: "Acme with a default installation",
      type: "oauth",
      clientId: provider.clients.broker.clientId,
      clientSecret: { env: "ACME_CLIENT_SECRET" },
      tokenEndpoint: provider.tokenEndpoint,
      defaultScopes: { user: ["openid", "offline_access", "api:read"] },
      installations: { items: [{ id: "inst_main", tenantId: "main", default: true }] }
    },
    {
      uid: "acme/tenants",
      name: "Acme per tenant",
      type: "oauth",
      clientId: provider.clients.broker.clientId,
      clientSecret: { env: "ACME_CLIENT_SECRET" },
      tokenEndpoint: provider.tokenEndpoint,
      installations: { required: true, items: [{ id: "inst_1", tenantId: "t1" }] }
    }
  ],
  projects: [
    {
      id: "prj_web",
      name: "Web",
      keys: [
        { environment: "production", secret: WEB_KEY },
        { environment: "preview", secret: PREVIEW_KEY }
      ]
    },
    { id: "prj_other", keys: [{ environment: "production", secret: OTHER_KEY }] },
    { id: "prj_mobile", keys: [{ environment: "production", secret: MOBILE_KEY }] }
  ],
  links: [
    { connector: "acme/api", project: "prj_web", environments: ["production"] },
    { connector: "acme/api", project: "prj_mobile", environments: ["production"] },
    { connector: "acme/tenants", project: "prj_web", environments: ["production"] },
    { connector: "acme/default-installation", project: "prj_web", environments: ["production"] }
  ]
})

/** A request to the broker as any HTTP client would make it. */
const call = async (broker: RunningBroker, method: string, path: string, key: string | undefined, body?: unknown) => {
  const response = await fetch(`${broker.url}${path}`, {
    method,
    headers: {
      accept: "application/json",
      "content-type": "application/json",
      ...(key === undefined ? {} : { authorization: `Bearer ${key}` })
    },
    ...(body === undefined ? {} : { body: JSON.stringify(body) })
  })
  const text = await response.text()
  return { status: response.status, headers: response.headers, body: text === "" ? undefined : JSON.parse(text) }
}

describe.each(backends)("the broker against a real OAuth server, on $name", ({ make }) => {
  let provider: OAuthProviderHarness
  let database: TestDatabase
  let broker: RunningBroker
  const client = (key: string) => sdkClient(broker, key)

  /**
   * A user who authorized the provider elsewhere: their refresh token, seeded at the provider, imported into the
   * broker with an already expired access token.
   */
  const importUser = async (
    id: string,
    options: { readonly connector?: string; readonly accessToken?: string } = {}
  ) => {
    const refreshToken = await provider.seedUserRefreshToken({ accountId: id, scope: "openid offline_access api:read" })
    const connector = encodeURIComponent(options.connector ?? "acme/api")
    const imported = await call(broker, "POST", `/v1/connect/token/${connector}/import`, WEB_KEY, {
      tokens: [
        {
          subject: { type: "user", id },
          accessToken: options.accessToken ?? "old",
          expiresAt: 1,
          refreshToken,
          environment: "production"
        }
      ]
    })
    return { refreshToken, imported }
  }

  beforeAll(async () => {
    provider = await startOAuthProvider({ accessTokenTtl: 30, clientCredentialsTtl: 3600 })
    database = await make()
    broker = await startBroker({
      database,
      config: configFor(provider),
      env: { ACME_CLIENT_SECRET: provider.clients.broker.clientSecret }
    })
  })
  afterAll(async () => {
    await broker?.close()
    await provider?.close()
    await database?.drop()
  })

  it("answers /healthz once the store is ready", async () => {
    expect(await call(broker, "GET", "/healthz", undefined)).toMatchObject({ status: 200, body: { status: "ok" } })
  })

  it.effect(
    "gets an app token for a resource through the SDK, and the provider says its audience is the resource",
    () =>
      Effect.gen(function* () {
        provider.tokenRequests.reset()
        const response = yield* getTokenResponse("acme/api", { subject: { type: "app" }, resources: [RESOURCE] })
        expect(response.connector.uid).toBe("acme/api")
        expect(response.tokenId).toMatch(/^stk_/)
        const introspection = yield* Effect.promise(() => provider.introspect(Redacted.value(response.token)))
        expect(introspection.active).toBe(true)
        expect(introspection.aud).toBe(RESOURCE)
        expect(introspection.scope).toBe("api:read")
        expect(provider.tokenRequests.count("client_credentials")).toBe(1)
      }).pipe(Effect.provide(client(WEB_KEY)))
  )

  it("hands out the stored token again instead of asking the provider", async () => {
    provider.tokenRequests.reset()
    const first = await call(broker, "POST", "/v1/connect/token/acme%2Fapi", WEB_KEY, {
      subject: { type: "app" },
      scopes: ["api:write"],
      resources: [RESOURCE]
    })
    const second = await call(broker, "POST", "/v1/connect/token/acme%2Fapi", WEB_KEY, {
      subject: { type: "app" },
      resources: [RESOURCE],
      scopes: ["api:write"]
    })
    expect(first.status).toBe(200)
    expect(second.body.tokenId).toBe(first.body.tokenId)
    expect(provider.tokenRequests.count("client_credentials")).toBe(1)
  })

  it("refreshes an imported user grant with rotation, twice in a row, and keeps the rotated refresh token", async () => {
    const { imported } = await importUser("ada", { accessToken: "expired-token" })
    expect(imported).toMatchObject({ status: 200, body: { imported: 1 } })
    provider.tokenRequests.reset()
    // Other tests revoke grants of their own: only this test's count.
    const revokedBefore = provider.revokedGrantIds.length
    // Three requests for different scopes need three refreshes of the one grant: each must use
    // the refresh token the previous one rotated in, or the provider revokes the whole grant.
    const tokens: Array<string> = []
    for (const scopes of [["openid"], ["api:read"], ["openid", "api:read"]]) {
      const response = await call(broker, "POST", "/v1/connect/token/acme%2Fapi", WEB_KEY, {
        subject: { type: "user", id: "ada" },
        scopes
      })
      expect(response.status).toBe(200)
      tokens.push(response.body.token)
    }
    expect(new Set(tokens).size).toBe(3)
    expect(provider.tokenRequests.log.filter((r) => r.grantType === "refresh_token").map((r) => r.status)).toEqual([
      200, 200, 200
    ])
    expect(provider.revokedGrantIds.slice(revokedBefore)).toEqual([])
    for (const token of tokens) expect((await provider.introspect(token)).active).toBe(true)
  })

  it("finds a grant imported without an installation when the connector has a default one", async () => {
    const { imported } = await importUser("barbara", { connector: "acme/default-installation" })
    expect(imported.status).toBe(200)
    const response = await call(broker, "POST", "/v1/connect/token/acme%2Fdefault-installation", WEB_KEY, {
      subject: { type: "user", id: "barbara" }
    })
    expect(response.status).toBe(200)
    expect(response.body.installationId).toBe("inst_main")
    expect((await provider.introspect(response.body.token)).sub).toBe("barbara")
  })

  it("never lets another project use a user's grant: user ids are each project's own", async () => {
    await importUser("hedy")
    const web = await call(broker, "POST", "/v1/connect/token/acme%2Fapi", WEB_KEY, {
      subject: { type: "user", id: "hedy" }
    })
    expect(web.status).toBe(200)
    const mobile = await call(broker, "POST", "/v1/connect/token/acme%2Fapi", MOBILE_KEY, {
      subject: { type: "user", id: "hedy" }
    })
    expect(mobile).toMatchObject({ status: 403, body: { error: { code: "user_authorization_required" } } })
  })

  it("makes one refresh for 50 concurrent requests, and all 50 get the token", async () => {
    await importUser("grace")
    provider.tokenRequests.reset()
    const responses = await Promise.all(
      Array.from({ length: 50 }, () =>
        call(broker, "POST", "/v1/connect/token/acme%2Fapi", WEB_KEY, { subject: { type: "user", id: "grace" } })
      )
    )
    expect(responses.map((r) => r.status)).toEqual(Array.from({ length: 50 }, () => 200))
    expect(new Set(responses.map((r) => r.body.token)).size).toBe(1)
    expect(provider.tokenRequests.count("refresh_token")).toBe(1)
  })

  it.effect("revokes at the provider: introspection then says the token is inactive", () =>
    Effect.gen(function* () {
      const token = yield* getToken("acme/api", { subject: { type: "app" }, resources: ["https://api.test/revoked"] })
      expect((yield* Effect.promise(() => provider.introspect(Redacted.value(token)))).active).toBe(true)
      const summary = yield* revokeToken("acme/api", { subject: { type: "app" } })
      expect(summary.tokensFound).toBeGreaterThanOrEqual(1)
      expect(summary.providerRevoked).toBe(summary.tokensFound)
      expect(summary.providerFailed).toBe(0)
      expect((yield* Effect.promise(() => provider.introspect(Redacted.value(token)))).active).toBe(false)
      const next = yield* getToken("acme/api", { subject: { type: "app" }, resources: ["https://api.test/revoked"] })
      expect(Redacted.value(next)).not.toBe(Redacted.value(token))
    }).pipe(Effect.provide(client(WEB_KEY)))
  )

  it.effect("answers user_authorization_required once the provider has revoked the user's refresh token", () =>
    Effect.gen(function* () {
      const { refreshToken } = yield* Effect.promise(() => importUser("linus"))
      yield* Effect.promise(() =>
        fetch(provider.revocationEndpoint, {
          method: "POST",
          headers: {
            "content-type": "application/x-www-form-urlencoded",
            authorization: `Basic ${Buffer.from(`${provider.clients.broker.clientId}:${provider.clients.broker.clientSecret}`).toString("base64")}`
          },
          body: new URLSearchParams({ token: refreshToken, token_type_hint: "refresh_token" })
        })
      )
      provider.tokenRequests.reset()
      const error = yield* Effect.flip(getToken("acme/api", { subject: { type: "user", id: "linus" } }))
      expect(error._tag).toBe("UserAuthorizationRequired")
      // The grant is marked invalid for good: the next request does not try the provider again.
      const again = yield* Effect.flip(
        getToken("acme/api", { subject: { type: "user", id: "linus" } }, { forceRefresh: true })
      )
      expect(again._tag).toBe("UserAuthorizationRequired")
      expect(provider.tokenRequests.count("refresh_token")).toBe(1)
    }).pipe(Effect.provide(client(WEB_KEY)))
  )

  it("suggests the caller's project's connector nearest to an unknown name, and none of another project's", async () => {
    const token = (key: string, connector: string) =>
      call(broker, "POST", `/v1/connect/token/${connector}`, key, { subject: { type: "app" } })
    expect(await token(WEB_KEY, "acme%2Fapii")).toMatchObject({
      status: 404,
      body: {
        error: {
          code: "not_found",
          message: 'No connector "acme/apii" exists for this caller: did you mean "acme/api"?'
        }
      }
    })
    // prj_other has no link to acme/api: its callers learn nothing of it.
    const other = await token(OTHER_KEY, "acme%2Fapii")
    expect(other).toMatchObject({ status: 404, body: { error: { code: "not_found" } } })
    expect(JSON.stringify(other.body)).not.toContain("did you mean")
    const unrelated = await token(WEB_KEY, "github")
    expect(JSON.stringify(unrelated.body)).not.toContain("did you mean")
    const error = await Effect.runPromise(
      Effect.flip(getToken("acme/tenant", { subject: { type: "app" } })).pipe(Effect.provide(client(WEB_KEY)))
    )
    expect(error.message).toBe('No connector "acme/tenant" exists for this caller: did you mean "acme/tenants"?')
  })

  it("answers each authorization failure with its wire code", async () => {
    const token = (key: string | undefined, connector = "acme%2Fapi", body: unknown = { subject: { type: "app" } }) =>
      call(broker, "POST", `/v1/connect/token/${connector}`, key, body)
    expect(await token(undefined)).toMatchObject({ status: 401, body: { error: { code: "unauthorized" } } })
    expect(await token("ck_nobody")).toMatchObject({ status: 401, body: { error: { code: "unauthorized" } } })
    expect(await token(WEB_KEY, "acme%2Fnope")).toMatchObject({ status: 404, body: { error: { code: "not_found" } } })
    expect(await token(OTHER_KEY)).toMatchObject({
      status: 403,
      body: { error: { code: "client_not_linked_to_project" } }
    })
    expect(await token(PREVIEW_KEY)).toMatchObject({
      status: 403,
      body: { error: { code: "client_not_enabled_for_environment" } }
    })
    expect(
      await token(WEB_KEY, "acme%2Ftenants", { subject: { type: "app" }, installationId: "inst_9" })
    ).toMatchObject({
      status: 403,
      body: { error: { code: "connector_installation_required" } }
    })
    expect(await token(WEB_KEY, "acme%2Fapi", { subject: { type: "user", id: "nobody" } })).toMatchObject({
      status: 403,
      body: { error: { code: "user_authorization_required" } }
    })
  })

  it("refuses bad bodies with 400 and the field named", async () => {
    const bad = await call(broker, "POST", "/v1/connect/token/acme%2Fapi", WEB_KEY, {
      subject: { type: "user", id: "" }
    })
    expect(bad.status).toBe(400)
    expect(bad.body.error.code).toBe("bad_request")
    expect(JSON.stringify(bad.body.error.issues)).toContain("subject.id")
    const notJson = await fetch(`${broker.url}/v1/connect/token/acme%2Fapi`, {
      method: "POST",
      headers: { authorization: `Bearer ${WEB_KEY}`, "content-type": "application/json" },
      body: "{not json"
    })
    expect(notJson.status).toBe(400)
    for (const path of ["/v1/connect/token/%E0%A4%A", "/v1/connect/token/acme%00api"]) {
      const badPath = await call(broker, "POST", path, WEB_KEY, { subject: { type: "app" } })
      expect(badPath.status).toBe(400)
      expect(badPath.body.error.issues[0].path).toBe("connector")
    }
    const unknown = await call(broker, "GET", "/v1/connect/nowhere", WEB_KEY)
    expect(unknown).toMatchObject({
      status: 404,
      body: { error: { code: "endpoint_not_found", message: "no such endpoint: GET /v1/connect/nowhere" } }
    })
  })

  it("serves connector metadata without secrets", async () => {
    const metadata = await call(broker, "GET", "/v1/connect/connectors/acme%2Fapi", WEB_KEY)
    expect(metadata.status).toBe(200)
    expect(metadata.body).toMatchObject({ uid: "acme/api", name: "Acme API", type: "oauth", service: "acme", data: {} })
    expect(JSON.stringify(metadata.body)).not.toContain(provider.clients.broker.clientSecret)
  })

  it("keeps no token, refresh token or secret in plain text in its database file", async () => {
    const { refreshToken } = await importUser("margaret", { accessToken: "at_imported_marker_5521" })
    const user = await call(broker, "POST", "/v1/connect/token/acme%2Fapi", WEB_KEY, {
      subject: { type: "user", id: "margaret" }
    })
    const app = await call(broker, "POST", "/v1/connect/token/acme%2Fapi", WEB_KEY, {
      subject: { type: "app" },
      scopes: ["api:read"]
    })
    expect([user.status, app.status]).toEqual([200, 200])
    // SQLite: the database and its write-ahead log, as they are on disk. Postgres: every row of every table.
    const bytes = await storedText(database)
    expect(bytes).toContain("acme/api")
    for (const secret of [
      user.body.token,
      app.body.token,
      refreshToken,
      "at_imported_marker_5521",
      provider.clients.broker.clientSecret,
      WEB_KEY,
      PREVIEW_KEY
    ]) {
      expect(bytes).not.toContain(secret)
    }
  })
})

describe("the broker's rate limit", () => {
  let provider: OAuthProviderHarness
  let database: TestDatabase
  let broker: RunningBroker

  beforeAll(async () => {
    provider = await startOAuthProvider()
    database = sqlite()
    broker = await startBroker({
      database,
      config: configFor(provider),
      env: { ACME_CLIENT_SECRET: provider.clients.broker.clientSecret, CONNECT_RATE_LIMIT_PER_MINUTE: "2" }
    })
  })
  afterAll(async () => {
    await broker?.close()
    await provider?.close()
    await database?.drop()
  })

  it("answers 429 rate_limited with Retry-After once a project is over its limit, and the SDK reads the delay", async () => {
    const request = () => call(broker, "POST", "/v1/connect/token/acme%2Fapi", WEB_KEY, { subject: { type: "app" } })
    expect((await request()).status).toBe(200)
    expect((await request()).status).toBe(200)
    const limited = await request()
    expect(limited.status).toBe(429)
    expect(limited.body.error.code).toBe("rate_limited")
    // Two a minute: the next request is allowed in 30 seconds.
    expect(limited.headers.get("retry-after")).toBe("30")
    // Another project has a bucket of its own.
    expect(
      (await call(broker, "POST", "/v1/connect/token/acme%2Fapi", OTHER_KEY, { subject: { type: "app" } })).status
    ).toBe(403)
    const error = await Effect.runPromise(
      Effect.flip(getToken("acme/api", { subject: { type: "app" } })).pipe(Effect.provide(sdkClient(broker, WEB_KEY)))
    )
    expect(error._tag).toBe("RateLimited")
    expect(error._tag === "RateLimited" && error.retryAfterMs).toBe(30_000)
  })
})
