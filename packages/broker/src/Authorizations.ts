/**
 * User authorization with the authorization code grant and PKCE (RFC 7636).
 *
 * 1. `POST /v1/connect/authorize/{connector}` creates a request bound to the
 *    caller's project and environment, the connector, installation, subject
 *    and what is asked for, and answers a broker URL for the user.
 * 2. That URL redirects the browser to the provider's authorization endpoint
 *    with a fresh `state` and a S256 code challenge; neither leaves the broker
 *    any other way.
 * 3. The provider sends the user back to the broker's callback. The `state`
 *    finds the request, which is taken once (a replay or a forged state is
 *    refused) and only before it expires; the code is exchanged with the PKCE
 *    verifier; the grant and the first token are stored together; the user is
 *    sent to the request's `returnUrl`, which must be on the project's
 *    allow-list. A denied or failed authorization leaves no grant.
 *
 * @since 0.1.0
 */
import {
  Clock,
  type ConfigError,
  Context,
  type Deferred,
  Effect,
  FiberSet,
  Layer,
  type Option,
  type Redacted
} from "effect"
import type { AuthorizationRequest, AuthorizationStatus, InstallationRequest } from "effect-connect/Authorization"
import type { ConnectError } from "effect-connect/ConnectError"
import { routes } from "effect-connect/Protocol"
import type { TokenRequest } from "effect-connect/Token"
import { DeviceAuthorizations } from "./DeviceAuthorizations.js"
import { Events } from "./Events.js"
import { maxPendingConfig } from "./internal/authorizationPolicy.js"
import { ownRequest } from "./internal/authorizationRequest.js"
import { callback } from "./internal/callback.js"
import { authorizeUrlFor, redirect, start } from "./internal/codeFlow.js"
import { confirm } from "./internal/confirmation.js"
import { storeFailure } from "./internal/errors.js"
import type { FlowContext } from "./internal/flowContext.js"
import { install, installUrlFor } from "./internal/installFlow.js"
import type { BrowserAnswer } from "./Pages.js"
import { ProviderClient } from "./ProviderClient.js"
import { PublicUrl } from "./PublicUrl.js"
import { type Caller, type Connector, Store } from "./Store.js"
import { Tokens } from "./Tokens.js"

export {
  /**
   * How many requests a project may have open at once, and the variable that overrides it.
   *
   * @since 0.1.0
   * @category constants
   */
  DEFAULT_MAX_PENDING_AUTHORIZATIONS,
  MAX_PENDING_VARIABLE
} from "./internal/authorizationPolicy.js"
export {
  /**
   * How long a request stays open by default.
   *
   * @since 0.1.0
   * @category constants
   */
  DEFAULT_EXPIRES_IN_MS
} from "./internal/authorizationRequest.js"
export {
  /**
   * How long a callback's completion may take before it ends the request failed.
   *
   * @since 0.1.0
   * @category constants
   */
  COMPLETION_DEADLINE_MS
} from "./internal/callback.js"
export type {
  /**
   * Where the user's browser goes next: see `Pages`.
   *
   * @since 0.1.0
   * @category models
   */
  BrowserAnswer
} from "./Pages.js"

/** A completion under way this long after its request expired was cut short (the broker stopped mid-exchange). */
const ABANDONED_AFTER_MS = 5 * 60_000

/**
 * What the broker answers to a started authorization.
 *
 * @since 0.1.0
 * @category models
 */
export interface StartedAuthorization {
  readonly request: string
  readonly verifier: Redacted.Redacted<string>
  readonly url: string
  /** The user code to show the user, for a device authorization (RFC 8628). */
  readonly deviceCode?: string
  readonly expiresAt: number
  readonly connector: {
    readonly id: string
    readonly uid: string
    readonly type: string
    readonly name: string
    readonly service: string
  }
}

/**
 * The authorization flows: a user's (code flow with PKCE, or device flow), a
 * tenant admin's installation, and their browser steps.
 *
 * @since 0.1.0
 * @category models
 */
export interface AuthorizationsService {
  /** `POST /v1/connect/authorize/{connector}`: starts a user's authorization (the device flow with `deviceCode`). */
  readonly start: (
    caller: Caller,
    connector: Connector,
    body: AuthorizationRequest
  ) => Effect.Effect<StartedAuthorization, ConnectError>
  /** `POST /v1/connect/install/{connector}`: starts a tenant admin's installation of the connector. */
  readonly install: (
    caller: Caller,
    connector: Connector,
    body: InstallationRequest
  ) => Effect.Effect<StartedAuthorization, ConnectError>
  /** The link that authorizes a user, for a token request that found no grant (none when none can be made). */
  readonly authorizeUrlFor: (
    caller: Caller,
    connector: Connector,
    request: TokenRequest
  ) => Effect.Effect<Option.Option<string>>
  /** The link that installs the connector, for a token request that found no installation. */
  readonly installUrlFor: (
    caller: Caller,
    connector: Connector,
    request: TokenRequest
  ) => Effect.Effect<Option.Option<string>>
  /** `GET /v1/connect/authorize/{request}/start`: the browser's redirect to the provider, or a page. */
  readonly redirect: (requestId: string) => Effect.Effect<BrowserAnswer>
  /** `GET /v1/connect/callback`: the provider sent the user back; completes the request once. */
  readonly callback: (query: Readonly<Record<string, string | undefined>>) => Effect.Effect<BrowserAnswer>
  /** The status of a request, for the caller that started it (who holds its verifier). */
  readonly status: (
    caller: Caller,
    requestId: string,
    verifier: Redacted.Redacted<string>
  ) => Effect.Effect<AuthorizationStatus, ConnectError>
  /** `POST /v1/connect/authorize/{request}/confirm`: the project confirms its user; the waiting grant is kept. */
  readonly confirm: (
    caller: Caller,
    requestId: string,
    verifier: Redacted.Redacted<string>,
    code: Redacted.Redacted<string>
  ) => Effect.Effect<AuthorizationStatus, ConnectError>
}

/** The status of a request, for the caller that started it (who holds its verifier). */
const status = (context: FlowContext, caller: Caller, requestId: string, verifier: Redacted.Redacted<string>) =>
  Effect.gen(function* () {
    const found = yield* ownRequest(context.store, caller, requestId, verifier)
    const now = yield* Clock.currentTimeMillis
    // A device authorization whose poll is due is polled first.
    const record = yield* context.devices.refresh(found)
    // A completion takes seconds; one still under way long after expiry was cut
    // short (the broker stopped mid-exchange) and will not finish.
    const abandoned = record.status === "completing" && record.expiresAt + ABANDONED_AFTER_MS <= now
    const lapsed = (record.status === "pending" || record.status === "awaiting_confirmation") && record.expiresAt <= now
    const state = lapsed ? "expired" : abandoned ? "failed" : record.status
    const error = abandoned ? "interrupted" : record.error
    return {
      request: record.id,
      status: state,
      ...(error === undefined ? {} : { error }),
      ...(record.kind === "install" && record.status === "completed" ? { installationId: record.installationId } : {})
    } satisfies AuthorizationStatus
  }).pipe(Effect.catchTag("StoreError", storeFailure))

const make = Effect.gen(function* () {
  const publicUrl = yield* PublicUrl
  const context: FlowContext = {
    store: yield* Store,
    tokens: yield* Tokens,
    devices: yield* DeviceAuthorizations,
    provider: yield* ProviderClient,
    events: yield* Events,
    publicUrl,
    callbackUrl: `${publicUrl}${routes.callback.path({})}`,
    maxPending: yield* maxPendingConfig,
    completions: yield* FiberSet.make<BrowserAnswer>(),
    inFlight: new Map<string, Deferred.Deferred<BrowserAnswer>>()
  }
  return {
    start: (caller, connector, body) => start(context, caller, connector, body),
    install: (caller, connector, body) => install(context, caller, connector, body),
    authorizeUrlFor: (caller, connector, request) => authorizeUrlFor(context, caller, connector, request),
    installUrlFor: (caller, connector, request) => installUrlFor(context, caller, connector, request),
    redirect: (requestId) => redirect(context, requestId),
    callback: (query) => callback(context, query),
    status: (caller, requestId, verifier) => status(context, caller, requestId, verifier),
    confirm: (caller, requestId, verifier, code) => confirm(context, caller, requestId, verifier, code)
  } satisfies AuthorizationsService
})

/**
 * The authorization service.
 *
 * @since 0.1.0
 * @category tags
 */
export class Authorizations extends Context.Tag("effect-connect/broker/Authorizations")<
  Authorizations,
  AuthorizationsService
>() {
  /**
   * Over the store and the token service, with the broker's public URL; the
   * cap on open requests from `CONNECT_MAX_PENDING_AUTHORIZATIONS`.
   */
  static readonly layer: Layer.Layer<
    Authorizations,
    ConfigError.ConfigError,
    Store | Tokens | PublicUrl | ProviderClient | Events
  > = Layer.scoped(Authorizations, make).pipe(Layer.provide(DeviceAuthorizations.layer))
}
