import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import * as Official from "@vercel/connect"
import { Effect, Redacted } from "effect"
import * as Connect from "effect-connect"
import * as ConnectPromise from "effect-connect/promise"
import { type RunningBroker, sdkClient, startBroker } from "./support/broker.js"
import { sqlite, type TestDatabase } from "./support/databases.js"
import { type OAuthProviderHarness, startOAuthProvider } from "./support/oauthProvider.js"

const VERCEL_ORIGIN = "https://api.vercel.com"
const KEY = "ck_compat_production_key_5120"
const ENVIRONMENT = "production"
const RESOURCE = "https://api.test/compat"
const USER_SCOPE = "openid offline_access api:read"

type ClientName = "official" | "effect" | "promise"
const CLIENTS: ReadonlyArray<ClientName> = ["official", "effect", "promise"]

/** A connector with a revocation endpoint and public `data`. */
const apiOf = (client: ClientName) => `acme/${client}`
/** A connector whose installations are required, with no installation at all. */
const tenantsOf = (client: ClientName) => `acme/${client}-tenants`
/** The `data` declared for `apiOf(client)`: the metadata's `vendor`. */
const dataOf = (client: ClientName) => ({
  client,
  region: "eu-west-1",
  features: ["refresh", "revocation"],
  limits: { perMinute: 200, burst: null }
})

const configFor = (provider: OAuthProviderHarness) => {
  const oauth = {
    type: "oauth",
    clientId: provider.clients.broker.clientId,
    clientSecret: { env: "ACME_CLIENT_SECRET" },
    tokenEndpoint: provider.tokenEndpoint
  }
  return {
    connectors: CLIENTS.flatMap((client) => [
      {
        ...oauth,
        uid: apiOf(client),
        name: `Acme for the ${client} client`,
        revocationEndpoint: provider.revocationEndpoint,
        defaultScopes: { app: ["api:read"], user: USER_SCOPE.split(" ") },
        data: dataOf(client)
      },
      {
        ...oauth,
        uid: tenantsOf(client),
        name: `Acme per tenant for the ${client} client`,
        installations: { required: true, items: [] }
      }
    ]),
    projects: [{ id: "prj_compat", name: "Compat", keys: [{ environment: ENVIRONMENT, secret: KEY }] }],
    links: CLIENTS.flatMap((client) =>
      [apiOf(client), tenantsOf(client)].map((connector) => ({
        connector,
        project: "prj_compat",
        environments: [ENVIRONMENT]
      }))
    )
  }
}

// ---------------------------------------------------------------------------
// The suite's servers, and `fetch` pointed at them
// ---------------------------------------------------------------------------

/** Read by the official client (region, OIDC token) or by the Promise API (server, credential). */
const CLIENT_ENV = ["VERCEL_REGION", "VERCEL_OIDC_TOKEN", "CONNECT_URL", "CONNECT_TOKEN"] as const
const savedEnv = new Map<string, string | undefined>()
const realFetch = globalThis.fetch
/** How many calls the fetch wrapper sent from `api.vercel.com` to the broker. */
let redirected = 0

let provider: OAuthProviderHarness
let database: TestDatabase
let broker: RunningBroker

const urlOf = (input: RequestInfo | URL): string =>
  typeof input === "string" ? input : input instanceof URL ? input.href : input.url

beforeAll(async () => {
  for (const name of CLIENT_ENV) {
    savedEnv.set(name, process.env[name])
    Reflect.deleteProperty(process.env, name)
  }
  globalThis.fetch = (input: RequestInfo | URL, init?: RequestInit): Promise<Response> => {
    const url = urlOf(input)
    if (url.startsWith(`${VERCEL_ORIGIN}/`)) {
      redirected++
      const target = `${broker.url}${url.slice(VERCEL_ORIGIN.length)}`
      return realFetch(input instanceof Request ? new Request(target, input) : target, init)
    }
    if (new URL(url).hostname !== "127.0.0.1") {
      return Promise.reject(new TypeError(`this suite makes no request outside 127.0.0.1, not even to ${url}`))
    }
    return realFetch(input, init)
  }
  provider = await startOAuthProvider({ accessTokenTtl: 300, clientCredentialsTtl: 3600 })
  database = sqlite()
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
  globalThis.fetch = realFetch
  for (const [name, value] of savedEnv) {
    if (value === undefined) Reflect.deleteProperty(process.env, name)
    else process.env[name] = value
  }
})

// ---------------------------------------------------------------------------
// Grants, imported as an operator would
// ---------------------------------------------------------------------------

const user = (id: string) => ({ type: "user", id }) as const

/** `POST /v1/connect/token/{connector}/import` with the project key. */
const importTokens = async (connector: string, tokens: ReadonlyArray<Record<string, unknown>>): Promise<void> => {
  const response = await fetch(`${broker.url}/v1/connect/token/${encodeURIComponent(connector)}/import`, {
    method: "POST",
    headers: { accept: "application/json", "content-type": "application/json", authorization: `Bearer ${KEY}` },
    body: JSON.stringify({ tokens })
  })
  expect({ status: response.status, body: await response.json() }).toEqual({
    status: 200,
    body: { imported: tokens.length }
  })
}

/** A grant the user gave at the provider, imported with an access token that has expired. */
const importGrant = async (connector: string, userId: string): Promise<void> => {
  const refreshToken = await provider.seedUserRefreshToken({ accountId: userId, scope: USER_SCOPE })
  await importTokens(connector, [
    { subject: user(userId), accessToken: `expired-${userId}`, expiresAt: 1, refreshToken, environment: ENVIRONMENT }
  ])
}

/** An expired access token and no refresh token: the broker can renew nothing (`no_token`). */
const importExpiredWithoutRefresh = (connector: string, userId: string): Promise<void> =>
  importTokens(connector, [
    { subject: user(userId), accessToken: `expired-${userId}`, expiresAt: 1, environment: ENVIRONMENT }
  ])

/** The error a promise rejects with. */
const rejectionOf = async (promise: Promise<unknown>): Promise<unknown> => {
  try {
    await promise
  } catch (error) {
    return error
  }
  throw new Error("expected the call to fail")
}

/** The metadata every client must return for `apiOf(client)`. */
const expectedMetadata = (client: ClientName) => ({
  id: expect.any(String),
  uid: apiOf(client),
  name: `Acme for the ${client} client`,
  type: "oauth",
  service: "acme",
  createdAt: expect.any(Number),
  updatedAt: expect.any(Number),
  vendor: dataOf(client)
})

// ---------------------------------------------------------------------------
// The official client
// ---------------------------------------------------------------------------

describe("@vercel/connect 2.3.2 against the broker", () => {
  const options = { vercelToken: KEY } as const
  const connector = apiOf("official")

  it("gets an app token that the provider says is active, for the resource", async () => {
    const before = redirected
    const response = await Official.getTokenResponse(
      connector,
      { subject: { type: "app" }, resources: [RESOURCE] },
      { ...options, forceRefresh: true }
    )
    expect(redirected - before).toBe(1)
    expect(response).toMatchObject({
      tokenId: expect.stringMatching(/^stk_/),
      connector: { id: expect.any(String), uid: connector, type: "oauth" },
      name: "Acme for the official client"
    })
    expect(response.expiresAt).toBeGreaterThan(Date.now())
    const introspection = await provider.introspect(response.token)
    expect(introspection).toMatchObject({ active: true, aud: RESOURCE, scope: "api:read" })
  })

  it("gets a user token from an imported grant, revokes it, and is handed a new one afterwards", async () => {
    await importGrant(connector, "official-ada")
    const token = await Official.getToken(connector, { subject: user("official-ada") }, options)
    expect(await provider.introspect(token)).toMatchObject({ active: true, sub: "official-ada" })

    const before = redirected
    await Official.revokeToken(connector, { subject: user("official-ada") }, options)
    expect(redirected - before).toBe(1)
    expect((await provider.introspect(token)).active).toBe(false)

    // revokeToken cleared the official cache: this asks the broker, which must not hand out the revoked token.
    const next = await Official.getToken(connector, { subject: user("official-ada") }, options)
    expect(next).not.toBe(token)
    expect(await provider.introspect(next)).toMatchObject({ active: true, sub: "official-ada" })
  })

  it("raises UserAuthorizationRequiredError for a user who never authorized the connector", async () => {
    const error = await rejectionOf(Official.getToken(connector, { subject: user("official-nobody") }, options))
    expect(error).toBeInstanceOf(Official.UserAuthorizationRequiredError)
    expect(error).toMatchObject({ code: "user_authorization_required", status: 403 })
  })

  it("raises ConnectorInstallationRequiredError without an installation, and for an unknown one", async () => {
    const tenants = tenantsOf("official")
    const missing = await rejectionOf(Official.getToken(tenants, { subject: { type: "app" } }, options))
    expect(missing).toBeInstanceOf(Official.ConnectorInstallationRequiredError)
    expect(missing).toMatchObject({ code: "connector_installation_required", status: 403 })
    const unknown = await rejectionOf(
      Official.getToken(tenants, { subject: { type: "app" }, installationId: "inst_nowhere" }, options)
    )
    expect(unknown).toBeInstanceOf(Official.ConnectorInstallationRequiredError)
    expect(unknown).toMatchObject({ code: "connector_installation_required", status: 403 })
  })

  it("raises NoValidTokenError when the user's token has expired and there is no refresh token", async () => {
    await importExpiredWithoutRefresh(connector, "official-expired")
    const error = await rejectionOf(Official.getToken(connector, { subject: user("official-expired") }, options))
    expect(error).toBeInstanceOf(Official.NoValidTokenError)
    expect(error).toMatchObject({ code: "no_token", status: 409 })
  })

  it("reads the connector's metadata, with the declared data as vendor", async () => {
    expect(await Official.getConnectorMetadata(connector, options)).toEqual(expectedMetadata("official"))
    expect((await Official.getConnectorMetadata(tenantsOf("official"), options)).vendor).toEqual({})
  })
})

// ---------------------------------------------------------------------------
// The Effect API
// ---------------------------------------------------------------------------

describe("the Effect API against the broker", () => {
  const connector = apiOf("effect")
  const client = () => sdkClient(broker, KEY)
  const introspect = (token: Redacted.Redacted<string>) =>
    Effect.promise(() => provider.introspect(Redacted.value(token)))

  it.live("gets an app token that the provider says is active, for the resource", () =>
    Effect.gen(function* () {
      const response = yield* Connect.getTokenResponse(
        connector,
        { subject: { type: "app" }, resources: [RESOURCE] },
        { forceRefresh: true }
      )
      expect(response.tokenId).toMatch(/^stk_/)
      expect(response.connector.uid).toBe(connector)
      expect(yield* introspect(response.token)).toMatchObject({ active: true, aud: RESOURCE, scope: "api:read" })
    }).pipe(Effect.provide(client()))
  )

  it.live("gets a user token from an imported grant, and revokes it at the provider", () =>
    Effect.gen(function* () {
      yield* Effect.promise(() => importGrant(connector, "effect-ada"))
      const token = yield* Connect.getToken(connector, { subject: user("effect-ada") })
      expect(yield* introspect(token)).toMatchObject({ active: true, sub: "effect-ada" })
      const summary = yield* Connect.revokeToken(connector, { subject: user("effect-ada") })
      expect(summary.tokensFound).toBeGreaterThanOrEqual(1)
      expect(summary).toMatchObject({ providerRevoked: summary.tokensFound, providerFailed: 0 })
      expect((yield* introspect(token)).active).toBe(false)
      const next = yield* Connect.getToken(connector, { subject: user("effect-ada") })
      expect(Redacted.value(next)).not.toBe(Redacted.value(token))
      expect((yield* introspect(next)).active).toBe(true)
    }).pipe(Effect.provide(client()))
  )

  it.live("fails with UserAuthorizationRequired for a user who never authorized the connector", () =>
    Effect.gen(function* () {
      const error = yield* Effect.flip(Connect.getToken(connector, { subject: user("effect-nobody") }))
      expect(error).toMatchObject({
        _tag: "UserAuthorizationRequired",
        code: "user_authorization_required",
        status: 403,
        connector
      })
    }).pipe(Effect.provide(client()))
  )

  it.live("fails with ConnectorInstallationRequired without an installation, and for an unknown one", () =>
    Effect.gen(function* () {
      const tenants = tenantsOf("effect")
      const missing = yield* Effect.flip(Connect.getToken(tenants, { subject: { type: "app" } }))
      expect(missing).toMatchObject({
        _tag: "ConnectorInstallationRequired",
        code: "connector_installation_required",
        status: 403
      })
      const unknown = yield* Effect.flip(
        Connect.getToken(tenants, { subject: { type: "app" }, installationId: "inst_nowhere" })
      )
      expect(unknown).toMatchObject({
        _tag: "ConnectorInstallationRequired",
        code: "connector_installation_required",
        status: 403
      })
    }).pipe(Effect.provide(client()))
  )

  it.live("fails with NoValidToken when the user's token has expired and there is no refresh token", () =>
    Effect.gen(function* () {
      yield* Effect.promise(() => importExpiredWithoutRefresh(connector, "effect-expired"))
      const error = yield* Effect.flip(Connect.getToken(connector, { subject: user("effect-expired") }))
      expect(error).toMatchObject({ _tag: "NoValidToken", code: "no_token", status: 409 })
    }).pipe(Effect.provide(client()))
  )

  it.live("reads the connector's metadata as the official client does, with the declared data as vendor", () =>
    Effect.gen(function* () {
      const metadata = yield* Connect.getConnectorMetadata(connector)
      expect(metadata).toEqual(expectedMetadata("effect"))
      const official = yield* Effect.promise(() => Official.getConnectorMetadata(connector, { vercelToken: KEY }))
      expect(metadata).toEqual(official)
    }).pipe(Effect.provide(client()))
  )
})

// ---------------------------------------------------------------------------
// The Promise API
// ---------------------------------------------------------------------------

describe("the Promise API against the broker", () => {
  const connector = apiOf("promise")
  const options = () => ({ baseUrl: broker.url, token: KEY })

  it("gets an app token that the provider says is active, for the resource", async () => {
    const response = await ConnectPromise.getTokenResponse(
      connector,
      { subject: { type: "app" }, resources: [RESOURCE] },
      { ...options(), forceRefresh: true }
    )
    expect(response.tokenId).toMatch(/^stk_/)
    expect(response.connector.uid).toBe(connector)
    expect(await provider.introspect(response.token)).toMatchObject({
      active: true,
      aud: RESOURCE,
      scope: "api:read"
    })
  })

  it("takes the official client's options unchanged: { vercelToken } reaches the same server", async () => {
    const before = redirected
    const token = await ConnectPromise.getToken(
      connector,
      { subject: { type: "app" }, resources: [`${RESOURCE}/drop-in`] },
      { vercelToken: KEY, forceRefresh: true }
    )
    expect(redirected - before).toBe(1)
    expect(await provider.introspect(token)).toMatchObject({ active: true, aud: `${RESOURCE}/drop-in` })
  })

  it("gets a user token from an imported grant, and revokes it at the provider", async () => {
    await importGrant(connector, "promise-ada")
    const token = await ConnectPromise.getToken(connector, { subject: user("promise-ada") }, options())
    expect(await provider.introspect(token)).toMatchObject({ active: true, sub: "promise-ada" })
    const summary = await ConnectPromise.revokeToken(connector, { subject: user("promise-ada") }, options())
    expect(summary.tokensFound).toBeGreaterThanOrEqual(1)
    expect(summary).toMatchObject({ providerRevoked: summary.tokensFound, providerFailed: 0 })
    expect((await provider.introspect(token)).active).toBe(false)
    const next = await ConnectPromise.getToken(connector, { subject: user("promise-ada") }, options())
    expect(next).not.toBe(token)
    expect((await provider.introspect(next)).active).toBe(true)
  })

  it("rejects with UserAuthorizationRequiredError for a user who never authorized the connector", async () => {
    const error = await rejectionOf(ConnectPromise.getToken(connector, { subject: user("promise-nobody") }, options()))
    expect(error).toBeInstanceOf(ConnectPromise.UserAuthorizationRequiredError)
    expect(error).toMatchObject({ code: "user_authorization_required", status: 403, connector })
  })

  it("rejects with ConnectorInstallationRequiredError without an installation, and for an unknown one", async () => {
    const tenants = tenantsOf("promise")
    const missing = await rejectionOf(ConnectPromise.getToken(tenants, { subject: { type: "app" } }, options()))
    expect(missing).toBeInstanceOf(ConnectPromise.ConnectorInstallationRequiredError)
    expect(missing).toMatchObject({ code: "connector_installation_required", status: 403 })
    const unknown = await rejectionOf(
      ConnectPromise.getToken(tenants, { subject: { type: "app" }, installationId: "inst_nowhere" }, options())
    )
    expect(unknown).toBeInstanceOf(ConnectPromise.ConnectorInstallationRequiredError)
    expect(unknown).toMatchObject({ code: "connector_installation_required", status: 403 })
  })

  it("rejects with NoValidTokenError when the user's token has expired and there is no refresh token", async () => {
    await importExpiredWithoutRefresh(connector, "promise-expired")
    const error = await rejectionOf(ConnectPromise.getToken(connector, { subject: user("promise-expired") }, options()))
    expect(error).toBeInstanceOf(ConnectPromise.NoValidTokenError)
    expect(error).toMatchObject({ code: "no_token", status: 409 })
  })

  it("reads the connector's metadata as the official client does, with the declared data as vendor", async () => {
    const metadata = await ConnectPromise.getConnectorMetadata(connector, options())
    expect(metadata).toEqual(expectedMetadata("promise"))
    expect(metadata).toEqual(await Official.getConnectorMetadata(connector, { vercelToken: KEY }))
    expect((await ConnectPromise.getConnectorMetadata(tenantsOf("promise"), options())).vendor).toEqual({})
  })
})
