import { FetchHttpClient } from "@effect/platform"
import { SqlClient } from "@effect/sql"
import { afterEach, describe, expect, it } from "@effect/vitest"
import { Duration, Effect, Layer, Redacted, TestClock, TestContext } from "effect"
import * as SdkWebhook from "effect-connect/Webhook"
import { Webhook } from "standardwebhooks"
import { Cipher, generateKey } from "../src/Cipher.js"
import { Events } from "../src/Events.js"
import { defaultSettings, type WebhookSettings, WebhookSignal, Webhooks } from "../src/Webhooks.js"
import { backends, layerOf, type TestDatabase } from "./support/databases.js"
import { startReceiver, type WebhookReceiver, webhookHeaders } from "./support/webhookReceiver.js"

const PROJECT = "prj_hooks"

/** The broker's HTTP client for webhooks: redirects are not followed. */
const httpClient = FetchHttpClient.layer.pipe(
  Layer.provide(Layer.succeed(FetchHttpClient.RequestInit, { redirect: "manual" }))
)

/** A signal that never wakes the dispatcher: rounds happen when the test calls `dispatch`. */
const silentSignal = Layer.succeed(WebhookSignal, { raise: Effect.void, await: Effect.never })

const settings = (overrides: Partial<WebhookSettings> = {}): WebhookSettings => ({
  ...defaultSettings,
  timeout: Duration.seconds(5),
  pollInterval: Duration.hours(24),
  ...overrides
})

const addProject = Effect.flatMap(
  SqlClient.SqlClient,
  (sql) => sql`INSERT INTO projects ${sql.insert({ id: PROJECT, name: PROJECT, settings: "{}", created_at: 0 })}`
)

describe.each(backends)("webhooks on $name", ({ make }) => {
  const databases: Array<TestDatabase> = []
  const receivers: Array<WebhookReceiver> = []
  afterEach(async () => {
    for (const receiver of receivers.splice(0)) await receiver.close()
    for (const database of databases.splice(0)) await database.drop()
  })
  const receiver = async () => {
    const started = await startReceiver()
    receivers.push(started)
    return started
  }
  const run = <A, E>(
    effect: Effect.Effect<A, E, Events | Webhooks | SqlClient.SqlClient>,
    options: { readonly signal?: Layer.Layer<WebhookSignal>; readonly settings?: WebhookSettings } = {}
  ) =>
    Effect.runPromise(
      Effect.gen(function* () {
        const database = yield* Effect.promise(make)
        databases.push(database)
        const layer = Layer.merge(Events.layer, Webhooks.layer(options.settings ?? settings())).pipe(
          Layer.provideMerge(options.signal ?? WebhookSignal.layer),
          Layer.provide(Layer.merge(Cipher.layer(Redacted.make(generateKey())).pipe(Layer.orDie), httpClient)),
          Layer.provideMerge(layerOf(database))
        )
        return yield* Effect.zipRight(addProject, effect).pipe(Effect.provide(layer))
      }).pipe(Effect.scoped)
    )

  it("delivers a project's events, signed, as soon as they are written; verified by standardwebhooks and the SDK", async () => {
    const target = await receiver()
    const { secret, eventId } = await run(
      Effect.gen(function* () {
        const webhooks = yield* Webhooks
        const events = yield* Events
        const created = yield* webhooks.create(PROJECT, { url: target.url, events: ["token.*"] })
        // Not delivered: another project, another kind, no project.
        yield* events.record({ kind: "token.issued", projectId: "prj_other" })
        yield* events.record({ kind: "authorization.started", projectId: PROJECT })
        yield* events.record({ kind: "connector.created", connector: "acme/app" })
        yield* events.record({ kind: "token.issued", projectId: PROJECT, subject: "user:1", data: { source: "x" } })
        yield* events.flush
        // The dispatcher polls once a day here: only the signal of the events' writer wakes it.
        yield* Effect.promise(() => target.waitFor(1))
        const listed = yield* events.list({ projectId: PROJECT, kinds: ["token.issued"], limit: 1 })
        return { secret: Redacted.value(created.secret), eventId: listed[0]?.id }
      })
    )
    expect(target.receipts).toHaveLength(1)
    const [receipt] = target.receipts
    if (receipt === undefined) throw new Error("no receipt")
    expect(secret).toMatch(/^whsec_/)
    expect(receipt.headers["webhook-id"]).toBe(eventId)
    expect(receipt.headers["content-type"]).toBe("application/json")
    const verified = new Webhook(secret).verify(receipt.body, webhookHeaders(receipt))
    expect(verified).toMatchObject({
      type: "token.issued",
      data: { id: eventId, project: PROJECT, subject: "user:1", details: { source: "x" } }
    })
    const bySdk = await Effect.runPromise(SdkWebhook.verify(secret, receipt.headers, receipt.body))
    expect(bySdk.id).toBe(eventId)
    expect(bySdk.payload).toEqual(verified)
  })

  it("tries again with backoff: a receiver that fails three times gets the event on the fourth attempt", async () => {
    const target = await receiver()
    target.answer = (index) => (index < 3 ? 500 : 204)
    const result = await run(
      Effect.gen(function* () {
        const webhooks = yield* Webhooks
        const hook = yield* webhooks.create(PROJECT, { url: target.url })
        yield* Effect.flatMap(Events, (events) =>
          Effect.zipRight(events.record({ kind: "grant.revoked", projectId: PROJECT }), events.flush)
        )
        const rounds: Array<number> = [yield* webhooks.dispatch]
        // Each delay is its schedule's (5 s, 30 s, 2 min) plus up to 20 % jitter: not due just before, due after.
        for (const [before, after] of [
          [4_900, 1_200],
          [29_900, 6_200],
          [119_900, 24_200]
        ] as const) {
          yield* TestClock.adjust(before)
          rounds.push(yield* webhooks.dispatch)
          yield* TestClock.adjust(after)
          rounds.push(yield* webhooks.dispatch)
        }
        rounds.push(yield* webhooks.dispatch)
        return { rounds, deliveries: yield* webhooks.deliveries(hook.id, { limit: 10 }) }
      }).pipe(Effect.provide(TestContext.TestContext)),
      { signal: silentSignal }
    )
    expect(result.rounds).toEqual([1, 0, 1, 0, 1, 0, 1, 0])
    expect(target.receipts).toHaveLength(4)
    expect(new Set(target.receipts.map((receipt) => receipt.headers["webhook-id"])).size).toBe(1)
    expect(result.deliveries).toHaveLength(1)
    expect(result.deliveries[0]).toMatchObject({ status: "delivered", attempts: 4, lastStatus: 204 })
    expect(result.deliveries[0]?.attemptLog.map((attempt) => attempt.status)).toEqual([500, 500, 500, 204])
    expect(result.deliveries[0]?.attemptLog[0]?.error).toBe("failure 0")
  })

  it("retries on demand, follows no redirect, and disables a webhook whose receiver answers 410 Gone", async () => {
    const target = await receiver()
    target.answer = (index) => (index === 0 ? 302 : 410)
    const result = await run(
      Effect.gen(function* () {
        const webhooks = yield* Webhooks
        const hook = yield* webhooks.create(PROJECT, { url: target.url })
        yield* Effect.flatMap(Events, (events) =>
          Effect.zipRight(events.record({ kind: "token.revoked", projectId: PROJECT }), events.flush)
        )
        yield* webhooks.dispatch
        const [afterRedirect] = yield* webhooks.deliveries(hook.id, { limit: 10 })
        if (afterRedirect === undefined) return yield* Effect.dieMessage("no delivery")
        const retried = yield* webhooks.retry(afterRedirect.id)
        const claimed = yield* webhooks.dispatch
        const [gone] = yield* webhooks.deliveries(hook.id, { limit: 10 })
        return { afterRedirect, retried, claimed, gone, hooks: yield* webhooks.list(PROJECT) }
      }).pipe(Effect.provide(TestContext.TestContext)),
      { signal: silentSignal }
    )
    expect(result.afterRedirect).toMatchObject({ status: "pending", attempts: 1, lastStatus: 302 })
    expect(result.afterRedirect.lastError).toContain("redirect")
    expect(result.retried).toMatchObject({ status: "pending", attempts: 0 })
    expect(result.claimed).toBe(1)
    expect(result.gone).toMatchObject({ status: "failed", lastStatus: 410 })
    expect(result.gone?.attemptLog).toHaveLength(2)
    expect(result.hooks[0]).toMatchObject({ enabled: false, disabledReason: "the receiver answered 410 Gone" })
    expect(target.receipts).toHaveLength(2)
  })
})
