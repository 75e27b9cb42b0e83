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
