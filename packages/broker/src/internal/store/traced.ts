/**
 * The store with a span around each operation (`Store.findCaller`, …), so that
 * a trace shows the database's part of a request. The arguments are not
 * recorded: some are secrets (a project key, a sealed token). The counts of
 * authorizations started and finished are taken here too: every flow (code,
 * installation, device, confirmation) starts and finishes through the store.
 *
 * @internal
 */
import { Effect, FiberRef } from "effect"
import * as Metrics from "../../Metrics.js"
import type { StoreService } from "../../Store.js"

/** Operations that wrap the caller's own effect: their time is the caller's, not the store's. */
const UNTRACED: ReadonlySet<string> = new Set(["transaction", "withGrantLock", "singleProcess"])

// No stack trace: it would name this wrapper, never the caller, and capturing it was 2 % of a refresh's CPU.
const spanOf = (name: string) =>
  Effect.withSpan(`Store.${name}`, {
    kind: "client",
    captureStackTrace: false,
    attributes: { "db.operation.name": name }
  })

/** Wraps every operation of a store in a span of its name. */
export const traced = (store: StoreService): StoreService => {
  const wrapped: Record<string, unknown> = {}
  for (const [name, value] of Object.entries(store)) {
    if (UNTRACED.has(name)) wrapped[name] = value
    else if (Effect.isEffect(value)) wrapped[name] = spanOf(name)(value)
    else if (typeof value === "function") {
      const operation = value as (...args: ReadonlyArray<unknown>) => unknown
      wrapped[name] = (...args: ReadonlyArray<unknown>) => {
        const result = operation(...args)
        return Effect.isEffect(result) ? spanOf(name)(result) : result
      }
    } else wrapped[name] = value
  }
  return counted(wrapped as unknown as StoreService)
}

const countWith = (
  counter: typeof Metrics.authorizationsStarted,
  labels: (connector: string) => Readonly<Record<string, string>>
) => Effect.flatMap(FiberRef.get(Metrics.currentConnector), (connector) => Metrics.count(counter, labels(connector)))

/** Counts the authorizations the store records as started and as finished. */
const counted = (store: StoreService): StoreService => ({
  ...store,
  createAuthorizationRequest: (input) =>
    Effect.tap(store.createAuthorizationRequest(input), () =>
      countWith(Metrics.authorizationsStarted, (connector) => ({
        connector,
        flow: input.kind === "install" ? "installation" : "authorization_code"
      }))
    ),
  createDeviceAuthorizationRequest: (...args) =>
    Effect.tap(store.createDeviceAuthorizationRequest(...args), () =>
      countWith(Metrics.authorizationsStarted, (connector) => ({ connector, flow: "device" }))
    ),
  finishAuthorizationRequest: (...args) =>
    Effect.tap(store.finishAuthorizationRequest(...args), () =>
      countWith(Metrics.authorizationsCompleted, () => ({ outcome: args[1].status }))
    )
})
