/**
 * The Connect client: gets short-lived provider tokens from a Connect server
 * (a self-hosted effect-connect broker, or Vercel Connect), caches them, revokes
 * them, and starts user authorizations and reads their status.
 *
 * @since 0.1.0
 */
import * as FetchHttpClient from "@effect/platform/FetchHttpClient"
import * as HttpClient from "@effect/platform/HttpClient"
import {
  Clock,
  Config,
  ConfigError,
  Context,
  Duration,
  Effect,
  Either,
  Exit,
  type Fiber,
  Layer,
  Option,
  Redacted,
  Schema,
  type Scope
} from "effect"
import {
  type AuthorizationOptions,
  AuthorizationOptions as AuthorizationOptionsSchema,
  AuthorizationRequest,
  AuthorizationResponse,
  AuthorizationStatus,
  AuthorizationStatusRequest,
  type InstallationOptions,
  InstallationOptions as InstallationOptionsSchema,
  InstallationRequest
} from "./Authorization.js"
import { ConfigurationError, type ConnectError, InvalidRequest } from "./ConnectError.js"
import { ConnectorMetadata } from "./Connector.js"
import { type CacheKey, cacheKey, scopeId, subjectId } from "./internal/cacheKey.js"
import { LastRequest } from "./internal/lastRequest.js"
import { describeParseError } from "./internal/schema.js"
import { cacheHits, GET_TOKEN_SPAN, type GetTokenOutcome, nativeTracer } from "./internal/telemetry.js"
import { makeTransport, type Transport } from "./internal/transport.js"
import type * as Protocol from "./Protocol.js"
import { routes } from "./Protocol.js"
import { RevocationSummary, type RevokeParams, RevokeParams as RevokeParamsSchema } from "./Revocation.js"
import {
  DefaultScopes,
  TokenParams,
  TokenRequest,
  type TokenResponse,
  TokenResponse as TokenResponseSchema
} from "./Token.js"
import { DEFAULT_REFRESH_AHEAD_MS, make as makeTokenCache, TokenCache, type TokenCacheService } from "./TokenCache.js"

/**
 * The base URL of Vercel Connect.
 *
 * @since 0.1.0
 * @category constants
 */
export const VERCEL_API_URL = "https://api.vercel.com"

/**
 * The default validity buffer: a cached token is served while it has more than
 * 30 seconds left.
 *
 * @since 0.1.0
 * @category constants
 */
export const DEFAULT_VALIDITY_BUFFER_MS = 30_000

/**
 * How a client reaches its server.
 *
 * @since 0.1.0
 * @category models
 */
export interface ConnectClientOptions {
  /** The server: `https://api.vercel.com`, or a broker such as `http://127.0.0.1:4100`. */
  readonly baseUrl: string
  /** The caller credential sent as a bearer token. */
  readonly token: Redacted.Redacted<string>
  /**
   * Where the token comes from, named in the error when the server rejects it
   * (`CONNECT_TOKEN`, `VERCEL_OIDC_TOKEN` from `layerConfig`); default
   * `ConnectClient.layer`, a token given in code.
   */
  readonly credentialSource?: string | undefined
  /** The limit of one HTTP attempt (default 10 seconds). */
  readonly timeout?: Duration.DurationInput | undefined
  /** How many times a transient failure is retried (default 3). */
  readonly retries?: number | undefined
  /** The first retry delay, doubled each time, with jitter (default 200 ms). */
  readonly retryBaseDelay?: Duration.DurationInput | undefined
  /** The longest `Retry-After` the client waits for before giving up (default 60 seconds). */
  readonly maxRetryAfter?: Duration.DurationInput | undefined
  /** The validity buffer when a call gives none (default 30 000 ms). */
  readonly validityBufferMs?: number | undefined
  /**
   * How long before the validity buffer a hit renews its token in the
   * background (default 5 minutes, and at most a quarter of the token's
   * lifetime); `false` turns refresh-ahead off.
   */
  readonly refreshAhead?: Duration.DurationInput | false | undefined
}

/**
 * Per-call options of `getToken`.
 *
 * @since 0.1.0
 * @category models
 */
export interface GetTokenOptions {
  /** Skip the cache: ask the server, and replace the cached entry with the answer. */
  readonly forceRefresh?: boolean | undefined
}

/**
 * The operations of a Connect client.
 *
 * @since 0.1.0
 * @category models
 */
export interface ConnectClientService {
  /** The server this client talks to. */
  readonly baseUrl: string
  /** A token response for the request, from the cache while it is fresh. */
  readonly getTokenResponse: (
    connector: string,
    params: TokenParams,
    options?: GetTokenOptions
  ) => Effect.Effect<TokenResponse, ConnectError>
  /** The access token alone. */
  readonly getToken: (
    connector: string,
    params: TokenParams,
    options?: GetTokenOptions
  ) => Effect.Effect<Redacted.Redacted<string>, ConnectError>
  /** Revokes issued tokens and drops the matching cache entries. */
  readonly revokeToken: (connector: string, params: RevokeParams) => Effect.Effect<RevocationSummary, ConnectError>
  /** Drops the one cache entry that `getToken(connector, params)` would serve. */
  readonly deleteTokenCacheEntry: (connector: string, params: TokenParams) => Effect.Effect<void, InvalidRequest>
  /** Starts a user authorization; send the user to the answer's `url`. */
  readonly startAuthorization: (
    connector: string,
    params: TokenParams,
    options?: AuthorizationOptions
  ) => Effect.Effect<AuthorizationResponse, ConnectError>
  /**
   * Starts an installation of a connector for a tenant (a workspace, an
   * organization): send its admin to the answer's `url`; the status tells
   * the `installationId` it made.
   */
  readonly startInstallation: (
    connector: string,
    options?: InstallationOptions
  ) => Effect.Effect<AuthorizationResponse, ConnectError>
  /** The status of an authorization this caller started: its `request` and `verifier`, from the start's answer. */
  readonly authorizationStatus: (
    request: string,
    verifier: Redacted.Redacted<string>
  ) => Effect.Effect<AuthorizationStatus, ConnectError>
  /** The connector's public metadata. */
  readonly getConnectorMetadata: (connector: string) => Effect.Effect<ConnectorMetadata, ConnectError>
  /**
   * The fresh cached response for a request at `nowMs`, synchronously, or
   * `undefined` (a miss, or a request that is not well formed). For adapters
   * that answer a hit without entering the Effect runtime.
   */
  readonly unsafeCachedResponse: (connector: unknown, params: unknown, nowMs: number) => TokenResponse | undefined
}

const identity = <A>(a: A): A => a
const tokenOf = (response: TokenResponse): Redacted.Redacted<string> => response.token

const invalidRequest = (connector: string | undefined, path: string, message: string) =>
  new InvalidRequest({ issues: [{ path, message }], ...(connector === undefined ? {} : { connector }) })

const validate = <A, I>(schema: Schema.Schema<A, I>, value: unknown, path: string, connector?: string) =>
  Schema.validate(schema, { errors: "all" })(value).pipe(
    Effect.mapError(
      (error) =>
        new InvalidRequest({
          issues: describeParseError(error, path),
          ...(connector === undefined ? {} : { connector })
        })
    )
  )

const validateConnector = (connector: unknown): Effect.Effect<string, InvalidRequest> =>
  typeof connector === "string" && connector.trim().length > 0
    ? Effect.succeed(connector)
    : Effect.fail(invalidRequest(undefined, "connector", "Expected a connector uid or id (a non-empty string)"))

// The configured value is never echoed: a URL can carry credentials.
const toBaseUrl = (value: string): Either.Either<string, ConfigurationError> => {
  let url: URL
  try {
    url = new URL(value)
  } catch {
    return Either.left(
      new ConfigurationError({ detail: "the server URL is not an absolute URL (http:// or https://)" })
    )
  }
  if (url.protocol !== "https:" && url.protocol !== "http:") {
    return Either.left(
      new ConfigurationError({ detail: `the server URL must be http:// or https://, not ${url.protocol}` })
    )
  }
  if (url.username !== "" || url.password !== "") {
    return Either.left(
      new ConfigurationError({
        detail: "the server URL must not carry credentials: give the caller credential as the token (CONNECT_TOKEN)"
      })
    )
  }
  if (url.search !== "" || url.hash !== "") {
    return Either.left(
      new ConfigurationError({ detail: `the server URL ${url.origin} must not have a query or fragment` })
    )
  }
  return Either.right(url.href.replace(/\/+$/, ""))
}

/** Whether a revocation of (connector, subject, installation) covers a cache entry. */
const revocationMatches =
  (connector: string, subject: string | undefined, installationId: string | undefined) =>
  (key: CacheKey, response: TokenResponse | undefined): boolean => {
    const sameConnector =
      key.connector === connector || response?.connector.uid === connector || response?.connector.id === connector
    if (!sameConnector) return false
    if (subject !== undefined && key.subject !== subject) return false
    // An entry cached without an installation may be the one revoked.
    if (installationId !== undefined && key.installationId !== undefined && key.installationId !== installationId) {
      return response?.installationId === installationId
    }
    return true
  }

/** The method and path of a call to one of the protocol's routes. */
const at = <M extends Protocol.Method, P extends `/${string}`>(
  route: Protocol.Route<M, P>,
  params: Parameters<Protocol.Route<M, P>["path"]>[0]
) => ({ method: route.method, path: route.path(params) })

/** What the operations of one client share. */
interface ClientContext {
  readonly transport: Transport
  readonly cache: TokenCacheService
  /** The server and a digest of the credential: tokens never cross callers. */
  readonly scope: string
  /** The validity buffer when a call gives none. */
  readonly defaultBuffer: number
  /** The longest refresh-ahead window (0: off). */
  readonly refreshAheadMs: number
}

/** The checked options of a client: its server, retries and default buffer. */
const checkOptions = (options: ConnectClientOptions) =>
  Effect.gen(function* () {
    const baseUrl = yield* toBaseUrl(options.baseUrl)
    const retries = options.retries ?? 3
    if (!Number.isInteger(retries) || retries < 0) {
      return yield* new ConfigurationError({ detail: `retries must be a whole number of at least 0, got ${retries}` })
    }
    const defaultBuffer = options.validityBufferMs ?? DEFAULT_VALIDITY_BUFFER_MS
    if (!Number.isFinite(defaultBuffer) || defaultBuffer < 0) {
      return yield* new ConfigurationError({ detail: `validityBufferMs must be at least 0, got ${defaultBuffer}` })
    }
    const refreshAheadMs = yield* refreshAheadOf(options.refreshAhead)
    return { baseUrl, retries, defaultBuffer, refreshAheadMs }
  })

/** The refresh-ahead window of the options in milliseconds (0: off). */
const refreshAheadOf = (refreshAhead: ConnectClientOptions["refreshAhead"]) => {
  if (refreshAhead === false) return Effect.succeed(0)
  if (refreshAhead === undefined) return Effect.succeed(DEFAULT_REFRESH_AHEAD_MS)
  const decoded = Duration.decodeUnknown(refreshAhead)
  return decoded._tag === "Some"
    ? Effect.succeed(Duration.toMillis(decoded.value))
    : Effect.fail(new ConfigurationError({ detail: `refreshAhead must be a duration or false, got ${refreshAhead}` }))
}

/** Asks the server for a token. */
const fetchToken = (transport: Transport, connector: string, params: TokenParams) =>
  Effect.suspend(() =>
    transport.send({
      ...at(routes.token, { connector }),
      connector,
      body: Schema.encodeSync(TokenRequest)({
        subject: params.subject,
        ...(params.installationId === undefined ? {} : { installationId: params.installationId }),
        scopes: params.scopes ?? DefaultScopes,
        ...(params.resources === undefined ? {} : { resources: params.resources }),
        ...(params.authorizationDetails === undefined ? {} : { authorizationDetails: params.authorizationDetails }),
        ...(params.audience === undefined ? {} : { audience: params.audience })
      }),
      response: TokenResponseSchema
    })
  )

/** The slow path of a token: validates the request, then the cache (or the server through it) answers. */
const fetchThroughCache = (ctx: ClientContext, connector: unknown, params: unknown, forceRefresh: boolean) =>
  Effect.gen(function* () {
    const validConnector = yield* validateConnector(connector)
    const validParams = yield* validate(TokenParams, params, "params", validConnector)
    const key = cacheKey(ctx.scope, validConnector, validParams)
    if (key === undefined) {
      return yield* invalidRequest(validConnector, "params", "Expected plain JSON data")
    }
    return yield* ctx.cache.get(key, fetchToken(ctx.transport, validConnector, validParams), {
      bufferMs: validParams.validityBufferMs ?? ctx.defaultBuffer,
      forceRefresh,
      refreshAheadMs: ctx.refreshAheadMs
    })
  })

/** The subject type of a request, when it has a well-formed one (a span attribute: never the subject's id). */
const subjectTypeOf = (params: unknown): string | undefined => {
  const subject = typeof params === "object" && params !== null ? (params as { subject?: unknown }).subject : undefined
  const type = typeof subject === "object" && subject !== null ? (subject as { type?: unknown }).type : undefined
  return typeof type === "string" ? type : undefined
}

/**
 * The span of one token request: connector, subject type, outcome (`hit`,
 * `refreshed_ahead`, `miss`, `joined`) and error tag.
 */
const withGetTokenSpan = <A>(
  effect: Effect.Effect<A, ConnectError>,
  connector: unknown,
  params: unknown,
  outcome: GetTokenOutcome | undefined
): Effect.Effect<A, ConnectError> => {
  const subjectType = subjectTypeOf(params)
  return effect.pipe(
    Effect.tapError((error) => Effect.annotateCurrentSpan("error.type", error._tag)),
    Effect.withSpan(GET_TOKEN_SPAN, {
      kind: "internal",
      captureStackTrace: false,
      attributes: {
        ...(typeof connector === "string" ? { "connect.connector": connector } : {}),
        ...(subjectType === undefined ? {} : { "connect.subject.type": subjectType }),
        ...(outcome === undefined ? {} : { "connect.outcome": outcome })
      }
    })
  )
}

/**
 * `Exit.succeed(project(response))`, built once per cached response: the
 * hits that follow return the same Exit, an effect the runtime answers at once.
 */
const succeedOnce = <A>(project: (response: TokenResponse) => A) => {
  let answered: TokenResponse | undefined
  let exit: Exit.Exit<A> | undefined
  return (response: TokenResponse): Exit.Exit<A> => {
    if (response !== answered || exit === undefined) {
      answered = response
      exit = Exit.succeed(project(response))
    }
    return exit
  }
}

/** A token operation run by a fiber that already has the client in hand. */
type TokenOperation<A> = (
  fiber: Fiber.RuntimeFiber<unknown, unknown>,
  connector: string,
  params: TokenParams,
  options: GetTokenOptions | undefined
) => Effect.Effect<A, ConnectError>

/** The token operations of the clients `make` built, for the module-level `getToken` and `getTokenResponse`. */
interface FiberOperations {
  readonly fiberGetToken: TokenOperation<Redacted.Redacted<string>>
  readonly fiberGetTokenResponse: TokenOperation<TokenResponse>
}

// The module-level operations find a client in the fiber's context and call
// these in the same step: a hit costs two steps of the run loop, not four.
const fiberOperations = new WeakMap<ConnectClientService, FiberOperations>()

/**
 * The token operations of a client. Closures over the context's fields, not
 * module-level functions: the cache hit is the benchmarked path.
 */
const tokenOperations = (
  ctx: ClientContext
): Pick<ConnectClientService, "getTokenResponse" | "getToken" | "unsafeCachedResponse"> & FiberOperations => {
  const { cache, refreshAheadMs } = ctx
  const last = new LastRequest(ctx.scope, ctx.defaultBuffer)

  const unsafeCachedResponse = (connector: unknown, params: unknown, nowMs: number): TokenResponse | undefined => {
    const keyed = last.keyOf(connector, params)
    return keyed === undefined ? undefined : cache.unsafeGetFresh(keyed.key.id, nowMs, keyed.bufferMs, refreshAheadMs)
  }

  // The one fast path of getToken and getTokenResponse: a fresh hit is answered
  // synchronously, without validation or another fiber; `project` and `exitOf`
  // pick what the caller returns. No span either while the tracer is Effect's
  // own (no tracing layer provided). The clock is the fiber's, so TestClock
  // drives expiry.
  const throughCache = <A>(project: (response: TokenResponse) => A): TokenOperation<A> => {
    const exitOf = succeedOnce(project)
    return (fiber, connector, params, getOptions) => {
      const traced = fiber.currentTracer !== nativeTracer
      if (getOptions?.forceRefresh !== true) {
        const nowMs = Context.get(fiber.currentDefaultServices, Clock.Clock).unsafeCurrentTimeMillis()
        const hit = unsafeCachedResponse(connector, params, nowMs)
        if (hit !== undefined) {
          cacheHits.unsafeUpdate(1, [])
          return traced
            ? withGetTokenSpan(exitOf(hit), connector, params, cache.lastHitRefreshedAhead ? "refreshed_ahead" : "hit")
            : exitOf(hit)
        }
      }
      const fetched = Effect.map(fetchThroughCache(ctx, connector, params, getOptions?.forceRefresh === true), project)
      return traced ? withGetTokenSpan(fetched, connector, params, undefined) : fetched
    }
  }
  const fiberGetToken = throughCache(tokenOf)
  const fiberGetTokenResponse = throughCache(identity)

  return {
    getTokenResponse: (connector, params, getOptions) =>
      Effect.withFiberRuntime((fiber) => fiberGetTokenResponse(fiber, connector, params, getOptions)),
    getToken: (connector, params, getOptions) =>
      Effect.withFiberRuntime((fiber) => fiberGetToken(fiber, connector, params, getOptions)),
    unsafeCachedResponse,
    fiberGetToken,
    fiberGetTokenResponse
  }
}

/** Revokes issued tokens at the server and drops the matching cache entries. */
const revokeWith = (ctx: ClientContext, connector: string, params: RevokeParams) =>
  Effect.gen(function* () {
    const validConnector = yield* validateConnector(connector)
    const validParams = yield* validate(RevokeParamsSchema, params, "params", validConnector)
    const matches = revocationMatches(
      validConnector,
      validParams.subject === undefined ? undefined : subjectId(validParams.subject),
      validParams.installationId
    )
    // Before: requests under way stay out of the cache. After: so do the
    // ones that started while the revocation was on its way.
    yield* ctx.cache.invalidate(matches)
    const summary = yield* ctx.transport.send({
      ...at(routes.revokeTokens, { connector: validConnector }),
      connector: validConnector,
      body: Schema.encodeSync(RevokeParamsSchema)(validParams),
      response: RevocationSummary,
      empty: {}
    })
    yield* ctx.cache.invalidate(matches)
    return summary
  })

/** Drops the one cache entry a token request would be served from. */
const deleteCacheEntryWith = (ctx: ClientContext, connector: string, params: TokenParams) =>
  Effect.gen(function* () {
    const validConnector = yield* validateConnector(connector)
    const validParams = yield* validate(TokenParams, params, "params", validConnector)
    const key = cacheKey(ctx.scope, validConnector, validParams)
    if (key !== undefined) yield* ctx.cache.invalidate((candidate) => candidate.id === key.id)
  })

/** Starts a user authorization at the server. */
const startAuthorizationWith = (
  transport: Transport,
  connector: string,
  params: TokenParams,
  authOptions?: AuthorizationOptions
) =>
  Effect.gen(function* () {
    const validConnector = yield* validateConnector(connector)
    const validParams = yield* validate(TokenParams, params, "params", validConnector)
    const validOptions = yield* validate(AuthorizationOptionsSchema, authOptions ?? {}, "options", validConnector)
    const { validityBufferMs: _buffer, ...fields } = validParams
    const { callbackUrl, ...rest } = validOptions
    return yield* transport.send({
      ...at(routes.authorize, { connector: validConnector }),
      connector: validConnector,
      body: Schema.encodeSync(AuthorizationRequest)({
        ...fields,
        scopes: fields.scopes ?? DefaultScopes,
        ...(callbackUrl === undefined ? {} : { returnUrl: callbackUrl }),
        ...rest
      }),
      response: AuthorizationResponse
    })
  })

/** Starts an installation of a connector at the server. */
const startInstallationWith = (transport: Transport, connector: string, installOptions?: InstallationOptions) =>
  Effect.gen(function* () {
    const validConnector = yield* validateConnector(connector)
    const valid = yield* validate(InstallationOptionsSchema, installOptions ?? {}, "options", validConnector)
    const { callbackUrl, ...rest } = valid
    return yield* transport.send({
      ...at(routes.install, { connector: validConnector }),
      connector: validConnector,
      body: Schema.encodeSync(InstallationRequest)({
        ...rest,
        ...(callbackUrl === undefined ? {} : { returnUrl: callbackUrl })
      }),
      response: AuthorizationResponse
    })
  })

/** The `request` and `verifier` of a status call, checked. */
const checkStatusRequest = (request: string, verifier: Redacted.Redacted<string>) =>
  Effect.gen(function* () {
    if (typeof request !== "string" || request.trim().length === 0) {
      return yield* invalidRequest(undefined, "request", "Expected the request startAuthorization answered")
    }
    if (!Redacted.isRedacted(verifier)) {
      return yield* invalidRequest(undefined, "verifier", "Expected the verifier startAuthorization answered")
    }
    const secret: unknown = Redacted.value(verifier)
    if (typeof secret !== "string" || secret.length === 0) {
      return yield* invalidRequest(undefined, "verifier", "Expected the verifier startAuthorization answered")
    }
  })

/** The status of an authorization, from the server. */
const authorizationStatusWith = (transport: Transport, request: string, verifier: Redacted.Redacted<string>) =>
  Effect.gen(function* () {
    yield* checkStatusRequest(request, verifier)
    return yield* transport
      .send({
        ...at(routes.authorizationStatus, { request }),
        // No connector: the request names it.
        connector: "",
        body: Schema.encodeSync(AuthorizationStatusRequest)({ verifier }),
        response: AuthorizationStatus
      })
      .pipe(
        // `not_found` here is about the request (or the endpoint), not a connector.
        Effect.catchTag("ConnectorNotFound", (error) =>
          Effect.fail(
            new InvalidRequest({
              issues: [
                {
                  path: "request",
                  message: `the server found no authorization request "${request}" (or has no status endpoint)`
                }
              ],
              ...(error.status === undefined ? {} : { status: error.status })
            })
          )
        )
      )
  })

/** A connector's public metadata, from the server. */
const connectorMetadataWith = (transport: Transport, connector: string) =>
  Effect.flatMap(validateConnector(connector), (validConnector) =>
    transport.send({
      ...at(routes.connector, { connector: validConnector }),
      connector: validConnector,
      response: ConnectorMetadata
    })
  )

/**
 * Makes a client from its options, with the `HttpClient` and `TokenCache` in
 * context.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (
  options: ConnectClientOptions
): Effect.Effect<ConnectClientService, ConfigurationError, HttpClient.HttpClient | TokenCache> =>
  Effect.gen(function* () {
    const { baseUrl, retries, defaultBuffer, refreshAheadMs } = yield* checkOptions(options)
    const http = yield* HttpClient.HttpClient
    const cache = yield* TokenCache
    const transport = makeTransport(http, {
      baseUrl,
      token: options.token,
      credentialSource: options.credentialSource ?? "ConnectClient.layer",
      timeout: Duration.decode(options.timeout ?? "10 seconds"),
      retries,
      retryBaseDelay: Duration.decode(options.retryBaseDelay ?? "200 millis"),
      maxRetryAfter: Duration.decode(options.maxRetryAfter ?? "60 seconds")
    })
    const ctx: ClientContext = {
      transport,
      cache,
      scope: scopeId(baseUrl, Redacted.value(options.token)),
      defaultBuffer,
      refreshAheadMs
    }
    const tokens = tokenOperations(ctx)

    const client = {
      baseUrl,
      getTokenResponse: tokens.getTokenResponse,
      getToken: tokens.getToken,
      revokeToken: (connector, params) => revokeWith(ctx, connector, params),
      deleteTokenCacheEntry: (connector, params) => deleteCacheEntryWith(ctx, connector, params),
      startAuthorization: (connector, params, authOptions) =>
        startAuthorizationWith(transport, connector, params, authOptions),
      startInstallation: (connector, installOptions) => startInstallationWith(transport, connector, installOptions),
      authorizationStatus: (request, verifier) => authorizationStatusWith(transport, request, verifier),
      getConnectorMetadata: (connector) => connectorMetadataWith(transport, connector),
      unsafeCachedResponse: tokens.unsafeCachedResponse
    } satisfies ConnectClientService
    fiberOperations.set(client, tokens)
    return client
  })

const nonEmpty = (name: string) =>
  Config.option(Config.string(name)).pipe(
    Config.map(Option.flatMap((value) => (value.trim().length === 0 ? Option.none() : Option.some(value.trim()))))
  )

/**
 * `CONNECT_REFRESH_AHEAD`: a duration (`"2 minutes"`, or milliseconds), or
 * `false`/`off` to turn refresh-ahead off; unset keeps the default.
 *
 * @since 0.1.0
 * @category config
 */
export const refreshAheadConfig: Config.Config<Option.Option<Duration.Duration | false>> = nonEmpty(
  "CONNECT_REFRESH_AHEAD"
).pipe(
  Config.mapOrFail(
    Option.match({
      onNone: () => Either.right(Option.none()),
      onSome: (value) => {
        if (/^(false|off)$/i.test(value)) return Either.right(Option.some(false as const))
        const duration = /^\d+$/.test(value)
          ? Option.some(Duration.millis(Number(value)))
          : Duration.decodeUnknown(value)
        return Option.isSome(duration)
          ? Either.right(Option.some(duration.value))
          : Either.left(
              ConfigError.InvalidData(
                ["CONNECT_REFRESH_AHEAD"],
                `Expected a duration ("2 minutes", or milliseconds) or false, got ${value}`
              )
            )
      }
    })
  )
)

/**
 * The client options from the environment: `CONNECT_URL` and `CONNECT_TOKEN`
 * for a self-hosted broker; otherwise `VERCEL_OIDC_TOKEN` with Vercel Connect
 * (`https://api.vercel.com`, or `CONNECT_URL` when set); `CONNECT_REFRESH_AHEAD`.
 *
 * @since 0.1.0
 * @category config
 */
export const optionsFromConfig: Effect.Effect<ConnectClientOptions, ConfigurationError> = Effect.gen(function* () {
  const read = yield* Config.all({
    url: nonEmpty("CONNECT_URL"),
    token: nonEmpty("CONNECT_TOKEN"),
    oidc: nonEmpty("VERCEL_OIDC_TOKEN"),
    refreshAhead: refreshAheadConfig
  }).pipe(Effect.mapError((error) => new ConfigurationError({ detail: String(error) })))
  const resolved = yield* resolveOptions({
    url: Option.getOrUndefined(read.url),
    token: Option.getOrUndefined(read.token),
    oidc: Option.getOrUndefined(read.oidc)
  })
  return Option.isSome(read.refreshAhead) ? { ...resolved, refreshAhead: read.refreshAhead.value } : resolved
})

/**
 * Chooses the server and credential from what is configured (explicit values
 * first), or says what to set.
 *
 * @since 0.1.0
 * @category config
 */
export const resolveOptions = (read: {
  readonly url: string | undefined
  readonly token: string | undefined
  readonly oidc: string | undefined
  /** Where `token` comes from (default `CONNECT_TOKEN`), named when the server rejects it. */
  readonly tokenSource?: string | undefined
  /** Where `oidc` comes from (default `VERCEL_OIDC_TOKEN`). */
  readonly oidcSource?: string | undefined
}): Effect.Effect<ConnectClientOptions, ConfigurationError> => {
  if (read.token !== undefined) {
    const credentialSource = read.tokenSource ?? "CONNECT_TOKEN"
    if (read.url === undefined) {
      return Effect.fail(
        new ConfigurationError({
          detail: `${credentialSource} is set but CONNECT_URL is not: set the URL of your Connect server`
        })
      )
    }
    return Effect.succeed({ baseUrl: read.url, token: Redacted.make(read.token), credentialSource })
  }
  if (read.oidc !== undefined) {
    return Effect.succeed({
      baseUrl: read.url ?? VERCEL_API_URL,
      token: Redacted.make(read.oidc),
      credentialSource: read.oidcSource ?? "VERCEL_OIDC_TOKEN"
    })
  }
  return Effect.fail(
    new ConfigurationError({
      detail:
        read.url === undefined
          ? "set CONNECT_URL and CONNECT_TOKEN for a Connect broker, or VERCEL_OIDC_TOKEN for Vercel Connect"
          : "CONNECT_URL is set but no caller credential is: set CONNECT_TOKEN (or VERCEL_OIDC_TOKEN)"
    })
  )
}

/** Runs `effect` with the `TokenCache` in context, or with a new one that lives as long as the scope. */
const withCache = <A, E, R>(
  effect: Effect.Effect<A, E, R | TokenCache>
): Effect.Effect<A, E, Exclude<R, TokenCache> | Scope.Scope> =>
  Effect.flatMap(
    Effect.serviceOption(TokenCache),
    Option.match({
      onSome: (cache) => Effect.provideService(effect, TokenCache, cache),
      onNone: () => Effect.flatMap(makeTokenCache(), (cache) => Effect.provideService(effect, TokenCache, cache))
    })
  )

/**
 * The Connect client service.
 *
 * @since 0.1.0
 * @category tags
 */
export class ConnectClient extends Context.Tag("effect-connect/ConnectClient")<ConnectClient, ConnectClientService>() {
  /**
   * A client for the given server and credential. Needs an `HttpClient`; it
   * uses the `TokenCache` in context, and a cache of its own
   * (`TokenCache.DEFAULT_CAPACITY` entries) when there is none.
   */
  static readonly layer = (
    options: ConnectClientOptions
  ): Layer.Layer<ConnectClient, ConfigurationError, HttpClient.HttpClient> =>
    Layer.scoped(ConnectClient, withCache(make(options)))

  /**
   * A client configured from the environment (`CONNECT_URL` + `CONNECT_TOKEN`,
   * or `VERCEL_OIDC_TOKEN`). Needs an `HttpClient`; it uses the `TokenCache`
   * in context, or a cache of its own.
   */
  static readonly layerConfig: Layer.Layer<ConnectClient, ConfigurationError, HttpClient.HttpClient> = Layer.scoped(
    ConnectClient,
    withCache(Effect.flatMap(optionsFromConfig, make))
  )

  /**
   * Everything needed, from the environment: the client, a token cache sized by
   * `CONNECT_TOKEN_CACHE_SIZE` (default 100), and `fetch` as the HTTP client.
   */
  static readonly Default: Layer.Layer<ConnectClient | TokenCache, ConfigurationError> = ConnectClient.layerConfig.pipe(
    Layer.provideMerge(
      TokenCache.layerConfig.pipe(Layer.mapError((error) => new ConfigurationError({ detail: String(error) })))
    ),
    Layer.provide(FetchHttpClient.layer)
  )
}

/**
 * A token response: from the cache while `expiresAt - now > validityBufferMs`,
 * otherwise from the server (one request for all concurrent callers of the same
 * request).
 *
 * @since 0.1.0
 * @category operations
 */
export const getTokenResponse = (
  connector: string,
  params: TokenParams,
  options?: GetTokenOptions
): Effect.Effect<TokenResponse, ConnectError, ConnectClient> =>
  Effect.withFiberRuntime((fiber) => {
    const client = Context.unsafeGet(fiber.currentContext, ConnectClient)
    const operations = fiberOperations.get(client)
    return operations === undefined
      ? client.getTokenResponse(connector, params, options)
      : operations.fiberGetTokenResponse(fiber, connector, params, options)
  })

/**
 * The provider access token for a request, `Redacted`.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { ConnectClient, getToken } from "effect-connect"
 *
 * const program = getToken("slack/acme", { subject: { type: "user", id: "u_123" } }).pipe(
 *   Effect.catchTag("UserAuthorizationRequired", (e) => Effect.fail(`connect Slack at ${e.authorizeUrl}`))
 * )
 * Effect.runPromise(program.pipe(Effect.provide(ConnectClient.Default)))
 * ```
 *
 * @since 0.1.0
 * @category operations
 */
export const getToken = (
  connector: string,
  params: TokenParams,
  options?: GetTokenOptions
): Effect.Effect<Redacted.Redacted<string>, ConnectError, ConnectClient> =>
  Effect.withFiberRuntime((fiber) => {
    const client = Context.unsafeGet(fiber.currentContext, ConnectClient)
    const operations = fiberOperations.get(client)
    return operations === undefined
      ? client.getToken(connector, params, options)
      : operations.fiberGetToken(fiber, connector, params, options)
  })

/**
 * Revokes the tokens of a connector for a subject (and installation), at the
 * provider where it supports revocation, and drops them from the cache. Without
 * a subject, every token of the connector.
 *
 * @since 0.1.0
 * @category operations
 */
export const revokeToken = (
  connector: string,
  params: RevokeParams
): Effect.Effect<RevocationSummary, ConnectError, ConnectClient> =>
  Effect.flatMap(ConnectClient, (client) => client.revokeToken(connector, params))

/**
 * Drops the cache entry `getToken(connector, params)` would serve, for example
 * after the provider rejected the token.
 *
 * @since 0.1.0
 * @category operations
 */
export const deleteTokenCacheEntry = (
  connector: string,
  params: TokenParams
): Effect.Effect<void, InvalidRequest, ConnectClient> =>
  Effect.flatMap(ConnectClient, (client) => client.deleteTokenCacheEntry(connector, params))

/**
 * Starts the authorization of a user: send them to the answer's `url`.
 *
 * @since 0.1.0
 * @category operations
 */
export const startAuthorization = (
  connector: string,
  params: TokenParams,
  options?: AuthorizationOptions
): Effect.Effect<AuthorizationResponse, ConnectError, ConnectClient> =>
  Effect.flatMap(ConnectClient, (client) => client.startAuthorization(connector, params, options))

/**
 * Starts an installation of a connector for a tenant: send its admin to the
 * answer's `url`.
 *
 * @since 0.1.0
 * @category operations
 */
export const startInstallation = (
  connector: string,
  options?: InstallationOptions
): Effect.Effect<AuthorizationResponse, ConnectError, ConnectClient> =>
  Effect.flatMap(ConnectClient, (client) => client.startInstallation(connector, options))

/**
 * The status of an authorization started with `startAuthorization`, by the
 * answer's `request` and `verifier`: poll it until it is `completed`, `failed`
 * or `expired`.
 *
 * @since 0.1.0
 * @category operations
 */
export const authorizationStatus = (
  request: string,
  verifier: Redacted.Redacted<string>
): Effect.Effect<AuthorizationStatus, ConnectError, ConnectClient> =>
  Effect.flatMap(ConnectClient, (client) => client.authorizationStatus(request, verifier))

/**
 * A connector's public metadata.
 *
 * @since 0.1.0
 * @category operations
 */
export const getConnectorMetadata = (
  connector: string
): Effect.Effect<ConnectorMetadata, ConnectError, ConnectClient> =>
  Effect.flatMap(ConnectClient, (client) => client.getConnectorMetadata(connector))
