/**
 * A test kit: a Connect server scripted in memory, behind the real client and
 * token cache, for the tests of code that calls Connect.
 *
 * @example
 * ```ts
 * import { it } from "@effect/vitest"
 * import { Effect, TestClock } from "effect"
 * import { getToken, UserAuthorizationRequired } from "effect-connect"
 * import { ConnectTest } from "effect-connect/testing"
 *
 * it.effect("asks the user to connect", () =>
 *   Effect.gen(function* () {
 *     const connect = yield* ConnectTest
 *     yield* connect.script("slack/acme", {
 *       token: new UserAuthorizationRequired({ connector: "slack/acme", authorizeUrl: "https://connect.test/a" })
 *     })
 *     const error = yield* Effect.flip(getToken("slack/acme", { subject: { type: "user", id: "u1" } }))
 *     // error.authorizeUrl === "https://connect.test/a"
 *   }).pipe(Effect.provide(ConnectTest.layer()))
 * )
 * ```
 *
 * @since 0.1.0
 */
import * as HttpClient from "@effect/platform/HttpClient"
import * as HttpClientResponse from "@effect/platform/HttpClientResponse"
import { Clock, Context, type Duration, Effect, Layer, Redacted } from "effect"
import { ConnectClient, type ConnectClientOptions } from "./ConnectClient.js"
import { type ConnectError, ConnectorNotFound, isConnectError, toWire } from "./ConnectError.js"
import { isRecord } from "./internal/json.js"
import type { RevocationSummary } from "./Revocation.js"
import { TokenCache } from "./TokenCache.js"

/**
 * The base URL of the scripted server.
 *
 * @since 0.1.0
 * @category constants
 */
export const TEST_BASE_URL = "http://connect.test"

/**
 * The caller credential the test client sends.
 *
 * @since 0.1.0
 * @category constants
 */
export const TEST_TOKEN = "test-caller-key"

/**
 * Which operation a request was.
 *
 * @since 0.1.0
 * @category models
 */
export type Operation = "token" | "revoke" | "metadata" | "authorize" | "unknown"

/**
 * A request the scripted server received.
 *
 * @since 0.1.0
 * @category models
 */
export interface RecordedRequest {
  readonly operation: Operation
  readonly method: string
  readonly path: string
  readonly connector: string
  /** The decoded JSON body, or `undefined`. */
  readonly body: unknown
  readonly headers: Readonly<Record<string, string>>
  /** When it arrived, by the test's `Clock`. */
  readonly at: number
}

/**
 * A raw HTTP answer, for what a well-behaved server would never send.
 *
 * @since 0.1.0
 * @category models
 */
export interface RawAnswer {
  readonly _tag: "RawAnswer"
  readonly status: number
  readonly body: string
  readonly headers?: Readonly<Record<string, string>> | undefined
}

/**
 * A raw HTTP answer: any status, any body text, any headers.
 *
 * @since 0.1.0
 * @category constructors
 */
export const raw = (status: number, body: string, headers?: Readonly<Record<string, string>>): RawAnswer => ({
  _tag: "RawAnswer",
  status,
  body,
  headers
})

/**
 * A token the scripted server issues. `expiresInMs` (default one hour) counts
 * from the test clock; `expiresAt` fixes the instant instead.
 *
 * @since 0.1.0
 * @category models
 */
export interface ScriptedToken {
  readonly token: string
  readonly expiresInMs?: number | undefined
  readonly expiresAt?: number | undefined
  readonly tokenId?: string | undefined
  readonly installationId?: string | undefined
  readonly tenantId?: string | undefined
  readonly externalSubject?: string | undefined
  readonly metadata?: Record<string, unknown> | undefined
  readonly claims?: Record<string, unknown> | undefined
}

/**
 * What the scripted server answers: a value, an error of this package (sent as
 * its wire code), or a raw HTTP answer; or a function of the request that gives
 * one of those.
 *
 * @since 0.1.0
 * @category models
 */
export type Answer<A> = A | ConnectError | RawAnswer | ((request: RecordedRequest) => A | ConnectError | RawAnswer)

/**
 * How the scripted server answers for one connector. Operations left out answer
 * with plausible defaults; a connector with no script answers `not_found`.
 *
 * @since 0.1.0
 * @category models
 */
export interface ConnectorScript {
  readonly token?: Answer<ScriptedToken> | undefined
  readonly revoke?: Answer<Partial<RevocationSummary>> | undefined
  readonly metadata?: Answer<Record<string, unknown>> | undefined
  readonly authorize?: Answer<Record<string, unknown>> | undefined
  /** How long each answer takes, on the test clock (default none). */
  readonly latency?: Duration.DurationInput | undefined
}

/**
 * The controls of the scripted server.
 *
 * @since 0.1.0
 * @category models
 */
export interface ConnectTestService {
  /** Replaces the script of a connector. */
  readonly script: (connector: string, script: ConnectorScript) => Effect.Effect<void>
  /** Every request received, oldest first. */
  readonly requests: Effect.Effect<ReadonlyArray<RecordedRequest>>
  /** How many requests were received, for one connector and operation when given. */
  readonly requestCount: (filter?: RequestFilter) => Effect.Effect<number>
  /**
   * Waits until at least `count` matching requests have arrived: the way to
   * know that requests are under way before moving the `TestClock`.
   */
  readonly awaitRequests: (count: number, filter?: RequestFilter) => Effect.Effect<void>
  /** Forgets the recorded requests (the scripts stay). */
  readonly clearRequests: Effect.Effect<void>
}

/**
 * Which requests to count.
 *
 * @since 0.1.0
 * @category models
 */
export interface RequestFilter {
  readonly connector?: string | undefined
  readonly operation?: Operation | undefined
}

/**
 * The scripted server's controls.
 *
 * @since 0.1.0
 * @category tags
 */
export class ConnectTest extends Context.Tag("effect-connect/ConnectTest")<ConnectTest, ConnectTestService>() {
  /**
   * A `ConnectClient` and `TokenCache` backed by a scripted server, with its
   * controls. Transient failures are not retried unless `client.retries` says
   * so, so scripted outages fail at once.
   */
  static readonly layer = (
    options: {
      readonly connectors?: Readonly<Record<string, ConnectorScript>> | undefined
      readonly client?: Partial<Omit<ConnectClientOptions, "baseUrl" | "token">> | undefined
      readonly capacity?: number | undefined
    } = {}
  ): Layer.Layer<ConnectClient | TokenCache | ConnectTest> => {
    const control = Layer.sync(ConnectTest, () => makeServer(options.connectors ?? {}))
    const http = Layer.effect(
      HttpClient.HttpClient,
      Effect.map(ConnectTest, (server) => (server as ServerService).httpClient)
    )
    const client = ConnectClient.layer({
      retries: 0,
      ...options.client,
      baseUrl: TEST_BASE_URL,
      token: Redacted.make(TEST_TOKEN)
    }).pipe(Layer.orDie)
    return client.pipe(
      Layer.provideMerge(Layer.merge(TokenCache.layer({ capacity: options.capacity }), http)),
      Layer.provideMerge(control),
      Layer.map((context) => Context.omit(HttpClient.HttpClient)(context))
    ) as Layer.Layer<ConnectClient | TokenCache | ConnectTest>
  }
}

interface ServerService extends ConnectTestService {
  readonly httpClient: HttpClient.HttpClient
}

const routes: ReadonlyArray<readonly [Operation, string, RegExp]> = [
  ["token", "POST", /^\/v1\/connect\/token\/([^/]+)$/],
  ["revoke", "DELETE", /^\/v1\/connect\/connectors\/([^/]+)\/tokens$/],
  ["metadata", "GET", /^\/v1\/connect\/connectors\/([^/]+)$/],
  ["authorize", "POST", /^\/v1\/connect\/authorize\/([^/]+)$/]
]

const route = (method: string, path: string): readonly [Operation, string] => {
  for (const [operation, routeMethod, pattern] of routes) {
    const match = pattern.exec(path)
    if (match !== null && method === routeMethod) return [operation, decodeURIComponent(match[1] ?? "")]
  }
  return ["unknown", ""]
}

const json = (status: number, body: unknown, headers: Record<string, string> = {}) =>
  raw(status, JSON.stringify(body), { "content-type": "application/json", ...headers })

type Scripts = Map<string, ConnectorScript>

/** The requests the scripted server received, and the fibers waiting for them. */
interface RequestLog {
  readonly requests: Array<RecordedRequest>
  readonly record: (request: RecordedRequest) => void
  readonly countOf: (filter: RequestFilter | undefined) => number
  readonly awaitRequests: (count: number, filter?: RequestFilter) => Effect.Effect<void>
}

const makeRequestLog = (): RequestLog => {
  const requests: Array<RecordedRequest> = []
  const waiters = new Set<{
    readonly count: number
    readonly filter?: RequestFilter | undefined
    readonly wake: () => void
  }>()

  const matches = (request: RecordedRequest, filter: RequestFilter | undefined) =>
    (filter?.connector === undefined || request.connector === filter.connector) &&
    (filter?.operation === undefined || request.operation === filter.operation)
  const countOf = (filter: RequestFilter | undefined) => requests.filter((request) => matches(request, filter)).length
  const wakeWaiters = () => {
    for (const waiter of waiters) {
      if (countOf(waiter.filter) >= waiter.count) {
        waiters.delete(waiter)
        waiter.wake()
      }
    }
  }

  return {
    requests,
    record: (request) => {
      requests.push(request)
      wakeWaiters()
    },
    countOf,
    awaitRequests: (count, filter) =>
      Effect.async<void>((resume) => {
        if (countOf(filter) >= count) return resume(Effect.void)
        const waiter = { count, filter, wake: () => resume(Effect.void) }
        waiters.add(waiter)
        return Effect.sync(() => void waiters.delete(waiter))
      })
  }
}

const resolve = <A>(answer: Answer<A>, request: RecordedRequest): A | ConnectError | RawAnswer =>
  typeof answer === "function" ? (answer as (r: RecordedRequest) => A | ConnectError | RawAnswer)(request) : answer

const isRaw = (u: unknown): u is RawAnswer => isRecord(u) && u._tag === "RawAnswer"

/** The HTTP answer of a scripted answer (or of the default when the script has none). */
const settle = <A>(
  request: RecordedRequest,
  answer: Answer<A> | undefined,
  fallback: A,
  toBody: (value: A) => unknown
): RawAnswer => {
  const value = answer === undefined ? fallback : resolve(answer, request)
  if (isRaw(value)) return value
  if (isConnectError(value)) {
    const wire = toWire(value)
    return json(wire.status, wire.body, wire.headers)
  }
  return json(200, toBody(value as A))
}

/**
 * What the scripted server answers a request at `now`; `serial` (the number of
 * requests received) makes the issued ids distinct.
 */
const answerFor = (scripts: Scripts, request: RecordedRequest, now: number, serial: number): RawAnswer => {
  const script = scripts.get(request.connector)
  if (request.operation === "unknown") {
    return json(404, { error: { code: "not_found", message: `no route ${request.method} ${request.path}` } })
  }
  if (script === undefined) {
    const wire = toWire(new ConnectorNotFound({ connector: request.connector }))
    return json(wire.status, wire.body, wire.headers)
  }
  const connectorRef = { id: `conn_${request.connector.replace(/\W/g, "_")}`, uid: request.connector, type: "oauth" }
  switch (request.operation) {
    case "token":
      return settle<ScriptedToken>(request, script.token, { token: `test-token-${request.connector}` }, (token) => {
        const { expiresInMs, ...rest } = token
        return {
          tokenId: `stk_${serial}`,
          connector: connectorRef,
          ...rest,
          expiresAt: token.expiresAt ?? now + (expiresInMs ?? 3_600_000)
        }
      })
    case "revoke":
      return settle<Partial<RevocationSummary>>(request, script.revoke, {}, (summary) => ({
        tokensFound: 0,
        deleted: 0,
        providerRevoked: 0,
        providerSkipped: 0,
        providerFailed: 0,
        ...summary
      }))
    case "metadata":
      return settle<Record<string, unknown>>(request, script.metadata, {}, (metadata) => ({
        ...connectorRef,
        name: request.connector,
        service: request.connector.split("/")[0] ?? request.connector,
        createdAt: 0,
        updatedAt: 0,
        data: {},
        ...metadata
      }))
    case "authorize":
      return settle<Record<string, unknown>>(request, script.authorize, {}, (authorization) => ({
        request: `req_${serial}`,
        verifier: `ver_${serial}`,
        url: `${TEST_BASE_URL}/authorize/${encodeURIComponent(request.connector)}`,
        expiresAt: now + 600_000,
        ...authorization
      }))
  }
}

/** The HTTP client of the scripted server: records each request, waits the script's latency, answers. */
const scriptedHttpClient = (scripts: Scripts, log: RequestLog): HttpClient.HttpClient =>
  HttpClient.make((request, url) =>
    Effect.gen(function* () {
      const now = yield* Clock.currentTimeMillis
      const [operation, connector] = route(request.method, url.pathname)
      const bodyText = request.body._tag === "Uint8Array" ? new TextDecoder().decode(request.body.body) : undefined
      const recorded: RecordedRequest = {
        operation,
        method: request.method,
        path: url.pathname,
        connector,
        body: bodyText === undefined ? undefined : JSON.parse(bodyText),
        headers: request.headers,
        at: now
      }
      log.record(recorded)
      const latency = scripts.get(connector)?.latency
      if (latency !== undefined) yield* Effect.sleep(latency)
      const answer = answerFor(scripts, recorded, yield* Clock.currentTimeMillis, log.requests.length)
      return HttpClientResponse.fromWeb(
        request,
        new Response(answer.status === 204 ? null : answer.body, {
          status: answer.status,
          headers: answer.headers ?? {}
        })
      )
    })
  )

const makeServer = (initial: Readonly<Record<string, ConnectorScript>>): ServerService => {
  const scripts: Scripts = new Map(Object.entries(initial))
  const log = makeRequestLog()
  return {
    httpClient: scriptedHttpClient(scripts, log),
    script: (connector, script) => Effect.sync(() => void scripts.set(connector, script)),
    requests: Effect.sync(() => log.requests.slice()),
    requestCount: (filter) => Effect.sync(() => log.countOf(filter)),
    awaitRequests: log.awaitRequests,
    clearRequests: Effect.sync(() => {
      log.requests.length = 0
    })
  }
}
