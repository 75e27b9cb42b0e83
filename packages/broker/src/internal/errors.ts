import { Effect } from "effect"
import { InvalidRequest, UnknownConnectError } from "effect-connect/ConnectError"

/** The detail of an internal error: the cause is in the broker's log, never in the answer. */
export const SEE_THE_LOG = "see the broker's log"

/** The detail of an internal error of the token service: its store failed. */
export const STORE_FAILED = "the broker failed to read or write its store; see its log"

/**
 * The protocol's `500 internal_error`, for a failure of the broker's own (its
 * store, a bug): the caller learns nothing of the cause.
 */
export const internalError = (options: { readonly connector?: string; readonly detail?: string } = {}) =>
  new UnknownConnectError({
    ...(options.connector === undefined ? {} : { connector: options.connector }),
    status: 500,
    code: "internal_error",
    detail: options.detail ?? SEE_THE_LOG
  })

/** Logs a store failure and fails with an internal error in its place. */
export const storeFailure = (error: { readonly message: string }) =>
  Effect.zipRight(Effect.logError("store failure", error.message), Effect.fail(internalError()))

/** A `400 bad_request` about one field of a request for `connector`. */
export const badField = (connector: { readonly uid: string }, path: string, message: string) =>
  new InvalidRequest({ connector: connector.uid, status: 400, issues: [{ path, message }] })
