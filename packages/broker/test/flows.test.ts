import { SqlClient } from "@effect/sql"
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { freePort, type RunningBroker, startBroker } from "./support/broker.js"
import { productionProject } from "./support/brokerWithProvider.js"
import { backends, layerOf, type TestDatabase } from "./support/databases.js"
import { visit } from "./support/http.js"
import { type OAuthProviderHarness, startOAuthProvider } from "./support/oauthProvider.js"
import { startTokenProxy, type TokenProxy } from "./support/tokenProxy.js"

const KEY = "ck_flows_key_4471"
const ADMIN_TOKEN = "admin_flows_token_5582"

const post = async (url: string, body: unknown, token = KEY) => {
  const response = await fetch(url, {
    method: "POST",
    headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
    body: JSON.stringify(body)
  })
  return { status: response.status, body: (await response.json()) as Record<string, unknown> }
}

describe.each(backends)(
  "authorization flows refuse what is not theirs and finish what they start, on $name",
  ({ make }) => {
    let provider: OAuthProviderHarness
    let proxy: TokenProxy
    let database: TestDatabase
    let broker: RunningBroker

    /** The user opens a link, signs in at the provider and consents: the callback URL the provider sends back. */
    const consent = async (url: string, accountId: string) => {
      const toProvider = await visit(url)
      return (await provider.completeAuthorization(toProvider.location ?? "", { accountId })).toString()
    }
    const authorize = async (id: string) => {
      const started = await post(`${broker.url}/v1/connect/authorize/acme%2Fuser`, { subject: { type: "user", id } })
      expect(started.status).toBe(200)
      return { ...started.body, callback: await consent(String(started.body.url), id) }
    }
    const statusOf = async (started: Record<string, unknown>) =>
      (
        await post(`${broker.url}/v1/connect/authorize/${String(started.request)}/status`, {
          verifier: started.verifier
        })
      ).body
    const userToken = (id: string) =>
      post(`${broker.url}/v1/connect/token/acme%2Fuser`, { subject: { type: "user", id } })
    const grantVersions = () =>
      Effect.runPromise(
        Effect.flatMap(
          SqlClient.SqlClient,
          (sql) =>
            sql<{ subject: string; version: number | string }>`SELECT subject, version FROM grants ORDER BY subject`
        ).pipe(Effect.provide(layerOf(database)))
      ).then((rows) => rows.map((row) => `${row.subject}:${Number(row.version)}`))

    beforeAll(async () => {
      database = await make()
      const port = await freePort()
      provider = await startOAuthProvider({
        redirectUris: [`http://127.0.0.1:${port}/v1/connect/callback`],
        installQuirks: { tokenResponse: { team: { id: "T123" } } }
      })
      proxy = await startTokenProxy({ target: provider.tokenEndpoint, tenants: ["contoso"] })
      const connector = {
        type: "oauth",
        clientId: provider.clients.broker.clientId,
        clientSecret: provider.clients.broker.clientSecret,
        tokenEndpoint: proxy.tokenEndpoint,
        revocationEndpoint: provider.revocationEndpoint,
        authorizationEndpoint: provider.authorizationEndpoint
      }
      broker = await startBroker({
        database,
        port,
        env: { CONNECT_ADMIN_TOKEN: ADMIN_TOKEN },
        config: {
          connectors: [
            {
              ...connector,
              uid: "acme/user",
              name: "Acme for users",
              defaultScopes: { user: ["openid", "offline_access", "api:read"] }
            },
            {
              ...connector,
              uid: "directory/app",
              name: "Directory app (admin consent)",
              defaultScopes: { app: ["api:read"] },
              installations: {
                required: true,
                tenantIdFrom: { callback: "tenant" },
                authorizationEndpoint: `${provider.authorizationEndpoint}?adminconsent=1`,
                tokenEndpoint: `${proxy.tokenEndpoint}?tenant={tenantId}`
              }
            },
            {
              ...connector,
              uid: "chat/bot",
              name: "Chat bot",
              defaultScopes: { app: ["openid", "offline_access", "api:read"] },
              installations: { required: true, tenantIdFrom: { tokenResponse: "team.id" } }
            }
          ],
          ...productionProject({ id: "prj_web", key: KEY }, ["acme/user", "directory/app", "chat/bot"])
        }
      })
    })
    afterAll(async () => {
      await broker?.close()
      await proxy?.close()
      await provider?.close()
      await database?.drop()
    })

    it("a forged admin-consent callback (a tenant, no code) makes no installation: the request fails unverified_tenant", async () => {
      const started = await post(`${broker.url}/v1/connect/install/directory%2Fapp`, {})
      expect(started.status).toBe(200)
      // Whoever holds the link reads the state from its first redirect.
      const state = new URL((await visit(String(started.body.url))).location ?? "").searchParams.get("state") ?? ""
      const forged = await visit(`${broker.url}/v1/connect/callback?state=${state}&tenant=evil&admin_consent=True`)
      expect(forged.status).toBe(400)
      expect(forged.text).toContain("unverified_tenant")
      expect(await statusOf(started.body)).toMatchObject({ status: "failed", error: "unverified_tenant" })
      // The tenant was asked about (a client-credentials token at its endpoint), and refused.
      expect(proxy.count("client_credentials")).toBeGreaterThanOrEqual(1)
      for (const asked of [{ installationId: "evil" }, {}]) {
        const token = await post(`${broker.url}/v1/connect/token/directory%2Fapp`, {
          subject: { type: "app" },
          ...asked
        })
        expect(token.status).toBe(403)
        expect(token.body).toMatchObject({ error: { code: "connector_installation_required" } })
      }

      // A tenant that did consent is verified the same way, and installed.
      const genuine = await post(`${broker.url}/v1/connect/install/directory%2Fapp`, {})
      const genuineState =
        new URL((await visit(String(genuine.body.url))).location ?? "").searchParams.get("state") ?? ""
      const done = await visit(
        `${broker.url}/v1/connect/callback?state=${genuineState}&tenant=contoso&admin_consent=True`
      )
      expect(done.status).toBe(200)
      expect(await statusOf(genuine.body)).toMatchObject({ status: "completed", installationId: "contoso" })
      const token = await post(`${broker.url}/v1/connect/token/directory%2Fapp`, { subject: { type: "app" } })
      expect(token.status).toBe(200)
      expect(token.body).toMatchObject({ installationId: "contoso" })
    })

    it("a browser that goes away during the callback does not stop it: the request completes and the token is served", async () => {
      const held = proxy.holdCodeExchanges()
      const started = await authorize("ada")
      const browser = new AbortController()
      const leaving = fetch(started.callback, { redirect: "manual", signal: browser.signal }).catch(() => "gone")
      await held.arrived
      browser.abort()
      expect(await leaving).toBe("gone")
      // Had the broker given the exchange up with the browser, the held request would be abandoned.
      const abandoned = await Promise.race([
        held.abandoned.then(() => true),
        new Promise<boolean>((resolve) => setTimeout(() => resolve(false), 1_000))
      ])
      expect(abandoned).toBe(false)
      held.release()
      // The same callback again awaits the outcome of the one under way and answers it.
      const replay = await visit(started.callback)
      expect(replay.status).toBe(200)
      expect(replay.text).toContain("connected")
      expect(await statusOf(started)).toMatchObject({ status: "completed" })
      const token = await userToken("ada")
      expect(token.status).toBe(200)
      expect((await provider.introspect(String(token.body.token))).sub).toBe("ada")
      expect(proxy.count("authorization_code")).toBe(1)
    })

    it("replayed callbacks, also 5 at once, answer the outcome with one code exchange and leave the grant unchanged", async () => {
      const exchanges = proxy.count("authorization_code")
      const started = await authorize("grace")
      const answers = await Promise.all(Array.from({ length: 5 }, () => visit(started.callback)))
      expect(answers.map((answer) => answer.status)).toEqual([200, 200, 200, 200, 200])
      expect(proxy.count("authorization_code")).toBe(exchanges + 1)
      const token = await userToken("grace")
      expect(token.status).toBe(200)
      const grants = await grantVersions()

      const later = await Promise.all(Array.from({ length: 5 }, () => visit(started.callback)))
      expect(later.map((answer) => answer.status)).toEqual([200, 200, 200, 200, 200])
      expect(proxy.count("authorization_code")).toBe(exchanges + 1)
      expect(await grantVersions()).toEqual(grants)
      expect((await userToken("grace")).body.token).toBe(token.body.token)
      expect(await statusOf(started)).toMatchObject({ status: "completed" })
    })

    it("removing an installation revokes its grant at the provider: its refresh token introspects inactive", async () => {
      const answers = proxy.answers.length
      const started = await post(`${broker.url}/v1/connect/install/chat%2Fbot`, {})
      expect((await visit(await consent(String(started.body.url), "bot-admin"))).status).toBe(200)
      // The grant the installation holds: the refresh token of its code exchange.
      const refreshToken = String(
        proxy.answers.slice(answers).find((answer) => "refresh_token" in answer)?.refresh_token
      )
      expect((await provider.introspect(refreshToken)).active).toBe(true)

      const removed = await fetch(`${broker.url}/v1/admin/connectors/chat%2Fbot/installations/T123`, {
        method: "DELETE",
        headers: { authorization: `Bearer ${ADMIN_TOKEN}` }
      })
      expect(removed.status).toBe(200)
      // No token was ever issued from it: what is revoked is the grant itself.
      expect(await removed.json()).toMatchObject({ tokensFound: 0, grantsFound: 1, providerFailed: 0 })
      expect((await provider.introspect(refreshToken)).active).toBe(false)
    })
  }
)
