/**
 * The polling half of the device authorization grant (RFC 8628 section 3.4):
 * a claimed poll of the token endpoint, what its answer does to the request,
 * and the loop that polls a request until it is over.
 */
import { Clock, Duration, Effect, Option } from "effect"
import { tokenEndpointFor } from "../ConfigFile.js"
import type { EventsService } from "../Events.js"
import {
  ProviderClientConfig,
  type ProviderClientService,
  type ProviderError,
  type ProviderToken
} from "../ProviderClient.js"
import type {
  AuthorizationRequestRecord,
  Connector,
  DeviceAuthorizationRecord,
  StoreError,
  StoreService
} from "../Store.js"
import { scopesFor, type TokensService } from "../Tokens.js"
import { finishAuthorization, recordFinished } from "./authorizationEvents.js"
import { decodeRequest } from "./authorizationRequest.js"

/** RFC 8628 section 3.5: after `slow_down`, the interval grows by 5 seconds. */
const SLOW_DOWN_MS = 5_000
/** After a poll the provider did not answer, the interval doubles up to this. */
const MAX_BACKOFF_INTERVAL_MS = 60_000
/** How long a claimed poll keeps others from polling, should it never report back. */
const POLL_LEASE_MS = 60_000
/** How long the background fiber waits after the store failed it. */
const STORE_RETRY_MS = 5_000

/**
 * The interval after `slow_down`: the one the provider names (GitHub's
 * `interval`), never shorter than the current one; 5 seconds more when it
 * names none (RFC 8628 section 3.5).
 */
const slowerInterval = (currentMs: number, givenMs: number | undefined): number =>
  givenMs === undefined ? currentMs + SLOW_DOWN_MS : Math.max(currentMs, givenMs)

/** What polling works with: the store, the token service and the provider's token endpoint. */
export interface DevicePollContext {
  readonly store: StoreService
  readonly tokens: TokensService
  readonly requestToken: ProviderClientService["requestToken"]
  readonly events: EventsService
}

const finish = (context: DevicePollContext, record: AuthorizationRequestRecord, error: string) =>
  finishAuthorization(context, record, { status: "failed", error })

/** Keeps what the provider gave: the grant, the first token and the request's completion, together. */
const complete = (
  context: DevicePollContext,
  record: AuthorizationRequestRecord,
  connector: Connector,
  token: ProviderToken
) =>
  Effect.gen(function* () {
    const { store, tokens } = context
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
    yield* recordFinished(context, record, { status: "completed" })
    yield* Effect.logInfo(`device authorization ${record.id} completed`)
  })

/** One poll of the token endpoint with the device code, never retried. */
const pollToken = (context: DevicePollContext, device: DeviceAuthorizationRecord, connector: Connector) =>
  Effect.gen(function* () {
    const record = device.request
    const installations = yield* context.store.listInstallations(record.connectorId)
    // The provider that names the scopes `scopes` (Twitch) wants them again in every poll.
    const scopes =
      connector.settings.deviceScopeParameter === "scopes"
        ? { scopes: scopesFor(connector, yield* decodeRequest(record)) }
        : {}
    return yield* context
      .requestToken(
        {
          // The installation's endpoint, as its refreshes will use (a tenant's, say).
          tokenEndpoint: tokenEndpointFor(
            connector.settings,
            installations.find((installation) => installation.id === record.installationId)
          ),
          clientId: connector.clientId,
          clientSecret: connector.clientSecret,
          authMethod: connector.settings.tokenEndpointAuthMethod,
          defaultLifetimeSeconds: connector.settings.defaultTokenLifetimeSeconds
        },
        { type: "device_code", deviceCode: device.deviceCode, ...scopes }
      )
      .pipe(
        // A device code is good once: after an answer lost in transit, only the next poll may tell.
        Effect.provide(ProviderClientConfig.layer({ retries: 0 })),
        Effect.either
      )
  })

/** What a poll the provider did not answer with a token does: poll again later, or end the request. */
const afterRefusal = (context: DevicePollContext, device: DeviceAuthorizationRecord, error: ProviderError) =>
  Effect.gen(function* () {
    const record = device.request
    const now = yield* Clock.currentTimeMillis
    const schedule = (intervalMs: number) =>
      context.store.scheduleDevicePoll(record.id, { intervalMs, nextPollAt: now + intervalMs })
    switch (error.kind) {
      case "authorization_pending":
        return yield* schedule(device.intervalMs)
      case "slow_down":
        return yield* schedule(slowerInterval(device.intervalMs, error.intervalMs))
      case "transient":
        yield* Effect.logWarning(`device authorization ${record.id}: the provider did not answer the poll`)
        return yield* schedule(Math.max(device.intervalMs, Math.min(device.intervalMs * 2, MAX_BACKOFF_INTERVAL_MS)))
      case "access_denied":
        return yield* finish(context, record, "access_denied")
      case "expired_token":
        return yield* finish(context, record, "expired_token")
      default:
        yield* Effect.logWarning(`device authorization ${record.id}: the provider refused the poll (${error.kind})`)
        return yield* finish(context, record, "provider_refused")
    }
  })

/** Asks the token endpoint once, for a claimed poll, and acts on the answer. */
const exchange = (context: DevicePollContext, device: DeviceAuthorizationRecord) =>
  Effect.gen(function* () {
    const record = device.request
    const connector = yield* context.store.findConnector(record.connectorId)
    if (Option.isNone(connector)) return yield* finish(context, record, "connector_removed")
    const polled = yield* pollToken(context, device, connector.value)
    if (polled._tag === "Left") return yield* afterRefusal(context, device, polled.left)
    return yield* complete(context, record, connector.value, polled.right).pipe(
      // Nothing of it was kept: the request ends failed, never half-done.
      Effect.catchAll((error) =>
        Effect.zipRight(
          Effect.logError(`device authorization ${record.id} failed`, error.message),
          finish(context, record, "internal_error")
        )
      )
    )
  })

/**
 * Polls a device authorization once, if it is pending, open and due, and no
 * one else (in this broker or another replica) is polling it.
 */
export const pollOnce = (context: DevicePollContext, requestId: string): Effect.Effect<void, StoreError> =>
  Effect.gen(function* () {
    const now = yield* Clock.currentTimeMillis
    if (!(yield* context.store.claimDevicePoll(requestId, now, now + POLL_LEASE_MS))) return
    const device = yield* context.store.findDeviceAuthorization(requestId)
    if (Option.isSome(device)) yield* exchange(context, device.value)
  })

/** Polls a request until it is over or expired, sleeping until each poll is due. */
export const watch = (context: DevicePollContext, requestId: string): Effect.Effect<void> =>
  Effect.gen(function* () {
    while (true) {
      const found = yield* Effect.either(context.store.findDeviceAuthorization(requestId))
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
      const polled = yield* Effect.either(pollOnce(context, requestId))
      if (polled._tag === "Left") {
        yield* Effect.logWarning(`device authorization ${requestId}: the store failed`, polled.left.message)
        yield* Effect.sleep(Duration.millis(Math.max(device.intervalMs, STORE_RETRY_MS)))
      }
    }
  }).pipe(Effect.annotateLogs("request", requestId))
