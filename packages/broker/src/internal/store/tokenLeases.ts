/**
 * The leases repository: the `token_leases` table (token requests that need
 * no stored grant), and freeing the leases a process that is gone left behind.
 *
 * @internal
 */
import { Effect } from "effect"
import type { LeaseStore } from "../../Store.js"
import { fail, type Repository } from "./common.js"

/** Whether one process serves the database (SQLite), so that any lease found at start is stale. */
const singleProcess = ({ sql }: Repository): LeaseStore["singleProcess"] =>
  sql.onDialectOrElse({ sqlite: () => true, orElse: () => false })

/** Frees the leases a process that is gone left behind (SQLite, at start: one process serves it). */
const releaseAllLeases = ({ sql }: Repository): LeaseStore["releaseAllLeases"] =>
  Effect.gen(function* () {
    yield* sql`UPDATE grants SET lease_owner = NULL, lease_expires_at = NULL, version = version + 1
    WHERE lease_owner IS NOT NULL`
    yield* sql`DELETE FROM token_leases`
  }).pipe(Effect.mapError(fail("release leases")))

/**
 * Takes the lease of `key` (a token request that needs no stored grant) until
 * `until`, unless another broker holds it past `now`. Says whether it did.
 */
const claimTokenLease =
  ({ sql }: Repository): LeaseStore["claimTokenLease"] =>
  (key, owner, now, until) =>
    sql<{ lease_key: string }>`INSERT INTO token_leases (lease_key, owner, expires_at)
    VALUES (${key}, ${owner}, ${until})
    ON CONFLICT (lease_key) DO UPDATE SET owner = ${owner}, expires_at = ${until}
      WHERE token_leases.expires_at <= ${now}
    RETURNING lease_key`.pipe(
      Effect.map((rows) => rows.length === 1),
      Effect.mapError(fail("claim a token lease"))
    )

/** Gives up the lease of `key`, if `owner` still holds it. */
const releaseTokenLease =
  ({ sql }: Repository): LeaseStore["releaseTokenLease"] =>
  (key, owner) =>
    sql`DELETE FROM token_leases WHERE lease_key = ${key} AND owner = ${owner}`.pipe(
      Effect.asVoid,
      Effect.mapError(fail("release a token lease"))
    )

/** The leases repository over the database. */
export const makeTokenLeases = (repository: Repository): LeaseStore => ({
  singleProcess: singleProcess(repository),
  releaseAllLeases: releaseAllLeases(repository),
  claimTokenLease: claimTokenLease(repository),
  releaseTokenLease: releaseTokenLease(repository)
})
