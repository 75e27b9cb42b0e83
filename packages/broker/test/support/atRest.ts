/**
 * What a broker's database holds at rest, read raw: for SQLite the bytes of the database file and its write-ahead
 * log as they are on disk, for Postgres every row of every table as text. Tests look there for secrets in plain text.
 */
import { existsSync, readFileSync } from "node:fs"
import { SqlClient } from "@effect/sql"
import { Effect } from "effect"
import { layerOf, type TestDatabase } from "./databases.js"

/** The tables of the database (the migrator's own included), by name. */
export const tableNames = Effect.flatMap(SqlClient.SqlClient, (sql) =>
  sql
    .onDialectOrElse({
      pg: () =>
        sql<{ readonly name: string }>`SELECT table_name AS name FROM information_schema.tables
          WHERE table_schema = current_schema() AND table_type = 'BASE TABLE' ORDER BY table_name`,
      orElse: () =>
        sql<{ readonly name: string }>`SELECT name FROM sqlite_master
          WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name`
    })
    .pipe(Effect.map((rows) => rows.map((row) => row.name)))
)

/** Every row of every table, with its table's name. */
export const everyRow = Effect.flatMap(SqlClient.SqlClient, (sql) =>
  Effect.flatMap(tableNames, (tables) =>
    Effect.forEach(tables, (table) =>
      Effect.map(sql<Record<string, unknown>>`SELECT * FROM ${sql(table)}`, (rows) =>
        rows.map((row) => ({ table, row }))
      )
    )
  ).pipe(Effect.map((rows) => rows.flat()))
)

/** Runs `effect` on the database, migrated. */
export const onDatabase = <A, E>(database: TestDatabase, effect: Effect.Effect<A, E, SqlClient.SqlClient>) =>
  Effect.runPromise(Effect.scoped(effect.pipe(Effect.provide(layerOf(database)))))

/**
 * The database as it is stored: SQLite's file and write-ahead log (read as latin1, so that any text in them shows),
 * or Postgres's tables, each row as Postgres prints it.
 */
export const storedText = async (database: TestDatabase): Promise<string> => {
  const file = database.file
  if (file !== undefined) {
    return [file, `${file}-wal`]
      .filter((path) => existsSync(path))
      .map((path) => readFileSync(path).toString("latin1"))
      .join("")
  }
  return onDatabase(
    database,
    Effect.flatMap(SqlClient.SqlClient, (sql) =>
      Effect.flatMap(tableNames, (tables) =>
        Effect.forEach(tables, (table) => sql<{ readonly text: string }>`SELECT t::text AS text FROM ${sql(table)} t`)
      )
    ).pipe(
      Effect.map((rows) =>
        rows
          .flat()
          .map((row) => row.text)
          .join("\n")
      )
    )
  )
}
