import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { newEncryptionKey, type RunningBroker, startBroker } from "./support/broker.js"
import { oauthClientOf, productionProject } from "./support/brokerWithProvider.js"
import { postgres, type TestDatabase } from "./support/databases.js"
import { postJson } from "./support/http.js"
import { type OAuthProviderHarness, startOAuthProvider } from "./support/oauthProvider.js"

const KEY = "ck_replicas_production_key_6120"

const tokenRequest = (broker: RunningBroker, body: unknown) =>
  postJson(`${broker.url}/v1/connect/token/acme%2Fapi`, body, KEY).then(async (response) => ({
    status: response.status,
    body: await response.json()
  }))

// Two broker replicas on one Postgres database: each has its own process-level
// single flight and connection pool, so only the database's row lock on the
// grant keeps them from spending a rotating refresh token twice.
describe("two brokers on one Postgres database", () => {
  let provider: OAuthProviderHarness
  let database: TestDatabase
  let replicas: ReadonlyArray<RunningBroker> = []

  beforeAll(async () => {
    provider = await startOAuthProvider({ rotateRefreshToken: true, accessTokenTtl: 30 })
    database = await postgres()
    const config = {
      connectors: [
        {
          uid: "acme/api",
          name: "Acme API",
          ...oauthClientOf(provider),
          defaultScopes: { user: ["openid", "offline_access", "api:read"] }
        }
      ],
      ...productionProject({ id: "prj_web", key: KEY }, ["acme/api"])
    }
    // Every replica must share the encryption key: each reads what the others sealed.
    const encryptionKey = newEncryptionKey()
    const first = await startBroker({ database, config, encryptionKey })
    const second = await startBroker({ database, config, encryptionKey })
    replicas = [first, second]
  })
  afterAll(async () => {
    for (const replica of replicas) await replica.close()
    await provider?.close()
    await database?.drop()
  })

  it("refresh a rotating grant once for concurrent requests on both, and lose no grant", async () => {
    const [a, b] = replicas
    if (a === undefined || b === undefined) throw new Error("the replicas did not start")
    const refreshToken = await provider.seedUserRefreshToken({
      accountId: "ada",
      scope: "openid offline_access api:read"
    })
    const imported = await postJson(
      `${a.url}/v1/connect/token/acme%2Fapi/import`,
      {
        tokens: [
          {
            subject: { type: "user", id: "ada" },
            accessToken: "expired",
            expiresAt: 1,
            refreshToken,
            environment: "production"
          }
        ]
      },
      KEY
    )
    expect(imported.status).toBe(200)
    provider.tokenRequests.reset()

    const subject = { type: "user", id: "ada" }
    const answers = await Promise.all(
      Array.from({ length: 40 }, (_, i) => tokenRequest(i % 2 === 0 ? a : b, { subject }))
    )
    expect(answers.map((answer) => answer.status)).toEqual(Array.from({ length: 40 }, () => 200))
    expect(new Set(answers.map((answer) => answer.body.token)).size).toBe(1)
    expect(provider.tokenRequests.count("refresh_token")).toBe(1)

    // Another request for other scopes needs a second refresh, with the refresh token the
    // first one rotated in: it works only if that rotation was saved. Both replicas again.
    const more = await Promise.all([
      tokenRequest(b, { subject, scopes: ["openid"] }),
      tokenRequest(a, { subject, scopes: ["openid"] })
    ])
    expect(more.map((answer) => answer.status)).toEqual([200, 200])
    expect(more[0]?.body.token).toBe(more[1]?.body.token)
    expect(provider.tokenRequests.log.filter((r) => r.grantType === "refresh_token").map((r) => r.status)).toEqual([
      200, 200
    ])
    // Reusing a spent refresh token would have made the provider revoke the whole grant.
    expect(provider.revokedGrantIds).toEqual([])
    expect(provider.serverErrors).toEqual([])
  })
})
