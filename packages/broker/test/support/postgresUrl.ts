/**
 * The Postgres server the tests use: `CONNECT_TEST_DATABASE_URL`, by default
 * the local server's `test` database. Each test run creates databases of its
 * own there and drops them afterwards.
 */
export const POSTGRES_URL = process.env.CONNECT_TEST_DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/test"

/** The variable the global setup sets to `1` when that Postgres answered, before the test files are loaded. */
export const POSTGRES_AVAILABLE = "CONNECT_TEST_POSTGRES_AVAILABLE"
