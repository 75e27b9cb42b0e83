import { createHash, generateKeyPairSync, type KeyObject } from "node:crypto"
import { afterEach, describe, expect, it } from "@effect/vitest"
import { SignJWT } from "jose"
import { type QuirkProvider, type QuirkProviderOptions, startQuirkProvider } from "../src/testing.js"

const running: Array<QuirkProvider> = []

afterEach(async () => {
  for (const provider of running.splice(0)) await provider.close()
})

const start = async (options: QuirkProviderOptions) => {
  const provider = await startQuirkProvider(options)
  running.push(provider)
  return provider
}

const basic = (provider: QuirkProvider) =>
  `Basic ${Buffer.from(`${provider.clientId}:${provider.clientSecret}`).toString("base64")}`

/** A code from the provider's consent, with its PKCE verifier. */
const codeOf = async (provider: QuirkProvider, scope: Record<string, string>) => {
  const verifier = "v".repeat(43)
  const challenge = createHash("sha256").update(verifier).digest("base64url")
  const url = new URL(`${provider.url}/authorize`)
  for (const [key, value] of Object.entries({
    redirect_uri: "http://127.0.0.1:1/cb",
    state: "s",
    code_challenge: challenge,
    ...scope
  }))
    url.searchParams.set(key, value)
  const back = await fetch(url, { redirect: "manual" })
  return { code: new URL(back.headers.get("location") ?? "").searchParams.get("code") ?? "", verifier }
}

const postForm = (url: string, form: Record<string, string>, headers: Record<string, string> = {}) =>
  fetch(url, {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded", ...headers },
    body: new URLSearchParams(form)
  })

describe("the quirk provider", () => {
  it("answers in the preset's shape: GitHub's form body without Accept JSON, and its errors with HTTP 200", async () => {
    const github = await start({ preset: "github" })
    const post = { client_id: github.clientId, client_secret: github.clientSecret }
    const { code, verifier } = await codeOf(github, { scope: "read:user" })
    const form = await postForm(`${github.url}/token`, {
      grant_type: "authorization_code",
      code,
      code_verifier: verifier,
      ...post
    })
    expect(form.headers.get("content-type")).toMatch(/^application\/x-www-form-urlencoded/)
    const fields = new URLSearchParams(await form.text())
    expect(fields.get("access_token")).toBe(github.accessTokens[0])
    expect(fields.has("expires_in")).toBe(false)
    const again = await postForm(
      `${github.url}/token`,
      { grant_type: "authorization_code", code, code_verifier: verifier, ...post },
      { accept: "application/json" }
    )
    expect(again.status).toBe(200)
    expect(await again.json()).toMatchObject({ error: "invalid_grant" })
    const wrongClient = await postForm(
      `${github.url}/token`,
      { grant_type: "authorization_code", code: "x" },
      { accept: "application/json" }
    )
    expect(await wrongClient.json()).toMatchObject({ error: "invalid_client" })
  })

  it("Slack: ok false errors; a user's token under authed_user; expires_in as a string when asked", async () => {
    const slack = await start({ preset: "slack", answer: { expiresIn: "string" } })
    const { code, verifier } = await codeOf(slack, { user_scope: "users:read" })
    const answer = await postForm(
      `${slack.url}/token`,
      { grant_type: "authorization_code", code, code_verifier: verifier },
      { authorization: basic(slack) }
    )
    const body = (await answer.json()) as Record<string, unknown>
    expect(body).toMatchObject({
      ok: true,
      team: { id: "T0001" },
      authed_user: { token_type: "user", expires_in: "3600" }
    })
    expect(body.access_token).toBeUndefined()
    slack.fail({ error: "invalid_refresh_token" })
    const refused = await postForm(
      `${slack.url}/token`,
      { grant_type: "refresh_token", refresh_token: "x" },
      { authorization: basic(slack) }
    )
    expect(refused.status).toBe(200)
    expect(await refused.json()).toEqual({ ok: false, error: "invalid_refresh_token" })
  })

  it("Shopify: expiring offline tokens with a rotating refresh token only when the exchange says expiring=1", async () => {
    const shopify = await start({ preset: "shopify" })
    const post = { client_id: shopify.clientId, client_secret: shopify.clientSecret }
    const exchange = async (extra: Record<string, string>) => {
      const { code, verifier } = await codeOf(shopify, { scope: "read_products" })
      const answer = await postForm(
        `${shopify.url}/token`,
        { grant_type: "authorization_code", code, code_verifier: verifier, ...post, ...extra },
        { accept: "application/json" }
      )
      return (await answer.json()) as Record<string, unknown>
    }
    const lasting = await exchange({})
    expect(lasting).toEqual({ access_token: shopify.accessTokens[0], scope: "read_products" })
    const expiring = await exchange({ expiring: "1" })
    expect(expiring).toMatchObject({ expires_in: 3600, refresh_token: expect.any(String) })
    const refresh = async (refreshToken: unknown) =>
      postForm(
        `${shopify.url}/token`,
        { grant_type: "refresh_token", refresh_token: String(refreshToken), ...post },
        { accept: "application/json" }
      )
    const refreshed = (await (await refresh(expiring.refresh_token)).json()) as Record<string, unknown>
    expect(refreshed.refresh_token).not.toBe(expiring.refresh_token)
    expect((await refresh(expiring.refresh_token)).status).toBe(400)
  })

  describe("device authorization (RFC 8628), as each provider runs it", () => {
    const DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
    const credentials = (provider: QuirkProvider) => ({
      client_id: provider.clientId,
      client_secret: provider.clientSecret
    })
    const poll = async (provider: QuirkProvider, deviceCode: string, extra: Record<string, string> = {}) => {
      const answer = await postForm(
        `${provider.url}/token`,
        { grant_type: DEVICE_GRANT, device_code: deviceCode, ...credentials(provider), ...extra },
        { accept: "application/json" }
      )
      return { status: answer.status, body: (await answer.json()) as Record<string, unknown> }
    }

    it("GitHub: a form answer unless Accept asks for JSON; pending and slow_down with HTTP 200; a code used once", async () => {
      const github = await start({ preset: "github" })
      const started = await postForm(`${github.url}/device`, { scope: "read:user", ...credentials(github) })
      expect(started.headers.get("content-type")).toMatch(/^application\/x-www-form-urlencoded/)
      const fields = new URLSearchParams(await started.text())
      expect(fields.get("verification_uri")).toBe(`${github.url}/activate`)
      expect(fields.get("interval")).toBe("5")
      const deviceCode = fields.get("device_code") ?? ""
      expect(await poll(github, deviceCode)).toMatchObject({ status: 200, body: { error: "authorization_pending" } })
      // Polled again before the interval is over.
      // With the new interval, 5 seconds more.
      expect(await poll(github, deviceCode)).toMatchObject({ status: 200, body: { error: "slow_down", interval: 10 } })
      const approved = await fetch(`${github.url}/activate?user_code=${fields.get("user_code")}`)
      expect(approved.status).toBe(200)
      expect((await poll(github, deviceCode)).body.access_token).toBe(github.accessTokens[0])
      expect(await poll(github, deviceCode)).toMatchObject({ status: 200, body: { error: "incorrect_device_code" } })
      expect(github.devices.get(fields.get("user_code") ?? "")).toMatchObject({ status: "used", polls: 3 })
    })

    it("Google: verification_url, only the device flow's scopes, pending with 428", async () => {
      const google = await start({ preset: "google" })
      const refused = await postForm(`${google.url}/device`, {
        scope: "openid https://www.googleapis.com/auth/gmail.readonly",
        ...credentials(google)
      })
      expect(refused.status).toBe(400)
      expect(await refused.json()).toMatchObject({ error: "invalid_scope" })
      const started = await postForm(`${google.url}/device`, { scope: "openid email", ...credentials(google) })
      const body = (await started.json()) as Record<string, string>
      expect(body.verification_url).toBe(`${google.url}/activate`)
      expect(body.verification_uri).toBeUndefined()
      expect(await poll(google, body.device_code ?? "")).toMatchObject({
        status: 428,
        body: { error: "authorization_pending" }
      })
    })

    it("Microsoft: at /devicecode, with a message; a refusal is authorization_declined", async () => {
      const microsoft = await start({ preset: "microsoft" })
      expect((await postForm(`${microsoft.url}/device`, credentials(microsoft))).status).toBe(404)
      const started = await postForm(`${microsoft.url}/devicecode`, { scope: "openid", ...credentials(microsoft) })
      const body = (await started.json()) as Record<string, string>
      expect(body.message).toContain(body.user_code)
      await fetch(`${microsoft.url}/activate?user_code=${body.user_code}&decision=deny`)
      expect(await poll(microsoft, body.device_code ?? "")).toMatchObject({
        status: 400,
        body: { error: "authorization_declined" }
      })
    })

    it("Twitch: scopes in scopes (again in each poll), the code in the link, errors as {status, message}, scope as an array", async () => {
      const twitch = await start({ preset: "twitch" })
      const missing = await postForm(`${twitch.url}/device`, { scope: "user:read:email", ...credentials(twitch) })
      expect(await missing.json()).toEqual({ status: 400, message: "missing scopes" })
      const begin = async () =>
        (await (
          await postForm(`${twitch.url}/device`, { scopes: "user:read:email bits:read", ...credentials(twitch) })
        ).json()) as Record<string, string>
      const [first, second] = [await begin(), await begin()]
      const link = new URL(first?.verification_uri ?? "")
      expect(link.searchParams.get("device-code")).toBe(first?.user_code)
      // Its poll repeats the scopes.
      expect(await poll(twitch, first?.device_code ?? "")).toEqual({
        status: 400,
        body: { status: 400, message: "missing scopes" }
      })
      const scopes = { scopes: "user:read:email bits:read" }
      expect(await poll(twitch, first?.device_code ?? "", scopes)).toEqual({
        status: 400,
        body: { status: 400, message: "authorization_pending" }
      })
      twitch.expireDevice(first?.user_code ?? "")
      expect((await poll(twitch, first?.device_code ?? "", scopes)).body).toEqual({
        status: 400,
        message: "invalid device code"
      })
      await fetch(`${twitch.url}/activate?device-code=${second?.user_code}`)
      expect((await poll(twitch, second?.device_code ?? "", scopes)).body.scope).toEqual([
        "user:read:email",
        "bits:read"
      ])
    })
  })

  it("Figma refreshes at /refresh only; Notion revokes with JSON and its version; HubSpot's errors", async () => {
    const figma = await start({ preset: "figma" })
    const { code, verifier } = await codeOf(figma, { scope: "file_content:read" })
    const tokens = (await (
      await postForm(
        `${figma.url}/token`,
        { grant_type: "authorization_code", code, code_verifier: verifier },
        { authorization: basic(figma) }
      )
    ).json()) as Record<string, string>
    const refresh = { grant_type: "refresh_token", refresh_token: tokens.refresh_token ?? "" }
    const atToken = await postForm(`${figma.url}/token`, refresh, { authorization: basic(figma) })
    expect(await atToken.json()).toMatchObject({ error: "unsupported_grant_type" })
    const refreshed = (await (
      await postForm(`${figma.url}/refresh`, refresh, { authorization: basic(figma) })
    ).json()) as Record<string, unknown>
    expect(refreshed.access_token).toBe(figma.accessTokens[1])
    expect(refreshed.refresh_token).toBeUndefined()

    const notion = await start({ preset: "notion" })
    const asForm = await postForm(`${notion.url}/revoke`, { token: "t1" }, { authorization: basic(notion) })
    expect(asForm.status).toBe(400)
    const asJson = await fetch(`${notion.url}/revoke`, {
      method: "POST",
      headers: { authorization: basic(notion), "content-type": "application/json", "notion-version": "2025-09-03" },
      body: JSON.stringify({ token: "t2" })
    })
    expect(asJson.status).toBe(200)
    expect([...notion.revoked]).toEqual(["t2"])

    const hubspot = await start({ preset: "hubspot" })
    hubspot.fail({ error: "invalid_grant" })
    const refused = await postForm(`${hubspot.url}/token`, { grant_type: "refresh_token", refresh_token: "x" })
    expect(refused.status).toBe(400)
    expect(await refused.json()).toMatchObject({ category: "VALIDATION_ERROR", correlationId: expect.any(String) })
  })

  describe("GitHub App installation tokens", () => {
    const keys = () => generateKeyPairSync("rsa", { modulusLength: 2048 })
    const app = keys()
    const publicKey = app.publicKey.export({ type: "spki", format: "pem" }).toString()
    const jwt = (key: KeyObject, claims: { iss: string; iat: number; exp: number }) =>
      new SignJWT({})
        .setProtectedHeader({ alg: "RS256" })
        .setIssuer(claims.iss)
        .setIssuedAt(claims.iat)
        .setExpirationTime(claims.exp)
        .sign(key)
    const now = () => Math.floor(Date.now() / 1000)

    const ask = async (provider: QuirkProvider, token: string, installation = provider.tenantId) => {
      const answer = await fetch(`${provider.url}/app/installations/${installation}/access_tokens`, {
        method: "POST",
        headers: { authorization: `Bearer ${token}` }
      })
      return { status: answer.status, body: (await answer.json()) as Record<string, unknown> }
    }

    it("verifies the JWT's signature, iss and exp before it answers a token and its expiry", async () => {
      const provider = await start({ preset: "github-app", app: { appId: "31337", publicKey } })
      const good = await ask(provider, await jwt(app.privateKey, { iss: "31337", iat: now() - 60, exp: now() + 540 }))
      expect(good.status).toBe(201)
      expect(good.body.token).toBe(provider.accessTokens[0])
      expect(Date.parse(String(good.body.expires_at))).toBeGreaterThan(Date.now())
      const otherKey = await ask(
        provider,
        await jwt(keys().privateKey, { iss: "31337", iat: now() - 60, exp: now() + 540 })
      )
      expect(otherKey).toEqual({ status: 401, body: { message: "A JSON web token could not be decoded" } })
      const otherApp = await ask(provider, await jwt(app.privateKey, { iss: "1", iat: now() - 60, exp: now() + 540 }))
      expect(otherApp.status).toBe(401)
      const tooLong = await ask(provider, await jwt(app.privateKey, { iss: "31337", iat: now(), exp: now() + 660 }))
      expect(tooLong.body.message).toMatch(/too far in the future/)
      const expired = await ask(
        provider,
        await jwt(app.privateKey, { iss: "31337", iat: now() - 900, exp: now() - 300 })
      )
      expect(expired.status).toBe(401)
      const unknown = await ask(
        provider,
        await jwt(app.privateKey, { iss: "31337", iat: now() - 60, exp: now() + 540 }),
        "999"
      )
      expect(unknown.status).toBe(404)
      expect(provider.accessTokens).toHaveLength(1)
    })
  })
})
