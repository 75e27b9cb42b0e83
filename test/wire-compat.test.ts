/**
 * Wire compatibility with the official client: for the same call, the Effect
 * API, the Promise API and `@vercel/connect@2.3.2` send the same method, path,
 * `Authorization` header and JSON body to a real HTTP server, and read the same
 * error answers the same way.
 *
 * The official client always calls `https://api.vercel.com`; `globalThis.fetch`
 * is wrapped to send those calls to the local server instead.
 */
import { FetchHttpClient } from "@effect/platform"
import * as Official from "@vercel/connect"
import { Cause, Effect, Exit, Layer, Redacted, Schema } from "effect"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import * as Connect from "../src/index.js"
import * as ConnectPromise from "../src/promise.js"
import {
  type Operation,
  type Recorded,
  type RecordingServer,
  type Reply,
  routeOf,
  startRecordingServer
} from "./support/recordingServer.js"

// ---------------------------------------------------------------------------
// The local server
// ---------------------------------------------------------------------------

const VERCEL_ORIGIN = "https://api.vercel.com"
const CALLER_TOKEN = "caller-credential-7f3a"
/** Far in the future and fixed, so that the three clients get equal answers. */
const EXPIRES_AT = Date.now() + 3_600_000

const requests: Array<Recorded> = []
/** Answers by connector, instead of the default valid protocol body. */
const scripted = new Map<string, Reply>()
let server: RecordingServer
let baseUrl = ""
/** How many calls the fetch wrapper sent from `api.vercel.com` to the local server. */
let redirected = 0

const defaultReply = (operation: Operation, connector: string): Reply => {
  switch (operation) {
    case "token":
      return {
        status: 200,
        body: {
          token: `tok:${connector}`,
          tokenId: "stk_0001",
          expiresAt: EXPIRES_AT,
          connector: { id: "scn_0001", uid: connector, type: "oauth" },
          name: "Acme",
          installationId: "T0001",
          metadata: { team: "acme" },
          claims: { sub: "U0001" }
        }
      }
    case "revoke":
      return {
        status: 200,
        body: { tokensFound: 3, deleted: 3, providerRevoked: 1, providerSkipped: 1, providerFailed: 1 }
      }
    case "metadata":
      return {
        status: 200,
        body: {
          id: "scn_0001",
          uid: connector,
          name: "Acme Slack",
          type: "oauth",
          service: "slack",
          clientUrl: "https://slack.com",
          createdAt: 1_700_000_000_000,
          updatedAt: 1_700_000_100_000,
          data: { team: "T0001", botScopes: ["chat:write"] }
        }
      }
    case "authorize":
      return {
        status: 200,
        body: {
          request: "areq_0001",
          verifier: "verifier-secret-0001",
          url: "https://connect.example/authorize/areq_0001",
          deviceCode: "WDJB-MJHT",
          expiresAt: EXPIRES_AT,
          connector: { id: "scn_0001", uid: connector, type: "oauth", name: "Acme Slack", service: "slack" }
        }
      }
  }
}

/** Records the request and answers it: its script, or a valid protocol body. */
const reply = (request: Recorded): Reply => {
  requests.push(request)
  const route = routeOf(request.method, request.path)
  return route === undefined
    ? { status: 404, body: { error: { code: "not_found", message: "no such route" } } }
    : (scripted.get(route.connector) ?? defaultReply(route.operation, route.connector))
}

// ---------------------------------------------------------------------------
// Environment: the official client reads these; keep them out of the way.
// ---------------------------------------------------------------------------

const OFFICIAL_ENV = ["VERCEL_REGION", "VERCEL_CONNECT_INTERACTIVE_AUTH_MODE", "VERCEL_OIDC_TOKEN"] as const
const savedEnv = new Map<string, string | undefined>()
const realFetch = globalThis.fetch

beforeAll(async () => {
  for (const name of OFFICIAL_ENV) {
    savedEnv.set(name, process.env[name])
    Reflect.deleteProperty(process.env, name)
  }
  server = await startRecordingServer(reply)
  baseUrl = server.url
  globalThis.fetch = (input: RequestInfo | URL, init?: RequestInit): Promise<Response> => {
    const url = typeof input === "string" ? input : input instanceof URL ? input.href : input.url
    if (url.startsWith(`${VERCEL_ORIGIN}/`)) {
      redirected++
      return realFetch(`${baseUrl}${url.slice(VERCEL_ORIGIN.length)}`, init)
    }
    return realFetch(input, init)
  }
})

afterAll(async () => {
  globalThis.fetch = realFetch
  for (const [name, value] of savedEnv) {
    if (value === undefined) Reflect.deleteProperty(process.env, name)
    else process.env[name] = value
  }
  await server.close()
})

// ---------------------------------------------------------------------------
// The three clients
// ---------------------------------------------------------------------------

/** Our Effect API, with a fresh client and token cache for every call. */
const runEffect = <A>(effect: Effect.Effect<A, Connect.ConnectError, Connect.ConnectClient>): Promise<A> =>
  Effect.runPromiseExit(
    Effect.provide(
      effect,
      Connect.ConnectClient.layer({ baseUrl, token: Redacted.make(CALLER_TOKEN) }).pipe(
        Layer.provide(Layer.merge(Connect.TokenCache.layer(), FetchHttpClient.layer))
      )
    )
  ).then((exit) => (Exit.isSuccess(exit) ? exit.value : Promise.reject(Cause.squash(exit.cause))))

/** The options of our Promise API. */
const promiseOptions = () => ({ baseUrl, token: CALLER_TOKEN })

/** The options of the official client: it calls `api.vercel.com`, which the fetch wrapper redirects. */
const officialOptions = { vercelToken: CALLER_TOKEN } as const

/** A subject in the official client's types (which have no `| undefined` on optional members). */
const toOfficialSubject = (subject: ConnectPromise.ConnectTokenSubject): Official.ConnectTokenSubject => {
  switch (subject.type) {
    case "app":
      return { type: "app" }
    case "user":
      return { type: "user", id: subject.id, ...(subject.issuer === undefined ? {} : { issuer: subject.issuer }) }
    case "jwt-bearer":
      return {
        type: "jwt-bearer",
        sub: subject.sub,
        ...(subject.iss === undefined ? {} : { iss: subject.iss }),
        ...(subject.aud === undefined ? {} : { aud: subject.aud }),
        ...(subject.additionalClaims === undefined ? {} : { additionalClaims: subject.additionalClaims })
      }
    case "token":
      return { type: "token", token: subject.token }
  }
}

/**
 * Our token parameters in the official client's types. Every case also checks
 * the official request body against a literal, so nothing can be lost here
 * unnoticed.
 */
const toOfficial = (params: ConnectPromise.ConnectTokenParams): Official.ConnectTokenParams => ({
  subject: toOfficialSubject(params.subject),
  ...(params.installationId === undefined ? {} : { installationId: params.installationId }),
  ...(params.scopes === undefined ? {} : { scopes: [...params.scopes] }),
  ...(params.resources === undefined ? {} : { resources: [...params.resources] }),
  ...(params.audience === undefined ? {} : { audience: [...params.audience] }),
  ...(params.authorizationDetails === undefined ? {} : { authorizationDetails: [...params.authorizationDetails] }),
  ...(params.validityBufferMs === undefined ? {} : { validityBufferMs: params.validityBufferMs })
})

const toOfficialRevoke = (
  params: RevokeCase["params"]
): { subject: Official.ConnectTokenSubject; installationId?: string } => ({
  subject: toOfficialSubject(params.subject),
  ...(params.installationId === undefined ? {} : { installationId: params.installationId })
})

const decodeTokenParams = Schema.decodeSync(Connect.Token.TokenParams)
const decodeRevokeParams = Schema.decodeSync(Connect.Revocation.RevokeParams)

/** Runs one call and returns its result and the one request it sent. */
const sent = async <A>(call: () => Promise<A>): Promise<{ readonly result: A; readonly request: Recorded }> => {
  const before = requests.length
  const result = await call()
  return { result, request: onlyRequestSince(before) }
}

/** Runs one call that must fail and returns its error and the one request it sent. */
const sentFailing = async (
  call: () => Promise<unknown>
): Promise<{ readonly error: unknown; readonly request: Recorded }> => {
  const before = requests.length
  const error = await call().then(
    () => {
      throw new Error("expected the call to fail")
    },
    (error: unknown) => error
  )
  return { error, request: onlyRequestSince(before) }
}

const onlyRequestSince = (before: number): Recorded => {
  const made = requests.slice(before)
  expect(made).toHaveLength(1)
  const [request] = made
  if (request === undefined) throw new Error("no request was sent")
  return request
}

const isRecord = (u: unknown): u is Record<string, unknown> => typeof u === "object" && u !== null && !Array.isArray(u)

/** What must match between clients: everything but `validityBufferMs`, which we deliberately do not send. */
const wire = (request: Recorded) => {
  let body = request.body
  if (isRecord(body)) {
    const { validityBufferMs: _ignored, ...rest } = body
    body = rest
  }
  return { ...request, body }
}

/** Sends the same call through the official client, our Effect API and our Promise API. */
const sendAll = async <O, E, P>(calls: {
  readonly official: () => Promise<O>
  readonly effect: () => Promise<E>
  readonly promise: () => Promise<P>
}) => {
  const redirectedBefore = redirected
  const official = await sent(calls.official)
  expect(redirected - redirectedBefore).toBe(1)
  const effect = await sent(calls.effect)
  const promise = await sent(calls.promise)
  expect(redirected - redirectedBefore).toBe(1)
  expect(wire(effect.request)).toStrictEqual(wire(official.request))
  expect(wire(promise.request)).toStrictEqual(wire(official.request))
  return { official, effect, promise }
}

// ---------------------------------------------------------------------------
// Requests
// ---------------------------------------------------------------------------

interface TokenCase {
  readonly name: string
  readonly connector: string
  readonly params: ConnectPromise.ConnectTokenParams
  readonly path: string
  /** The body every client must send (without `validityBufferMs`). */
  readonly body: unknown
}

const tokenCases: ReadonlyArray<TokenCase> = [
  {
    name: "app subject without scopes: scopes [*]",
    connector: "acme/app",
    params: { subject: { type: "app" } },
    path: "/v1/connect/token/acme%2Fapp",
    body: { subject: { type: "app" }, scopes: ["*"] }
  },
  {
    name: "user subject with issuer",
    connector: "acme/user",
    params: { subject: { type: "user", id: "u_123", issuer: "https://idp.example" } },
    path: "/v1/connect/token/acme%2Fuser",
    body: { subject: { type: "user", id: "u_123", issuer: "https://idp.example" }, scopes: ["*"] }
  },
  {
    name: "jwt-bearer subject with additionalClaims",
    connector: "acme/jwt",
    params: {
      subject: {
        type: "jwt-bearer",
        sub: "svc-42",
        iss: "client-1",
        aud: "https://provider.example/oauth/token",
        additionalClaims: { tenant: "acme", roles: ["reader", "writer"], ctx: { level: 2, mfa: true, note: null } }
      },
      scopes: ["read"]
    },
    path: "/v1/connect/token/acme%2Fjwt",
    body: {
      subject: {
        type: "jwt-bearer",
        sub: "svc-42",
        iss: "client-1",
        aud: "https://provider.example/oauth/token",
        additionalClaims: { tenant: "acme", roles: ["reader", "writer"], ctx: { level: 2, mfa: true, note: null } }
      },
      scopes: ["read"]
    }
  },
  {
    name: "token-exchange subject (Redacted in the Effect API, a plain string on the wire)",
    connector: "acme/exchange",
    params: { subject: { type: "token", token: "subject-token-9b1" }, audience: ["https://api.acme.example"] },
    path: "/v1/connect/token/acme%2Fexchange",
    body: {
      subject: { type: "token", token: "subject-token-9b1" },
      audience: ["https://api.acme.example"],
      scopes: ["*"]
    }
  },
  {
    name: "installationId, scopes, resources, audience and authorizationDetails",
    connector: "acme/everything",
    params: {
      subject: { type: "user", id: "u_9" },
      installationId: "T12345",
      scopes: ["chat:write", "channels:read"],
      resources: ["https://slack.com/api", "https://files.slack.com"],
      audience: ["https://aud.example"],
      authorizationDetails: [
        { type: "github_app_installation", org: "acme", permissions: ["contents:read"], repositories: "all" },
        { type: "payment_initiation", instructedAmount: { currency: "EUR", amount: "123.50" } }
      ]
    },
    path: "/v1/connect/token/acme%2Feverything",
    body: {
      subject: { type: "user", id: "u_9" },
      installationId: "T12345",
      scopes: ["chat:write", "channels:read"],
      resources: ["https://slack.com/api", "https://files.slack.com"],
      audience: ["https://aud.example"],
      authorizationDetails: [
        { type: "github_app_installation", org: "acme", permissions: ["contents:read"], repositories: "all" },
        { type: "payment_initiation", instructedAmount: { currency: "EUR", amount: "123.50" } }
      ]
    }
  },
  {
    name: "cross-installation token (installationId *)",
    connector: "acme/cross",
    params: { subject: { type: "app" }, installationId: "*", scopes: ["admin"] },
    path: "/v1/connect/token/acme%2Fcross",
    body: { subject: { type: "app" }, installationId: "*", scopes: ["admin"] }
  },
  {
    name: "explicitly empty scopes are sent as []",
    connector: "acme/empty-scopes",
    params: { subject: { type: "app" }, scopes: [] },
    path: "/v1/connect/token/acme%2Fempty-scopes",
    body: { subject: { type: "app" }, scopes: [] }
  },
  {
    name: "validityBufferMs stays on the client (the official client sends it)",
    connector: "acme/buffer",
    params: { subject: { type: "user", id: "u_buf" }, validityBufferMs: 5_000 },
    path: "/v1/connect/token/acme%2Fbuffer",
    body: { subject: { type: "user", id: "u_buf" }, scopes: ["*"] }
  },
  {
    name: "connector uid with a slash is encoded",
    connector: "slack/acme-slack",
    params: { subject: { type: "user", id: "U024BE7LH" }, installationId: "T024BE7LD" },
    path: "/v1/connect/token/slack%2Facme-slack",
    body: { subject: { type: "user", id: "U024BE7LH" }, installationId: "T024BE7LD", scopes: ["*"] }
  },
  {
    name: "connector with reserved and non-ASCII characters is encoded",
    connector: "team a/ü?#&=+",
    params: { subject: { type: "app" } },
    path: "/v1/connect/token/team%20a%2F%C3%BC%3F%23%26%3D%2B",
    body: { subject: { type: "app" }, scopes: ["*"] }
  }
]

describe("token requests match @vercel/connect", () => {
  it.each(tokenCases)("$name", async ({ connector, params, path, body }) => {
    const { official, effect, promise } = await sendAll({
      official: () =>
        Official.getTokenResponse(connector, toOfficial(params), { ...officialOptions, forceRefresh: true }),
      effect: () => runEffect(Connect.getTokenResponse(connector, decodeTokenParams(params))),
      promise: () => ConnectPromise.getTokenResponse(connector, params, { ...promiseOptions(), forceRefresh: true })
    })
    expect(official.request).toStrictEqual({
      method: "POST",
      path,
      authorization: `Bearer ${CALLER_TOKEN}`,
      accept: "application/json",
      contentType: "application/json",
      body: params.validityBufferMs === undefined ? body : { ...(isRecord(body) ? body : {}), validityBufferMs: 5_000 }
    })
    expect(wire(official.request).body).toStrictEqual(body)
    expect(effect.request.body).not.toHaveProperty("validityBufferMs")
    expect(promise.request.body).not.toHaveProperty("validityBufferMs")
    // The answers read the same: our Promise API returns the official shape.
    expect(promise.result).toStrictEqual(official.result)
    expect(Redacted.value(effect.result.token)).toBe(official.result.token)
    expect(effect.result.expiresAt).toBe(official.result.expiresAt)
    expect(effect.result.connector).toStrictEqual(official.result.connector)
  })

  it("getToken returns the same access token from all three clients", async () => {
    const connector = "acme/get-token"
    const { official, effect, promise } = await sendAll({
      official: () =>
        Official.getToken(connector, { subject: { type: "app" } }, { ...officialOptions, forceRefresh: true }),
      effect: () => runEffect(Connect.getToken(connector, { subject: { type: "app" } })),
      promise: () =>
        ConnectPromise.getToken(connector, { subject: { type: "app" } }, { ...promiseOptions(), forceRefresh: true })
    })
    expect(official.result).toBe("tok:acme/get-token")
    expect(Redacted.value(effect.result)).toBe(official.result)
    expect(promise.result).toBe(official.result)
  })
})

interface RevokeCase {
  readonly name: string
  readonly connector: string
  readonly params: { readonly subject: ConnectPromise.ConnectTokenSubject; readonly installationId?: string }
  readonly path: string
}

const revokeCases: ReadonlyArray<RevokeCase> = [
  {
    name: "user subject and installation, uid encoded",
    connector: "slack/acme-slack",
    params: { subject: { type: "user", id: "U024BE7LH" }, installationId: "T024BE7LD" },
    path: "/v1/connect/connectors/slack%2Facme-slack/tokens"
  },
  {
    name: "app subject",
    connector: "acme/revoke-app",
    params: { subject: { type: "app" } },
    path: "/v1/connect/connectors/acme%2Frevoke-app/tokens"
  },
  {
    name: "token-exchange subject",
    connector: "acme/revoke-exchange",
    params: { subject: { type: "token", token: "subject-token-rev" } },
    path: "/v1/connect/connectors/acme%2Frevoke-exchange/tokens"
  }
]

describe("revokeToken matches @vercel/connect", () => {
  it.each(revokeCases)("$name", async ({ connector, params, path }) => {
    const { official, effect, promise } = await sendAll({
      official: () => Official.revokeToken(connector, toOfficialRevoke(params), officialOptions),
      effect: () => runEffect(Connect.revokeToken(connector, decodeRevokeParams(params))),
      promise: () => ConnectPromise.revokeToken(connector, params, promiseOptions())
    })
    expect(official.request).toStrictEqual({
      method: "DELETE",
      path,
      authorization: `Bearer ${CALLER_TOKEN}`,
      accept: "application/json",
      contentType: "application/json",
      body: params
    })
    // The official client answers nothing; ours answers the server's summary.
    expect(official.result).toBeUndefined()
    const summary = { tokensFound: 3, deleted: 3, providerRevoked: 1, providerSkipped: 1, providerFailed: 1 }
    expect(effect.result).toStrictEqual(summary)
    expect(promise.result).toStrictEqual(summary)
  })
})

describe("getConnectorMetadata matches @vercel/connect", () => {
  it("GET without a body; data becomes vendor", async () => {
    const connector = "slack/acme-slack"
    const { official, effect, promise } = await sendAll({
      official: () => Official.getConnectorMetadata(connector, officialOptions),
      effect: () => runEffect(Connect.getConnectorMetadata(connector)),
      promise: () => ConnectPromise.getConnectorMetadata(connector, promiseOptions())
    })
    expect(official.request).toStrictEqual({
      method: "GET",
      path: "/v1/connect/connectors/slack%2Facme-slack",
      authorization: `Bearer ${CALLER_TOKEN}`,
      accept: "application/json",
      contentType: undefined,
      body: undefined
    })
    const expected = {
      id: "scn_0001",
      uid: connector,
      name: "Acme Slack",
      type: "oauth",
      service: "slack",
      clientUrl: "https://slack.com",
      createdAt: 1_700_000_000_000,
      updatedAt: 1_700_000_100_000,
      vendor: { team: "T0001", botScopes: ["chat:write"] }
    }
    expect(official.result).toStrictEqual(expected)
    expect(effect.result).toStrictEqual(expected)
    expect(promise.result).toStrictEqual(expected)
  })

  it("a missing data reads as vendor {} in both", async () => {
    const connector = "acme/no-data"
    scripted.set(connector, {
      status: 200,
      body: { id: "scn_2", uid: connector, name: "No data", type: "oauth", service: "x", createdAt: 1, updatedAt: 2 }
    })
    const { official, effect, promise } = await sendAll({
      official: () => Official.getConnectorMetadata(connector, officialOptions),
      effect: () => runEffect(Connect.getConnectorMetadata(connector)),
      promise: () => ConnectPromise.getConnectorMetadata(connector, promiseOptions())
    })
    expect(official.result.vendor).toStrictEqual({})
    expect(effect.result).toStrictEqual(official.result)
    expect(promise.result).toStrictEqual(official.result)
  })
})

interface AuthorizationCase {
  readonly name: string
  readonly connector: string
  readonly params: ConnectPromise.ConnectTokenParams
  readonly options: {
    readonly callbackUrl?: string
    readonly webhook?: string
    readonly deviceCode?: boolean
    readonly expiresInMs?: number
    readonly prompt?: string
  }
  readonly path: string
  readonly body: unknown
}

const authorizationCases: ReadonlyArray<AuthorizationCase> = [
  {
    name: "no options: scopes [*]",
    connector: "acme/auth-plain",
    params: { subject: { type: "user", id: "u_1" } },
    options: {},
    path: "/v1/connect/authorize/acme%2Fauth-plain",
    body: { subject: { type: "user", id: "u_1" }, scopes: ["*"] }
  },
  {
    name: "callbackUrl (sent as returnUrl), webhook, deviceCode, expiresInMs, prompt",
    connector: "slack/acme-slack",
    params: {
      subject: { type: "user", id: "U024BE7LH", issuer: "https://idp.example" },
      installationId: "T024BE7LD",
      scopes: ["chat:write"],
      authorizationDetails: [{ type: "github_app_installation", org: "acme" }]
    },
    options: {
      callbackUrl: "https://app.example/connected?next=%2Fhome",
      webhook: "https://app.example/hooks/connect",
      deviceCode: true,
      expiresInMs: 600_000,
      prompt: "consent"
    },
    path: "/v1/connect/authorize/slack%2Facme-slack",
    body: {
      subject: { type: "user", id: "U024BE7LH", issuer: "https://idp.example" },
      installationId: "T024BE7LD",
      scopes: ["chat:write"],
      authorizationDetails: [{ type: "github_app_installation", org: "acme" }],
      returnUrl: "https://app.example/connected?next=%2Fhome",
      webhook: "https://app.example/hooks/connect",
      deviceCode: true,
      expiresInMs: 600_000,
      prompt: "consent"
    }
  },
  {
    name: "a loopback callbackUrl and deviceCode false",
    connector: "acme/auth-local",
    params: { subject: { type: "user", id: "u_2" }, resources: ["https://api.acme.example"], validityBufferMs: 1_000 },
    options: { callbackUrl: "http://localhost:3000/callback", deviceCode: false },
    path: "/v1/connect/authorize/acme%2Fauth-local",
    body: {
      subject: { type: "user", id: "u_2" },
      resources: ["https://api.acme.example"],
      scopes: ["*"],
      returnUrl: "http://localhost:3000/callback",
      deviceCode: false
    }
  }
]

describe("startAuthorization matches @vercel/connect", () => {
  it.each(authorizationCases)("$name", async ({ connector, params, options, path, body }) => {
    const { official, effect, promise } = await sendAll({
      official: () => Official.startAuthorization(connector, toOfficial(params), { ...officialOptions, ...options }),
      effect: () => runEffect(Connect.startAuthorization(connector, decodeTokenParams(params), options)),
      promise: () => ConnectPromise.startAuthorization(connector, params, { ...promiseOptions(), ...options })
    })
    expect(official.request.method).toBe("POST")
    expect(official.request.path).toBe(path)
    expect(official.request.authorization).toBe(`Bearer ${CALLER_TOKEN}`)
    expect(wire(official.request).body).toStrictEqual(body)
    expect(effect.request.body).not.toHaveProperty("validityBufferMs")
    expect(effect.request.body).not.toHaveProperty("callbackUrl")
    // Our Promise API answers the official shape (verifier as a plain string).
    expect(promise.result).toStrictEqual(official.result)
    expect(Redacted.value(effect.result.verifier)).toBe(official.result.verifier)
    expect(effect.result.url).toBe(official.result.url)
  })
})

// ---------------------------------------------------------------------------
// Error answers
// ---------------------------------------------------------------------------

type ConnectErrorTag = Connect.ConnectError["_tag"]

interface ErrorCase {
  readonly code: string
  readonly status: number
  readonly officialClass: typeof Official.ConnectError
  readonly officialName: string
  readonly tag: ConnectErrorTag
  /** The code our error reports (the same as the wire code unless noted). */
  readonly ourCode?: string
  /** Members of the `error` object beyond code, message and vendor. */
  readonly extra?: Record<string, string>
}

const errorCases: ReadonlyArray<ErrorCase> = [
  {
    code: "user_authorization_required",
    status: 403,
    officialClass: Official.UserAuthorizationRequiredError,
    officialName: "UserAuthorizationRequiredError",
    tag: "UserAuthorizationRequired",
    extra: { authorizeUrl: "https://connect.example/authorize/areq_9" }
  },
  {
    code: "connector_installation_required",
    status: 403,
    officialClass: Official.ConnectorInstallationRequiredError,
    officialName: "ConnectorInstallationRequiredError",
    tag: "ConnectorInstallationRequired",
    extra: { installUrl: "https://connect.example/install/acme" }
  },
  {
    code: "no_token",
    status: 409,
    officialClass: Official.NoValidTokenError,
    officialName: "NoValidTokenError",
    tag: "NoValidToken"
  },
  {
    // Older servers' code: both clients read it as the installation error;
    // ours reports the current code.
    code: "client_installation_required",
    status: 403,
    officialClass: Official.ConnectorInstallationRequiredError,
    officialName: "ConnectorInstallationRequiredError",
    tag: "ConnectorInstallationRequired",
    ourCode: "connector_installation_required"
  },
  {
    code: "client_not_linked_to_project",
    status: 403,
    officialClass: Official.ConnectError,
    officialName: "ConnectError",
    tag: "ClientNotLinkedToProject"
  },
  {
    code: "client_not_enabled_for_environment",
    status: 403,
    officialClass: Official.ConnectError,
    officialName: "ConnectError",
    tag: "ClientNotEnabledForEnvironment"
  },
  {
    code: "not_found",
    status: 404,
    officialClass: Official.ConnectError,
    officialName: "ConnectError",
    tag: "ConnectorNotFound"
  },
  {
    code: "unauthorized",
    status: 401,
    officialClass: Official.ConnectError,
    officialName: "ConnectError",
    tag: "Unauthorized"
  },
  {
    code: "quota_exceeded",
    status: 402,
    officialClass: Official.ConnectError,
    officialName: "ConnectError",
    tag: "UnknownConnectError"
  }
]

/** The value, checked to be an instance of the class. */
const instanceOf = <T>(value: unknown, ctor: abstract new (...args: never[]) => T): T => {
  expect(value).toBeInstanceOf(ctor)
  if (!(value instanceof ctor)) throw new Error(`expected an instance of ${ctor.name}`)
  return value
}

const ours = (value: unknown): Connect.ConnectError => {
  expect(Connect.isConnectError(value)).toBe(true)
  if (!Connect.isConnectError(value)) throw new Error("expected a ConnectError of ours")
  return value
}

const codeOf = (error: Connect.ConnectError): string | undefined => ("code" in error ? error.code : undefined)
const statusOf = (error: Connect.ConnectError): number | undefined => ("status" in error ? error.status : undefined)
const vendorOf = (error: Connect.ConnectError): Record<string, unknown> | undefined =>
  "vendor" in error ? error.vendor : undefined
const detailOf = (error: Connect.ConnectError): string | undefined => ("detail" in error ? error.detail : undefined)

/** Every client fails the same call; returns the three errors. */
const failAll = async (calls: {
  readonly official: () => Promise<unknown>
  readonly effect: () => Promise<unknown>
  readonly promise: () => Promise<unknown>
}) => {
  const official = await sentFailing(calls.official)
  const effect = await sentFailing(calls.effect)
  const promise = await sentFailing(calls.promise)
  expect(wire(effect.request)).toStrictEqual(wire(official.request))
  expect(wire(promise.request)).toStrictEqual(wire(official.request))
  return {
    official: instanceOf(official.error, Official.ConnectError),
    effect: ours(effect.error),
    promise: ours(promise.error)
  }
}

describe("error answers read the same way as @vercel/connect", () => {
  it.each(errorCases)("$status $code", async ({ code, status, officialClass, officialName, tag, ourCode, extra }) => {
    const connector = `errors/${code}`
    const message = `the server says ${code}`
    const vendor = { requestId: `req_${code}`, hint: "see docs" }
    scripted.set(connector, { status, body: { error: { code, message, vendor, ...extra } } })
    const params = { subject: { type: "user", id: "u_err" } } as const
    const errors = await failAll({
      official: () => Official.getToken(connector, params, { ...officialOptions, forceRefresh: true }),
      effect: () => runEffect(Connect.getToken(connector, params)),
      promise: () => ConnectPromise.getToken(connector, params, { ...promiseOptions(), forceRefresh: true })
    })
    const official = instanceOf(errors.official, officialClass)
    expect(official.name).toBe(officialName)
    expect(official.code).toBe(code)
    expect(official.status).toBe(status)
    expect(official.vendor).toStrictEqual(vendor)
    expect(official.message).toBe(message)
    for (const error of [errors.effect, errors.promise]) {
      expect(error._tag).toBe(tag)
      // The official class name is our tag + "Error" wherever the official client has a class of its own.
      if (officialName !== "ConnectError") expect(officialName).toBe(`${error._tag}Error`)
      expect(codeOf(error)).toBe(ourCode ?? official.code)
      expect(statusOf(error)).toBe(official.status)
      expect(vendorOf(error)).toStrictEqual(official.vendor)
      expect(detailOf(error)).toBe(official.message)
      expect(error.message).toContain(message)
      expect(error).toHaveProperty("connector", connector)
      for (const [key, value] of Object.entries(extra ?? {})) expect(error).toHaveProperty(key, value)
    }
    expect(errors.promise.constructor).toBe(errors.effect.constructor)
    // Only where the credential came from may differ: an option of the call, or the Effect client's layer.
    const { credentialSource: _promise, ...promiseFields } = { credentialSource: undefined, ...errors.promise }
    const { credentialSource: _effect, ...effectFields } = { credentialSource: undefined, ...errors.effect }
    expect(promiseFields).toStrictEqual(effectFields)
  })

  it("400 bad_request: InvalidRequest keeps the code, status and message", async () => {
    const connector = "errors/bad_request"
    scripted.set(connector, {
      status: 400,
      body: { error: { code: "bad_request", message: "scopes: unknown scope 'x'", field: "scopes" } }
    })
    const params = { subject: { type: "app" as const }, scopes: ["x"] }
    const errors = await failAll({
      official: () => Official.getToken(connector, params, { ...officialOptions, forceRefresh: true }),
      effect: () => runEffect(Connect.getToken(connector, params)),
      promise: () => ConnectPromise.getToken(connector, params, { ...promiseOptions(), forceRefresh: true })
    })
    expect(errors.official.code).toBe("bad_request")
    expect(errors.official.status).toBe(400)
    for (const error of [errors.effect, errors.promise]) {
      const invalid = instanceOf(error, Connect.InvalidRequest)
      expect(invalid.code).toBe(errors.official.code)
      expect(invalid.status).toBe(errors.official.status)
      expect(invalid.issues).toStrictEqual([{ path: "scopes", message: "scopes: unknown scope 'x'" }])
    }
  })

  it("the `err` key and error.meta.vendor are read like the official client", async () => {
    const connector = "errors/err-key"
    const vendor = { slack: { error: "token_revoked" } }
    scripted.set(connector, {
      status: 409,
      body: { err: { code: "no_token", message: "grant revoked", meta: { vendor } } }
    })
    const params = { subject: { type: "user", id: "u_meta" } } as const
    const errors = await failAll({
      official: () => Official.getToken(connector, params, { ...officialOptions, forceRefresh: true }),
      effect: () => runEffect(Connect.getToken(connector, params)),
      promise: () => ConnectPromise.getToken(connector, params, { ...promiseOptions(), forceRefresh: true })
    })
    const official = instanceOf(errors.official, Official.NoValidTokenError)
    expect(official.code).toBe("no_token")
    expect(official.vendor).toStrictEqual(vendor)
    for (const error of [errors.effect, errors.promise]) {
      const noToken = instanceOf(error, Connect.NoValidToken)
      expect(noToken.code).toBe(official.code)
      expect(noToken.status).toBe(official.status)
      expect(noToken.vendor).toStrictEqual(official.vendor)
      expect(noToken.detail).toBe(official.message)
    }
  })

  it("an error body without an error object keeps the status and top-level vendor", async () => {
    const connector = "errors/no-error-object"
    const vendor = { upstream: "timeout" }
    scripted.set(connector, { status: 409, body: { vendor } })
    const params = { subject: { type: "app" } } as const
    const errors = await failAll({
      official: () => Official.getToken(connector, params, { ...officialOptions, forceRefresh: true }),
      effect: () => runEffect(Connect.getToken(connector, params)),
      promise: () => ConnectPromise.getToken(connector, params, { ...promiseOptions(), forceRefresh: true })
    })
    expect(errors.official.name).toBe("ConnectError")
    expect(errors.official.code).toBeUndefined()
    for (const error of [errors.effect, errors.promise]) {
      const unknown = instanceOf(error, Connect.UnknownConnectError)
      expect(unknown.code).toBe(errors.official.code)
      expect(unknown.status).toBe(errors.official.status)
      expect(unknown.vendor).toStrictEqual(errors.official.vendor)
    }
  })

  it("startAuthorization, revokeToken and getConnectorMetadata read errors the same way", async () => {
    const authorizeConnector = "errors/authorize"
    scripted.set(authorizeConnector, {
      status: 403,
      body: { error: { code: "connector_installation_required", message: "install first" } }
    })
    const params = { subject: { type: "user", id: "u_ops" } } as const
    const authorize = await failAll({
      official: () => Official.startAuthorization(authorizeConnector, params, officialOptions),
      effect: () => runEffect(Connect.startAuthorization(authorizeConnector, params)),
      promise: () => ConnectPromise.startAuthorization(authorizeConnector, params, promiseOptions())
    })
    expect(authorize.official.name).toBe("ConnectorInstallationRequiredError")
    expect(authorize.effect._tag).toBe("ConnectorInstallationRequired")
    expect(authorize.promise._tag).toBe("ConnectorInstallationRequired")

    const revokeConnector = "errors/revoke"
    scripted.set(revokeConnector, { status: 409, body: { error: { code: "no_token", message: "nothing to revoke" } } })
    const revoke = await failAll({
      official: () => Official.revokeToken(revokeConnector, params, officialOptions),
      effect: () => runEffect(Connect.revokeToken(revokeConnector, params)),
      promise: () => ConnectPromise.revokeToken(revokeConnector, params, promiseOptions())
    })
    expect(revoke.official.name).toBe("NoValidTokenError")
    expect(revoke.effect._tag).toBe("NoValidToken")
    expect(revoke.promise._tag).toBe("NoValidToken")

    const metadataConnector = "errors/metadata"
    scripted.set(metadataConnector, { status: 404, body: { error: { code: "not_found", message: "no connector" } } })
    const metadata = await failAll({
      official: () => Official.getConnectorMetadata(metadataConnector, officialOptions),
      effect: () => runEffect(Connect.getConnectorMetadata(metadataConnector)),
      promise: () => ConnectPromise.getConnectorMetadata(metadataConnector, promiseOptions())
    })
    expect(metadata.official.code).toBe("not_found")
    expect(metadata.official.status).toBe(404)
    for (const error of [metadata.effect, metadata.promise]) {
      expect(error._tag).toBe("ConnectorNotFound")
      expect(codeOf(error)).toBe("not_found")
      expect(statusOf(error)).toBe(404)
    }
  })
})
