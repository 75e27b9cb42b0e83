/**
 * The event history over `@effect/sql`: a bounded queue that `record`
 * offers to, and one fiber that writes what it holds in batches, each in a
 * transaction.
 *
 * @internal
 */
import { SqlClient } from "@effect/sql"
import { Clock, Deferred, Effect, FiberRef, HashMap, Option, Queue, Schedule } from "effect"
import type { EventsService } from "../../Events.js"
import { fail, newId } from "../store/common.js"
import { enqueueDeliveries } from "../webhooks/deliveries.js"
import { WebhookSignal, type WebhookSignalService } from "../webhooks/signal.js"
import type { EventInput } from "./models.js"
import { insertEvents, selectEvents } from "./table.js"

/** How many events wait for the writer before new ones are dropped (the database is down or too slow). */
export const QUEUE_CAPACITY = 10_000

/** The most events one batch writes. */
export const BATCH_SIZE = 500

/** How long a closing broker waits for the last events to be written. */
const FLUSH_ON_CLOSE = "5 seconds"

/** What the writer takes: an event to write, or a caller waiting for what came before it. */
type Entry =
  | { readonly _tag: "Event"; readonly event: RecordedEvent }
  | { readonly _tag: "Marker"; readonly done: Deferred.Deferred<void> }

/** An event with what `record` adds to it. */
export interface RecordedEvent extends EventInput {
  readonly id: string
  readonly occurredAt: number
  readonly requestId: string | undefined
}

/** The request id the current fiber logs with, if any. */
const currentRequestId = Effect.map(FiberRef.get(FiberRef.currentLogAnnotations), (annotations) =>
  Option.getOrUndefined(
    Option.filter(HashMap.get(annotations, "requestId"), (value): value is string => typeof value === "string")
  )
)

/**
 * Writes one batch with its webhook deliveries (the outbox), in one
 * transaction, then wakes the webhooks' dispatcher if it wrote any; a batch
 * that fails three times is dropped, and said so.
 */
const writeBatch = (
  sql: SqlClient.SqlClient,
  events: ReadonlyArray<RecordedEvent>,
  signal: Option.Option<WebhookSignalService>
) =>
  sql.withTransaction(Effect.zipRight(insertEvents(sql, events), enqueueDeliveries(sql, events))).pipe(
    Effect.retry(Schedule.intersect(Schedule.exponential("100 millis"), Schedule.recurs(2))),
    Effect.flatMap((deliveries) => (deliveries > 0 && Option.isSome(signal) ? signal.value.raise : Effect.void)),
    Effect.catchAll((error) =>
      Effect.logWarning(`events: ${events.length} events could not be written and are dropped`, fail("write")(error))
    )
  )

/** Takes what the queue holds (waiting for one at least), writes its events, then releases the waiting callers. */
const writeNext = (sql: SqlClient.SqlClient, queue: Queue.Queue<Entry>, signal: Option.Option<WebhookSignalService>) =>
  Effect.gen(function* () {
    const entries = yield* Queue.takeBetween(queue, 1, BATCH_SIZE)
    const events: Array<RecordedEvent> = []
    const markers: Array<Deferred.Deferred<void>> = []
    for (const entry of entries) {
      if (entry._tag === "Event") events.push(entry.event)
      else markers.push(entry.done)
    }
    if (events.length > 0) yield* writeBatch(sql, events, signal)
    yield* Effect.forEach(markers, (done) => Deferred.succeed(done, undefined), { discard: true })
  })

/** The event history, its writer living as long as the scope. */
export const make = Effect.gen(function* () {
  const sql = yield* SqlClient.SqlClient
  const queue = yield* Queue.dropping<Entry>(QUEUE_CAPACITY)
  // Without webhooks in this process, their dispatchers (elsewhere) find the deliveries by polling.
  const signal = yield* Effect.serviceOption(WebhookSignal)
  yield* Effect.forkScoped(Effect.forever(writeNext(sql, queue, signal)))

  const sources: Array<Effect.Effect<void>> = []
  const flush = Effect.gen(function* () {
    for (const source of sources) yield* source
    const done = yield* Deferred.make<void>()
    if (yield* Queue.offer(queue, { _tag: "Marker", done })) yield* Deferred.await(done)
  })
  // Finalizers run last-in first-out: this one runs before the writer is interrupted.
  yield* Effect.addFinalizer(() => Effect.timeout(flush, FLUSH_ON_CLOSE).pipe(Effect.ignore))

  const record: EventsService["record"] = (input) =>
    Effect.gen(function* () {
      const event: RecordedEvent = {
        ...input,
        id: newId("evt"),
        occurredAt: yield* Clock.currentTimeMillis,
        requestId: yield* currentRequestId
      }
      const accepted = yield* Queue.offer(queue, { _tag: "Event", event })
      if (!accepted) yield* Effect.logWarning(`events: the queue is full; a ${input.kind} event is dropped`)
    })

  return {
    record,
    flush,
    addSource: (source) => {
      sources.push(source)
    },
    list: (filter) => Effect.zipRight(flush, selectEvents(sql, filter)),
    prune: (before) =>
      sql<{ seq: number }>`DELETE FROM events WHERE occurred_at < ${before} RETURNING seq`.pipe(
        Effect.map((rows) => rows.length),
        Effect.mapError(fail("prune events"))
      )
  } satisfies EventsService
})
