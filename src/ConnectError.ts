/**
 * Every way a Connect operation can fail, as tagged errors in the error channel,
 * and the one table that maps the wire protocol's error codes to them.
 *
 * Each error is an `Error` (so `instanceof` works from the Promise API too), has
 * a `_tag` for `Effect.catchTag`, and a message that says what to do.
 *
 * @since 0.1.0
 */
import { Predicate, Schema } from "effect"
import { isRecord } from "./internal/json.js"

const Vendor = Schema.Record({ key: Schema.String, value: Schema.Unknown })

/** Fields every error that a Connect server reports carries. */
const ServerErrorFields = {
  /** The connector the call was about. */
  connector: Schema.String,
  /** The server's own words, when it gave any. */
  detail: Schema.optional(Schema.String),
  /** The HTTP status, when the error came from a server. */
  status: Schema.optional(Schema.Number),
  /** Provider-specific details (`error.vendor` or `error.meta.vendor`). */
  vendor: Schema.optional(Vendor)
}

// A broker of ours sends our own message as the detail: say it once.
const withDetail = (text: string, detail: string | undefined): string =>
  detail === undefined || detail.length === 0 || detail === text ? text : `${text} (server: ${detail})`

/**
 * The user has not authorized the connector, or their grant is gone. Send them
 * to `authorizeUrl` (or start the flow with `startAuthorization`).
 *
 * Wire code `user_authorization_required`.
 *
 * @since 0.1.0
 * @category errors
 */
export class UserAuthorizationRequired extends Schema.TaggedError<UserAuthorizationRequired>()(
  "UserAuthorizationRequired",
  { ...ServerErrorFields, authorizeUrl: Schema.optional(Schema.String) }
) {
  /** The wire code. */
  get code(): string {
    return "user_authorization_required"
  }
  override get message(): string {
    const next =
      this.authorizeUrl === undefined
        ? "start the flow with startAuthorization()"
        : `send them to ${this.authorizeUrl} to connect their account`
    return withDetail(`The user must authorize connector "${this.connector}" first: ${next}`, this.detail)
  }
}

/**
 * No installation of the connector matches the request (a Slack workspace or a
 * GitHub organization has not installed the app). Install it at `installUrl`, or
 * pass the `installationId` of an existing installation.
 *
 * Wire code `connector_installation_required` (older servers:
 * `client_installation_required`).
 *
 * @since 0.1.0
 * @category errors
 */
export class ConnectorInstallationRequired extends Schema.TaggedError<ConnectorInstallationRequired>()(
  "ConnectorInstallationRequired",
  { ...ServerErrorFields, installUrl: Schema.optional(Schema.String) }
) {
  /** The wire code. */
  get code(): string {
    return "connector_installation_required"
  }
  override get message(): string {
    const next =
      this.installUrl === undefined
        ? "install it for the tenant, or pass the installationId of an existing installation"
        : `install it at ${this.installUrl}`
    return withDetail(`Connector "${this.connector}" needs an installation for this request: ${next}`, this.detail)
  }
}

/**
 * The connector cannot produce a token now: the grant was revoked or the
 * provider refused to refresh it. Ask the user to authorize again, or retry
 * later.
 *
 * Wire code `no_token`.
 *
 * @since 0.1.0
 * @category errors
 */
export class NoValidToken extends Schema.TaggedError<NoValidToken>()("NoValidToken", ServerErrorFields) {
  /** The wire code. */
  get code(): string {
    return "no_token"
  }
  override get message(): string {
    return withDetail(
      `Connector "${this.connector}" has no valid token to give (the grant was revoked or its refresh failed): authorize again, or retry later`,
      this.detail
    )
  }
}

/**
 * The caller's project is not linked to the connector. Link (attach) the
 * connector to the project.
 *
 * Wire code `client_not_linked_to_project`.
 *
 * @since 0.1.0
 * @category errors
 */
export class ClientNotLinkedToProject extends Schema.TaggedError<ClientNotLinkedToProject>()(
  "ClientNotLinkedToProject",
  ServerErrorFields
) {
  /** The wire code. */
  get code(): string {
    return "client_not_linked_to_project"
  }
  override get message(): string {
    return withDetail(
      `Your project is not linked to connector "${this.connector}": attach the connector to the project`,
      this.detail
    )
  }
}

/**
 * The caller's project is linked to the connector, but not for the caller's
 * environment (production, preview, development). Add the environment to the
 * link.
 *
 * Wire code `client_not_enabled_for_environment`.
 *
 * @since 0.1.0
 * @category errors
 */
export class ClientNotEnabledForEnvironment extends Schema.TaggedError<ClientNotEnabledForEnvironment>()(
  "ClientNotEnabledForEnvironment",
  ServerErrorFields
) {
  /** The wire code. */
  get code(): string {
    return "client_not_enabled_for_environment"
  }
  override get message(): string {
    return withDetail(
      `Connector "${this.connector}" is not enabled for this environment: add the environment to the project's link`,
      this.detail
    )
  }
}

/**
 * No connector with that uid or id exists for the caller.
 *
 * Wire code `not_found`.
 *
 * @since 0.1.0
 * @category errors
 */
export class ConnectorNotFound extends Schema.TaggedError<ConnectorNotFound>()("ConnectorNotFound", ServerErrorFields) {
  /** The wire code. */
  get code(): string {
    return "not_found"
  }
  override get message(): string {
    const own = `No connector "${this.connector}" exists for this caller`
    // A broker of ours says the same, with a "did you mean" when a connector's name is near.
    if (this.detail?.startsWith(own) === true) return this.detail
    return withDetail(`${own}: check its uid or id`, this.detail)
  }
}

/**
 * The server rejected the caller credential (missing, unknown or expired);
 * the message names where the credential came from when the client knows.
 *
 * Wire code `unauthorized`.
 *
 * @since 0.1.0
 * @category errors
 */
export class Unauthorized extends Schema.TaggedError<Unauthorized>()("Unauthorized", {
  ...ServerErrorFields,
  /**
   * Where the credential that was sent came from (`CONNECT_TOKEN`,
   * `VERCEL_OIDC_TOKEN`, `--token`, `ConnectClient.layer`), when the client
   * knows; never the credential itself. Not part of the wire envelope.
   */
  credentialSource: Schema.optional(Schema.String)
}) {
  /** The wire code. */
  get code(): string {
    return "unauthorized"
  }
  override get message(): string {
    const unnamed =
      "The Connect server rejected the caller credential: check CONNECT_TOKEN (or VERCEL_OIDC_TOKEN on Vercel)"
    if (this.credentialSource === undefined) return withDetail(unnamed, this.detail)
    return withDetail(
      `The Connect server rejected the caller credential given by ${this.credentialSource}: check that it is a key of this server`,
      this.detail === unnamed ? undefined : this.detail
    )
  }
}

/**
 * Too many requests. `retryAfterMs` is how long the server asked to wait, when
 * it said; the client has already retried within its limits.
 *
 * Wire code `rate_limited`.
 *
 * @since 0.1.0
 * @category errors
 */
export class RateLimited extends Schema.TaggedError<RateLimited>()("RateLimited", {
  ...ServerErrorFields,
  retryAfterMs: Schema.optional(Schema.Number)
}) {
  /** The wire code. */
  get code(): string {
    return "rate_limited"
  }
  override get message(): string {
    const wait =
      this.retryAfterMs === undefined ? "retry later" : `retry in ${Math.ceil(this.retryAfterMs / 1000)} seconds`
    return withDetail(`The Connect server is rate limiting this caller: ${wait}`, this.detail)
  }
}

/**
 * A field of a request and what is wrong with it.
 *
 * @since 0.1.0
 * @category models
 */
export const FieldIssue = Schema.Struct({ path: Schema.String, message: Schema.String })

/**
 * @since 0.1.0
 * @category models
 */
export interface FieldIssue extends Schema.Schema.Type<typeof FieldIssue> {}

/**
 * The request is invalid: `issues` names each offending field (`params.subject.id`)
 * and what was expected. Raised before anything is sent for bad input, and for a
 * server's `bad_request` answer (then `status` is 400).
 *
 * Wire code `bad_request`.
 *
 * @since 0.1.0
 * @category errors
 */
export class InvalidRequest extends Schema.TaggedError<InvalidRequest>()("InvalidRequest", {
  issues: Schema.Array(FieldIssue),
  connector: Schema.optional(Schema.String),
  status: Schema.optional(Schema.Number),
  detail: Schema.optional(Schema.String),
  vendor: Schema.optional(Vendor)
}) {
  /** The wire code. */
  get code(): string {
    return "bad_request"
  }
  override get message(): string {
    const issues = this.issues.map((issue) => (issue.path === "" ? issue.message : `${issue.path}: ${issue.message}`))
    const text = issues.length === 0 ? "the request was refused" : issues.join("; ")
    return withDetail(`Invalid request: ${text}`, issues.length === 0 ? this.detail : undefined)
  }
}

/**
 * The provider refused the broker itself: the connector is misconfigured (a
 * wrong client id or secret, an endpoint that redirects, a grant type the
 * client may not use). Retrying does not help; the operator must fix the
 * connector. `providerCode` is the provider's OAuth `error` code, when it
 * gave one (`invalid_client`, `unauthorized_client`, ...).
 *
 * Wire code `provider_error` (HTTP 502).
 *
 * @since 0.1.0
 * @category errors
 */
export class ProviderError extends Schema.TaggedError<ProviderError>()("ProviderError", {
  ...ServerErrorFields,
  providerCode: Schema.optional(Schema.String)
}) {
  /** The wire code. */
  get code(): string {
    return "provider_error"
  }
  override get message(): string {
    const code = this.providerCode === undefined ? "" : ` (${this.providerCode})`
    return withDetail(
      `The provider of connector "${this.connector}" refused the broker${code}: the connector is misconfigured; its operator must fix it`,
      this.detail
    )
  }
}

/**
 * The provider kept failing (network errors, timeouts, HTTP 5xx or 429) after
 * the broker's own retries, and after the client's: a token may still come
 * later (a broker keeps an answer that arrives after its deadline), so retry
 * later.
 *
 * Wire code `provider_unavailable` (HTTP 502).
 *
 * @since 0.1.0
 * @category errors
 */
export class ProviderUnavailable extends Schema.TaggedError<ProviderUnavailable>()(
  "ProviderUnavailable",
  ServerErrorFields
) {
  /** The wire code. */
  get code(): string {
    return "provider_unavailable"
  }
  override get message(): string {
    return withDetail(`The provider of connector "${this.connector}" is unavailable: retry later`, this.detail)
  }
}

/**
 * The Connect server could not be reached, timed out, or kept failing (HTTP 5xx)
 * after the client's retries. Transient: retry later.
 *
 * @since 0.1.0
 * @category errors
 */
export class ServiceUnavailable extends Schema.TaggedError<ServiceUnavailable>()("ServiceUnavailable", {
  url: Schema.String,
  reason: Schema.String,
  attempts: Schema.Number,
  status: Schema.optional(Schema.Number)
}) {
  override get message(): string {
    const tries = this.attempts === 1 ? "1 attempt" : `${this.attempts} attempts`
    return `The Connect server at ${this.url} is unavailable (${this.reason}, after ${tries}): retry later`
  }
}

/**
 * The server answered with a body that is not what the protocol defines
 * (not JSON, truncated, or missing a field). Nothing was cached.
 *
 * @since 0.1.0
 * @category errors
 */
export class InvalidResponse extends Schema.TaggedError<InvalidResponse>()("InvalidResponse", {
  url: Schema.String,
  reason: Schema.String,
  status: Schema.Number
}) {
  override get message(): string {
    return `The Connect server at ${this.url} sent an invalid answer (HTTP ${this.status}): ${this.reason}`
  }
}

/**
 * The server answered with an error this client does not know. The code, status
 * and vendor details are kept.
 *
 * @since 0.1.0
 * @category errors
 */
export class UnknownConnectError extends Schema.TaggedError<UnknownConnectError>()("UnknownConnectError", {
  connector: Schema.optional(Schema.String),
  code: Schema.optional(Schema.String),
  status: Schema.Number,
  detail: Schema.optional(Schema.String),
  vendor: Schema.optional(Vendor)
}) {
  override get message(): string {
    const code = this.code === undefined ? "" : ` ${this.code}`
    return withDetail(`The Connect server answered HTTP ${this.status}${code}`, this.detail)
  }
}

/**
 * The client is not configured: no server URL or caller credential.
 *
 * @since 0.1.0
 * @category errors
 */
export class ConfigurationError extends Schema.TaggedError<ConfigurationError>()("ConfigurationError", {
  detail: Schema.String
}) {
  override get message(): string {
    return `effect-connect is not configured: ${this.detail}`
  }
}

/**
 * Any failure of a Connect operation.
 *
 * @since 0.1.0
 * @category errors
 */
export type ConnectError =
  | UserAuthorizationRequired
  | ConnectorInstallationRequired
  | NoValidToken
  | ClientNotLinkedToProject
  | ClientNotEnabledForEnvironment
  | ConnectorNotFound
  | Unauthorized
  | RateLimited
  | InvalidRequest
  | ProviderError
  | ProviderUnavailable
  | ServiceUnavailable
  | InvalidResponse
  | UnknownConnectError

const tags: ReadonlySet<string> = new Set([
  "UserAuthorizationRequired",
  "ConnectorInstallationRequired",
  "NoValidToken",
  "ClientNotLinkedToProject",
  "ClientNotEnabledForEnvironment",
  "ConnectorNotFound",
  "Unauthorized",
  "RateLimited",
  "InvalidRequest",
  "ProviderError",
  "ProviderUnavailable",
  "ServiceUnavailable",
  "InvalidResponse",
  "UnknownConnectError"
])

/**
 * Whether a value is one of the errors of this module.
 *
 * @since 0.1.0
 * @category guards
 */
export const isConnectError = (u: unknown): u is ConnectError =>
  Predicate.hasProperty(u, "_tag") && typeof u._tag === "string" && tags.has(u._tag)

/**
 * An error answer as read off the wire: the HTTP status, the `error` object of
 * the body (or `{}`), and the `Retry-After` delay.
 *
 * @since 0.1.0
 * @category wire
 */
export interface WireError {
  readonly connector: string
  readonly status: number
  readonly code: string | undefined
  readonly message: string | undefined
  readonly vendor: Record<string, unknown> | undefined
  /** The whole `error` object, for extra members such as `authorizeUrl`. */
  readonly body: Record<string, unknown>
  readonly retryAfterMs: number | undefined
}

const str = (value: unknown): string | undefined => (typeof value === "string" ? value : undefined)

const common = (wire: WireError) => ({
  connector: wire.connector,
  status: wire.status,
  ...(wire.message === undefined ? {} : { detail: wire.message }),
  ...(wire.vendor === undefined ? {} : { vendor: wire.vendor })
})

const optional = <K extends string>(key: K, value: string | undefined): { [P in K]?: string } =>
  (value === undefined ? {} : { [key]: value }) as { [P in K]?: string }

const readIssues = (wire: WireError): ReadonlyArray<FieldIssue> => {
  const issues = wire.body.issues
  if (Array.isArray(issues)) {
    const read = issues.flatMap((issue) =>
      isRecord(issue) && typeof issue.message === "string"
        ? [{ path: str(issue.path) ?? "", message: issue.message }]
        : []
    )
    if (read.length > 0) return read
  }
  const field = str(wire.body.field)
  return wire.message === undefined ? [] : [{ path: field ?? "", message: wire.message }]
}

/**
 * The wire codes of the protocol: for each, the HTTP status a server answers
 * with and the error a client raises. This is the one place the mapping lives.
 *
 * @since 0.1.0
 * @category wire
 */
export const WireCodes: {
  readonly [code: string]: { readonly status: number; readonly decode: (wire: WireError) => ConnectError }
} = {
  user_authorization_required: {
    status: 403,
    decode: (wire) =>
      new UserAuthorizationRequired({ ...common(wire), ...optional("authorizeUrl", str(wire.body.authorizeUrl)) })
  },
  connector_installation_required: {
    status: 403,
    decode: (wire) =>
      new ConnectorInstallationRequired({ ...common(wire), ...optional("installUrl", str(wire.body.installUrl)) })
  },
  client_installation_required: {
    status: 403,
    decode: (wire) =>
      new ConnectorInstallationRequired({ ...common(wire), ...optional("installUrl", str(wire.body.installUrl)) })
  },
  no_token: { status: 409, decode: (wire) => new NoValidToken(common(wire)) },
  client_not_linked_to_project: { status: 403, decode: (wire) => new ClientNotLinkedToProject(common(wire)) },
  client_not_enabled_for_environment: {
    status: 403,
    decode: (wire) => new ClientNotEnabledForEnvironment(common(wire))
  },
  not_found: { status: 404, decode: (wire) => new ConnectorNotFound(common(wire)) },
  unauthorized: { status: 401, decode: (wire) => new Unauthorized(common(wire)) },
  bad_request: {
    status: 400,
    decode: (wire) =>
      new InvalidRequest({
        issues: readIssues(wire),
        connector: wire.connector,
        status: wire.status,
        ...optional("detail", wire.message),
        ...(wire.vendor === undefined ? {} : { vendor: wire.vendor })
      })
  },
  provider_error: {
    status: 502,
    decode: (wire) => new ProviderError({ ...common(wire), ...optional("providerCode", str(wire.body.providerCode)) })
  },
  provider_unavailable: { status: 502, decode: (wire) => new ProviderUnavailable(common(wire)) },
  rate_limited: {
    status: 429,
    decode: (wire) =>
      new RateLimited({
        ...common(wire),
        ...(wire.retryAfterMs === undefined ? {} : { retryAfterMs: wire.retryAfterMs })
      })
  }
}

/**
 * Codes a server answers with a 5xx status for a failure that retrying cannot
 * mend (a misconfigured connector): the client does not retry these.
 *
 * @since 0.1.0
 * @category wire
 */
export const PermanentServerCodes: ReadonlySet<string> = new Set(["provider_error"])

/**
 * The error for an error answer: by its code when the code is known, by its
 * HTTP status when there is no code (401, 429), and otherwise an
 * `UnknownConnectError` that keeps the code, status and vendor details.
 *
 * @since 0.1.0
 * @category wire
 */
export const fromWire = (wire: WireError): ConnectError => {
  const known = wire.code === undefined ? undefined : WireCodes[wire.code]
  if (known !== undefined) return known.decode(wire)
  if (wire.code === undefined && wire.status === 401) return WireCodes.unauthorized?.decode(wire) ?? unknown(wire)
  if (wire.code === undefined && wire.status === 429) return WireCodes.rate_limited?.decode(wire) ?? unknown(wire)
  return unknown(wire)
}

const unknown = (wire: WireError): UnknownConnectError =>
  new UnknownConnectError({
    connector: wire.connector,
    status: wire.status,
    ...optional("code", wire.code),
    ...optional("detail", wire.message),
    ...(wire.vendor === undefined ? {} : { vendor: wire.vendor })
  })

/**
 * The HTTP status and body a server sends for an error: the inverse of
 * `fromWire`, used by the broker and the testing kit.
 *
 * @since 0.1.0
 * @category wire
 */
export const toWire = (
  error: ConnectError
): {
  readonly status: number
  readonly headers: Record<string, string>
  readonly body: { readonly error: Record<string, unknown> }
} => {
  const headers: Record<string, string> = {}
  const body: Record<string, unknown> = {
    message: "detail" in error && error.detail !== undefined ? error.detail : error.message
  }
  let status = 500
  switch (error._tag) {
    case "ServiceUnavailable":
      return {
        status: error.status ?? 503,
        headers,
        body: { error: { code: "service_unavailable", message: error.reason } }
      }
    case "InvalidResponse":
      return { status: 502, headers, body: { error: { code: "bad_gateway", message: error.reason } } }
    case "UnknownConnectError":
      return {
        status: error.status,
        headers,
        body: { error: { ...body, ...(error.code === undefined ? {} : { code: error.code }), ...vendorOf(error) } }
      }
    case "InvalidRequest":
      body.issues = error.issues
      break
    case "UserAuthorizationRequired":
      if (error.authorizeUrl !== undefined) body.authorizeUrl = error.authorizeUrl
      break
    case "ConnectorInstallationRequired":
      if (error.installUrl !== undefined) body.installUrl = error.installUrl
      break
    case "ProviderError":
      if (error.providerCode !== undefined) body.providerCode = error.providerCode
      break
    case "RateLimited":
      if (error.retryAfterMs !== undefined) headers["retry-after"] = String(Math.ceil(error.retryAfterMs / 1000))
      break
  }
  status = WireCodes[error.code]?.status ?? status
  return { status, headers, body: { error: { code: error.code, ...body, ...vendorOf(error) } } }
}

const vendorOf = (error: ConnectError): Record<string, unknown> =>
  "vendor" in error && error.vendor !== undefined ? { vendor: error.vendor } : {}
