/**
 * Webhooks over real parts: brokers (in this process, and built ones as processes of their own: `npm run build`
 * first), SQLite files, the local Postgres, and receivers that are node:http servers on 127.0.0.1.
 *
 * Events are recorded here with `Events` on the brokers' database: its writer puts their deliveries in the outbox
 * in the same transaction, and the brokers' dispatchers find them by polling, as they find other replicas' events.
 */
import { randomBytes } from "node:crypto"
import { SqlClient } from "@effect/sql"
import { Effect, Layer } from "effect"
import * as SdkWebhook from "effect-connect/Webhook"
import { Webhook } from "standardwebhooks"
import { afterEach, describe, expect, it } from "vitest"
import { type EventInput, Events } from "../src/Events.js"
import { declaredWebhookId } from "../src/internal/webhooks/service.js"
import { newEncryptionKey, type RunningBroker, startBroker } from "./support/broker.js"
import { type BrokerProcess, spawnBroker } from "./support/brokerProcess.js"
import { layerOf, postgres, postgresAvailable, sqlite, type TestDatabase } from "./support/databases.js"
import { startReceiver, type WebhookReceiver, webhookHeaders } from "./support/webhookReceiver.js"

const ADMIN_TOKEN = "adm_webhooks_admin_token_8841"
const PROJECT = "prj_hooks"
const SECRET = `whsec_${randomBytes(32).toString("base64")}`

interface Answer {
  readonly status: number
  readonly text: string
  // biome-ignore lint/suspicious/noExplicitAny: test answers are read loosely.
  readonly body: any
}

const admin = async (broker: { readonly url: string }, method: string, path: string, body?: unknown) => {
  const response = await fetch(`${broker.url}${path}`, {
    method,
    headers: { authorization: `Bearer ${ADMIN_TOKEN}`, "content-type": "application/json" },
    ...(body === undefined ? {} : { body: JSON.stringify(body) })
  })
  const text = await response.text()
  return { status: response.status, text, body: text === "" ? undefined : JSON.parse(text) } satisfies Answer
}

/** Records events on the database as a broker would, and waits until they (and their deliveries) are written. */
const record = (database: TestDatabase, events: ReadonlyArray<EventInput>) =>
  Effect.runPromise(
    Effect.flatMap(Events, (service) => Effect.zipRight(Effect.forEach(events, service.record), service.flush)).pipe(
      Effect.provide(Events.layer.pipe(Layer.provide(layerOf(database)))),
      Effect.scoped
    )
  )

/**
 * Lets the time of the delivery leases a killed broker held pass (twice the sending deadline, and 5 seconds), as
 * waiting it out would: the dispatchers take over a delivery only once its lease has expired.
 */
const expireDeliveryLeases = (database: TestDatabase) =>
  Effect.runPromise(
    Effect.flatMap(SqlClient.SqlClient, (sql) => {
      const now = Date.now()
      return sql`UPDATE webhook_deliveries SET lease_until = ${now} WHERE lease_until > ${now}`
    }).pipe(Effect.provide(layerOf(database)))
  )

const config = (receiver: WebhookReceiver) => ({
  projects: [
    {
      id: PROJECT,
      keys: [{ environment: "production", secret: "ck_webhooks_key_5521" }],
      webhooks: [{ id: "wh_config", url: receiver.url, secret: SECRET, events: ["token.*"] }]
    }
  ]
})

describe("webhooks", () => {
  const cleanups: Array<() => Promise<void>> = []
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup()
  })
  const receiver = async () => {
    const started = await startReceiver()
    cleanups.push(started.close)
    return started
  }
  const database = async (make: () => Promise<TestDatabase> | TestDatabase) => {
    const made = await make()
    cleanups.push(made.drop)
    return made
  }

  it("are managed by the admin API: the secret shown once, bad input named, deliveries with attempts, retry", async () => {
    const target = await receiver()
    target.answer = (index) => (index === 0 ? 503 : 200)
    const db = await database(postgresAvailable ? postgres : sqlite)
    const broker: RunningBroker = await startBroker({
      database: db,
      config: { projects: [{ id: PROJECT, keys: [] }] },
      env: { CONNECT_ADMIN_TOKEN: ADMIN_TOKEN, CONNECT_WEBHOOK_POLL_MS: "100" }
    })
    cleanups.push(broker.close)
    const base = `/v1/admin/projects/${PROJECT}/webhooks`
    const answers: Array<Answer> = []
    const call = async (method: string, path: string, body?: unknown) => {
      const answer = await admin(broker, method, path, body)
      answers.push(answer)
      return answer
    }

    const bad = await Promise.all([
      call("POST", base, { url: "http://hooks.example.com/in" }),
      call("POST", base, { url: target.url, secret: "whsec_short" }),
      call("POST", base, { url: target.url, events: ["token.minted"] }),
      call("POST", base, { url: target.url, colour: "blue" })
    ])
    expect(bad.map((answer) => answer.status)).toEqual([400, 400, 400, 400])
    expect(bad.map((answer) => answer.body.error.issues[0].path)).toEqual(["url", "secret", "events.0", "colour"])
    expect((await call("POST", "/v1/admin/projects/prj_nope/webhooks", { url: target.url })).status).toBe(404)

    const created = await call("POST", base, { url: target.url, events: ["grant.revoked"] })
    expect(created.status).toBe(201)
    const secret: string = created.body.secret
    expect(secret).toMatch(/^whsec_/)
    const listed = await call("GET", base)
    const { secret: _secret, ...view } = created.body
    expect(listed.body.webhooks).toEqual([view])

    await record(db, [{ kind: "grant.revoked", projectId: PROJECT, subject: "user:ada" }])
    await target.waitFor(1)
    const deliveriesPath = `/v1/admin/webhooks/${created.body.id}/deliveries`
    const waitForStatus = async (status: string) => {
      for (let i = 0; i < 100; i++) {
        const answer = await call("GET", deliveriesPath)
        if (answer.body.deliveries[0]?.status === status && answer.body.deliveries[0]?.attempts > 0) return answer
        await new Promise((wake) => setTimeout(wake, 50))
      }
      throw new Error(`no ${status} delivery`)
    }
    const pending = await waitForStatus("pending")
    expect(pending.body.deliveries[0]).toMatchObject({ attempts: 1, lastStatus: 503, eventKind: "grant.revoked" })
    expect(pending.body.deliveries[0].attemptLog).toEqual([
      expect.objectContaining({ status: 503, error: "failure 0" })
    ])
    expect((await call("GET", `${deliveriesPath}?limit=0`)).status).toBe(400)

    // The retry is due now, not in 5 seconds.
    const retried = await call("POST", `/v1/admin/webhook-deliveries/${pending.body.deliveries[0].id}/retry`)
    expect(retried.status).toBe(200)
    await target.waitFor(2, 3_000)
    const delivered = await waitForStatus("delivered")
    expect(delivered.body.deliveries[0].attemptLog.map((a: { status: number }) => a.status)).toEqual([503, 200])
    const [, second] = target.receipts
    if (second === undefined) throw new Error("no second receipt")
    expect(new Webhook(secret).verify(second.body, webhookHeaders(second))).toMatchObject({ type: "grant.revoked" })
    expect((await call("POST", "/v1/admin/webhook-deliveries/whd_nope/retry")).status).toBe(404)

    expect((await call("DELETE", `${base}/${created.body.id}`)).body).toEqual({ id: created.body.id, project: PROJECT })
    expect((await call("GET", base)).body.webhooks).toEqual([])
    // Only the answer of its creation held the secret.
    expect(answers.filter((answer) => answer.text.includes(secret))).toEqual([created])
  }, 60_000)

  it("declared in the configuration file: applied twice, the same webhook (its derived id), which delivers", async () => {
    const target = await receiver()
    const db = await database(sqlite)
    const encryptionKey = newEncryptionKey()
    // No id: one is derived from the project and the URL. The secret comes from the environment.
    const declared = {
      projects: [
        {
          id: PROJECT,
          keys: [],
          webhooks: [{ url: target.url, secret: { env: "HOOK_SECRET" }, events: ["grant.*"] }]
        }
      ]
    }
    const env = { CONNECT_ADMIN_TOKEN: ADMIN_TOKEN, CONNECT_WEBHOOK_POLL_MS: "100", HOOK_SECRET: SECRET }
    const listed = async (broker: RunningBroker) => {
      const answer = await admin(broker, "GET", `/v1/admin/projects/${PROJECT}/webhooks`)
      expect(answer.status).toBe(200)
      expect(answer.text).not.toContain(SECRET.slice("whsec_".length))
      return answer.body.webhooks
    }

    const first = await startBroker({ database: db, config: declared, encryptionKey, env })
    const before = await listed(first)
    await first.close()
    const id = declaredWebhookId(PROJECT, target.url)
    expect(id).toMatch(/^wh_[\w-]{16}$/)
    expect(before).toEqual([
      expect.objectContaining({ id, url: target.url, events: ["grant.*"], enabled: true, source: "config" })
    ])

    const second = await startBroker({ database: db, config: declared, encryptionKey, env })
    cleanups.push(second.close)
    expect(await listed(second)).toEqual(before)

    await record(db, [
      { kind: "token.issued", projectId: PROJECT, subject: "user:ada" },
      { kind: "grant.revoked", projectId: PROJECT, subject: "user:ada" }
    ])
    await target.waitFor(1)
    const [receipt] = target.receipts
    if (receipt === undefined) throw new Error("no receipt")
    const payload = new Webhook(SECRET).verify(receipt.body, webhookHeaders(receipt))
    expect(payload).toMatchObject({ type: "grant.revoked", data: { project: PROJECT, subject: "user:ada" } })
    const deliveries = await admin(second, "GET", `/v1/admin/webhooks/${id}/deliveries`)
    expect(deliveries.body.deliveries).toEqual([
      expect.objectContaining({
        status: "delivered",
        eventKind: "grant.revoked",
        eventId: receipt.headers["webhook-id"]
      })
    ])
    // Only the grant event: the token one is not of a kind the webhook takes.
    expect(target.receipts).toHaveLength(1)
  }, 60_000)

  it("a broker killed (kill -9) while sending delivers the event after it restarts", async () => {
    const target = await receiver()
    target.answer = (index) => (index === 0 ? "hang" : 200)
    const db = await database(sqlite)
    const encryptionKey = newEncryptionKey()
    const env = {
      CONNECT_ADMIN_TOKEN: ADMIN_TOKEN,
      CONNECT_WEBHOOK_POLL_MS: "100",
      CONNECT_WEBHOOK_TIMEOUT_MS: "3000"
    }
    const first = await spawnBroker({ database: db, config: config(target), encryptionKey, env })
    cleanups.push(first.stop)
    await record(db, [{ kind: "token.issued", projectId: PROJECT, subject: "user:ada" }])
    await target.waitFor(1)
    first.child.kill("SIGKILL")
    await new Promise((done) => first.child.once("exit", done))
    await expireDeliveryLeases(db)

    const second = await spawnBroker({ database: db, config: config(target), encryptionKey, env })
    cleanups.push(second.stop)
    // The first one's lease has expired (above); the second sends it.
    await target.waitFor(2, 20_000)
    const [hung, resent] = target.receipts
    expect(resent?.headers["webhook-id"]).toBe(hung?.headers["webhook-id"])
    expect(resent?.body).toBe(hung?.body)
    const verified = await Effect.runPromise(SdkWebhook.verify(SECRET, resent?.headers ?? {}, resent?.body ?? ""))
    expect(verified.payload).toMatchObject({ type: "token.issued", data: { subject: "user:ada", project: PROJECT } })
    const deliveries = await admin(second, "GET", "/v1/admin/webhooks/wh_config/deliveries")
    expect(deliveries.body.deliveries).toEqual([expect.objectContaining({ status: "delivered", attempts: 1 })])
    expect(first.output() + second.output()).not.toContain(SECRET.slice("whsec_".length, 20))
  }, 60_000)

  it.skipIf(!postgresAvailable)(
    "two replicas on one Postgres deliver each event once",
    async () => {
      const target = await receiver()
      const db = await database(postgres)
      const encryptionKey = newEncryptionKey()
      const env = { CONNECT_WEBHOOK_POLL_MS: "50" }
      const replicas: Array<BrokerProcess> = []
      for (let i = 0; i < 2; i++) {
        const replica = await spawnBroker({ database: db, config: config(target), encryptionKey, env })
        cleanups.push(replica.stop)
        replicas.push(replica)
      }
      const count = 60
      await record(
        db,
        Array.from({ length: count }, (_, i) => ({
          kind: "token.issued" as const,
          projectId: PROJECT,
          subject: `user:${i}`
        }))
      )
      await target.waitFor(count, 30_000)
      // Time for a second copy to arrive, if one were sent.
      await new Promise((wake) => setTimeout(wake, 1_000))
      const ids = target.receipts.map((receipt) => String(receipt.headers["webhook-id"]))
      expect(ids).toHaveLength(count)
      expect(new Set(ids).size).toBe(count)
      for (const receipt of target.receipts) {
        expect(() => new Webhook(SECRET).verify(receipt.body, webhookHeaders(receipt))).not.toThrow()
      }
      for (const replica of replicas) expect(replica.output()).not.toContain(SECRET.slice("whsec_".length, 20))
    },
    90_000
  )
})
