/**
 * The broker's client for a provider's OAuth 2.0 endpoints: token requests for
 * every grant the broker uses (RFC 6749 client credentials, refresh token and
 * authorization code with PKCE; RFC 7523 JWT bearer; RFC 8693 token exchange;
 * RFC 8628 device code; resource indicators of RFC 8707 and authorization
 * details of RFC 9396), token revocation (RFC 7009), and device authorization
 * requests (RFC 8628 section 3.1).
 *
 * It is the {@link ProviderClient} service, built over an `HttpClient` (the
 * broker's own, with its tracing and transport, which is also what tests
 * replace); its operations need nothing more. Limits (timeout, retries) come
 * from the {@link ProviderClientConfig} reference of the caller, which has
 * defaults and can be set once for the whole broker with
 * `ProviderClientConfig.layer`, or for one call.
 *
 * - Requests are form-encoded (`application/x-www-form-urlencoded`) with
 *   `Accept: application/json`; the client authenticates with HTTP Basic
 *   (`client_secret_basic`, id and secret form-encoded before base64 as RFC
 *   6749 section 2.3.1 requires) or in the body (`client_secret_post`). A
 *   GitHub App's installation token is the exception: an empty `POST` with
 *   the app's JWT as bearer, answered `{token, expires_at}`; so is a revocation
 *   the connector sends as JSON (Notion's). Refreshes go to the connector's
 *   refresh endpoint when it has one (Figma's).
 * - Every answer is validated before it is trusted; a user's token may be a
 *   member of the answer (Slack's `authed_user`). Errors sent with HTTP 200
 *   (Slack's `{"ok": false}`, GitHub's `{"error": ...}`) are errors, never
 *   tokens; non-standard error codes (and shapes: HubSpot's `category`,
 *   Twitch's code in `message`) are mapped to the standard kinds.
 * - Transport failures, timeouts, 408, 429 and 5xx are retried a bounded number
 *   of times with exponential backoff and jitter, honouring `Retry-After`.
 * - An endpoint whose host is or resolves to a link-local or cloud metadata
 *   address is refused before anything is sent (see `internal/resolvedHost.ts`).
 * - No token, refresh token, code, verifier, assertion, device code or client
 *   secret ever appears in an error: only the provider's codes and descriptions (and those
 *   with any secret of the request blanked out).
 *
 * A retried refresh whose first answer was lost (a timeout after the provider
 * rotated the refresh token) may be refused as a reuse: that is reported as
 * `invalid_grant`, as the grant is then gone.
 *
 * @since 0.1.0
 */
import * as HttpClient from "@effect/platform/HttpClient"
import type * as HttpClientError from "@effect/platform/HttpClientError"
import * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import {
  Cause,
  Clock,
  Context,
  Duration,
  Effect,
  Either,
  Exit,
  FiberRef,
  Layer,
  Option,
  type ParseResult,
  Redacted,
  Schema
} from "effect"
import { isRecord, optionalNullable } from "effect-connect/Json"
import { describeParseError, parseRetryAfter, retrySchedule } from "effect-connect/Protocol"
import { allowedHttpHosts } from "./internal/endpoints.js"
import {
  basicAuthorization,
  cleanText,
  ERROR_CODE_KINDS,
  endpointForDisplay,
  errorOf,
  errorOfAnyBody,
  kindOf,
  outsideDeviceFlow,
  PROVIDER_ERROR_KINDS,
  type ProviderErrorKind,
  readBody
} from "./internal/oauthResponse.js"
import { forbiddenAddresses, type Lookup, systemLookup } from "./internal/resolvedHost.js"
import * as Metrics from "./Metrics.js"

// ---------------------------------------------------------------------------------------------------------------
// Models
// ---------------------------------------------------------------------------------------------------------------

/**
 * How the broker authenticates to the provider's endpoints.
 *
 * @since 0.1.0
 * @category models
 */
export type ClientAuthMethod = "client_secret_basic" | "client_secret_post"

/**
 * The broker's credentials at a provider.
 *
 * @since 0.1.0
 * @category models
 */
export interface ClientCredentials {
  readonly clientId: string
  readonly clientSecret: Redacted.Redacted<string>
  readonly authMethod: ClientAuthMethod
}

/**
 * A provider's token endpoint and the broker's credentials there.
 *
 * @since 0.1.0
 * @category models
 */
export interface ProviderEndpoint extends ClientCredentials {
  readonly tokenEndpoint: string
  /** Where the refresh token grant is sent instead of `tokenEndpoint` (Figma's `/v1/oauth/refresh`). */
  readonly refreshEndpoint?: string
  /** The lifetime of an access token whose response has no `expires_in`. */
  readonly defaultLifetimeSeconds: number
}

/**
 * A provider's revocation endpoint (RFC 7009) and the broker's credentials there.
 *
 * @since 0.1.0
 * @category models
 */
export interface RevocationEndpoint extends ClientCredentials {
  readonly revocationEndpoint: string
  /** A JSON body instead of RFC 7009's form (Notion), and headers the provider requires. */
  readonly request?: {
    readonly body: "form" | "json"
    readonly headers?: { readonly [name: string]: string } | undefined
  }
}

/**
 * What a token is for: its scopes, resource indicators (RFC 8707) and
 * audiences, as the grants that take them send them.
 *
 * @since 0.2.0
 * @category models
 */
export interface GrantTargets {
  readonly scope?: ReadonlyArray<string>
  readonly resource?: ReadonlyArray<string>
  readonly audience?: ReadonlyArray<string>
}

/**
 * A token for the broker itself (RFC 6749 section 4.4), with resource
 * indicators (RFC 8707), audiences and authorization details (RFC 9396).
 *
 * @since 0.1.0
 * @category models
 */
export interface ClientCredentialsGrant extends GrantTargets {
  readonly type: "client_credentials"
  readonly authorizationDetails?: ReadonlyArray<object>
}

/**
 * A new access token for a user's grant (RFC 6749 section 6).
 *
 * @since 0.1.0
 * @category models
 */
export interface RefreshTokenGrant {
  readonly type: "refresh_token"
  readonly refreshToken: Redacted.Redacted<string>
  readonly scope?: ReadonlyArray<string>
  readonly resource?: ReadonlyArray<string>
}

/**
 * The end of the authorization code flow with PKCE (RFC 6749 section 4.1.3, RFC 7636).
 *
 * @since 0.1.0
 * @category models
 */
export interface AuthorizationCodeGrant {
  readonly type: "authorization_code"
  readonly code: Redacted.Redacted<string>
  readonly redirectUri: string
  readonly codeVerifier: Redacted.Redacted<string>
  /** The resources the token is for (RFC 8707 section 2.2), as the authorization request named them. */
  readonly resource?: ReadonlyArray<string>
  /**
   * The member of the answer that holds the user's token, when it is not the
   * answer itself: Slack's `authed_user` (its top level is the bot's token).
   */
  readonly tokenMember?: "authed_user"
  /** Extra form parameters the provider reads in the exchange (Shopify's `expiring: "1"`). */
  readonly extraParams?: Readonly<Record<string, string>>
}

/**
 * A token for a signed assertion (RFC 7523 section 2.1).
 *
 * @since 0.1.0
 * @category models
 */
export interface JwtBearerGrant extends GrantTargets {
  readonly type: "jwt_bearer"
  readonly assertion: Redacted.Redacted<string>
}

/**
 * A token in exchange for another (RFC 8693).
 *
 * @since 0.1.0
 * @category models
 */
export interface TokenExchangeGrant extends GrantTargets {
  readonly type: "token_exchange"
  readonly subjectToken: Redacted.Redacted<string>
  /** A token type URI, such as `urn:ietf:params:oauth:token-type:access_token`. */
  readonly subjectTokenType: string
  readonly requestedTokenType?: string
  readonly actorToken?: Redacted.Redacted<string>
  readonly actorTokenType?: string
}

/**
 * A poll for the token of a device authorization (RFC 8628 section 3.4).
 *
 * @since 0.1.0
 * @category models
 */
export interface DeviceCodeGrant {
  readonly type: "device_code"
  readonly deviceCode: Redacted.Redacted<string>
  /**
   * The scopes again, space-separated in `scopes`, for a provider whose poll
   * requires them (Twitch: https://dev.twitch.tv/docs/authentication/getting-tokens-oauth/#device-code-grant-flow);
   * RFC 8628's poll has none.
   */
  readonly scopes?: ReadonlyArray<string>
}

/**
 * A GitHub App's installation access token: `POST` to the installation's
 * `access_tokens` endpoint with the app's JWT as bearer, no client
 * credentials; the answer's `token` and `expires_at` (an ISO date) are the token.
 *
 * @since 0.2.0
 * @category models
 */
export interface AppInstallationGrant {
  readonly type: "app_installation"
  /** The app's JWT (RS256, `iss` the app id), signed by the caller. */
  readonly appJwt: Redacted.Redacted<string>
}

/**
 * What the broker asks a token endpoint for.
 *
 * @since 0.1.0
 * @category models
 */
export type Grant =
  | ClientCredentialsGrant
  | RefreshTokenGrant
  | AuthorizationCodeGrant
  | JwtBearerGrant
  | TokenExchangeGrant
  | DeviceCodeGrant
  | AppInstallationGrant

/**
 * A token as a provider issued it, validated.
 *
 * @since 0.1.0
 * @category models
 */
export interface ProviderToken {
  readonly accessToken: Redacted.Redacted<string>
  /** `Bearer` for any case of `bearer` (and when the provider sent none); otherwise as sent (`DPoP`, Slack's `bot`). */
  readonly tokenType: string
  /**
   * When the access token expires, in milliseconds since the epoch: the time
   * the request was sent plus `expires_in`, or plus the endpoint's
   * `defaultLifetimeSeconds` when the provider did not say.
   */
  readonly expiresAt: number
  /**
   * The refresh token, when the provider sent one. Absent on a refresh means
   * the old one stays valid (Google); present means it was rotated and the new
   * one must be saved before anything else.
   */
  readonly refreshToken: Redacted.Redacted<string> | undefined
  /** When the refresh token expires (from `refresh_token_expires_in`), in milliseconds since the epoch. */
  readonly refreshTokenExpiresAt?: number
  /** The granted scope, space-separated, when the provider said. */
  readonly scope?: string
  readonly idToken?: Redacted.Redacted<string>
  /** The type of the issued token (RFC 8693 section 2.2.1). */
  readonly issuedTokenType?: string
  /** Whether the provider said when the token expires (`expires_in`); otherwise `expiresAt` is a default. */
  readonly expiresInSent?: boolean
  /**
   * The response's other members (Slack's `team`, Entra's `tenant_id`, ...),
   * with every member named like a secret (`*token*`, `*secret*`, `*webhook*`) removed at
   * any depth: what an installation reads its tenant id from.
   */
  readonly fields?: { readonly [key: string]: unknown }
}

// ---------------------------------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------------------------------

/**
 * The error codes providers send, standard and not, and what each means to the
 * broker: the one table, in `internal/oauthResponse.ts`.
 *
 * @since 0.1.0
 * @category errors
 */
export const errorCodeKinds: { readonly [code: string]: ProviderErrorKind } = ERROR_CODE_KINDS

/**
 * @since 0.1.0
 * @category errors
 */
export type { ProviderErrorKind }

const DESCRIPTION_LIMIT = 200
const CODE_LIMIT = 100

/**
 * A provider's endpoint refused a request, failed, or answered with something
 * that is not a valid response. `kind` says what it means to the broker:
 *
 * - `invalid_grant`: the grant is gone (revoked, expired, already used): the user must authorize again.
 * - `invalid_client`: the broker's client id, secret or auth method is wrong.
 * - `invalid_scope`, `invalid_target`: a requested scope, resource or audience is not allowed.
 * - `unsupported`: the grant type or token type is not supported or not allowed for the client.
 * - `transient`: network failure, timeout, 429 or 5xx, after the retries: retry later.
 * - `invalid_response`: a success answer that is not valid (not JSON, empty, a field missing or wrong).
 * - `authorization_pending`, `slow_down`, `expired_token`, `access_denied`: a device code poll's answers
 *   (RFC 8628 section 3.5); only the `device_code` grant reports them.
 * - `other`: any other refusal.
 *
 * `code` and `description` are the provider's `error` and `error_description`
 * (the description cut to 200 characters, with any secret of the request
 * blanked out); `reason` is the client's own account (a timeout, a network
 * error, the fields of a response that failed validation). No token or secret
 * is ever part of the error.
 *
 * @since 0.1.0
 * @category errors
 */
export class ProviderError extends Schema.TaggedError<ProviderError>()("ProviderError", {
  kind: Schema.Literal(...PROVIDER_ERROR_KINDS),
  /** The endpoint's scheme, host and path (no query, no user info). */
  endpoint: Schema.String,
  operation: Schema.Literal("token", "revocation", "device_authorization"),
  /** The grant of a token request (`refresh_token`, `jwt_bearer`, ...). */
  grantType: Schema.optional(Schema.String),
  /** The `token_type_hint` of a revocation. */
  tokenTypeHint: Schema.optional(Schema.String),
  /** The HTTP status of the last answer, if there was one. */
  status: Schema.optional(Schema.Number),
  /** The provider's `error` code. */
  code: Schema.optional(Schema.String),
  /** The provider's `error_description`. */
  description: Schema.optional(Schema.String),
  /** What the client saw, when the provider gave no code: a timeout, a network error, an invalid field. */
  reason: Schema.optional(Schema.String),
  /** How many requests were sent (0 when the request could not be made). */
  attempts: Schema.Number,
  /** How long the provider asked to wait (`Retry-After`), in milliseconds. */
  retryAfterMs: Schema.optional(Schema.Number),
  /** The polling interval a `slow_down` answer names (GitHub's `interval`), in milliseconds. */
  intervalMs: Schema.optional(Schema.Number)
}) {
  override get message(): string {
    const endpointName =
      this.operation === "token" ? "token" : this.operation === "revocation" ? "revocation" : "device authorization"
    const endpoint = `The provider's ${endpointName} endpoint ${this.endpoint}`
    const request =
      this.operation === "token"
        ? `the ${this.grantType ?? "token"} grant`
        : this.operation === "device_authorization"
          ? "the device authorization request"
          : `the revocation of ${
              this.tokenTypeHint === "access_token"
                ? "an access token"
                : this.tokenTypeHint === "refresh_token"
                  ? "a refresh token"
                  : "a token"
            }`
    const facts: Array<string> = []
    if (this.status !== undefined) facts.push(`HTTP ${this.status}`)
    if (this.code !== undefined) facts.push(this.code)
    if (this.description !== undefined) facts.push(JSON.stringify(this.description))
    if (this.reason !== undefined) facts.push(this.reason)
    if (this.kind === "transient")
      facts.push(this.attempts === 1 ? "after 1 attempt" : `after ${this.attempts} attempts`)
    const detail = facts.length === 0 ? "" : ` (${facts.join(", ")})`
    switch (this.kind) {
      case "invalid_grant":
        switch (this.grantType) {
          case "jwt_bearer":
            return `${endpoint} refused the assertion of ${request}${detail}: it is expired, already used, or not for this provider; sign a new assertion`
          case "token_exchange":
            return `${endpoint} refused the subject token of ${request}${detail}: it is expired or revoked; exchange a current token`
          case "client_credentials":
            return `${endpoint} refused ${request}${detail}: check the connector's configuration against the provider's documentation`
          default:
            return `${endpoint} refused ${request}${detail}: the grant is gone (revoked, expired or already used); the user must authorize again`
        }
      case "invalid_client":
        return `${endpoint} rejected the broker's client credentials${detail}: check the connector's client id, client secret and token endpoint auth method (client_secret_basic or client_secret_post)`
      case "invalid_scope":
        return `${endpoint} refused the requested scope for ${request}${detail}: request only scopes the client is allowed at the provider`
      case "invalid_target":
        return `${endpoint} refused the requested resource or audience for ${request}${detail}: request only resources and audiences the provider knows for this client`
      case "unsupported":
        return this.code?.toLowerCase() === "unsupported_token_type"
          ? `${endpoint} does not support ${request}${detail}: this kind of token cannot be revoked there; forget it instead, or revoke the grant at the provider`
          : `${endpoint} does not support or allow ${request} for this client${detail}: enable the grant type for the client at the provider, or change the connector's configuration`
      case "transient": {
        const wait =
          this.retryAfterMs === undefined ? "retry later" : `retry in ${Math.ceil(this.retryAfterMs / 1000)} seconds`
        return `${endpoint} is unavailable for ${request}${detail}: ${wait}`
      }
      case "invalid_response":
        return `${endpoint} sent an invalid answer to ${request}${detail}: check that the connector's endpoint is the provider's OAuth ${endpointName} endpoint`
      case "authorization_pending":
        return `${endpoint} answered ${request}${detail}: the user has not completed the authorization yet; poll again after the interval`
      case "slow_down":
        return `${endpoint} asked to poll less often for ${request}${detail}: wait 5 seconds more between polls`
      case "expired_token":
        return `${endpoint} refused ${request}${detail}: the device code has expired; start a new device authorization`
      case "access_denied":
        return `${endpoint} refused ${request}${detail}: the user denied the authorization`
      default:
        return `${endpoint} refused ${request}${detail}: check the connector's configuration against the provider's documentation`
    }
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Configuration
// ---------------------------------------------------------------------------------------------------------------

/**
 * The limits of the client.
 *
 * @since 0.1.0
 * @category models
 */
export interface ProviderClientSettings {
  /** The limit of one attempt, body included (default 10 seconds). */
  readonly timeout: Duration.DurationInput
  /** How many times a transient failure is retried (default 2). */
  readonly retries: number
  /** The first backoff delay; it doubles with each retry, with jitter (default 500 milliseconds). */
  readonly retryBaseDelay: Duration.DurationInput
  /** A `Retry-After` longer than this is not waited for: the error is returned (default 30 seconds). */
  readonly maxRetryAfter: Duration.DurationInput
}

/**
 * The defaults of {@link ProviderClientSettings}.
 *
 * @since 0.1.0
 * @category constants
 */
export const defaultSettings: ProviderClientSettings = {
  timeout: Duration.seconds(10),
  retries: 2,
  retryBaseDelay: Duration.millis(500),
  maxRetryAfter: Duration.seconds(30)
}

/**
 * The limits the operations of {@link ProviderClient} use; {@link defaultSettings} unless
 * provided.
 *
 * @since 0.1.0
 * @category tags
 */
export class ProviderClientConfig extends Context.Reference<ProviderClientConfig>()(
  "effect-connect/broker/ProviderClientConfig",
  { defaultValue: (): ProviderClientSettings => defaultSettings }
) {
  /** The defaults, with the given settings in their place. */
  static readonly layer = (settings: Partial<ProviderClientSettings>): Layer.Layer<ProviderClientConfig> =>
    Layer.succeed(ProviderClientConfig, { ...defaultSettings, ...settings })
}

// ---------------------------------------------------------------------------------------------------------------
// Sending
// ---------------------------------------------------------------------------------------------------------------

/** Why one attempt failed; `transient` ones are retried. */
interface Problem {
  readonly kind: ProviderErrorKind
  readonly status?: number
  readonly code?: string
  readonly description?: string
  readonly reason?: string
  readonly retryAfterMs?: number
  readonly intervalMs?: number
}

/** An answer as read off the wire. */
interface Answer {
  readonly status: number
  readonly text: string
  readonly contentType: string | undefined
  readonly retryAfter: string | undefined
  /** When the request of this answer was sent. */
  readonly sentAt: number
  readonly receivedAt: number
}

/** What a call is about, for its error. */
interface Subject {
  readonly operation: "token" | "revocation" | "device_authorization"
  readonly grantType?: string
  readonly tokenTypeHint?: string
}

interface Call<A> {
  readonly subject: Subject
  readonly endpoint: string
  readonly client: ClientCredentials
  readonly params: ReadonlyArray<readonly [string, string]>
  /** Every secret the request carries, blanked out of any text that reaches an error. */
  readonly secrets: ReadonlyArray<string>
  readonly interpret: (answer: Answer) => Effect.Effect<A, Problem>
  /** A request of its own instead of the form authenticated as the client (GitHub App installation tokens). */
  readonly build?: (url: URL) => HttpClientRequest.HttpClientRequest
  /** The parameters as a JSON object instead of a form (Notion's revocation). */
  readonly body?: "json"
  /** Headers the provider requires besides the protocol's (Notion's `Notion-Version`). */
  readonly headers?: { readonly [name: string]: string } | undefined
}

const optional = <K extends string, V>(key: K, value: V | undefined): { readonly [P in K]?: V } =>
  (value === undefined ? {} : { [key]: value }) as { readonly [P in K]?: V }

const is2xx = (status: number): boolean => status >= 200 && status < 300

/** The message of an error and of its causes, such as `fetch failed: connect ECONNREFUSED 127.0.0.1:9`. */
const causeText = (cause: unknown): string | undefined => {
  const parts: Array<string> = []
  let current = cause
  for (let depth = 0; depth < 4 && current instanceof Error; depth++) {
    if (current.message.length > 0 && !parts.includes(current.message)) parts.push(current.message)
    current = current.cause
  }
  return parts.length === 0 ? undefined : parts.join(": ")
}

const fromHttpError = (error: HttpClientError.HttpClientError): Problem => {
  const cause = causeText(error.cause) ?? error.description
  if (error._tag === "RequestError") {
    if (error.reason !== "Transport") {
      return { kind: "other", reason: `the request could not be made (${error.reason})` }
    }
    return { kind: "transient", reason: cause === undefined ? "the request failed" : `the request failed: ${cause}` }
  }
  return {
    kind: "transient",
    status: error.response.status,
    reason: cause === undefined ? "the answer could not be read" : `the answer could not be read: ${cause}`
  }
}

/**
 * The interval a `slow_down` answer names, in milliseconds: GitHub sends the
 * new one, in seconds, a number or (in a form body) a numeric string
 * (https://docs.github.com/en/apps/oauth-apps/building-oauth-apps/authorizing-oauth-apps#error-codes-for-the-device-flow).
 */
const slowDownInterval = (body: unknown): number | undefined => {
  const raw = isRecord(body) ? body.interval : undefined
  const seconds = typeof raw === "string" && raw.trim() !== "" ? Number(raw) : raw
  return typeof seconds === "number" && Number.isFinite(seconds) && seconds > 0 ? Math.round(seconds * 1000) : undefined
}

/** The problem an error answer (or an error sent with a 2xx status) reports. */
const problemOf = (answer: Answer, body: unknown): Problem => {
  const { code, description } = errorOfAnyBody(body)
  const kind = kindOf(answer.status, code)
  const retryAfterMs = kind === "transient" ? parseRetryAfter(answer.retryAfter, answer.receivedAt) : undefined
  return {
    kind,
    status: answer.status,
    ...optional("code", code),
    ...optional("description", description),
    ...optional("retryAfterMs", retryAfterMs),
    ...optional("intervalMs", kind === "slow_down" ? slowDownInterval(body) : undefined),
    ...(code === undefined && description === undefined && answer.text.trim().length > 0 && body === undefined
      ? { reason: `the body is not JSON (${answer.text.length} bytes${contentTypeText(answer)})` }
      : {})
  }
}

const contentTypeText = (answer: Answer): string =>
  answer.contentType === undefined ? "" : `, ${answer.contentType.split(";")[0]?.trim()}`

const endpointUrl = (raw: string): URL | undefined => {
  try {
    const url = new URL(raw)
    const http = url.protocol === "https:" || url.protocol === "http:"
    return http && url.username === "" && url.password === "" ? url : undefined
  } catch {
    return undefined
  }
}

const schedule = (settings: ProviderClientSettings) =>
  retrySchedule(settings, (problem: Problem) =>
    problem.kind === "transient" ? { retryAfterMs: problem.retryAfterMs } : undefined
  )

/** What the operations of a client are built over. */
interface Transport {
  readonly http: HttpClient.HttpClient
  readonly allowedHosts: ReadonlySet<string>
  readonly lookup: Lookup
}

/** The connector setting each operation's endpoint comes from, for the error that refuses it. */
const ENDPOINT_FIELDS: { readonly [K in Subject["operation"]]: string } = {
  token: "tokenEndpoint",
  revocation: "revocationEndpoint",
  device_authorization: "deviceAuthorizationEndpoint"
}

/** The error of a call, with every secret of the request blanked out of the provider's text. */
const errorFor =
  <A>(call: Call<A>, url: URL | undefined) =>
  (problem: Problem, attempts: number): ProviderError => {
    const clean = (text: string | undefined, max: number) =>
      text === undefined ? undefined : cleanText(text, call.secrets, max)
    return new ProviderError({
      kind: problem.kind,
      endpoint: url === undefined ? "(invalid URL)" : endpointForDisplay(url),
      operation: call.subject.operation,
      ...optional("grantType", call.subject.grantType),
      ...optional("tokenTypeHint", call.subject.tokenTypeHint),
      ...optional("status", problem.status),
      ...optional("code", clean(problem.code, CODE_LIMIT)),
      ...optional("description", clean(problem.description, DESCRIPTION_LIMIT)),
      ...optional("reason", clean(problem.reason, DESCRIPTION_LIMIT)),
      attempts,
      ...optional("retryAfterMs", problem.retryAfterMs),
      ...optional("intervalMs", problem.intervalMs)
    })
  }

/** The form request of a call, authenticated as the client's method says. */
const requestOf = <A>(call: Call<A>, url: URL): HttpClientRequest.HttpClientRequest => {
  if (call.build !== undefined) return call.build(url)
  const params: Array<readonly [string, string]> = [...call.params]
  let request = HttpClientRequest.post(url).pipe(
    HttpClientRequest.setHeaders(call.headers ?? {}),
    HttpClientRequest.acceptJson
  )
  const secret = Redacted.value(call.client.clientSecret)
  if (call.client.authMethod === "client_secret_basic") {
    request = HttpClientRequest.setHeader(request, "authorization", basicAuthorization(call.client.clientId, secret))
  } else {
    params.push(["client_id", call.client.clientId], ["client_secret", secret])
  }
  if (call.body === "json") return HttpClientRequest.bodyUnsafeJson(request, Object.fromEntries(params))
  return HttpClientRequest.bodyUrlParams(request, params)
}

/** One attempt: the answer as read off the wire, within the timeout. */
const exchangeOf = (
  http: HttpClient.HttpClient,
  request: HttpClientRequest.HttpClientRequest,
  timeout: Duration.DurationInput
): Effect.Effect<Answer, Problem> =>
  Effect.gen(function* () {
    const sentAt = yield* Clock.currentTimeMillis
    const response = yield* http.execute(request)
    const text = yield* response.text
    const receivedAt = yield* Clock.currentTimeMillis
    yield* Effect.annotateCurrentSpan("http.response.status_code", response.status)
    return {
      status: response.status,
      text,
      contentType: response.headers["content-type"],
      retryAfter: response.headers["retry-after"],
      sentAt,
      receivedAt
    }
  }).pipe(
    Effect.mapError(fromHttpError),
    Effect.timeoutFail({
      duration: timeout,
      onTimeout: (): Problem => ({ kind: "transient", reason: `timed out after ${Duration.format(timeout)}` })
    })
  )

/**
 * One attempt, observed: a span (attempt number, HTTP status, the provider's
 * error code), the call counted and timed by connector, kind and outcome.
 */
const observed = <A>(call: Call<A>, attempt: number, effect: Effect.Effect<A, Problem>): Effect.Effect<A, Problem> => {
  const kind = call.subject.grantType ?? call.subject.operation
  return Effect.flatMap(
    Effect.zip(FiberRef.get(Metrics.currentConnector), Clock.currentTimeMillis),
    ([connector, start]) =>
      effect.pipe(
        Effect.tapError((problem) =>
          Effect.annotateCurrentSpan({
            "oauth.error_kind": problem.kind,
            ...(problem.status === undefined ? {} : { "http.response.status_code": problem.status }),
            ...(problem.code === undefined ? {} : { "oauth.error": cleanText(problem.code, call.secrets, CODE_LIMIT) })
          })
        ),
        Effect.onExit((exit) =>
          Effect.flatMap(Clock.currentTimeMillis, (end) => {
            const outcome = Exit.isSuccess(exit)
              ? "ok"
              : Option.match(Cause.failureOption(exit.cause), { onNone: () => "interrupted", onSome: (p) => p.kind })
            return Effect.zipRight(
              Metrics.count(Metrics.providerRequests, { connector, kind, outcome }),
              Metrics.observe(Metrics.providerDuration, { connector, kind }, (end - start) / 1000)
            )
          })
        ),
        Effect.withSpan("ProviderClient.attempt", {
          kind: "client",
          attributes: { "connect.connector": connector, "oauth.grant_type": kind, "connect.attempt": attempt }
        })
      )
  )
}

/** Sends a call, with a timeout on each attempt and retries of transient failures. */
const send =
  (transport: Transport) =>
  <A>(call: Call<A>): Effect.Effect<A, ProviderError> =>
    Effect.gen(function* () {
      const url = endpointUrl(call.endpoint)
      const toError = errorFor(call, url)
      if (url === undefined) {
        return yield* toError(
          { kind: "other", reason: "the endpoint is not an absolute http(s) URL without user info" },
          0
        )
      }
      const settings = yield* ProviderClientConfig
      const forbidden = yield* forbiddenAddresses(url, {
        allowedHosts: transport.allowedHosts,
        lookup: transport.lookup,
        timeout: Duration.decode(settings.timeout)
      })
      if (forbidden.length > 0) {
        const field = ENDPOINT_FIELDS[call.subject.operation]
        const reason = `${field} ${url.hostname} resolves to ${forbidden[0]}, a link-local or cloud metadata address: refused`
        yield* Effect.logWarning(`a provider request was not sent: ${reason}`, { addresses: forbidden })
        return yield* toError({ kind: "other", reason }, 0)
      }

      const exchange = exchangeOf(transport.http, requestOf(call, url), settings.timeout)
      let attempts = 0
      return yield* Effect.suspend(() => {
        attempts++
        return observed(call, attempts, Effect.flatMap(exchange, call.interpret))
      }).pipe(
        Effect.retry(schedule(settings)),
        Effect.mapError((problem) => toError(problem, attempts))
      )
    })

// ---------------------------------------------------------------------------------------------------------------
// Token requests
// ---------------------------------------------------------------------------------------------------------------

const GRANT_TYPES: { readonly [K in Grant["type"]]: string } = {
  client_credentials: "client_credentials",
  refresh_token: "refresh_token",
  authorization_code: "authorization_code",
  jwt_bearer: "urn:ietf:params:oauth:grant-type:jwt-bearer",
  token_exchange: "urn:ietf:params:oauth:grant-type:token-exchange",
  device_code: "urn:ietf:params:oauth:grant-type:device_code",
  app_installation: "app_installation"
}

/** The form parameters of a grant and the secrets among them. */
const grantParams = (
  grant: Grant
): { readonly params: ReadonlyArray<readonly [string, string]>; readonly secrets: ReadonlyArray<string> } => {
  const params: Array<readonly [string, string]> = [["grant_type", GRANT_TYPES[grant.type]]]
  const secrets: Array<string> = []
  const add = (name: string, value: string | undefined) => {
    if (value !== undefined) params.push([name, value])
  }
  const addSecret = (name: string, value: Redacted.Redacted<string> | undefined) => {
    if (value === undefined) return
    const text = Redacted.value(value)
    secrets.push(text)
    params.push([name, text])
  }
  const addEach = (name: string, values: ReadonlyArray<string> | undefined) => {
    for (const value of values ?? []) params.push([name, value])
  }
  const addScope = (scope: ReadonlyArray<string> | undefined) => {
    if (scope !== undefined && scope.length > 0) params.push(["scope", scope.join(" ")])
  }
  switch (grant.type) {
    case "client_credentials":
      addScope(grant.scope)
      addEach("resource", grant.resource)
      addEach("audience", grant.audience)
      if (grant.authorizationDetails !== undefined && grant.authorizationDetails.length > 0) {
        add("authorization_details", JSON.stringify(grant.authorizationDetails))
      }
      break
    case "refresh_token":
      addSecret("refresh_token", grant.refreshToken)
      addScope(grant.scope)
      addEach("resource", grant.resource)
      break
    case "authorization_code":
      addSecret("code", grant.code)
      add("redirect_uri", grant.redirectUri)
      addSecret("code_verifier", grant.codeVerifier)
      addEach("resource", grant.resource)
      for (const [name, value] of Object.entries(grant.extraParams ?? {})) {
        // The grant's own parameters and the client's credentials stay the broker's, whatever a caller passes.
        // An empty value is how a connector drops a parameter its preset sends.
        if (value !== "" && !name.startsWith("client_") && !params.some(([set]) => set === name)) add(name, value)
      }
      break
    case "jwt_bearer":
      addSecret("assertion", grant.assertion)
      addScope(grant.scope)
      addEach("resource", grant.resource)
      addEach("audience", grant.audience)
      break
    case "token_exchange":
      addSecret("subject_token", grant.subjectToken)
      add("subject_token_type", grant.subjectTokenType)
      add("requested_token_type", grant.requestedTokenType)
      addSecret("actor_token", grant.actorToken)
      add("actor_token_type", grant.actorTokenType)
      addEach("audience", grant.audience)
      addEach("resource", grant.resource)
      addScope(grant.scope)
      break
    case "device_code":
      addSecret("device_code", grant.deviceCode)
      if (grant.scopes !== undefined && grant.scopes.length > 0) add("scopes", grant.scopes.join(" "))
      break
    case "app_installation":
      // Sent as a bearer header, not in a form.
      secrets.push(Redacted.value(grant.appJwt))
      break
  }
  return { params, secrets }
}

/** A number of seconds: a number, or a numeric string (Azure AD v1 sends `"3599"`). */
const Seconds = Schema.Union(Schema.Number, Schema.compose(Schema.Trim, Schema.NumberFromString))
  .pipe(Schema.filter((seconds) => Number.isFinite(seconds) && seconds >= 0))
  .annotations({
    // One message, whatever failed inside: the inner ones quote the value.
    message: () => ({ message: "Expected a number of seconds (at least 0), or a numeric string", override: true })
  })

const NonBlankString = Schema.String.pipe(
  Schema.filter((text) => text.trim().length > 0 || "Expected a non-empty string")
)

/** A successful token response (RFC 6749 section 5.1), as far as the broker relies on it. */
const TokenResponse = Schema.Struct({
  access_token: NonBlankString,
  token_type: optionalNullable(Schema.String),
  expires_in: optionalNullable(Seconds),
  refresh_token: optionalNullable(Schema.String),
  refresh_token_expires_in: optionalNullable(Seconds),
  scope: optionalNullable(Schema.Union(Schema.String, Schema.Array(Schema.String))),
  id_token: optionalNullable(Schema.String),
  issued_token_type: optionalNullable(Schema.String)
})

const decodeTokenResponse = Schema.decodeUnknownEither(TokenResponse, { errors: "all" })

/**
 * The issues of a response that failed validation, one per field, without the
 * values (they may be tokens). The `null` and `undefined` alternatives of an
 * optional field are left out once the field has another issue.
 */
const describeIssues = (error: ParseResult.ParseError): string => {
  const issues = describeParseError(error)
  const noise = (message: string) => message === "Expected null" || message === "Expected undefined"
  const lines = issues
    .filter(
      (issue) => !noise(issue.message) || !issues.some((other) => other.path === issue.path && !noise(other.message))
    )
    .map((issue) => (issue.path === "" ? issue.message : `${issue.path}: ${issue.message}`))
  return [...new Set(lines)].join("; ")
}

const tokenTypeOf = (sent: string | undefined): string => {
  const type = sent?.trim() ?? ""
  if (type === "" || type.toLowerCase() === "bearer") return "Bearer"
  if (type.toLowerCase() === "dpop") return "DPoP"
  return type
}

// Slack's incoming-webhook URL lets anyone post: a secret too.
const secretName = /token|secret|password|assertion|code|webhook/i
const standardMembers = new Set(["token_type", "expires_in", "refresh_token_expires_in", "scope", "issued_token_type"])

/** A response's non-standard members without anything that may be a secret. */
const publicFields = (body: Readonly<Record<string, unknown>>): { readonly [key: string]: unknown } => {
  const strip = (value: unknown, depth: number): unknown => {
    if (Array.isArray(value)) return depth > 8 ? [] : value.map((item) => strip(item, depth + 1))
    if (!isRecord(value)) return value
    const out: Record<string, unknown> = {}
    for (const [key, member] of Object.entries(value)) {
      if (!secretName.test(key) && depth <= 8) out[key] = strip(member, depth + 1)
    }
    return out
  }
  const out: Record<string, unknown> = {}
  for (const [key, member] of Object.entries(body)) {
    if (!standardMembers.has(key) && !secretName.test(key)) out[key] = strip(member, 1)
  }
  return out
}

const nonEmpty = (text: string | undefined): string | undefined =>
  text === undefined || text.length === 0 ? undefined : text

/**
 * A success answer's body as a JSON object, or the problem it is: an error
 * (whatever its status), an empty body, not JSON, not an object.
 */
const successObject = (
  answer: Answer
): Either.Either<
  { readonly body: Record<string, unknown>; readonly invalid: (reason: string) => Effect.Effect<never, Problem> },
  Problem
> => {
  const body = readBody(answer.text, answer.contentType)
  if (!is2xx(answer.status) || errorOf(body) !== undefined) return Either.left(problemOf(answer, body))
  const problem = (reason: string): Problem => ({ kind: "invalid_response", status: answer.status, reason })
  if (body === undefined) {
    return Either.left(
      problem(
        answer.text.trim().length === 0
          ? "the body is empty"
          : `the body is not JSON (${answer.text.length} bytes${contentTypeText(answer)})`
      )
    )
  }
  if (!isRecord(body)) return Either.left(problem("the body is not a JSON object"))
  return Either.right({ body, invalid: (reason) => Effect.fail(problem(reason)) })
}

/** The part of an answer that is the token: the answer, or its `member` (Slack's `authed_user`). */
const tokenPart = (
  body: Record<string, unknown>,
  member: string | undefined
): Either.Either<Record<string, unknown>, string> => {
  if (member === undefined) return Either.right(body)
  const part = body[member]
  return isRecord(part) ? Either.right(part) : Either.left(`not a token response: ${member} is missing`)
}

const interpretToken =
  (endpoint: ProviderEndpoint, member?: string) =>
  (answer: Answer): Effect.Effect<ProviderToken, Problem> => {
    const checked = successObject(answer)
    if (Either.isLeft(checked)) return Effect.fail(checked.left)
    const { invalid } = checked.right
    const part = tokenPart(checked.right.body, member)
    if (Either.isLeft(part)) return invalid(part.left)
    const body = part.right
    const decoded = decodeTokenResponse(body)
    if (decoded._tag === "Left") {
      return invalid(`not a token response: ${describeIssues(decoded.left)}`)
    }
    const response = decoded.right
    const lifetime = response.expires_in ?? endpoint.defaultLifetimeSeconds
    const refreshToken = nonEmpty(response.refresh_token)
    const scope = typeof response.scope === "string" ? response.scope : response.scope?.join(" ")
    const idToken = nonEmpty(response.id_token)
    const token: ProviderToken = {
      accessToken: Redacted.make(response.access_token),
      tokenType: tokenTypeOf(response.token_type),
      expiresAt: answer.sentAt + Math.round(lifetime * 1000),
      refreshToken: refreshToken === undefined ? undefined : Redacted.make(refreshToken),
      ...optional(
        "refreshTokenExpiresAt",
        response.refresh_token_expires_in === undefined
          ? undefined
          : answer.sentAt + Math.round(response.refresh_token_expires_in * 1000)
      ),
      ...optional("scope", scope),
      ...optional("idToken", idToken === undefined ? undefined : Redacted.make(idToken)),
      ...optional("issuedTokenType", nonEmpty(response.issued_token_type)),
      expiresInSent: response.expires_in !== undefined,
      fields: publicFields(body)
    }
    return Effect.succeed(token)
  }

/** A GitHub App installation token's answer (`expires_at` an ISO 8601 date). */
const InstallationTokenResponse = Schema.Struct({
  token: NonBlankString,
  expires_at: Schema.String.pipe(
    Schema.filter((text) => !Number.isNaN(Date.parse(text)) || "Expected an ISO 8601 date")
  )
})

const decodeInstallationToken = Schema.decodeUnknownEither(InstallationTokenResponse, { errors: "all" })

const interpretInstallationToken = (answer: Answer): Effect.Effect<ProviderToken, Problem> => {
  const checked = successObject(answer)
  if (Either.isLeft(checked)) return Effect.fail(checked.left)
  const { body, invalid } = checked.right
  const decoded = decodeInstallationToken(body)
  if (decoded._tag === "Left") return invalid(`not an installation token: ${describeIssues(decoded.left)}`)
  return Effect.succeed({
    accessToken: Redacted.make(decoded.right.token),
    tokenType: "Bearer",
    expiresAt: Date.parse(decoded.right.expires_at),
    refreshToken: undefined,
    expiresInSent: true,
    fields: publicFields(body)
  })
}

/**
 * A GitHub App installation token: `POST` with the app's JWT as bearer and
 * GitHub's media type, no body, no client credentials.
 */
const requestInstallationToken =
  (transport: Transport) =>
  (endpoint: ProviderEndpoint, grant: AppInstallationGrant): Effect.Effect<ProviderToken, ProviderError> => {
    const jwt = Redacted.value(grant.appJwt)
    return send(transport)({
      subject: { operation: "token", grantType: grant.type },
      endpoint: endpoint.tokenEndpoint,
      client: endpoint,
      params: [],
      secrets: [jwt],
      interpret: interpretInstallationToken,
      build: (url) =>
        HttpClientRequest.post(url).pipe(
          HttpClientRequest.setHeaders({
            accept: "application/vnd.github+json",
            authorization: `Bearer ${jwt}`,
            "x-github-api-version": "2022-11-28"
          })
        )
    }).pipe(Effect.withSpan("ProviderClient.requestInstallationToken", { kind: "client" }))
  }

/**
 * What a refused refresh means: a 400 with an empty body or with an error code
 * nobody knows is the provider refusing the refresh token (some providers
 * answer so for a revoked or spent one), so the user must authorize again.
 * 401 and 403 stay what they are: the broker's own client is refused.
 */
const refusedRefresh = (problem: Problem): ProviderErrorKind => {
  const kind = outsideDeviceFlow(problem.kind)
  if (problem.status !== 400 || kind !== "other") return kind
  const unknownCode = problem.code !== undefined && ERROR_CODE_KINDS[problem.code.toLowerCase()] === undefined
  const empty = problem.code === undefined && problem.description === undefined && problem.reason === undefined
  return unknownCode || empty ? "invalid_grant" : kind
}

/**
 * Asks a provider's token endpoint for a token.
 *
 * The request is form-encoded: `scope` space-separated, `resource` and
 * `audience` repeated, `authorization_details` as JSON. The answer is
 * validated: `access_token` must be a non-empty string; `token_type` may be in
 * any case (missing reads as `Bearer`); `expires_in` may be a number, a numeric
 * string, or missing (then `defaultLifetimeSeconds`). An error sent with HTTP
 * 200 is an error. Transient failures are retried within the limits of
 * {@link ProviderClientConfig}.
 */
const requestToken =
  (transport: Transport) =>
  (endpoint: ProviderEndpoint, grant: Grant): Effect.Effect<ProviderToken, ProviderError> => {
    if (grant.type === "app_installation") return requestInstallationToken(transport)(endpoint, grant)
    const { params, secrets } = grantParams(grant)
    const interpret = interpretToken(endpoint, grant.type === "authorization_code" ? grant.tokenMember : undefined)
    return send(transport)({
      subject: { operation: "token", grantType: grant.type },
      endpoint:
        grant.type === "refresh_token" ? (endpoint.refreshEndpoint ?? endpoint.tokenEndpoint) : endpoint.tokenEndpoint,
      client: endpoint,
      params,
      secrets: [Redacted.value(endpoint.clientSecret), ...secrets],
      // The device flow's answers mean something else to every other grant.
      interpret:
        grant.type === "device_code"
          ? interpret
          : (answer) =>
              Effect.mapError(
                interpret(answer),
                (problem): Problem => ({
                  ...problem,
                  kind: grant.type === "refresh_token" ? refusedRefresh(problem) : outsideDeviceFlow(problem.kind)
                })
              )
    }).pipe(
      Effect.withSpan("ProviderClient.requestToken", {
        kind: "client",
        attributes: { "oauth.grant_type": grant.type }
      })
    )
  }

// ---------------------------------------------------------------------------------------------------------------
// Revocation
// ---------------------------------------------------------------------------------------------------------------

const interpretRevocation = (answer: Answer): Effect.Effect<void, Problem> => {
  const body = readBody(answer.text, answer.contentType)
  if (is2xx(answer.status) && errorOf(body) === undefined) return Effect.void
  const sent = problemOf(answer, body)
  const problem: Problem = { ...sent, kind: outsideDeviceFlow(sent.kind) }
  // A token the provider no longer knows is as good as revoked (Google answers 400 `invalid_token`).
  return problem.kind === "invalid_grant" ? Effect.void : Effect.fail(problem)
}

/**
 * Revokes a token at a provider's revocation endpoint (RFC 7009).
 *
 * Any 2xx answer is success, whatever its body, as is an answer saying the
 * token is already invalid (RFC 7009 answers 200 for unknown tokens; Google
 * answers 400 `invalid_token`). A provider that cannot revoke that kind of
 * token fails with kind `unsupported` and code `unsupported_token_type`.
 * Transient failures are retried within the limits of {@link ProviderClientConfig}.
 */
const revokeToken =
  (transport: Transport) =>
  (
    endpoint: RevocationEndpoint,
    token: Redacted.Redacted<string>,
    hint: "access_token" | "refresh_token"
  ): Effect.Effect<void, ProviderError> => {
    const value = Redacted.value(token)
    const json = endpoint.request?.body === "json"
    return send(transport)({
      subject: { operation: "revocation", tokenTypeHint: hint },
      endpoint: endpoint.revocationEndpoint,
      client: endpoint,
      // Notion's body names the token alone (https://developers.notion.com/reference/revoke-token).
      params: json
        ? [["token", value]]
        : [
            ["token", value],
            ["token_type_hint", hint]
          ],
      secrets: [Redacted.value(endpoint.clientSecret), value],
      interpret: interpretRevocation,
      headers: endpoint.request?.headers,
      ...(json ? { body: "json" as const } : {})
    }).pipe(
      Effect.withSpan("ProviderClient.revokeToken", {
        kind: "client",
        attributes: { "oauth.token_type_hint": hint }
      })
    )
  }

// ---------------------------------------------------------------------------------------------------------------
// Device authorization (RFC 8628)
// ---------------------------------------------------------------------------------------------------------------

/**
 * A provider's device authorization endpoint (RFC 8628 section 3.1) and the
 * broker's credentials there.
 *
 * @since 0.1.0
 * @category models
 */
export interface DeviceAuthorizationEndpoint extends ClientCredentials {
  readonly deviceAuthorizationEndpoint: string
  /** The parameter the scopes go in: `scope` (RFC 8628), or `scopes` as Twitch names it. */
  readonly scopeParameter?: "scope" | "scopes" | undefined
}

/**
 * A device authorization as the provider started it, validated.
 *
 * @since 0.1.0
 * @category models
 */
export interface DeviceAuthorization {
  /** The code the broker polls the token endpoint with: a secret. */
  readonly deviceCode: Redacted.Redacted<string>
  /** The code the user types at the verification page. */
  readonly userCode: string
  /** Where the user goes (`verification_uri`, or `verification_url` as Google sends it). */
  readonly verificationUri: string
  /** The verification page with the user code filled in, when the provider offers one. */
  readonly verificationUriComplete?: string
  /** When the device code expires, in milliseconds since the epoch: the time the request was sent plus `expires_in`. */
  readonly expiresAt: number
  /** How long to wait between polls, in milliseconds: `interval`, 5 seconds when absent, at least 1 second. */
  readonly intervalMs: number
}

/**
 * What a device authorization asks for.
 *
 * @since 0.1.0
 * @category models
 */
export interface DeviceAuthorizationRequest {
  readonly scope?: ReadonlyArray<string> | undefined
  readonly resource?: ReadonlyArray<string> | undefined
}

/** RFC 8628 section 3.2: polls every 5 seconds when the provider does not say. */
const DEFAULT_INTERVAL_SECONDS = 5

const DeviceAuthorizationResponse = Schema.Struct({
  device_code: NonBlankString,
  user_code: NonBlankString,
  verification_uri: optionalNullable(Schema.String),
  verification_url: optionalNullable(Schema.String),
  verification_uri_complete: optionalNullable(Schema.String),
  expires_in: Seconds,
  interval: optionalNullable(Seconds)
})

const decodeDeviceAuthorizationResponse = Schema.decodeUnknownEither(DeviceAuthorizationResponse, { errors: "all" })

const isWebUrl = (text: string): boolean => {
  const url = endpointUrl(text)
  return url !== undefined && url.hash === ""
}

const interpretDeviceAuthorization = (answer: Answer): Effect.Effect<DeviceAuthorization, Problem> => {
  const checked = successObject(answer)
  if (Either.isLeft(checked)) return Effect.fail(checked.left)
  const { body, invalid } = checked.right
  const decoded = decodeDeviceAuthorizationResponse(body)
  if (decoded._tag === "Left") return invalid(`not a device authorization response: ${describeIssues(decoded.left)}`)
  const response = decoded.right
  const verificationUri = nonEmpty(response.verification_uri) ?? nonEmpty(response.verification_url)
  if (verificationUri === undefined) return invalid("not a device authorization response: verification_uri is missing")
  if (!isWebUrl(verificationUri)) return invalid("verification_uri: Expected an absolute http(s) URL")
  const complete = nonEmpty(response.verification_uri_complete)
  if (complete !== undefined && !isWebUrl(complete)) {
    return invalid("verification_uri_complete: Expected an absolute http(s) URL")
  }
  if (response.expires_in <= 0) return invalid("expires_in: Expected a number of seconds greater than 0")
  return Effect.succeed({
    deviceCode: Redacted.make(response.device_code),
    userCode: response.user_code,
    verificationUri,
    ...optional("verificationUriComplete", complete),
    expiresAt: answer.sentAt + Math.round(response.expires_in * 1000),
    intervalMs: Math.max(1000, Math.round((response.interval ?? DEFAULT_INTERVAL_SECONDS) * 1000))
  })
}

/**
 * Starts a device authorization at a provider's device authorization endpoint
 * (RFC 8628 section 3.1): `scope` space-separated and `resource` repeated,
 * authenticated as the client is at the token endpoint.
 *
 * The answer is validated: `device_code` and `user_code` must be non-empty
 * strings, `verification_uri` (or `verification_url`, as Google sends it) and
 * `verification_uri_complete` absolute http(s) URLs, `expires_in` a positive
 * number of seconds; `interval` defaults to 5 seconds. The device code never
 * appears in an error. Transient failures are retried within the limits of
 * {@link ProviderClientConfig}: a retry only makes a new device code.
 */
const requestDeviceAuthorization =
  (transport: Transport) =>
  (
    endpoint: DeviceAuthorizationEndpoint,
    request: DeviceAuthorizationRequest
  ): Effect.Effect<DeviceAuthorization, ProviderError> => {
    const params: Array<readonly [string, string]> = []
    if (request.scope !== undefined && request.scope.length > 0) {
      params.push([endpoint.scopeParameter ?? "scope", request.scope.join(" ")])
    }
    for (const resource of request.resource ?? []) params.push(["resource", resource])
    return send(transport)({
      subject: { operation: "device_authorization" },
      endpoint: endpoint.deviceAuthorizationEndpoint,
      client: endpoint,
      params,
      secrets: [Redacted.value(endpoint.clientSecret)],
      interpret: interpretDeviceAuthorization
    }).pipe(Effect.withSpan("ProviderClient.requestDeviceAuthorization", { kind: "client" }))
  }

// ---------------------------------------------------------------------------------------------------------------
// Service
// ---------------------------------------------------------------------------------------------------------------

/**
 * The operations of the client; each needs nothing from the context but reads
 * the caller's {@link ProviderClientConfig}.
 *
 * @since 0.1.0
 * @category models
 */
export interface ProviderClientService {
  /** Asks a provider's token endpoint for a token (any {@link Grant}); transient failures are retried. */
  readonly requestToken: (endpoint: ProviderEndpoint, grant: Grant) => Effect.Effect<ProviderToken, ProviderError>
  /** Revokes a token at a provider's revocation endpoint (RFC 7009); a token already invalid counts as revoked. */
  readonly revokeToken: (
    endpoint: RevocationEndpoint,
    token: Redacted.Redacted<string>,
    hint: "access_token" | "refresh_token"
  ) => Effect.Effect<void, ProviderError>
  /** Starts a device authorization at a provider's device authorization endpoint (RFC 8628 section 3.1). */
  readonly requestDeviceAuthorization: (
    endpoint: DeviceAuthorizationEndpoint,
    request: DeviceAuthorizationRequest
  ) => Effect.Effect<DeviceAuthorization, ProviderError>
}

/**
 * How a client checks the hosts it connects to.
 *
 * @since 0.1.0
 * @category models
 */
export interface ProviderClientOptions {
  /** Hosts trusted as loopback is, not resolved (`CONNECT_ALLOWED_HTTP_HOSTS`); none by default. */
  readonly allowedHosts?: ReadonlySet<string>
  /** Resolves an endpoint's host to all its addresses; the system's resolver by default. */
  readonly lookup?: Lookup
}

/**
 * @since 0.1.0
 * @category models
 */
export type { Lookup }

/**
 * A client over the `HttpClient` of the context.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (
  options: ProviderClientOptions = {}
): Effect.Effect<ProviderClientService, never, HttpClient.HttpClient> =>
  Effect.map(HttpClient.HttpClient, (http) => {
    const transport: Transport = {
      http,
      allowedHosts: options.allowedHosts ?? new Set(),
      lookup: options.lookup ?? systemLookup
    }
    return {
      requestToken: requestToken(transport),
      revokeToken: revokeToken(transport),
      requestDeviceAuthorization: requestDeviceAuthorization(transport)
    }
  })

/**
 * The broker's client for providers' OAuth endpoints.
 *
 * @since 0.1.0
 * @category tags
 */
export class ProviderClient extends Context.Tag("effect-connect/broker/ProviderClient")<
  ProviderClient,
  ProviderClientService
>() {
  /** Over the `HttpClient` of the context, with no allowed hosts and the system's resolver. */
  static readonly layer: Layer.Layer<ProviderClient, never, HttpClient.HttpClient> = Layer.effect(
    ProviderClient,
    make()
  )

  /** Over the `HttpClient` of the context, trusting the hosts of `CONNECT_ALLOWED_HTTP_HOSTS`. */
  static readonly layerConfig: Layer.Layer<ProviderClient, never, HttpClient.HttpClient> = Layer.effect(
    ProviderClient,
    Effect.flatMap(allowedHttpHosts, (allowedHosts) => make({ allowedHosts }))
  )
}
