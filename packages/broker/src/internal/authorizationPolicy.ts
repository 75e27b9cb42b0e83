import { Clock, Config, Effect } from "effect"
import { RateLimited } from "effect-connect/ConnectError"
import type { Caller, Connector, Store } from "../Store.js"
import { badField } from "./errors.js"

/**
 * How many requests a project may have open (pending, or being completed) at
 * once, unless `CONNECT_MAX_PENDING_AUTHORIZATIONS` says otherwise: each holds
 * a row until it expires, so without a cap a caller key could fill the disk.
 */
export const DEFAULT_MAX_PENDING_AUTHORIZATIONS = 100
/** The environment variable that overrides {@link DEFAULT_MAX_PENDING_AUTHORIZATIONS}. */
export const MAX_PENDING_VARIABLE = "CONNECT_MAX_PENDING_AUTHORIZATIONS"

/** The cap on open requests per project, from `CONNECT_MAX_PENDING_AUTHORIZATIONS`. */
export const maxPendingConfig = Config.integer(MAX_PENDING_VARIABLE).pipe(
  Config.validate({ message: "Expected a positive integer", validation: (n) => n > 0 }),
  Config.withDefault(DEFAULT_MAX_PENDING_AUTHORIZATIONS)
)

export const CONFIRMS_USERS_NO_DEVICE =
  "this project confirms its users on its return URL (confirmUsers); the device flow, which has no return URL, is not offered"
export const CONFIRMS_USERS_NEEDS_RETURN_URL =
  "this project confirms its users (confirmUsers): name the return URL that receives the confirmation code"

/** Refuses a new request while the project has `maxPending` open ones, until the first of them expires. */
export const checkPendingCap = (store: Store["Type"], maxPending: number, caller: Caller, connector: Connector) =>
  Effect.gen(function* () {
    const now = yield* Clock.currentTimeMillis
    const open = yield* store.countOpenAuthorizations(caller.projectId, now)
    if (open.count < maxPending) return
    return yield* new RateLimited({
      connector: connector.uid,
      retryAfterMs: Math.max(1_000, open.firstExpiry - now),
      detail: `the project has ${maxPending} authorization requests open (${MAX_PENDING_VARIABLE}); retry once one ends or expires`
    })
  })

/** Whether a return URL is on the allow-list: the same origin and path as an entry. */
export const allowed = (returnUrl: string, allowList: ReadonlyArray<string>): boolean => {
  const target = new URL(returnUrl)
  return allowList.some((entry) => {
    try {
      const allowedUrl = new URL(entry)
      return allowedUrl.origin === target.origin && allowedUrl.pathname === target.pathname
    } catch {
      return false
    }
  })
}

/** Checks a return URL against the project's allow-list. */
export const checkReturnUrl = (
  store: Store["Type"],
  caller: Caller,
  connector: Connector,
  returnUrl: string | undefined
) =>
  Effect.gen(function* () {
    if (returnUrl === undefined) return
    const allowList = yield* store.findProjectReturnUrls(caller.projectId)
    if (!allowed(returnUrl, allowList)) {
      return yield* badField(connector, "returnUrl", "not on the project's allow-list of return URLs (returnUrls)")
    }
  })
