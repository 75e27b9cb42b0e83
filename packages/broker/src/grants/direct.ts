/**
 * Grants that need no stored state (client credentials, JWT bearer, token
 * exchange): one provider call per request across broker replicas. The call
 * is claimed with a lease keyed by connector, project, environment and
 * request; other requests (in any replica) wait for the token it records.
 *
 * @since 0.1.0
 */
import { Clock, Effect, Option } from "effect"
import type { ConnectError } from "effect-connect/ConnectError"
import { type Grant, ProviderClientConfig, type ProviderToken } from "../ProviderClient.js"
import type { StoreError } from "../Store.js"
import { fromProvider, type GrantContext, LEASE_POLL_MS, limitsOf, logProviderFailure } from "./common.js"

/**
 * What a direct grant needs: the provider, this broker as lease holder, and
 * what the caller does with a token.
 *
 * @since 0.1.0
 * @category models
 */
export interface DirectContext<A> extends GrantContext {
  /** The lease's key: connector, project, environment and request. */
  readonly leaseKey: string
  readonly reuse: Effect.Effect<Option.Option<A>, StoreError>
  readonly issue: (token: ProviderToken) => Effect.Effect<A, StoreError>
}

/** The provider call, under the lease; the lease is given up whatever happens. */
const callUnderLease = <A>(
  context: DirectContext<A>,
  prepare: Effect.Effect<Grant, ConnectError>
): Effect.Effect<A, ConnectError | StoreError> =>
  Effect.gen(function* () {
    const { connector } = context
    const grant = yield* prepare
    const startedAt = yield* Clock.currentTimeMillis
    const token = yield* context.provider.requestToken(context.endpoint, grant).pipe(
      Effect.provideService(ProviderClientConfig, {
        ...(yield* ProviderClientConfig),
        timeout: limitsOf(connector.settings).attemptMs
      }),
      Effect.tapError((error) =>
        Effect.flatMap(Clock.currentTimeMillis, (now) =>
          logProviderFailure({
            connector,
            grant: grant.type,
            error,
            durationMs: now - startedAt,
            outcome: error.kind === "transient" ? "unavailable" : "refused",
            attempt: 1
          })
        )
      ),
      Effect.catchTag("ProviderError", (error) => Effect.fail(fromProvider(connector, error, context.subject))),
      // Stopped at the hard limit (a provider that never answers): one line too.
      Effect.onInterrupt(() =>
        Effect.flatMap(Clock.currentTimeMillis, (now) =>
          logProviderFailure({
            connector,
            grant: grant.type,
            error: "timeout",
            durationMs: now - startedAt,
            outcome: "stopped at the hard limit",
            attempt: 1
          })
        )
      )
    )
    return yield* context.issue(token)
  }).pipe(Effect.ensuring(Effect.ignore(context.store.releaseTokenLease(context.leaseKey, context.owner))))

/**
 * A token from a grant that needs no stored state: a token another request
 * (of any replica) got for the same request, or one this request gets. The
 * caller bounds it in time.
 *
 * @since 0.1.0
 * @category grants
 */
export const directGrant = <A>(
  context: DirectContext<A>,
  grant: Effect.Effect<Grant, ConnectError>
): Effect.Effect<A, ConnectError | StoreError> => {
  const once: Effect.Effect<Option.Option<A>, ConnectError | StoreError> = Effect.gen(function* () {
    const again = yield* context.reuse
    if (Option.isSome(again)) return again
    const now = yield* Clock.currentTimeMillis
    const until = now + limitsOf(context.connector.settings).leaseMs
    const claimed = yield* context.store.claimTokenLease(context.leaseKey, context.owner, now, until)
    if (!claimed) return Option.none()
    // Claimed after another's token was recorded: that one serves.
    const recorded = yield* context.reuse
    if (Option.isSome(recorded)) {
      yield* Effect.ignore(context.store.releaseTokenLease(context.leaseKey, context.owner))
      return recorded
    }
    return Option.some(yield* callUnderLease(context, grant))
  })
  const loop: Effect.Effect<A, ConnectError | StoreError> = Effect.flatMap(once, (result) =>
    Option.isSome(result)
      ? Effect.succeed(result.value)
      : Effect.zipRight(
          Effect.sleep(LEASE_POLL_MS),
          Effect.suspend(() => loop)
        )
  )
  return loop
}
