import { Clock, Effect, Option, Redacted } from "effect"
import type { AuthorizationStatus } from "effect-connect/Authorization"
import { InvalidRequest } from "effect-connect/ConnectError"
import type { BrowserAnswer } from "../Pages.js"
import * as Pages from "../Pages.js"
import type { ProviderToken } from "../ProviderClient.js"
import type { AuthorizationRequestRecord, Caller, Connector, StoreError } from "../Store.js"
import { finishAuthorization } from "./authorizationEvents.js"
import { decodeRequest, ownRequest, random, sha256, withParams } from "./authorizationRequest.js"
import type { Fail } from "./codeExchange.js"
import { storeFailure } from "./errors.js"
import type { FlowContext } from "./flowContext.js"
import { park, unpark } from "./sealedGrant.js"

/**
 * Parks an exchanged grant until the application confirms its user: sealed
 * in the request, with the hash of a one-time code that only the return URL
 * receives.
 */
export const awaitConfirmation = (
  context: FlowContext,
  record: AuthorizationRequestRecord,
  token: ProviderToken,
  fail: Fail
): Effect.Effect<BrowserAnswer, StoreError> =>
  Effect.gen(function* () {
    if (record.returnUrl === undefined) return yield* fail("confirmation_unavailable")
    const code = random()
    yield* context.store.awaitConfirmation(record.id, { grant: yield* park(token), confirmationHash: sha256(code) })
    return Pages.redirect(withParams(record.returnUrl, { request: record.id, status: "awaiting_confirmation", code }))
  })

const noSuchConfirmation = () =>
  new InvalidRequest({
    status: 400,
    issues: [
      {
        path: "code",
        message: "no authorization request awaits confirmation with this code (wrong, already used, or expired)"
      }
    ]
  })

/** Keeps a confirmed grant, or ends the request failed: never half-done. */
const keepConfirmed = (
  context: FlowContext,
  record: AuthorizationRequestRecord,
  connector: Option.Option<Connector>,
  parked: Redacted.Redacted<string>
) => {
  const { tokens } = context
  const keep = Option.match(connector, {
    onNone: () => finishAuthorization(context, record, { status: "failed", error: "connector_removed" }),
    onSome: (connector) =>
      Effect.gen(function* () {
        const request = yield* decodeRequest(record)
        const token = yield* unpark(parked)
        yield* tokens.recordAuthorization(
          { projectId: record.projectId, environment: record.environment },
          connector,
          request,
          record.installationId,
          token
        )
        yield* finishAuthorization(context, record, { status: "completed" })
      })
  })
  // Taken is kept or failed, never left half-done.
  return keep.pipe(
    Effect.catchAll((error) =>
      Effect.zipRight(
        Effect.logError(`authorization ${record.id}: the confirmed grant was not kept`, error.message),
        finishAuthorization(context, record, { status: "failed", error: "internal_error" })
      )
    ),
    Effect.uninterruptible
  )
}

/**
 * `POST /v1/connect/authorize/{request}/confirm`: the application confirms
 * that the browser that came back with `code` is its user, the request's
 * subject; the grant that waited is kept, once.
 */
export const confirm = (
  context: FlowContext,
  caller: Caller,
  requestId: string,
  verifier: Redacted.Redacted<string>,
  code: Redacted.Redacted<string>
) =>
  Effect.gen(function* () {
    const { store } = context
    const record = yield* ownRequest(store, caller, requestId, verifier)
    const now = yield* Clock.currentTimeMillis
    const parked = yield* store.claimConfirmation(record.id, sha256(Redacted.value(code)), now)
    if (Option.isNone(parked)) return yield* noSuchConfirmation()
    yield* keepConfirmed(context, record, yield* store.findConnector(record.connectorId), parked.value)
    const after = yield* store.findAuthorizationRequest({ id: record.id })
    const final = Option.getOrElse(after, () => record)
    return {
      request: final.id,
      status: final.status,
      ...(final.error === undefined ? {} : { error: final.error })
    } satisfies AuthorizationStatus
  }).pipe(Effect.catchTag("StoreError", storeFailure))
