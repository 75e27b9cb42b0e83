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
import { Clock, Context, Effect, FiberSet, Layer, Option, Redacted } from "effect"
import type { AuthorizationRequest } from "effect-connect/Authorization"
import { type ConnectError, ProviderError as ProviderRefused, ProviderUnavailable } from "effect-connect/ConnectError"
import { Events } from "./Events.js"
import { providerCodeOf } from "./grants/common.js"
import { recordStarted } from "./internal/authorizationEvents.js"
import { encodeRequest, expiryOf, random, sha256 } from "./internal/authorizationRequest.js"
import { type DevicePollContext, pollOnce, watch } from "./internal/devicePoll.js"
import { badField as bad, storeFailure } from "./internal/errors.js"
import { ProviderClient, type ProviderClientService, type ProviderError } from "./ProviderClient.js"
import { type AuthorizationRequestRecord, type Caller, type Connector, Store, type StoreError } from "./Store.js"
import { scopesFor, subjectKey, Tokens } from "./Tokens.js"

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
      return new ProviderUnavailable({
        connector: connector.uid,
        status: 502,
        detail: `the provider's device authorization endpoint did not answer usefully after retries (${error.message}); retry later`
      })
    default:
      return new ProviderRefused({
        connector: connector.uid,
        status: 502,
        ...providerCodeOf(error),
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

/** `POST /v1/connect/authorize/{connector}` with `deviceCode: true`: asks the provider for codes, stores the request. */
const start = (
  context: DevicePollContext,
  requestDeviceAuthorization: ProviderClientService["requestDeviceAuthorization"],
  startWatching: (requestId: string) => Effect.Effect<unknown>,
  caller: Caller,
  connector: Connector,
  body: AuthorizationRequest
): Effect.Effect<StartedDeviceAuthorization, ConnectError> =>
  Effect.gen(function* () {
    const { store, tokens } = context
    const endpoint = yield* deviceEndpointFor(connector, body)
    const { returnUrl: _r, webhook: _w, deviceCode: _d, expiresInMs, prompt: _p, ...request } = body
    const installationId = yield* tokens.installationOf(connector, request.installationId)
    const now = yield* Clock.currentTimeMillis
    const device = yield* requestDeviceAuthorization(
      {
        deviceAuthorizationEndpoint: endpoint,
        scopeParameter: connector.settings.deviceScopeParameter,
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
    yield* recordStarted(context.events, connector.uid, created.request, "device")
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
const refresh = (
  context: DevicePollContext,
  record: AuthorizationRequestRecord
): Effect.Effect<AuthorizationRequestRecord, StoreError> =>
  record.userCode === undefined || record.status !== "pending"
    ? Effect.succeed(record)
    : Effect.gen(function* () {
        yield* pollOnce(context, record.id).pipe(
          Effect.catchAll((error) =>
            Effect.logWarning(`device authorization ${record.id}: the poll failed`, error.message)
          )
        )
        const again = yield* context.store.findAuthorizationRequest({ id: record.id })
        return Option.getOrElse(again, () => record)
      })

const make = Effect.gen(function* () {
  const store = yield* Store
  const tokens = yield* Tokens
  const { requestDeviceAuthorization, requestToken } = yield* ProviderClient
  const context: DevicePollContext = { store, tokens, requestToken, events: yield* Events }
  // The background pollers live as long as the service: the broker.
  const pollers = yield* FiberSet.make()
  const startWatching = (requestId: string) => FiberSet.run(pollers, watch(context, requestId))

  // Requests left pending by an earlier run (or another replica) are watched too.
  yield* Clock.currentTimeMillis.pipe(
    Effect.flatMap(store.listPendingDeviceAuthorizations),
    Effect.flatMap(Effect.forEach(startWatching, { discard: true })),
    Effect.catchAll((error) => Effect.logWarning("pending device authorizations were not resumed", error.message))
  )

  return {
    start: (caller, connector, body) =>
      start(context, requestDeviceAuthorization, startWatching, caller, connector, body),
    pollOnce: (requestId) => pollOnce(context, requestId),
    refresh: (record) => refresh(context, record)
  } satisfies DeviceAuthorizationsService
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
  static readonly layer: Layer.Layer<DeviceAuthorizations, never, Store | Tokens | ProviderClient | Events> =
    Layer.scoped(DeviceAuthorizations, make)
}
