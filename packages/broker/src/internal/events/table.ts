/**
 * The `events` table: insert a batch, select by filter.
 *
 * @internal
 */
import type { SqlClient } from "@effect/sql"
import { Effect, Schema } from "effect"
import { fail, num } from "../store/common.js"
import { BrokerEvent, EventData, type EventFilter } from "./models.js"
import type { RecordedEvent } from "./service.js"

interface EventRow {
  readonly seq: number | string
  readonly id: string
  readonly kind: string
  readonly occurred_at: number | string
  readonly connector: string | null
  readonly project_id: string | null
  readonly environment: string | null
  readonly subject: string | null
  readonly installation_id: string | null
  readonly request_id: string | null
  readonly data: string
}

const decodeData = Schema.decodeUnknown(Schema.parseJson(EventData))
const encodeData = Schema.encodeSync(Schema.parseJson(EventData))
const decodeEvent = Schema.decodeUnknown(BrokerEvent)

/** Inserts the events of a batch, in one statement. */
export const insertEvents = (sql: SqlClient.SqlClient, events: ReadonlyArray<RecordedEvent>) =>
  sql`INSERT INTO events ${sql.insert(
    events.map((event) => ({
      id: event.id,
      kind: event.kind,
      occurred_at: event.occurredAt,
      connector: event.connector ?? null,
      project_id: event.projectId ?? null,
      environment: event.environment ?? null,
      subject: event.subject ?? null,
      installation_id: event.installationId ?? null,
      request_id: event.requestId ?? null,
      data: encodeData(event.data ?? {})
    }))
  )}`

/** A row as the model, its absent columns left out. */
const toEvent = (row: EventRow) =>
  Effect.flatMap(decodeData(row.data), (data) =>
    decodeEvent({
      seq: num(row.seq),
      id: row.id,
      kind: row.kind,
      occurredAt: num(row.occurred_at),
      ...(row.connector === null ? {} : { connector: row.connector }),
      ...(row.project_id === null ? {} : { projectId: row.project_id }),
      ...(row.environment === null ? {} : { environment: row.environment }),
      ...(row.subject === null ? {} : { subject: row.subject }),
      ...(row.installation_id === null ? {} : { installationId: row.installation_id }),
      ...(row.request_id === null ? {} : { requestId: row.request_id }),
      data
    })
  )

/** The conditions of a filter, as SQL fragments. */
const conditions = (sql: SqlClient.SqlClient, filter: EventFilter) => [
  ...(filter.connector === undefined ? [] : [sql`connector = ${filter.connector}`]),
  ...(filter.projectId === undefined ? [] : [sql`project_id = ${filter.projectId}`]),
  ...(filter.subject === undefined ? [] : [sql`subject = ${filter.subject}`]),
  ...(filter.kinds === undefined || filter.kinds.length === 0 ? [] : [sql.in("kind", filter.kinds)]),
  ...(filter.since === undefined ? [] : [sql`occurred_at >= ${filter.since}`]),
  ...(filter.until === undefined ? [] : [sql`occurred_at < ${filter.until}`]),
  ...(filter.beforeSeq === undefined ? [] : [sql`seq < ${filter.beforeSeq}`]),
  ...(filter.afterSeq === undefined ? [] : [sql`seq > ${filter.afterSeq}`])
]

/** The events of a filter: newest first, or oldest first after `afterSeq`. */
export const selectEvents = (sql: SqlClient.SqlClient, filter: EventFilter) => {
  const order = sql.literal(filter.afterSeq === undefined ? "DESC" : "ASC")
  return sql<EventRow>`SELECT * FROM events WHERE ${sql.and(conditions(sql, filter))}
    ORDER BY seq ${order} LIMIT ${filter.limit}`.pipe(
    Effect.flatMap(Effect.forEach(toEvent)),
    Effect.mapError(fail("list events"))
  )
}
