import { afterEach, describe, expect, it } from "@effect/vitest"
import { type RunningBroker, startBroker } from "./support/broker.js"
import { backends, type TestDatabase } from "./support/databases.js"

const KEY = "ck_bounds_key_6613"
const OTHER_KEY = "ck_bounds_other_key_7724"

const config = {
  connectors: [
    {
      uid: "idp/users",
      name: "IdP",
      type: "oauth",
      clientId: "broker",
      clientSecret: "broker-secret",
      // Never called: nothing here reaches a provider.
      tokenEndpoint: "http://127.0.0.1:9/token",
      authorizationEndpoint: "http://127.0.0.1:9/authorize",
      deviceAuthorizationEndpoint: "http://127.0.0.1:9/device",
      defaultScopes: { user: ["openid"], app: ["api:read"] }
    }
  ],
  projects: [
    { id: "prj_web", keys: [{ environment: "production", secret: KEY }] },
    { id: "prj_other", keys: [{ environment: "production", secret: OTHER_KEY }] }
  ],
  links: [
    { connector: "idp/users", project: "prj_web", environments: ["production"] },
    { connector: "idp/users", project: "prj_other", environments: ["production"] }
  ]
}

const post = async (broker: RunningBroker, path: string, body: unknown, key = KEY) => {
  const response = await fetch(`${broker.url}${path}`, {
    method: "POST",
    headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
    body: JSON.stringify(body)
  })
  return {
    status: response.status,
    retryAfter: response.headers.get("retry-after"),
    body: (await response.json()) as Record<string, unknown>
  }
}
const authorize = (broker: RunningBroker, id: string, key = KEY) =>
  post(broker, "/v1/connect/authorize/idp%2Fusers", { subject: { type: "user", id } }, key)

describe.each(backends)("bounds on starting authorizations, on $name", ({ make }) => {
  const running: Array<{ broker: RunningBroker; database: TestDatabase }> = []
  afterEach(async () => {
    for (const { broker, database } of running.splice(0)) {
      await broker.close()
      await database.drop()
    }
  })
  const start = async (env: Record<string, string>) => {
    const database = await make()
    const broker = await startBroker({ database, config, env })
    running.push({ broker, database })
    return broker
  }

  it("/authorize and /install take from the project's rate limit, as the token route does", async () => {
    const broker = await start({ CONNECT_RATE_LIMIT_PER_MINUTE: "3" })
    expect((await authorize(broker, "ada")).status).toBe(200)
    expect((await post(broker, "/v1/connect/install/idp%2Fusers", {})).status).toBe(200)
    expect((await authorize(broker, "grace")).status).toBe(200)
    for (const refused of [
      await authorize(broker, "linus"),
      await post(broker, "/v1/connect/install/idp%2Fusers", {}),
      await post(broker, "/v1/connect/authorize/idp%2Fusers", { subject: { type: "user", id: "d" }, deviceCode: true })
    ]) {
      expect(refused.status).toBe(429)
      expect(refused.body).toMatchObject({ error: { code: "rate_limited" } })
      expect(Number(refused.retryAfter)).toBeGreaterThan(0)
    }
    // Another project has its own bucket.
    expect((await authorize(broker, "ada", OTHER_KEY)).status).toBe(200)
  })

  it("a project may have CONNECT_MAX_PENDING_AUTHORIZATIONS requests open at once; then 429 until one expires", async () => {
    const broker = await start({ CONNECT_MAX_PENDING_AUTHORIZATIONS: "2" })
    expect((await authorize(broker, "ada")).status).toBe(200)
    expect((await post(broker, "/v1/connect/install/idp%2Fusers", {})).status).toBe(200)
    for (const refused of [
      await authorize(broker, "grace"),
      await post(broker, "/v1/connect/install/idp%2Fusers", {}),
      // Refused before the provider's device endpoint is asked (it does not answer here).
      await post(broker, "/v1/connect/authorize/idp%2Fusers", { subject: { type: "user", id: "d" }, deviceCode: true })
    ]) {
      expect(refused.status).toBe(429)
      expect(refused.body).toMatchObject({ error: { code: "rate_limited" } })
      expect(JSON.stringify(refused.body)).toContain("CONNECT_MAX_PENDING_AUTHORIZATIONS")
      // Until the first open request expires: about ten minutes.
      expect(Number(refused.retryAfter)).toBeGreaterThan(500)
    }
    // A token request that needs a link gets none rather than a new request.
    const token = await post(broker, "/v1/connect/token/idp%2Fusers", { subject: { type: "user", id: "grace" } })
    expect(token.status).toBe(403)
    expect(JSON.stringify(token.body)).not.toContain("authorizeUrl")
    // The cap is per project.
    expect((await authorize(broker, "ada", OTHER_KEY)).status).toBe(200)
  })
})
