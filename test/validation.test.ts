import { describe, expect, it } from "@effect/vitest"
import { Effect, Redacted } from "effect"
import {
  type Authorization,
  type ConnectClient,
  type ConnectError,
  deleteTokenCacheEntry,
  getConnectorMetadata,
  getToken,
  getTokenResponse,
  InvalidRequest,
  type Revocation,
  revokeToken,
  startAuthorization,
  type TokenParams
} from "../src/index.js"
import { ConnectTest } from "../src/testing.js"

const CONNECTOR = "acme/api"
const APP: TokenParams = { subject: { type: "app" } }

/** Untyped input, as JavaScript callers (or casts) can pass it. */
const asParams = (value: unknown): TokenParams => value as TokenParams
const asOptions = (value: unknown): Authorization.AuthorizationOptions => value as Authorization.AuthorizationOptions

/** Asserts an `InvalidRequest` that names `path` in its issues and its message. */
const expectInvalid = (error: ConnectError, path: string) => {
  expect(error).toBeInstanceOf(InvalidRequest)
  if (!(error instanceof InvalidRequest)) return
  expect(error.issues.map((issue) => issue.path)).toContain(path)
  expect(error.message).toContain(`${path}: `)
  expect(error.status).toBeUndefined()
  // Only the real problem is reported, not the `undefined` branch of an optional field.
  expect(error.message).not.toContain("Expected undefined")
}

/** Runs `body` against a scripted server and checks that it never received a request. */
const noRequest = <A, E>(body: Effect.Effect<A, E, ConnectTest | ConnectClient>) =>
  Effect.gen(function* () {
    const connect = yield* ConnectTest
    yield* connect.script(CONNECTOR, { token: { token: "t1" } })
    const result = yield* body
    expect(yield* connect.requestCount()).toBe(0)
    return result
  }).pipe(Effect.provide(ConnectTest.layer()))

const badParams: ReadonlyArray<readonly [string, unknown, string]> = [
  ["a user subject without id", { subject: { type: "user" } }, "params.subject.id"],
  ["a user subject with an empty id", { subject: { type: "user", id: "" } }, "params.subject.id"],
  ["a user subject with a numeric id", { subject: { type: "user", id: 7 } }, "params.subject.id"],
  ["a user subject with an empty issuer", { subject: { type: "user", id: "u1", issuer: "" } }, "params.subject.issuer"],
  ["an unknown subject type", { subject: { type: "robot" } }, "params.subject.type"],
  ["no subject", {}, "params.subject"],
  ["a jwt-bearer subject without sub", { subject: { type: "jwt-bearer" } }, "params.subject.sub"],
  [
    "a token subject with an empty token",
    { subject: { type: "token", token: Redacted.make("") } },
    "params.subject.token"
  ],
  ["scopes that are not an array", { ...APP, scopes: "read write" }, "params.scopes"],
  ["scopes containing a non-string", { ...APP, scopes: ["read", 1] }, "params.scopes.1"],
  ["scopes containing an empty string", { ...APP, scopes: ["read", ""] }, "params.scopes.1"],
  ["resources containing an empty string", { ...APP, resources: [""] }, "params.resources.0"],
  ["audience that is not an array", { ...APP, audience: "https://api.example" }, "params.audience"],
  ["an empty installationId", { ...APP, installationId: "" }, "params.installationId"],
  ["a negative validityBufferMs", { ...APP, validityBufferMs: -1 }, "params.validityBufferMs"],
  ["a NaN validityBufferMs", { ...APP, validityBufferMs: Number.NaN }, "params.validityBufferMs"],
  ["an infinite validityBufferMs", { ...APP, validityBufferMs: Number.POSITIVE_INFINITY }, "params.validityBufferMs"],
  ["a string validityBufferMs", { ...APP, validityBufferMs: "1000" }, "params.validityBufferMs"],
  [
    "authorizationDetails without type",
    { ...APP, authorizationDetails: [{ org: "acme" }] },
    "params.authorizationDetails.0.type"
  ],
  [
    "authorizationDetails with an empty type",
    { ...APP, authorizationDetails: [{ type: "github", org: "acme" }, { type: "" }] },
    "params.authorizationDetails.1.type"
  ],
  [
    "authorizationDetails with a bigint",
    { ...APP, authorizationDetails: [{ type: "payment", amount: 10n }] },
    "params.authorizationDetails.0.amount"
  ],
  [
    "additionalClaims with a function",
    { subject: { type: "jwt-bearer", sub: "s1", additionalClaims: { tenant: "t", f: () => 1 } } },
    "params.subject.additionalClaims.f"
  ],
  [
    "additionalClaims with a bigint",
    { subject: { type: "jwt-bearer", sub: "s1", additionalClaims: { n: 1n } } },
    "params.subject.additionalClaims.n"
  ],
  [
    "additionalClaims that are not an object",
    { subject: { type: "jwt-bearer", sub: "s1", additionalClaims: "claims" } },
    "params.subject.additionalClaims"
  ],
  ["params that are null", null, "params"],
  ["params that are a string", "app", "params"]
]

describe("getToken validation", () => {
  it.effect.each(["", "   "])("an empty connector %j", (connector) =>
    noRequest(
      Effect.gen(function* () {
        expectInvalid(yield* Effect.flip(getToken(connector, APP)), "connector")
      })
    )
  )

  it.effect.each([42, null, undefined, { uid: "acme/api" }])("a non-string connector %j", (connector) =>
    noRequest(
      Effect.gen(function* () {
        const error = yield* Effect.flip(getToken(connector as unknown as string, APP))
        expectInvalid(error, "connector")
        expect(error.message).toContain("connector uid or id")
      })
    )
  )

  it.effect.each(badParams)("%s", ([, params, path]) =>
    noRequest(
      Effect.gen(function* () {
        const error = yield* Effect.flip(getToken(CONNECTOR, asParams(params)))
        expectInvalid(error, path)
        if (error instanceof InvalidRequest) expect(error.connector).toBe(CONNECTOR)
      })
    )
  )

  it.effect("the same bad input fails through getTokenResponse and forceRefresh", () =>
    noRequest(
      Effect.gen(function* () {
        const params = asParams({ subject: { type: "user", id: "" } })
        expectInvalid(yield* Effect.flip(getTokenResponse(CONNECTOR, params)), "params.subject.id")
        expectInvalid(yield* Effect.flip(getToken(CONNECTOR, params, { forceRefresh: true })), "params.subject.id")
      })
    )
  )

  it.effect("every bad field is named", () =>
    noRequest(
      Effect.gen(function* () {
        const error = yield* Effect.flip(
          getToken(CONNECTOR, asParams({ subject: { type: "user", id: "u1" }, scopes: [""], validityBufferMs: -5 }))
        )
        expectInvalid(error, "params.scopes.0")
        expectInvalid(error, "params.validityBufferMs")
      })
    )
  )

  it.effect("a warm cache does not let bad input through", () =>
    Effect.gen(function* () {
      const connect = yield* ConnectTest
      yield* connect.script(CONNECTOR, { token: { token: "t1" } })
      yield* getToken(CONNECTOR, { subject: { type: "user", id: "u1" }, scopes: ["read"] })
      expect(yield* connect.requestCount()).toBe(1)
      const variants: ReadonlyArray<readonly [unknown, string]> = [
        [{ subject: { type: "user", id: "u1" }, scopes: ["read"], validityBufferMs: -1 }, "params.validityBufferMs"],
        [
          { subject: { type: "user", id: "u1" }, scopes: ["read"], validityBufferMs: Number.NaN },
          "params.validityBufferMs"
        ],
        [{ subject: { type: "user", id: "u1" }, scopes: ["read", ""] }, "params.scopes.1"],
        [{ subject: { type: "user", id: "u1", issuer: "" }, scopes: ["read"] }, "params.subject.issuer"]
      ]
      for (const [params, path] of variants) {
        expectInvalid(yield* Effect.flip(getToken(CONNECTOR, asParams(params))), path)
      }
      expectInvalid(
        yield* Effect.flip(getToken(" ", { subject: { type: "user", id: "u1" }, scopes: ["read"] })),
        "connector"
      )
      expect(yield* connect.requestCount()).toBe(1)
    }).pipe(Effect.provide(ConnectTest.layer()))
  )

  it.effect("well-formed input of each kind is sent (the checks above are not vacuous)", () =>
    Effect.gen(function* () {
      const connect = yield* ConnectTest
      yield* connect.script(CONNECTOR, { token: { token: "t1" } })
      const good: ReadonlyArray<TokenParams> = [
        APP,
        { subject: { type: "user", id: "u1", issuer: "https://idp.example" }, scopes: ["read"], validityBufferMs: 0 },
        {
          subject: { type: "jwt-bearer", sub: "s1", additionalClaims: { tenant: "t", n: 1, nested: { ok: [true] } } },
          authorizationDetails: [{ type: "github_app_installation", org: "acme" }]
        },
        { subject: { type: "token", token: Redacted.make("upstream") }, resources: ["https://api.example"] }
      ]
      for (const params of good) yield* getToken(CONNECTOR, params)
      expect(yield* connect.requestCount()).toBe(good.length)
    }).pipe(Effect.provide(ConnectTest.layer()))
  )
})

describe("validation of the other operations", () => {
  it.effect("revokeToken", () =>
    noRequest(
      Effect.gen(function* () {
        expectInvalid(yield* Effect.flip(revokeToken("", {})), "connector")
        const params = (value: unknown) => value as Revocation.RevokeParams
        expectInvalid(
          yield* Effect.flip(revokeToken(CONNECTOR, params({ subject: { type: "user" } }))),
          "params.subject.id"
        )
        expectInvalid(
          yield* Effect.flip(revokeToken(CONNECTOR, params({ installationId: "" }))),
          "params.installationId"
        )
      })
    )
  )

  it.effect("deleteTokenCacheEntry", () =>
    noRequest(
      Effect.gen(function* () {
        expectInvalid(yield* Effect.flip(deleteTokenCacheEntry("", APP)), "connector")
        expectInvalid(
          yield* Effect.flip(deleteTokenCacheEntry(CONNECTOR, asParams({ ...APP, scopes: [1] }))),
          "params.scopes.0"
        )
      })
    )
  )

  it.effect("getConnectorMetadata", () =>
    noRequest(
      Effect.gen(function* () {
        expectInvalid(yield* Effect.flip(getConnectorMetadata("")), "connector")
        expectInvalid(yield* Effect.flip(getConnectorMetadata(null as unknown as string)), "connector")
      })
    )
  )

  it.effect("startAuthorization checks the connector and params too", () =>
    noRequest(
      Effect.gen(function* () {
        expectInvalid(yield* Effect.flip(startAuthorization("", APP)), "connector")
        expectInvalid(
          yield* Effect.flip(startAuthorization(CONNECTOR, asParams({ subject: { type: "user", id: "" } }))),
          "params.subject.id"
        )
      })
    )
  )

  const badOptions: ReadonlyArray<readonly [string, unknown, string]> = [
    ["an http callbackUrl off localhost", { callbackUrl: "http://app.example/callback" }, "options.callbackUrl"],
    ["an ftp callbackUrl", { callbackUrl: "ftp://x" }, "options.callbackUrl"],
    ["a callbackUrl that is not a URL", { callbackUrl: "not a url" }, "options.callbackUrl"],
    ["a relative callbackUrl", { callbackUrl: "/callback" }, "options.callbackUrl"],
    ["an http webhook off localhost", { webhook: "http://hooks.example/connect" }, "options.webhook"],
    ["a negative expiresInMs", { expiresInMs: -1 }, "options.expiresInMs"],
    ["a fractional expiresInMs", { expiresInMs: 1.5 }, "options.expiresInMs"],
    ["a deviceCode that is not a boolean", { deviceCode: "yes" }, "options.deviceCode"],
    ["an empty prompt", { prompt: "" }, "options.prompt"]
  ]

  it.effect.each(badOptions)("startAuthorization with %s", ([, options, path]) =>
    noRequest(
      Effect.gen(function* () {
        expectInvalid(yield* Effect.flip(startAuthorization(CONNECTOR, APP, asOptions(options))), path)
      })
    )
  )

  it.effect("startAuthorization accepts https and loopback http callbacks", () =>
    Effect.gen(function* () {
      const connect = yield* ConnectTest
      yield* connect.script(CONNECTOR, {})
      const callbacks = [
        "https://app.example/callback",
        "http://localhost:3000/callback",
        "http://127.0.0.1:8080/cb",
        "http://dev.localhost/cb"
      ]
      for (const callbackUrl of callbacks) {
        yield* startAuthorization(CONNECTOR, APP, { callbackUrl })
      }
      const requests = yield* connect.requests
      expect(requests.map((request) => (request.body as { returnUrl?: unknown }).returnUrl)).toEqual(callbacks)
    }).pipe(Effect.provide(ConnectTest.layer()))
  )
})
