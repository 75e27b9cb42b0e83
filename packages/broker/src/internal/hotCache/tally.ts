/**
 * What the token endpoint's fast path handed out, counted in memory and told
 * to the metrics and the event history once a second: one `token.issued`
 * event (source `stored`, with `count`) per answer and caller in that second,
 * instead of one per request. A busy endpoint would otherwise spend most of
 * its time writing one event row per request.
 *
 * @internal
 */
import { Duration, Effect, Schedule } from "effect"
import type { EventsService } from "../../Events.js"
import type { StoredAnswer } from "../../HotCache.js"
import * as Metrics from "../../Metrics.js"
import type { Caller } from "../../Store.js"

/** How often the tally is told. */
export const TALLY_INTERVAL = Duration.seconds(1)

interface Pending {
  readonly caller: Caller
  readonly answer: StoredAnswer
  count: number
  requestId: string
  timeLeftMs: number
}

/** Counts of answers given by the fast path, waiting to be told. */
export interface Tally {
  /** Counts one answer given to `caller`. */
  readonly add: (caller: Caller, answer: StoredAnswer, requestId: string, now: number) => void
  /** Tells the metrics and the event history what was counted since the last time. */
  readonly flush: Effect.Effect<void>
}

const tell = (events: EventsService, pending: Pending) => {
  const { caller, answer, count } = pending
  const connector = { connector: answer.connector }
  return Effect.all(
    [
      Metrics.countBy(Metrics.tokenRequests, { ...connector, outcome: "issued" }, count),
      Metrics.countBy(Metrics.tokenReuses, connector, count),
      // Within the second, the time left moved by less than the histogram's smallest bucket.
      Effect.repeatN(Metrics.observe(Metrics.tokenTimeLeft, connector, pending.timeLeftMs / 1000), count - 1),
      events.record({
        kind: "token.issued",
        connector: answer.connector,
        projectId: caller.projectId,
        environment: caller.environment,
        subject: answer.subject,
        installationId: answer.installationId,
        data: { source: "stored", grant: answer.grant, expiresAt: answer.expiresAt, count }
      })
    ],
    { discard: true }
  ).pipe(Effect.annotateLogs("requestId", pending.requestId))
}

/** A tally telling `events`. */
export const makeTally = (events: EventsService): Tally => {
  let pending = new Map<string, Pending>()
  return {
    add: (caller, answer, requestId, now) => {
      const key = `${caller.projectId}\n${caller.environment}\n${answer.body}`
      const known = pending.get(key)
      const timeLeftMs = Math.max(0, answer.expiresAt - now)
      if (known === undefined) pending.set(key, { caller, answer, count: 1, requestId, timeLeftMs })
      else {
        known.count += 1
        known.requestId = requestId
        known.timeLeftMs = timeLeftMs
      }
    },
    flush: Effect.suspend(() => {
      const told = pending
      pending = new Map()
      return Effect.forEach(told.values(), (entry) => tell(events, entry), { discard: true })
    })
  }
}

/** Tells the tally every {@link TALLY_INTERVAL} for as long as the scope lasts, and once more when it closes. */
export const flushing = (tally: Tally) =>
  Effect.zipRight(
    Effect.addFinalizer(() => tally.flush),
    Effect.forkScoped(Effect.repeat(tally.flush, Schedule.spaced(TALLY_INTERVAL)))
  )
