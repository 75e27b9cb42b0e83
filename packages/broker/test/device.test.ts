import { existsSync, readFileSync } from "node:fs"
import { HttpClient, type HttpClientRequest, HttpClientResponse } from "@effect/platform"
import { afterAll, afterEach, beforeAll, describe, expect, it } from "@effect/vitest"
import {
  Clock,
  Effect,
  Either,
  type Fiber,
  Layer,
  LogLevel,
  Option,
  Redacted,
  Supervisor,
  TestClock,
  TestServices
} from "effect"
import { getToken, startAuthorization } from "effect-connect"
import { Cipher, generateKey } from "../src/Cipher.js"
import { DeviceAuthorizations } from "../src/DeviceAuthorizations.js"
import { Events } from "../src/Events.js"
import { type Connector, Store } from "../src/Store.js"
import { grantSubject, Tokens } from "../src/Tokens.js"
import { type RunningBroker, sdkClient } from "./support/broker.js"
import { oauthClientOf, productionProject, startBrokerWithProvider } from "./support/brokerWithProvider.js"
import { backends, layerOf, sqlite, type TestDatabase } from "./support/databases.js"
import { postJson } from "./support/http.js"
import { DEVICE_CODE_GRANT, type OAuthProviderHarness } from "./support/oauthProvider.js"
import { providerClientOver, requestDeviceAuthorization, requestToken } from "./support/providerClient.js"

const KEY = "ck_device_flow_key_6310"

// ---------------------------------------------------------------------------------------------------------------
// Against a real broker and a real OAuth server, on each database
// ---------------------------------------------------------------------------------------------------------------

describe.each(backends)("the device authorization grant on $name", ({ make }) => {
  let provider: OAuthProviderHarness
  let database: TestDatabase
  let broker: RunningBroker
  const client = () => sdkClient(broker, KEY)
  /** Every device code the provider handed out, and everything the broker said or logged. */
  const deviceCodes: Array<string> = []
  const seen: Array<string> = []
  const restoreConsole: Array<() => void> = []

  /** `fetch` to the broker, keeping the body of every answer. */
  const call = async (path: string, body: unknown) => {
    const response = await postJson(`${broker.url}${path}`, body, KEY)
    const text = await response.text()
    seen.push(text)
    return { status: response.status, body: JSON.parse(text) as Record<string, unknown> }
  }
  const start = (connector: string, body: Record<string, unknown>) =>
    call(`/v1/connect/authorize/${encodeURIComponent(connector)}`, { deviceCode: true, ...body })
  const status = (started: Record<string, unknown>) =>
    call(`/v1/connect/authorize/${String(started.request)}/status`, { verifier: started.verifier })

  /** Asks for the status until it is not pending any more (bounded: 20 seconds). */
  const settled = async (started: Record<string, unknown>) => {
    const until = Date.now() + 20_000
    for (;;) {
      const answer = await status(started)
      if (answer.body.status !== "pending" || Date.now() > until) return answer
      await new Promise((resolve) => setTimeout(resolve, 200))
    }
  }

  beforeAll(async () => {
    for (const level of ["log", "info", "warn", "error", "debug"] as const) {
      const original = console[level]
      console[level] = (...args: Array<unknown>) => {
        seen.push(args.map(String).join(" "))
        // Shown only when asked for, as the other tests' broker logs are.
        if (process.env.CONNECT_TEST_LOG_LEVEL !== undefined) original(...args)
      }
      restoreConsole.push(() => {
        console[level] = original
      })
    }
    database = await make()
    const started = await startBrokerWithProvider({
      database,
      // Its log lines (info) are among what is checked for the device code.
      logLevel: LogLevel.Info,
      provider: { deviceInterval: 1 },
      config: (provider) => {
        const oauth = {
          ...oauthClientOf(provider),
          defaultScopes: { user: ["openid", "offline_access", "api:read"] }
        }
        return {
          connectors: [
            {
              uid: "acme/device",
              name: "Acme (device)",
              ...oauth,
              authorizationEndpoint: provider.authorizationEndpoint,
              deviceAuthorizationEndpoint: provider.deviceAuthorizationEndpoint
            },
            { uid: "acme/web", name: "Acme (web)", ...oauth, authorizationEndpoint: provider.authorizationEndpoint }
          ],
          ...productionProject({ id: "prj_cli", key: KEY }, ["acme/device", "acme/web"])
        }
      }
    })
    provider = started.provider
    broker = started.broker
    provider.provider.on("device_authorization.success", (_ctx: unknown, body: { device_code?: unknown }) => {
      if (typeof body.device_code === "string") deviceCodes.push(body.device_code)
    })
  })
  afterAll(async () => {
    await broker?.close()
    await provider?.close()
    await database?.drop()
    for (const restore of restoreConsole) restore()
  })

  it.effect("the user completes it at the provider; the broker polls, and getToken succeeds without asking again", () =>
    Effect.gen(function* () {
      const subject = { type: "user", id: "ada" } as const
      const started = yield* Effect.promise(() => start("acme/device", { subject }))
      expect(started.status).toBe(200)
      expect(started.body).toMatchObject({
        request: expect.stringMatching(/^req_/),
        verifier: expect.any(String),
        deviceCode: expect.stringMatching(/^[A-Z]{4}-[A-Z]{4}$/),
        connector: { uid: "acme/device" }
      })
      const url = String(started.body.url)
      expect(url.startsWith(`${provider.issuer}/device?user_code=`)).toBe(true)
      expect(Number(started.body.expiresAt)).toBeGreaterThan(Date.now())
      expect(Number(started.body.expiresAt)).toBeLessThanOrEqual(Date.now() + 10 * 60_000)

      expect((yield* Effect.promise(() => status(started.body))).body).toMatchObject({ status: "pending" })
      // Not yet authorized: getToken says so, and the pending device request is not handed out as a link.
      const before = yield* Effect.flip(getToken("acme/device", { subject }))
      expect(before._tag).toBe("UserAuthorizationRequired")
      const link = before._tag === "UserAuthorizationRequired" ? (before.authorizeUrl ?? "") : ""
      expect(link.startsWith(`${broker.url}/v1/connect/authorize/req_`)).toBe(true)
      expect(link).not.toContain(String(started.body.request))

      yield* Effect.promise(() =>
        provider.completeDeviceAuthorization(url, { accountId: "ada", userCode: String(started.body.deviceCode) })
      )
      const done = yield* Effect.promise(() => settled(started.body))
      expect(done.body).toEqual({ request: started.body.request, status: "completed" })
      expect(provider.tokenRequests.count(DEVICE_CODE_GRANT)).toBeGreaterThan(0)
      // The broker's log lines are among what is checked for the device code.
      expect(seen.some((text) => text.includes(`device authorization ${String(started.body.request)} completed`))).toBe(
        true
      )
      // Sealed at rest.
      if (database.file !== undefined) {
        const files = [database.file, `${database.file}-wal`].filter((file) => existsSync(file))
        const raw = files.map((file) => readFileSync(file).toString("latin1")).join("")
        expect(raw).toContain(String(started.body.deviceCode))
        for (const code of deviceCodes) expect(raw).not.toContain(code)
      }

      // The first token was stored: getToken is answered without another provider call.
      const calls = provider.tokenRequests.total
      const token = yield* getToken("acme/device", { subject })
      expect(provider.tokenRequests.total).toBe(calls)
      expect(yield* Effect.promise(() => provider.introspect(Redacted.value(token)))).toMatchObject({
        active: true,
        sub: "ada"
      })
      // The grant holds a refresh token: another request of the same user is a refresh at the provider.
      const refreshes = provider.tokenRequests.count("refresh_token")
      const narrower = yield* getToken("acme/device", { subject, scopes: ["openid"] })
      expect(provider.tokenRequests.count("refresh_token")).toBe(refreshes + 1)
      expect((yield* Effect.promise(() => provider.introspect(Redacted.value(narrower)))).sub).toBe("ada")
    }).pipe(Effect.provide(client()))
  )

  it.effect("a user who denies it leaves the request failed with access_denied, and no grant", () =>
    Effect.gen(function* () {
      const subject = { type: "user", id: "linus" } as const
      const started = yield* startAuthorization("acme/device", { subject }, { deviceCode: true })
      expect(started.deviceCode).toMatch(/^[A-Z]{4}-[A-Z]{4}$/)
      const verifier = Redacted.value(started.verifier)
      yield* Effect.promise(() =>
        provider.denyDeviceAuthorization(started.url, { accountId: "linus", userCode: started.deviceCode ?? "" })
      )
      const done = yield* Effect.promise(() => settled({ request: started.request, verifier }))
      expect(done.body).toEqual({ request: started.request, status: "failed", error: "access_denied" })
      const error = yield* Effect.flip(getToken("acme/device", { subject }))
      expect(error._tag).toBe("UserAuthorizationRequired")
    }).pipe(Effect.provide(client()))
  )

  it("refuses deviceCode on a connector without a deviceAuthorizationEndpoint, and what a device flow cannot do", async () => {
    const subject = { type: "user", id: "eve" }
    const none = await start("acme/web", { subject })
    expect(none.status).toBe(400)
    expect(none.body).toMatchObject({ error: { code: "bad_request" } })
    expect(JSON.stringify(none.body)).toContain("deviceCode")
    expect(JSON.stringify(none.body)).toContain("deviceAuthorizationEndpoint")
    const returning = await start("acme/device", { subject, returnUrl: "http://localhost:3000/back" })
    expect(returning.status).toBe(400)
    expect(JSON.stringify(returning.body)).toContain("returnUrl")
    const app = await start("acme/device", { subject: { type: "app" } })
    expect(app.status).toBe(400)
    expect(JSON.stringify(app.body)).toContain("subject.type")
  })

  it("a device request's id opens no browser link", async () => {
    const started = await start("acme/device", { subject: { type: "user", id: "grace" } })
    const link = await fetch(`${broker.url}/v1/connect/authorize/${String(started.body.request)}/start`, {
      redirect: "manual"
    })
    expect(link.status).toBe(400)
    expect(await link.text()).toContain("completed with a code")
  })

  // Last: after every flow above.
  it("never shows a device code: not in an answer, not in a log line", () => {
    expect(deviceCodes.length).toBeGreaterThanOrEqual(3)
    expect(seen.length).toBeGreaterThan(10)
    for (const code of deviceCodes) {
      for (const text of seen) expect(text).not.toContain(code)
    }
  })
})

// ---------------------------------------------------------------------------------------------------------------
// Polling, driven by the TestClock, against a scripted provider
// ---------------------------------------------------------------------------------------------------------------

const DEVICE_CODE = "dc-SECRET-8d1f3e77"
const TOKEN_ENDPOINT = "https://idp.test/token"
const DEVICE_ENDPOINT = "https://idp.test/device/code"

type Answer = { readonly status: number; readonly body: unknown }
const error = (code: string): Answer => ({ status: 400, body: { error: code } })
const TOKEN: Answer = {
  status: 200,
  body: { access_token: "at-device-1", refresh_token: "rt-device-1", token_type: "Bearer", expires_in: 3600 }
}

/** A provider that answers device authorization requests, and token polls in turn (then the last answer again). */
const scriptedProvider = (device: Record<string, unknown>, polls: ReadonlyArray<Answer>) => {
  const received: Array<{ readonly url: string; readonly at: number; readonly form: URLSearchParams }> = []
  const client = HttpClient.make((request: HttpClientRequest.HttpClientRequest) =>
    Effect.gen(function* () {
      const body = request.body._tag === "Uint8Array" ? new TextDecoder().decode(request.body.body) : ""
      const form = new URLSearchParams(body)
      const at = yield* Clock.currentTimeMillis
      received.push({ url: request.url, at, form })
      const answer =
        request.url === DEVICE_ENDPOINT
          ? { status: 200, body: device }
          : (polls[Math.min(received.filter((r) => r.url === TOKEN_ENDPOINT).length - 1, polls.length - 1)] ?? TOKEN)
      return HttpClientResponse.fromWeb(
        request,
        new Response(JSON.stringify(answer.body), {
          status: answer.status,
          headers: { "content-type": "application/json" }
        })
      )
    })
  )
  const polled = () => received.filter((r) => r.url === TOKEN_ENDPOINT)
  return { received, polled, layer: providerClientOver(client) }
}

const DEVICE_ANSWER = {
  device_code: DEVICE_CODE,
  user_code: "WDJB-MJHT",
  verification_uri: "https://idp.test/activate",
  expires_in: 600,
  interval: 5
}

/** An event history that keeps nothing (and runs no fiber). */
const discardedEvents = Layer.succeed(Events, {
  record: () => Effect.void,
  flush: Effect.void,
  addSource: () => {},
  list: () => Effect.succeed([]),
  prune: () => Effect.succeed(0)
})

describe("device authorization polling", () => {
  const ENCRYPTION_KEY = Redacted.make(generateKey())
  const databases: Array<TestDatabase> = []
  afterEach(async () => {
    for (const database of databases.splice(0)) await database.drop()
  })

  /** The service over a fresh SQLite store (or the given one) and the scripted provider. */
  const services = (provider: ReturnType<typeof scriptedProvider>, reuse?: TestDatabase) => {
    const database = reuse ?? sqlite()
    if (reuse === undefined) databases.push(database)
    return DeviceAuthorizations.layer.pipe(
      Layer.provideMerge(Tokens.layer),
      // The history's writer lives as long as the layer: it would be one of the fibers these tests wait to end.
      Layer.provideMerge(discardedEvents),
      Layer.provideMerge(Store.layer),
      Layer.provideMerge(layerOf(database)),
      Layer.provide(Cipher.layer(ENCRYPTION_KEY).pipe(Layer.orDie)),
      Layer.provide(provider.layer)
    )
  }

  const connector = Effect.flatMap(Store, (store) =>
    store.putConnector({
      uid: "idp/device",
      name: "IdP",
      type: "oauth",
      service: "idp",
      clientId: "broker",
      clientSecret: Redacted.make("broker-secret"),
      settings: {
        tokenEndpoint: TOKEN_ENDPOINT,
        deviceAuthorizationEndpoint: DEVICE_ENDPOINT,
        tokenEndpointAuthMethod: "client_secret_basic",
        defaultScopes: { user: ["openid", "offline_access"] },
        defaultTokenLifetimeSeconds: 3600,
        installationsRequired: false,
        crossInstallation: false,
        data: {}
      }
    })
  )

  const caller = { projectId: "prj_cli", environment: "production" }
  const ADA = grantSubject(caller.projectId, { type: "user", id: "ada" })

  const begin = (target: Connector) =>
    Effect.flatMap(DeviceAuthorizations, (devices) =>
      devices.start(caller, target, { subject: { type: "user", id: "ada" }, deviceCode: true })
    )

  type Fibers = Supervisor.Supervisor<Array<Fiber.RuntimeFiber<unknown, unknown>>>

  /** Lets the background poller run (it is not a child of the test) until `done` holds. */
  const until = <E, R>(done: Effect.Effect<boolean, E, R>) =>
    Effect.gen(function* () {
      for (let i = 0; i < 400; i++) {
        if (yield* done) return
        yield* TestServices.provideLive(Effect.sleep("5 millis"))
      }
      return yield* Effect.dieMessage("the poller did not get there")
    })

  /**
   * Every fiber the test started (the background pollers among them, with `Effect.supervised(fibers)`) has run as far
   * as it can: each waits. Nothing but the clock makes them wait here (the database and the scripted provider answer
   * at once), so what has not happened by then does not happen before the clock moves.
   */
  const fibersWaiting = (fibers: Fibers) =>
    until(
      Effect.flatMap(fibers.value, (running) =>
        Effect.map(
          Effect.forEach(running, (fiber) => fiber.status),
          (statuses) => statuses.every((status) => status._tag === "Suspended")
        )
      )
    )

  /** Every fiber the test started has ended: no poller is left to poll. */
  const fibersEnded = (fibers: Fibers) => until(Effect.map(fibers.value, (running) => running.length === 0))

  /** The request is settled for now: polled `count` times, and its next poll scheduled (or it is over). */
  const polledTimes = (provider: ReturnType<typeof scriptedProvider>, requestId: string, count: number) =>
    until(
      Effect.gen(function* () {
        if (provider.polled().length < count) return false
        const now = yield* Clock.currentTimeMillis
        const device = yield* Effect.flatMap(Store, (store) => store.findDeviceAuthorization(requestId))
        return Option.isNone(device) || device.value.request.status !== "pending" || device.value.nextPollAt > now
      })
    )

  it.scoped("polls every interval, 5 seconds more after slow_down, until the token comes; then completes", () => {
    const provider = scriptedProvider(DEVICE_ANSWER, [
      error("authorization_pending"),
      error("slow_down"),
      error("authorization_pending"),
      TOKEN
    ])
    const fibers = Supervisor.unsafeTrack()
    return Effect.gen(function* () {
      const store = yield* Store
      const target = yield* connector
      const started = yield* begin(target)
      expect(started).toMatchObject({ url: "https://idp.test/activate", deviceCode: "WDJB-MJHT", expiresAt: 600_000 })
      const sent = provider.received[0]
      expect(sent?.form.get("scope")).toBe("openid offline_access")
      const id = started.request

      yield* fibersWaiting(fibers)
      yield* TestClock.adjust("4 seconds")
      expect(provider.polled()).toHaveLength(0)
      yield* TestClock.adjust("1 second")
      yield* polledTimes(provider, id, 1) // 5 s: authorization_pending
      const first = provider.polled()[0]
      expect(first?.form.get("grant_type")).toBe("urn:ietf:params:oauth:grant-type:device_code")
      expect(first?.form.get("device_code")).toBe(DEVICE_CODE)
      yield* TestClock.adjust("5 seconds")
      yield* polledTimes(provider, id, 2) // 10 s: slow_down, the interval is now 10 s
      expect(Option.map(yield* store.findDeviceAuthorization(id), (d) => d.intervalMs)).toEqual(Option.some(10_000))
      yield* TestClock.adjust("5 seconds")
      // A status check before the poll is due does not poll.
      const devices = yield* DeviceAuthorizations
      yield* devices.pollOnce(id)
      expect(provider.polled()).toHaveLength(2)
      yield* TestClock.adjust("5 seconds")
      yield* polledTimes(provider, id, 3) // 20 s: authorization_pending
      yield* TestClock.adjust("10 seconds")
      yield* polledTimes(provider, id, 4) // 30 s: the token
      expect(provider.polled().map((r) => r.at)).toEqual([5_000, 10_000, 20_000, 30_000])

      const request = yield* store.findAuthorizationRequest({ id })
      expect(Option.map(request, (r) => r.status)).toEqual(Option.some("completed"))
      const grant = yield* store.findGrant(target.id, "", ADA)
      expect(Option.map(grant, (g) => g.refreshToken && Redacted.value(g.refreshToken))).toEqual(
        Option.some("rt-device-1")
      )
      // Over: nothing polls any more, and no poller is left to.
      yield* TestClock.adjust("1 minute")
      yield* fibersEnded(fibers)
      expect(provider.polled()).toHaveLength(4)
    }).pipe(Effect.provide(services(provider)), Effect.supervised(fibers))
  })

  it.scoped("slow_down with an interval (GitHub's): the next poll waits that long, not 5 seconds more", () => {
    const provider = scriptedProvider(DEVICE_ANSWER, [
      { status: 200, body: { error: "slow_down", interval: 30 } },
      error("authorization_pending")
    ])
    const fibers = Supervisor.unsafeTrack()
    return Effect.gen(function* () {
      const store = yield* Store
      const id = (yield* begin(yield* connector)).request
      yield* fibersWaiting(fibers)
      yield* TestClock.adjust("5 seconds")
      yield* polledTimes(provider, id, 1) // 5 s: slow_down, the interval is now 30 s
      expect(Option.map(yield* store.findDeviceAuthorization(id), (d) => d.intervalMs)).toEqual(Option.some(30_000))
      yield* TestClock.adjust("29 seconds")
      yield* fibersWaiting(fibers)
      expect(provider.polled()).toHaveLength(1)
      yield* TestClock.adjust("1 second")
      yield* polledTimes(provider, id, 2) // 35 s
      expect(provider.polled().map((r) => r.at)).toEqual([5_000, 35_000])
    }).pipe(Effect.provide(services(provider)), Effect.supervised(fibers))
  })

  it.scoped("one poll at a time: of concurrent status checks and the poller, one polls", () => {
    const provider = scriptedProvider(DEVICE_ANSWER, [error("authorization_pending")])
    const fibers = Supervisor.unsafeTrack()
    return Effect.gen(function* () {
      const started = yield* begin(yield* connector)
      const devices = yield* DeviceAuthorizations
      const store = yield* Store
      yield* TestClock.adjust("5 seconds")
      const record = yield* store.findAuthorizationRequest({ id: started.request }).pipe(Effect.map(Option.getOrThrow))
      yield* Effect.all([devices.refresh(record), devices.refresh(record), devices.pollOnce(started.request)], {
        concurrency: "unbounded"
      })
      yield* polledTimes(provider, started.request, 1)
      // Every status check has returned, and the poller waits for the next interval.
      yield* fibersWaiting(fibers)
      expect(provider.polled()).toHaveLength(1)
    }).pipe(Effect.provide(services(provider)), Effect.supervised(fibers))
  })

  for (const [answer, outcome] of [
    ["access_denied", "access_denied"],
    ["expired_token", "expired_token"],
    ["invalid_grant", "provider_refused"]
  ] as const) {
    it.scoped(`${answer} ends the request failed (${outcome}), with no grant`, () => {
      const provider = scriptedProvider(DEVICE_ANSWER, [error(answer)])
      return Effect.gen(function* () {
        const store = yield* Store
        const target = yield* connector
        const started = yield* begin(target)
        yield* TestClock.adjust("5 seconds")
        yield* polledTimes(provider, started.request, 1)
        const request = yield* store.findAuthorizationRequest({ id: started.request })
        expect(Option.map(request, (r) => [r.status, r.error])).toEqual(Option.some(["failed", outcome]))
        expect(Option.isNone(yield* store.findGrant(target.id, "", ADA))).toBe(true)
      }).pipe(Effect.provide(services(provider)))
    })
  }

  it.scoped("a restarted broker resumes polling the device authorizations left pending", () => {
    const provider = scriptedProvider(DEVICE_ANSWER, [error("authorization_pending"), TOKEN])
    const database = sqlite()
    databases.push(database)
    const fibers = Supervisor.unsafeTrack()
    return Effect.gen(function* () {
      // The first run starts the request and stops before its first poll.
      const started = yield* Effect.scoped(
        Layer.build(services(provider, database)).pipe(
          Effect.flatMap((context) => Effect.provide(Effect.flatMap(connector, begin), context))
        )
      )
      // Its poller ended with it.
      yield* fibersEnded(fibers)
      yield* TestClock.adjust("5 seconds")
      expect(provider.polled()).toHaveLength(0)
      // The next run picks it up.
      yield* Effect.gen(function* () {
        yield* polledTimes(provider, started.request, 1)
        yield* TestClock.adjust("5 seconds")
        yield* polledTimes(provider, started.request, 2)
        const request = yield* Effect.flatMap(Store, (store) => store.findAuthorizationRequest({ id: started.request }))
        expect(Option.map(request, (r) => r.status)).toEqual(Option.some("completed"))
      }).pipe(Effect.provide(services(provider, database)))
    }).pipe(Effect.supervised(fibers))
  })

  it.scoped("stops polling at the request's expiry, which is never past the device code's", () => {
    const provider = scriptedProvider({ ...DEVICE_ANSWER, expires_in: 12, interval: 5 }, [
      error("authorization_pending")
    ])
    const fibers = Supervisor.unsafeTrack()
    return Effect.gen(function* () {
      const started = yield* begin(yield* connector)
      expect(started.expiresAt).toBe(12_000)
      yield* TestClock.adjust("5 seconds")
      yield* polledTimes(provider, started.request, 1)
      yield* TestClock.adjust("5 seconds")
      yield* polledTimes(provider, started.request, 2)
      yield* TestClock.adjust("1 minute")
      yield* fibersEnded(fibers)
      expect(provider.polled()).toHaveLength(2)
    }).pipe(Effect.provide(services(provider)), Effect.supervised(fibers))
  })
})

describe("the provider client's device authorization", () => {
  const endpoint = {
    deviceAuthorizationEndpoint: DEVICE_ENDPOINT,
    clientId: "broker",
    clientSecret: Redacted.make("broker-secret"),
    authMethod: "client_secret_basic" as const
  }

  it.effect("accepts verification_url (Google) and polls every 5 seconds when the provider does not say", () => {
    const provider = scriptedProvider(
      {
        device_code: DEVICE_CODE,
        user_code: "GQVQ-JKEC",
        verification_url: "https://www.google.com/device",
        expires_in: "1800"
      },
      []
    )
    return Effect.gen(function* () {
      const device = yield* requestDeviceAuthorization(endpoint, { scope: ["email"], resource: [] })
      expect(device).toMatchObject({
        userCode: "GQVQ-JKEC",
        verificationUri: "https://www.google.com/device",
        intervalMs: 5_000,
        expiresAt: 1_800_000
      })
      expect(device.verificationUriComplete).toBeUndefined()
      expect(Redacted.value(device.deviceCode)).toBe(DEVICE_CODE)
      expect(provider.received[0]?.form.get("scope")).toBe("email")
    }).pipe(Effect.provide(provider.layer))
  })

  it.effect("refuses an answer without a verification URI, without quoting the device code", () => {
    const provider = scriptedProvider({ device_code: DEVICE_CODE, user_code: "X", expires_in: 600 }, [])
    return Effect.gen(function* () {
      const failure = yield* Effect.flip(requestDeviceAuthorization(endpoint, {}))
      expect(failure).toMatchObject({ kind: "invalid_response", operation: "device_authorization" })
      expect(failure.message).toContain("verification_uri")
      expect(failure.message).toContain("device authorization endpoint")
      expect(failure.message).not.toContain(DEVICE_CODE)
    }).pipe(Effect.provide(provider.layer))
  })

  it.effect("the device flow's answers are their own kinds for the device code grant, not transient", () => {
    const answers = ["authorization_pending", "slow_down", "expired_token", "access_denied"] as const
    return Effect.gen(function* () {
      for (const code of answers) {
        const provider = scriptedProvider(DEVICE_ANSWER, [
          { status: 400, body: { error: code, error_description: `about ${DEVICE_CODE}` } }
        ])
        const poll = requestToken(
          { ...endpoint, tokenEndpoint: TOKEN_ENDPOINT, defaultLifetimeSeconds: 3600 },
          { type: "device_code", deviceCode: Redacted.make(DEVICE_CODE) }
        )
        const failure = yield* Effect.flip(poll.pipe(Effect.provide(provider.layer)))
        expect(failure).toMatchObject({ kind: code, attempts: 1, grantType: "device_code" })
        expect(failure.message).not.toContain(DEVICE_CODE)
        // To any other grant, they mean what they meant before.
        const refresh = requestToken(
          { ...endpoint, tokenEndpoint: TOKEN_ENDPOINT, defaultLifetimeSeconds: 3600 },
          { type: "refresh_token", refreshToken: Redacted.make("rt") }
        )
        const other = yield* Effect.either(refresh.pipe(Effect.provide(provider.layer)))
        expect(Either.isLeft(other) && other.left.kind).toBe(
          code === "expired_token" || code === "access_denied" ? "invalid_grant" : "other"
        )
      }
    })
  })
})
