/**
 * What every repository of the store shares: identifiers, key hashes, column
 * values as the two databases return them, and the store's error.
 *
 * @internal
 */
import { createHash, randomBytes } from "node:crypto"
import type { SqlClient } from "@effect/sql"
import { Effect, Option, Redacted } from "effect"
import { StoreError } from "./models.js"
import type { Sealer } from "./sealer.js"

/** A new identifier with a prefix, as `stk_…` for tokens. */
export const newId = (prefix: string): string => `${prefix}_${randomBytes(12).toString("base64url")}`

/** The SHA-256 of a caller key, hex. */
export const hashKey = (key: Redacted.Redacted<string>): string =>
  createHash("sha256").update(Redacted.value(key)).digest("hex")

/** The first row of a result decoded, or none. */
export const firstRow =
  <Row, A, E>(decode: (row: Row) => Effect.Effect<A, E>) =>
  (rows: ReadonlyArray<Row>): Effect.Effect<Option.Option<A>, E> =>
    rows[0] === undefined ? Effect.succeed(Option.none()) : Effect.asSome(decode(rows[0]))

// Postgres returns BIGINT as a string; SQLite as a number.
/** A number column's value. */
export const num = (value: number | string): number => (typeof value === "number" ? value : Number(value))

/** A nullable number column's value. */
export const optionalNum = (value: number | string | null | undefined): number | undefined =>
  value === null || value === undefined ? undefined : num(value)

/** The `StoreError` of `operation`, from whatever failed under it (a `SqlError`, a `DecryptionFailed`, …). */
export const fail =
  (operation: string) =>
  (error: unknown): StoreError =>
    new StoreError({
      operation,
      reason: typeof error === "object" && error !== null && "message" in error ? String(error.message) : String(error)
    })

/** Runs `effect` in a transaction (nested ones become savepoints). */
export const transaction =
  (sql: SqlClient.SqlClient) =>
  <A, E, R>(effect: Effect.Effect<A, E, R>) =>
    sql.withTransaction(effect).pipe(Effect.catchTag("SqlError", (error) => Effect.fail(fail("commit")(error))))

/** What a repository works with: the database and the row sealer. */
export interface Repository {
  readonly sql: SqlClient.SqlClient
  readonly sealer: Sealer
}
