/**
 * What every grant module shares: the limits of a provider call, how a
 * provider failure reaches the caller, and how it reaches the log.
 *
 * @since 0.1.0
 */
import { Effect } from "effect"
import {
  type ConnectError,
  InvalidRequest,
  NoValidToken,
  ProviderError as ProviderRefused,
  ProviderUnavailable,
  UserAuthorizationRequired
} from "effect-connect/ConnectError"
import type { Subject } from "effect-connect/Subject"
import type { ProviderClientService, ProviderEndpoint, ProviderError } from "../ProviderClient.js"
import type { Connector, ConnectorSettings, StoreService } from "../Store.js"

/**
 * What every grant's work reads: the store, the provider client, this broker
 * process (as a lease holder), the connector and its endpoint, the subject.
 *
 * @since 0.2.0
 * @category models
 */
export interface GrantContext {
  readonly store: StoreService
  readonly provider: ProviderClientService
  /** This broker process, as lease holder. */
  readonly owner: string
  readonly connector: Connector
  readonly endpoint: ProviderEndpoint
  readonly subject: Subject
}

/**
 * How long a caller waits for a provider when its connector does not say.
 *
 * @since 0.1.0
 * @category constants
 */
export const DEFAULT_PROVIDER_TIMEOUT_MS = 10_000

/**
 * The limits of the provider calls of one connector, in milliseconds:
 *
 * - `callerMs`: how long a request waits for the provider's answer;
 * - `attemptMs`: how long one attempt may take: longer than `callerMs`, so a
 *   late answer is still received (and a rotated refresh token saved) after
 *   the caller was answered;
 * - `hardMs`: when the shared work ends whatever happens (retries included);
 * - `leaseMs`: how long a lease on a grant lasts: past `hardMs`, so that the
 *   holder is done before anyone else may take the grant over.
 *
 * @since 0.1.0
 * @category utils
 */
export const limitsOf = (settings: Pick<ConnectorSettings, "providerTimeoutMs">) => {
  const callerMs = settings.providerTimeoutMs ?? DEFAULT_PROVIDER_TIMEOUT_MS
  return { callerMs, attemptMs: 2 * callerMs, hardMs: 3 * callerMs, leaseMs: 3 * callerMs + 5_000 }
}

/**
 * How often a request that finds another broker refreshing re-reads the grant.
 *
 * @since 0.1.0
 * @category constants
 */
export const LEASE_POLL_MS = 50

/**
 * The error of a caller whose deadline passed before the provider answered.
 *
 * @since 0.1.0
 * @category errors
 */
export const providerTimedOut = (connector: Connector) =>
  new ProviderUnavailable({
    connector: connector.uid,
    status: 502,
    detail: `the provider did not answer within ${limitsOf(connector.settings).callerMs} ms; retry later`
  })

// The provider's own code is passed on only when it looks like an OAuth error code.
const PROVIDER_CODE = /^[A-Za-z0-9_.-]{1,64}$/

/**
 * The provider's OAuth `error` code of a failure, when it gave a plausible one.
 *
 * @since 0.1.0
 * @category errors
 */
export const providerCodeOf = (error: { readonly code?: string | undefined }): { providerCode?: string } =>
  error.code !== undefined && PROVIDER_CODE.test(error.code) ? { providerCode: error.code } : {}

/**
 * A provider failure as the caller sees it.
 *
 * @since 0.1.0
 * @category errors
 */
export const fromProvider = (connector: Connector, error: ProviderError, subject: Subject): ConnectError => {
  switch (error.kind) {
    case "invalid_grant":
      return subject.type === "user"
        ? new UserAuthorizationRequired({ connector: connector.uid, detail: "the user's grant is no longer valid" })
        : new NoValidToken({ connector: connector.uid, detail: "the provider refused the grant" })
    case "invalid_scope":
    case "invalid_target":
      return new InvalidRequest({
        connector: connector.uid,
        status: 400,
        issues: [
          {
            path: error.kind === "invalid_scope" ? "scopes" : "resources",
            message: `the provider refused it (${error.kind})`
          }
        ]
      })
    case "transient":
      return new ProviderUnavailable({
        connector: connector.uid,
        status: 502,
        detail: `the provider did not answer usefully after retries (${error.message}); retry later`
      })
    default:
      return new ProviderRefused({
        connector: connector.uid,
        status: 502,
        ...providerCodeOf(error),
        detail: `the provider refused the request (${error.kind}); the connector may be misconfigured`
      })
  }
}

/**
 * One failed provider call, as one structured warning. Only what is safe to
 * read: the provider's status and error code, never a token or secret.
 *
 * @since 0.1.0
 * @category logging
 */
export const logProviderFailure = (fields: {
  readonly connector: Connector
  readonly grant: string
  readonly error: ProviderError | "timeout"
  readonly durationMs: number
  readonly outcome: string
  readonly attempt: number
}) => {
  const error = fields.error
  return Effect.logWarning(
    error === "timeout" ? "provider call timed out" : `provider call failed (${error.kind})`
  ).pipe(
    Effect.annotateLogs({
      connector: fields.connector.uid,
      grant: fields.grant,
      status: error === "timeout" ? "none" : String(error.status ?? "none"),
      providerError: error === "timeout" ? "timeout" : (error.code ?? error.kind),
      durationMs: String(fields.durationMs),
      outcome: fields.outcome,
      attempt: String(fields.attempt),
      requests: error === "timeout" ? "unknown" : String(error.attempts)
    })
  )
}

/**
 * A grant that can give nothing more (`invalid` or `lost`), with why: one line.
 *
 * @since 0.1.0
 * @category logging
 */
export const logGrantEnded = (fields: {
  readonly connector: Connector
  readonly grantId: string
  readonly status: "invalid" | "lost"
  readonly reason: string
}) =>
  Effect.logWarning(`grant ${fields.status}`).pipe(
    Effect.annotateLogs({
      connector: fields.connector.uid,
      grantId: fields.grantId,
      status: fields.status,
      reason: fields.reason
    })
  )
