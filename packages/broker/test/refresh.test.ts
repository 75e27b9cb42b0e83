/**
 * Refreshes against a provider that misbehaves: deadlines hold (a stalled
 * provider answers the caller with a typed error in time, and holds no
 * connection of the pool), a late answer is still saved, and an answer lost on
 * the way is retried with the same refresh token or the grant is marked lost.
 */
import { SqlClient } from "@effect/sql"
import { afterAll, beforeAll, describe, expect, it, vi } from "@effect/vitest"
import { Effect } from "effect"
import { newEncryptionKey, type RunningBroker, startBroker } from "./support/broker.js"
import { backends, layerOf, postgres, postgresAvailable, sqlite, type TestDatabase } from "./support/databases.js"
import { type FaultyProvider, startFaultyProvider } from "./support/faultyProvider.js"
import { postJson } from "./support/http.js"

const KEY = "ck_refresh_production_key_5531"
const TIMEOUT_MS = 500

const configOf = (provider: FaultyProvider, timeoutMs = TIMEOUT_MS) => ({
  connectors: [
    {
      uid: "faulty/api",
      name: "Faulty API",
      type: "oauth",
      clientId: provider.clientId,
      clientSecret: provider.clientSecret,
      tokenEndpoint: provider.tokenEndpoint,
      providerTimeoutMs: timeoutMs
    }
  ],
  projects: [{ id: "prj_web", keys: [{ environment: "production", secret: KEY }] }],
  links: [{ connector: "faulty/api", project: "prj_web", environments: ["production"] }]
})

/** A token request, its answer and how long it took; it gives up after 5 s (the old broker hung for minutes). */
const request = async (broker: RunningBroker, user: string, scopes?: ReadonlyArray<string>) => {
  const started = Date.now()
  const response = await fetch(`${broker.url}/v1/connect/token/faulty%2Fapi`, {
    method: "POST",
    headers: { authorization: `Bearer ${KEY}`, "content-type": "application/json" },
    body: JSON.stringify({ subject: { type: "user", id: user }, ...(scopes === undefined ? {} : { scopes }) }),
    signal: AbortSignal.timeout(5_000)
  })
  const body = await response.json()
  return { status: response.status, body, ms: Date.now() - started }
}

/** Gives a user a grant: an expired access token and a refresh token (or a token valid for an hour). */
const importUser = async (
  broker: RunningBroker,
  user: string,
  grant: { readonly refreshToken: string } | { readonly accessToken: string }
) => {
  const token =
    "refreshToken" in grant
      ? { accessToken: "expired", expiresAt: 1, refreshToken: grant.refreshToken }
      : { accessToken: grant.accessToken, expiresAt: Date.now() + 3_600_000 }
  const response = await postJson(
    `${broker.url}/v1/connect/token/faulty%2Fapi/import`,
    { tokens: [{ subject: { type: "user", id: user }, environment: "production", ...token }] },
    KEY
  )
  expect(response.status).toBe(200)
}

/**
 * Asks until the answer is not a 502 (a request may wait for a refresh under way past its deadline), at most
 * `tries` times.
 */
const settledRequest = async (broker: RunningBroker, user: string, scopes: ReadonlyArray<string>, tries = 10) => {
  for (let attempt = 1; ; attempt++) {
    const answer = await request(broker, user, scopes)
    if (answer.status !== 502 || attempt >= tries) return answer
  }
}

/** A user's grant as stored: its status and why it ended. */
const grantOf = (database: TestDatabase, user: string) =>
  Effect.runPromise(
    Effect.flatMap(
      SqlClient.SqlClient,
      (sql) => sql<{ status: string; lost_reason: string | null }>`SELECT status, lost_reason FROM grants
        WHERE subject LIKE ${`%${JSON.stringify(user)}%`}`
    ).pipe(Effect.provide(layerOf(database)))
  ).then((rows) => rows[0])

const healthz = async (broker: RunningBroker) => {
  const started = Date.now()
  const response = await fetch(`${broker.url}/healthz`, { signal: AbortSignal.timeout(5_000) })
  return { status: response.status, ms: Date.now() - started }
}

describe.each(backends)("refreshes against a faulty provider, on %s", ({ make }) => {
  let database: TestDatabase
  let provider: FaultyProvider
  let broker: RunningBroker

  beforeAll(async () => {
    database = await make()
    provider = await startFaultyProvider()
    broker = await startBroker({ database, config: configOf(provider) })
  })
  afterAll(async () => {
    await broker?.close()
    await provider?.close()
    await database?.drop()
  })

  it("a stalled provider: the caller gets a typed error within the deadline, and other users are served", async () => {
    await importUser(broker, "stall-ada", { refreshToken: provider.seed() })
    await importUser(broker, "stall-bob", { accessToken: "bob-token" })
    provider.mode = { kind: "stall" }
    const before = provider.requests.length
    const first = request(broker, "stall-ada")
    await provider.received(before + 1)
    const bob = await request(broker, "stall-bob")
    expect(bob.status).toBe(200)
    expect(bob.body.token).toBe("bob-token")
    expect(bob.ms).toBeLessThan(TIMEOUT_MS)
    const answered = await first
    expect(answered.status).toBe(502)
    expect(answered.body.error.code).toBe("provider_unavailable")
    expect(answered.ms).toBeLessThan(TIMEOUT_MS + 1_000)
    // The shared refresh still runs (to its hard limit): a second request waits its own deadline, no longer.
    const second = await request(broker, "stall-ada")
    expect(second.status).toBe(502)
    expect(second.ms).toBeLessThan(TIMEOUT_MS + 1_000)
    provider.mode = { kind: "ok" }
  })

  it("a late answer (after the caller's deadline) is saved: the next refresh uses the rotated refresh token", async () => {
    await importUser(broker, "late-ada", { refreshToken: provider.seed() })
    // Past the caller's deadline (TIMEOUT_MS), well before the attempt's (2 × TIMEOUT_MS): a busy machine still reads it.
    provider.mode = { kind: "slow", delayMs: TIMEOUT_MS + 150 }
    const before = provider.requests.length
    const late = await request(broker, "late-ada", ["s1"])
    expect(late.status).toBe(502)
    expect(late.ms).toBeLessThan(TIMEOUT_MS + 300)
    await provider.until((requests) => requests[before]?.settled === true)
    provider.mode = { kind: "ok" }
    // Another request needs a new refresh: a strict provider accepts only the token the late answer rotated in.
    const next = await request(broker, "late-ada", ["s2"])
    expect(next.status).toBe(200)
    const refreshes = provider.requests.slice(before).filter((r) => r.scope !== undefined)
    expect(refreshes.map((r) => r.outcome)).toEqual([200, 200])
    expect(refreshes[1]?.refreshToken).not.toBe(refreshes[0]?.refreshToken)
  })

  it("a rotated answer lost as a gateway 502, with a strict provider: the grant is lost and the user asked again", async () => {
    const refreshToken = provider.seed()
    await importUser(broker, "drop-ada", { refreshToken })
    const log = vi.spyOn(console, "log")
    provider.mode = { kind: "rotate-then-drop", drop: "502" }
    const before = provider.requests.length
    const first = await request(broker, "drop-ada", ["s1"])
    expect([502, 403]).toContain(first.status)
    provider.mode = { kind: "ok" }
    // The broker's retry sends the same refresh token, which a strict provider refuses.
    await provider.until((requests) => requests.slice(before).some((r) => r.outcome === 400))
    const again = await request(broker, "drop-ada", ["s2"])
    expect(again.status).toBe(403)
    expect(again.body.error.code).toBe("user_authorization_required")
    expect(provider.requests.length - before).toBe(2)
    // Marked lost, not merely invalid, and the operator can read why.
    const grant = await grantOf(database, "drop-ada")
    expect(grant?.status).toBe("lost")
    expect(grant?.lost_reason).toContain("got no answer")
    // In the log: each failed call (the 502, then the refusal) and the grant lost, with why; never a token.
    const lines = log.mock.calls.map((call) => call.map(String).join(" "))
    log.mockRestore()
    expect(lines.filter((line) => line.includes("provider call failed"))).toHaveLength(1)
    const failure = lines.find((line) => line.includes("provider call failed")) ?? ""
    expect(failure).toContain("connector=faulty/api")
    expect(failure).toContain("status=400")
    expect(failure).toContain("providerError=invalid_grant")
    expect(failure).toContain("outcome=lost")
    expect(failure).toContain("requests=2")
    expect(lines.some((line) => line.includes("grant lost") && line.includes("reason="))).toBe(true)
    for (const line of lines) {
      expect(line).not.toContain(refreshToken)
      expect(line).not.toContain(provider.clientSecret)
      expect(line).not.toMatch(/rt_\d+_/)
    }
  })

  it("a provider's 500s and HTML answers are typed errors within the deadline", async () => {
    await importUser(broker, "err-ada", { refreshToken: provider.seed() })
    await importUser(broker, "err-bob", { refreshToken: provider.seed() })
    provider.mode = { kind: "500" }
    const failed = await request(broker, "err-ada", ["s1"])
    expect(failed.status).toBe(502)
    expect(failed.body.error.code).toBe("provider_unavailable")
    expect(failed.ms).toBeLessThan(TIMEOUT_MS + 1_000)
    provider.mode = { kind: "html" }
    const html = await request(broker, "err-bob", ["s2"])
    expect(html.status).toBe(502)
    expect(html.body.error.code).toBe("provider_error")
    // Neither consumed the refresh token: the grant still works (once the retries of the 500s are over).
    provider.mode = { kind: "ok" }
    expect((await settledRequest(broker, "err-ada", ["s3"])).status).toBe(200)
    expect((await settledRequest(broker, "err-bob", ["s3"])).status).toBe(200)
  })
})

describe("a provider with a grace period for rotated refresh tokens", () => {
  let database: TestDatabase
  let provider: FaultyProvider
  let broker: RunningBroker

  beforeAll(async () => {
    database = sqlite()
    provider = await startFaultyProvider({ graceMs: 60_000 })
    broker = await startBroker({ database, config: configOf(provider) })
  })
  afterAll(async () => {
    await broker?.close()
    await provider?.close()
    await database?.drop()
  })

  it("a rotated answer lost as a 502 is retried with the same refresh token, and the grant lives on", async () => {
    await importUser(broker, "grace-ada", { refreshToken: provider.seed() })
    provider.mode = { kind: "rotate-then-drop", drop: "502" }
    const before = provider.requests.length
    const first = await request(broker, "grace-ada", ["s1"])
    expect(first.status).toBe(502)
    provider.mode = { kind: "ok" }
    const next = await settledRequest(broker, "grace-ada", ["s2"])
    expect(next.status).toBe(200)
    // Until one was answered, every request sent the refresh token the broker held: the provider accepted it again.
    const sent = provider.requests.slice(before)
    const firstAnswered = sent.findIndex((r) => r.outcome === 200)
    expect(firstAnswered).toBeGreaterThan(0)
    expect(new Set(sent.slice(0, firstAnswered + 1).map((r) => r.refreshToken)).size).toBe(1)
  })
})

describe.skipIf(!postgresAvailable)("12 stalled refreshes on Postgres", () => {
  let database: TestDatabase
  let provider: FaultyProvider
  let broker: RunningBroker

  beforeAll(async () => {
    database = await postgres()
    provider = await startFaultyProvider()
    broker = await startBroker({ database, config: configOf(provider) })
  })
  afterAll(async () => {
    await broker?.close()
    await provider?.close()
    await database?.drop()
  })

  it("hold no pooled connection: /healthz and stored tokens of other users answer meanwhile", async () => {
    const users = Array.from({ length: 12 }, (_, i) => `pg-user-${i}`)
    for (const user of users) await importUser(broker, user, { refreshToken: provider.seed() })
    await importUser(broker, "pg-bob", { accessToken: "pg-bob-token" })
    provider.mode = { kind: "stall" }
    const before = provider.requests.length
    const stalled = Promise.all(users.map((user) => request(broker, user)))
    await provider.received(before + users.length)
    const health = await healthz(broker)
    expect(health.status).toBe(200)
    expect(health.ms).toBeLessThan(TIMEOUT_MS)
    const bob = await request(broker, "pg-bob")
    expect(bob.status).toBe(200)
    expect(bob.ms).toBeLessThan(TIMEOUT_MS)
    const answers = await stalled
    expect(answers.map((answer) => answer.status)).toEqual(users.map(() => 502))
    provider.mode = { kind: "ok" }
  })
})

describe.skipIf(!postgresAvailable)("app tokens on two brokers sharing one Postgres database", () => {
  let database: TestDatabase
  let provider: FaultyProvider
  let replicas: ReadonlyArray<RunningBroker> = []

  beforeAll(async () => {
    database = await postgres()
    provider = await startFaultyProvider()
    const encryptionKey = newEncryptionKey()
    replicas = [
      // A deadline that a cold broker's first requests (its pool connecting) cannot miss.
      await startBroker({ database, config: configOf(provider, 5_000), encryptionKey }),
      await startBroker({ database, config: configOf(provider, 5_000), encryptionKey })
    ]
  })
  afterAll(async () => {
    for (const replica of replicas) await replica.close()
    await provider?.close()
    await database?.drop()
  })

  it("are fetched once for concurrent requests on both (a lease by connector, project, environment and request)", async () => {
    provider.mode = { kind: "slow", delayMs: 100 }
    const answers = await Promise.all(
      Array.from({ length: 20 }, async (_, i) => {
        const broker = replicas[i % 2]
        if (broker === undefined) throw new Error("the replicas did not start")
        const response = await postJson(
          `${broker.url}/v1/connect/token/faulty%2Fapi`,
          { subject: { type: "app" } },
          KEY
        )
        return { status: response.status, body: await response.json() }
      })
    )
    provider.mode = { kind: "ok" }
    expect(answers.map((answer) => answer.status)).toEqual(answers.map(() => 200))
    expect(new Set(answers.map((answer) => answer.body.token)).size).toBe(1)
    expect(provider.requests.filter((r) => r.grantType === "client_credentials")).toHaveLength(1)
  })
})
