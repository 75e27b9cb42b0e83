import type { SqlClient } from "@effect/sql"
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { Effect, Layer, ManagedRuntime, Option, Redacted } from "effect"
import { UserAuthorizationRequired } from "effect-connect/ConnectError"
import { Cipher, generateKey } from "../src/Cipher.js"
import type { EventsService } from "../src/Events.js"
import { refreshGrant } from "../src/grants/refreshToken.js"
import type { ProviderClientService, ProviderEndpoint, Grant as ProviderGrant } from "../src/ProviderClient.js"
import { Store, type StoreService } from "../src/Store.js"
import { backends, layerOf, type TestDatabase } from "./support/databases.js"

/** The connector of these tests. */
const putAcme = (store: StoreService) =>
  store.putConnector({
    uid: "acme/api",
    name: "Acme",
    type: "oauth",
    service: "acme",
    clientId: "broker",
    clientSecret: Redacted.make("cs_secret_for_leases"),
    settings: {
      tokenEndpoint: "https://auth.example.test/token",
      tokenEndpointAuthMethod: "client_secret_basic",
      defaultScopes: {},
      defaultTokenLifetimeSeconds: 3600,
      installationsRequired: false,
      crossInstallation: false,
      data: {}
    }
  })

/** The store, the connector of these tests and a new grant of `subject` holding `refreshToken`. */
const acmeGrant = async (
  run: <A, E>(effect: Effect.Effect<A, E, Store>) => Promise<A>,
  subject: string,
  refreshToken: string
) => {
  const store = await run(Store)
  const connector = await run(putAcme(store))
  const id = await run(
    store.putGrant({
      connectorId: connector.id,
      installationId: "",
      subject,
      refreshToken: Redacted.make(refreshToken)
    })
  )
  return { store, connector, id }
}

/** A provider that rotates every refresh token it is sent, and says which it was sent. */
const rotatingProvider = () => {
  const sent: Array<string> = []
  const provider = {
    requestToken: (_endpoint: ProviderEndpoint, grant: ProviderGrant) =>
      Effect.sync(() => {
        const refreshToken = grant.type === "refresh_token" ? Redacted.value(grant.refreshToken) : "none"
        sent.push(refreshToken)
        return {
          accessToken: Redacted.make(`at_for_${refreshToken}`),
          tokenType: "Bearer",
          expiresAt: Date.now() + 3_600_000,
          refreshToken: Redacted.make(`${refreshToken}_next`)
        }
      })
  } as unknown as ProviderClientService
  return { sent, provider }
}

/** An event history that keeps nothing. */
const noEvents: EventsService = {
  record: () => Effect.void,
  flush: Effect.void,
  addSource: () => {},
  list: () => Effect.succeed([]),
  prune: () => Effect.succeed(0)
}

/** A refresh begun from a read of its grant that another broker's refresh made stale. */
const refreshFromStaleRead = async (run: <A, E>(effect: Effect.Effect<A, E, Store>) => Promise<A>) => {
  const { store, connector, id } = await acmeGrant(run, "stale-read", "rt_a")
  const read = Option.getOrThrow(await run(store.findGrantById(id)))
  // Another broker refreshes the grant after the read: rt_a is rotated to rt_b.
  const now = Date.now()
  expect(
    await run(store.claimGrantLease({ grantId: id, version: read.version, owner: "other", now, until: now + 1_000 }))
  ).toBe(true)
  expect(
    await run(
      store.finishGrantRefresh({
        grantId: id,
        version: read.version + 1,
        refreshToken: Redacted.make("rt_b"),
        keepAttempt: false
      })
    )
  ).toBe(true)
  const { sent, provider } = rotatingProvider()
  const context = {
    store,
    provider,
    owner: "this",
    connector,
    endpoint: {
      tokenEndpoint: "https://auth.example.test/token",
      clientId: "broker",
      clientSecret: Redacted.make("cs_secret_for_leases"),
      authMethod: "client_secret_basic" as const,
      defaultLifetimeSeconds: 3600
    },
    subject: { type: "user" as const, id: "stale-read" },
    targets: {},
    events: noEvents
  }
  const answer = await run(
    refreshGrant(
      context,
      id,
      {
        reuse: Effect.succeed(Option.none()),
        issue: (token) => Effect.succeed(Redacted.value(token.accessToken)),
        gone: () => new UserAuthorizationRequired({ connector: "acme/api" })
      },
      read
    )
  )
  // The stale read's claim was refused; the grant was read again, and its current token sent, once.
  expect(sent).toEqual(["rt_b"])
  expect(answer).toBe("at_for_rt_b")
  const saved = Option.getOrThrow(await run(store.findGrantById(id)))
  expect(saved.refreshToken && Redacted.value(saved.refreshToken)).toBe("rt_b_next")
  expect(saved).toMatchObject({ leaseOwner: undefined, attemptStartedAt: undefined })
}

// The refresh journal's store operations: a lease on a grant, the attempt it records, the compare-and-set that
// saves a refresh, and the leases of token requests; each one statement, so no lock spans a provider call.
describe.each(backends)("leases and the refresh journal on $name", ({ make }) => {
  let database: TestDatabase
  let runtime: ManagedRuntime.ManagedRuntime<Store | SqlClient.SqlClient, never>
  const run = <A, E>(effect: Effect.Effect<A, E, Store>) => runtime.runPromise(effect)

  beforeAll(async () => {
    database = await make()
    runtime = ManagedRuntime.make(
      Store.layer.pipe(
        Layer.provideMerge(layerOf(database)),
        Layer.provide(Cipher.layer(Redacted.make(generateKey())).pipe(Layer.orDie))
      )
    )
  })
  afterAll(async () => {
    await runtime.dispose()
    await database.drop()
  })

  it("a grant is claimed by one broker at a time, and saved only by the claim that read it last", async () => {
    const { store, id } = await acmeGrant(run, "u", "rt1")
    const grant = async () => Option.getOrThrow(await run(store.findGrantById(id)))
    const claim = (version: number, owner: string, now: number) =>
      run(store.claimGrantLease({ grantId: id, version, owner, now, until: now + 1_000 }))

    expect(await claim(1, "a", 1_000)).toBe(true)
    expect(await grant()).toMatchObject({ version: 2, leaseOwner: "a", leaseExpiresAt: 2_000, attemptStartedAt: 1_000 })
    // Leased: nobody else may claim it until the lease expires; a stale read never may.
    expect(await claim(2, "b", 1_500)).toBe(false)
    expect(await claim(1, "b", 2_500)).toBe(false)
    // The holder saves: the rotated token, the attempt cleared, the lease released.
    expect(
      await run(
        store.finishGrantRefresh({ grantId: id, version: 2, refreshToken: Redacted.make("rt2"), keepAttempt: false })
      )
    ).toBe(true)
    const saved = await grant()
    expect(saved).toMatchObject({ version: 3, leaseOwner: undefined, attemptStartedAt: undefined })
    expect(saved.refreshToken && Redacted.value(saved.refreshToken)).toBe("rt2")
    // A second save on the same read is refused (compare-and-set on the version).
    expect(await run(store.finishGrantRefresh({ grantId: id, version: 2, keepAttempt: false }))).toBe(false)

    // A refresh whose outcome is unknown keeps its attempt: the grant is then listed for recovery.
    expect(await claim(3, "b", 3_000)).toBe(true)
    expect(await run(store.finishGrantRefresh({ grantId: id, version: 4, keepAttempt: true }))).toBe(true)
    expect(await run(store.listUnfinishedRefreshes(3_500, false))).toEqual([id])
    // The next claim keeps the earliest unfinished attempt.
    expect(await claim(5, "c", 4_000)).toBe(true)
    expect(await grant()).toMatchObject({ attemptStartedAt: 3_000, leaseOwner: "c" })
    // Leased and not expired: not listed (another replica is at it); on SQLite every lease is stale at start.
    expect(await run(store.listUnfinishedRefreshes(4_500, false))).toEqual([])
    expect(await run(store.listUnfinishedRefreshes(4_500, true))).toEqual([id])
    // Lost, with the reason kept on the row.
    expect(
      await run(
        store.finishGrantRefresh({ grantId: id, version: 6, status: "lost", lostReason: "why", keepAttempt: false })
      )
    ).toBe(true)
    expect(await grant()).toMatchObject({ status: "lost", lostReason: "why", attemptStartedAt: undefined })
    expect(await claim(7, "d", 9_000)).toBe(false)
  })

  it("a refresh begun from a stale read of its grant sends the refresh token the grant holds now", () =>
    refreshFromStaleRead(run))

  it("a token request's lease is held by one broker until it is released or expires", async () => {
    const store = await run(Store)
    expect(await run(store.claimTokenLease("k", "a", 0, 1_000))).toBe(true)
    expect(await run(store.claimTokenLease("k", "b", 500, 1_500))).toBe(false)
    expect(await run(store.claimTokenLease("k", "b", 1_000, 2_000))).toBe(true)
    await run(store.releaseTokenLease("k", "a"))
    expect(await run(store.claimTokenLease("k", "a", 1_100, 2_100))).toBe(false)
    await run(store.releaseTokenLease("k", "b"))
    expect(await run(store.claimTokenLease("k", "a", 1_200, 2_200))).toBe(true)
  })
})
