import { createHash, randomBytes } from "node:crypto"
import { createServer, type IncomingHttpHeaders, type Server } from "node:http"
import type { AddressInfo } from "node:net"
import { inspect } from "node:util"
import {
  FetchHttpClient,
  HttpClient,
  HttpClientError,
  type HttpClientRequest,
  HttpClientResponse
} from "@effect/platform"
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "@effect/vitest"
import { Cause, Chunk, Effect, Exit, Fiber, Layer, Logger, LogLevel, Option, Redacted, TestClock } from "effect"
import {
  errorCodeKinds,
  type Grant,
  type Lookup,
  make as makeProviderClient,
  ProviderClient,
  ProviderClientConfig,
  type ProviderEndpoint,
  ProviderError,
  type ProviderErrorKind,
  type ProviderToken,
  type RevocationEndpoint
} from "../src/ProviderClient.js"
import {
  ACCESS_TOKEN_TYPE,
  DISALLOWED_SCOPE,
  type OAuthProviderHarness,
  startOAuthProvider
} from "./support/oauthProvider.js"
import { providerClientOver, requestToken, revokeToken } from "./support/providerClient.js"

// Distinctive secrets: none of them may ever appear in an error.
const CLIENT_ID = "broker:app id"
const CLIENT_SECRET = "cs-SECRET:9f%41+/ ~!'()*"
const REFRESH_TOKEN = "rt-SECRET-7c1e5a"
const CODE = "code-SECRET-91ab3f"
const CODE_VERIFIER = "verifier-SECRET-44d0aa-0123456789abcdef0123456789abcdef"
const ASSERTION = "assertion-SECRET-e5e5.payload.signature"
const SUBJECT_TOKEN = "subject-SECRET-b0b0"
const ACCESS_TOKEN = "at-SECRET-5e5e5e"
const SECRETS = [CLIENT_SECRET, REFRESH_TOKEN, CODE, CODE_VERIFIER, ASSERTION, SUBJECT_TOKEN, ACCESS_TOKEN]

const NOW = 1_700_000_000_000

// ---------------------------------------------------------------------------------------------------------------
// A local provider that records what arrives and answers as told
// ---------------------------------------------------------------------------------------------------------------

interface Received {
  readonly method: string
  readonly path: string
  readonly headers: IncomingHttpHeaders
  readonly body: string
  readonly form: URLSearchParams
}

type Reply =
  | { readonly status: number; readonly body?: string; readonly headers?: Readonly<Record<string, string>> }
  | "hang"

const json = (status: number, value: unknown, headers: Readonly<Record<string, string>> = {}): Reply => ({
  status,
  body: JSON.stringify(value),
  headers: { "content-type": "application/json", ...headers }
})

const TOKEN_OK = json(200, { access_token: ACCESS_TOKEN, token_type: "Bearer", expires_in: 3600 })

let server: Server
let baseUrl: string
const received: Array<Received> = []
let answer: (request: Received) => Reply = () => TOKEN_OK

beforeAll(async () => {
  server = createServer((req, res) => {
    const chunks: Array<Buffer> = []
    req.on("data", (chunk: Buffer) => chunks.push(chunk))
    req.on("end", () => {
      const body = Buffer.concat(chunks).toString("utf8")
      const request: Received = {
        method: req.method ?? "",
        path: req.url ?? "",
        headers: req.headers,
        body,
        form: new URLSearchParams(body)
      }
      received.push(request)
      const reply = answer(request)
      if (reply === "hang") return
      res.writeHead(reply.status, reply.headers ?? {})
      res.end(reply.body ?? "")
    })
  })
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
  baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
})

afterAll(async () => {
  server.closeAllConnections()
  await new Promise<void>((resolve) => server.close(() => resolve()))
})

beforeEach(() => {
  received.length = 0
  answer = () => TOKEN_OK
})

const answerWith = (reply: Reply) => {
  answer = () => reply
}

const only = (): Received => {
  expect(received).toHaveLength(1)
  const request = received[0]
  if (request === undefined) throw new Error("no request arrived")
  return request
}

/** The client id and secret of an HTTP Basic header, each form-decoded (RFC 6749 section 2.3.1). */
const decodeBasic = (header: string | undefined): readonly [string, string] => {
  expect(header).toMatch(/^Basic [A-Za-z0-9+/]+=*$/)
  const decoded = Buffer.from((header ?? "").slice("Basic ".length), "base64").toString("utf8")
  const colon = decoded.indexOf(":")
  const formDecode = (text: string) => decodeURIComponent(text.replace(/\+/g, " "))
  return [formDecode(decoded.slice(0, colon)), formDecode(decoded.slice(colon + 1))]
}

const endpoint = (overrides: Partial<ProviderEndpoint> = {}): ProviderEndpoint => ({
  tokenEndpoint: `${baseUrl}/token`,
  clientId: CLIENT_ID,
  clientSecret: Redacted.make(CLIENT_SECRET),
  authMethod: "client_secret_basic",
  defaultLifetimeSeconds: 900,
  ...overrides
})

const revocation = (overrides: Partial<RevocationEndpoint> = {}): RevocationEndpoint => ({
  revocationEndpoint: `${baseUrl}/revoke`,
  clientId: CLIENT_ID,
  clientSecret: Redacted.make(CLIENT_SECRET),
  authMethod: "client_secret_basic",
  ...overrides
})

const REFRESH: Grant = { type: "refresh_token", refreshToken: Redacted.make(REFRESH_TOKEN) }

/** Runs against the local server with a real `HttpClient`, at a fixed time, without retries unless asked. */
const live = <A, E>(effect: Effect.Effect<A, E, ProviderClient>, retries = 0) =>
  TestClock.setTime(NOW).pipe(
    Effect.zipRight(effect),
    Effect.provide(
      Layer.merge(
        ProviderClient.layer.pipe(Layer.provide(FetchHttpClient.layer)),
        ProviderClientConfig.layer({ retries })
      )
    )
  )

const token = (grant: Grant = REFRESH, overrides: Partial<ProviderEndpoint> = {}) =>
  live(requestToken(endpoint(overrides), grant))

const tokenError = (grant: Grant = REFRESH, overrides: Partial<ProviderEndpoint> = {}) =>
  Effect.flip(token(grant, overrides))

/** Every way an error can be turned into text. */
const renderings = (error: ProviderError): ReadonlyArray<string> => [
  error.message,
  String(error),
  JSON.stringify(error),
  inspect(error, { depth: 10 }),
  error.stack ?? "",
  Cause.pretty(Cause.fail(error))
]

const expectNoSecret = (error: ProviderError) => {
  for (const text of renderings(error)) {
    for (const secret of SECRETS) expect(text).not.toContain(secret)
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Requests
// ---------------------------------------------------------------------------------------------------------------

describe("requestToken: what is sent", () => {
  it.effect("client_credentials: form body, Accept JSON, space-joined scope, repeated resource and audience", () =>
    Effect.gen(function* () {
      const details = [{ type: "account_access", actions: ["read"] }]
      yield* token({
        type: "client_credentials",
        scope: ["api:read", "api:write"],
        resource: ["https://api.test/a", "https://api.test/b"],
        audience: ["aud-1", "aud-2"],
        authorizationDetails: details
      })
      const request = only()
      expect(request.method).toBe("POST")
      expect(request.path).toBe("/token")
      expect(request.headers["content-type"]).toMatch(/^application\/x-www-form-urlencoded/)
      expect(request.headers.accept).toBe("application/json")
      expect(request.form.get("grant_type")).toBe("client_credentials")
      expect(request.form.get("scope")).toBe("api:read api:write")
      expect(request.form.getAll("resource")).toEqual(["https://api.test/a", "https://api.test/b"])
      expect(request.form.getAll("audience")).toEqual(["aud-1", "aud-2"])
      expect(JSON.parse(request.form.get("authorization_details") ?? "null")).toEqual(details)
      expect(request.form.has("client_secret")).toBe(false)
      expect(request.form.has("client_id")).toBe(false)
    })
  )

  it.effect("client_secret_basic: id and secret are form-encoded before base64, so ':' and '%' survive", () =>
    Effect.gen(function* () {
      yield* token({ type: "client_credentials" })
      const request = only()
      expect(decodeBasic(request.headers.authorization)).toEqual([CLIENT_ID, CLIENT_SECRET])
      // The raw header text is the RFC 6749 appendix B encoding, not the plain secret.
      const raw = Buffer.from((request.headers.authorization ?? "").slice(6), "base64").toString("utf8")
      expect(raw).toBe("broker%3Aapp+id:cs-SECRET%3A9f%2541%2B%2F+~%21%27%28%29%2A")
    })
  )

  it.effect("client_secret_post: the id and secret go in the body, no Authorization header", () =>
    Effect.gen(function* () {
      yield* token({ type: "client_credentials" }, { authMethod: "client_secret_post" })
      const request = only()
      expect(request.headers.authorization).toBeUndefined()
      expect(request.form.get("client_id")).toBe(CLIENT_ID)
      expect(request.form.get("client_secret")).toBe(CLIENT_SECRET)
    })
  )

  it.effect("client_credentials without options sends only the grant type", () =>
    Effect.gen(function* () {
      yield* token({ type: "client_credentials", scope: [], resource: [], authorizationDetails: [] })
      expect([...only().form.keys()]).toEqual(["grant_type"])
    })
  )

  it.effect("refresh_token", () =>
    Effect.gen(function* () {
      yield* token({
        type: "refresh_token",
        refreshToken: Redacted.make(REFRESH_TOKEN),
        scope: ["api:read"],
        resource: ["https://api.test/a", "https://api.test/b"]
      })
      const form = only().form
      expect(form.get("grant_type")).toBe("refresh_token")
      expect(form.get("refresh_token")).toBe(REFRESH_TOKEN)
      expect(form.get("scope")).toBe("api:read")
      expect(form.getAll("resource")).toEqual(["https://api.test/a", "https://api.test/b"])
    })
  )

  it.effect("authorization_code with PKCE", () =>
    Effect.gen(function* () {
      yield* token({
        type: "authorization_code",
        code: Redacted.make(CODE),
        redirectUri: "https://broker.test/callback?x=1",
        codeVerifier: Redacted.make(CODE_VERIFIER)
      })
      const form = only().form
      expect(Object.fromEntries(form)).toEqual({
        grant_type: "authorization_code",
        code: CODE,
        redirect_uri: "https://broker.test/callback?x=1",
        code_verifier: CODE_VERIFIER
      })
    })
  )

  /** A code exchange of the test's code, with `more` of the request. */
  const codeExchange = (more: { readonly resource?: Array<string>; readonly extraParams?: Record<string, string> }) =>
    token({
      type: "authorization_code",
      code: Redacted.make(CODE),
      redirectUri: "https://broker.test/callback",
      codeVerifier: Redacted.make(CODE_VERIFIER),
      ...more
    })

  it.effect("authorization_code for resources: each one repeated (RFC 8707 section 2.2)", () =>
    Effect.gen(function* () {
      yield* codeExchange({ resource: ["https://api.test/a", "https://api.test/b"] })
      expect(only().form.getAll("resource")).toEqual(["https://api.test/a", "https://api.test/b"])
    })
  )

  it.effect("authorization_code with extra parameters: added once, empty ones and the grant's own left out", () =>
    Effect.gen(function* () {
      yield* codeExchange({ extraParams: { expiring: "1", dropped: "", code: "other", client_id: "other" } })
      const form = only().form
      expect(form.get("expiring")).toBe("1")
      expect(form.has("dropped")).toBe(false)
      expect(form.getAll("code")).toEqual([CODE])
      expect(form.has("client_id")).toBe(false)
    })
  )

  it.effect("device_code: the device code, and the scopes in `scopes` only when given (Twitch's poll)", () =>
    Effect.gen(function* () {
      yield* token({ type: "device_code", deviceCode: Redacted.make("device-code-Xy12") })
      expect(Object.fromEntries(only().form)).toEqual({
        grant_type: "urn:ietf:params:oauth:grant-type:device_code",
        device_code: "device-code-Xy12"
      })
      received.length = 0
      yield* token({ type: "device_code", deviceCode: Redacted.make("device-code-Xy12"), scopes: ["a:b", "c"] })
      expect(only().form.get("scopes")).toBe("a:b c")
    })
  )

  it.effect("jwt_bearer (RFC 7523)", () =>
    Effect.gen(function* () {
      yield* token({
        type: "jwt_bearer",
        assertion: Redacted.make(ASSERTION),
        scope: ["a", "b"],
        resource: ["https://api.test/a"],
        audience: ["aud-1", "aud-2"]
      })
      const form = only().form
      expect(form.get("grant_type")).toBe("urn:ietf:params:oauth:grant-type:jwt-bearer")
      expect(form.get("assertion")).toBe(ASSERTION)
      expect(form.get("scope")).toBe("a b")
      expect(form.getAll("resource")).toEqual(["https://api.test/a"])
      expect(form.getAll("audience")).toEqual(["aud-1", "aud-2"])
    })
  )

  it.effect("token_exchange (RFC 8693)", () =>
    Effect.gen(function* () {
      yield* token({
        type: "token_exchange",
        subjectToken: Redacted.make(SUBJECT_TOKEN),
        subjectTokenType: ACCESS_TOKEN_TYPE,
        requestedTokenType: "urn:ietf:params:oauth:token-type:jwt",
        audience: ["https://api.test/b", "https://api.test/c"],
        resource: ["https://api.test/r"],
        scope: ["api:read"]
      })
      const form = only().form
      expect(form.get("grant_type")).toBe("urn:ietf:params:oauth:grant-type:token-exchange")
      expect(form.get("subject_token")).toBe(SUBJECT_TOKEN)
      expect(form.get("subject_token_type")).toBe(ACCESS_TOKEN_TYPE)
      expect(form.get("requested_token_type")).toBe("urn:ietf:params:oauth:token-type:jwt")
      expect(form.getAll("audience")).toEqual(["https://api.test/b", "https://api.test/c"])
      expect(form.getAll("resource")).toEqual(["https://api.test/r"])
      expect(form.get("scope")).toBe("api:read")
      expect(form.has("actor_token")).toBe(false)
    })
  )

  it.effect("an endpoint that is not an http(s) URL is refused before anything is sent", () =>
    Effect.gen(function* () {
      for (const tokenEndpoint of ["not a url", "ftp://idp.test/token", "https://user:pw@idp.test/token"]) {
        const error = yield* tokenError(REFRESH, { tokenEndpoint })
        expect(error.kind).toBe("other")
        expect(error.attempts).toBe(0)
        expect(error.message).not.toContain("pw")
      }
      expect(received).toHaveLength(0)
    })
  )
})

// ---------------------------------------------------------------------------------------------------------------
// Success answers
// ---------------------------------------------------------------------------------------------------------------

describe("requestToken: success answers", () => {
  it.effect("a full response", () =>
    Effect.gen(function* () {
      answerWith(
        json(200, {
          access_token: ACCESS_TOKEN,
          token_type: "Bearer",
          expires_in: 3600,
          refresh_token: "rt-new",
          refresh_token_expires_in: 86400,
          scope: "api:read api:write",
          id_token: "id.token.jwt",
          issued_token_type: ACCESS_TOKEN_TYPE,
          unknown_extra: "ignored"
        })
      )
      const result = yield* token()
      expect(Redacted.value(result.accessToken)).toBe(ACCESS_TOKEN)
      expect(result.tokenType).toBe("Bearer")
      expect(result.expiresAt).toBe(NOW + 3_600_000)
      expect(result.refreshToken && Redacted.value(result.refreshToken)).toBe("rt-new")
      expect(result.refreshTokenExpiresAt).toBe(NOW + 86_400_000)
      expect(result.scope).toBe("api:read api:write")
      expect(result.idToken && Redacted.value(result.idToken)).toBe("id.token.jwt")
      expect(result.issuedTokenType).toBe(ACCESS_TOKEN_TYPE)
      expect(result.expiresInSent).toBe(true)
      expect(result.fields).toEqual({ unknown_extra: "ignored" })
      expect(Object.keys(result).sort()).toEqual([
        "accessToken",
        "expiresAt",
        "expiresInSent",
        "fields",
        "idToken",
        "issuedTokenType",
        "refreshToken",
        "refreshTokenExpiresAt",
        "scope",
        "tokenType"
      ])
      // The token is redacted when logged or serialised.
      expect(JSON.stringify(result)).not.toContain(ACCESS_TOKEN)
    })
  )

  it.effect("Slack-style: the other members are kept for the installation, every secret among them dropped", () =>
    Effect.gen(function* () {
      answerWith(
        json(200, {
          ok: true,
          access_token: "xoxb-bot-token",
          token_type: "bot",
          scope: "chat:write",
          bot_user_id: "U0BOT",
          app_id: "A0APP",
          team: { id: "T123", name: "Acme" },
          enterprise: null,
          authed_user: { id: "U0ADMIN", access_token: "xoxp-user-secret", refresh_token: "xoxe-user-refresh" },
          incoming_webhook: { url: "https://hooks.example/x", channel: "#general", client_secret: "nope" }
        })
      )
      const result = yield* token()
      expect(result.expiresInSent).toBe(false)
      expect(result.fields).toEqual({
        ok: true,
        bot_user_id: "U0BOT",
        app_id: "A0APP",
        team: { id: "T123", name: "Acme" },
        enterprise: null,
        authed_user: { id: "U0ADMIN" }
      })
      expect(JSON.stringify(result.fields)).not.toMatch(/xox|nope|hooks/)
    })
  )

  it.effect("token_type in any case is normalised to Bearer; other types are kept", () =>
    Effect.gen(function* () {
      const typeOf = (tokenType: string | undefined) => {
        answerWith(json(200, { access_token: ACCESS_TOKEN, token_type: tokenType, expires_in: 60 }))
        return Effect.map(token(), (result) => result.tokenType)
      }
      expect(yield* typeOf("bearer")).toBe("Bearer")
      expect(yield* typeOf("BEARER")).toBe("Bearer")
      expect(yield* typeOf("dpop")).toBe("DPoP")
      expect(yield* typeOf("bot")).toBe("bot")
      expect(yield* typeOf(undefined)).toBe("Bearer")
    })
  )

  it.effect("expires_in as a string (Azure AD v1)", () =>
    Effect.gen(function* () {
      answerWith(json(200, { access_token: ACCESS_TOKEN, token_type: "Bearer", expires_in: "3599" }))
      expect((yield* token()).expiresAt).toBe(NOW + 3_599_000)
    })
  )

  it.effect("expires_in missing or null: the endpoint's default lifetime", () =>
    Effect.gen(function* () {
      answerWith(json(200, { access_token: ACCESS_TOKEN, token_type: "Bearer" }))
      expect((yield* token()).expiresAt).toBe(NOW + 900_000)
      answerWith(json(200, { access_token: ACCESS_TOKEN, token_type: "Bearer", expires_in: null }))
      expect((yield* token(REFRESH, { defaultLifetimeSeconds: 60 })).expiresAt).toBe(NOW + 60_000)
    })
  )

  it.effect("GitHub-style: lower-case bearer, a scope, no expires_in, no refresh token", () =>
    Effect.gen(function* () {
      answerWith(
        json(200, {
          access_token: "gho_16C7e42F292c6912E7710c838347Ae178B4a",
          token_type: "bearer",
          scope: "repo,gist"
        })
      )
      const result = yield* token({
        type: "authorization_code",
        code: Redacted.make(CODE),
        redirectUri: "https://broker.test/cb",
        codeVerifier: Redacted.make(CODE_VERIFIER)
      })
      expect(result).toMatchObject({ tokenType: "Bearer", expiresAt: NOW + 900_000, scope: "repo,gist" })
      expect(result.refreshToken).toBeUndefined()
      expect("refreshTokenExpiresAt" in result).toBe(false)
    })
  )

  it.effect("a refresh without a new refresh token returns none (the caller keeps the old one)", () =>
    Effect.gen(function* () {
      answerWith(json(200, { access_token: ACCESS_TOKEN, token_type: "Bearer", expires_in: 3599, scope: "email" }))
      const result: ProviderToken = yield* token()
      expect(result.refreshToken).toBeUndefined()
    })
  )

  it.effect("a form-encoded success body (a provider that ignores Accept)", () =>
    Effect.gen(function* () {
      answerWith({
        status: 200,
        body: `access_token=${ACCESS_TOKEN}&scope=repo&token_type=bearer`,
        headers: { "content-type": "application/x-www-form-urlencoded; charset=utf-8" }
      })
      const result = yield* token()
      expect(Redacted.value(result.accessToken)).toBe(ACCESS_TOKEN)
      expect(result).toMatchObject({ tokenType: "Bearer", scope: "repo" })
    })
  )

  it.effect("Slack user tokens: the user's token is read from authed_user, not the bot's top level", () =>
    Effect.gen(function* () {
      const CODE_GRANT: Grant = {
        type: "authorization_code",
        code: Redacted.make(CODE),
        redirectUri: "https://broker.example/cb",
        codeVerifier: Redacted.make(CODE_VERIFIER),
        tokenMember: "authed_user"
      }
      answerWith(
        json(200, {
          ok: true,
          access_token: "xoxb-bot",
          token_type: "bot",
          team: { id: "T1" },
          authed_user: {
            id: "U1",
            access_token: ACCESS_TOKEN,
            token_type: "user",
            expires_in: 43200,
            refresh_token: REFRESH_TOKEN,
            scope: "search:read"
          }
        })
      )
      const result = yield* token(CODE_GRANT)
      expect(Redacted.value(result.accessToken)).toBe(ACCESS_TOKEN)
      expect(result.refreshToken === undefined ? undefined : Redacted.value(result.refreshToken)).toBe(REFRESH_TOKEN)
      expect(result).toMatchObject({ scope: "search:read", expiresAt: NOW + 43_200_000 })
      answerWith(json(200, { ok: true, access_token: "xoxb-bot", token_type: "bot" }))
      const missing = yield* tokenError(CODE_GRANT)
      expect(missing).toMatchObject({
        kind: "invalid_response",
        reason: "not a token response: authed_user is missing"
      })
    })
  )

  it.effect("GitHub App installation token: the app's JWT as bearer, no client credentials; token and expires_at", () =>
    Effect.gen(function* () {
      const JWT = "eyJhbGciOiJSUzI1NiJ9.app-SECRET.sig"
      answerWith(
        json(201, { token: ACCESS_TOKEN, expires_at: "2023-11-14T23:13:20Z", permissions: { contents: "read" } })
      )
      const result = yield* token({ type: "app_installation", appJwt: Redacted.make(JWT) })
      const request = only()
      expect(request.headers.authorization).toBe(`Bearer ${JWT}`)
      expect(request.headers.accept).toBe("application/vnd.github+json")
      expect(request.body).toBe("")
      expect(Redacted.value(result.accessToken)).toBe(ACCESS_TOKEN)
      expect(result.expiresAt).toBe(Date.parse("2023-11-14T23:13:20Z"))
      answerWith(json(401, { message: `A JSON web token could not be decoded: ${JWT}` }))
      const refused = yield* tokenError({ type: "app_installation", appJwt: Redacted.make(JWT) })
      expect(refused.kind).toBe("invalid_client")
      expect(refused.message).not.toContain(JWT)
    })
  )

  it.effect("a scope sent as an array is joined with spaces", () =>
    Effect.gen(function* () {
      answerWith(json(200, { access_token: ACCESS_TOKEN, token_type: "Bearer", scope: ["a", "b"] }))
      expect((yield* token()).scope).toBe("a b")
    })
  )
})

describe("requestToken: invalid success answers", () => {
  const invalid = (reply: Reply) =>
    Effect.gen(function* () {
      answerWith(reply)
      const error = yield* tokenError()
      expect(error).toBeInstanceOf(ProviderError)
      expect(error.kind).toBe("invalid_response")
      expect(error.status).toBe(200)
      expectNoSecret(error)
      return error
    })

  it.effect("an empty body", () =>
    Effect.gen(function* () {
      const error = yield* invalid({ status: 200 })
      expect(error.reason).toBe("the body is empty")
      expect(error.message).toContain("sent an invalid answer to the refresh_token grant")
    })
  )

  it.effect("an HTML body", () =>
    Effect.gen(function* () {
      const error = yield* invalid({
        status: 200,
        body: "<html><body>Sign in</body></html>",
        headers: { "content-type": "text/html; charset=utf-8" }
      })
      expect(error.reason).toBe("the body is not JSON (33 bytes, text/html)")
    })
  )

  it.effect("no access_token, an empty one, or not a string", () =>
    Effect.gen(function* () {
      expect((yield* invalid(json(200, { token_type: "Bearer" }))).reason).toBe(
        "not a token response: access_token: is missing"
      )
      expect((yield* invalid(json(200, { access_token: "  ", token_type: "Bearer" }))).reason).toBe(
        "not a token response: access_token: Expected a non-empty string"
      )
      expect((yield* invalid(json(200, { access_token: 42 }))).reason).toContain("access_token: Expected string")
    })
  )

  it.effect("expires_in that is not a number of seconds; a body that is not an object", () =>
    Effect.gen(function* () {
      const soon = yield* invalid(json(200, { access_token: ACCESS_TOKEN, token_type: "Bearer", expires_in: "soon" }))
      expect(soon.reason).toBe(
        "not a token response: expires_in: Expected a number of seconds (at least 0), or a numeric string"
      )
      const negative = yield* invalid(json(200, { access_token: ACCESS_TOKEN, expires_in: -5 }))
      expect(negative.reason).toBe(soon.reason)
      const array = yield* invalid(json(200, [ACCESS_TOKEN]))
      expect(array.reason).toBe("the body is not a JSON object")
    })
  )

  it.effect("a field of the wrong type is named without the token's value", () =>
    Effect.gen(function* () {
      const error = yield* invalid(
        json(200, { access_token: ACCESS_TOKEN, token_type: 7, refresh_token: 5, expires_in: `x${REFRESH_TOKEN}` })
      )
      expect(error.reason).toBe(
        "not a token response: token_type: Expected string; expires_in: Expected a number of seconds (at least 0), or a numeric string; refresh_token: Expected string"
      )
    })
  )
})

// ---------------------------------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------------------------------

describe("requestToken: error answers", () => {
  const refused = (reply: Reply, kind: ProviderErrorKind, grant: Grant = REFRESH) =>
    Effect.gen(function* () {
      answerWith(reply)
      const error = yield* tokenError(grant)
      expect(error._tag).toBe("ProviderError")
      expect(error.kind).toBe(kind)
      expect(error.attempts).toBe(1)
      expectNoSecret(error)
      return error
    })

  it.effect("oidc-provider's 400 invalid_grant: the user must authorize again", () =>
    Effect.gen(function* () {
      const error = yield* refused(
        json(400, { error: "invalid_grant", error_description: "grant request is invalid" }),
        "invalid_grant"
      )
      expect(error).toMatchObject({
        status: 400,
        code: "invalid_grant",
        description: "grant request is invalid",
        grantType: "refresh_token",
        operation: "token",
        endpoint: `${baseUrl}/token`
      })
      expect(error.message).toBe(
        `The provider's token endpoint ${baseUrl}/token refused the refresh_token grant (HTTP 400, invalid_grant, "grant request is invalid"): the grant is gone (revoked, expired or already used); the user must authorize again`
      )
      const assertion = yield* tokenError({ type: "jwt_bearer", assertion: Redacted.make(ASSERTION) })
      expect(assertion.message).toContain("sign a new assertion")
      const exchange = yield* tokenError({
        type: "token_exchange",
        subjectToken: Redacted.make(SUBJECT_TOKEN),
        subjectTokenType: ACCESS_TOKEN_TYPE
      })
      expect(exchange.message).toContain("exchange a current token")
    })
  )

  it.effect("slow_down keeps the interval it names, in seconds, a number or a form's string (GitHub's)", () =>
    Effect.gen(function* () {
      const device: Grant = { type: "device_code", deviceCode: Redacted.make("device-code-Xy12") }
      const named = yield* refused(json(200, { error: "slow_down", interval: 10 }), "slow_down", device)
      expect(named.intervalMs).toBe(10_000)
      const form = yield* refused(
        {
          status: 200,
          body: "error=slow_down&interval=15",
          headers: { "content-type": "application/x-www-form-urlencoded" }
        },
        "slow_down",
        device
      )
      expect(form.intervalMs).toBe(15_000)
      const none = yield* refused(json(400, { error: "slow_down" }), "slow_down", device)
      expect(none.intervalMs).toBeUndefined()
    })
  )

  it.effect("oidc-provider's 401 invalid_client: the broker is misconfigured", () =>
    Effect.gen(function* () {
      const error = yield* refused(
        json(401, { error: "invalid_client", error_description: "client authentication failed" }),
        "invalid_client"
      )
      expect(error.message).toContain("check the connector's client id, client secret and token endpoint auth method")
    })
  )

  it.effect("oidc-provider's 400 invalid_target and invalid_scope", () =>
    Effect.gen(function* () {
      const target = yield* refused(
        json(400, { error: "invalid_target", error_description: "resource indicator is missing, or unknown" }),
        "invalid_target"
      )
      expect(target.message).toContain("refused the requested resource or audience")
      const scope = yield* refused(
        json(400, { error: "invalid_scope", error_description: "requested scope is not allowed", scope: "api:admin" }),
        "invalid_scope"
      )
      expect(scope.message).toContain("refused the requested scope")
    })
  )

  it.effect("unsupported_grant_type and unauthorized_client are `unsupported`; invalid_request is `other`", () =>
    Effect.gen(function* () {
      yield* refused(json(400, { error: "unsupported_grant_type" }), "unsupported")
      yield* refused(json(400, { error: "unauthorized_client" }), "unsupported")
      const other = yield* refused(
        json(400, { error: "invalid_request", error_description: "missing required parameter" }),
        "other"
      )
      expect(other.message).toContain('(HTTP 400, invalid_request, "missing required parameter")')
    })
  )

  it.effect("Slack: HTTP 200 with ok false is an error, never a token", () =>
    Effect.gen(function* () {
      const error = yield* refused(json(200, { ok: false, error: "invalid_refresh_token" }), "invalid_grant")
      expect(error).toMatchObject({ status: 200, code: "invalid_refresh_token" })
      yield* refused(json(200, { ok: false, error: "invalid_client_id" }), "invalid_client")
      yield* refused(json(200, { ok: false, error: "bad_client_secret" }), "invalid_client")
      // Even with a token in the body.
      yield* refused(json(200, { ok: false, error: "token_revoked", access_token: ACCESS_TOKEN }), "invalid_grant")
      yield* refused(json(200, { ok: false }), "other")
    })
  )

  it.effect("GitHub: HTTP 200 with an error is an error", () =>
    Effect.gen(function* () {
      const error = yield* refused(
        json(200, {
          error: "bad_verification_code",
          error_description: "The code passed is incorrect or expired.",
          error_uri:
            "https://docs.github.com/apps/managing-oauth-apps/troubleshooting-oauth-app-access-token-request-errors/#bad-verification-code"
        }),
        "invalid_grant"
      )
      expect(error.description).toBe("The code passed is incorrect or expired.")
      yield* refused(json(200, { error: "incorrect_client_credentials" }), "invalid_client")
    })
  )

  it.effect("non-standard codes are mapped by one table", () =>
    Effect.gen(function* () {
      const expected: ReadonlyArray<readonly [string, ProviderErrorKind]> = [
        ["invalid_refresh_token", "invalid_grant"],
        ["token_revoked", "invalid_grant"],
        ["bad_refresh_token", "invalid_grant"],
        ["bad_verification_code", "invalid_grant"],
        ["incorrect_client_credentials", "invalid_client"],
        ["invalid_client_id", "invalid_client"],
        ["bad_client_secret", "invalid_client"],
        ["INVALID_GRANT", "invalid_grant"],
        // A refresh refused with a code nobody knows: the refresh token is refused.
        ["something_new", "invalid_grant"]
      ]
      for (const [code, kind] of expected) {
        const error = yield* refused(json(400, { error: code }), kind)
        expect(error.code).toBe(code)
      }
      // Any other grant refused so is a refusal like any other.
      yield* refused(json(400, { error: "something_new" }), "other", { type: "client_credentials" })
      yield* refused(json(400, { error: "invalid_request" }), "other")
      expect(errorCodeKinds.bad_refresh_token).toBe("invalid_grant")
    })
  )

  it.effect("an empty error body: the status decides", () =>
    Effect.gen(function* () {
      // A refresh refused with 400 and nothing else: the refresh token is refused (the user authorizes again).
      const bad = yield* refused({ status: 400 }, "invalid_grant")
      expect(bad).toMatchObject({ status: 400 })
      expect(bad.code).toBeUndefined()
      expect(bad.message).toContain("(HTTP 400)")
      yield* refused({ status: 400 }, "other", { type: "client_credentials" })
      const unauthorized = yield* refused({ status: 401 }, "invalid_client")
      expect(unauthorized.status).toBe(401)
      yield* refused({ status: 403 }, "other")
    })
  )

  it.effect("an HTML error body", () =>
    Effect.gen(function* () {
      const html = (status: number): Reply => ({
        status,
        body: "<!doctype html><html><body><h1>Bad Request</h1></body></html>",
        headers: { "content-type": "text/html" }
      })
      const error = yield* refused(html(400), "other")
      expect(error.reason).toBe("the body is not JSON (61 bytes, text/html)")
      yield* refused(html(401), "invalid_client")
      const gateway = yield* refused(html(502), "transient")
      expect(gateway.message).toContain("is unavailable for the refresh_token grant (HTTP 502")
      expect(gateway.message).toContain("after 1 attempt): retry later")
    })
  )

  it.effect("a long description is cut to about 200 characters, control characters removed", () =>
    Effect.gen(function* () {
      const error = yield* refused(
        json(400, { error: "invalid_grant", error_description: `line one\nline\ttwo ${"x".repeat(500)}` }),
        "invalid_grant"
      )
      expect(error.description?.length).toBe(200)
      expect(error.description?.startsWith("line one line two xxx")).toBe(true)
      expect(error.description?.endsWith("…")).toBe(true)
    })
  )

  it.effect("a network failure is transient", () =>
    Effect.gen(function* () {
      const closed = createServer()
      yield* Effect.promise(() => new Promise<void>((resolve) => closed.listen(0, "127.0.0.1", resolve)))
      const port = (closed.address() as AddressInfo).port
      yield* Effect.promise(() => new Promise<void>((resolve) => closed.close(() => resolve())))
      const error = yield* tokenError(REFRESH, { tokenEndpoint: `http://127.0.0.1:${port}/token` })
      expect(error.kind).toBe("transient")
      expect(error.status).toBeUndefined()
      expect(error.reason).toMatch(/^the request failed/)
      expect(error.message).toContain("retry later")
      expectNoSecret(error)
    })
  )
})

// ---------------------------------------------------------------------------------------------------------------
// Secrets
// ---------------------------------------------------------------------------------------------------------------

describe("no secret in any error", () => {
  const grants: ReadonlyArray<Grant> = [
    REFRESH,
    {
      type: "authorization_code",
      code: Redacted.make(CODE),
      redirectUri: "https://broker.test/cb",
      codeVerifier: Redacted.make(CODE_VERIFIER)
    },
    { type: "jwt_bearer", assertion: Redacted.make(ASSERTION) },
    { type: "token_exchange", subjectToken: Redacted.make(SUBJECT_TOKEN), subjectTokenType: ACCESS_TOKEN_TYPE }
  ]

  it.effect("even when the provider echoes the request in its description or code", () =>
    Effect.gen(function* () {
      answer = (request) =>
        json(400, {
          error: `invalid_grant ${request.form.get("client_secret") ?? ""}`,
          error_description: `bad request: ${request.body} ${request.headers.authorization ?? ""} ${CLIENT_SECRET}`
        })
      for (const grant of grants) {
        for (const authMethod of ["client_secret_basic", "client_secret_post"] as const) {
          const error = yield* tokenError(grant, { authMethod })
          expectNoSecret(error)
          expect(error.description).toContain("[redacted]")
        }
      }
    })
  )

  it.effect("in invalid responses, transient errors and timeouts, and in the logs", () => {
    const lines: Array<string> = []
    const logger = Logger.make(({ message }) => {
      lines.push(Array.isArray(message) ? message.map(String).join(" ") : String(message))
    })
    return Effect.gen(function* () {
      const errors: Array<ProviderError> = []
      const collect = <R>(effect: Effect.Effect<ProviderToken, ProviderError, R>) =>
        Effect.flip(effect).pipe(Effect.tap((error) => Effect.sync(() => errors.push(error))))
      const replies: ReadonlyArray<Reply> = [
        json(200, { access_token: ACCESS_TOKEN, token_type: { value: REFRESH_TOKEN } }),
        json(200, { access_token: ACCESS_TOKEN, expires_in: REFRESH_TOKEN }),
        json(503, { error: "server_error", error_description: `failed for ${REFRESH_TOKEN}` }),
        { status: 500, body: `<pre>${CLIENT_SECRET}</pre>`, headers: { "content-type": "text/html" } }
      ]
      for (const reply of replies) {
        answerWith(reply)
        yield* collect(token())
      }
      // A timeout on a hanging request.
      answerWith("hang")
      const fiber = yield* Effect.fork(collect(token()))
      yield* waitFor(() => received.length === replies.length + 1)
      yield* TestClock.adjust("10 seconds")
      yield* Fiber.join(fiber)

      expect(errors.map((error) => error.kind)).toEqual([
        "invalid_response",
        "invalid_response",
        "transient",
        "transient",
        "transient"
      ])
      for (const error of errors) expectNoSecret(error)
      for (const line of lines) for (const secret of SECRETS) expect(line).not.toContain(secret)
    }).pipe(Effect.provide(Logger.replace(Logger.defaultLogger, logger)), Logger.withMinimumLogLevel(LogLevel.All))
  })
})

// ---------------------------------------------------------------------------------------------------------------
// Retries and timeouts, under the test clock
// ---------------------------------------------------------------------------------------------------------------

/** Lets other fibers and I/O run for one turn of the event loop; no time passes. */
const tick = Effect.promise(() => new Promise<void>((resolve) => setImmediate(resolve)))

/** Turns the event loop until `done` holds (real I/O, no test time). */
const waitFor = (done: () => boolean) =>
  Effect.gen(function* () {
    for (let turn = 0; turn < 10_000 && !done(); turn++) yield* tick
    expect(done()).toBe(true)
  })

/** Lets the other fibers run until they wait on the clock or are done. */
const settle = Effect.gen(function* () {
  let last = ""
  let stable = 0
  for (let turn = 0; turn < 1_000 && stable < 3; turn++) {
    yield* tick
    const sleeps = JSON.stringify(Chunk.toReadonlyArray(yield* TestClock.sleeps()))
    stable = sleeps === last ? stable + 1 : 0
    last = sleeps
  }
})

/** Moves the test clock a second at a time until the fiber is done. */
const runToEnd = <A, E>(fiber: Fiber.RuntimeFiber<A, E>) =>
  Effect.gen(function* () {
    for (let second = 0; second < 600; second++) {
      yield* settle
      const exit = yield* Fiber.poll(fiber)
      if (Option.isSome(exit)) return exit.value
      yield* TestClock.adjust("1 second")
    }
    return yield* Effect.dieMessage("the fiber did not finish")
  })

type Scripted = Reply | "fail"

/** An `HttpClient` that answers in turn (then keeps giving the last answer) and counts requests. */
const scripted = (...replies: ReadonlyArray<Scripted>) => {
  const requests: Array<HttpClientRequest.HttpClientRequest> = []
  const client = HttpClient.make((request) => {
    const reply = replies[Math.min(requests.length, replies.length - 1)]
    requests.push(request)
    if (reply === undefined || reply === "hang") return Effect.never
    if (reply === "fail") {
      return Effect.fail(
        new HttpClientError.RequestError({
          request,
          reason: "Transport",
          cause: new Error("connect ECONNREFUSED 127.0.0.1:1")
        })
      )
    }
    const init = { status: reply.status, headers: reply.headers ?? {} }
    return Effect.succeed(HttpClientResponse.fromWeb(request, new Response(reply.body ?? null, init)))
  })
  return { requests, client, layer: providerClientOver(client) }
}

const inTestClock = (
  stub: ReturnType<typeof scripted>,
  settings: Parameters<typeof ProviderClientConfig.layer>[0] = {}
) =>
  Effect.fork(
    requestToken(endpoint({ tokenEndpoint: "https://idp.test/token" }), REFRESH).pipe(
      Effect.provide(Layer.merge(stub.layer, ProviderClientConfig.layer(settings)))
    )
  )

const failureOf = <A>(exit: Exit.Exit<A, ProviderError>): ProviderError => {
  if (Exit.isSuccess(exit)) throw new Error("expected a failure")
  const failure = Cause.failureOption(exit.cause)
  if (Option.isNone(failure)) throw new Error(`expected a ProviderError, got ${Cause.pretty(exit.cause)}`)
  return failure.value
}

describe("retries", () => {
  it.effect("5xx is retried with exponential backoff, then succeeds", () =>
    Effect.gen(function* () {
      const stub = scripted(json(503, {}), json(500, { error: "server_error" }), TOKEN_OK)
      const fiber = yield* inTestClock(stub)
      yield* settle
      expect(stub.requests).toHaveLength(1)
      // The first delay is 500 ms with jitter (400 to 600 ms).
      yield* TestClock.adjust("399 millis")
      yield* settle
      expect(stub.requests).toHaveLength(1)
      yield* TestClock.adjust("201 millis")
      yield* settle
      expect(stub.requests).toHaveLength(2)
      const exit = yield* runToEnd(fiber)
      expect(Exit.isSuccess(exit)).toBe(true)
      expect(stub.requests).toHaveLength(3)
    })
  )

  it.effect("429 honours Retry-After", () =>
    Effect.gen(function* () {
      const stub = scripted(json(429, { error: "rate_limited" }, { "retry-after": "5" }), TOKEN_OK)
      const fiber = yield* inTestClock(stub)
      yield* settle
      expect(stub.requests).toHaveLength(1)
      yield* TestClock.adjust("4999 millis")
      yield* settle
      expect(stub.requests).toHaveLength(1)
      yield* TestClock.adjust("1 millis")
      yield* settle
      expect(stub.requests).toHaveLength(2)
      const exit = yield* Fiber.await(fiber)
      expect(Exit.isSuccess(exit)).toBe(true)
    })
  )

  it.effect("Retry-After as an HTTP date", () =>
    Effect.gen(function* () {
      yield* TestClock.setTime(NOW)
      const later = new Date(NOW + 8_000).toUTCString()
      const stub = scripted({ status: 503, headers: { "retry-after": later } }, TOKEN_OK)
      const fiber = yield* inTestClock(stub)
      yield* settle
      yield* TestClock.adjust("7999 millis")
      yield* settle
      expect(stub.requests).toHaveLength(1)
      yield* TestClock.adjust("1 millis")
      yield* settle
      expect(stub.requests).toHaveLength(2)
      expect(Exit.isSuccess(yield* Fiber.await(fiber))).toBe(true)
    })
  )

  it.effect("a Retry-After beyond the limit is not waited for", () =>
    Effect.gen(function* () {
      const stub = scripted(json(429, {}, { "retry-after": "120" }))
      const error = failureOf(yield* Fiber.await(yield* inTestClock(stub)))
      expect(stub.requests).toHaveLength(1)
      expect(error).toMatchObject({ kind: "transient", status: 429, retryAfterMs: 120_000, attempts: 1 })
      expect(error.message).toContain("retry in 120 seconds")
    })
  )

  it.effect("gives up after the configured number of retries", () =>
    Effect.gen(function* () {
      const stub = scripted(json(503, { error: "temporarily_unavailable" }))
      const error = failureOf(yield* runToEnd(yield* inTestClock(stub)))
      expect(stub.requests).toHaveLength(3)
      expect(error).toMatchObject({ kind: "transient", status: 503, attempts: 3, code: "temporarily_unavailable" })
      expect(error.message).toContain("after 3 attempts")

      const once = scripted(json(503, {}))
      const single = failureOf(yield* runToEnd(yield* inTestClock(once, { retries: 0 })))
      expect(once.requests).toHaveLength(1)
      expect(single.attempts).toBe(1)

      const more = scripted(json(502, {}))
      failureOf(yield* runToEnd(yield* inTestClock(more, { retries: 4, retryBaseDelay: "10 millis" })))
      expect(more.requests).toHaveLength(5)
    })
  )

  it.effect("transport errors are retried", () =>
    Effect.gen(function* () {
      const stub = scripted("fail", "fail", TOKEN_OK)
      const exit = yield* runToEnd(yield* inTestClock(stub))
      expect(Exit.isSuccess(exit)).toBe(true)
      expect(stub.requests).toHaveLength(3)

      const down = scripted("fail")
      const error = failureOf(yield* runToEnd(yield* inTestClock(down)))
      expect(error.reason).toBe("the request failed: connect ECONNREFUSED 127.0.0.1:1")
      expect(error.attempts).toBe(3)
    })
  )

  it.effect("Slack's ok:false ratelimited is retried like a 429", () =>
    Effect.gen(function* () {
      const stub = scripted(json(200, { ok: false, error: "ratelimited" }), TOKEN_OK)
      expect(Exit.isSuccess(yield* runToEnd(yield* inTestClock(stub)))).toBe(true)
      expect(stub.requests).toHaveLength(2)
    })
  )

  it.effect("refusals and invalid answers are not retried", () =>
    Effect.gen(function* () {
      for (const reply of [
        json(400, { error: "invalid_grant" }),
        json(401, { error: "invalid_client" }),
        json(400, { error: "invalid_scope" }),
        json(200, { ok: false, error: "invalid_refresh_token" }),
        { status: 200, body: "<html></html>" },
        json(200, { token_type: "Bearer" })
      ]) {
        const stub = scripted(reply)
        failureOf(yield* runToEnd(yield* inTestClock(stub)))
        expect(stub.requests).toHaveLength(1)
      }
    })
  )
})

describe("timeouts", () => {
  it.effect("each attempt is limited to 10 seconds by default", () =>
    Effect.gen(function* () {
      const stub = scripted("hang")
      const fiber = yield* inTestClock(stub)
      yield* settle
      yield* TestClock.adjust("9999 millis")
      yield* settle
      expect(stub.requests).toHaveLength(1)
      expect(Option.isNone(yield* Fiber.poll(fiber))).toBe(true)
      const error = failureOf(yield* runToEnd(fiber))
      expect(stub.requests).toHaveLength(3)
      expect(error).toMatchObject({ kind: "transient", reason: "timed out after 10s", attempts: 3 })
      expect(error.status).toBeUndefined()
    })
  )

  it.effect("the timeout is configurable, and a slow attempt followed by a quick one succeeds", () =>
    Effect.gen(function* () {
      const stub = scripted("hang", TOKEN_OK)
      const fiber = yield* inTestClock(stub, { timeout: "2 seconds" })
      yield* settle
      yield* TestClock.adjust("2 seconds")
      yield* settle
      expect(Exit.isSuccess(yield* runToEnd(fiber))).toBe(true)
      expect(stub.requests).toHaveLength(2)
    })
  )

  it.effect("a real provider that never answers", () =>
    Effect.gen(function* () {
      answerWith("hang")
      const fiber = yield* Effect.fork(tokenError())
      yield* waitFor(() => received.length === 1)
      yield* TestClock.adjust("10 seconds")
      const error = yield* Fiber.join(fiber)
      expect(error).toMatchObject({ kind: "transient", reason: "timed out after 10s", attempts: 1 })
    })
  )
})

// ---------------------------------------------------------------------------------------------------------------
// Revocation
// ---------------------------------------------------------------------------------------------------------------

describe("revokeToken", () => {
  const revoke = (
    hint: "access_token" | "refresh_token" = "refresh_token",
    overrides: Partial<RevocationEndpoint> = {}
  ) => live(revokeToken(revocation(overrides), Redacted.make(REFRESH_TOKEN), hint))

  it.effect("sends the token and its hint with client authentication; 200 is success", () =>
    Effect.gen(function* () {
      answerWith({ status: 200 })
      yield* revoke()
      const request = only()
      expect(request.path).toBe("/revoke")
      expect(request.headers["content-type"]).toMatch(/^application\/x-www-form-urlencoded/)
      expect(Object.fromEntries(request.form)).toEqual({ token: REFRESH_TOKEN, token_type_hint: "refresh_token" })
      expect(decodeBasic(request.headers.authorization)).toEqual([CLIENT_ID, CLIENT_SECRET])
    })
  )

  it.effect("client_secret_post", () =>
    Effect.gen(function* () {
      answerWith({ status: 200 })
      yield* revoke("access_token", { authMethod: "client_secret_post" })
      expect(Object.fromEntries(only().form)).toEqual({
        token: REFRESH_TOKEN,
        token_type_hint: "access_token",
        client_id: CLIENT_ID,
        client_secret: CLIENT_SECRET
      })
    })
  )

  it.effect("any 2xx is success, whatever the body; so is a token already dead (Google's 400 invalid_token)", () =>
    Effect.gen(function* () {
      for (const reply of [
        { status: 200, body: "" },
        json(200, {}),
        { status: 204 },
        { status: 200, body: "OK", headers: { "content-type": "text/plain" } },
        json(400, { error: "invalid_token", error_description: "Token expired or revoked" }),
        json(200, { ok: false, error: "token_revoked" })
      ]) {
        answerWith(reply)
        yield* revoke()
      }
    })
  )

  it.effect("unsupported_token_type is a distinct error", () =>
    Effect.gen(function* () {
      answerWith(json(400, { error: "unsupported_token_type" }))
      const error = yield* Effect.flip(revoke("access_token"))
      expect(error).toMatchObject({
        kind: "unsupported",
        code: "unsupported_token_type",
        operation: "revocation",
        tokenTypeHint: "access_token",
        status: 400
      })
      expect(error.message).toContain("does not support the revocation of an access token")
      expect(error.message).toContain("this kind of token cannot be revoked there")
      expectNoSecret(error)
    })
  )

  it.effect("invalid_client, a 5xx and an error with HTTP 200 fail", () =>
    Effect.gen(function* () {
      answerWith(json(401, { error: "invalid_client" }))
      expect((yield* Effect.flip(revoke())).kind).toBe("invalid_client")
      answerWith({ status: 503 })
      expect((yield* Effect.flip(revoke())).kind).toBe("transient")
      answerWith(json(200, { ok: false, error: "bad_client_secret" }))
      expect((yield* Effect.flip(revoke())).kind).toBe("invalid_client")
    })
  )

  it.effect("is retried like a token request", () =>
    Effect.gen(function* () {
      const stub = scripted({ status: 503 }, { status: 200 })
      const fiber = yield* Effect.fork(
        revokeToken(
          revocation({ revocationEndpoint: "https://idp.test/revoke" }),
          Redacted.make(REFRESH_TOKEN),
          "refresh_token"
        ).pipe(Effect.provide(stub.layer))
      )
      expect(Exit.isSuccess(yield* runToEnd(fiber))).toBe(true)
      expect(stub.requests).toHaveLength(2)
    })
  )
})

// ---------------------------------------------------------------------------------------------------------------
// Hosts that resolve to link-local or metadata addresses
// ---------------------------------------------------------------------------------------------------------------

describe("an endpoint whose host resolves to a link-local or metadata address", () => {
  // Made-up names and a fake resolver: what a DNS record pointing at the metadata service would give.
  const resolving =
    (addresses: Readonly<Record<string, ReadonlyArray<string>>>): Lookup =>
    (hostname) => {
      const found = addresses[hostname]
      return found === undefined ? Effect.fail(new Error(`ENOTFOUND ${hostname}`)) : Effect.succeed(found)
    }
  const RESOLVER = resolving({
    "metadata.evil.test": ["93.184.216.34", "169.254.169.254"],
    "v6.evil.test": ["fe80::1"],
    "aws6.evil.test": ["fd00:ec2::254"],
    "idp.test": ["192.0.2.1"],
    "internal.test": ["169.254.10.10"],
    localhost: ["169.254.1.1"]
  })
  const clientWith = (
    stub: ReturnType<typeof scripted>,
    options: { readonly allowedHosts?: ReadonlySet<string> } = {}
  ): Layer.Layer<ProviderClient> =>
    Layer.effect(ProviderClient, makeProviderClient({ lookup: RESOLVER, ...options })).pipe(
      Layer.provide(Layer.succeed(HttpClient.HttpClient, stub.client))
    )

  it.effect("is refused before anything is sent, naming the endpoint's field, and logged", () => {
    const lines: Array<string> = []
    const logger = Logger.make(({ message }) => {
      lines.push(Array.isArray(message) ? message.map(String).join(" ") : String(message))
    })
    return Effect.gen(function* () {
      const stub = scripted(TOKEN_OK)
      for (const host of ["metadata.evil.test", "v6.evil.test", "aws6.evil.test", "169.254.169.254"]) {
        const error = yield* Effect.flip(
          requestToken(endpoint({ tokenEndpoint: `https://${host}/token` }), REFRESH).pipe(
            Effect.provide(clientWith(stub))
          )
        )
        expect(error).toMatchObject({ _tag: "ProviderError", kind: "other", operation: "token", attempts: 0 })
        expect(error.reason).toContain("tokenEndpoint")
        expect(error.reason).toContain("link-local or cloud metadata address")
        expectNoSecret(error)
      }
      const revoked = yield* Effect.flip(
        revokeToken(
          revocation({ revocationEndpoint: "https://metadata.evil.test/revoke" }),
          Redacted.make(REFRESH_TOKEN),
          "refresh_token"
        ).pipe(Effect.provide(clientWith(stub)))
      )
      expect(revoked.reason).toContain("revocationEndpoint metadata.evil.test resolves to 169.254.169.254")
      expect(stub.requests).toHaveLength(0)
      expect(lines.filter((line) => line.includes("a provider request was not sent"))).toHaveLength(5)
    }).pipe(Effect.provide(Logger.replace(Logger.defaultLogger, logger)), Logger.withMinimumLogLevel(LogLevel.All))
  })

  it.effect("loopback, allowed hosts, public addresses and names that do not resolve are asked as before", () =>
    Effect.gen(function* () {
      const stub = scripted(TOKEN_OK)
      const ask = (host: string, allowedHosts?: ReadonlySet<string>) =>
        requestToken(endpoint({ tokenEndpoint: `https://${host}/token` }), REFRESH).pipe(
          Effect.provide(clientWith(stub, allowedHosts === undefined ? {} : { allowedHosts }))
        )
      yield* ask("idp.test")
      // Loopback and allowed hosts are trusted as the configuration's policy trusts them: not even resolved.
      yield* ask("localhost")
      yield* ask("internal.test", new Set(["internal.test"]))
      // The HTTP client reports a name that does not resolve, as it always has.
      yield* ask("unknown.test")
      expect(stub.requests).toHaveLength(4)
    })
  )
})

// ---------------------------------------------------------------------------------------------------------------
// Against a real authorization server
// ---------------------------------------------------------------------------------------------------------------

describe("against oidc-provider", () => {
  const RESOURCE = "https://api.test/a"
  let oauth: OAuthProviderHarness

  beforeAll(async () => {
    oauth = await startOAuthProvider()
  })
  afterAll(async () => {
    await oauth?.close()
  })

  const at = (client: "broker" | "brokerPost" = "broker", secret?: string): ProviderEndpoint => {
    const credentials = oauth.clients[client]
    return {
      tokenEndpoint: oauth.tokenEndpoint,
      clientId: credentials.clientId,
      clientSecret: Redacted.make(secret ?? credentials.clientSecret),
      authMethod: credentials.authMethod,
      defaultLifetimeSeconds: 300
    }
  }
  const revocationAt = (): RevocationEndpoint => ({ ...at(), revocationEndpoint: oauth.revocationEndpoint })
  const run = <A, E>(effect: Effect.Effect<A, E, ProviderClient>) => live(effect)

  it.effect("client_credentials with a resource and a scope, with either authentication method", () =>
    Effect.gen(function* () {
      for (const client of ["broker", "brokerPost"] as const) {
        const result = yield* run(
          requestToken(at(client), { type: "client_credentials", resource: [RESOURCE], scope: ["api:read"] })
        )
        expect(result).toMatchObject({ tokenType: "Bearer", scope: "api:read", expiresAt: NOW + 60_000 })
        const introspection = yield* Effect.promise(() => oauth.introspect(Redacted.value(result.accessToken)))
        expect(introspection).toMatchObject({ active: true, aud: RESOURCE })
      }
    })
  )

  it.effect("its refusals map to invalid_target, invalid_scope and invalid_client", () =>
    Effect.gen(function* () {
      const target = yield* Effect.flip(
        run(requestToken(at(), { type: "client_credentials", resource: ["https://elsewhere.test/x"] }))
      )
      expect(target).toMatchObject({ kind: "invalid_target", status: 400, code: "invalid_target" })
      const scope = yield* Effect.flip(
        run(requestToken(at(), { type: "client_credentials", resource: [RESOURCE], scope: [DISALLOWED_SCOPE] }))
      )
      expect(scope).toMatchObject({ kind: "invalid_scope", status: 400 })
      for (const client of ["broker", "brokerPost"] as const) {
        const wrong = yield* Effect.flip(
          run(requestToken(at(client, CLIENT_SECRET), { type: "client_credentials", resource: [RESOURCE] }))
        )
        expect(wrong).toMatchObject({ kind: "invalid_client", status: 401, code: "invalid_client" })
        expectNoSecret(wrong)
      }
    })
  )

  it.effect("a rotated refresh token, reused, is invalid_grant", () =>
    Effect.gen(function* () {
      const seeded = yield* Effect.promise(() =>
        oauth.seedUserGrant({ accountId: "user-1", scope: "openid offline_access api:read", resource: RESOURCE })
      )
      const first = yield* run(
        requestToken(at(), { type: "refresh_token", refreshToken: Redacted.make(seeded.refreshToken) })
      )
      expect(first.refreshToken).toBeDefined()
      expect(first.idToken).toBeDefined()
      expect(first.scope).toBe("api:read")
      const reuse = yield* Effect.flip(
        run(requestToken(at(), { type: "refresh_token", refreshToken: Redacted.make(seeded.refreshToken) }))
      )
      expect(reuse).toMatchObject({ kind: "invalid_grant", status: 400, code: "invalid_grant" })
      expect(reuse.message).toContain("the user must authorize again")
      for (const text of renderings(reuse)) expect(text).not.toContain(seeded.refreshToken)
    })
  )

  it.effect("the authorization code flow with PKCE, then the code reused", () =>
    Effect.gen(function* () {
      const verifier = randomBytes(32).toString("base64url")
      const url = new URL(oauth.authorizationEndpoint)
      url.search = new URLSearchParams({
        client_id: "broker",
        response_type: "code",
        redirect_uri: "http://127.0.0.1/callback",
        scope: "openid offline_access api:read",
        resource: RESOURCE,
        prompt: "consent",
        state: "s",
        code_challenge: createHash("sha256").update(verifier).digest("base64url"),
        code_challenge_method: "S256"
      }).toString()
      const callback = yield* Effect.promise(() => oauth.completeAuthorization(url.href, { accountId: "alice" }))
      const code = callback.searchParams.get("code") ?? ""
      const grant: Grant = {
        type: "authorization_code",
        code: Redacted.make(code),
        redirectUri: "http://127.0.0.1/callback",
        codeVerifier: Redacted.make(verifier)
      }
      const result = yield* run(requestToken(at(), grant))
      expect(result.refreshToken).toBeDefined()
      const reused = yield* Effect.flip(run(requestToken(at(), grant)))
      expect(reused.kind).toBe("invalid_grant")
      for (const text of renderings(reused)) {
        expect(text).not.toContain(code)
        expect(text).not.toContain(verifier)
      }
    })
  )

  it.effect("token exchange", () =>
    Effect.gen(function* () {
      const refreshToken = yield* Effect.promise(() =>
        oauth.seedUserRefreshToken({ accountId: "user-9", scope: "offline_access api:read", resource: RESOURCE })
      )
      const user = yield* run(requestToken(at(), { type: "refresh_token", refreshToken: Redacted.make(refreshToken) }))
      const exchanged = yield* run(
        requestToken(at(), {
          type: "token_exchange",
          subjectToken: user.accessToken,
          subjectTokenType: ACCESS_TOKEN_TYPE,
          audience: ["https://api.test/b"],
          scope: ["api:read"]
        })
      )
      expect(exchanged).toMatchObject({ issuedTokenType: ACCESS_TOKEN_TYPE, tokenType: "Bearer", scope: "api:read" })
    })
  )

  it.effect("revocation of an access token and of a refresh token", () =>
    Effect.gen(function* () {
      const issued = yield* run(requestToken(at(), { type: "client_credentials", resource: [RESOURCE] }))
      yield* run(revokeToken(revocationAt(), issued.accessToken, "access_token"))
      const introspection = yield* Effect.promise(() => oauth.introspect(Redacted.value(issued.accessToken)))
      expect(introspection.active).toBe(false)

      const refreshToken = Redacted.make(
        yield* Effect.promise(() =>
          oauth.seedUserRefreshToken({ accountId: "user-4", scope: "offline_access api:read" })
        )
      )
      yield* run(revokeToken(revocationAt(), refreshToken, "refresh_token"))
      const after = yield* Effect.flip(run(requestToken(at(), { type: "refresh_token", refreshToken })))
      expect(after.kind).toBe("invalid_grant")
      // Revoking again is still success: the token is unknown now.
      yield* run(revokeToken(revocationAt(), refreshToken, "refresh_token"))
    })
  )
})
