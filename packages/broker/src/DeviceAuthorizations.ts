/**
 * User authorization with the device authorization grant (RFC 8628), for
 * `POST /v1/connect/authorize/{connector}` with `deviceCode: true`.
 *
 * 1. The broker asks the connector's `deviceAuthorizationEndpoint` for a
 *    device code and a user code, and stores a request bound, as for the code
 *    flow, to the caller's project and environment, the connector,
 *    installation, subject and what is asked for. The caller gets the user
 *    code and the provider's verification URL to show the user; the device
 *    code (a secret) stays in the broker, sealed at rest.
 * 2. The user opens the URL on any device, types the code, signs in and
 *    consents at the provider.
 * 3. Meanwhile the broker polls the token endpoint with the device code: from
 *    a fiber started with the request (it ends with the broker), and from the
 *    request's status endpoint when the next poll is due. It waits `interval`
 *    between polls, 5 seconds more after each `slow_down` (RFC 8628 section
 *    3.5). Each poll is claimed in the store first, so one runs at a time for
 *    a request, across replicas.
 * 4. When the token comes, the grant and the first token are stored and the
 *    request is completed, in one transaction; a refusal (`access_denied`), an
 *    expired device code or any other failure leaves the request failed and
 *    nothing else.
 *
 * @since 0.1.0
 */
import { Clock, Context, Duration, Effect, FiberSet, Layer, Option, Redacted } from "effect"
import type { AuthorizationRequest } from "effect-connect/Authorization"
import { type ConnectError, UnknownConnectError } from "effect-connect/ConnectError"
import { tokenEndpointFor } from "./ConfigFile.js"
import { decodeRequest, encodeRequest, expiryOf, random, sha256 } from "./internal/authorizationRequest.js"
import { badField as bad, storeFailure } from "./internal/errors.js"
import { ProviderClient, ProviderClientConfig, type ProviderError, type ProviderToken } from "./ProviderClient.js"
import {
  type AuthorizationRequestRecord,
  type Caller,
  type Connector,
  type DeviceAuthorizationRecord,
  Store,
  type StoreError
} from "./Store.js"
import { scopesFor, subjectKey, Tokens } from "./Tokens.js"

/** RFC 8628 section 3.5: after `slow_down`, the interval grows by 5 seconds. */
const SLOW_DOWN_MS = 5_000
/** After a poll the provider did not answer, the interval doubles up to this. */
const MAX_BACKOFF_INTERVAL_MS = 60_000
/** How long a claimed poll keeps others from polling, should it never report back. */
const POLL_LEASE_MS = 60_000
/** How long the background fiber waits after the store failed it. */
const STORE_RETRY_MS = 5_000

/**
 * What the broker answers to a started device authorization: `url` is where
 * the user goes (the provider's `verification_uri_complete`, or its
 * `verification_uri`) and `deviceCode` is the user code to show them.
 *
 * @since 0.1.0
 * @category models
 */
export interface StartedDeviceAuthorization {
  readonly request: string
  readonly verifier: Redacted.Redacted<string>
  readonly url: string
  readonly deviceCode: string
  readonly expiresAt: number
}

/**
 * The device authorization service: starts device authorizations, and polls
 * the provider for them.
 *
 * @since 0.1.0
 * @category models
 */
export interface DeviceAuthorizationsService {
  /** `POST /v1/connect/authorize/{connector}` with `deviceCode: true`: asks the provider for codes, then polls. */
  readonly start: (
    caller: Caller,
    connector: Connector,
    body: AuthorizationRequest
  ) => Effect.Effect<StartedDeviceAuthorization, ConnectError>
  /** Polls a request once, if it is pending, open and due, and no one else (here or in a replica) is polling it. */
  readonly pollOnce: (requestId: string) => Effect.Effect<void, StoreError>
  /** A request as its status should show it: a device authorization whose poll is due is polled first. */
  readonly refresh: (record: AuthorizationRequestRecord) => Effect.Effect<AuthorizationRequestRecord, StoreError>
}

/** A failure of the device authorization endpoint as the caller sees it. */
const fromProvider = (connector: Connector, error: ProviderError): ConnectError => {
  switch (error.kind) {
    case "invalid_scope":
    case "invalid_target":
      return bad(
        connector,
        error.kind === "invalid_scope" ? "scopes" : "resources",
        `the provider refused it (${error.kind})`
      )
    case "transient":
      return new UnknownConnectError({
        connector: connector.uid,
        status: 502,
        code: "provider_unavailable",
        detail: `the provider's device authorization endpoint did not answer usefully after retries (${error.message}); retry later`
      })
    default:
      return new UnknownConnectError({
        connector: connector.uid,
        status: 502,
        code: "provider_error",
        detail: `the provider refused the device authorization (${error.kind}); the connector may be misconfigured`
      })
  }
}

/** The connector's device authorization endpoint, for a body the device flow can serve; a refusal names the field. */
const deviceEndpointFor = (connector: Connector, body: AuthorizationRequest) =>
  Effect.gen(function* () {
    const endpoint = connector.settings.deviceAuthorizationEndpoint
    if (endpoint === undefined) {
      return yield* bad(
        connector,
        "deviceCode",
        `connector "${connector.uid}" declares no deviceAuthorizationEndpoint: it offers no device authorization`
      )
    }
    if (body.subject.type !== "user") {
      return yield* bad(connector, "subject.type", "only a user subject authorizes a connector")
    }
    if (body.webhook !== undefined) {
      return yield* bad(connector, "webhook", "this broker does not call webhooks; poll the request's status instead")
    }
    if (body.returnUrl !== undefined) {
      return yield* bad(connector, "returnUrl", "a device authorization sends the user back nowhere: leave it out")
    }
    if (body.prompt !== undefined) {
      return yield* bad(connector, "prompt", "a device authorization has no prompt: leave it out")
    }
    if (body.authorizationDetails !== undefined && body.authorizationDetails.length > 0) {
      return yield* bad(connector, "authorizationDetails", "a device authorization cannot carry authorization details")
    }
    return endpoint
  })

const make = Effect.gen(function* () {
  const store = yield* Store
  const tokens = yield* Tokens
  const { requestDeviceAuthorization, requestToken } = yield* ProviderClient
  // The background pollers live as long as the service: the broker.
  const pollers = yield* FiberSet.make()

  const finish = (record: AuthorizationRequestRecord, error: string) =>
    store.finishAuthorizationRequest(record.id, { status: "failed", error })

  /** Keeps what the provider gave: the grant, the first token and the request's completion, together. */
  const complete = (record: AuthorizationRequestRecord, connector: Connector, token: ProviderToken) =>
    Effect.gen(function* () {
      const request = yield* decodeRequest(record)
      yield* store.transaction(
        Effect.zipRight(
          tokens.recordAuthorization(
            { projectId: record.projectId, environment: record.environment },
            connector,
            request,
            record.installationId,
            token
          ),
          store.finishAuthorizationRequest(record.id, { status: "completed" })
        )
      )
      yield* Effect.logInfo(`device authorization ${record.id} completed`)
    })

  /** Asks the token endpoint once, for a claimed poll, and acts on the answer. */
  const exchange = (device: DeviceAuthorizationRecord) =>
    Effect.gen(function* () {
      const record = device.request
      const connector = yield* store.findConnector(record.connectorId)
      if (Option.isNone(connector)) return yield* finish(record, "connector_removed")
      const installations = yield* store.listInstallations(record.connectorId)
      const polled = yield* requestToken(
        {
          // The installation's endpoint, as its refreshes will use (a tenant's, say).
          tokenEndpoint: tokenEndpointFor(
            connector.value.settings,
            installations.find((installation) => installation.id === record.installationId)
          ),
          clientId: connector.value.clientId,
          clientSecret: connector.value.clientSecret,
          authMethod: connector.value.settings.tokenEndpointAuthMethod,
          defaultLifetimeSeconds: connector.value.settings.defaultTokenLifetimeSeconds
        },
        { type: "device_code", deviceCode: device.deviceCode }
      ).pipe(
        // A device code is good once: after an answer lost in transit, only the next poll may tell.
        Effect.provide(ProviderClientConfig.layer({ retries: 0 })),
        Effect.either
      )
      if (polled._tag === "Right") {
        return yield* complete(record, connector.value, polled.right).pipe(
          // Nothing of it was kept: the request ends failed, never half-done.
          Effect.catchAll((error) =>
            Effect.zipRight(
              Effect.logError(`device authorization ${record.id} failed`, error.message),
              finish(record, "internal_error")
            )
          )
        )
      }
      const now = yield* Clock.currentTimeMillis
      const schedule = (intervalMs: number) =>
        store.scheduleDevicePoll(record.id, { intervalMs, nextPollAt: now + intervalMs })
      const error = polled.left
      switch (error.kind) {
        case "authorization_pending":
          return yield* schedule(device.intervalMs)
        case "slow_down":
          return yield* schedule(device.intervalMs + SLOW_DOWN_MS)
        case "transient":
          yield* Effect.logWarning(`device authorization ${record.id}: the provider did not answer the poll`)
          return yield* schedule(Math.max(device.intervalMs, Math.min(device.intervalMs * 2, MAX_BACKOFF_INTERVAL_MS)))
        case "access_denied":
          return yield* finish(record, "access_denied")
        case "expired_token":
          return yield* finish(record, "expired_token")
        default:
          yield* Effect.logWarning(`device authorization ${record.id}: the provider refused the poll (${error.kind})`)
          return yield* finish(record, "provider_refused")
      }
    })

  /**
   * Polls a device authorization once, if it is pending, open and due, and no
   * one else (in this broker or another replica) is polling it.
   */
  const pollOnce = (requestId: string): Effect.Effect<void, StoreError> =>
    Effect.gen(function* () {
      const now = yield* Clock.currentTimeMillis
      if (!(yield* store.claimDevicePoll(requestId, now, now + POLL_LEASE_MS))) return
      const device = yield* store.findDeviceAuthorization(requestId)
      if (Option.isSome(device)) yield* exchange(device.value)
    })

  /** Polls a request until it is over or expired, sleeping until each poll is due. */
  const watch = (requestId: string): Effect.Effect<void> =>
    Effect.gen(function* () {
      while (true) {
        const found = yield* Effect.either(store.findDeviceAuthorization(requestId))
        if (found._tag === "Left") {
          yield* Effect.logWarning(`device authorization ${requestId}: the store failed`, found.left.message)
          yield* Effect.sleep(Duration.millis(STORE_RETRY_MS))
          continue
        }
        if (Option.isNone(found.right)) return
        const device = found.right.value
        const now = yield* Clock.currentTimeMillis
        if (device.request.status !== "pending" || device.request.expiresAt <= now) return
        if (device.nextPollAt > now) {
          yield* Effect.sleep(Duration.millis(Math.min(device.nextPollAt, device.request.expiresAt) - now))
          continue
        }
        const polled = yield* Effect.either(pollOnce(requestId))
        if (polled._tag === "Left") {
          yield* Effect.logWarning(`device authorization ${requestId}: the store failed`, polled.left.message)
          yield* Effect.sleep(Duration.millis(Math.max(device.intervalMs, STORE_RETRY_MS)))
        }
      }
    }).pipe(Effect.annotateLogs("request", requestId))

  const startWatching = (requestId: string) => FiberSet.run(pollers, watch(requestId))

  // Requests left pending by an earlier run (or another replica) are watched too.
  yield* Clock.currentTimeMillis.pipe(
    Effect.flatMap(store.listPendingDeviceAuthorizations),
    Effect.flatMap(Effect.forEach(startWatching, { discard: true })),
    Effect.catchAll((error) => Effect.logWarning("pending device authorizations were not resumed", error.message))
  )

  /** `POST /v1/connect/authorize/{connector}` with `deviceCode: true`. */
  const start = (
    caller: Caller,
    connector: Connector,
    body: AuthorizationRequest
  ): Effect.Effect<StartedDeviceAuthorization, ConnectError> =>
    Effect.gen(function* () {
      const endpoint = yield* deviceEndpointFor(connector, body)
      const { returnUrl: _r, webhook: _w, deviceCode: _d, expiresInMs, prompt: _p, ...request } = body
      const installationId = yield* tokens.installationOf(connector, request.installationId)
      const now = yield* Clock.currentTimeMillis
      const device = yield* requestDeviceAuthorization(
        {
          deviceAuthorizationEndpoint: endpoint,
          clientId: connector.clientId,
          clientSecret: connector.clientSecret,
          authMethod: connector.settings.tokenEndpointAuthMethod
        },
        { scope: scopesFor(connector, request), resource: request.resources }
      ).pipe(Effect.mapError((error) => fromProvider(connector, error)))
      const verifier = random()
      const created = yield* store.createDeviceAuthorizationRequest(
        {
          // Never sent anywhere: a device request has no browser redirect.
          state: Redacted.make(random()),
          verifierHash: sha256(verifier),
          codeVerifier: Redacted.make(random()),
          kind: "user",
          connectorId: connector.id,
          projectId: caller.projectId,
          environment: caller.environment,
          installationId,
          subject: subjectKey(request.subject),
          request: yield* encodeRequest(request),
          returnUrl: undefined,
          prompt: undefined,
          expiresAt: Math.min(expiryOf(now, expiresInMs), device.expiresAt)
        },
        {
          deviceCode: device.deviceCode,
          userCode: device.userCode,
          verificationUrl: device.verificationUriComplete ?? device.verificationUri,
          intervalMs: device.intervalMs,
          nextPollAt: now + device.intervalMs
        }
      )
      yield* startWatching(created.request.id)
      yield* Effect.logInfo(`device authorization ${created.request.id} started`)
      return {
        request: created.request.id,
        verifier: Redacted.make(verifier),
        url: created.verificationUrl,
        deviceCode: created.userCode,
        expiresAt: created.request.expiresAt
      }
    }).pipe(Effect.catchTag("StoreError", storeFailure))

  /**
   * A request as its status should show it: a pending device authorization
   * whose next poll is due is polled once first, then read again; any other
   * request is returned as it is.
   */
  const refresh = (record: AuthorizationRequestRecord): Effect.Effect<AuthorizationRequestRecord, StoreError> =>
    record.userCode === undefined || record.status !== "pending"
      ? Effect.succeed(record)
      : Effect.gen(function* () {
          yield* pollOnce(record.id).pipe(
            Effect.catchAll((error) =>
              Effect.logWarning(`device authorization ${record.id}: the poll failed`, error.message)
            )
          )
          const again = yield* store.findAuthorizationRequest({ id: record.id })
          return Option.getOrElse(again, () => record)
        })

  return { start, pollOnce, refresh } satisfies DeviceAuthorizationsService
})

/**
 * The device authorization service: starts device authorizations, and polls
 * the provider for them in the background for as long as its layer lives.
 *
 * @since 0.1.0
 * @category tags
 */
export class DeviceAuthorizations extends Context.Tag("effect-connect/broker/DeviceAuthorizations")<
  DeviceAuthorizations,
  DeviceAuthorizationsService
>() {
  /** Over the store and the token service; its pollers end when the layer's scope closes. */
  static readonly layer: Layer.Layer<DeviceAuthorizations, never, Store | Tokens | ProviderClient> = Layer.scoped(
    DeviceAuthorizations,
    make
  )
}
