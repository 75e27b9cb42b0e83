import { Effect, Metric, type Tracer } from "effect"

/**
 * Effect's own tracer, as a program has it when no tracer layer (OpenTelemetry)
 * is provided. Captured once: a cache hit compares against it and creates no
 * span while it is the current tracer.
 */
export const nativeTracer: Tracer.Tracer = Effect.runSync(Effect.tracer)

/** The name of the span of one `getToken` (and `getTokenResponse`). */
export const GET_TOKEN_SPAN = "connect.getToken"

/**
 * How a `getToken` was answered: `refreshed_ahead` is a hit that also started
 * the background refresh of its entry (it counts as a hit too).
 */
export type GetTokenOutcome = "hit" | "refreshed_ahead" | "miss" | "joined"

/** Cache hits (no label: the hit path reads a pre-bound counter). */
export const cacheHits = Metric.counter("connect_client_cache_hits_total", {
  description: "getToken calls answered from the SDK's token cache",
  incremental: true
})

/** Cache misses that sent a request to the server. */
export const cacheMisses = Metric.counter("connect_client_cache_misses_total", {
  description: "getToken calls that missed the SDK's token cache and asked the server",
  incremental: true
})

/** Misses that joined a request already under way for the same key. */
export const stampedesJoined = Metric.counter("connect_client_stampedes_joined_total", {
  description: "getToken calls that joined a request already under way for the same token",
  incremental: true
})

/** Background refreshes started by a hit inside the refresh-ahead window. */
export const refreshesAhead = Metric.counter("connect_client_refreshes_ahead_total", {
  description: "background token refreshes the SDK started ahead of expiry",
  incremental: true
})

/** HTTP attempts sent to the Connect server. */
export const requestsSent = Metric.counter("connect_client_requests_total", {
  description: "HTTP attempts the SDK sent to its Connect server",
  incremental: true
})

/**
 * Records how a token request was answered: its counter, and the attribute of
 * the `getToken` span when that span is the current one (never another span
 * of the caller's).
 */
export const recordOutcome = (outcome: GetTokenOutcome): Effect.Effect<void> =>
  Effect.suspend(() => {
    ;(outcome === "hit" || outcome === "refreshed_ahead"
      ? cacheHits
      : outcome === "joined"
        ? stampedesJoined
        : cacheMisses
    ).unsafeUpdate(1, [])
    return Effect.flatMap(Effect.option(Effect.currentSpan), (span) => {
      if (span._tag === "Some" && span.value.name === GET_TOKEN_SPAN) span.value.attribute("connect.outcome", outcome)
      return Effect.void
    })
  })
