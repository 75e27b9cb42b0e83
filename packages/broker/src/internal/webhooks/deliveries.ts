/**
 * The `webhook_deliveries` table, the webhooks' outbox: deliveries written
 * with their events, claimed with a lease, completed by the lease's owner.
 *
 * @internal
 */
import type { SqlClient } from "@effect/sql"
import { Effect, Schema } from "effect"
import type { DeliveryAttemptView, DeliveryView } from "../../AdminApi.js"
import { concerns, type EventInput } from "../events/models.js"
import { fail, newId, num, optionalNum } from "../store/common.js"
import { DELIVERY_ID_PREFIX, deliverable, MAX_LOGGED_ATTEMPTS, takes } from "./policy.js"
import { kindsOf } from "./table.js"

/** A `webhook_deliveries` row. */
export interface DeliveryRow {
  readonly id: string
  readonly webhook_id: string
  readonly event_id: string
  readonly event_kind: string
  readonly payload: string
  readonly status: string
  readonly attempts: number | string
  readonly next_attempt_at: number | string
  readonly lease_owner: string | null
  readonly lease_until: number | string | null
  readonly last_status: number | string | null
  readonly last_error: string | null
  readonly attempt_log: string
  readonly created_at: number | string
  readonly updated_at: number | string
  readonly delivered_at: number | string | null
}

/** An event as the outbox takes it: what `Events` writes. */
export interface OutboxEvent extends EventInput {
  readonly id: string
  readonly occurredAt: number
  readonly requestId?: string | undefined
}

const AttemptLog = Schema.parseJson(
  Schema.Array(
    Schema.Struct({
      at: Schema.Number,
      status: Schema.optional(Schema.Number),
      error: Schema.optional(Schema.String),
      durationMs: Schema.Number
    })
  )
)
const decodeLog = Schema.decodeUnknownSync(AttemptLog)
const encodeLog = Schema.encodeSync(AttemptLog)

/** The body a webhook receives for an event, as Standard Webhooks shapes it: `type`, `timestamp`, `data`. */
export const payloadOf = (event: OutboxEvent): string =>
  JSON.stringify({
    type: event.kind,
    timestamp: new Date(event.occurredAt).toISOString(),
    data: {
      id: event.id,
      ...concerns(event),
      details: event.data ?? {}
    }
  })

/** Rows per insert statement: far under SQLite's limit on parameters. */
const INSERT_CHUNK = 200

/**
 * Writes a pending delivery for every enabled webhook of each event's
 * project that takes its kind; runs in the transaction that writes the
 * events, so an event is never written without its deliveries. Says how
 * many it wrote.
 */
export const enqueueDeliveries = (sql: SqlClient.SqlClient, events: ReadonlyArray<OutboxEvent>) =>
  Effect.gen(function* () {
    const scoped = events.filter(deliverable)
    const projects = [...new Set(scoped.map((event) => event.projectId))]
    if (projects.length === 0) return 0
    const hooks = yield* sql<{ id: string; project_id: string; kinds: string }>`SELECT id, project_id, kinds
      FROM webhooks WHERE enabled = 1 AND ${sql.in("project_id", projects)}`
    const rows = scoped.flatMap((event) =>
      hooks
        .filter((hook) => hook.project_id === event.projectId && takes(kindsOf(hook), event.kind))
        .map((hook) => ({
          id: newId(DELIVERY_ID_PREFIX),
          webhook_id: hook.id,
          event_id: event.id,
          event_kind: event.kind,
          payload: payloadOf(event),
          status: "pending",
          attempts: 0,
          next_attempt_at: event.occurredAt,
          attempt_log: "[]",
          created_at: event.occurredAt,
          updated_at: event.occurredAt
        }))
    )
    for (let start = 0; start < rows.length; start += INSERT_CHUNK) {
      yield* sql`INSERT INTO webhook_deliveries ${sql.insert(rows.slice(start, start + INSERT_CHUNK))}`
    }
    return rows.length
  })

/** A delivery claimed for sending: what to send, and what the outcome is recorded against. */
export interface ClaimedDelivery {
  readonly id: string
  readonly webhookId: string
  readonly eventId: string
  readonly payload: string
  readonly attempts: number
  readonly log: ReadonlyArray<DeliveryAttemptView>
}

/**
 * Claims up to `limit` due deliveries of enabled webhooks for `owner` until
 * `leaseUntil`, in one statement (its own short transaction, committed before
 * anything is sent). On Postgres, `FOR UPDATE SKIP LOCKED` lets replicas
 * claim at once without waiting on each other or taking the same row; SQLite
 * has one writer at a time.
 */
export const claimDue = (
  sql: SqlClient.SqlClient,
  options: { readonly owner: string; readonly now: number; readonly leaseUntil: number; readonly limit: number }
) => {
  const { owner, now, leaseUntil, limit } = options
  const due = sql`status = 'pending' AND next_attempt_at <= ${now} AND (lease_until IS NULL OR lease_until < ${now})`
  const lock = sql.literal(sql.onDialectOrElse({ pg: () => "FOR UPDATE SKIP LOCKED", orElse: () => "" }))
  return sql<DeliveryRow>`UPDATE webhook_deliveries SET lease_owner = ${owner}, lease_until = ${leaseUntil}
    WHERE ${due} AND id IN (
      SELECT id FROM webhook_deliveries WHERE ${due}
        AND webhook_id IN (SELECT id FROM webhooks WHERE enabled = 1)
      ORDER BY next_attempt_at LIMIT ${limit} ${lock}
    ) RETURNING *`.pipe(
    Effect.map((rows) =>
      rows.map(
        (row): ClaimedDelivery => ({
          id: row.id,
          webhookId: row.webhook_id,
          eventId: row.event_id,
          payload: row.payload,
          attempts: num(row.attempts),
          log: decodeLog(row.attempt_log)
        })
      )
    ),
    Effect.mapError(fail("claim webhook deliveries"))
  )
}

/** The outcome of one attempt, as the dispatcher records it. */
export interface AttemptOutcome {
  readonly attempt: DeliveryAttemptView
  /** `delivered`, `failed` (no more attempts), or `pending` with when to try again. */
  readonly status: "delivered" | "failed" | "pending"
  readonly nextAttemptAt: number
}

/**
 * Records an attempt's outcome and releases the lease, if `owner` still holds
 * it (a lease that expired and was claimed by another replica is theirs now);
 * says whether it was recorded.
 */
export const completeAttempt = (
  sql: SqlClient.SqlClient,
  delivery: ClaimedDelivery,
  owner: string,
  outcome: AttemptOutcome
) => {
  const log = encodeLog([...delivery.log, outcome.attempt].slice(-MAX_LOGGED_ATTEMPTS))
  const at = outcome.attempt.at
  return sql<{ id: string }>`UPDATE webhook_deliveries SET status = ${outcome.status},
    attempts = ${delivery.attempts + 1}, next_attempt_at = ${outcome.nextAttemptAt},
    lease_owner = NULL, lease_until = NULL, last_status = ${outcome.attempt.status ?? null},
    last_error = ${outcome.attempt.error ?? null}, attempt_log = ${log}, updated_at = ${at},
    delivered_at = ${outcome.status === "delivered" ? at : null}
    WHERE id = ${delivery.id} AND lease_owner = ${owner} RETURNING id`.pipe(
    Effect.map((rows) => rows.length > 0),
    Effect.mapError(fail("record webhook delivery"))
  )
}

/** A row as the admin API shows it, with its attempts. */
export const toDeliveryView = (row: DeliveryRow): DeliveryView => {
  const lastStatus = optionalNum(row.last_status)
  const deliveredAt = optionalNum(row.delivered_at)
  return {
    id: row.id,
    webhookId: row.webhook_id,
    eventId: row.event_id,
    eventKind: row.event_kind,
    status: row.status === "delivered" || row.status === "failed" ? row.status : "pending",
    attempts: num(row.attempts),
    ...(row.status === "pending" ? { nextAttemptAt: num(row.next_attempt_at) } : {}),
    ...(lastStatus === undefined ? {} : { lastStatus }),
    ...(row.last_error === null ? {} : { lastError: row.last_error }),
    createdAt: num(row.created_at),
    updatedAt: num(row.updated_at),
    ...(deliveredAt === undefined ? {} : { deliveredAt }),
    attemptLog: decodeLog(row.attempt_log)
  }
}

/** The deliveries of a webhook, newest first, at most `limit`, of one status when given. */
export const selectDeliveries = (
  sql: SqlClient.SqlClient,
  webhookId: string,
  options: { readonly limit: number; readonly status?: string | undefined }
) =>
  sql<DeliveryRow>`SELECT * FROM webhook_deliveries WHERE ${sql.and([
    sql`webhook_id = ${webhookId}`,
    ...(options.status === undefined ? [] : [sql`status = ${options.status}`])
  ])}
    ORDER BY created_at DESC, id DESC LIMIT ${options.limit}`.pipe(
    Effect.map((rows) => rows.map(toDeliveryView)),
    Effect.mapError(fail("list webhook deliveries"))
  )

/** One delivery, if it exists. */
export const selectDelivery = (sql: SqlClient.SqlClient, id: string) =>
  sql<DeliveryRow>`SELECT * FROM webhook_deliveries WHERE id = ${id}`.pipe(
    Effect.map((rows) => rows[0]),
    Effect.mapError(fail("get webhook delivery"))
  )

/**
 * Makes a delivery due now with a fresh schedule (its attempts counted from
 * zero, its log kept), unless it is being sent; says whether it did.
 */
export const retryDelivery = (sql: SqlClient.SqlClient, id: string, now: number) =>
  sql<{ id: string }>`UPDATE webhook_deliveries SET status = 'pending', attempts = 0, next_attempt_at = ${now},
    delivered_at = NULL, updated_at = ${now}
    WHERE id = ${id} AND (lease_until IS NULL OR lease_until < ${now}) RETURNING id`.pipe(
    Effect.map((rows) => rows.length > 0),
    Effect.mapError(fail("retry webhook delivery"))
  )
