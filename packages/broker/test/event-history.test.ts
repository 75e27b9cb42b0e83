import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { EVENT_SETTLE_MS } from "../src/Admin.js"
import { freePort, newEncryptionKey, type RunningBroker, startBroker } from "./support/broker.js"
import { oauthClientOf, productionProject } from "./support/brokerWithProvider.js"
import { backends, type TestDatabase } from "./support/databases.js"
import { visit } from "./support/http.js"
import { basicAuthorization, type OAuthProviderHarness, startOAuthProvider } from "./support/oauthProvider.js"

const KEY = "ck_events_key_5521"
const ADMIN_TOKEN = "admin_events_token_7713"

interface Event {
  readonly seq: number
  readonly id: string
  readonly kind: string
  readonly occurredAt: number
  readonly time: string
  readonly connector?: string
  readonly project?: string
  readonly environment?: string
  readonly subject?: string
  readonly installationId?: string
  readonly data: Record<string, string | number | boolean | null>
}

interface Page {
  readonly events: ReadonlyArray<Event>
  readonly next?: string
}

/** The configuration of the broker: `name` and the declared installations change between its two starts. */
const configOf = (provider: OAuthProviderHarness, name: string, installations: ReadonlyArray<string>) => ({
  connectors: [
    {
      uid: "acme/api",
      name,
      ...oauthClientOf(provider),
      revocationEndpoint: provider.revocationEndpoint,
      authorizationEndpoint: provider.authorizationEndpoint,
      defaultScopes: { user: ["openid", "offline_access", "api:read"] },
      installations: { items: installations.map((id) => ({ id })) }
    }
  ],
  ...productionProject({ id: "prj_web", key: KEY }, ["acme/api"])
})

describe.each(backends)("the event history over the admin API, on $name", ({ name, make }) => {
  let provider: OAuthProviderHarness
  let database: TestDatabase
  let broker: RunningBroker
  /** Every secret the scenario handles: none may appear in an event. */
  const secrets: Array<string> = []

  const call = async (method: string, path: string, key: string, body?: unknown) => {
    const response = await fetch(`${broker.url}${path}`, {
      method,
      headers: {
        authorization: `Bearer ${key}`,
        "x-connect-admin-token": ADMIN_TOKEN,
        ...(body === undefined ? {} : { "content-type": "application/json" })
      },
      ...(body === undefined ? {} : { body: JSON.stringify(body) })
    })
    return { status: response.status, body: (await response.json()) as Record<string, unknown> }
  }
  const token = async (subject: unknown) => {
    const answer = await call("POST", "/v1/connect/token/acme%2Fapi", KEY, { subject })
    if (typeof answer.body.token === "string") secrets.push(answer.body.token)
    return answer
  }
  const events = async (query = "") => {
    const answer = await call("GET", `/v1/admin/events${query}`, ADMIN_TOKEN)
    expect(answer.status).toBe(200)
    return answer.body as unknown as Page
  }

  /** A user authorizes (or refuses) through the broker's link: the broker's callback is visited. */
  const authorize = async (accountId: string, deny = false) => {
    const started = await call("POST", "/v1/connect/authorize/acme%2Fapi", KEY, {
      subject: { type: "user", id: accountId }
    })
    const toProvider = await visit(String(started.body.url))
    const back = await provider.completeAuthorization(toProvider.location ?? "", { accountId, deny })
    for (const name of ["code", "state"]) {
      const value = back.searchParams.get(name)
      if (value !== null) secrets.push(value)
    }
    const landed = await visit(back)
    expect(landed.status).toBe(deny ? 400 : 200)
  }

  beforeAll(async () => {
    const port = await freePort()
    provider = await startOAuthProvider({
      redirectUris: [`http://127.0.0.1:${port}/v1/connect/callback`],
      // Users' tokens are reused for half their life only: a second later, a request refreshes.
      accessTokenTtl: 1,
      clientCredentialsTtl: 3600
    })
    secrets.push(provider.clients.broker.clientSecret, KEY, ADMIN_TOKEN)
    database = await make()
    const env = { CONNECT_ADMIN_TOKEN: ADMIN_TOKEN }
    const encryptionKey = newEncryptionKey()
    // Started twice: the second start changes the connector and adds an installation.
    const first = await startBroker({ database, port, env, encryptionKey, config: configOf(provider, "Acme", ["T1"]) })
    await first.close()
    const same = await startBroker({ database, port, env, encryptionKey, config: configOf(provider, "Acme", ["T1"]) })
    await same.close()
    broker = await startBroker({
      database,
      port,
      env,
      encryptionKey,
      config: configOf(provider, "Acme API", ["T1", "T2"])
    })
  })
  afterAll(async () => {
    await broker?.close()
    await provider?.close()
    await database?.drop()
  })

  it("records what happened where it happened, with who it concerns, and no secret", async () => {
    expect((await token({ type: "app" })).status).toBe(200)
    expect((await token({ type: "app" })).status).toBe(200)
    await authorize("ada")
    await authorize("eve", true)
    await new Promise((resolve) => setTimeout(resolve, 600))
    expect((await token({ type: "user", id: "ada" })).status).toBe(200)

    // A grant the provider then refuses: its refresh token is revoked there.
    const refreshToken = await provider.seedUserRefreshToken({
      accountId: "bob",
      scope: "openid offline_access api:read"
    })
    secrets.push(refreshToken, "bob-access-token")
    const imported = await call("POST", "/v1/connect/token/acme%2Fapi/import", KEY, {
      tokens: [
        {
          subject: { type: "user", id: "bob" },
          accessToken: "bob-access-token",
          expiresAt: Date.now() - 1_000,
          refreshToken,
          environment: "production"
        }
      ]
    })
    expect(imported.status).toBe(200)
    const revokedAtProvider = await fetch(provider.revocationEndpoint, {
      method: "POST",
      headers: {
        authorization: basicAuthorization(provider.clients.broker.clientId, provider.clients.broker.clientSecret),
        "content-type": "application/x-www-form-urlencoded"
      },
      body: new URLSearchParams({ token: refreshToken, token_type_hint: "refresh_token" }).toString()
    })
    expect(revokedAtProvider.status).toBe(200)
    // The user must authorize again.
    expect((await token({ type: "user", id: "bob" })).status).toBe(403)

    const revoked = await call("DELETE", "/v1/connect/connectors/acme%2Fapi/tokens", KEY, { subject: { type: "app" } })
    expect(revoked.status).toBe(200)
    expect((await call("DELETE", "/v1/admin/connectors/acme%2Fapi/installations/T2", ADMIN_TOKEN)).status).toBe(200)
    const created = await call("POST", "/v1/admin/connectors", ADMIN_TOKEN, {
      uid: "acme/extra",
      name: "Extra",
      type: "oauth",
      clientId: "extra",
      clientSecret: "extra-client-secret-4471",
      tokenEndpoint: "https://idp.example/token"
    })
    secrets.push("extra-client-secret-4471")
    expect(created.status).toBe(201)
    expect((await call("DELETE", "/v1/admin/connectors/acme%2Fextra", ADMIN_TOKEN)).status).toBe(200)

    const all = (await events("?limit=500")).events
    const oldestFirst = [...all].reverse()
    const find = (kind: string, where: (event: Event) => boolean = () => true) =>
      oldestFirst.filter((event) => event.kind === kind && where(event))

    // The configuration file: created once, unchanged on the same file, updated when it changed.
    expect(find("connector.created", (e) => e.connector === "acme/api")).toHaveLength(1)
    const updated = find("connector.updated", (e) => e.connector === "acme/api")
    expect(updated.map((e) => e.data)).toEqual([{ source: "config", fields: "name" }])
    expect(find("installation.added").map((e) => [e.installationId, e.data.source])).toEqual([
      ["T1", "config"],
      ["T2", "config"]
    ])
    expect(find("installation.removed").map((e) => e.installationId)).toEqual(["T2"])

    // App tokens: from the provider, then from storage.
    const issued = find("token.issued", (e) => e.subject === "app")
    expect(issued.map((e) => e.data.source)).toEqual(["provider", "stored"])
    expect(issued[0]).toMatchObject({
      connector: "acme/api",
      project: "prj_web",
      environment: "production",
      data: { grant: "client_credentials" }
    })
    expect(typeof issued[0]?.data.expiresAt).toBe("number")
    expect(issued[0]?.time).toBe(new Date(issued[0]?.occurredAt ?? 0).toISOString())

    // Authorizations: started and completed, started and failed (the user refused).
    const ada = 'user:[null,"ada"]'
    const eve = 'user:[null,"eve"]'
    // Bob's grant refused: his answer links to a new authorization.
    expect(find("authorization.started").map((e) => e.subject)).toEqual([ada, eve, 'user:[null,"bob"]'])
    expect(find("authorization.completed")).toMatchObject([
      { subject: ada, connector: "acme/api", project: "prj_web", data: { flow: "authorization" } }
    ])
    expect(find("authorization.failed")).toMatchObject([
      { subject: eve, data: { flow: "authorization", error: "access_denied" } }
    ])

    // A refresh, and the token it gave.
    expect(find("token.refreshed", (e) => e.subject === ada)).toMatchObject([
      { project: "prj_web", connector: "acme/api", data: { rotated: true } }
    ])
    expect(find("token.issued", (e) => e.subject === ada).map((e) => e.data)).toMatchObject([
      { source: "provider", grant: "refresh_token" }
    ])

    // The grant the provider refused.
    expect(find("grant.invalidated")).toMatchObject([
      { subject: 'user:[null,"bob"]', project: "prj_web", data: { reason: "invalid_grant", status: "invalid" } }
    ])

    // The revocation, and the connector made and removed through the admin API.
    expect(find("token.revoked")).toMatchObject([{ subject: "app", data: { count: 1 } }])
    expect(find("connector.created", (e) => e.connector === "acme/extra")).toMatchObject([
      { data: { source: "admin" } }
    ])
    expect(find("connector.removed")).toMatchObject([{ connector: "acme/extra", data: { source: "admin" } }])

    const text = JSON.stringify(all)
    for (const secret of secrets) expect(text).not.toContain(secret)
  })

  it("filters by connector, project, user, kind and time, and pages both ways", async () => {
    const all = (await events("?limit=500")).events
    expect(all.length).toBeGreaterThan(10)

    const adaOnly = (await events(`?user=ada&limit=500`)).events
    expect(adaOnly.length).toBeGreaterThan(0)
    expect(adaOnly.every((e) => e.subject === 'user:[null,"ada"]')).toBe(true)
    const extra = (await events("?connector=acme%2Fextra")).events
    expect(extra.map((e) => e.kind)).toEqual(["connector.removed", "connector.created"])
    const project = (await events("?project=prj_web&limit=500")).events
    expect(project.every((e) => e.project === "prj_web")).toBe(true)
    const kinds = (await events("?kind=authorization.failed,grant.invalidated&kind=token.revoked")).events
    expect(new Set(kinds.map((e) => e.kind))).toEqual(
      new Set(["authorization.failed", "grant.invalidated", "token.revoked"])
    )
    const middle = all[Math.floor(all.length / 2)]?.occurredAt ?? 0
    const since = (await events(`?since=${new Date(middle).toISOString()}&limit=500`)).events
    expect(since.every((e) => e.occurredAt >= middle)).toBe(true)
    const until = (await events(`?until=${middle}&limit=500`)).events
    expect(until.every((e) => e.occurredAt < middle)).toBe(true)
    expect(since.length + until.length).toBe(all.length)

    // Newest first, page by page with `before`, until a page is not full.
    const paged: Array<Event> = []
    let cursor: string | undefined
    for (let i = 0; i < 100; i++) {
      const page: Page = await events(`?limit=4${cursor === undefined ? "" : `&before=${cursor}`}`)
      paged.push(...page.events)
      cursor = page.next
      if (cursor === undefined) break
    }
    expect(paged.map((e) => e.id)).toEqual(all.map((e) => e.id))

    // Oldest first with `after`, the cursor always given. On a database shared by brokers (Postgres), a
    // follower is given only events that had time to settle: none of these yet, then all of them.
    const oldest = all.at(-1)?.seq ?? 0
    // (Only while the event after the oldest is still unsettled: on a busy machine the tests before may have taken
    // longer than the settling time, and then every event is given.)
    const secondOldest = all.at(-2)?.occurredAt ?? 0
    if (name === "postgres" && Date.now() - secondOldest < EVENT_SETTLE_MS - 1_000) {
      expect(await events(`?after=${oldest}&limit=3`)).toEqual({ events: [], next: String(oldest) })
    }
    let after = await events(`?after=${oldest}&limit=3`)
    for (let i = 0; i < 100 && after.events.length < 3; i++) {
      await new Promise((resolve) => setTimeout(resolve, 200))
      after = await events(`?after=${oldest}&limit=3`)
    }
    expect(after.events.map((e) => e.seq)).toEqual(
      [...all]
        .reverse()
        .slice(1, 4)
        .map((e) => e.seq)
    )
    expect(after.next).toBe(String(after.events.at(-1)?.seq))
    const newest = all[0]?.seq ?? 0
    expect(await events(`?after=${newest}`)).toEqual({ events: [], next: String(newest) })
  })

  it("refuses a bad query with a 400 naming the parameter", async () => {
    const cases: ReadonlyArray<readonly [string, string]> = [
      ["?kind=token.stolen", "kind"],
      ["?since=yesterday", "since"],
      ["?until=2025-13-45T00:00:00Z", "until"],
      ["?limit=0", "limit"],
      ["?limit=501", "limit"],
      ["?before=abc", "before"],
      ["?before=5&after=3", "after"],
      ["?connector=a&connector=b", "connector"],
      ["?color=blue", "color"]
    ]
    for (const [query, parameter] of cases) {
      const answer = await call("GET", `/v1/admin/events${query}`, ADMIN_TOKEN)
      expect(answer.status, query).toBe(400)
      const error = answer.body.error as { code: string; issues: ReadonlyArray<{ path: string }> }
      expect(error.code, query).toBe("bad_request")
      expect(
        error.issues.map((issue) => issue.path),
        query
      ).toContain(parameter)
    }
    expect((await call("GET", "/v1/admin/events", KEY)).status).toBe(401)
  })
})
