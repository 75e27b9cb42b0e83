import { Clock, Deferred, Effect, Either, FiberSet, Option, Redacted, Schema } from "effect"
import { tokenEndpointFor } from "../ConfigFile.js"
import type { BrowserAnswer } from "../Pages.js"
import * as Pages from "../Pages.js"
import type { AuthorizationRequestRecord, StoreError } from "../Store.js"
import { finishAuthorization } from "./authorizationEvents.js"
import { decodeRequest } from "./authorizationRequest.js"
import { exchange, type Fail } from "./codeExchange.js"
import { awaitConfirmation } from "./confirmation.js"
import type { FlowContext } from "./flowContext.js"
import { completeInstallation } from "./installFlow.js"

/**
 * How long a callback's completion (the code exchange, saving the grant,
 * finishing the request) may take before it ends the request failed.
 */
export const COMPLETION_DEADLINE_MS = 60_000
/** How often a replayed callback reads a completion under way in another replica. */
const COMPLETION_POLL_MS = 250

class CompletionTimeout extends Schema.TaggedError<CompletionTimeout>()("CompletionTimeout", {
  message: Schema.String
}) {}

type Query = Readonly<Record<string, string | undefined>>

/**
 * The answer to a callback for a request already taken: its outcome, once it
 * has one (a replayed or concurrent callback changes nothing). A completion
 * under way in this process is awaited; one in another replica is read
 * again until it ends, within the completion's own deadline.
 */
const outcomeOf = (
  context: FlowContext,
  record: AuthorizationRequestRecord
): Effect.Effect<BrowserAnswer, StoreError> =>
  Effect.gen(function* () {
    const running = context.inFlight.get(record.id)
    if (running !== undefined) return yield* Deferred.await(running)
    const read = context.store
      .findAuthorizationRequest({ id: record.id })
      .pipe(Effect.map(Option.getOrElse(() => record)))
    const untilSettled: Effect.Effect<AuthorizationRequestRecord, StoreError> = Effect.flatMap(read, (current) =>
      current.status === "completing"
        ? Effect.zipRight(Effect.sleep(COMPLETION_POLL_MS), untilSettled)
        : Effect.succeed(current)
    )
    const settled = yield* untilSettled.pipe(
      Effect.timeoutTo({
        duration: COMPLETION_DEADLINE_MS,
        onTimeout: () => record,
        onSuccess: (current) => current
      })
    )
    return Pages.outcome(settled)
  })

/** Keeps a user's exchanged grant, or parks it for the project's confirmation. */
const complete = (context: FlowContext, record: AuthorizationRequestRecord, query: Query, fail: Fail) =>
  Effect.gen(function* () {
    const { store } = context
    if (query.error !== undefined) {
      return yield* fail(query.error === "access_denied" ? "access_denied" : "provider_error")
    }
    const code = query.code === undefined || query.code.length === 0 ? undefined : query.code
    const connector = yield* store.findConnector(record.connectorId)
    if (record.kind === "install" && Option.isSome(connector)) {
      return yield* completeInstallation(context, record, connector.value, query, code, fail)
    }
    if (code === undefined) return yield* fail("invalid_response")
    if (Option.isNone(connector)) return yield* fail("connector_removed")
    const request = yield* decodeRequest(record)
    // The installation's endpoint, as its refreshes will use (a tenant's, say).
    const installation = (yield* store.listInstallations(record.connectorId)).find(
      (i) => i.id === record.installationId
    )
    const tokenEndpoint = tokenEndpointFor(connector.value.settings, installation)
    const exchanged = yield* exchange(context, connector.value, tokenEndpoint, record, code, fail)
    if (Either.isLeft(exchanged)) return exchanged.left
    if (yield* store.findProjectConfirmsUsers(record.projectId)) {
      return yield* awaitConfirmation(context, record, exchanged.right, fail)
    }
    yield* context.tokens.recordAuthorization(
      { projectId: record.projectId, environment: record.environment },
      connector.value,
      request,
      record.installationId,
      exchanged.right
    )
    yield* finishAuthorization(context, record, { status: "completed" })
    return Pages.finished(record, {})
  })

/**
 * Completes a taken request to the end, whatever the browser does: in a
 * fiber of the service's own (the browser's request only awaits it, so a
 * browser that goes away does not interrupt it), bounded by
 * `COMPLETION_DEADLINE_MS`. Whatever goes wrong, the request ends failed,
 * never half-done.
 */
const completeTaken = (context: FlowContext, record: AuthorizationRequestRecord, query: Query) =>
  Effect.gen(function* () {
    const { inFlight } = context
    const fail: Fail = (error) =>
      Effect.as(finishAuthorization(context, record, { status: "failed", error }), Pages.finished(record, { error }))
    const outcome = yield* Deferred.make<BrowserAnswer>()
    inFlight.set(record.id, outcome)
    const run = complete(context, record, query, fail).pipe(
      Effect.timeoutFail({
        duration: COMPLETION_DEADLINE_MS,
        onTimeout: () => new CompletionTimeout({ message: `no outcome within ${COMPLETION_DEADLINE_MS} ms` })
      }),
      Effect.catchAll((error) =>
        Effect.zipRight(
          Effect.logError(`authorization ${record.id} failed`, error.message),
          Effect.as(
            finishAuthorization(context, record, {
              status: "failed",
              error: error._tag === "CompletionTimeout" ? "timeout" : "internal_error"
            }),
            Pages.somethingWentWrong("complete")
          )
        )
      ),
      Effect.catchAll(() => Effect.succeed(Pages.somethingWentWrong("complete"))),
      Effect.tap((answer) => Deferred.succeed(outcome, answer)),
      Effect.onInterrupt(() => Deferred.interrupt(outcome)),
      Effect.ensuring(Effect.sync(() => inFlight.delete(record.id)))
    )
    yield* FiberSet.run(context.completions, run)
    return yield* Deferred.await(outcome)
  })

/** `GET /v1/connect/callback`: the provider sends the user back. */
export const callback = (context: FlowContext, query: Query): Effect.Effect<BrowserAnswer> =>
  Effect.gen(function* () {
    const state = query.state
    if (state === undefined || state.length === 0) return Pages.invalidCallback("no state")
    const found = yield* context.store.findAuthorizationRequest({ state: Redacted.make(state) })
    if (Option.isNone(found)) return Pages.invalidCallback("unknown state")
    const record = found.value
    // Single use: of replayed or concurrent callbacks, one proceeds; the others answer its outcome.
    const claimed = yield* context.store.claimAuthorizationRequest(record.id, yield* Clock.currentTimeMillis)
    if (!claimed) return yield* outcomeOf(context, record)
    return yield* completeTaken(context, record, query)
  }).pipe(
    Effect.catchAll((error) =>
      Effect.zipRight(
        Effect.logError("authorization callback failed", error.message),
        Effect.succeed(Pages.somethingWentWrong("complete"))
      )
    )
  )
