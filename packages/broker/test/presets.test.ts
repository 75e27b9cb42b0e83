/**
 * Every preset of the catalogue against the quirk provider in that preset's
 * mode: the broker declares a connector with only `provider` and the
 * provider's own endpoints, installs it where the preset installs, gets an
 * app token where the provider has one, authorizes a user, refreshes (with
 * the preset's rotation), revokes, sees an access token revoked at the
 * provider end that token or the whole grant as the preset says, and meets
 * the provider's error shape.
 */
import { generateKeyPairSync } from "node:crypto"
import { afterAll, afterEach, beforeAll, describe, expect, it } from "@effect/vitest"
import { type Preset, presets } from "../src/providers/Presets.js"
import { type QuirkProvider, type QuirkProviderOptions, startQuirkProvider } from "../src/testing.js"
import { freePort, type RunningBroker, startBroker } from "./support/broker.js"
import { productionProject } from "./support/brokerWithProvider.js"
import { sqlite, type TestDatabase } from "./support/databases.js"
import { sendJson, visit } from "./support/http.js"

const KEY = "ck_presets_key_8812"

const call = async (method: string, url: string, body: unknown) => {
  const response = await sendJson(method, url, body, KEY)
  return { status: response.status, body: (await response.json()) as Record<string, unknown> }
}

/** A browser: from a broker link through the provider's consent back to the broker's callback. */
const consent = async (link: string, quirk: QuirkProvider): Promise<URL> => {
  const toProvider = await visit(link)
  expect(toProvider.status).toBe(302)
  const providerUrl = new URL(toProvider.location ?? "")
  expect(providerUrl.origin).toBe(quirk.url)
  const back = await visit(providerUrl)
  expect(back.status).toBe(302)
  await visit(back.location ?? "")
  return providerUrl
}

const githubApp = () => {
  const { privateKey, publicKey } = generateKeyPairSync("rsa", { modulusLength: 2048 })
  return {
    privateKey: privateKey.export({ type: "pkcs8", format: "pem" }).toString(),
    publicKey: publicKey.export({ type: "spki", format: "pem" }).toString()
  }
}

interface Running {
  readonly quirk: QuirkProvider
  readonly broker: RunningBroker
  readonly database: TestDatabase
  readonly uid: string
  readonly base: string
}

const started: Array<Running> = []

afterEach(async () => {
  for (const running of started.splice(0)) await stop(running)
})

/** A quirk provider in the preset's mode and a broker with one connector to it (not closed after each test). */
const launch = async (
  preset: Preset,
  options: Partial<QuirkProviderOptions> = {},
  connector: Readonly<Record<string, unknown>> = {}
): Promise<Running> => {
  const keys = preset.settings.appTokens === undefined ? undefined : githubApp()
  const quirk = await startQuirkProvider({
    preset,
    lifetimeSeconds: 30,
    ignoreAccept: true,
    ...(keys === undefined ? {} : { app: { appId: "31337", publicKey: keys.publicKey } }),
    ...options
  })
  const uid = `${preset.name}/acme`
  const database = sqlite()
  const broker = await startBroker({
    database,
    // Its public URL is known before it starts: the callback the provider sends browsers to.
    port: await freePort(),
    config: {
      connectors: [
        {
          uid,
          ...quirk.connector(),
          // Shorter than the broker's reuse buffer: every token request refreshes.
          defaultTokenLifetimeSeconds: 30,
          ...(keys === undefined ? {} : { privateKey: keys.privateKey }),
          ...connector
        }
      ],
      ...productionProject({ id: "presets", key: KEY }, [uid])
    }
  })
  return { quirk, broker, database, uid, base: `${broker.url}/v1/connect` }
}

const stop = async (running: Running) => {
  await running.broker.close()
  await running.quirk.close()
  await running.database.drop()
}

const start = async (preset: Preset): Promise<Running> => {
  const running = await launch(preset)
  started.push(running)
  return running
}

/** Installs the connector where the preset installs; the installation id, if any. */
const install = async ({ quirk, base, uid }: Running): Promise<string | undefined> => {
  const { preset } = quirk
  if (!preset.grants.includes("install")) return undefined
  const startedInstall = await call("POST", `${base}/install/${encodeURIComponent(uid)}`, {})
  expect(startedInstall.status).toBe(200)
  await consent(String(startedInstall.body.url), quirk)
  return quirk.tenantId
}

const tokenFor = (running: Running, subject: unknown, installationId: string | undefined, audience?: string) =>
  call("POST", `${running.base}/token/${encodeURIComponent(running.uid)}`, {
    subject,
    ...(installationId === undefined ? {} : { installationId }),
    // Another request (its own stored token): the grant is refreshed for it.
    ...(audience === undefined ? {} : { audience: [audience] })
  })

/** A user authorizes the connector; the provider's authorization URL and the request's final status. */
const authorize = async (
  running: Running,
  user: string,
  installationId: string | undefined,
  scopes?: ReadonlyArray<string>
) => {
  const startedAuth = await call("POST", `${running.base}/authorize/${encodeURIComponent(running.uid)}`, {
    subject: { type: "user", id: user },
    ...(installationId === undefined ? {} : { installationId }),
    ...(scopes === undefined ? {} : { scopes })
  })
  expect(startedAuth.status).toBe(200)
  const providerUrl = await consent(String(startedAuth.body.url), running.quirk)
  const status = await call("POST", `${running.base}/authorize/${String(startedAuth.body.request)}/status`, {
    verifier: startedAuth.body.verifier
  })
  return { providerUrl, status: status.body }
}

const appToken = async (running: Running, installationId: string | undefined) => {
  const { preset } = running.quirk
  const hasAppToken = installationId !== undefined || preset.grants.includes("client_credentials")
  if (!hasAppToken) return
  const answer = await tokenFor(running, { type: "app" }, installationId)
  expect(answer.status, JSON.stringify(answer.body)).toBe(200)
  expect(running.quirk.accessTokens).toContain(answer.body.token)
  if (preset.grants.includes("app_installation")) {
    const calls = running.quirk.requests.filter((request) => request.path.startsWith("/app/installations/"))
    expect(calls.map((request) => request.status)).toContain(201)
  }
}

/** Two refreshes: the second sends the rotated refresh token where the preset rotates, the same one otherwise. */
const refreshes = async (running: Running, installationId: string | undefined) => {
  const { quirk } = running
  const before = quirk.tokenRequests("refresh_token").length
  for (let round = 0; round < 2; round++) {
    const answer = await tokenFor(running, { type: "user", id: "u1" }, installationId, `https://api.example/${round}`)
    expect(answer.status, JSON.stringify(answer.body)).toBe(200)
    expect(quirk.accessTokens).toContain(answer.body.token)
  }
  const sent = quirk.tokenRequests("refresh_token").slice(before)
  expect(sent.length).toBeGreaterThanOrEqual(2)
  // Figma refreshes at an endpoint of its own.
  const atItsOwn = quirk.preset.settings.refreshEndpoint !== undefined
  for (const request of sent) {
    expect(request.status).toBe(200)
    expect(atItsOwn ? request.path === "/refresh" : request.path.endsWith("/token")).toBe(true)
  }
  const [first, second] = sent.slice(-2).map((request) => request.form.refresh_token)
  if (quirk.preset.rotation === "always") expect(second).not.toBe(first)
  else expect(second).toBe(first)
}

const userFlow = async (running: Running, installationId: string | undefined) => {
  const { quirk } = running
  const { preset } = quirk
  const { providerUrl, status } = await authorize(running, "u1", installationId)
  expect(status).toMatchObject({ status: "completed" })
  if (preset.answer.userToken === "authed_user") {
    expect(providerUrl.searchParams.get("user_scope")).toBe("users:read")
    expect(providerUrl.searchParams.has("scope")).toBe(false)
  }
  for (const [name, value] of Object.entries(preset.settings.authorizationParams ?? {})) {
    expect(providerUrl.searchParams.get(name)).toBe(value)
  }
  if (preset.grants.includes("refresh_token")) await refreshes(running, installationId)
  else {
    const answer = await tokenFor(running, { type: "user", id: "u1" }, installationId)
    expect(answer.status).toBe(200)
  }
}

/** Revoking the user's tokens calls the provider only where the preset has a revocation endpoint. */
const revocation = async (running: Running, installationId: string | undefined) => {
  const { quirk } = running
  const answer = await call("DELETE", `${running.base}/connectors/${encodeURIComponent(running.uid)}/tokens`, {
    subject: { type: "user", id: "u1" },
    ...(installationId === undefined ? {} : { installationId })
  })
  expect(answer.status, JSON.stringify(answer.body)).toBe(200)
  const revoked = quirk.requests.filter((request) => request.path === "/revoke")
  // The oidc preset's revocation endpoint is the one its discovery document names.
  const revocable = quirk.preset.settings.revocationEndpoint !== undefined || quirk.preset.discovery === true
  if (!revocable) expect(revoked).toEqual([])
  else {
    expect(revoked.length).toBeGreaterThan(0)
    // Accepted in the provider's own form (Notion's JSON body and version header).
    expect(revoked.map((request) => request.status)).toEqual(revoked.map(() => 200))
    expect(quirk.revoked.size).toBeGreaterThan(0)
  }
}

/** The provider refuses, in its own error shape: a code, then a refresh. */
const errors = async (running: Running, installationId: string | undefined) => {
  const { quirk } = running
  quirk.fail({ error: "invalid_grant" })
  const refused = await authorize(running, "u2", installationId)
  expect(refused.status).toMatchObject({ status: "failed", error: "provider_refused" })
  if (!quirk.preset.grants.includes("refresh_token")) return
  expect((await authorize(running, "u3", installationId)).status).toMatchObject({ status: "completed" })
  quirk.fail({ error: "invalid_grant" })
  const gone = await tokenFor(running, { type: "user", id: "u3" }, installationId, "https://api.example/gone")
  expect(gone.status).toBe(403)
  expect(gone.body).toMatchObject({ error: { code: "user_authorization_required" } })
}

/** Revokes a token at the provider itself, as its user or another client of the grant may, in the preset's encoding. */
const revokeAtProvider = async (quirk: QuirkProvider, value: string) => {
  const basic = quirk.preset.settings.tokenEndpointAuthMethod === "client_secret_basic"
  const fields: Record<string, string> = {
    token: value,
    token_type_hint: "access_token",
    ...(basic ? {} : { client_id: quirk.clientId, client_secret: quirk.clientSecret })
  }
  const request = quirk.preset.settings.revocationRequest
  const json = request?.body === "json"
  const credentials = `${encodeURIComponent(quirk.clientId)}:${encodeURIComponent(quirk.clientSecret)}`
  const response = await fetch(`${quirk.url}/revoke`, {
    method: "POST",
    headers: {
      "content-type": json ? "application/json" : "application/x-www-form-urlencoded",
      ...request?.headers,
      ...(basic ? { authorization: `Basic ${Buffer.from(credentials).toString("base64")}` } : {})
    },
    body: json ? JSON.stringify({ token: value }) : new URLSearchParams(fields)
  })
  expect(response.status).toBe(200)
}

/**
 * An access token revoked at the provider: where revoking means the whole grant, the next refresh is refused
 * and the user must authorize again; where it means one token, the refresh token still refreshes.
 */
const accessTokenRevokedThere = async (running: Running, installationId: string | undefined) => {
  const { quirk } = running
  if (quirk.preset.revocation === "none" || !quirk.preset.grants.includes("refresh_token")) return
  expect((await authorize(running, "u4", installationId)).status).toMatchObject({ status: "completed" })
  await revokeAtProvider(quirk, quirk.accessTokens[quirk.accessTokens.length - 1] ?? "")
  const refreshes = quirk.tokenRequests("refresh_token").length
  const next = await tokenFor(running, { type: "user", id: "u4" }, installationId, "https://api.example/after-revoke")
  expect(quirk.tokenRequests("refresh_token").length).toBeGreaterThan(refreshes)
  if (quirk.preset.revocation === "grant") {
    expect(next.status, JSON.stringify(next.body)).toBe(403)
    expect(next.body).toMatchObject({ error: { code: "user_authorization_required" } })
  } else expect(next.status, JSON.stringify(next.body)).toBe(200)
}

describe("every preset against the quirk provider in its mode", () => {
  it.each(presets.map((preset) => [preset.name, preset] as const))(
    "%s: install, app token, user authorization with refresh and rotation, revocation, errors",
    async (_name, preset) => {
      const running = await start(preset)
      const installationId = await install(running)
      await appToken(running, installationId)
      await userFlow(running, installationId)
      await revocation(running, installationId)
      await accessTokenRevokedThere(running, installationId)
      await errors(running, installationId)
    },
    30_000
  )
})

describe("quirks the broker meets by preset setting", () => {
  it("linear: scopes comma-separated in the authorization URL, as Linear reads them", async () => {
    const running = await start(presets.find((preset) => preset.name === "linear") as Preset)
    const { providerUrl, status } = await authorize(running, "u1", undefined, ["read", "write"])
    expect(providerUrl.searchParams.get("scope")).toBe("read,write")
    expect(status).toMatchObject({ status: "completed" })
  })

  it("figma: a refresh at its own endpoint, whose answer has no refresh token; the first one stays", async () => {
    const running = await start(presets.find((preset) => preset.name === "figma") as Preset)
    expect((await authorize(running, "u1", undefined)).status).toMatchObject({ status: "completed" })
    await refreshes(running, undefined)
    const { quirk } = running
    expect(
      quirk.requests.filter((request) => request.path === "/token").map((request) => request.form.grant_type)
    ).toEqual(["authorization_code"])
    const spent = new Set(quirk.tokenRequests("refresh_token").map((request) => request.form.refresh_token))
    expect(spent.size).toBe(1)
  })

  it("shopify: expiring=1 in the code exchange only; a connector's empty value drops it", async () => {
    const shopify = presets.find((preset) => preset.name === "shopify") as Preset
    const running = await start(shopify)
    expect((await authorize(running, "u1", undefined)).status).toMatchObject({ status: "completed" })
    await refreshes(running, undefined)
    const { quirk } = running
    expect(quirk.tokenRequests("authorization_code").map((request) => request.form.expiring)).toEqual(["1"])
    expect(quirk.tokenRequests("refresh_token").every((request) => request.form.expiring === undefined)).toBe(true)

    // Without the parameter Shopify's offline token never expires and has no refresh token to rotate.
    const kept = await launch(shopify, {}, { tokenParams: { expiring: "" }, defaultTokenLifetimeSeconds: 86400 })
    started.push(kept)
    expect((await authorize(kept, "u1", undefined)).status).toMatchObject({ status: "completed" })
    const [exchange] = kept.quirk.tokenRequests("authorization_code")
    expect(exchange?.form).not.toHaveProperty("expiring")
    const answer = await tokenFor(kept, { type: "user", id: "u1" }, undefined)
    expect(answer.status, JSON.stringify(answer.body)).toBe(200)
    expect(kept.quirk.tokenRequests("refresh_token")).toEqual([])
  })

  it("hubspot: a refused refresh in HubSpot's own error shape asks the user again", async () => {
    const running = await start(presets.find((preset) => preset.name === "hubspot") as Preset)
    expect(running.quirk.connector().tokenEndpoint).toBe(`${running.quirk.url}/token`)
    expect((await authorize(running, "u1", undefined)).status).toMatchObject({ status: "completed" })
    running.quirk.fail({ error: "invalid_grant" })
    const gone = await tokenFor(running, { type: "user", id: "u1" }, undefined, "https://api.example/gone")
    expect(gone.status, JSON.stringify(gone.body)).toBe(403)
    expect(gone.body).toMatchObject({ error: { code: "user_authorization_required" } })
    const refused = running.quirk.tokenRequests("refresh_token").at(-1)
    expect(refused?.status).toBe(400)
  })
})

const DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"

describe.each(
  presets.filter((preset) => preset.grants.includes("device_code")).map((preset) => [preset.name, preset] as const)
)("the device flow of %s against the quirk provider", (name, preset) => {
  let running: Running
  beforeAll(async () => {
    running = await launch(preset, { deviceIntervalSeconds: 1 })
  })
  afterAll(async () => {
    await stop(running)
  })

  const startDevice = async (user: string, scopes?: ReadonlyArray<string>) =>
    call("POST", `${running.base}/authorize/${encodeURIComponent(running.uid)}`, {
      subject: { type: "user", id: user },
      deviceCode: true,
      ...(scopes === undefined ? {} : { scopes })
    })

  /** The request's status once it is no longer pending (the broker polls every second here). */
  const settled = async (body: Record<string, unknown>) => {
    const until = Date.now() + 15_000
    for (;;) {
      const answer = await call("POST", `${running.base}/authorize/${String(body.request)}/status`, {
        verifier: body.verifier
      })
      if (answer.body.status !== "pending" || Date.now() > until) return answer.body
      await new Promise((resolve) => setTimeout(resolve, 200))
    }
  }

  /** The verification URL as the user opens it, with the code they type (Twitch's link carries it). */
  const verification = (body: Record<string, unknown>, decision?: "deny") => {
    const url = new URL(String(body.url))
    expect(url.origin).toBe(running.quirk.url)
    if (!url.searchParams.has("device-code")) url.searchParams.set("user_code", String(body.deviceCode))
    if (decision !== undefined) url.searchParams.set("decision", decision)
    return url
  }

  it("approved at the verification URL after a pending poll; denied; expired", async () => {
    const { quirk } = running
    const [approved, denied, expired] = await Promise.all(["d1", "d2", "d3"].map((user) => startDevice(user)))
    for (const answer of [approved, denied, expired]) expect(answer?.status, JSON.stringify(answer?.body)).toBe(200)
    const asked = quirk.requests.filter(
      (request) => request.path === (name === "microsoft" ? "/devicecode" : "/device")
    )
    expect(asked.map((request) => request.status)).toEqual([200, 200, 200])
    const scopes = preset.settings.defaultScopes?.user?.join(" ")
    // Twitch names the scopes `scopes`.
    expect(asked[0]?.form[preset.settings.deviceScopeParameter ?? "scope"]).toBe(scopes)

    // The provider answers "not yet" in its own shape; the request stays pending.
    const code = String(approved?.body.deviceCode)
    for (let waited = 0; (quirk.devices.get(code)?.polls ?? 0) === 0 && waited < 50; waited++) {
      await call("POST", `${running.base}/authorize/${String(approved?.body.request)}/status`, {
        verifier: approved?.body.verifier
      })
      await new Promise((resolve) => setTimeout(resolve, 100))
    }
    const pending = quirk.tokenRequests(DEVICE_GRANT)
    expect(pending.length).toBeGreaterThan(0)
    expect(pending[0]?.status).toBe(name === "github" ? 200 : name === "google" ? 428 : 400)

    expect((await visit(verification(approved?.body ?? {}))).status).toBe(200)
    expect((await visit(verification(denied?.body ?? {}, "deny"))).status).toBe(200)
    quirk.expireDevice(String(expired?.body.deviceCode))
    const [done, refused, late] = await Promise.all(
      [approved, denied, expired].map((each) => settled(each?.body ?? {}))
    )
    expect(done).toMatchObject({ status: "completed" })
    expect(refused).toMatchObject({ status: "failed", error: "access_denied" })
    expect(late).toMatchObject({ status: "failed", error: "expired_token" })

    const answer = await tokenFor(running, { type: "user", id: "d1" }, undefined)
    expect(answer.status, JSON.stringify(answer.body)).toBe(200)
    expect(quirk.accessTokens).toContain(answer.body.token)
  })

  // Google's device flow alone limits its scopes.
  if (name === "google") {
    it("google: a scope its device flow does not allow is refused, by name", async () => {
      const refused = await startDevice("d4", ["https://www.googleapis.com/auth/gmail.readonly"])
      expect(refused.status).toBe(400)
      expect(JSON.stringify(refused.body)).toContain("scopes")
      expect(JSON.stringify(refused.body)).toContain("invalid_scope")
    })
  }
})

describe("the admin API", () => {
  const ADMIN = "admin_presets_token_4410"

  it("creates a connector from a preset with only its own fields; an unknown preset is refused by name", async () => {
    const database = sqlite()
    const broker = await startBroker({ database, config: {}, env: { CONNECT_ADMIN_TOKEN: ADMIN } })
    try {
      const created = await sendJson(
        "POST",
        `${broker.url}/v1/admin/connectors`,
        { uid: "github/acme", provider: "github", clientId: "Iv1.acme", clientSecret: "gh-secret-Tq61" },
        ADMIN
      )
      const view = (await created.json()) as Record<string, unknown>
      expect(created.status, JSON.stringify(view)).toBe(201)
      expect(view).toMatchObject({
        provider: "github",
        name: "GitHub",
        tokenEndpoint: "https://github.com/login/oauth/access_token",
        tokenEndpointAuthMethod: "client_secret_post"
      })
      const refused = await sendJson(
        "POST",
        `${broker.url}/v1/admin/connectors`,
        { uid: "x/acme", provider: "githib", clientId: "c", clientSecret: "gh-secret-Tq61" },
        ADMIN
      )
      const body = await refused.text()
      expect(refused.status).toBe(400)
      expect(body).toContain('"path":"provider"')
      expect(body).toContain('unknown provider \\"githib\\"')
      expect(body).not.toContain("gh-secret-Tq61")
    } finally {
      await broker.close()
      await database.drop()
    }
  })
})
