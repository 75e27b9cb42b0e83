import { generateKeyPairSync } from "node:crypto"
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { Effect, Redacted } from "effect"
import { getToken, getTokenResponse, revokeToken } from "effect-connect"
import { type RunningBroker, sdkClient, startBroker } from "./support/broker.js"
import { oauthClientOf, productionProject } from "./support/brokerWithProvider.js"
import { sqlite, type TestDatabase } from "./support/databases.js"
import { type OAuthProviderHarness, startOAuthProvider } from "./support/oauthProvider.js"

const KEY = "ck_federated_key_4471"
const RESOURCE = "https://api.test/reports"

describe("federated subjects: JWT bearer (RFC 7523) and token exchange (RFC 8693)", () => {
  const { privateKey, publicKey } = generateKeyPairSync("ec", { namedCurve: "P-256" })
  let provider: OAuthProviderHarness
  let database: TestDatabase
  let broker: RunningBroker
  const client = () => sdkClient(broker, KEY)

  beforeAll(async () => {
    // The provider trusts assertions signed by the connector's key, issued by its client id.
    provider = await startOAuthProvider({ jwtBearer: { key: publicKey, issuers: ["broker"] } })
    database = sqlite()
    broker = await startBroker({
      database,
      config: {
        connectors: [
          {
            uid: "acme/api",
            name: "Acme API",
            ...oauthClientOf(provider),
            revocationEndpoint: provider.revocationEndpoint,
            privateKey: { env: "ACME_PRIVATE_KEY" },
            privateKeyId: "acme-2026",
            signingAlgorithm: "ES256"
          },
          {
            uid: "acme/unsigned",
            name: "Acme without a key",
            ...oauthClientOf(provider)
          }
        ],
        ...productionProject({ id: "prj", key: KEY }, ["acme/api", "acme/unsigned"])
      },
      env: { ACME_PRIVATE_KEY: privateKey.export({ type: "pkcs8", format: "pem" }).toString() }
    })
  })
  afterAll(async () => {
    await broker?.close()
    await provider?.close()
    await database?.drop()
  })

  it.effect(
    "a jwt-bearer subject gets a token for its sub; claims are part of its identity; it is cached and revoked",
    () =>
      Effect.gen(function* () {
        provider.tokenRequests.reset()
        const subject = { type: "jwt-bearer", sub: "svc-reports", additionalClaims: { tenant: "eu" } } as const
        const first = yield* getTokenResponse("acme/api", { subject, resources: [RESOURCE], scopes: ["api:read"] })
        const introspection = yield* Effect.promise(() => provider.introspect(Redacted.value(first.token)))
        expect(introspection).toMatchObject({ active: true, sub: "svc-reports", aud: RESOURCE })
        // The broker hands the stored token out again for the same subject and claims...
        const again = yield* getTokenResponse(
          "acme/api",
          { subject, resources: [RESOURCE], scopes: ["api:read"] },
          { forceRefresh: true }
        )
        expect(again.tokenId).toBe(first.tokenId)
        // ...but other claims are another subject.
        const other = yield* getTokenResponse(
          "acme/api",
          { subject: { ...subject, additionalClaims: { tenant: "us" } }, resources: [RESOURCE], scopes: ["api:read"] },
          { forceRefresh: true }
        )
        expect(other.tokenId).not.toBe(first.tokenId)
        expect(provider.tokenRequests.count("urn:ietf:params:oauth:grant-type:jwt-bearer")).toBe(2)
        const summary = yield* revokeToken("acme/api", { subject })
        expect(summary).toMatchObject({ tokensFound: 1, providerRevoked: 1 })
        expect((yield* Effect.promise(() => provider.introspect(Redacted.value(first.token)))).active).toBe(false)
      }).pipe(Effect.provide(client()))
  )

  it.effect(
    "a jwt-bearer subject on a connector without a signing key, or overriding a registered claim, is a bad request",
    () =>
      Effect.gen(function* () {
        const noKey = yield* Effect.flip(getToken("acme/unsigned", { subject: { type: "jwt-bearer", sub: "svc" } }))
        expect(noKey._tag).toBe("InvalidRequest")
        expect(noKey.message).toContain("privateKey")
        const override = yield* Effect.flip(
          getToken("acme/api", { subject: { type: "jwt-bearer", sub: "svc", additionalClaims: { aud: "elsewhere" } } })
        )
        expect(override._tag).toBe("InvalidRequest")
        expect(override.message).toContain("subject.additionalClaims")
      }).pipe(Effect.provide(client()))
  )

  it.effect("a token subject is exchanged for a token for another audience", () =>
    Effect.gen(function* () {
      // A user's access token from this provider, as a caller would hold it.
      const refreshToken = yield* Effect.promise(() =>
        provider.seedUserRefreshToken({ accountId: "ada", scope: "openid offline_access api:read", resource: RESOURCE })
      )
      const refreshed = yield* Effect.promise(() =>
        fetch(provider.tokenEndpoint, {
          method: "POST",
          headers: {
            "content-type": "application/x-www-form-urlencoded",
            authorization: `Basic ${Buffer.from(`${provider.clients.broker.clientId}:${provider.clients.broker.clientSecret}`).toString("base64")}`
          },
          body: new URLSearchParams({ grant_type: "refresh_token", refresh_token: refreshToken, resource: RESOURCE })
        }).then((response) => response.json() as Promise<{ access_token: string }>)
      )
      const exchanged = yield* getToken("acme/api", {
        subject: { type: "token", token: Redacted.make(refreshed.access_token) },
        audience: ["https://api.test/ledger"]
      })
      expect(Redacted.value(exchanged)).not.toBe(refreshed.access_token)
      const introspection = yield* Effect.promise(() => provider.introspect(Redacted.value(exchanged)))
      expect(introspection).toMatchObject({ active: true, sub: "ada" })
    }).pipe(Effect.provide(client()))
  )
})

describe("a connector's signing key at start", () => {
  it("is checked when the configuration is applied: a bad key or a key without its algorithm stops the start", async () => {
    const database = sqlite()
    const connector = (extra: Record<string, unknown>) => ({
      uid: "acme/api",
      name: "Acme",
      type: "oauth",
      clientId: "broker",
      clientSecret: "cs_start_check",
      tokenEndpoint: "http://127.0.0.1:9/token",
      ...extra
    })
    try {
      for (const [extra, path] of [
        [
          {
            privateKey: "-----BEGIN PRIVATE KEY-----\nnot a key\n-----END PRIVATE KEY-----",
            signingAlgorithm: "ES256"
          },
          "connectors[0].privateKey"
        ],
        [{ signingAlgorithm: "RS256" }, "connectors[0].signingAlgorithm"]
      ] as const) {
        const started = await startBroker({ database, config: { connectors: [connector(extra)] } }).then(
          (broker) => broker.close().then(() => undefined),
          (error: unknown) => String(error)
        )
        expect(started).toContain(path)
        expect(started).not.toContain("not a key")
      }
    } finally {
      await database.drop()
    }
  })
})
