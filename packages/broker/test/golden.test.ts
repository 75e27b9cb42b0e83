/**
 * What must not change when the code moves: the `request_key` the broker stores
 * for a set of requests (a changed key would stop stored tokens from matching
 * after an upgrade), the protocol's routes, and the error envelope of every
 * error. The expected values were recorded before the broker was restructured.
 */
import { SqlClient } from "@effect/sql"
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { Chunk, Effect } from "effect"
import * as Connect from "effect-connect"
import { router } from "../src/Routes.js"
import type { RunningBroker } from "./support/broker.js"
import { sdkClient } from "./support/broker.js"
import { oauthClientOf, productionProject, startBrokerWithProvider } from "./support/brokerWithProvider.js"
import { layerOf, sqlite, type TestDatabase } from "./support/databases.js"
import type { OAuthProviderHarness } from "./support/oauthProvider.js"

const KEY = "ck_golden_production_key_7731"

describe("the stored request_key", () => {
  let database: TestDatabase
  let broker: RunningBroker
  let provider: OAuthProviderHarness

  beforeAll(async () => {
    database = sqlite()
    ;({ broker, provider } = await startBrokerWithProvider({
      database,
      config: (provider) => ({
        connectors: [
          { ...oauthClientOf(provider), uid: "acme/golden", name: "Acme golden", defaultScopes: { app: ["api:read"] } }
        ],
        ...productionProject({ id: "prj_golden", key: KEY }, ["acme/golden"])
      })
    }))
  })
  afterAll(async () => {
    await broker?.close()
    await provider?.close()
    await database?.drop()
  })

  const requests: ReadonlyArray<readonly [string, Connect.TokenParams]> = [
    ["app, default scopes", { subject: { type: "app" } }],
    ["app, [*]", { subject: { type: "app" }, scopes: ["*"] }],
    ["app, explicit scopes", { subject: { type: "app" }, scopes: ["api:write", "api:read"] }],
    ["app, a resource", { subject: { type: "app" }, resources: ["https://api.test/golden"] }]
  ]

  it.effect("is the same as before the restructuring, for each request", () =>
    Effect.gen(function* () {
      for (const [, params] of requests) yield* Connect.getToken("acme/golden", params)
      const sql = yield* SqlClient.SqlClient
      const rows = yield* sql<{ request_key: string }>`SELECT request_key FROM issued_tokens ORDER BY created_at, id`
      expect(new Set(rows.map((row) => row.request_key))).toEqual(
        new Set([
          // The default scopes and ["*"] are one request.
          "0F7NgYLqTQag3cTK9vSp5qn6nW0LPpqn3gChx3662Y8",
          "73xDPvWJen6aC2VMH-ZT1AMBD9jmX8zogb8rICGDqPo",
          "XaOTsxBGf90d9eh3Btk981BTpy8P7cyH3pghA6P3V9E"
        ])
      )
    }).pipe(Effect.provide(sdkClient(broker, KEY)), Effect.provide(layerOf(database)))
  )
})

describe("the protocol's routes", () => {
  it("are the ones the wire protocol names", () => {
    const routes = Chunk.toReadonlyArray(router.routes)
    expect(routes.map((route) => `${route.method} ${route.path}`)).toEqual([
      "POST /v1/connect/token/:connector",
      "POST /v1/connect/token/:connector/import",
      "DELETE /v1/connect/connectors/:connector/tokens",
      "GET /v1/connect/connectors/:connector",
      "POST /v1/connect/authorize/:connector",
      "POST /v1/connect/install/:connector",
      "GET /v1/connect/authorize/:request/start",
      "POST /v1/connect/authorize/:request/status",
      "POST /v1/connect/authorize/:request/confirm",
      "GET /v1/connect/callback",
      "GET /healthz",
      "GET /v1/admin/connectors",
      "POST /v1/admin/connectors",
      "GET /v1/admin/connectors/:connector",
      "DELETE /v1/admin/connectors/:connector",
      "GET /v1/admin/connectors/:connector/installations",
      "DELETE /v1/admin/connectors/:connector/installations/:installation",
      "GET /v1/admin/connectors/:connector/grants",
      "DELETE /v1/admin/connectors/:connector/grants/:grant",
      "GET /v1/admin/connectors/:connector/tokens",
      "DELETE /v1/admin/connectors/:connector/tokens/:token",
      "PUT /v1/admin/connectors/:connector/links/:project",
      "DELETE /v1/admin/connectors/:connector/links/:project",
      "GET /v1/admin/projects",
      "POST /v1/admin/projects",
      "POST /v1/admin/projects/:project/keys",
      "GET /v1/admin/projects/:project/webhooks",
      "POST /v1/admin/projects/:project/webhooks",
      "DELETE /v1/admin/projects/:project/webhooks/:webhook",
      "GET /v1/admin/webhooks/:webhook/deliveries",
      "POST /v1/admin/webhook-deliveries/:delivery/retry",
      "GET /v1/admin/events"
    ])
  })
})

describe("the error envelope", () => {
  const connector = "acme/golden"
  const errors: ReadonlyArray<Connect.ConnectError> = [
    new Connect.UserAuthorizationRequired({ connector, authorizeUrl: "https://broker.test/a" }),
    new Connect.ConnectorInstallationRequired({ connector, installUrl: "https://broker.test/i" }),
    new Connect.NoValidToken({ connector, detail: "the provider refused the grant" }),
    new Connect.ClientNotLinkedToProject({ connector }),
    new Connect.ClientNotEnabledForEnvironment({ connector }),
    new Connect.ConnectorNotFound({ connector }),
    new Connect.Unauthorized({ connector: "", detail: "unknown project key" }),
    new Connect.InvalidRequest({
      connector,
      status: 400,
      issues: [{ path: "subject.id", message: "Expected string" }]
    }),
    new Connect.RateLimited({ connector, retryAfterMs: 2_500 }),
    new Connect.UnknownConnectError({ connector, status: 502, code: "provider_error", detail: "refused" })
  ]

  it("is the same for every error", () => {
    expect(errors.map((error) => Connect.toWire(error))).toMatchSnapshot()
  })
})
