/**
 * The Connect wire protocol's shared pieces beyond its schemas: how a
 * `Retry-After` header reads, how a transient failure is retried, and how a
 * request that fails validation is described field by field (the `issues` of
 * a `bad_request`).
 *
 * @since 0.2.0
 */
import type { Duration, ParseResult, Schedule } from "effect"
import * as schema from "./internal/schema.js"
import * as transport from "./internal/transport.js"

/**
 * A named field and what was wrong with it.
 *
 * @since 0.2.0
 * @category models
 */
export interface FieldIssue extends schema.FieldIssue {}

/**
 * The issues of a failed decoding, one per field (`path: expected ...`),
 * without the values (they may be secrets); `prefix` goes before each path.
 *
 * @since 0.2.0
 * @category utils
 */
export const describeParseError: (error: ParseResult.ParseError, prefix?: string) => ReadonlyArray<FieldIssue> =
  schema.describeParseError

/**
 * `Retry-After` in milliseconds: delta seconds, or an HTTP date (`nowMs` reads
 * it); `undefined` when absent or unreadable.
 *
 * @since 0.2.0
 * @category utils
 */
export const parseRetryAfter: (value: string | undefined, nowMs: number) => number | undefined =
  transport.parseRetryAfter

/**
 * The limits of {@link retrySchedule}.
 *
 * @since 0.2.0
 * @category models
 */
export interface RetryLimits extends transport.RetryLimits {}

/**
 * The retry policy of a client of the protocol and of the broker's provider
 * client: exponential backoff from `retryBaseDelay` with jitter, at most
 * `retries` times, only while `transient` says a failure is; a `Retry-After`
 * it carried sets the least delay, and one longer than `maxRetryAfter` ends
 * the retries.
 *
 * @since 0.2.0
 * @category utils
 */
export const retrySchedule: <E>(
  limits: RetryLimits,
  transient: (failure: E) => { readonly retryAfterMs: number | undefined } | undefined
) => Schedule.Schedule<[[Duration.Duration, number], E], E> = transport.retrySchedule

/**
 * The HTTP methods of the protocol's routes.
 *
 * @since 0.2.0
 * @category models
 */
export type Method = "GET" | "POST" | "PUT" | "DELETE"

/**
 * The names of a pattern's `:name` parameters.
 *
 * @since 0.2.0
 * @category models
 */
export type ParamsOf<P extends string> = P extends `${string}:${infer Name}/${infer Rest}`
  ? Name | ParamsOf<`/${Rest}`>
  : P extends `${string}:${infer Name}`
    ? Name
    : never

/**
 * A route: its method, its pattern (`:name` parameters, as `HttpRouter` reads
 * them) and the builder of its path, which percent-encodes each parameter as
 * one path segment (so `slack/acme` travels as `slack%2Facme`).
 *
 * @since 0.2.0
 * @category models
 */
export interface Route<M extends Method = Method, P extends `/${string}` = `/${string}`> {
  readonly method: M
  readonly pattern: P
  readonly path: (params: { readonly [K in ParamsOf<P>]: string }) => string
}

/**
 * A route from its method and pattern.
 *
 * @since 0.2.0
 * @category constructors
 */
export const route = <M extends Method, P extends `/${string}`>(method: M, pattern: P): Route<M, P> => ({
  method,
  pattern,
  path: (params) =>
    pattern.replace(/:(\w+)/g, (_, name: string) =>
      encodeURIComponent((params as Readonly<Record<string, string>>)[name] ?? "")
    )
})

/**
 * Every route of the Connect wire protocol, as the SDK calls them and the
 * broker serves them.
 *
 * @since 0.2.0
 * @category routes
 */
export const routes = {
  /** A token for a connector (`TokenRequest` → `TokenResponse`). */
  token: route("POST", "/v1/connect/token/:connector"),
  /** Tokens obtained elsewhere, kept by the broker (`TokenImport`). */
  importTokens: route("POST", "/v1/connect/token/:connector/import"),
  /** Revokes a connector's tokens (`RevokeParams` → `RevocationSummary`). */
  revokeTokens: route("DELETE", "/v1/connect/connectors/:connector/tokens"),
  /** A connector's metadata. */
  connector: route("GET", "/v1/connect/connectors/:connector"),
  /** Starts a user's authorization (`AuthorizationRequest` → `AuthorizationStart`). */
  authorize: route("POST", "/v1/connect/authorize/:connector"),
  /** Starts a tenant's installation (`InstallationRequest` → `AuthorizationStart`). */
  install: route("POST", "/v1/connect/install/:connector"),
  /** The link a user opens: on to the provider. */
  authorizationStart: route("GET", "/v1/connect/authorize/:request/start"),
  /** Where an authorization stands (`{verifier}` → `AuthorizationStatus`). */
  authorizationStatus: route("POST", "/v1/connect/authorize/:request/status"),
  /** The application confirms the user who came back (`AuthorizationConfirmation`), for projects that ask it. */
  authorizationConfirm: route("POST", "/v1/connect/authorize/:request/confirm"),
  /** Where the provider sends the user back. */
  callback: route("GET", "/v1/connect/callback"),
  /** Whether the broker can serve. */
  health: route("GET", "/healthz")
} as const
