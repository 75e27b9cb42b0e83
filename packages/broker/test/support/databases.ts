import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { SqlClient } from "@effect/sql"
import { PgClient } from "@effect/sql-pg"
import { Effect, Layer, Redacted } from "effect"
import * as Database from "../../src/Database.js"
import { POSTGRES_AVAILABLE, POSTGRES_URL } from "./postgresUrl.js"

export { POSTGRES_URL }

/**
 * Whether the test Postgres answered at the start of the run (see
 * `postgresSetup.ts`); suites that need it are skipped without it. Outside a
 * test run (the `npm start` walkthrough, on SQLite) there is none. Read from
 * the environment, not from vitest: this module is loaded outside vitest too.
 */
export const postgresAvailable: boolean = process.env[POSTGRES_AVAILABLE] === "1"

/** A database for one suite: its location, and how to remove it afterwards. */
export interface TestDatabase {
  readonly name: "sqlite" | "postgres"
  readonly location: Database.DatabaseLocation
  /** The SQLite file, for tests that read it raw. */
  readonly file?: string
  readonly drop: () => Promise<void>
}

const admin = (statement: string) =>
  Effect.runPromise(
    Effect.flatMap(SqlClient.SqlClient, (sql) => sql.unsafe(statement)).pipe(
      Effect.provide(PgClient.layer({ url: Redacted.make(POSTGRES_URL), maxConnections: 1 }))
    )
  )

/** A fresh SQLite file in a temporary directory. */
export const sqlite = (): TestDatabase => {
  const directory = mkdtempSync(join(tmpdir(), "connect-test-"))
  const file = join(directory, "data", "broker.db")
  return {
    name: "sqlite",
    location: { _tag: "Sqlite", filename: file },
    file,
    drop: async () => rmSync(directory, { recursive: true, force: true })
  }
}

/** A fresh Postgres database on the test server. */
export const postgres = async (): Promise<TestDatabase> => {
  const name = `connect_test_${process.pid}_${Math.random().toString(36).slice(2, 10)}`
  await admin(`CREATE DATABASE ${name}`)
  const url = new URL(POSTGRES_URL)
  url.pathname = `/${name}`
  return {
    name: "postgres",
    location: { _tag: "Postgres", url: Redacted.make(url.toString()) },
    drop: () => admin(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`).then(() => undefined)
  }
}

/** Both backends, for suites that must hold on each (SQLite alone when Postgres does not answer). */
export const backends: ReadonlyArray<{ readonly name: string; readonly make: () => Promise<TestDatabase> }> = [
  { name: "sqlite", make: async () => sqlite() },
  ...(postgresAvailable ? [{ name: "postgres", make: postgres }] : [])
]

/** The database as a migrated `SqlClient` layer. */
export const layerOf = (database: TestDatabase) => Database.layer(database.location).pipe(Layer.orDie)
