import { describe, expect, it } from "@effect/vitest"
import { Effect, Redacted } from "effect"
import {
  ClientNotEnabledForEnvironment,
  ClientNotLinkedToProject,
  type ConnectError,
  ConnectorInstallationRequired,
  ConnectorNotFound,
  getToken,
  InvalidRequest,
  InvalidResponse,
  isConnectError,
  NoValidToken,
  ProviderError,
  ProviderUnavailable,
  RateLimited,
  ServiceUnavailable,
  type TokenParams,
  toWire,
  Unauthorized,
  UnknownConnectError,
  UserAuthorizationRequired,
  WireCodes
} from "../src/index.js"
import { ConnectTest, raw, TEST_BASE_URL, TEST_TOKEN } from "../src/testing.js"

const CONNECTOR = "slack/acme-slack"
const USER: TokenParams = { subject: { type: "user", id: "u_1" } }
const SUBJECT_TOKEN = "subject-token-b9f2c1e7"
const EXCHANGE: TokenParams = { subject: { type: "token", token: Redacted.make(SUBJECT_TOKEN) } }

type ErrorClass = abstract new (...args: never) => ConnectError

/** The failure of an effect that must fail. */
const failure = <A, E, R>(self: Effect.Effect<A, E, R>): Effect.Effect<E, never, R> =>
  Effect.flip(self).pipe(Effect.catchAll(() => Effect.dieMessage("expected a failure, got a success")))

/** The error `getToken` fails with when the server answers `status` with `body`. */
const answerWith = (
  status: number,
  body: string,
  headers?: Readonly<Record<string, string>>,
  params: TokenParams = USER
): Effect.Effect<ConnectError> =>
  Effect.gen(function* () {
    const connect = yield* ConnectTest
    yield* connect.script(CONNECTOR, { token: raw(status, body, headers) })
    const error = yield* failure(getToken(CONNECTOR, params))
    expect(yield* connect.requestCount()).toBe(1)
    return error
  }).pipe(Effect.provide(ConnectTest.layer()))

const errorBody = (error: Record<string, unknown>): string => JSON.stringify({ error })

/** Asserts what every error of the SDK is. */
const expectWellFormed = (error: ConnectError, errorClass: ErrorClass, tag: ConnectError["_tag"]) => {
  expect(error).toBeInstanceOf(Error)
  expect(error).toBeInstanceOf(errorClass)
  expect(error._tag).toBe(tag)
  expect(isConnectError(error)).toBe(true)
  expect(error.message.length).toBeGreaterThan(0)
  expect(String(error)).toContain(error.message)
}

/** Asserts that no secret shows in any printed form of the error. */
const expectNoSecrets = (error: ConnectError) => {
  for (const text of [error.message, String(error), JSON.stringify(error)]) {
    expect(text).not.toContain(TEST_TOKEN)
    expect(text).not.toContain(SUBJECT_TOKEN)
  }
}

// The table of wire-protocol.md, and the broker's provider codes: code, status, error class, tag.
const documented: ReadonlyArray<readonly [string, number, ErrorClass, ConnectError["_tag"]]> = [
  ["user_authorization_required", 403, UserAuthorizationRequired, "UserAuthorizationRequired"],
  ["connector_installation_required", 403, ConnectorInstallationRequired, "ConnectorInstallationRequired"],
  ["client_installation_required", 403, ConnectorInstallationRequired, "ConnectorInstallationRequired"],
  ["no_token", 409, NoValidToken, "NoValidToken"],
  ["client_not_linked_to_project", 403, ClientNotLinkedToProject, "ClientNotLinkedToProject"],
  ["client_not_enabled_for_environment", 403, ClientNotEnabledForEnvironment, "ClientNotEnabledForEnvironment"],
  ["not_found", 404, ConnectorNotFound, "ConnectorNotFound"],
  ["unauthorized", 401, Unauthorized, "Unauthorized"],
  ["bad_request", 400, InvalidRequest, "InvalidRequest"],
  ["rate_limited", 429, RateLimited, "RateLimited"],
  ["provider_error", 502, ProviderError, "ProviderError"],
  ["provider_unavailable", 502, ProviderUnavailable, "ProviderUnavailable"]
]

describe("wire codes", () => {
  it("the table has exactly the documented codes and statuses", () => {
    expect(Object.keys(WireCodes).sort()).toEqual(documented.map(([code]) => code).sort())
    for (const [code, status] of documented) {
      expect(WireCodes[code]?.status, code).toBe(status)
    }
  })

  it.effect.each(documented)(
    "%s decodes to its error class, keeping status and server detail",
    ([code, status, errorClass, tag]) =>
      Effect.gen(function* () {
        const error = yield* answerWith(status, errorBody({ code, message: `server says ${code}` }))
        expectWellFormed(error, errorClass, tag)
        expect("status" in error ? error.status : undefined).toBe(status)
        expect(error.message).toContain(`server says ${code}`)
        if ("connector" in error) expect(error.connector).toBe(CONNECTOR)
        expectNoSecrets(error)
      })
  )

  it.effect("user_authorization_required keeps authorizeUrl and says where to send the user", () =>
    Effect.gen(function* () {
      const authorizeUrl = "https://connect.example/authorize/req_1"
      const error = yield* answerWith(
        403,
        errorBody({ code: "user_authorization_required", message: "not authorized", authorizeUrl })
      )
      expectWellFormed(error, UserAuthorizationRequired, "UserAuthorizationRequired")
      if (!(error instanceof UserAuthorizationRequired)) return expect.unreachable()
      expect(error.authorizeUrl).toBe(authorizeUrl)
      expect(error.connector).toBe(CONNECTOR)
      expect(error.code).toBe("user_authorization_required")
      expect(error.message).toContain(authorizeUrl)
      expect(error.message).toContain(CONNECTOR)
      expect(error.message).toContain("not authorized")
    })
  )

  it.effect("user_authorization_required without a URL says to start the flow", () =>
    Effect.gen(function* () {
      const error = yield* answerWith(403, errorBody({ code: "user_authorization_required" }))
      if (!(error instanceof UserAuthorizationRequired)) return expect.unreachable()
      expect(error.authorizeUrl).toBeUndefined()
      expect(error.message).toContain("startAuthorization")
    })
  )

  it.effect.each(["connector_installation_required", "client_installation_required"])(
    "%s keeps installUrl and says where to install",
    (code) =>
      Effect.gen(function* () {
        const installUrl = "https://connect.example/install/slack"
        const error = yield* answerWith(403, errorBody({ code, message: "no workspace", installUrl }))
        expectWellFormed(error, ConnectorInstallationRequired, "ConnectorInstallationRequired")
        if (!(error instanceof ConnectorInstallationRequired)) return expect.unreachable()
        expect(error.installUrl).toBe(installUrl)
        expect(error.status).toBe(403)
        expect(error.code).toBe("connector_installation_required")
        expect(error.message).toContain(`install it at ${installUrl}`)
      })
  )

  it.effect("connector_installation_required without a URL mentions installationId", () =>
    Effect.gen(function* () {
      const error = yield* answerWith(403, errorBody({ code: "connector_installation_required" }))
      if (!(error instanceof ConnectorInstallationRequired)) return expect.unreachable()
      expect(error.installUrl).toBeUndefined()
      expect(error.message).toContain("installationId")
    })
  )

  it.effect("each message says what to do", () =>
    Effect.gen(function* () {
      const advice: ReadonlyArray<readonly [string, number, string]> = [
        ["no_token", 409, "authorize again"],
        ["client_not_linked_to_project", 403, "attach the connector to the project"],
        ["client_not_enabled_for_environment", 403, "add the environment"],
        ["not_found", 404, "check its uid or id"],
        ["unauthorized", 401, "caller credential given by ConnectClient.layer"],
        ["rate_limited", 429, "retry later"]
      ]
      for (const [code, status, text] of advice) {
        const error = yield* answerWith(status, errorBody({ code }))
        expect(error.message, code).toContain(text)
      }
    })
  )

  it.effect("bad_request keeps the server's issues", () =>
    Effect.gen(function* () {
      const issues = [
        { path: "subject.id", message: "Expected a non-empty string" },
        { path: "scopes.0", message: "Unknown scope" }
      ]
      const error = yield* answerWith(400, errorBody({ code: "bad_request", message: "invalid request", issues }))
      expectWellFormed(error, InvalidRequest, "InvalidRequest")
      if (!(error instanceof InvalidRequest)) return expect.unreachable()
      expect(error.issues).toEqual(issues)
      expect(error.status).toBe(400)
      expect(error.connector).toBe(CONNECTOR)
      expect(error.message).toContain("subject.id: Expected a non-empty string")
      expect(error.message).toContain("scopes.0: Unknown scope")
    })
  )

  it.effect("bad_request with a field names the field", () =>
    Effect.gen(function* () {
      const error = yield* answerWith(
        400,
        errorBody({ code: "bad_request", message: "must be an array of strings", field: "scopes" })
      )
      if (!(error instanceof InvalidRequest)) return expect.unreachable()
      expect(error.issues).toEqual([{ path: "scopes", message: "must be an array of strings" }])
      expect(error.message).toContain("scopes: must be an array of strings")
    })
  )

  it.effect("bad_request with nothing to say still names the code's meaning", () =>
    Effect.gen(function* () {
      const error = yield* answerWith(400, errorBody({ code: "bad_request" }))
      if (!(error instanceof InvalidRequest)) return expect.unreachable()
      expect(error.issues).toEqual([])
      expect(error.message).toContain("Invalid request")
    })
  )

  it.effect("rate_limited carries the Retry-After delay", () =>
    Effect.gen(function* () {
      const error = yield* answerWith(429, errorBody({ code: "rate_limited", message: "slow down" }), {
        "retry-after": "7"
      })
      expectWellFormed(error, RateLimited, "RateLimited")
      if (!(error instanceof RateLimited)) return expect.unreachable()
      expect(error.retryAfterMs).toBe(7000)
      expect(error.status).toBe(429)
      expect(error.message).toContain("retry in 7 seconds")
    })
  )

  it.effect("rate_limited without Retry-After has no delay", () =>
    Effect.gen(function* () {
      const error = yield* answerWith(429, errorBody({ code: "rate_limited" }))
      if (!(error instanceof RateLimited)) return expect.unreachable()
      expect(error.retryAfterMs).toBeUndefined()
    })
  )
})

describe("unknown and irregular error answers", () => {
  it.effect("an unknown code keeps the code, status, detail and error.vendor", () =>
    Effect.gen(function* () {
      const vendor = { plan: "hobby", limit: 3 }
      const error = yield* answerWith(402, errorBody({ code: "quota_exceeded", message: "upgrade your plan", vendor }))
      expectWellFormed(error, UnknownConnectError, "UnknownConnectError")
      if (!(error instanceof UnknownConnectError)) return expect.unreachable()
      expect(error.code).toBe("quota_exceeded")
      expect(error.status).toBe(402)
      expect(error.detail).toBe("upgrade your plan")
      expect(error.vendor).toEqual(vendor)
      expect(error.connector).toBe(CONNECTOR)
      expect(error.message).toContain("HTTP 402")
      expect(error.message).toContain("quota_exceeded")
      expect(error.message).toContain("upgrade your plan")
    })
  )

  it.effect("an unknown code keeps error.meta.vendor", () =>
    Effect.gen(function* () {
      const vendor = { slack: { error: "account_inactive" } }
      const error = yield* answerWith(403, errorBody({ code: "quota_exceeded", meta: { vendor } }))
      if (!(error instanceof UnknownConnectError)) return expect.unreachable()
      expect(error.code).toBe("quota_exceeded")
      expect(error.status).toBe(403)
      expect(error.vendor).toEqual(vendor)
    })
  )

  it.effect("a known code keeps vendor details too", () =>
    Effect.gen(function* () {
      const vendor = { reason: "refresh_failed" }
      const error = yield* answerWith(409, errorBody({ code: "no_token", meta: { vendor } }))
      if (!(error instanceof NoValidToken)) return expect.unreachable()
      expect(error.vendor).toEqual(vendor)
    })
  )

  it.effect("the key err is read like error", () =>
    Effect.gen(function* () {
      const error = yield* answerWith(
        404,
        JSON.stringify({ err: { code: "not_found", message: "no such connector", vendor: { hint: "uid" } } })
      )
      expectWellFormed(error, ConnectorNotFound, "ConnectorNotFound")
      if (!(error instanceof ConnectorNotFound)) return expect.unreachable()
      expect(error.detail).toBe("no such connector")
      expect(error.vendor).toEqual({ hint: "uid" })
    })
  )

  it.effect("no code and 401 is Unauthorized", () =>
    Effect.gen(function* () {
      for (const body of [errorBody({ message: "token expired" }), "", "Unauthorized", "{}"]) {
        const error = yield* answerWith(401, body)
        expectWellFormed(error, Unauthorized, "Unauthorized")
        if (!(error instanceof Unauthorized)) return expect.unreachable()
        expect(error.status).toBe(401)
      }
    })
  )

  it.effect("no code and 429 is RateLimited", () =>
    Effect.gen(function* () {
      const error = yield* answerWith(429, "Too Many Requests", { "retry-after": "3" })
      if (!(error instanceof RateLimited)) return expect.unreachable()
      expect(error.retryAfterMs).toBe(3000)
    })
  )

  const irregular: ReadonlyArray<readonly [string, string]> = [
    ["empty", ""],
    ["truncated JSON", '{"error": {"code": "not_fo'],
    ["JSON null", "null"],
    ["a JSON array", '[{"code":"not_found"}]'],
    ["a JSON string", '"forbidden"'],
    ["a code that is not a string", '{"error": {"code": 404}}']
  ]
  it.effect.each(irregular)("an error answer with %s body is a typed error with the status", ([, body]) =>
    Effect.gen(function* () {
      for (const status of [403, 418]) {
        const error = yield* answerWith(status, body)
        expectWellFormed(error, UnknownConnectError, "UnknownConnectError")
        if (!(error instanceof UnknownConnectError)) return expect.unreachable()
        expect(error.status).toBe(status)
        expect(error.code).toBeUndefined()
        expect(error.message).toContain(`HTTP ${status}`)
      }
    })
  )

  // What a CONNECT_URL that points elsewhere reaches: a web page, an OAuth server, a path that is not the protocol's.
  const foreign: ReadonlyArray<readonly [string, string, ReadonlyArray<number>, string]> = [
    ["HTML", "<html><body>Forbidden</body></html>", [403, 404, 418], "an HTML page answered"],
    ["an OAuth error", '{"error": "invalid_request"}', [400, 403, 404], "an OAuth server answered"],
    ["nothing of the protocol at 404", "Not Found", [404], "no Connect server answers there"],
    ["an empty 404", "", [404], "no Connect server answers there"]
  ]
  it.effect.each(foreign)(
    "an error answer with %s is InvalidResponse naming the URL called",
    ([, body, statuses, what]) =>
      Effect.gen(function* () {
        for (const status of statuses) {
          const error = yield* answerWith(status, body)
          expectWellFormed(error, InvalidResponse, "InvalidResponse")
          if (!(error instanceof InvalidResponse)) return expect.unreachable()
          expect(error.status).toBe(status)
          expect(error.url).toBe(`${TEST_BASE_URL}/v1/connect/token/${encodeURIComponent(CONNECTOR)}`)
          expect(error.message).toContain(what)
          expect(error.message).toContain("check CONNECT_URL")
        }
      })
  )

  it.effect("a 5xx answer with a non-JSON body is ServiceUnavailable with the status", () =>
    Effect.gen(function* () {
      const error = yield* answerWith(502, "<html>Bad Gateway</html>")
      expectWellFormed(error, ServiceUnavailable, "ServiceUnavailable")
      if (!(error instanceof ServiceUnavailable)) return expect.unreachable()
      expect(error.status).toBe(502)
      expect(error.attempts).toBe(1)
      expect(error.url).toBe(TEST_BASE_URL)
      expect(error.message).toContain("retry later")
    })
  )

  it.effect("a success body that is not a token response is InvalidResponse", () =>
    Effect.gen(function* () {
      const error = yield* answerWith(200, JSON.stringify({ token: 42, expiresAt: "soon" }))
      expectWellFormed(error, InvalidResponse, "InvalidResponse")
      if (!(error instanceof InvalidResponse)) return expect.unreachable()
      expect(error.status).toBe(200)
      expect(error.message).toContain("token")
    })
  )
})

// One instance of every error class, with the fields a server answer carries,
// so that sending it and reading it back gives the same values.
const samples: ReadonlyArray<ConnectError> = [
  new UserAuthorizationRequired({
    connector: CONNECTOR,
    status: 403,
    detail: "connect your account",
    authorizeUrl: "https://connect.example/a/1",
    vendor: { team: "T1" }
  }),
  new ConnectorInstallationRequired({
    connector: CONNECTOR,
    status: 403,
    detail: "no installation",
    installUrl: "https://connect.example/i/1"
  }),
  new NoValidToken({ connector: CONNECTOR, status: 409, detail: "refresh failed", vendor: { error: "invalid_grant" } }),
  new ClientNotLinkedToProject({ connector: CONNECTOR, status: 403, detail: "not linked" }),
  new ClientNotEnabledForEnvironment({ connector: CONNECTOR, status: 403, detail: "preview is off" }),
  new ConnectorNotFound({ connector: CONNECTOR, status: 404, detail: "no such connector" }),
  new Unauthorized({ connector: CONNECTOR, status: 401, detail: "expired credential" }),
  new RateLimited({ connector: CONNECTOR, status: 429, detail: "slow down", retryAfterMs: 12_000 }),
  new InvalidRequest({
    connector: CONNECTOR,
    status: 400,
    detail: "invalid",
    issues: [
      { path: "subject.id", message: "Expected a non-empty string" },
      { path: "scopes.1", message: "Expected a string" }
    ]
  }),
  new UnknownConnectError({
    connector: CONNECTOR,
    status: 418,
    code: "teapot",
    detail: "short and stout",
    vendor: { spout: true }
  }),
  new ServiceUnavailable({ url: TEST_BASE_URL, reason: "HTTP 503", attempts: 1, status: 503 })
]

/** The fields of an error as plain data. */
const fields = (error: ConnectError): unknown => JSON.parse(JSON.stringify(error))

/** Sends the error through the scripted server (which answers with `toWire`) and reads it back. */
/** What a client reads back of `error`: an `Unauthorized` names the credential the client sent. */
const readBack = (error: ConnectError): ConnectError =>
  error._tag === "Unauthorized" ? new Unauthorized({ ...error, credentialSource: "ConnectClient.layer" }) : error

const roundTrip = (error: ConnectError, params: TokenParams = USER): Effect.Effect<ConnectError> =>
  Effect.gen(function* () {
    const connect = yield* ConnectTest
    yield* connect.script(CONNECTOR, { token: error })
    return yield* failure(getToken(CONNECTOR, params))
  }).pipe(Effect.provide(ConnectTest.layer()))

describe("toWire and back", () => {
  it("covers every error class", () => {
    expect(new Set(samples.map((error) => error._tag)).size).toBe(samples.length)
  })

  it.effect.each(samples.map((error) => [error._tag, error] as const))("%s round-trips", ([, error]) =>
    Effect.gen(function* () {
      const wire = toWire(error)
      if ("code" in error && error.code !== undefined && WireCodes[error.code] !== undefined) {
        expect(wire.status).toBe(WireCodes[error.code]?.status)
        expect(wire.body.error.code).toBe(error.code)
      }
      const back = yield* roundTrip(error)
      expect(back).toBeInstanceOf(Error)
      expect(back.constructor).toBe(error.constructor)
      expect(back._tag).toBe(error._tag)
      expect(fields(back)).toEqual(fields(readBack(error)))
      expect(back.message).toBe(readBack(error).message)
    })
  )

  it.effect("an error without server detail keeps its message", () =>
    Effect.gen(function* () {
      const errors: ReadonlyArray<ConnectError> = [
        new UserAuthorizationRequired({ connector: CONNECTOR, authorizeUrl: "https://connect.example/a/2" }),
        new ConnectorInstallationRequired({ connector: CONNECTOR }),
        new NoValidToken({ connector: CONNECTOR }),
        new Unauthorized({ connector: CONNECTOR }),
        new RateLimited({ connector: CONNECTOR }),
        new InvalidRequest({ issues: [{ path: "scopes", message: "Expected an array" }] })
      ]
      for (const error of errors) {
        const back = yield* roundTrip(error)
        expect(back._tag).toBe(error._tag)
        expect(back.message).toBe(readBack(error).message)
      }
    })
  )

  it.effect("InvalidResponse has no wire code: a broker sends it as 502, read as ServiceUnavailable", () =>
    Effect.gen(function* () {
      const error = new InvalidResponse({ url: "https://provider.example", reason: "not JSON", status: 200 })
      const wire = toWire(error)
      expect(wire.status).toBe(502)
      const back = yield* roundTrip(error)
      if (!(back instanceof ServiceUnavailable)) return expect.unreachable()
      expect(back.status).toBe(502)
      expect(back.url).toBe(TEST_BASE_URL)
    })
  )
})

describe("no secret in an error", () => {
  it.effect("server errors for a token-exchange request", () =>
    Effect.gen(function* () {
      for (const [code, status] of documented) {
        const error = yield* answerWith(status, errorBody({ code }), { "retry-after": "1" }, EXCHANGE)
        expectNoSecrets(error)
      }
      for (const error of samples) expectNoSecrets(yield* roundTrip(error, EXCHANGE))
      expectNoSecrets(yield* answerWith(503, "unavailable", undefined, EXCHANGE))
      expectNoSecrets(yield* answerWith(418, "", undefined, EXCHANGE))
    })
  )

  it.effect("a success body that echoes the secrets in wrong fields", () =>
    Effect.gen(function* () {
      const bodies = [
        JSON.stringify({ token: SUBJECT_TOKEN, expiresAt: TEST_TOKEN, connector: SUBJECT_TOKEN }),
        JSON.stringify({ token: { value: SUBJECT_TOKEN }, expiresAt: 1, connector: { id: TEST_TOKEN } }),
        JSON.stringify([SUBJECT_TOKEN, TEST_TOKEN]),
        `${SUBJECT_TOKEN} ${TEST_TOKEN}`
      ]
      for (const body of bodies) {
        const error = yield* answerWith(200, body, undefined, EXCHANGE)
        expect(error._tag).toBe("InvalidResponse")
        expectNoSecrets(error)
      }
    })
  )

  it.effect("validation errors of a token-exchange request", () =>
    Effect.gen(function* () {
      const connect = yield* ConnectTest
      const bad: ReadonlyArray<unknown> = [
        { ...EXCHANGE, scopes: [""] },
        { ...EXCHANGE, installationId: "" },
        { ...EXCHANGE, validityBufferMs: -1 },
        // The encoded form (a plain string) where a Redacted is expected.
        { subject: { type: "token", token: SUBJECT_TOKEN } },
        { subject: { type: "token", token: SUBJECT_TOKEN, extra: TEST_TOKEN }, scopes: [SUBJECT_TOKEN, 1] },
        { subject: { type: "jwt-bearer", sub: SUBJECT_TOKEN, additionalClaims: { secret: TEST_TOKEN, f: () => 1 } } }
      ]
      for (const params of bad) {
        const error = yield* Effect.flip(getToken(CONNECTOR, params as TokenParams))
        expect(error._tag).toBe("InvalidRequest")
        expectNoSecrets(error)
      }
      expect(yield* connect.requestCount()).toBe(0)
    }).pipe(Effect.provide(ConnectTest.layer()))
  )

  it.effect("the exchanged token is sent, yet kept out of the error", () =>
    Effect.gen(function* () {
      const connect = yield* ConnectTest
      yield* connect.script(CONNECTOR, { token: new NoValidToken({ connector: CONNECTOR }) })
      const error = yield* Effect.flip(getToken(CONNECTOR, EXCHANGE))
      const [request] = yield* connect.requests
      expect(JSON.stringify(request?.body)).toContain(SUBJECT_TOKEN)
      expect(request?.headers.authorization).toBe(`Bearer ${TEST_TOKEN}`)
      expectNoSecrets(error)
    }).pipe(Effect.provide(ConnectTest.layer()))
  )
})
