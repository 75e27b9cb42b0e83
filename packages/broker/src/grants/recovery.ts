/**
 * The refresh journal's recovery at start-up: every grant whose refresh was
 * sent but whose outcome is unknown (the broker was killed, or the answer was
 * lost) is refreshed again at once, with the same refresh token, while the
 * provider's grace period for a rotated token may still run. One refused is
 * marked `lost` with the reason (see `refreshToken.ts`).
 *
 * @since 0.1.0
 */
import { Clock, Effect, Option } from "effect"
import { UserAuthorizationRequired } from "effect-connect/ConnectError"
import { refreshEndpointFor, tokenEndpointFor } from "../ConfigFile.js"
import type { EventsService } from "../Events.js"
import type { ProviderClientService } from "../ProviderClient.js"
import type { StoreService } from "../Store.js"
import { limitsOf } from "./common.js"
import { refreshGrant } from "./refreshToken.js"

/** What the recovery works with: the store, the provider client, this process (as lease holder), the event history. */
interface RecoveryContext {
  readonly store: StoreService
  readonly provider: ProviderClientService
  readonly owner: string
  readonly events: EventsService
}

/** Refreshes one grant with an unfinished attempt; its outcome is logged by the refresh itself. */
const recoverOne = (context: RecoveryContext, grantId: string) =>
  Effect.gen(function* () {
    const { store } = context
    const grant = yield* store.findGrantById(grantId)
    if (Option.isNone(grant)) return
    const connector = yield* store.findConnector(grant.value.connectorId)
    if (Option.isNone(connector)) return
    const settings = connector.value.settings
    const installation = (yield* store.listInstallations(connector.value.id)).find(
      (i) => i.id === grant.value.installationId
    )
    yield* refreshGrant(
      {
        ...context,
        connector: connector.value,
        endpoint: {
          tokenEndpoint: tokenEndpointFor(settings, installation),
          ...refreshEndpointFor(settings, installation),
          clientId: connector.value.clientId,
          clientSecret: connector.value.clientSecret,
          authMethod: settings.tokenEndpointAuthMethod,
          defaultLifetimeSeconds: settings.defaultTokenLifetimeSeconds
        },
        subject: { type: "app" },
        targets: {}
      },
      grantId,
      {
        // Nothing to hand out: only the grant's new refresh token matters.
        reuse: Effect.succeed(Option.none()),
        issue: () => Effect.void,
        gone: () => new UserAuthorizationRequired({ connector: connector.value.uid })
      }
    ).pipe(Effect.timeout(limitsOf(settings).hardMs))
  }).pipe(
    Effect.catchAll((error) =>
      Effect.logInfo("a refresh left unfinished could not be recovered now").pipe(
        Effect.annotateLogs({ grantId, error: error._tag })
      )
    )
  )

/**
 * Recovers the refreshes left unfinished by a broker that stopped. On SQLite
 * (one process) every lease found is stale; on Postgres only expired ones are.
 *
 * @since 0.1.0
 * @category recovery
 */
export const recoverRefreshes = (context: RecoveryContext) =>
  Effect.gen(function* () {
    const { store } = context
    if (store.singleProcess) yield* store.releaseAllLeases
    const ids = yield* store.listUnfinishedRefreshes(yield* Clock.currentTimeMillis, store.singleProcess)
    if (ids.length === 0) return
    yield* Effect.logInfo(`recovering ${ids.length} refreshes left unfinished`)
    yield* Effect.forEach(ids, (id) => recoverOne(context, id), { concurrency: 4, discard: true })
  }).pipe(Effect.catchAll((error) => Effect.logError("the recovery of unfinished refreshes failed", error.message)))
