/**
 * Two broker replicas on one Postgres database, each a process of its own (the built `packages/broker/dist/main.js`, so
 * `npm run build` first): they share nothing but the database. Each has its own single flight, connection pool and
 * memory; what one does must hold on the other at once.
 *
 * Each test uses a project of its own, so that none depends on another's requests (or their count against the limit).
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { newEncryptionKey } from "./support/broker.js"
import { type BrokerProcess, spawnBroker } from "./support/brokerProcess.js"
import { oauthClientOf } from "./support/brokerWithProvider.js"
import { postgres, postgresAvailable, type TestDatabase } from "./support/databases.js"
import { postJson } from "./support/http.js"
import { type OAuthProviderHarness, startOAuthProvider } from "./support/oauthProvider.js"

const ADMIN_TOKEN = "adm_replicas_admin_token_3307"
const RESOURCE = "https://api.test/orders"
/** The limit of token requests per minute per project, shared by the replicas. */
const LIMIT = 50
const PROJECTS = ["prj_refresh", "prj_revoke", "prj_admin", "prj_limited"] as const
const keyOf = (project: (typeof PROJECTS)[number]) => `ck_replicas_${project}_key_6120`

interface Answer {
  readonly status: number
  readonly headers: Headers
  // biome-ignore lint/suspicious/noExplicitAny: test answers are read loosely.
  readonly body: any
}

const read = async (response: Response): Promise<Answer> => {
  const text = await response.text()
  return { status: response.status, headers: response.headers, body: text === "" ? undefined : JSON.parse(text) }
}

const tokenRequest = (broker: BrokerProcess, key: string, body: unknown, connector = "acme/api") =>
  postJson(`${broker.url}/v1/connect/token/${encodeURIComponent(connector)}`, body, key).then(read)

const revoke = (broker: BrokerProcess, key: string, body: unknown) =>
  fetch(`${broker.url}/v1/connect/connectors/acme%2Fapi/tokens`, {
    method: "DELETE",
    headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
    body: JSON.stringify(body)
  }).then(read)

const admin = (broker: BrokerProcess, method: string, path: string, body?: unknown) =>
  fetch(`${broker.url}${path}`, {
    method,
    headers: { authorization: `Bearer ${ADMIN_TOKEN}`, "content-type": "application/json" },
    ...(body === undefined ? {} : { body: JSON.stringify(body) })
  }).then(read)

describe.skipIf(!postgresAvailable)("two broker processes on one Postgres database", () => {
  let provider: OAuthProviderHarness
  let database: TestDatabase
  let a: BrokerProcess
  let b: BrokerProcess

  beforeAll(async () => {
    provider = await startOAuthProvider({ rotateRefreshToken: true, accessTokenTtl: 30, clientCredentialsTtl: 3600 })
    database = await postgres()
    const connector = (uid: string) => ({
      uid,
      name: uid,
      ...oauthClientOf(provider),
      revocationEndpoint: provider.revocationEndpoint,
      defaultScopes: { user: ["openid", "offline_access", "api:read"], app: ["api:read"] }
    })
    const config = {
      connectors: [connector("acme/api"), connector("acme/gone")],
      projects: PROJECTS.map((id) => ({ id, keys: [{ environment: "production", secret: keyOf(id) }] })),
      links: [
        ...PROJECTS.map((project) => ({ connector: "acme/api", project, environments: ["production"] })),
        { connector: "acme/gone", project: "prj_admin", environments: ["production"] }
      ]
    }
    // Every replica must share the encryption key: each reads what the others sealed.
    const encryptionKey = newEncryptionKey()
    const env = { CONNECT_ADMIN_TOKEN: ADMIN_TOKEN, CONNECT_RATE_LIMIT_PER_MINUTE: String(LIMIT) }
    // One after the other: each applies the configuration file at start.
    a = await spawnBroker({ database, config, encryptionKey, env })
    b = await spawnBroker({ database, config, encryptionKey, env })
  }, 60_000)
  afterAll(async () => {
    await Promise.all([a?.stop(), b?.stop()])
    await provider?.close()
    await database?.drop()
  })

  it("refresh a rotating grant once for concurrent requests on both, and lose no grant", async () => {
    const key = keyOf("prj_refresh")
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
      key
    )
    expect(imported.status).toBe(200)
    const before = provider.tokenRequests.count("refresh_token")

    const subject = { type: "user", id: "ada" }
    const answers = await Promise.all(
      Array.from({ length: 40 }, (_, i) => tokenRequest(i % 2 === 0 ? a : b, key, { subject }))
    )
    expect(answers.map((answer) => answer.status)).toEqual(Array.from({ length: 40 }, () => 200))
    expect(new Set(answers.map((answer) => answer.body.token)).size).toBe(1)
    expect(provider.tokenRequests.count("refresh_token") - before).toBe(1)

    // Another request for other scopes needs a second refresh, with the refresh token the
    // first one rotated in: it works only if that rotation was saved. Both replicas again.
    const more = await Promise.all([
      tokenRequest(b, key, { subject, scopes: ["openid"] }),
      tokenRequest(a, key, { subject, scopes: ["openid"] })
    ])
    expect(more.map((answer) => answer.status)).toEqual([200, 200])
    expect(more[0]?.body.token).toBe(more[1]?.body.token)
    expect(provider.tokenRequests.count("refresh_token") - before).toBe(2)
    // Reusing a spent refresh token would have made the provider revoke the whole grant.
    expect(provider.revokedGrantIds).toEqual([])
    expect(provider.serverErrors).toEqual([])
  })

  it("a revocation on one replica holds on the other at once: it hands out no revoked token", async () => {
    const key = keyOf("prj_revoke")
    const request = { subject: { type: "app" }, resources: [RESOURCE] }
    const issued = await tokenRequest(a, key, request)
    expect(issued.status).toBe(200)
    // B hands out the token A issued: the issued token is shared through the database.
    const reused = await tokenRequest(b, key, request)
    expect(reused.body.token).toBe(issued.body.token)

    const summary = await revoke(a, key, { subject: { type: "app" } })
    expect(summary.status).toBe(200)
    expect(summary.body).toMatchObject({ tokensFound: 1, deleted: 1, providerRevoked: 1 })

    const after = await tokenRequest(b, key, request)
    expect(after.status).toBe(200)
    expect(after.body.token).not.toBe(issued.body.token)
    expect((await provider.introspect(issued.body.token)).active).toBe(false)
    expect((await provider.introspect(after.body.token)).active).toBe(true)
  })

  it("an admin change on one replica holds on the other at once: a key created, a link detached, a connector removed", async () => {
    const request = { subject: { type: "app" }, resources: [RESOURCE] }
    const created = await admin(a, "POST", "/v1/admin/projects/prj_admin/keys", { environment: "production" })
    expect(created.status).toBe(201)
    const newKey: string = created.body.key
    const withNewKey = await tokenRequest(b, newKey, request)
    expect(withNewKey.status).toBe(200)

    expect((await tokenRequest(b, newKey, request, "acme/gone")).status).toBe(200)
    const detached = await admin(a, "DELETE", "/v1/admin/connectors/acme%2Fapi/links/prj_admin")
    expect(detached.status).toBe(200)
    const unlinked = await tokenRequest(b, newKey, request)
    expect(unlinked.status).toBe(403)
    expect(unlinked.body.error.code).toBe("client_not_linked_to_project")

    const removed = await admin(a, "DELETE", "/v1/admin/connectors/acme%2Fgone")
    expect(removed.status).toBe(200)
    const gone = await tokenRequest(b, newKey, request, "acme/gone")
    expect(gone.status).toBe(404)
    expect(gone.body.error.code).toBe("not_found")
    expect((await admin(b, "GET", "/v1/admin/connectors/acme%2Fgone")).status).toBe(404)
  })

  it(`together they allow ${LIMIT} token requests a minute per project, not twice as many`, async () => {
    const key = keyOf("prj_limited")
    const started = Date.now()
    // Each request is counted before its body is read: an empty body answers 400 when allowed, 429 when not.
    const answers = await Promise.all(
      Array.from({ length: 3 * LIMIT }, (_, i) => tokenRequest(i % 2 === 0 ? a : b, key, {}))
    )
    const elapsed = Date.now() - started
    const refused = answers.filter((answer) => answer.status === 429)
    const allowed = answers.length - refused.length
    expect(answers.filter((answer) => answer.status !== 429).every((answer) => answer.status === 400)).toBe(true)
    // A full bucket, plus what refilled while the requests ran (one per 60 000 / LIMIT ms).
    expect(allowed).toBeGreaterThanOrEqual(LIMIT)
    expect(allowed).toBeLessThanOrEqual(LIMIT + Math.floor((elapsed * LIMIT) / 60_000))
    for (const answer of refused) {
      expect(answer.body.error.code).toBe("rate_limited")
      expect(Number(answer.headers.get("retry-after"))).toBeGreaterThanOrEqual(1)
      expect(Number(answer.headers.get("retry-after"))).toBeLessThanOrEqual(Math.ceil(60_000 / LIMIT / 1000))
    }
    // Both replicas refused some: the limit is theirs together.
    const refusedBy = (replica: number) => answers.filter((answer, i) => i % 2 === replica && answer.status === 429)
    expect(refusedBy(0).length).toBeGreaterThan(0)
    expect(refusedBy(1).length).toBeGreaterThan(0)
  })
})
