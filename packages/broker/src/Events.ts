/**
 * The broker's event history: what happened, to whom, when. Tokens issued
 * (from storage or from the provider), refreshed and revoked; authorizations
 * started, completed and failed; grants invalidated; installations added and
 * removed; connectors changed.
 *
 * `Events.record` never fails and never waits for the database: events are
 * written by one fiber in batches (one transaction each), so a busy token
 * endpoint pays a queue offer, not an insert. `Events.list` first waits for
 * what this process recorded to be written, so a reader sees its own events.
 * What a crash can lose is the last batch not yet written (milliseconds);
 * state changes themselves are never waiting on an event.
 *
 * Events hold no secret: only ids, kinds, times and small values
 * (`EventData`), never a token, code or key.
 *
 * @since 0.1.0
 */
import type { SqlClient } from "@effect/sql"
import { Context, type Effect, Layer } from "effect"
import type { BrokerEvent, EventFilter, EventInput } from "./internal/events/models.js"
import { make } from "./internal/events/service.js"
import type { StoreError } from "./Store.js"

export * from "./internal/events/models.js"

/**
 * The event history's operations.
 *
 * @since 0.1.0
 * @category models
 */
export interface EventsService {
  /** Records an event; never fails (an event that cannot be written is logged and dropped). */
  readonly record: (event: EventInput) => Effect.Effect<void>
  /** Waits until every event recorded so far by this process is written. */
  readonly flush: Effect.Effect<void>
  /**
   * Adds a holder of events not yet recorded (the token endpoint's fast path
   * counts its answers and records them once a second): `flush` tells it to
   * record them first, so that a reader still sees its own events.
   */
  readonly addSource: (record: Effect.Effect<void>) => void
  /** The events that match, newest first (oldest first with `afterSeq`). */
  readonly list: (filter: EventFilter) => Effect.Effect<Array<BrokerEvent>, StoreError>
  /** Deletes the events that occurred before `before`; says how many. */
  readonly prune: (before: number) => Effect.Effect<number, StoreError>
}

/**
 * The event history.
 *
 * @since 0.1.0
 * @category tags
 */
export class Events extends Context.Tag("effect-connect/broker/Events")<Events, EventsService>() {
  /** The history in the broker's database, written by a fiber that lives as long as the layer. */
  static readonly layer: Layer.Layer<Events, never, SqlClient.SqlClient> = Layer.scoped(Events, make)
}
