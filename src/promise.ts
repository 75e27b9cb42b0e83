/**
 * The Connect operations as Promises, named and shaped like `@vercel/connect`'s,
 * for code that does not use Effect.
 *
 * Configuration comes from `CONNECT_URL` and `CONNECT_TOKEN` (a self-hosted
 * broker) or `VERCEL_OIDC_TOKEN` (Vercel Connect), or per call from
 * `options.baseUrl` and `options.token`. A failure rejects with the same error
 * instance as the Effect API, so `instanceof` works.
 *
 * @since 0.1.0
 */
import * as FetchHttpClient from "@effect/platform/FetchHttpClient"
import type * as HttpClient from "@effect/platform/HttpClient"
import { Cause, type Duration, Effect, Exit, Layer, ManagedRuntime, Option, Redacted, Schema } from "effect"
import {
  AuthorizationOptions as AuthorizationOptionsSchema,
  type AuthorizationOptions as AuthorizationOptionsType,
  type AuthorizationResponse,
  type AuthorizationStatus,
  InstallationOptions as InstallationOptionsSchema
} from "./Authorization.js"
import {
  type ConnectClientOptions,
  type ConnectClientService,
  make,
  refreshAheadConfig,
  resolveOptions
} from "./ConnectClient.js"
import { ConfigurationError, InvalidRequest } from "./ConnectError.js"
import type { ConnectorMetadata } from "./Connector.js"
import { describeParseError } from "./internal/schema.js"
import { type RevocationSummary, RevokeParams, type RevokeParamsEncoded } from "./Revocation.js"
import { TokenParams, type TokenParamsEncoded, type TokenResponse, type TokenResponseEncoded } from "./Token.js"
import { TokenCache } from "./TokenCache.js"

export {
  ClientNotEnabledForEnvironment,
  ClientNotEnabledForEnvironment as ClientNotEnabledForEnvironmentError,
  ClientNotLinkedToProject,
  ClientNotLinkedToProject as ClientNotLinkedToProjectError,
  ConfigurationError,
  type ConnectError,
  ConnectorInstallationRequired,
  ConnectorInstallationRequired as ConnectorInstallationRequiredError,
  ConnectorNotFound,
  ConnectorNotFound as ConnectorNotFoundError,
  InvalidRequest,
  InvalidResponse,
  isConnectError,
  NoValidToken,
  NoValidToken as NoValidTokenError,
  ProviderError,
  ProviderUnavailable,
  RateLimited,
  ServiceUnavailable,
  Unauthorized,
  UnknownConnectError,
  UserAuthorizationRequired,
  UserAuthorizationRequired as UserAuthorizationRequiredError
} from "./ConnectError.js"
export type { RevocationSummary } from "./Revocation.js"
export type { SubjectEncoded as ConnectTokenSubject } from "./Subject.js"

/**
 * Token parameters, as `@vercel/connect` names them.
 *
 * @since 0.1.0
 * @category models
 */
export type ConnectTokenParams = TokenParamsEncoded

/**
 * The token response with the token as a plain string, as `@vercel/connect`
 * returns it.
 *
 * @since 0.1.0
 * @category models
 */
export type ConnectTokenResponse = TokenResponseEncoded

/**
 * Where to send a call and how.
 *
 * @since 0.1.0
 * @category models
 */
export interface ConnectOptions {
  /** The Connect server; default `CONNECT_URL`, or Vercel Connect. */
  readonly baseUrl?: string | undefined
  /** The caller credential; default `CONNECT_TOKEN`, then `VERCEL_OIDC_TOKEN`. */
  readonly token?: string | undefined
  /** A Vercel OIDC token, as `@vercel/connect` takes it (Vercel Connect unless `baseUrl` says otherwise). */
  readonly vercelToken?: string | undefined
  /** A Vercel region: the server becomes `https://api-{region}.vercel.com`. */
  readonly region?: string | undefined
  /** Skip the cache and replace the entry with the server's answer. */
  readonly forceRefresh?: boolean | undefined
}

/**
 * Options of `startAuthorization`.
 *
 * @since 0.1.0
 * @category models
 */
export interface ConnectAuthorizationOptions extends Omit<ConnectOptions, "forceRefresh"> {
  readonly callbackUrl?: string | undefined
  readonly webhook?: string | undefined
  readonly deviceCode?: boolean | undefined
  readonly expiresInMs?: number | undefined
  readonly prompt?: string | undefined
}

/**
 * A started authorization with the verifier as a plain string.
 *
 * @since 0.1.0
 * @category models
 */
export type ConnectAuthorizationResponse = Omit<AuthorizationResponse, "verifier"> & { readonly verifier: string }

/**
 * The status of an authorization request: `{request, status, error?}`.
 *
 * @since 0.1.0
 * @category models
 */
export type ConnectAuthorizationStatus = AuthorizationStatus

// One cache for the process, as the official client has; entries are keyed by
// server and credential, so clients of different servers never share tokens.
const runtime = ManagedRuntime.make(
  Layer.merge(
    TokenCache.layerConfig.pipe(Layer.mapError((error) => new ConfigurationError({ detail: String(error) }))),
    FetchHttpClient.layer
  )
)

const run = <A, E>(effect: Effect.Effect<A, E, TokenCache | HttpClient.HttpClient>) =>
  runtime
    .runPromiseExit(effect)
    .then((exit) => (Exit.isSuccess(exit) ? exit.value : Promise.reject(Cause.squash(exit.cause))))

const runSync = <A, E>(effect: Effect.Effect<A, E, TokenCache | HttpClient.HttpClient>): A => {
  const exit = runtime.runSyncExit(effect)
  if (Exit.isSuccess(exit)) return exit.value
  throw Cause.squash(exit.cause)
}

const env = (name: string): string | undefined => {
  const value = process.env[name]?.trim()
  return value === undefined || value.length === 0 ? undefined : value
}

const clients = new Map<string, ConnectClientService>()
const MAX_CLIENTS = 32
let last:
  | {
      readonly url: string | undefined
      readonly token: string | undefined
      readonly oidc: string | undefined
      readonly client: ConnectClientService
    }
  | undefined

/** `CONNECT_REFRESH_AHEAD`, read when a client is made. */
const refreshAhead = refreshAheadConfig.pipe(
  Effect.mapError((error) => new ConfigurationError({ detail: String(error) }))
)

/** The client options with `CONNECT_REFRESH_AHEAD` when it is set. */
const withRefreshAhead = ([options, ahead]: readonly [
  ConnectClientOptions,
  Option.Option<Duration.Duration | false>
]): ConnectClientOptions => (Option.isSome(ahead) ? { ...options, refreshAhead: ahead.value } : options)

/** Where the credentials come from: the call's options, or the environment. */
const sourcesOf = (options: ConnectOptions | undefined) => ({
  tokenSource: options?.token === undefined ? "CONNECT_TOKEN" : "the token option",
  oidcSource: options?.vercelToken === undefined ? "VERCEL_OIDC_TOKEN" : "the vercelToken option"
})

/** The client for a call's options, made once per server and credential. */
const clientFor = (options: ConnectOptions | undefined): ConnectClientService => {
  const url =
    options?.baseUrl ??
    (options?.region === undefined ? env("CONNECT_URL") : `https://api-${options.region}.vercel.com`)
  const token = options?.token ?? (options?.vercelToken === undefined ? env("CONNECT_TOKEN") : undefined)
  // With a token, the OIDC token is never used: skip the environment read, which
  // costs more than the rest of a cache hit's client lookup.
  const oidc = token === undefined ? (options?.vercelToken ?? env("VERCEL_OIDC_TOKEN")) : undefined
  // Consecutive calls nearly always use the same settings: compare them with
  // the last call's before building a lookup string.
  if (last !== undefined && last.url === url && last.token === token && last.oidc === oidc) return last.client
  const id = `${url}\n${token}\n${oidc}`
  let client = clients.get(id)
  if (client === undefined) {
    client = runSync(
      Effect.flatMap(Effect.zip(resolveOptions({ url, token, oidc, ...sourcesOf(options) }), refreshAhead), (read) =>
        make(withRefreshAhead(read))
      )
    )
    if (clients.size >= MAX_CLIENTS) {
      const oldest = clients.keys().next()
      if (oldest.done !== true) clients.delete(oldest.value)
    }
    clients.set(id, client)
  }
  last = { url, token, oidc, client }
  return client
}

const decode = <A, I>(schema: Schema.Schema<A, I>, value: unknown, path: string, connector: unknown) =>
  Schema.decodeUnknown(schema, { errors: "all" })(value).pipe(
    Effect.mapError(
      (error) =>
        new InvalidRequest({
          issues: describeParseError(error, path),
          ...(typeof connector === "string" ? { connector } : {})
        })
    )
  )

const plain = (response: TokenResponse): ConnectTokenResponse => ({
  ...response,
  token: Redacted.value(response.token)
})

// The one fast path of getToken and getTokenResponse: a fresh hit is answered
// without entering the Effect runtime; `project` picks what the caller gets,
// `resolve` the promise of a hit.
const throughCache = <A>(
  connector: string,
  params: ConnectTokenParams,
  options: ConnectOptions | undefined,
  project: (response: TokenResponse) => A,
  resolve: (response: TokenResponse) => Promise<A>
): Promise<A> => {
  try {
    const client = clientFor(options)
    if (options?.forceRefresh !== true) {
      const hit = client.unsafeCachedResponse(connector, params, Date.now())
      if (hit !== undefined) return resolve(hit)
    }
    return run(
      Effect.flatMap(decode(TokenParams, params, "params", connector), (valid) =>
        client.getTokenResponse(connector, valid, options)
      )
    ).then(project)
  } catch (error) {
    return Promise.reject(error)
  }
}

const tokenOf = (response: TokenResponse): string => Redacted.value(response.token)

/**
 * The promise of the last hit's token, made once per cached response: a
 * settled promise cannot change, so the hits that follow return it again.
 */
const tokenPromise = (() => {
  let answered: TokenResponse | undefined
  let promise: Promise<string> | undefined
  return (response: TokenResponse): Promise<string> => {
    if (response !== answered || promise === undefined) {
      answered = response
      promise = Promise.resolve(tokenOf(response))
    }
    return promise
  }
})()

// A new object per call: a caller may change the one it gets.
const responsePromise = (response: TokenResponse): Promise<ConnectTokenResponse> => Promise.resolve(plain(response))

/**
 * The token response for a request, with the token as a plain string.
 *
 * @since 0.1.0
 * @category operations
 */
export const getTokenResponse = (
  connector: string,
  params: ConnectTokenParams,
  options?: ConnectOptions
): Promise<ConnectTokenResponse> => throughCache(connector, params, options, plain, responsePromise)

/**
 * The provider access token for a request. A fresh cached token is answered
 * without a request.
 *
 * @example
 * ```ts
 * import { getToken, UserAuthorizationRequiredError } from "effect-connect/promise"
 *
 * try {
 *   const token = await getToken("slack/acme", { subject: { type: "app" } })
 * } catch (error) {
 *   if (error instanceof UserAuthorizationRequiredError) console.log(error.authorizeUrl)
 * }
 * ```
 *
 * @since 0.1.0
 * @category operations
 */
export const getToken = (connector: string, params: ConnectTokenParams, options?: ConnectOptions): Promise<string> =>
  throughCache(connector, params, options, tokenOf, tokenPromise)

/**
 * Revokes the tokens of a connector for a subject (and installation), and drops
 * them from the cache. Answers with what the server did.
 *
 * @since 0.1.0
 * @category operations
 */
export const revokeToken = (
  connector: string,
  params: RevokeParamsEncoded,
  options?: ConnectOptions
): Promise<RevocationSummary> => {
  try {
    const client = clientFor(options)
    return run(
      Effect.flatMap(decode(RevokeParams, params, "params", connector), (valid) => client.revokeToken(connector, valid))
    )
  } catch (error) {
    return Promise.reject(error)
  }
}

/**
 * Drops the cache entry `getToken(connector, params)` would serve.
 * Synchronous, as in `@vercel/connect`; throws `InvalidRequest` for bad input.
 *
 * @since 0.1.0
 * @category operations
 */
export const deleteTokenCacheEntry = (
  connector: string,
  params: ConnectTokenParams,
  options?: ConnectOptions
): void => {
  const client = clientFor(options)
  runSync(
    Effect.flatMap(decode(TokenParams, params, "params", connector), (valid) =>
      client.deleteTokenCacheEntry(connector, valid)
    )
  )
}

/**
 * Starts the authorization of a user: send them to the answer's `url`.
 *
 * @since 0.1.0
 * @category operations
 */
export const startAuthorization = (
  connector: string,
  params: ConnectTokenParams,
  options?: ConnectAuthorizationOptions
): Promise<ConnectAuthorizationResponse> => {
  try {
    const client = clientFor(options)
    const { baseUrl: _b, token: _t, vercelToken: _v, region: _r, ...authOptions } = options ?? {}
    return run(
      Effect.gen(function* () {
        const valid = yield* decode(TokenParams, params, "params", connector)
        const validOptions: AuthorizationOptionsType = yield* decode(
          AuthorizationOptionsSchema,
          authOptions,
          "options",
          connector
        )
        const response = yield* client.startAuthorization(connector, valid, validOptions)
        return { ...response, verifier: Redacted.value(response.verifier) }
      })
    )
  } catch (error) {
    return Promise.reject(error)
  }
}

/**
 * Options of `startInstallation`.
 *
 * @since 0.1.0
 * @category models
 */
export interface ConnectInstallationOptions
  extends Omit<ConnectOptions, "forceRefresh">,
    Schema.Schema.Encoded<typeof InstallationOptionsSchema> {}

/**
 * Starts the installation of a connector for a tenant (a workspace, an
 * organization): send its admin to the answer's `url`. Once it is
 * `completed`, `authorizationStatus` tells the `installationId` it made.
 *
 * @since 0.1.0
 * @category operations
 */
export const startInstallation = (
  connector: string,
  options?: ConnectInstallationOptions
): Promise<ConnectAuthorizationResponse> => {
  try {
    const client = clientFor(options)
    const { baseUrl: _b, token: _t, vercelToken: _v, region: _r, ...installOptions } = options ?? {}
    return run(
      Effect.gen(function* () {
        const valid = yield* decode(InstallationOptionsSchema, installOptions, "options", connector)
        const response = yield* client.startInstallation(connector, valid)
        return { ...response, verifier: Redacted.value(response.verifier) }
      })
    )
  } catch (error) {
    return Promise.reject(error)
  }
}

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
  verifier: string,
  options?: Omit<ConnectOptions, "forceRefresh">
): Promise<ConnectAuthorizationStatus> => {
  try {
    const client = clientFor(options)
    return run(
      Effect.flatMap(decode(Schema.String, verifier, "verifier", undefined), (valid) =>
        client.authorizationStatus(request, Redacted.make(valid))
      )
    )
  } catch (error) {
    return Promise.reject(error)
  }
}

/**
 * A connector's public metadata (`vendor` holds the provider-specific details).
 *
 * @since 0.1.0
 * @category operations
 */
export const getConnectorMetadata = (connector: string, options?: ConnectOptions): Promise<ConnectorMetadata> => {
  try {
    return run(clientFor(options).getConnectorMetadata(connector))
  } catch (error) {
    return Promise.reject(error)
  }
}
