/**
 * No secret is kept in plain text at rest, whatever holds it: every sealed value in every table of the database is
 * opened with the broker's key, and neither it nor any other secret the test knows (caller keys, the client secret,
 * the private key) may appear in what is stored: on SQLite the database file and its write-ahead log, on Postgres
 * every row of every table.
 */
import { generateKeyPairSync } from "node:crypto"
import { Effect, Layer, Redacted } from "effect"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { Cipher } from "../src/Cipher.js"
import { everyRow, onDatabase, storedText } from "./support/atRest.js"
import { freePort, newEncryptionKey, type RunningBroker, startBroker } from "./support/broker.js"
import { oauthClientOf, productionProject } from "./support/brokerWithProvider.js"
import { backends, type TestDatabase } from "./support/databases.js"
import { postJson } from "./support/http.js"
import { type OAuthProviderHarness, startOAuthProvider } from "./support/oauthProvider.js"

const KEY = "ck_at_rest_caller_key_8841"
const SEALED = /^v1\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/

/** The sealed columns the flows below fill, each of which the scan must have opened at least once. */
const EXPECTED_SEALED = [
  "authorization_requests.code_verifier",
  "authorization_requests.device_code",
  "authorization_requests.state",
  "connectors.client_secret",
  "connectors.private_key",
  "grants.refresh_token",
  "issued_tokens.access_token"
]

describe.each(backends)("secrets at rest, on $name", ({ make }) => {
  let provider: OAuthProviderHarness
  let database: TestDatabase
  let broker: RunningBroker
  const encryptionKey = newEncryptionKey()
  const privateKey = generateKeyPairSync("ec", { namedCurve: "P-256" })
    .privateKey.export({ type: "pkcs8", format: "pem" })
    .toString()
  /** Secrets the broker was handed or handed out, as the test saw them. */
  const known: Array<string> = []
  /** The device codes the provider gave out. */
  const deviceCodes: Array<string> = []

  beforeAll(async () => {
    const port = await freePort()
    provider = await startOAuthProvider({ redirectUris: [`http://127.0.0.1:${port}/v1/connect/callback`] })
    database = await make()
    const oauth = {
      ...oauthClientOf(provider),
      authorizationEndpoint: provider.authorizationEndpoint,
      deviceAuthorizationEndpoint: provider.deviceAuthorizationEndpoint,
      defaultScopes: { user: ["openid", "offline_access", "api:read"], app: ["api:read"] }
    }
    broker = await startBroker({
      database,
      port,
      encryptionKey,
      config: {
        connectors: [
          { uid: "acme/api", name: "Acme API", ...oauth },
          {
            uid: "acme/signed",
            name: "Acme (signed)",
            ...oauthClientOf(provider),
            privateKey: { env: "ACME_PRIVATE_KEY" },
            privateKeyId: "acme-2026",
            signingAlgorithm: "ES256"
          }
        ],
        ...productionProject({ id: "prj_web", key: KEY, returnUrls: ["https://app.example/done"] }, [
          "acme/api",
          "acme/signed"
        ])
      },
      env: { ACME_PRIVATE_KEY: privateKey }
    })
    provider.provider.on("device_authorization.success", (_ctx: unknown, body: { device_code?: unknown }) => {
      if (typeof body.device_code === "string") deviceCodes.push(body.device_code)
    })
    known.push(KEY, provider.clients.broker.clientSecret, privateKey)
  }, 60_000)
  afterAll(async () => {
    await broker?.close()
    await provider?.close()
    await database?.drop()
  })

  const call = (path: string, body: unknown) =>
    postJson(`${broker.url}${path}`, body, KEY).then(async (response) => ({
      status: response.status,
      body: await response.json()
    }))

  it("keeps every sealed value and every secret out of what is stored, in every table", async () => {
    // A user's grant with a refresh token, refreshed; an app token; a consent and a device authorization under way.
    const refreshToken = await provider.seedUserRefreshToken({
      accountId: "ada",
      scope: "openid offline_access api:read"
    })
    known.push(refreshToken)
    const imported = await call("/v1/connect/token/acme%2Fapi/import", {
      tokens: [
        {
          subject: { type: "user", id: "ada" },
          accessToken: "at_imported_marker_5521",
          expiresAt: 1,
          refreshToken,
          environment: "production"
        }
      ]
    })
    expect(imported.status).toBe(200)
    known.push("at_imported_marker_5521")
    const user = await call("/v1/connect/token/acme%2Fapi", { subject: { type: "user", id: "ada" } })
    const app = await call("/v1/connect/token/acme%2Fapi", { subject: { type: "app" }, scopes: ["api:read"] })
    expect([user.status, app.status]).toEqual([200, 200])
    known.push(user.body.token, app.body.token)
    const consent = await call("/v1/connect/authorize/acme%2Fapi", { subject: { type: "user", id: "grace" } })
    expect(consent.status).toBe(200)
    const device = await call("/v1/connect/authorize/acme%2Fapi", {
      subject: { type: "user", id: "linus" },
      deviceCode: true
    })
    expect(device.status).toBe(200)
    // The state travels in the link to the provider: it is a secret the test can see.
    const start = await fetch(`${broker.url}/v1/connect/authorize/${String(consent.body.request)}/start`, {
      redirect: "manual"
    })
    const state = new URL(start.headers.get("location") ?? "http://invalid/").searchParams.get("state")
    expect(state).toEqual(expect.any(String))
    known.push(String(state))

    // Every sealed value of every row, opened with the key as the store opens it (bound to table, column and row).
    const opened = await onDatabase(
      database,
      Effect.gen(function* () {
        const cipher = yield* Cipher
        const rows = yield* everyRow
        const found: Array<{ readonly column: string; readonly plaintext: string }> = []
        for (const { table, row } of rows) {
          for (const [column, value] of Object.entries(row)) {
            if (typeof value !== "string" || !SEALED.test(value)) continue
            const plaintext = yield* cipher.decrypt(value, `${table}/${column}/${String(row.id)}`)
            found.push({ column: `${table}.${column}`, plaintext: Redacted.value(plaintext) })
          }
        }
        return found
      }).pipe(
        Effect.provide(
          Cipher.layer(Redacted.make(new Uint8Array(Buffer.from(encryptionKey, "base64")))).pipe(Layer.orDie)
        )
      )
    )
    expect([...new Set(opened.map((value) => value.column))].sort()).toEqual(expect.arrayContaining(EXPECTED_SEALED))
    // What the test saw from outside is what was sealed inside.
    const plaintexts = opened.map((value) => value.plaintext)
    expect(plaintexts).toContain(String(state))
    expect(plaintexts).toContain(privateKey)
    expect(deviceCodes).toHaveLength(1)
    expect(plaintexts).toContain(deviceCodes[0])

    const stored = await storedText(database)
    // The scan sees the rows: names that are not secrets are there.
    expect(stored).toContain("acme/signed")
    expect(stored).toContain("prj_web")
    for (const secret of new Set([...plaintexts, ...known, ...deviceCodes])) {
      expect(stored.includes(secret), `a secret of ${secret.length} characters is stored in plain text`).toBe(false)
    }
  })
})
