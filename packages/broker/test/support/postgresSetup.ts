/**
 * Vitest's global setup: asks the test Postgres (`CONNECT_TEST_DATABASE_URL`)
 * once whether it answers, and tells the test files (`CONNECT_TEST_POSTGRES_AVAILABLE`).
 * Without it the Postgres cases are skipped, said in one line; CI sets
 * `CONNECT_TEST_REQUIRE_POSTGRES=1`, and then a missing Postgres fails the run.
 */
import { SqlClient } from "@effect/sql"
import { PgClient } from "@effect/sql-pg"
import { Effect, Redacted } from "effect"
import { POSTGRES_AVAILABLE, POSTGRES_URL } from "./postgresUrl.js"

/** The URL without its password, to print. */
const shown = (url: string) => {
  const parsed = new URL(url)
  if (parsed.password !== "") parsed.password = "***"
  return parsed.toString()
}

const answers = (url: string) =>
  Effect.runPromise(
    Effect.flatMap(SqlClient.SqlClient, (sql) => sql`SELECT 1`).pipe(
      Effect.provide(PgClient.layer({ url: Redacted.make(url), maxConnections: 1 })),
      Effect.timeout("5 seconds"),
      Effect.as(true),
      Effect.catchAllCause(() => Effect.succeed(false))
    )
  )

export default async function setup(): Promise<void> {
  const available = await answers(POSTGRES_URL)
  if (!available) {
    const line = `Postgres does not answer at ${shown(POSTGRES_URL)}`
    if (process.env.CONNECT_TEST_REQUIRE_POSTGRES === "1")
      throw new Error(`${line}, and CONNECT_TEST_REQUIRE_POSTGRES=1`)
    console.warn(
      `${line}: the Postgres cases are skipped. To run them, start one or set CONNECT_TEST_DATABASE_URL=postgres://user@host:port/database`
    )
  }
  // The test files' workers start after this, with this environment.
  process.env[POSTGRES_AVAILABLE] = available ? "1" : "0"
}
