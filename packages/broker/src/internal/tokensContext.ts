/**
 * What the token service's operations share: the store, the provider client,
 * the event history,
 * this broker process (as a lease holder), the single flight of shared work,
 * and how a store failure reaches the caller.
 *
 * @since 0.2.0
 */
import { Effect } from "effect"
import type { ConnectError } from "effect-connect/ConnectError"
import type { EventsService } from "../Events.js"
import { limitsOf, providerTimedOut } from "../grants/common.js"
import type { ProviderClientService } from "../ProviderClient.js"
import type { Connector, StoreError, StoreService } from "../Store.js"
import { internalError, STORE_FAILED } from "./errors.js"
import type * as SingleFlight from "./singleFlight.js"

/**
 * The token service's dependencies, as its operations read them.
 *
 * @since 0.2.0
 * @category models
 */
export interface TokensContext {
  readonly store: StoreService
  /** The store with the token path's configuration reads remembered by the hot cache (`hotCache/remembering.ts`). */
  readonly configuration: StoreService
  readonly provider: ProviderClientService
  /** The event history: what was issued, refreshed, revoked. */
  readonly events: EventsService
  /** This process, as the holder of leases on grants and token requests. */
  readonly owner: string
  readonly singleFlight: ReturnType<typeof SingleFlight.make>
}

/**
 * The shared work of a key, run once in this process to its own hard limit;
 * the caller waits at most its connector's provider timeout for it.
 *
 * @since 0.2.0
 * @category utils
 */
export const shared = <A>(
  context: TokensContext,
  connector: Connector,
  key: string,
  work: Effect.Effect<A, ConnectError>
): Effect.Effect<A, ConnectError> => {
  const limits = limitsOf(connector.settings)
  return context
    .singleFlight(key, work, {
      hardLimit: limits.hardMs,
      onTimeout: () => providerTimedOut(connector)
    })
    .pipe(Effect.timeoutFail({ duration: limits.callerMs, onTimeout: () => providerTimedOut(connector) }))
}

/**
 * A store failure as the caller sees it: an internal error, logged.
 *
 * @since 0.2.0
 * @category errors
 */
export const storeFailure = (connector: Connector) => (error: StoreError) =>
  Effect.zipRight(
    Effect.logError("store failure", error.message),
    Effect.fail(internalError({ connector: connector.uid, detail: STORE_FAILED }))
  )
