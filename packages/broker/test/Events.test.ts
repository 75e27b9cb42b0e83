import { afterEach, describe, expect, it } from "@effect/vitest"
import { Effect, Layer, TestClock, TestContext } from "effect"
import { Events } from "../src/Events.js"
import { backends, layerOf, type TestDatabase } from "./support/databases.js"

describe.each(backends)("the event history on $name", ({ make }) => {
  const databases: Array<TestDatabase> = []
  afterEach(async () => {
    for (const database of databases.splice(0)) await database.drop()
  })
  const run = <A, E>(effect: Effect.Effect<A, E, Events>) =>
    Effect.runPromise(
      Effect.gen(function* () {
        const database = yield* Effect.promise(make)
        databases.push(database)
        return yield* effect.pipe(Effect.provide(Events.layer.pipe(Layer.provide(layerOf(database)))))
      }).pipe(Effect.scoped)
    )

  it("lists what was recorded, newest first, with the request id it was logged with", async () => {
    const listed = await run(
      Effect.gen(function* () {
        const events = yield* Events
        yield* events.record({ kind: "connector.created", connector: "acme/app" })
        yield* events
          .record({
            kind: "token.issued",
            connector: "acme/app",
            projectId: "prj_1",
            environment: "production",
            subject: "user:u1",
            data: { source: "provider", expiresInSeconds: 3600 }
          })
          .pipe(Effect.annotateLogs("requestId", "req_42"))
        return yield* events.list({ limit: 10 })
      })
    )
    expect(listed.map((event) => event.kind)).toEqual(["token.issued", "connector.created"])
    expect(listed[0]).toMatchObject({
      connector: "acme/app",
      projectId: "prj_1",
      environment: "production",
      subject: "user:u1",
      requestId: "req_42",
      data: { source: "provider", expiresInSeconds: 3600 }
    })
    expect(listed[1]?.projectId).toBeUndefined()
    expect(listed[0]?.id).toMatch(/^evt_/)
    expect(listed[0]?.seq).toBeGreaterThan(listed[1]?.seq ?? Number.POSITIVE_INFINITY)
  })

  it("filters by connector, project, subject, kinds and time, and pages both ways", async () => {
    const result = await run(
      Effect.gen(function* () {
        const events = yield* Events
        for (let i = 0; i < 12; i++) {
          yield* TestClock.setTime(1_000 * i)
          yield* events.record({
            kind: i % 3 === 0 ? "grant.invalidated" : "token.issued",
            connector: i % 2 === 0 ? "even" : "odd",
            projectId: `prj_${i % 4}`,
            subject: `user:${i}`
          })
        }
        const page1 = yield* events.list({ connector: "even", limit: 4 })
        const page2 = yield* events.list({ connector: "even", limit: 4, beforeSeq: page1.at(-1)?.seq ?? 0 })
        return {
          page1,
          page2,
          kinds: yield* events.list({ kinds: ["grant.invalidated"], limit: 100 }),
          project: yield* events.list({ projectId: "prj_1", limit: 100 }),
          subject: yield* events.list({ subject: "user:7", limit: 100 }),
          window: yield* events.list({ since: 3_000, until: 6_000, limit: 100 }),
          after: yield* events.list({ afterSeq: (page1[0]?.seq ?? 0) - 2, limit: 100 })
        }
      }).pipe(Effect.provide(TestContext.TestContext))
    )
    expect(result.page1.map((e) => e.subject)).toEqual(["user:10", "user:8", "user:6", "user:4"])
    expect(result.page2.map((e) => e.subject)).toEqual(["user:2", "user:0"])
    expect(result.kinds.map((e) => e.subject)).toEqual(["user:9", "user:6", "user:3", "user:0"])
    expect(result.project.map((e) => e.subject)).toEqual(["user:9", "user:5", "user:1"])
    expect(result.subject).toHaveLength(1)
    expect(result.window.map((e) => e.occurredAt)).toEqual([5_000, 4_000, 3_000])
    expect(result.after.map((e) => e.subject)).toEqual(["user:9", "user:10", "user:11"])
  })

  it("prunes what occurred before a time, and says how many", async () => {
    const result = await run(
      Effect.gen(function* () {
        const events = yield* Events
        for (const at of [1_000, 2_000, 3_000]) {
          yield* TestClock.setTime(at)
          yield* events.record({ kind: "token.revoked" })
        }
        yield* events.flush
        const deleted = yield* events.prune(2_500)
        return { deleted, left: yield* events.list({ limit: 10 }) }
      }).pipe(Effect.provide(TestContext.TestContext))
    )
    expect(result.deleted).toBe(2)
    expect(result.left.map((e) => e.occurredAt)).toEqual([3_000])
  })

  it("writes what was recorded before its scope closes, without a reader asking", async () => {
    const database = await make()
    databases.push(database)
    const layer = Events.layer.pipe(Layer.provide(layerOf(database)))
    await Effect.runPromise(
      Effect.scoped(
        Effect.flatMap(Layer.build(layer), (context) =>
          Effect.forEach(["a", "b", "c"], (subject) =>
            Effect.flatMap(Events, (events) => events.record({ kind: "token.issued", subject })).pipe(
              Effect.provide(context)
            )
          )
        )
      )
    )
    const listed = await Effect.runPromise(
      Effect.scoped(Effect.flatMap(Events, (events) => events.list({ limit: 10 })).pipe(Effect.provide(layer)))
    )
    expect(listed.map((e) => e.subject)).toEqual(["c", "b", "a"])
  })
})
