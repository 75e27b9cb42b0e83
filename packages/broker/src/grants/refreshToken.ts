/**
 * The refresh token grant (RFC 6749 section 6) on a stored grant, so that no
 * refresh wedges the broker and no grant is lost that could be saved.
 *
 * - No transaction, row lock or pooled connection is held across the provider
 *   call: the refresh is claimed with a lease on the grant row (one
 *   conditional UPDATE), the provider is called, and what it gave is saved
 *   with a compare-and-set on the grant's `version`. A request that finds the
 *   grant leased by another broker re-reads until that one is done.
 * - The journal: claiming records the attempt on the grant before the refresh
 *   token is sent; the attempt is cleared once its outcome is known. A rotated
 *   refresh token is saved first, before the access token is recorded or the
 *   answer leaves.
 * - An attempt whose outcome is unknown (a crash, a timeout, a gateway's 5xx)
 *   stays recorded; the next refresh of that grant (at start-up, or the next
 *   request once the lease expired) sends the same refresh token again, which
 *   providers with a grace period accept. If it is refused, the grant is
 *   `lost`, with the reason kept on the row and logged.
 *
 * @since 0.1.0
 */
import { Clock, Effect, Either, Option, Redacted } from "effect"
import { type ConnectError, NoValidToken } from "effect-connect/ConnectError"
import type { EventsService } from "../Events.js"
import { grantOwner } from "../internal/tokenKeys.js"
import * as Metrics from "../Metrics.js"
import { ProviderClientConfig, type ProviderError, type ProviderToken } from "../ProviderClient.js"
import type { Connector, Grant, StoreError } from "../Store.js"
import {
  fromProvider,
  type GrantContext,
  LEASE_POLL_MS,
  limitsOf,
  logGrantEnded,
  logProviderFailure
} from "./common.js"

/**
 * What a refresh needs: where and as whom to ask, and who this broker is.
 *
 * @since 0.1.0
 * @category models
 */
export interface RefreshContext extends GrantContext {
  readonly targets: { readonly scope?: ReadonlyArray<string>; readonly resource?: ReadonlyArray<string> }
  /** Where a refresh, and a grant that ends, are recorded. */
  readonly events: EventsService
}

/** Who a grant's events concern: its connector, project, subject and installation. */
const aboutGrant = (connector: Connector, grant: Grant) => ({
  connector: connector.uid,
  ...grantOwner(grant.subject),
  installationId: grant.installationId === "" ? undefined : grant.installationId
})

/**
 * What the caller does with a refresh: `reuse` finds a token another refresh
 * already gave for this request, `issue` turns a new token into the answer
 * (after the grant is saved), `gone` is the error of a grant that is no more.
 *
 * @since 0.1.0
 * @category models
 */
export interface RefreshHandlers<A> {
  readonly reuse: Effect.Effect<Option.Option<A>, StoreError>
  readonly issue: (token: ProviderToken) => Effect.Effect<A, StoreError>
  readonly gone: () => ConnectError
}

const WAIT = Symbol("wait")

/** Why a grant whose earlier attempt got no answer is lost now. */
const lostReason = (connector: Connector, error: ProviderError, attemptStartedAt: number, now: number) => {
  const grace = connector.settings.refreshTokenGracePeriodSeconds
  const age = Math.round((now - attemptStartedAt) / 1000)
  const beyond =
    grace === undefined
      ? "the connector declares no grace period for a rotated refresh token"
      : age > grace
        ? `${age} s later, beyond the provider's grace period of ${grace} s`
        : `${age} s later, within the declared grace period of ${grace} s`
  return `a refresh sent at ${new Date(attemptStartedAt).toISOString()} got no answer (a crash, timeout or gateway error), and the provider refused the same refresh token again (${error.code ?? error.kind}${error.status === undefined ? "" : `, HTTP ${error.status}`}; ${beyond}): its rotated refresh token was lost`
}

/** The end of a refresh that failed: saved on the grant (and logged), then the caller's error. */
const failed = <A>(
  context: RefreshContext,
  grant: Grant,
  handlers: RefreshHandlers<A>,
  error: ProviderError,
  durationMs: number
): Effect.Effect<never, ConnectError | StoreError> =>
  Effect.gen(function* () {
    const { connector, store } = context
    const version = grant.version + 1
    const attempt = grant.attemptStartedAt === undefined ? 1 : 2
    if (error.kind === "invalid_grant") {
      const now = yield* Clock.currentTimeMillis
      // An earlier request of this refresh (retried after a timeout or a 5xx) may have rotated the token too.
      const unknownBefore = grant.attemptStartedAt ?? (error.attempts > 1 ? now - durationMs : undefined)
      const status = unknownBefore === undefined ? ("invalid" as const) : ("lost" as const)
      const reason =
        unknownBefore === undefined
          ? `the provider refused the refresh token (${error.code ?? error.kind}${error.status === undefined ? "" : `, HTTP ${error.status}`})`
          : lostReason(connector, error, unknownBefore, now)
      yield* store.finishGrantRefresh({ grantId: grant.id, version, status, lostReason: reason, keepAttempt: false })
      yield* logProviderFailure({ connector, grant: "refresh_token", error, durationMs, outcome: status, attempt })
      yield* logGrantEnded({ connector, grantId: grant.id, status, reason })
      yield* context.events.record({
        kind: "grant.invalidated",
        ...aboutGrant(connector, grant),
        data: { reason: error.code ?? error.kind, status, grantId: grant.id }
      })
      return yield* Effect.fail(handlers.gone())
    }
    // Without an answer (or with a 5xx) the provider may have rotated the token: keep the attempt.
    const unknown = error.kind === "transient"
    yield* store.finishGrantRefresh({
      grantId: grant.id,
      version,
      keepAttempt: unknown || grant.attemptStartedAt !== undefined
    })
    yield* logProviderFailure({
      connector,
      grant: "refresh_token",
      error,
      durationMs,
      outcome: unknown ? "outcome unknown, attempt kept" : "refused",
      attempt
    })
    return yield* Effect.fail(fromProvider(connector, error, context.subject))
  })

/** The refresh of a grant this broker holds the lease on (taken at `grant.version`). */
const refreshClaimed = <A>(
  context: RefreshContext,
  grant: Grant & { readonly refreshToken: NonNullable<Grant["refreshToken"]> },
  handlers: RefreshHandlers<A>
): Effect.Effect<A, ConnectError | StoreError> =>
  Effect.uninterruptibleMask((restore) =>
    Effect.gen(function* () {
      const { connector, store } = context
      const version = grant.version + 1
      const limits = limitsOf(connector.settings)
      const startedAt = yield* Clock.currentTimeMillis
      const answer = yield* restore(
        context.provider.requestToken(context.endpoint, {
          type: "refresh_token",
          refreshToken: grant.refreshToken,
          ...context.targets
        })
      ).pipe(
        Effect.provideService(ProviderClientConfig, {
          ...(yield* ProviderClientConfig),
          timeout: limits.attemptMs
        }),
        Effect.either,
        // Stopped at the hard limit (or at shutdown): the outcome is unknown, so the attempt stays recorded.
        Effect.onInterrupt(() =>
          Effect.gen(function* () {
            const now = yield* Clock.currentTimeMillis
            yield* store.finishGrantRefresh({ grantId: grant.id, version, keepAttempt: true })
            yield* logProviderFailure({
              connector,
              grant: "refresh_token",
              error: "timeout",
              durationMs: now - startedAt,
              outcome: "outcome unknown, attempt kept",
              attempt: grant.attemptStartedAt === undefined ? 1 : 2
            })
          }).pipe(Effect.ignore)
        )
      )
      const durationMs = (yield* Clock.currentTimeMillis) - startedAt
      yield* Metrics.count(Metrics.grantRefreshes, {
        connector: connector.uid,
        outcome: Either.isLeft(answer) ? answer.left.kind : "ok"
      })
      if (Either.isLeft(answer)) return yield* failed(context, grant, handlers, answer.left, durationMs)
      const token = answer.right
      // The rotated refresh token first: durable before anything else happens.
      const saved = yield* store.finishGrantRefresh({
        grantId: grant.id,
        version,
        refreshToken: token.refreshToken,
        refreshExpiresAt: token.refreshToken === undefined ? undefined : token.refreshTokenExpiresAt,
        keepAttempt: false,
        keepLease: true
      })
      if (!saved) {
        yield* Effect.logError(
          "a refreshed grant changed during its refresh; its new refresh token was not saved"
        ).pipe(Effect.annotateLogs({ connector: connector.uid, grantId: grant.id }))
      }
      yield* context.events.record({
        kind: "token.refreshed",
        ...aboutGrant(connector, grant),
        data: {
          rotated:
            token.refreshToken !== undefined &&
            Redacted.value(token.refreshToken) !== Redacted.value(grant.refreshToken),
          grantId: grant.id
        }
      })
      // The lease is held until the access token is recorded, so that others find it instead of refreshing.
      return yield* handlers
        .issue(token)
        .pipe(Effect.ensuring(Effect.ignore(store.releaseGrantLease(grant.id, context.owner))))
    })
  )

/** Claims the lease on `grant` as read, and refreshes it; `WAIT` when it is leased or changed since the read. */
const claimAndRefresh = <A>(
  context: RefreshContext,
  grant: Grant,
  handlers: RefreshHandlers<A>
): Effect.Effect<A | typeof WAIT, ConnectError | StoreError> =>
  Effect.gen(function* () {
    const { connector, store } = context
    if (grant.status !== "active") return yield* Effect.fail(handlers.gone())
    const refreshToken = grant.refreshToken
    if (refreshToken === undefined) {
      return yield* new NoValidToken({ connector: connector.uid, detail: "there is no refresh token" })
    }
    const now = yield* Clock.currentTimeMillis
    if (grant.leaseExpiresAt !== undefined && grant.leaseExpiresAt > now) return WAIT
    // A compare-and-set on the version read: a grant changed since (a rotation, another lease) is not claimed.
    const claimed = yield* store.claimGrantLease({
      grantId: grant.id,
      version: grant.version,
      owner: context.owner,
      now,
      until: now + limitsOf(connector.settings).leaseMs
    })
    if (!claimed) return WAIT
    // Claimed just after another broker recorded a token for this request: that one serves.
    const recorded = yield* handlers.reuse
    if (Option.isSome(recorded)) {
      yield* store.finishGrantRefresh({
        grantId: grant.id,
        version: grant.version + 1,
        keepAttempt: grant.attemptStartedAt !== undefined
      })
      return recorded.value
    }
    return yield* refreshClaimed(context, { ...grant, refreshToken }, handlers)
  })

/**
 * Refreshes a grant under a lease, or waits for the broker that holds it
 * (re-reading every {@link LEASE_POLL_MS}), until a token for the request is
 * there or the grant is gone. The caller bounds it in time.
 *
 * `read`, the grant as the caller has just read it, saves the first pass its
 * reads: the claim is a compare-and-set on the version read, and a token
 * another refresh recorded is looked for once the lease is held. A grant that
 * changed since is read again at once.
 *
 * @since 0.1.0
 * @category refresh
 */
export const refreshGrant = <A>(
  context: RefreshContext,
  grantId: string,
  handlers: RefreshHandlers<A>,
  read?: Grant
): Effect.Effect<A, ConnectError | StoreError> => {
  const once: Effect.Effect<A | typeof WAIT, ConnectError | StoreError> = Effect.gen(function* () {
    const again = yield* handlers.reuse
    if (Option.isSome(again)) return again.value
    const found = yield* context.store.findGrantById(grantId)
    if (Option.isNone(found)) return yield* Effect.fail(handlers.gone())
    return yield* claimAndRefresh(context, found.value, handlers)
  })
  const loop: Effect.Effect<A, ConnectError | StoreError> = Effect.flatMap(once, (result) =>
    result === WAIT
      ? Effect.zipRight(
          Effect.sleep(LEASE_POLL_MS),
          Effect.suspend(() => loop)
        )
      : Effect.succeed(result)
  )
  if (read === undefined) return loop
  // Changed since the caller read it, or leased: on with the reads, at once.
  return Effect.flatMap(claimAndRefresh(context, read, handlers), (result) =>
    result === WAIT ? loop : Effect.succeed(result)
  )
}
