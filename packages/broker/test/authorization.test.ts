import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import * as Official from "@vercel/connect"
import { Effect, Redacted } from "effect"
import { getToken, revokeToken, startAuthorization } from "effect-connect"
import { type RunningBroker, sdkClient } from "./support/broker.js"
import { oauthClientOf, productionProject, startBrokerWithProvider } from "./support/brokerWithProvider.js"
import { sqlite, type TestDatabase } from "./support/databases.js"
import { postJson, visit } from "./support/http.js"
import type { OAuthProviderHarness } from "./support/oauthProvider.js"

const KEY = "ck_authorization_key_8812"
const RETURN_URL = "http://localhost:3000/connected"

describe("user authorization with the authorization code flow and PKCE", () => {
  let provider: OAuthProviderHarness
  let database: TestDatabase
  let broker: RunningBroker
  const client = () => sdkClient(broker, KEY)

  /** The user opens the broker's link, signs in at the provider and consents (or refuses). */
  const consent = async (authorizeUrl: string, accountId: string, deny = false) => {
    const toProvider = await visit(authorizeUrl)
    expect(toProvider.status).toBe(302)
    const providerUrl = new URL(toProvider.location ?? "")
    expect(providerUrl.searchParams.get("code_challenge_method")).toBe("S256")
    // offline_access is among the default scopes: OpenID providers grant it only with prompt=consent.
    expect(providerUrl.searchParams.get("prompt")).toBe("consent")
    expect(providerUrl.searchParams.get("redirect_uri")).toBe(`${broker.url}/v1/connect/callback`)
    const back = await provider.completeAuthorization(providerUrl.toString(), { accountId, deny })
    expect(back.toString().startsWith(`${broker.url}/v1/connect/callback`)).toBe(true)
    return back.toString()
  }

  beforeAll(async () => {
    database = sqlite()
    const started = await startBrokerWithProvider({
      database,
      config: (provider) => ({
        connectors: [
          {
            uid: "acme/api",
            name: "Acme API",
            ...oauthClientOf(provider),
            authorizationEndpoint: provider.authorizationEndpoint,
            defaultScopes: { user: ["openid", "offline_access", "api:read"] }
          },
          {
            // No offline_access: the provider gives no refresh token, as GitHub without expiring tokens.
            uid: "acme/plain",
            name: "Acme API without refresh tokens",
            ...oauthClientOf(provider),
            revocationEndpoint: provider.revocationEndpoint,
            authorizationEndpoint: provider.authorizationEndpoint,
            authorizationParams: { access_type: "offline", state: "not-the-broker's" },
            defaultScopes: { user: ["openid", "api:read"] }
          }
        ],
        ...productionProject({ id: "prj_web", key: KEY, returnUrls: [RETURN_URL] }, ["acme/api", "acme/plain"])
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

  it.effect(
    "a user without a grant is sent to authorize; after consent getToken succeeds; the callback is single use",
    () =>
      Effect.gen(function* () {
        const subject = { type: "user", id: "ada" } as const
        const needed = yield* Effect.flip(getToken("acme/api", { subject }))
        expect(needed._tag).toBe("UserAuthorizationRequired")
        const authorizeUrl = needed._tag === "UserAuthorizationRequired" ? (needed.authorizeUrl ?? "") : ""
        expect(authorizeUrl.startsWith(`${broker.url}/v1/connect/authorize/`)).toBe(true)
        // Asking again hands out the same open link.
        const again = yield* Effect.flip(getToken("acme/api", { subject }))
        expect(again._tag === "UserAuthorizationRequired" && again.authorizeUrl).toBe(authorizeUrl)

        const callback = yield* Effect.promise(() => consent(authorizeUrl, "ada"))
        const landed = yield* Effect.promise(() => visit(callback))
        expect(landed.status).toBe(200)
        expect(landed.text).toContain("connected")

        const token = yield* getToken("acme/api", { subject })
        const introspection = yield* Effect.promise(() => provider.introspect(Redacted.value(token)))
        expect(introspection).toMatchObject({ active: true, sub: "ada" })

        // The official client, its fetch routed to the broker, gets the same user's token.
        const official = yield* Effect.promise(async () => {
          const realFetch = globalThis.fetch
          globalThis.fetch = (input, init) =>
            realFetch(
              String(input instanceof Request ? input.url : input).replace("https://api.vercel.com", broker.url),
              init
            )
          try {
            return await Official.getToken("acme/api", { subject }, { vercelToken: KEY, forceRefresh: true })
          } finally {
            globalThis.fetch = realFetch
          }
        })
        expect((yield* Effect.promise(() => provider.introspect(official))).sub).toBe("ada")

        // The same callback again (a replay) answers the outcome, and changes nothing: no second code exchange.
        const exchanges = provider.tokenRequests.count("authorization_code")
        const replay = yield* Effect.promise(() => visit(callback))
        expect(replay.status).toBe(200)
        expect(replay.text).toContain("connected")
        expect(provider.tokenRequests.count("authorization_code")).toBe(exchanges)
      }).pipe(Effect.provide(client()))
  )

  it("refuses a forged state", async () => {
    const forged = await visit(`${broker.url}/v1/connect/callback?code=made-up&state=forged-state`)
    expect(forged.status).toBe(400)
    expect(forged.text).toContain("state does not match")
    const missing = await visit(`${broker.url}/v1/connect/callback?code=made-up`)
    expect(missing.status).toBe(400)
  })

  it.effect("startAuthorization returns to an allowed returnUrl, with the status the caller can check", () =>
    Effect.gen(function* () {
      const subject = { type: "user", id: "grace" } as const
      const started = yield* startAuthorization("acme/api", { subject }, { callbackUrl: RETURN_URL })
      expect(started.request).toMatch(/^req_/)
      const callback = yield* Effect.promise(() => consent(started.url, "grace"))
      const landed = yield* Effect.promise(() => visit(callback))
      expect(landed.status).toBe(302)
      const returned = new URL(landed.location ?? "")
      expect(`${returned.origin}${returned.pathname}`).toBe(RETURN_URL)
      expect(returned.searchParams.get("status")).toBe("completed")
      expect(returned.searchParams.get("request")).toBe(started.request)
      const status = yield* Effect.promise(() =>
        postJson(
          `${broker.url}/v1/connect/authorize/${started.request}/status`,
          { verifier: Redacted.value(started.verifier) },
          KEY
        ).then((response) => response.json())
      )
      expect(status).toMatchObject({ request: started.request, status: "completed" })
      const token = yield* getToken("acme/api", { subject })
      expect((yield* Effect.promise(() => provider.introspect(Redacted.value(token)))).sub).toBe("grace")
    }).pipe(Effect.provide(client()))
  )

  it.effect("a grant without a refresh token gives its token until revoked; then the user must authorize again", () =>
    Effect.gen(function* () {
      const subject = { type: "user", id: "barbara" } as const
      const started = yield* startAuthorization("acme/plain", { subject })
      const toProvider = yield* Effect.promise(() => visit(started.url))
      const providerUrl = new URL(toProvider.location ?? "")
      // The connector's own parameters are sent; the broker's own cannot be overridden by them.
      expect(providerUrl.searchParams.get("access_type")).toBe("offline")
      expect(providerUrl.searchParams.get("state")).not.toBe("not-the-broker's")
      const back = yield* Effect.promise(() =>
        provider.completeAuthorization(providerUrl.toString(), { accountId: "barbara" })
      )
      expect((yield* Effect.promise(() => visit(back.toString()))).status).toBe(200)
      const requests = provider.tokenRequests.total
      const token = yield* getToken("acme/plain", { subject })
      expect(yield* getToken("acme/plain", { subject }, { forceRefresh: true })).toEqual(token)
      expect(provider.tokenRequests.total).toBe(requests)

      const summary = yield* revokeToken("acme/plain", { subject })
      expect(summary).toMatchObject({ tokensFound: 1, providerRevoked: 1 })
      expect((yield* Effect.promise(() => provider.introspect(Redacted.value(token)))).active).toBe(false)
      const after = yield* Effect.flip(getToken("acme/plain", { subject }))
      expect(after._tag).toBe("UserAuthorizationRequired")
    }).pipe(Effect.provide(client()))
  )

  it.effect("a user's first token is for the resource the authorization named (the code exchange sends it)", () =>
    Effect.gen(function* () {
      const subject = { type: "user", id: "margaret" } as const
      const resources = [`${provider.resourcePrefix}calendar`]
      const started = yield* startAuthorization("acme/api", { subject, resources })
      const callback = yield* Effect.promise(() => consent(started.url, "margaret"))
      expect((yield* Effect.promise(() => visit(callback))).status).toBe(200)
      const exchange = provider.tokenRequests.log.filter((r) => r.grantType === "authorization_code").at(-1)
      expect(exchange?.resources).toEqual(resources)
      const requests = provider.tokenRequests.total
      const token = yield* getToken("acme/api", { subject, resources })
      // The token the code exchange gave answers the request: no new provider call.
      expect(provider.tokenRequests.total).toBe(requests)
      const introspection = yield* Effect.promise(() => provider.introspect(Redacted.value(token)))
      expect(introspection).toMatchObject({ active: true, sub: "margaret", aud: resources[0] })
    }).pipe(Effect.provide(client()))
  )

  it.effect("a denied authorization returns with the error and leaves no grant", () =>
    Effect.gen(function* () {
      const subject = { type: "user", id: "linus" } as const
      const started = yield* startAuthorization("acme/api", { subject }, { callbackUrl: RETURN_URL })
      const callback = yield* Effect.promise(() => consent(started.url, "linus", true))
      const landed = yield* Effect.promise(() => visit(callback))
      const returned = new URL(landed.location ?? "")
      expect(returned.searchParams.get("status")).toBe("failed")
      expect(returned.searchParams.get("error")).toBe("access_denied")
      const error = yield* Effect.flip(getToken("acme/api", { subject }))
      expect(error._tag).toBe("UserAuthorizationRequired")
    }).pipe(Effect.provide(client()))
  )

  it.effect("refuses a returnUrl off the allow-list, and the device flow this connector does not offer", () =>
    Effect.gen(function* () {
      const subject = { type: "user", id: "eve" } as const
      const offList = yield* Effect.flip(
        startAuthorization("acme/api", { subject }, { callbackUrl: "https://evil.example/steal" })
      )
      expect(offList._tag).toBe("InvalidRequest")
      expect(offList.message).toContain("returnUrl")
      const device = yield* Effect.flip(startAuthorization("acme/api", { subject }, { deviceCode: true }))
      expect(device._tag).toBe("InvalidRequest")
      expect(device.message).toContain("deviceCode")
    }).pipe(Effect.provide(client()))
  )
})
