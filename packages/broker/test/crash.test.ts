/**
 * kill -9 of the built broker (`packages/broker/dist/main.js`; `npm run build` first) at
 * random moments during refreshes of rotating refresh tokens, on SQLite and
 * (with a grace-period provider) on Postgres.
 *
 * - With a provider that accepts a rotated refresh token for a grace period
 *   (as Xero and Atlassian do), no grant is lost: the refresh journal retries
 *   an unfinished refresh with the same refresh token at start-up.
 * - With a strict one-use provider, a grant is lost only when the kill falls
 *   between the provider's rotation and the broker's write of the new token:
 *   the test measures that window and how many grants it cost (printed, see
 *   docs/reliability.md).
 */
import { type ChildProcess, spawn } from "node:child_process"
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { createRequire } from "node:module"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import { SqlClient } from "@effect/sql"
import { PgClient } from "@effect/sql-pg"
import { Effect, ManagedRuntime, Redacted } from "effect"
import { afterEach, describe, expect, it } from "vitest"
import { generateKey } from "../src/Cipher.js"
import { freePort } from "./support/broker.js"
import { postgres, postgresAvailable } from "./support/databases.js"
import { type FaultyProvider, startFaultyProvider } from "./support/faultyProvider.js"

/** better-sqlite3 (the driver of the broker's SQLite client), as much of it as the test reads with. */
const Database = createRequire(import.meta.url)("better-sqlite3") as new (
  file: string,
  options: { readonly readonly: boolean }
) => {
  prepare(sql: string): { all(): Array<unknown>; get(): unknown }
  close(): void
}

/** Where the broker keeps its data, and how the test reads it behind the broker's back. */
interface Backend {
  readonly name: string
  readonly env: Readonly<Record<string, string>>
  readonly query: <Row>(directory: string, statement: string) => Promise<ReadonlyArray<Row>>
  /**
   * Lets the time of the leases a killed broker held on its grants pass: the next broker's start-up recovery takes
   * over only grants whose lease has expired (on Postgres, where another replica may still hold one), and waiting
   * out `leaseMs` (past 11 s with this connector's provider timeout) in every trial is all the test would do then.
   */
  readonly expireLeases: (directory: string) => Promise<void>
}

/** The default: a SQLite file in the broker's data directory. */
const sqliteBackend: Backend = {
  name: "SQLite",
  env: {},
  query: async <Row>(directory: string, statement: string) => {
    const db = new Database(join(directory, "data", "broker.db"), { readonly: true })
    try {
      return db.prepare(statement).all() as ReadonlyArray<Row>
    } finally {
      db.close()
    }
  },
  // One process: the broker releases every lease as it starts.
  expireLeases: async () => {}
}

/** A fresh Postgres database of the test server, dropped after the test. */
const postgresBackend = async (): Promise<Backend & { readonly drop: () => Promise<void> }> => {
  const database = await postgres()
  const url = database.location._tag === "Postgres" ? Redacted.value(database.location.url) : ""
  // One connection for all the test's reads (a trial polls the grants every 100 ms).
  const runtime = ManagedRuntime.make(PgClient.layer({ url: Redacted.make(url), maxConnections: 1 }))
  const query = <Row>(_directory: string, statement: string) =>
    runtime.runPromise(Effect.flatMap(SqlClient.SqlClient, (sql) => sql.unsafe<Row & object>(statement)))
  return {
    name: "Postgres",
    env: { CONNECT_DATABASE_URL: url },
    query,
    expireLeases: async (directory) => {
      const now = Date.now()
      await query(directory, `UPDATE grants SET lease_expires_at = ${now} WHERE lease_expires_at > ${now}`)
    },
    drop: async () => {
      await runtime.dispose()
      await database.drop()
    }
  }
}

const MAIN = fileURLToPath(new URL("../dist/main.js", import.meta.url))
const KEY = "ck_crash_production_key_8812"
const USERS = Array.from({ length: 6 }, (_, i) => `crash-user-${i}`)
// Six kills on each database in the suite (it must fit CI's time); `CRASH_TRIALS=15` for the figures of docs/reliability.md.
const TRIALS = Number(process.env.CRASH_TRIALS ?? 6)

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

interface Broker {
  readonly child: ChildProcess
  readonly url: string
  readonly exited: Promise<void>
  output: string
}

const children: Array<Broker> = []
const directories: Array<string> = []

afterEach(async () => {
  for (const broker of children.splice(0)) {
    if (broker.child.exitCode === null && broker.child.signalCode === null) {
      broker.child.kill("SIGKILL")
      await broker.exited
    }
  }
  for (const directory of directories.splice(0)) rmSync(directory, { recursive: true, force: true })
})

/**
 * Starts the built broker on `directory` (its config, and its SQLite file or `backend`) and waits until it is healthy
 * (30 s at most: a busy machine takes that long to start a Node process).
 */
const start = async (directory: string, backend: Backend = sqliteBackend): Promise<Broker> => {
  expect(existsSync(MAIN), "packages/broker/dist/main.js is missing: run `npm run build` first").toBe(true)
  const port = await freePort()
  const inherited = Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith("CONNECT_")))
  const child = spawn(process.execPath, [MAIN], {
    cwd: directory,
    env: {
      ...inherited,
      CONNECT_PORT: String(port),
      CONNECT_HOST: "127.0.0.1",
      CONNECT_DATA_DIR: join(directory, "data"),
      CONNECT_CONFIG: join(directory, "connect.json"),
      CONNECT_ENCRYPTION_KEY: encryptionKey,
      ...backend.env
    },
    stdio: ["ignore", "pipe", "pipe"]
  })
  const broker: Broker = {
    child,
    url: `http://127.0.0.1:${port}`,
    exited: new Promise((resolve) => child.once("exit", () => resolve())),
    output: ""
  }
  child.stdout?.on("data", (chunk: Buffer) => {
    broker.output += chunk.toString("utf8")
  })
  child.stderr?.on("data", (chunk: Buffer) => {
    broker.output += chunk.toString("utf8")
  })
  children.push(broker)
  for (let attempt = 0; attempt < 300; attempt++) {
    if (child.exitCode !== null) throw new Error(`the broker exited:\n${broker.output}`)
    const ok = await fetch(`${broker.url}/healthz`, { signal: AbortSignal.timeout(1_000) }).then(
      (response) => response.status === 200,
      () => false
    )
    if (ok) return broker
    await sleep(100)
  }
  throw new Error(`the broker did not become healthy:\n${broker.output}`)
}

const kill = async (broker: Broker) => {
  broker.child.kill("SIGKILL")
  await broker.exited
}

const encryptionKey = Buffer.from(generateKey()).toString("base64")

const tokenRequest = (broker: Broker, user: string, scopes: ReadonlyArray<string>) =>
  fetch(`${broker.url}/v1/connect/token/faulty%2Fapi`, {
    method: "POST",
    headers: { authorization: `Bearer ${KEY}`, "content-type": "application/json" },
    body: JSON.stringify({ subject: { type: "user", id: user }, scopes }),
    signal: AbortSignal.timeout(10_000)
  }).then(
    async (response) => ({ status: response.status, body: await response.json() }),
    () => ({ status: 0, body: undefined })
  )

/** A directory with the configuration of a broker for `provider`, and the users' grants imported. */
const prepare = async (provider: FaultyProvider, graceSeconds: number, backend: Backend = sqliteBackend) => {
  const directory = mkdtempSync(join(tmpdir(), "connect-crash-"))
  directories.push(directory)
  writeFileSync(
    join(directory, "connect.json"),
    JSON.stringify({
      connectors: [
        {
          uid: "faulty/api",
          name: "Faulty API",
          type: "oauth",
          clientId: provider.clientId,
          clientSecret: provider.clientSecret,
          tokenEndpoint: provider.tokenEndpoint,
          providerTimeoutMs: 2_000,
          refreshTokenGracePeriodSeconds: graceSeconds
        }
      ],
      projects: [{ id: "prj_web", keys: [{ environment: "production", secret: KEY }] }],
      links: [{ connector: "faulty/api", project: "prj_web", environments: ["production"] }]
    })
  )
  const broker = await start(directory, backend)
  const imported = await fetch(`${broker.url}/v1/connect/token/faulty%2Fapi/import`, {
    method: "POST",
    headers: { authorization: `Bearer ${KEY}`, "content-type": "application/json" },
    body: JSON.stringify({
      tokens: USERS.map((user) => ({
        subject: { type: "user", id: user },
        accessToken: "expired",
        expiresAt: 1,
        refreshToken: provider.seed(),
        environment: "production"
      }))
    })
  })
  expect(imported.status).toBe(200)
  await kill(broker)
  return directory
}

/** Waits (10 s at most) until the start-up recovery has refreshed every grant left with an unfinished attempt. */
const recovered = async (directory: string, backend: Backend) => {
  for (let attempt = 0; attempt < 100; attempt++) {
    const [row] = await backend.query<{ n: number | string }>(
      directory,
      "SELECT COUNT(*) AS n FROM grants WHERE attempt_started_at IS NOT NULL AND status = 'active'"
    )
    if (Number(row?.n ?? 0) === 0) return
    await sleep(100)
  }
}

/**
 * `TRIALS` times: start the broker, ask a new token (new scopes: a refresh) for every user, and kill -9 the broker
 * at a random moment while the provider answers (0 to 30 ms after the first refresh reached it). Then start it once more and ask again: the
 * users whose grant is gone are lost.
 */
const killDuringRefreshes = async (provider: FaultyProvider, directory: string, backend: Backend = sqliteBackend) => {
  let killedWhileRotating = 0
  for (let trial = 0; trial < TRIALS; trial++) {
    const broker = await start(directory, backend)
    await recovered(directory, backend)
    const before = provider.requests.length
    const answers = Promise.all(USERS.map((user) => tokenRequest(broker, user, [`trial-${trial}`])))
    // A random moment once the refreshes reach the provider (which answers each after 10 ms).
    // (Bounded: a run whose requests all fail before the provider, say for lost grants, is killed once they are
    // answered, or after 2 s.)
    await Promise.race([provider.received(before + 1), answers, sleep(2_000)])
    await sleep(Math.random() * 30)
    await kill(broker)
    await backend.expireLeases(directory)
    const answered = await answers
    console.log(`trial ${trial}: ${answered.map((a) => a.status).join(",")}; sent ${provider.requests.length - before}`)
    killedWhileRotating += provider.requests.slice(before).filter((r) => r.rotated).length
  }
  const broker = await start(directory, backend)
  const final = []
  for (const user of USERS) {
    // A request may wait for the recovery of its grant at start-up: ask a few times.
    let answer = await tokenRequest(broker, user, ["final"])
    for (let attempt = 0; attempt < 5 && answer.status === 502; attempt++) {
      answer = await tokenRequest(broker, user, ["final"])
    }
    final.push(answer)
  }
  const lost = final.filter((answer) => answer.body?.error?.code === "user_authorization_required").length
  const reasons = await backend.query(directory, "SELECT status, lost_reason FROM grants WHERE status <> 'active'")
  await kill(broker)
  return { final, lost, killedWhileRotating, reasons }
}

describe("kill -9 of the broker during refreshes, on SQLite", () => {
  it(`with a grace-period provider: 0 lost grants in ${TRIALS} trials`, { timeout: 420_000 }, async () => {
    const provider = await startFaultyProvider({ graceMs: 600_000 })
    try {
      provider.mode = { kind: "slow", delayMs: 10 }
      const directory = await prepare(provider, 600)
      const result = await killDuringRefreshes(provider, directory)
      console.log(
        `grace period: ${result.lost} of ${USERS.length} grants lost in ${TRIALS} trials (${provider.requests.length} refreshes sent)`
      )
      expect(result.reasons).toEqual([])
      expect(result.final.map((answer) => answer.status)).toEqual(USERS.map(() => 200))
      expect(result.lost).toBe(0)
    } finally {
      await provider.close()
    }
  })

  it("with a strict one-use provider: measures the window in which a grant can be lost", {
    timeout: 180_000
  }, async () => {
    const provider = await startFaultyProvider({ graceMs: 0 })
    try {
      // The window: from the provider's rotation to the broker's write of the new refresh token.
      const directory = await prepare(provider, 0)
      const broker = await start(directory)
      const windows: Array<number> = []
      const user = USERS[0] ?? ""
      for (let round = 0; round < 10; round++) {
        const before = provider.requests.length
        expect((await tokenRequest(broker, user, [`window-${round}`])).status).toBe(200)
        const db = new Database(join(directory, "data", "broker.db"), { readonly: true })
        const saved = db.prepare("SELECT MAX(updated_at) AS last FROM grants").get() as { last: number }
        db.close()
        // The grant's last write (the lease's release) comes after the write of the token: an upper bound.
        windows.push(saved.last - (provider.requests[before]?.rotatedAt ?? 0))
      }
      await kill(broker)
      provider.mode = { kind: "slow", delayMs: 10 }
      const result = await killDuringRefreshes(provider, directory)
      console.log(
        `strict one-use: window (rotation to durable write, one refresh at a time) ${JSON.stringify(windows)} ms; ` +
          `${result.lost} of ${USERS.length} grants lost in ${TRIALS} kills (${result.killedWhileRotating} refreshes rotated in killed runs); ` +
          `reasons: ${JSON.stringify(result.reasons.slice(0, 1))}`
      )
      // Every lost grant says why.
      for (const reason of result.reasons as Array<{ status: string; lost_reason: string | null }>) {
        expect(reason.lost_reason).not.toBeNull()
      }
      expect(result.lost).toBeLessThanOrEqual(USERS.length)
    } finally {
      await provider.close()
    }
  })
})

describe.skipIf(!postgresAvailable)("kill -9 of the broker during refreshes, on Postgres", () => {
  it(`with a grace-period provider: 0 lost grants in ${TRIALS} trials`, { timeout: 420_000 }, async () => {
    const provider = await startFaultyProvider({ graceMs: 600_000 })
    const backend = await postgresBackend()
    try {
      provider.mode = { kind: "slow", delayMs: 10 }
      const directory = await prepare(provider, 600, backend)
      const result = await killDuringRefreshes(provider, directory, backend)
      console.log(
        `grace period, Postgres: ${result.lost} of ${USERS.length} grants lost in ${TRIALS} trials (${provider.requests.length} refreshes sent)`
      )
      expect(result.reasons).toEqual([])
      expect(result.final.map((answer) => answer.status)).toEqual(USERS.map(() => 200))
      expect(result.lost).toBe(0)
    } finally {
      await provider.close()
      await backend.drop()
    }
  })
})
