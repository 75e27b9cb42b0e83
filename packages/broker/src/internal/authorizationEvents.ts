/**
 * The events of the authorization flows (code flow, installation, device):
 * started when a request is stored, completed or failed when it ends. They
 * carry the flow and, on failure, the error code the request ends with;
 * never its state, code or verifier.
 *
 * @since 0.1.0
 */
import { Effect, Option } from "effect"
import type { EventsService } from "../Events.js"
import type { AuthorizationRequestRecord, StoreError, StoreService } from "../Store.js"

/**
 * Which flow a request belongs to.
 *
 * @since 0.1.0
 * @category utils
 */
export const flowOf = (record: AuthorizationRequestRecord): "authorization" | "installation" | "device" =>
  record.userCode !== undefined ? "device" : record.kind === "install" ? "installation" : "authorization"

/** Who a request concerns, as its events say. */
const about = (record: AuthorizationRequestRecord, connector: string | undefined) => ({
  connector,
  projectId: record.projectId,
  environment: record.environment,
  subject: record.subject,
  installationId: record.installationId === "" ? undefined : record.installationId
})

/**
 * Records `authorization.started` for a request just stored.
 *
 * @since 0.1.0
 * @category events
 */
export const recordStarted = (
  events: EventsService,
  connector: string,
  record: AuthorizationRequestRecord,
  flow: "authorization" | "installation" | "device" = flowOf(record)
): Effect.Effect<void> => events.record({ kind: "authorization.started", ...about(record, connector), data: { flow } })

/** An authorization request's end, as its store row and its event say. */
type Outcome = {
  readonly status: "completed" | "failed"
  readonly error?: string
  readonly installationId?: string
}

/**
 * Records `authorization.completed` or `authorization.failed` for a request
 * that ended. The connector's uid is read again: the request holds its id,
 * and the connector may be gone by now.
 *
 * @since 0.1.0
 * @category events
 */
export const recordFinished = (
  context: { readonly store: StoreService; readonly events: EventsService },
  record: AuthorizationRequestRecord,
  outcome: Outcome
): Effect.Effect<void> =>
  Effect.gen(function* () {
    const connector = yield* context.store.findConnector(record.connectorId).pipe(
      Effect.map(Option.map((found) => found.uid)),
      Effect.orElseSucceed(() => Option.none<string>())
    )
    yield* context.events.record({
      kind: outcome.status === "completed" ? "authorization.completed" : "authorization.failed",
      ...about(record, Option.getOrUndefined(connector)),
      ...(outcome.installationId === undefined ? {} : { installationId: outcome.installationId }),
      data: { flow: flowOf(record), ...(outcome.error === undefined ? {} : { error: outcome.error }) }
    })
  })

/**
 * Ends a request (completed, or failed with its error code) and records it.
 *
 * @since 0.1.0
 * @category events
 */
export const finishAuthorization = (
  context: { readonly store: StoreService; readonly events: EventsService },
  record: AuthorizationRequestRecord,
  outcome: Outcome
): Effect.Effect<void, StoreError> =>
  Effect.zipRight(
    context.store.finishAuthorizationRequest(record.id, outcome),
    recordFinished(context, record, outcome)
  )
