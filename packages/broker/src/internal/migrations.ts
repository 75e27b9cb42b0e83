import { SqlClient } from "@effect/sql"
import type { SqlError } from "@effect/sql/SqlError"
import { Effect } from "effect"

/** The statements of a migration, run in order. */
type Statements = ReadonlyArray<Effect.Effect<unknown, SqlError>>

/** A migration: its statements, in order, on the broker's database. */
const migration = (statements: (sql: SqlClient.SqlClient) => Statements) =>
  Effect.flatMap(SqlClient.SqlClient, (sql) => Effect.all(statements(sql), { discard: true }))

// Portable DDL: the same statements run on SQLite and Postgres. Times are
// milliseconds since the epoch (BIGINT); JSON is kept as TEXT; sealed secrets
// are `v1.<nonce>.<ciphertext>` strings from the Cipher.
const initial = (sql: SqlClient.SqlClient): Statements => [
  sql`CREATE TABLE connectors (
      id TEXT PRIMARY KEY,
      uid TEXT NOT NULL UNIQUE,
      name TEXT NOT NULL,
      type TEXT NOT NULL,
      service TEXT NOT NULL,
      client_id TEXT NOT NULL,
      client_secret TEXT NOT NULL,
      settings TEXT NOT NULL,
      created_at BIGINT NOT NULL,
      updated_at BIGINT NOT NULL
    )`,
  sql`CREATE TABLE installations (
      connector_id TEXT NOT NULL REFERENCES connectors (id) ON DELETE CASCADE,
      id TEXT NOT NULL,
      tenant_id TEXT,
      is_default INTEGER NOT NULL DEFAULT 0,
      token_endpoint TEXT,
      created_at BIGINT NOT NULL,
      PRIMARY KEY (connector_id, id)
    )`,
  sql`CREATE TABLE projects (
      id TEXT PRIMARY KEY,
      name TEXT NOT NULL,
      settings TEXT NOT NULL,
      created_at BIGINT NOT NULL
    )`,
  sql`CREATE TABLE project_keys (
      key_hash TEXT PRIMARY KEY,
      project_id TEXT NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
      environment TEXT NOT NULL,
      created_at BIGINT NOT NULL
    )`,
  sql`CREATE TABLE links (
      connector_id TEXT NOT NULL REFERENCES connectors (id) ON DELETE CASCADE,
      project_id TEXT NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
      environments TEXT NOT NULL,
      PRIMARY KEY (connector_id, project_id)
    )`,
  sql`CREATE TABLE grants (
      id TEXT PRIMARY KEY,
      connector_id TEXT NOT NULL REFERENCES connectors (id) ON DELETE CASCADE,
      installation_id TEXT NOT NULL,
      subject TEXT NOT NULL,
      refresh_token TEXT,
      refresh_expires_at BIGINT,
      scope TEXT,
      status TEXT NOT NULL,
      version INTEGER NOT NULL,
      created_at BIGINT NOT NULL,
      updated_at BIGINT NOT NULL,
      UNIQUE (connector_id, installation_id, subject)
    )`,
  sql`CREATE TABLE issued_tokens (
      id TEXT PRIMARY KEY,
      connector_id TEXT NOT NULL REFERENCES connectors (id) ON DELETE CASCADE,
      project_id TEXT NOT NULL,
      environment TEXT NOT NULL,
      subject TEXT NOT NULL,
      installation_id TEXT NOT NULL,
      request_key TEXT NOT NULL,
      grant_id TEXT,
      access_token TEXT NOT NULL,
      expires_at BIGINT NOT NULL,
      status TEXT NOT NULL,
      created_at BIGINT NOT NULL,
      revoked_at BIGINT
    )`,
  sql`CREATE INDEX issued_tokens_reuse ON issued_tokens (connector_id, project_id, environment, request_key, status)`,
  sql`CREATE INDEX issued_tokens_subject ON issued_tokens (connector_id, subject, installation_id)`
]

// Authorization requests: a user's consent under way. `state` and the PKCE
// verifier are secrets, sealed; `state_hash` finds the request when the
// provider returns; `verifier_hash` checks the caller that asks for its status.
const authorizationRequests = (sql: SqlClient.SqlClient): Statements => [
  sql`CREATE TABLE authorization_requests (
      id TEXT PRIMARY KEY,
      state_hash TEXT NOT NULL UNIQUE,
      state TEXT NOT NULL,
      verifier_hash TEXT NOT NULL,
      code_verifier TEXT NOT NULL,
      kind TEXT NOT NULL,
      connector_id TEXT NOT NULL REFERENCES connectors (id) ON DELETE CASCADE,
      project_id TEXT NOT NULL,
      environment TEXT NOT NULL,
      installation_id TEXT NOT NULL,
      subject TEXT NOT NULL,
      request TEXT NOT NULL,
      return_url TEXT,
      prompt TEXT,
      status TEXT NOT NULL,
      error TEXT,
      expires_at BIGINT NOT NULL,
      created_at BIGINT NOT NULL,
      completed_at BIGINT
    )`,
  sql`CREATE INDEX authorization_requests_subject ON authorization_requests (connector_id, project_id, subject, status)`
]

// Installations made through the install flow, next to those the config file
// declares (`source`); an installation's own grant may hold an access token
// with no refresh token (a Slack bot token, say); an install request may name
// the tenant it is for.
const installations = (sql: SqlClient.SqlClient): Statements => [
  sql`ALTER TABLE installations ADD COLUMN source TEXT NOT NULL DEFAULT 'config'`,
  sql`ALTER TABLE installations ADD COLUMN updated_at BIGINT`,
  sql`ALTER TABLE grants ADD COLUMN access_token TEXT`,
  sql`ALTER TABLE grants ADD COLUMN access_expires_at BIGINT`,
  sql`ALTER TABLE authorization_requests ADD COLUMN tenant_hint TEXT`
]

// Device authorizations (RFC 8628): the device code is a secret, sealed like
// `state`; the user code and verification URL are what the caller was given;
// the broker polls every `poll_interval_ms`, at the earliest at `next_poll_at`
// (claimed atomically, so one poll runs at a time across replicas).
const deviceAuthorization = (sql: SqlClient.SqlClient): Statements => [
  sql`ALTER TABLE authorization_requests ADD COLUMN device_code TEXT`,
  sql`ALTER TABLE authorization_requests ADD COLUMN user_code TEXT`,
  sql`ALTER TABLE authorization_requests ADD COLUMN verification_url TEXT`,
  sql`ALTER TABLE authorization_requests ADD COLUMN poll_interval_ms BIGINT`,
  sql`ALTER TABLE authorization_requests ADD COLUMN next_poll_at BIGINT`
]

// The refresh journal: a lease on a grant row while one broker refreshes it
// (the provider is called outside any transaction), the attempt under way
// (recorded before the refresh token is sent, cleared once its outcome is
// known), and why a grant was lost. `token_leases` does the same for tokens
// that need no stored grant (client credentials), by request.
const refreshJournal = (sql: SqlClient.SqlClient): Statements => [
  sql`ALTER TABLE grants ADD COLUMN lease_owner TEXT`,
  sql`ALTER TABLE grants ADD COLUMN lease_expires_at BIGINT`,
  sql`ALTER TABLE grants ADD COLUMN attempt_started_at BIGINT`,
  sql`ALTER TABLE grants ADD COLUMN lost_reason TEXT`,
  sql`CREATE INDEX grants_attempt ON grants (attempt_started_at)`,
  sql`CREATE TABLE token_leases (
    lease_key TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    expires_at BIGINT NOT NULL
  )`
]

// Hardened authorization flows: the cap on open requests per project counts
// them by project; a grant that waits for the application to confirm its user
// is kept sealed in its request, with the hash of the one-time code that
// confirms it.
const authorizationHardening = (sql: SqlClient.SqlClient): Statements => [
  sql`CREATE INDEX authorization_requests_project ON authorization_requests (project_id, status, expires_at)`,
  sql`ALTER TABLE authorization_requests ADD COLUMN sealed_grant TEXT`,
  sql`ALTER TABLE authorization_requests ADD COLUMN confirmation_hash TEXT`
]

// The rate limit shared by the replicas on Postgres: one token bucket per key
// (a project id), its level in units of 1 / 60 000 of a request as of
// `updated_at`, and whether the last request was allowed (read back by the one
// statement that takes a request). A bucket untouched for a minute is full
// again, the same as no row: housekeeping deletes those by `updated_at`.
// On Postgres the table is UNLOGGED: a take then commits without waiting for
// the write-ahead log to reach the disk (it is on the hot path of every token
// request), and what a crash loses is buckets, which start full again.
const sharedRateLimit = (sql: SqlClient.SqlClient): Statements => [
  sql`CREATE ${sql.literal(sql.onDialectOrElse({ pg: () => "UNLOGGED TABLE", orElse: () => "TABLE" }))} rate_limits (
    key TEXT PRIMARY KEY,
    units BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    allowed INTEGER NOT NULL
  )`,
  sql`CREATE INDEX rate_limits_updated_at ON rate_limits (updated_at)`
]

// The event history: `seq` orders events as they were written; the filters
// of the admin API each have an index that ends in `seq`, so a page is an
// index range. Rows hold no secret (see `Events`).
const events = (sql: SqlClient.SqlClient): Statements => [
  sql`CREATE TABLE events (
    seq ${sql.literal(sql.onDialectOrElse({ pg: () => "BIGSERIAL PRIMARY KEY", orElse: () => "INTEGER PRIMARY KEY AUTOINCREMENT" }))},
    id TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL,
    occurred_at BIGINT NOT NULL,
    connector TEXT,
    project_id TEXT,
    environment TEXT,
    subject TEXT,
    installation_id TEXT,
    request_id TEXT,
    data TEXT NOT NULL
  )`,
  sql`CREATE INDEX events_occurred_at ON events (occurred_at)`,
  sql`CREATE INDEX events_connector ON events (connector, seq)`,
  sql`CREATE INDEX events_project ON events (project_id, seq)`,
  sql`CREATE INDEX events_subject ON events (subject, seq)`,
  sql`CREATE INDEX events_kind ON events (kind, seq)`
]

// Webhooks and their outbox. A delivery is written in the transaction of its
// event's batch; the dispatcher claims due ones with a lease (`lease_owner`,
// `lease_until`) before it sends, and records the outcome after. `payload` is
// the body as first signed, so every attempt sends the same bytes; `attempt_log`
// is a JSON array of the latest attempts (bounded, see the webhooks' policy).
const webhooks = (sql: SqlClient.SqlClient): Statements => [
  sql`CREATE TABLE webhooks (
    id TEXT PRIMARY KEY,
    project_id TEXT NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    url TEXT NOT NULL,
    secret TEXT NOT NULL,
    kinds TEXT NOT NULL,
    enabled INTEGER NOT NULL,
    disabled_reason TEXT,
    source TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
  )`,
  sql`CREATE INDEX webhooks_project ON webhooks (project_id)`,
  sql`CREATE TABLE webhook_deliveries (
    id TEXT PRIMARY KEY,
    webhook_id TEXT NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
    event_id TEXT NOT NULL,
    event_kind TEXT NOT NULL,
    payload TEXT NOT NULL,
    status TEXT NOT NULL,
    attempts INTEGER NOT NULL,
    next_attempt_at BIGINT NOT NULL,
    lease_owner TEXT,
    lease_until BIGINT,
    last_status INTEGER,
    last_error TEXT,
    attempt_log TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    delivered_at BIGINT,
    UNIQUE (webhook_id, event_id)
  )`,
  sql`CREATE INDEX webhook_deliveries_due ON webhook_deliveries (status, next_attempt_at)`,
  sql`CREATE INDEX webhook_deliveries_webhook ON webhook_deliveries (webhook_id, created_at)`
]

/** The migrations, by `<id>_<name>`, in the form `Migrator.fromRecord` takes. */
export const migrations = {
  "0001_initial": migration(initial),
  "0002_authorization_requests": migration(authorizationRequests),
  // A connector's private key for JWT bearer assertions, sealed like its client secret.
  "0003_connector_private_key": migration((sql) => [sql`ALTER TABLE connectors ADD COLUMN private_key TEXT`]),
  "0004_installations": migration(installations),
  "0005_device_authorization": migration(deviceAuthorization),
  // Housekeeping deletes issued tokens long expired: by expiry.
  "0006_issued_tokens_expiry": migration((sql) => [
    sql`CREATE INDEX issued_tokens_expiry ON issued_tokens (expires_at)`
  ]),
  "0007_refresh_journal": migration(refreshJournal),
  "0008_authorization_hardening": migration(authorizationHardening),
  "0009_shared_rate_limit": migration(sharedRateLimit),
  "0010_events": migration(events),
  "0011_webhooks": migration(webhooks),
  // The first characters of a caller key, so that an operator can tell keys apart (the key itself is only hashed).
  "0012_project_key_prefix": migration((sql) => [sql`ALTER TABLE project_keys ADD COLUMN prefix TEXT`])
}
