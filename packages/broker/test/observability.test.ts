/**
 * Telemetry end to end: an OTLP/HTTP receiver (JSON) on 127.0.0.1, the built
 * broker as a child process exporting to it (OTEL_* variables, JSON logs), and
 * the SDK in this process exporting to it through @effect/opentelemetry. The
 * run: an app token (a miss, then a hit), a user authorization at the real
 * OAuth provider, a refresh, a provider failure that makes a grant invalid, a
 * revocation. Then: the spans (names, the broker's server span a child of the
 * SDK's HTTP span, attributes), the metrics (OTLP and `GET /metrics`, parsed
 * by a Prometheus text parser), the JSON log lines with the request id of an
 * answer, and no secret anywhere.
 */
import { createServer, type Server } from "node:http"
import type { AddressInfo } from "node:net"
import * as NodeSdk from "@effect/opentelemetry/NodeSdk"
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { OTLPTraceExporter } from "@opentelemetry/exporter-trace-otlp-http"
import { BatchSpanProcessor } from "@opentelemetry/sdk-trace-base"
import { Effect, Redacted } from "effect"
import { type ConnectClient, getToken, revokeToken, UserAuthorizationRequired } from "effect-connect"
import parsePrometheusTextFormat from "parse-prometheus-text-format"
import { freePort, newEncryptionKey, type RunningBroker, sdkClient } from "./support/broker.js"
import { type BrokerProcess, spawnBroker } from "./support/brokerProcess.js"
import { sqlite, type TestDatabase } from "./support/databases.js"
import { postJson, visit } from "./support/http.js"
import { type OAuthProviderHarness, startOAuthProvider } from "./support/oauthProvider.js"

const CONNECTOR = "acme/api"
const KEY = `ck_${crypto.randomUUID().replaceAll("-", "")}`
const ADMIN_TOKEN = `adm_${crypto.randomUUID().replaceAll("-", "")}`
const BOGUS_REFRESH = `rt_bogus_${crypto.randomUUID().replaceAll("-", "")}`

/** Every OTLP payload the receiver got, by path, as parsed JSON and as text. */
interface Receiver {
  readonly url: string
  readonly payloads: Array<{ readonly path: string; readonly text: string }>
  readonly close: () => Promise<void>
}

const startReceiver = async (): Promise<Receiver> => {
  const payloads: Array<{ path: string; text: string }> = []
  const server: Server = createServer((request, response) => {
    let text = ""
    request.setEncoding("utf8")
    request.on("data", (chunk: string) => {
      text += chunk
    })
    request.on("end", () => {
      payloads.push({ path: request.url ?? "", text })
      response.writeHead(200, { "content-type": "application/json" })
      response.end("{}")
    })
  })
  await new Promise<void>((done) => server.listen(0, "127.0.0.1", done))
  const { port } = server.address() as AddressInfo
  return {
    url: `http://127.0.0.1:${port}`,
    payloads,
    close: () => new Promise((done) => server.close(() => done()))
  }
}

interface OtlpSpan {
  readonly traceId: string
  readonly spanId: string
  readonly parentSpanId?: string
  readonly name: string
  readonly kind: number
  readonly attributes: ReadonlyArray<{ readonly key: string; readonly value: Record<string, unknown> }>
}

const spansOf = (receiver: Receiver): Array<OtlpSpan & { readonly service: string }> =>
  receiver.payloads
    .filter((payload) => payload.path === "/v1/traces")
    .flatMap((payload) => {
      const body = JSON.parse(payload.text) as {
        resourceSpans: Array<{
          resource: { attributes: OtlpSpan["attributes"] }
          scopeSpans: Array<{ spans: Array<OtlpSpan> }>
        }>
      }
      return body.resourceSpans.flatMap((resource) => {
        const service = String(
          resource.resource.attributes.find((a) => a.key === "service.name")?.value.stringValue ?? ""
        )
        return resource.scopeSpans.flatMap((scope) => scope.spans.map((span) => ({ ...span, service })))
      })
    })

const attribute = (span: OtlpSpan | undefined, key: string): unknown => {
  const value = span?.attributes.find((a) => a.key === key)?.value
  return value === undefined ? undefined : (value.stringValue ?? value.intValue ?? value.boolValue ?? value.doubleValue)
}

const metricNamesOf = (receiver: Receiver): Set<string> =>
  new Set(
    receiver.payloads
      .filter((payload) => payload.path === "/v1/metrics")
      .flatMap((payload) => {
        const body = JSON.parse(payload.text) as {
          resourceMetrics: Array<{ scopeMetrics: Array<{ metrics: Array<{ name: string }> }> }>
        }
        return body.resourceMetrics.flatMap((r) => r.scopeMetrics.flatMap((s) => s.metrics.map((m) => m.name)))
      })
  )

const until = async (what: string, done: () => boolean, ms = 15_000) => {
  const deadline = Date.now() + ms
  while (!done()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
}

/**
 * The value of a counter or gauge (summed over the samples whose labels match), parsed by a real Prometheus
 * text-format parser; for a histogram, its `_count` read off the text (the parser folds a histogram's label sets
 * into one).
 */
const scrape = async (broker: BrokerProcess) => {
  const response = await fetch(`${broker.url}/metrics`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } })
  expect(response.status).toBe(200)
  expect(response.headers.get("content-type")).toContain("text/plain")
  const text = await response.text()
  const families = parsePrometheusTextFormat(text)
  const matches = (labels: Readonly<Record<string, string>>, of: Readonly<Record<string, string>> | undefined) =>
    Object.entries(labels).every(([key, value]) => of?.[key] === value)
  return (name: string, labels: Readonly<Record<string, string>> = {}): number => {
    const family = families.find((candidate) => candidate.name === name)
    if (family?.type === "HISTOGRAM") {
      return text
        .split("\n")
        .filter((line) => line.startsWith(`${name}_count{`))
        .filter((line) => Object.entries(labels).every(([key, value]) => line.includes(`${key}="${value}"`)))
        .reduce((sum, line) => sum + Number(line.split(" ").at(-1)), 0)
    }
    return (family?.metrics ?? [])
      .filter((metric) => matches(labels, metric.labels))
      .reduce((sum, metric) => sum + Number(metric.value ?? 0), 0)
  }
}

describe("observability", () => {
  let receiver: Receiver
  let provider: OAuthProviderHarness
  let database: TestDatabase
  let broker: BrokerProcess
  const secrets: Array<string> = [KEY, ADMIN_TOKEN, BOGUS_REFRESH]
  let requestIdSeen = ""
  let output = ""
  let port = 0
  let metricsPort = 0

  beforeAll(async () => {
    receiver = await startReceiver()
    database = sqlite()
    port = await freePort()
    metricsPort = await freePort()
    provider = await startOAuthProvider({
      accessTokenTtl: 1,
      redirectUris: [`http://127.0.0.1:${port}/v1/connect/callback`]
    })
    secrets.push(provider.clients.broker.clientSecret)
    broker = await spawnBroker({
      database,
      port,
      encryptionKey: newEncryptionKey(),
      config: {
        connectors: [
          {
            uid: CONNECTOR,
            name: "Acme API",
            type: "oauth",
            clientId: provider.clients.broker.clientId,
            clientSecret: provider.clients.broker.clientSecret,
            tokenEndpoint: provider.tokenEndpoint,
            authorizationEndpoint: provider.authorizationEndpoint,
            revocationEndpoint: provider.revocationEndpoint,
            defaultScopes: { app: ["api:read"], user: ["openid", "offline_access", "api:read"] }
          }
        ],
        projects: [{ id: "prj_obs", keys: [{ environment: "production", secret: KEY }] }],
        links: [{ connector: CONNECTOR, project: "prj_obs", environments: ["production"] }]
      },
      env: {
        OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url,
        OTEL_SERVICE_NAME: "connect-broker-test",
        OTEL_METRIC_EXPORT_INTERVAL: "300",
        CONNECT_LOG_FORMAT: "json",
        CONNECT_ADMIN_TOKEN: ADMIN_TOKEN,
        CONNECT_METRICS_PORT: String(metricsPort)
      }
    })
  }, 60_000)

  afterAll(async () => {
    await broker?.stop()
    await provider?.close()
    await receiver?.close()
    await database?.drop()
  })

  /** The SDK with an OpenTelemetry tracer exporting to the receiver; its spans are flushed when it ends. */
  const traced = <A, E>(program: Effect.Effect<A, E, ConnectClient>) =>
    program.pipe(
      Effect.provide(sdkClient({ url: broker.url } as RunningBroker, KEY)),
      Effect.provide(
        NodeSdk.layer(() => ({
          resource: { serviceName: "connect-sdk-test" },
          spanProcessor: new BatchSpanProcessor(new OTLPTraceExporter({ url: `${receiver.url}/v1/traces` }))
        }))
      )
    )

  /** The SDK's part: an app token (a miss, then a hit), a user authorization, a refresh, a revocation. */
  const sdkRun = () => {
    const app = { subject: { type: "app" }, scopes: ["api:read"] } as const
    const ada = { subject: { type: "user", id: "ada" } } as const
    return Effect.runPromise(
      traced(
        Effect.gen(function* () {
          // An app token: a miss, then a hit.
          const first = yield* getToken(CONNECTOR, app)
          const second = yield* getToken(CONNECTOR, app)
          secrets.push(Redacted.value(first))
          expect(Redacted.value(second)).toBe(Redacted.value(first))
          // A user authorization at the provider.
          const needed = yield* Effect.flip(getToken(CONNECTOR, ada))
          if (!(needed instanceof UserAuthorizationRequired) || needed.authorizeUrl === undefined) {
            return yield* Effect.dieMessage(`expected user_authorization_required, got ${needed._tag}`)
          }
          const toProvider = yield* Effect.promise(() => visit(needed.authorizeUrl ?? ""))
          const location = toProvider.location ?? ""
          const providerUrl = new URL(location)
          const callback = yield* Effect.promise(() => provider.completeAuthorization(location, { accountId: "ada" }))
          for (const name of ["code", "state"]) secrets.push(callback.searchParams.get(name) ?? "")
          for (const name of ["code_challenge", "state"]) secrets.push(providerUrl.searchParams.get(name) ?? "")
          const landed = yield* Effect.promise(() => visit(callback.toString()))
          expect(landed.status).toBe(200)
          // Her token, then (it lives 1 s) a refresh.
          secrets.push(Redacted.value(yield* getToken(CONNECTOR, ada)))
          yield* Effect.sleep("1200 millis")
          secrets.push(Redacted.value(yield* getToken(CONNECTOR, ada, { forceRefresh: true })))
          // A revocation.
          yield* revokeToken(CONNECTOR, ada)
        })
      )
    )
  }

  /** A grant the provider refuses: a provider failure, and the grant becomes invalid. Gives the request id. */
  const refusedGrant = async (): Promise<string> => {
    const imported = await postJson(
      `${broker.url}/v1/connect/token/${encodeURIComponent(CONNECTOR)}/import`,
      {
        tokens: [
          {
            subject: { type: "user", id: "bob" },
            environment: "production",
            accessToken: "expired",
            expiresAt: 1,
            refreshToken: BOGUS_REFRESH
          }
        ]
      },
      KEY
    )
    expect(imported.status).toBe(200)
    const refused = await postJson(
      `${broker.url}/v1/connect/token/${encodeURIComponent(CONNECTOR)}`,
      { subject: { type: "user", id: "bob" } },
      KEY
    )
    expect(refused.status).toBe(403)
    requestIdSeen = refused.headers.get("x-request-id") ?? ""
    expect(requestIdSeen).toMatch(/^[0-9a-f-]{36}$/)
    // A sane request id of the caller's is kept.
    const mine = await fetch(`${broker.url}/healthz`, { headers: { "x-request-id": "req-from-caller.1" } })
    expect(mine.headers.get("x-request-id")).toBe("req-from-caller.1")

    return requestIdSeen
  }

  /** The spans of the run, as the receiver got them from both processes. */
  const checkSpans = () => {
    const spans = spansOf(receiver)
    const sdkSpans = spans.filter((s) => s.service === "connect-sdk-test")
    const brokerSpans = spans.filter((s) => s.service === "connect-broker-test")
    const getTokens = sdkSpans.filter((s) => s.name === "connect.getToken")
    expect(getTokens.map((s) => attribute(s, "connect.outcome"))).toEqual(expect.arrayContaining(["miss", "hit"]))
    expect(getTokens.find((s) => attribute(s, "connect.outcome") === "hit")?.parentSpanId ?? "").toBe("")
    expect(getTokens.some((s) => attribute(s, "error.type") === "UserAuthorizationRequired")).toBe(true)
    expect(getTokens.every((s) => attribute(s, "connect.connector") === CONNECTOR)).toBe(true)
    // The broker's server span continues the SDK's HTTP span, across the processes.
    const servers = brokerSpans.filter(
      (s) => s.name === "http.server POST" && attribute(s, "http.route") === "/v1/connect/token/:connector"
    )
    expect(servers.length).toBeGreaterThanOrEqual(3)
    const byId = new Map(spans.map((s) => [s.spanId, s]))
    const server = servers[0]
    if (server === undefined) throw new Error("no server span")
    const clientSpan = byId.get(server.parentSpanId ?? "")
    expect(clientSpan?.service).toBe("connect-sdk-test")
    expect(clientSpan?.name).toBe("http.client POST")
    expect(clientSpan?.traceId).toBe(server.traceId)
    expect(byId.get(clientSpan?.parentSpanId ?? "")?.name).toBe("connect.http.attempt")
    expect(attribute(server, "connect.project")).toBe("prj_obs")
    expect(attribute(server, "connect.environment")).toBe("production")
    expect(attribute(server, "connect.connector")).toBe(CONNECTOR)
    expect(attribute(server, "http.response.status_code")).toBe(200)
    // Child spans: the store and the provider, with the grant kind, status and error code.
    const children = brokerSpans.filter((s) => s.traceId === server.traceId)
    expect(children.some((s) => s.name === "Store.findCaller")).toBe(true)
    const attempts = brokerSpans.filter((s) => s.name === "ProviderClient.attempt")
    expect(
      attempts.some(
        (s) =>
          attribute(s, "oauth.grant_type") === "refresh_token" &&
          attribute(s, "oauth.error") === "invalid_grant" &&
          attribute(s, "http.response.status_code") === 400
      )
    ).toBe(true)
    expect(
      attempts.some(
        (s) =>
          attribute(s, "oauth.grant_type") === "client_credentials" && attribute(s, "http.response.status_code") === 200
      )
    ).toBe(true)
    const refusedSpan = brokerSpans.find((s) => attribute(s, "connect.request_id") === requestIdSeen)
    expect(attribute(refusedSpan, "http.response.status_code")).toBe(403)
  }

  /** The broker's JSON log lines. */
  const checkLogs = () => {
    // Logs: every line is JSON; the refused request's lines carry its id; the failure and the invalid grant are there.
    const lines = output.split("\n").filter((line) => line.trim() !== "")
    const logs = lines.map((line) => JSON.parse(line) as { message: unknown; annotations: Record<string, unknown> })
    const ofRequest = logs.filter((log) => log.annotations.requestId === requestIdSeen)
    expect(ofRequest.map((log) => String(log.message))).toEqual(
      expect.arrayContaining([
        expect.stringContaining("provider call failed"),
        expect.stringContaining("grant invalid")
      ])
    )
    const failure = ofRequest.find((log) => String(log.message).includes("provider call failed"))
    expect(failure?.annotations).toMatchObject({
      connector: CONNECTOR,
      grant: "refresh_token",
      status: "400",
      providerError: "invalid_grant"
    })
    expect(ofRequest.find((log) => String(log.message).includes("grant invalid"))?.annotations.reason).toContain(
      "refused"
    )
  }

  it("traces, meters and logs a run, and no secret leaves the processes", { timeout: 120_000 }, async () => {
    const before = await scrape(broker)
    await sdkRun()
    await refusedGrant()

    // GET /metrics: behind the admin token, counters moved.
    expect((await fetch(`${broker.url}/metrics`)).status).toBe(401)
    // On CONNECT_METRICS_PORT, without authentication.
    const open = await fetch(`http://127.0.0.1:${metricsPort}/metrics`)
    expect(open.status).toBe(200)
    expect(await open.text()).toContain("# TYPE connect_token_requests_total counter")
    const after = await scrape(broker)
    const moved = (name: string, labels: Readonly<Record<string, string>> = {}) =>
      after(name, labels) - before(name, labels)
    expect(moved("connect_token_requests_total", { connector: CONNECTOR, outcome: "issued" })).toBeGreaterThanOrEqual(3)
    expect(moved("connect_token_requests_total", { outcome: "user_authorization_required" })).toBeGreaterThanOrEqual(2)
    expect(moved("connect_grant_refreshes_total", { connector: CONNECTOR, outcome: "ok" })).toBe(1)
    expect(moved("connect_grant_refreshes_total", { connector: CONNECTOR, outcome: "invalid_grant" })).toBe(1)
    expect(moved("connect_provider_requests_total", { kind: "client_credentials", outcome: "ok" })).toBe(1)
    expect(moved("connect_provider_request_duration_seconds", { kind: "refresh_token" })).toBe(2)
    // Each user_authorization_required answer starts one (its link): ada's, and bob's after his grant was refused.
    expect(moved("connect_authorizations_started_total", { flow: "authorization_code" })).toBe(2)
    expect(moved("connect_authorizations_completed_total", { outcome: "completed" })).toBe(1)
    expect(after("connect_grants", { status: "invalid" })).toBe(1)
    expect(after("connect_grants", { status: "active" })).toBe(1)
    expect(moved("connect_token_time_left_seconds", { connector: CONNECTOR })).toBeGreaterThanOrEqual(3)

    // The broker flushes its spans and metrics when stopped.
    await until("the broker's metrics", () => metricNamesOf(receiver).has("connect_token_requests_total"))
    output = broker.output()
    await broker.stop()
    await until("the broker's server spans", () => spansOf(receiver).some((s) => s.service === "connect-broker-test"))

    checkSpans()
    checkLogs()

    // No secret in any payload or log line.
    const everything = [output, ...receiver.payloads.map((p) => p.text)].join("\n")
    for (const secret of secrets.filter((s) => s.length >= 8)) expect(everything).not.toContain(secret)
    expect(secrets.length).toBeGreaterThanOrEqual(10)
  })
})
