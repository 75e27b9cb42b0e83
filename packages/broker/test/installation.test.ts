import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { Effect, Redacted } from "effect"
import { getToken } from "effect-connect"
import * as Connect from "effect-connect/promise"
import { type RunningBroker, sdkClient } from "./support/broker.js"
import { oauthClientOf, productionProject, startBrokerWithProvider } from "./support/brokerWithProvider.js"
import { backends, type TestDatabase } from "./support/databases.js"
import { postJson, visit } from "./support/http.js"
import type { OAuthProviderHarness } from "./support/oauthProvider.js"

const KEY = "ck_installation_key_5521"
const ADMIN_TOKEN = "admin_installation_token_7731"
const RETURN_URL = "http://localhost:3000/installed"

const post = async (url: string, body: unknown, token = KEY) => {
  const response = await postJson(url, body, token)
  return { status: response.status, body: (await response.json()) as Record<string, unknown> }
}

describe.each(backends)("installing a connector for a tenant, on $name", ({ make }) => {
  let provider: OAuthProviderHarness
  let database: TestDatabase
  let broker: RunningBroker
  const client = () => sdkClient(broker, KEY)

  /** The tenant's admin opens an install link, signs in at the provider and consents. */
  const install = async (installUrl: string, accountId: string) => {
    const toProvider = await visit(installUrl)
    expect(toProvider.status).toBe(302)
    const providerUrl = new URL(toProvider.location ?? "")
    expect(providerUrl.searchParams.get("code_challenge_method")).toBe("S256")
    // The installation asks for the connector's app scopes, with its own extra parameters.
    expect(providerUrl.searchParams.get("scope")).toBe("openid offline_access api:read")
    expect(providerUrl.searchParams.get("team_hint")).toBe("any")
    const back = await provider.completeAuthorization(providerUrl.toString(), { accountId })
    expect(back.searchParams.get("installation_id")).toBe("4242")
    return visit(back.toString())
  }

  beforeAll(async () => {
    database = await make()
    const started = await startBrokerWithProvider({
      database,
      provider: {
        // A Slack-like token response naming the workspace, and a GitHub-like redirect naming the installation.
        installQuirks: {
          tokenResponse: { team: { id: "T123", name: "Acme" } },
          redirectParams: { installation_id: "4242" }
        }
      },
      env: { CONNECT_ADMIN_TOKEN: ADMIN_TOKEN },
      config: (provider) => {
        const connector = {
          ...oauthClientOf(provider),
          revocationEndpoint: provider.revocationEndpoint,
          authorizationEndpoint: provider.authorizationEndpoint
        }
        const chatBot = (uid: string) => ({
          ...connector,
          uid,
          name: "Chat bot",
          defaultScopes: { app: ["openid", "offline_access", "api:read"] },
          installations: {
            required: true,
            tenantIdFrom: { tokenResponse: "team.id" },
            authorizationParams: { team_hint: "any" }
          }
        })
        const codeApp = (uid: string) => ({
          ...connector,
          uid,
          name: "Code host app",
          defaultScopes: { app: ["openid", "offline_access", "api:read"] },
          installations: {
            required: true,
            tenantIdFrom: { callback: "installation_id" },
            authorizationParams: { team_hint: "any" }
          }
        })
        return {
          // A connector per test that installs or removes, so that no test sees another's installations.
          connectors: [
            chatBot("chat/bot"),
            chatBot("chat/sdk"),
            chatBot("chat/removable"),
            codeApp("code/app"),
            codeApp("code/removable"),
            {
              ...connector,
              uid: "chat/plain",
              name: "Chat bot without token rotation",
              defaultScopes: { app: ["openid", "api:read"] },
              installations: { required: true, tenantIdFrom: { tokenResponse: "team.id" } }
            },
            {
              ...connector,
              uid: "directory/app",
              name: "Directory app (admin consent)",
              defaultScopes: { app: ["api:read"] },
              installations: {
                required: true,
                tenantIdFrom: { callback: "tenant" },
                authorizationEndpoint: `${provider.authorizationEndpoint}?tenant_path={tenantId}`,
                tokenEndpoint: `${provider.tokenEndpoint}?tenant={tenantId}`
              }
            }
          ],
          ...productionProject({ id: "prj_web", key: KEY, returnUrls: [RETURN_URL] }, [
            "chat/bot",
            "chat/sdk",
            "chat/removable",
            "code/app",
            "code/removable",
            "chat/plain",
            "directory/app"
          ])
        }
      }
    })
    provider = started.provider
    broker = started.broker
  })
  afterAll(async () => {
    await broker?.close()
    await provider?.close()
    await database?.drop()
  })

  it.effect(
    "an app token with no installation links to an install; after consent the tenant's own grant gives app tokens",
    () =>
      Effect.gen(function* () {
        const needed = yield* Effect.flip(getToken("chat/bot", { subject: { type: "app" } }))
        expect(needed._tag).toBe("ConnectorInstallationRequired")
        const installUrl = needed._tag === "ConnectorInstallationRequired" ? (needed.installUrl ?? "") : ""
        expect(installUrl.startsWith(`${broker.url}/v1/connect/authorize/`)).toBe(true)
        // Asking again hands out the same open link.
        const again = yield* Effect.flip(getToken("chat/bot", { subject: { type: "app" } }))
        expect(again._tag === "ConnectorInstallationRequired" && again.installUrl).toBe(installUrl)

        const landed = yield* Effect.promise(() => install(installUrl, "workspace-admin"))
        expect(landed.status).toBe(200)
        expect(landed.text).toContain("connected")

        // The tenant id came from the token response (team.id); the first installation is the default.
        const token = yield* getToken("chat/bot", { subject: { type: "app" }, installationId: "T123" })
        const introspection = yield* Effect.promise(() => provider.introspect(Redacted.value(token)))
        expect(introspection).toMatchObject({ active: true, sub: "workspace-admin" })
        const byDefault = yield* getToken("chat/bot", { subject: { type: "app" } })
        expect((yield* Effect.promise(() => provider.introspect(Redacted.value(byDefault)))).sub).toBe(
          "workspace-admin"
        )
        // Another tenant is not installed.
        const other = yield* Effect.flip(getToken("chat/bot", { subject: { type: "app" }, installationId: "T999" }))
        expect(other._tag).toBe("ConnectorInstallationRequired")
      }).pipe(Effect.provide(client()))
  )

  it("POST /v1/connect/install starts an installation that returns to the project's URL with its id", async () => {
    const started = await post(`${broker.url}/v1/connect/install/code%2Fapp`, { returnUrl: RETURN_URL })
    expect(started.status).toBe(200)
    expect(started.body).toMatchObject({ connector: { uid: "code/app" } })
    const landed = await install(String(started.body.url), "org-admin")
    expect(landed.status).toBe(302)
    const back = new URL(landed.location ?? "")
    expect(`${back.origin}${back.pathname}`).toBe(RETURN_URL)
    expect(Object.fromEntries(back.searchParams)).toMatchObject({ status: "completed", installationId: "4242" })
    // The caller that started it sees the outcome with the verifier it holds.
    const status = await post(`${broker.url}/v1/connect/authorize/${String(started.body.request)}/status`, {
      verifier: started.body.verifier
    })
    expect(status.body).toMatchObject({ status: "completed", installationId: "4242" })

    const token = await post(`${broker.url}/v1/connect/token/code%2Fapp`, {
      subject: { type: "app" },
      installationId: "4242"
    })
    expect(token.status).toBe(200)
    expect(token.body).toMatchObject({ installationId: "4242", tenantId: "4242" })
    expect((await provider.introspect(String(token.body.token))).sub).toBe("org-admin")
  })

  it("an installation without a refresh token hands out the token it holds; a project's revocation leaves it installed", async () => {
    const started = await post(`${broker.url}/v1/connect/install/chat%2Fplain`, {})
    expect(started.status).toBe(200)
    const toProvider = await visit(String(started.body.url))
    const back = await provider.completeAuthorization(toProvider.location ?? "", { accountId: "plain-admin" })
    expect((await visit(back.toString())).status).toBe(200)
    const requests = provider.tokenRequests.total
    const ask = () =>
      post(`${broker.url}/v1/connect/token/chat%2Fplain`, { subject: { type: "app" }, installationId: "T123" })
    const first = await ask()
    expect(first.status).toBe(200)
    expect((await provider.introspect(String(first.body.token))).sub).toBe("plain-admin")
    expect((await ask()).body.token).toBe(first.body.token)
    // No provider call: the installation's token is the only one it can give.
    expect(provider.tokenRequests.total).toBe(requests)

    const revoked = await fetch(`${broker.url}/v1/connect/connectors/chat%2Fplain/tokens`, {
      method: "DELETE",
      headers: { authorization: `Bearer ${KEY}`, "content-type": "application/json" },
      body: JSON.stringify({ subject: { type: "app" } })
    })
    // Revoking it at the provider would uninstall the app for every project: that is removing the installation.
    expect(await revoked.json()).toMatchObject({ tokensFound: 1, providerRevoked: 0, providerSkipped: 1 })
    expect((await provider.introspect(String(first.body.token))).active).toBe(true)
    expect((await ask()).body.token).toBe(first.body.token)
  })

  it("the SDK starts an installation for a tenant and reads the installation it made", async () => {
    const options = { baseUrl: broker.url, token: KEY }
    const started = await Connect.startInstallation("chat/sdk", {
      ...options,
      tenantId: "T123",
      callbackUrl: RETURN_URL
    })
    expect(started.url.startsWith(`${broker.url}/v1/connect/authorize/`)).toBe(true)
    expect(await Connect.authorizationStatus(started.request, started.verifier, options)).toMatchObject({
      status: "pending"
    })
    const landed = await install(started.url, "sdk-admin")
    expect(new URL(landed.location ?? "").searchParams.get("installationId")).toBe("T123")
    expect(await Connect.authorizationStatus(started.request, started.verifier, options)).toEqual({
      request: started.request,
      status: "completed",
      installationId: "T123"
    })
    // Bad options are refused before anything is sent, naming the field.
    await expect(Connect.startInstallation("chat/sdk", { ...options, callbackUrl: "ftp://x" })).rejects.toThrow(
      /callbackUrl/
    )
  })

  it("refuses bad install requests, naming the field", async () => {
    const offList = await post(`${broker.url}/v1/connect/install/code%2Fapp`, { returnUrl: "https://evil.test/x" })
    expect(offList.status).toBe(400)
    expect(JSON.stringify(offList.body)).toContain("returnUrl")
    const device = await post(`${broker.url}/v1/connect/install/code%2Fapp`, { deviceCode: true })
    expect(device.status).toBe(400)
    expect(JSON.stringify(device.body)).toContain("deviceCode")
    // An install URL per tenant needs the tenant.
    const noTenant = await post(`${broker.url}/v1/connect/install/directory%2Fapp`, {})
    expect(noTenant.status).toBe(400)
    expect(JSON.stringify(noTenant.body)).toContain("tenantId")
  })

  it("admin consent with no code: the tenant from the redirect, app tokens by client credentials at its endpoint", async () => {
    const started = await post(`${broker.url}/v1/connect/install/directory%2Fapp`, { tenantId: "contoso" })
    expect(started.status).toBe(200)
    const toProvider = await visit(String(started.body.url))
    const providerUrl = new URL(toProvider.location ?? "")
    expect(providerUrl.searchParams.get("tenant_path")).toBe("contoso")
    const state = providerUrl.searchParams.get("state") ?? ""
    // The provider's admin-consent answer: the tenant and the state, no code (Entra's adminconsent endpoint).
    // A tenant id that could not serve as an installation id (a control character) is refused.
    const garbled = await post(`${broker.url}/v1/connect/install/directory%2Fapp`, { tenantId: "contoso" })
    const garbledState = new URL((await visit(String(garbled.body.url))).location ?? "").searchParams.get("state") ?? ""
    const refused = await visit(
      `${broker.url}/v1/connect/callback?tenant=conto%01so&admin_consent=True&state=${garbledState}`
    )
    expect(refused.status).toBe(400)
    expect(refused.text).toContain("invalid_response")
    // Nor one that is not a single path segment: `..` would turn the tenant's endpoint into another.
    for (const tenant of ["..", ".", "a%2Fb"]) {
      const dotted = await post(`${broker.url}/v1/connect/install/directory%2Fapp`, { tenantId: "contoso" })
      const dottedState = new URL((await visit(String(dotted.body.url))).location ?? "").searchParams.get("state") ?? ""
      const answer = await visit(
        `${broker.url}/v1/connect/callback?tenant=${tenant}&admin_consent=True&state=${dottedState}`
      )
      expect(answer.status).toBe(400)
      expect(answer.text).toContain("invalid_response")
    }
    const mismatch = await visit(`${broker.url}/v1/connect/callback?tenant=fabrikam&admin_consent=True&state=${state}`)
    expect(mismatch.status).toBe(400)
    expect(mismatch.text).toContain("tenant_mismatch")
    const noToken = await post(`${broker.url}/v1/connect/token/directory%2Fapp`, {
      subject: { type: "app" },
      installationId: "fabrikam"
    })
    expect(noToken.status).toBe(403)

    const retry = await post(`${broker.url}/v1/connect/install/directory%2Fapp`, { tenantId: "contoso" })
    const retryState = new URL((await visit(String(retry.body.url))).location ?? "").searchParams.get("state") ?? ""
    const done = await visit(`${broker.url}/v1/connect/callback?tenant=contoso&admin_consent=True&state=${retryState}`)
    expect(done.status).toBe(200)
    const before = provider.tokenRequests.count("client_credentials")
    const token = await post(`${broker.url}/v1/connect/token/directory%2Fapp`, {
      subject: { type: "app" },
      installationId: "contoso"
    })
    expect(token.status).toBe(200)
    expect(token.body).toMatchObject({ installationId: "contoso", tenantId: "contoso" })
    expect(provider.tokenRequests.count("client_credentials")).toBe(before + 1)
  })

  it("removing an installation revokes its tokens and grant at the provider; the tenant must install again", async () => {
    const started = await post(`${broker.url}/v1/connect/install/chat%2Fremovable`, {})
    await install(String(started.body.url), "second-admin")
    const first = await post(`${broker.url}/v1/connect/token/chat%2Fremovable`, {
      subject: { type: "app" },
      installationId: "T123"
    })
    expect(first.status).toBe(200)
    expect((await provider.introspect(String(first.body.token))).active).toBe(true)

    const removed = await fetch(`${broker.url}/v1/admin/connectors/chat%2Fremovable/installations/T123`, {
      method: "DELETE",
      headers: { authorization: `Bearer ${ADMIN_TOKEN}` }
    })
    expect(removed.status).toBe(200)
    const summary = (await removed.json()) as Record<string, number>
    expect(summary).toMatchObject({ installationId: "T123", providerFailed: 0 })
    expect(summary.providerRevoked).toBeGreaterThanOrEqual(2)
    expect((await provider.introspect(String(first.body.token))).active).toBe(false)

    const after = await post(`${broker.url}/v1/connect/token/chat%2Fremovable`, {
      subject: { type: "app" },
      installationId: "T123"
    })
    expect(after.status).toBe(403)
    expect(after.body).toMatchObject({ error: { code: "connector_installation_required" } })
    expect(String((after.body.error as Record<string, unknown>).installUrl)).toContain("/v1/connect/authorize/")

    const again = await fetch(`${broker.url}/v1/admin/connectors/chat%2Fremovable/installations/T123`, {
      method: "DELETE",
      headers: { authorization: `Bearer ${ADMIN_TOKEN}` }
    })
    expect(again.status).toBe(404)
  })

  it("removing a connector revokes the refresh tokens its grants hold, not only its issued tokens", async () => {
    // An installation of its own, made as in the test of POST /v1/connect/install.
    const started = await post(`${broker.url}/v1/connect/install/code%2Fremovable`, { returnUrl: RETURN_URL })
    expect((await install(String(started.body.url), "org-admin")).status).toBe(302)
    const revokedBefore = provider.revokedGrantIds.length
    const removed = await fetch(`${broker.url}/v1/admin/connectors/code%2Fremovable`, {
      method: "DELETE",
      headers: { authorization: `Bearer ${ADMIN_TOKEN}` }
    })
    expect(removed.status).toBe(200)
    const body = (await removed.json()) as { grantsFound: number; tokens: Record<string, number> }
    // The installation 4242 holds a grant with a refresh token.
    expect(body.grantsFound).toBe(1)
    expect(body.tokens.providerFailed).toBe(0)
    // The provider saw the grant revoked (a revoked refresh token revokes its grant).
    expect(provider.revokedGrantIds.length).toBeGreaterThan(revokedBefore)
  })
})
