/**
 * The `webhooks` table: a project's webhooks, their secrets sealed by the
 * `Cipher` with the row's identity.
 *
 * @internal
 */
import type { SqlClient } from "@effect/sql"
import { Effect, Redacted, Schema } from "effect"
import type { WebhookView } from "../../AdminApi.js"
import { fail, num } from "../store/common.js"
import type { Sealer } from "../store/sealer.js"

/** A `webhooks` row. */
export interface WebhookRow {
  readonly id: string
  readonly project_id: string
  readonly url: string
  readonly secret: string
  readonly kinds: string
  readonly enabled: number | boolean
  readonly disabled_reason: string | null
  readonly source: string
  readonly created_at: number | string
}

/** A webhook to write: its secret in the clear, sealed on the way in. */
export interface WebhookInput {
  readonly id: string
  readonly projectId: string
  readonly url: string
  readonly secret: Redacted.Redacted<string>
  readonly kinds: ReadonlyArray<string>
  readonly source: "config" | "api"
}

const Kinds = Schema.parseJson(Schema.Array(Schema.String))
const decodeKinds = Schema.decodeUnknownSync(Kinds)
export const encodeKinds = Schema.encodeSync(Kinds)

/** The kinds filter of a row (every kind when empty). */
export const kindsOf = (row: { readonly kinds: string }): ReadonlyArray<string> => decodeKinds(row.kinds)

/** A row as the admin API shows it: never its secret. */
export const toView = (row: WebhookRow): WebhookView => ({
  id: row.id,
  project: row.project_id,
  url: row.url,
  events: kindsOf(row),
  enabled: Boolean(num(Number(row.enabled))),
  ...(row.disabled_reason === null ? {} : { disabledReason: row.disabled_reason }),
  source: row.source,
  createdAt: num(row.created_at)
})

/** Inserts a webhook, or replaces the one with its id (the configuration file, applied again, re-enables it). */
export const upsertWebhook = (sql: SqlClient.SqlClient, sealer: Sealer, input: WebhookInput, now: number) =>
  Effect.gen(function* () {
    const secret = yield* sealer.seal(input.secret, "webhooks/secret", input.id)
    const kinds = encodeKinds(input.kinds)
    yield* sql`INSERT INTO webhooks ${sql.insert({
      id: input.id,
      project_id: input.projectId,
      url: input.url,
      secret,
      kinds,
      enabled: 1,
      disabled_reason: null,
      source: input.source,
      created_at: now,
      updated_at: now
    })} ON CONFLICT (id) DO UPDATE SET url = ${input.url}, secret = ${secret}, kinds = ${kinds},
      enabled = 1, disabled_reason = NULL, source = ${input.source}, updated_at = ${now}`
  }).pipe(Effect.mapError(fail("put webhook")))

/** The webhook `id`, if it exists. */
export const selectWebhook = (sql: SqlClient.SqlClient, id: string) =>
  sql<WebhookRow>`SELECT * FROM webhooks WHERE id = ${id}`.pipe(
    Effect.map((rows) => rows[0]),
    Effect.mapError(fail("get webhook"))
  )

/** The webhooks of a project, oldest first. */
export const selectProjectWebhooks = (sql: SqlClient.SqlClient, projectId: string) =>
  sql<WebhookRow>`SELECT * FROM webhooks WHERE project_id = ${projectId} ORDER BY created_at, id`.pipe(
    Effect.mapError(fail("list webhooks"))
  )

/** Deletes a project's webhook (its deliveries with it); says whether it existed. */
export const deleteWebhook = (sql: SqlClient.SqlClient, projectId: string, id: string) =>
  sql<{ id: string }>`DELETE FROM webhooks WHERE id = ${id} AND project_id = ${projectId} RETURNING id`.pipe(
    Effect.map((rows) => rows.length > 0),
    Effect.mapError(fail("remove webhook"))
  )

/** Disables a webhook, saying why (its receiver answered 410 Gone). */
export const disableWebhook = (sql: SqlClient.SqlClient, id: string, reason: string, now: number) =>
  sql`UPDATE webhooks SET enabled = 0, disabled_reason = ${reason}, updated_at = ${now} WHERE id = ${id}`.pipe(
    Effect.asVoid,
    Effect.mapError(fail("disable webhook"))
  )

/** Whether the project exists. */
export const projectExists = (sql: SqlClient.SqlClient, projectId: string) =>
  sql<{ id: string }>`SELECT id FROM projects WHERE id = ${projectId}`.pipe(
    Effect.map((rows) => rows.length > 0),
    Effect.mapError(fail("get project"))
  )

/** The secret of a row, opened. */
export const secretOf = (sealer: Sealer, row: WebhookRow) =>
  sealer.unseal(row.secret, "webhooks/secret", row.id).pipe(Effect.map(Redacted.value))
