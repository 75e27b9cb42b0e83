/**
 * The event history's models: what an event is, what a caller records and
 * how a reader filters. Re-exported by `Events`.
 *
 * @since 0.1.0
 */
import { Schema } from "effect"

/**
 * The kinds of event, by what they are about.
 *
 * @since 0.1.0
 * @category models
 */
export const EventKind = Schema.Literal(
  "token.issued",
  "token.refreshed",
  "token.revoked",
  "authorization.started",
  "authorization.completed",
  "authorization.failed",
  "grant.invalidated",
  "grant.revoked",
  "installation.added",
  "installation.removed",
  "connector.created",
  "connector.updated",
  "connector.removed"
)

/**
 * @since 0.1.0
 * @category models
 */
export type EventKind = typeof EventKind.Type

/**
 * What an event says besides who and when: small values, never a secret.
 *
 * @since 0.1.0
 * @category models
 */
export const EventData = Schema.Record({
  key: Schema.String,
  value: Schema.Union(Schema.String, Schema.Number, Schema.Boolean, Schema.Null)
})

/**
 * @since 0.1.0
 * @category models
 */
export type EventData = typeof EventData.Type

/**
 * An event as recorded. `seq` orders events in the order they were written
 * (within one database); `id` is stable and unique, for deduplication and
 * webhooks.
 *
 * @since 0.1.0
 * @category models
 */
export class BrokerEvent extends Schema.Class<BrokerEvent>("BrokerEvent")({
  seq: Schema.Number,
  id: Schema.String,
  kind: EventKind,
  occurredAt: Schema.Number,
  connector: Schema.optional(Schema.String),
  projectId: Schema.optional(Schema.String),
  environment: Schema.optional(Schema.String),
  subject: Schema.optional(Schema.String),
  installationId: Schema.optional(Schema.String),
  requestId: Schema.optional(Schema.String),
  data: EventData
}) {}

/**
 * What a caller records: the kind, who it concerns (connector uid, project,
 * environment, subject, installation) and its data. The id, the time and
 * the request id (the `requestId` log annotation, when there is one) are
 * added.
 *
 * @since 0.1.0
 * @category models
 */
export interface EventInput {
  readonly kind: EventKind
  readonly connector?: string | undefined
  readonly projectId?: string | undefined
  readonly environment?: string | undefined
  readonly subject?: string | undefined
  readonly installationId?: string | undefined
  readonly data?: EventData | undefined
}

/**
 * Which events to list: every criterion given must hold. Newest first, at
 * most `limit`, older than `beforeSeq` (the page before); or, with
 * `afterSeq`, oldest first after it (to follow).
 *
 * @since 0.1.0
 * @category models
 */
export interface EventFilter {
  readonly connector?: string | undefined
  readonly projectId?: string | undefined
  readonly subject?: string | undefined
  readonly kinds?: ReadonlyArray<EventKind> | undefined
  readonly since?: number | undefined
  readonly until?: number | undefined
  readonly beforeSeq?: number | undefined
  readonly afterSeq?: number | undefined
  readonly limit: number
}

/**
 * Who an event concerns, as the admin API and webhooks show it (`project`
 * for the project id), the fields it does not have left out.
 *
 * @since 0.1.0
 * @category views
 */
export const concerns = (event: {
  readonly connector?: string | undefined
  readonly projectId?: string | undefined
  readonly environment?: string | undefined
  readonly subject?: string | undefined
  readonly installationId?: string | undefined
  readonly requestId?: string | undefined
}): {
  readonly connector?: string
  readonly project?: string
  readonly environment?: string
  readonly subject?: string
  readonly installationId?: string
  readonly requestId?: string
} => ({
  ...(event.connector === undefined ? {} : { connector: event.connector }),
  ...(event.projectId === undefined ? {} : { project: event.projectId }),
  ...(event.environment === undefined ? {} : { environment: event.environment }),
  ...(event.subject === undefined ? {} : { subject: event.subject }),
  ...(event.installationId === undefined ? {} : { installationId: event.installationId }),
  ...(event.requestId === undefined ? {} : { requestId: event.requestId })
})
