import { afterEach, describe, expect, it } from "@effect/vitest"
import { ConfigProvider, Effect, Either, Layer, Option, Redacted, TestClock, TestServices } from "effect"
import { Cipher, generateKey } from "../src/Cipher.js"
import { Events } from "../src/Events.js"
import * as Housekeeping from "../src/Housekeeping.js"
import { Store } from "../src/Store.js"
import { layerOf, sqlite, type TestDatabase } from "./support/databases.js"

const DAY = 86_400_000

describe("housekeeping", () => {
  const databases: Array<TestDatabase> = []
  afterEach(async () => {
    for (const database of databases.splice(0)) await database.drop()
  })
  const store = () => {
    const database = sqlite()
    databases.push(database)
    return Store.layer.pipe(
      Layer.provideMerge(layerOf(database)),
      Layer.provide(Cipher.layer(Redacted.make(generateKey())).pipe(Layer.orDie))
    )
  }

  /** An issued token expiring at `expiresAt`, and a way to tell whether it is still stored. */
  const issue = (expiresAt: number) =>
    Effect.gen(function* () {
      const saved = yield* Effect.flatMap(Store, (s) =>
        s.putConnector({
          uid: `hk/${expiresAt}`,
          name: "Housekeeping",
          type: "oauth",
          service: "hk",
          clientId: "broker",
          clientSecret: Redacted.make("secret"),
          settings: {
            tokenEndpoint: "https://idp.test/token",
            tokenEndpointAuthMethod: "client_secret_basic",
            defaultScopes: {},
            defaultTokenLifetimeSeconds: 3600,
            installationsRequired: false,
            crossInstallation: false,
            data: {}
          }
        })
      )
      yield* Effect.flatMap(Store, (s) =>
        s.insertIssuedToken({
          connectorId: saved.id,
          projectId: "prj",
          environment: "production",
          subject: "app",
          installationId: "",
          requestKey: "k",
          grantId: undefined,
          accessToken: Redacted.make("at"),
          expiresAt
        })
      )
      return Effect.map(
        Effect.flatMap(Store, (s) => s.listActiveTokens({ connectorId: saved.id })),
        (tokens) => tokens.length === 1
      )
    })

  it.effect("deletes tokens expired longer ago than the retention, at start and every hour", () =>
    Effect.gen(function* () {
      yield* TestClock.setTime(100 * DAY)
      const old = yield* issue(100 * DAY - 31 * DAY)
      const recent = yield* issue(100 * DAY - 29 * DAY)
      yield* Layer.launch(Housekeeping.layer(Option.some(30))).pipe(Effect.forkScoped)
      // The first round runs at start (let the fiber run: it is not a child of the test).
      for (let i = 0; i < 200 && (yield* old); i++) yield* TestServices.provideLive(Effect.sleep("5 millis"))
      expect(yield* old).toBe(false)
      expect(yield* recent).toBe(true)
      // A day and a half later the recent one is past 30 days too: an hourly round takes it.
      yield* TestClock.adjust(DAY + DAY / 2)
      for (let i = 0; i < 200 && (yield* recent); i++) yield* TestServices.provideLive(Effect.sleep("5 millis"))
      expect(yield* recent).toBe(false)
    }).pipe(Effect.scoped, Effect.provide(store()))
  )

  it.effect("with retention off, nothing is deleted", () =>
    Effect.gen(function* () {
      yield* TestClock.setTime(400 * DAY)
      const ancient = yield* issue(DAY)
      yield* Layer.launch(Housekeeping.layer(Option.none())).pipe(Effect.forkScoped)
      yield* TestClock.adjust(2 * DAY)
      expect(yield* ancient).toBe(true)
    }).pipe(Effect.scoped, Effect.provide(store()))
  )

  it.effect("deletes events older than their retention, at start and every hour", () => {
    const database = sqlite()
    databases.push(database)
    return Effect.gen(function* () {
      const events = yield* Events
      for (const day of [9, 11]) {
        yield* TestClock.setTime(day * DAY)
        yield* events.record({ kind: "token.issued", subject: `day ${day}` })
      }
      yield* TestClock.setTime(100 * DAY)
      const left = Effect.map(events.list({ limit: 10 }), (listed) => listed.map((event) => event.subject))
      expect(yield* left).toEqual(["day 11", "day 9"])
      yield* Layer.launch(Housekeeping.layerEvents(Option.some(90))).pipe(Effect.forkScoped)
      // The first round runs at start: day 9 is 91 days old, day 11 is 89.
      for (let i = 0; i < 200 && (yield* left).length > 1; i++) {
        yield* TestServices.provideLive(Effect.sleep("5 millis"))
      }
      expect(yield* left).toEqual(["day 11"])
      yield* TestClock.adjust(DAY + DAY / 2)
      for (let i = 0; i < 200 && (yield* left).length > 0; i++) {
        yield* TestServices.provideLive(Effect.sleep("5 millis"))
      }
      expect(yield* left).toEqual([])
    }).pipe(Effect.scoped, Effect.provide(Events.layer.pipe(Layer.provide(layerOf(database)))))
  })

  it.effect("reads CONNECT_EVENT_RETENTION_DAYS: 90 days by default, a number of days, off, or a clear error", () =>
    Effect.gen(function* () {
      const read = (value: string | undefined) =>
        Effect.either(
          Effect.withConfigProvider(
            Housekeeping.eventRetentionConfig,
            ConfigProvider.fromMap(new Map(value === undefined ? [] : [["CONNECT_EVENT_RETENTION_DAYS", value]]))
          )
        )
      expect(yield* read(undefined)).toEqual(Either.right(Option.some(90)))
      expect(yield* read("365")).toEqual(Either.right(Option.some(365)))
      expect(yield* read("OFF")).toEqual(Either.right(Option.none()))
      const bad = yield* read("1.5")
      expect(Either.isLeft(bad) && String(bad.left)).toContain(
        "CONNECT_EVENT_RETENTION_DAYS must be a whole number of days from 1 to 36500, or off to keep events for good"
      )
    })
  )

  it.effect("reads CONNECT_TOKEN_RETENTION_DAYS: a number of days, off, or a clear error", () =>
    Effect.gen(function* () {
      const read = (value: string | undefined) =>
        Effect.either(
          Effect.withConfigProvider(
            Housekeeping.retentionConfig,
            ConfigProvider.fromMap(new Map(value === undefined ? [] : [["CONNECT_TOKEN_RETENTION_DAYS", value]]))
          )
        )
      expect(yield* read(undefined)).toEqual(Either.right(Option.some(30)))
      expect(yield* read("7")).toEqual(Either.right(Option.some(7)))
      expect(yield* read("off")).toEqual(Either.right(Option.none()))
      const bad = yield* read("0")
      expect(Either.isLeft(bad) && String(bad.left)).toContain("CONNECT_TOKEN_RETENTION_DAYS must be a whole number")
    })
  )
})
