import { SqlClient } from "@effect/sql"
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import type { RunningBroker } from "./support/broker.js"
import { oauthClientOf, startBrokerWithProvider } from "./support/brokerWithProvider.js"
import { backends, layerOf, type TestDatabase } from "./support/databases.js"
import { visit } from "./support/http.js"
import type { OAuthProviderHarness } from "./support/oauthProvider.js"

const KEY = "ck_confirm_key_8835"
const ADMIN_TOKEN = "admin_confirm_token_9946"
const RETURN_URL = "http://localhost:3000/connected"

const post = async (url: string, body: unknown, token = KEY) => {
  const response = await fetch(url, {
    method: "POST",
    headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
    body: JSON.stringify(body)
  })
  return { status: response.status, body: (await response.json()) as Record<string, unknown> }
}

describe.each(backends)("a project that confirms its users, on $name", ({ make }) => {
  let provider: OAuthProviderHarness
  let database: TestDatabase
  let broker: RunningBroker
  const sql = <A>(f: (sql: SqlClient.SqlClient) => Effect.Effect<A, unknown>) =>
    Effect.runPromise(Effect.flatMap(SqlClient.SqlClient, f).pipe(Effect.provide(layerOf(database))))

  const start = (id: string, extra: Record<string, unknown> = { returnUrl: RETURN_URL }) =>
    post(`${broker.url}/v1/connect/authorize/acme%2Fapi`, { subject: { type: "user", id }, ...extra })
  const token = (id: string) => post(`${broker.url}/v1/connect/token/acme%2Fapi`, { subject: { type: "user", id } })
  const status = (started: Record<string, unknown>) =>
    post(`${broker.url}/v1/connect/authorize/${String(started.request)}/status`, { verifier: started.verifier })
  const confirm = (started: Record<string, unknown>, code: string, verifier = String(started.verifier)) =>
    post(`${broker.url}/v1/connect/authorize/${String(started.request)}/confirm`, { verifier, code })
  /** Someone opens the link, signs in at the provider as `accountId` and consents: where the broker sends them. */
  const openLink = async (url: string, accountId: string) => {
    const toProvider = await visit(url)
    const callback = await provider.completeAuthorization(toProvider.location ?? "", { accountId })
    const landed = await visit(callback)
    return { callback: callback.toString(), landed }
  }

  beforeAll(async () => {
    database = await make()
    const started = await startBrokerWithProvider({
      database,
      env: { CONNECT_ADMIN_TOKEN: ADMIN_TOKEN },
      config: (provider) => ({
        connectors: [
          {
            uid: "acme/api",
            name: "Acme API",
            ...oauthClientOf(provider),
            authorizationEndpoint: provider.authorizationEndpoint,
            deviceAuthorizationEndpoint: provider.deviceAuthorizationEndpoint,
            defaultScopes: { user: ["openid", "offline_access", "api:read"] }
          }
        ],
        projects: [
          {
            id: "prj_web",
            keys: [{ environment: "production", secret: KEY }],
            returnUrls: [RETURN_URL],
            confirmUsers: true
          }
        ],
        links: [{ connector: "acme/api", project: "prj_web", environments: ["production"] }]
      })
    })
    provider = started.provider
    broker = started.broker
  })
  afterAll(async () => {
    await broker?.close()
    await provider?.close()
    await database?.drop()
  })

  it("the grant waits until the application confirms its user with the code its return URL received", async () => {
    const started = await start("ada")
    expect(started.status).toBe(200)
    const { callback, landed } = await openLink(String(started.body.url), "ada")
    expect(landed.status).toBe(302)
    const back = new URL(landed.location ?? "")
    expect(`${back.origin}${back.pathname}`).toBe(RETURN_URL)
    expect(back.searchParams.get("status")).toBe("awaiting_confirmation")
    const code = back.searchParams.get("code") ?? ""
    expect(code.length).toBeGreaterThan(20)

    // Until confirmed: no token, and the status says so.
    expect((await status(started.body)).body).toMatchObject({ status: "awaiting_confirmation" })
    const before = await token("ada")
    expect(before.status).toBe(403)
    expect(before.body).toMatchObject({ error: { code: "user_authorization_required" } })
    // A replayed callback (whoever read the state) answers the outcome, never the code.
    const replay = await visit(callback)
    expect(replay.status).toBe(302)
    expect(new URL(replay.location ?? "").searchParams.get("status")).toBe("awaiting_confirmation")
    expect(new URL(replay.location ?? "").searchParams.has("code")).toBe(false)
    // A wrong code, or the right code without the request's verifier, confirms nothing.
    expect((await confirm(started.body, "not-the-code")).status).toBe(400)
    expect(JSON.stringify((await confirm(started.body, code, "not-the-verifier")).body)).toContain("verifier")

    const confirmed = await confirm(started.body, code)
    expect(confirmed).toMatchObject({ status: 200, body: { request: started.body.request, status: "completed" } })
    const after = await token("ada")
    expect(after.status).toBe(200)
    expect((await provider.introspect(String(after.body.token))).sub).toBe("ada")
    // The code is good once.
    expect((await confirm(started.body, code)).status).toBe(400)
  })

  it("a link opened by someone else and never confirmed connects nobody, and its grant expires with the request", async () => {
    const started = await start("grace")
    // The link went to someone else: they sign in as themselves; the application, seeing its signed-in user is
    // not grace, does not confirm.
    const { landed } = await openLink(String(started.body.url), "mallory")
    expect(new URL(landed.location ?? "").searchParams.get("status")).toBe("awaiting_confirmation")
    const code = new URL(landed.location ?? "").searchParams.get("code") ?? ""
    expect((await token("grace")).status).toBe(403)
    const request = String(started.body.request)
    expect(
      await sql((sql) => sql<{ id: string }>`SELECT id FROM authorization_requests WHERE sealed_grant IS NOT NULL`)
    ).toEqual([{ id: request }])

    // The request's time runs out.
    await sql((sql) => sql`UPDATE authorization_requests SET expires_at = 1 WHERE id = ${request}`)
    expect((await status(started.body)).body).toMatchObject({ status: "expired" })
    expect((await confirm(started.body, code)).status).toBe(400)
    expect((await token("grace")).status).toBe(403)
    // The sealed grant is dropped with the next request.
    expect((await start("linus")).status).toBe(200)
    expect(
      await sql((sql) => sql<{ id: string }>`SELECT id FROM authorization_requests WHERE sealed_grant IS NOT NULL`)
    ).toEqual([])
  })

  it("needs a return URL, offers no device flow, and hands out no link from the token route", async () => {
    const noReturn = await start("ada", {})
    expect(noReturn.status).toBe(400)
    expect(JSON.stringify(noReturn.body)).toContain("returnUrl")
    const device = await start("ada", { deviceCode: true })
    expect(device.status).toBe(400)
    expect(JSON.stringify(device.body)).toContain("deviceCode")
    const needed = await token("nobody")
    expect(needed.status).toBe(403)
    expect(JSON.stringify(needed.body)).not.toContain("authorizeUrl")
  })

  it("the admin API sets and shows confirmUsers", async () => {
    const created = await fetch(`${broker.url}/v1/admin/projects`, {
      method: "POST",
      headers: { authorization: `Bearer ${ADMIN_TOKEN}`, "content-type": "application/json" },
      body: JSON.stringify({ id: "prj_admin", confirmUsers: true })
    })
    expect(created.status).toBe(201)
    expect(await created.json()).toMatchObject({ id: "prj_admin", confirmUsers: true })
  })
})
