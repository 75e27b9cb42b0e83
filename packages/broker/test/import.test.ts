import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { type RunningBroker, startBroker } from "./support/broker.js"
import { backends, type TestDatabase } from "./support/databases.js"
import { type OAuthProviderHarness, startOAuthProvider } from "./support/oauthProvider.js"

const PRODUCTION_KEY = "ck_import_production_key_1181"
const PREVIEW_KEY = "ck_import_preview_key_2292"
const ADMIN_TOKEN = "admin_import_token_3303"
const FAR = Date.now() + 3_600_000

const post = async (broker: RunningBroker, path: string, key: string, body: unknown, admin?: string) => {
  const response = await fetch(`${broker.url}${path}`, {
    method: "POST",
    headers: {
      "content-type": "application/json",
      authorization: `Bearer ${key}`,
      ...(admin === undefined ? {} : { "x-connect-admin-token": admin })
    },
    body: JSON.stringify(body)
  })
  return { status: response.status, body: (await response.json()) as Record<string, unknown> }
}

const userToken = (id: string, environment: string, accessToken: string) => ({
  subject: { type: "user", id },
  accessToken,
  expiresAt: FAR,
  refreshToken: `planted-refresh-${id}`,
  environment
})

describe.each(backends)("importing tokens is for the caller's own environment, on $name", ({ make }) => {
  let provider: OAuthProviderHarness
  let database: TestDatabase
  let broker: RunningBroker
  const importAs = (key: string, tokens: ReadonlyArray<unknown>, admin?: string) =>
    post(broker, "/v1/connect/token/acme%2Fapi/import", key, { tokens }, admin)
  const tokenFor = (key: string, id: string) =>
    post(broker, "/v1/connect/token/acme%2Fapi", key, { subject: { type: "user", id } })

  beforeAll(async () => {
    provider = await startOAuthProvider()
    database = await make()
    broker = await startBroker({
      database,
      env: { CONNECT_ADMIN_TOKEN: ADMIN_TOKEN },
      config: {
        connectors: [
          {
            uid: "acme/api",
            name: "Acme API",
            type: "oauth",
            clientId: provider.clients.broker.clientId,
            clientSecret: provider.clients.broker.clientSecret,
            tokenEndpoint: provider.tokenEndpoint,
            defaultScopes: { user: ["openid", "offline_access", "api:read"] }
          }
        ],
        projects: [
          {
            id: "prj_web",
            keys: [
              { environment: "production", secret: PRODUCTION_KEY },
              { environment: "preview", secret: PREVIEW_KEY }
            ]
          }
        ],
        links: [{ connector: "acme/api", project: "prj_web", environments: ["production", "preview"] }]
      }
    })
  })
  afterAll(async () => {
    await broker?.close()
    await provider?.close()
    await database?.drop()
  })

  it("a preview key cannot plant tokens for production: refused, naming the token, and nothing is written", async () => {
    const refused = await importAs(PREVIEW_KEY, [
      userToken("ada", "preview", "ada-preview-token"),
      userToken("victim", "production", "planted-production-token")
    ])
    expect(refused.status).toBe(400)
    const issues = (refused.body.error as { issues: ReadonlyArray<{ path: string; message: string }> }).issues
    expect(issues.map((issue) => issue.path)).toEqual(["tokens[1].environment"])
    expect(issues[0]?.message).toContain("X-Connect-Admin-Token")
    // All or nothing: neither the production token nor the preview one of the same import was kept.
    const production = await tokenFor(PRODUCTION_KEY, "victim")
    expect(production.status).toBe(403)
    expect(JSON.stringify(production.body)).not.toContain("planted")
    expect((await tokenFor(PREVIEW_KEY, "ada")).status).toBe(403)
    // A wrong admin token changes nothing.
    const wrong = await importAs(PREVIEW_KEY, [userToken("victim", "production", "planted")], "not-the-admin-token")
    expect(wrong.status).toBe(400)
    expect((await tokenFor(PRODUCTION_KEY, "victim")).status).toBe(403)
  })

  it("a key imports for its own environment", async () => {
    const imported = await importAs(PREVIEW_KEY, [userToken("grace", "preview", "grace-preview-token")])
    expect(imported).toMatchObject({ status: 200, body: { imported: 1 } })
    expect((await tokenFor(PREVIEW_KEY, "grace")).body.token).toBe("grace-preview-token")
  })

  it("with the admin token, an import may name another linked environment of the project, not an unlinked one", async () => {
    const unlinked = await importAs(PREVIEW_KEY, [userToken("linus", "staging", "staging-token")], ADMIN_TOKEN)
    expect(unlinked.status).toBe(400)
    expect(JSON.stringify(unlinked.body)).toContain("tokens[0].environment")
    const imported = await importAs(
      PREVIEW_KEY,
      [userToken("linus", "production", "linus-production-token")],
      ADMIN_TOKEN
    )
    expect(imported).toMatchObject({ status: 200, body: { imported: 1 } })
    expect((await tokenFor(PRODUCTION_KEY, "linus")).body.token).toBe("linus-production-token")
  })
})
