/**
 * The authorization requests repository: the `authorization_requests` table,
 * users' consents under way and the grants that wait for their user's
 * confirmation. A request's `state`, code verifier and parked grant are
 * sealed; `state` is found by its hash.
 *
 * @internal
 */
import { Clock, Effect, Option, type Redacted } from "effect"
import type { AuthorizationRequestStore } from "../../Store.js"
import { fail, firstRow, hashKey, newId, num, type Repository } from "./common.js"
import type { AuthorizationRequestRecord } from "./models.js"
import type { Sealer } from "./sealer.js"

/** A row of `authorization_requests`, as the code flow reads it. */
export interface AuthorizationRow {
  readonly id: string
  readonly state: string
  readonly verifier_hash: string
  readonly code_verifier: string
  readonly kind: string
  readonly connector_id: string
  readonly project_id: string
  readonly environment: string
  readonly installation_id: string
  readonly subject: string
  readonly request: string
  readonly return_url: string | null
  readonly prompt: string | null
  readonly tenant_hint: string | null
  readonly user_code: string | null
  readonly status: string
  readonly error: string | null
  readonly expires_at: number | string
  readonly created_at: number | string
}

/** A request row, its secrets opened. */
export const toAuthorizationRequest = (sealer: Sealer) => (row: AuthorizationRow) =>
  Effect.all({
    state: sealer.unseal(row.state, "authorization_requests/state", row.id),
    codeVerifier: sealer.unseal(row.code_verifier, "authorization_requests/code_verifier", row.id)
  }).pipe(
    Effect.map(
      ({ state, codeVerifier }): AuthorizationRequestRecord => ({
        id: row.id,
        state,
        verifierHash: row.verifier_hash,
        codeVerifier,
        kind: row.kind as AuthorizationRequestRecord["kind"],
        connectorId: row.connector_id,
        projectId: row.project_id,
        environment: row.environment,
        installationId: row.installation_id,
        subject: row.subject,
        request: row.request,
        returnUrl: row.return_url ?? undefined,
        prompt: row.prompt ?? undefined,
        ...(row.tenant_hint === null ? {} : { tenantHint: row.tenant_hint }),
        ...(row.user_code === null ? {} : { userCode: row.user_code }),
        status: row.status as AuthorizationRequestRecord["status"],
        error: row.error ?? undefined,
        expiresAt: num(row.expires_at),
        createdAt: num(row.created_at)
      })
    )
  )

/** Creates a pending request; exported for the device authorizations repository, which adds to it. */
export const createAuthorizationRequest =
  ({ sql, sealer }: Repository): AuthorizationRequestStore["createAuthorizationRequest"] =>
  (input) =>
    Effect.gen(function* () {
      const now = yield* Clock.currentTimeMillis
      // Requests a day past their expiry serve nothing any more, not even a status check.
      yield* sql`DELETE FROM authorization_requests WHERE expires_at < ${now - 86_400_000}`
      // An unconfirmed grant expires with its request.
      yield* sql`UPDATE authorization_requests SET sealed_grant = NULL, confirmation_hash = NULL
      WHERE status = 'awaiting_confirmation' AND expires_at <= ${now}`
      const id = newId("req")
      yield* sql`INSERT INTO authorization_requests ${sql.insert({
        id,
        state_hash: hashKey(input.state),
        state: yield* sealer.seal(input.state, "authorization_requests/state", id),
        verifier_hash: input.verifierHash,
        code_verifier: yield* sealer.seal(input.codeVerifier, "authorization_requests/code_verifier", id),
        kind: input.kind,
        connector_id: input.connectorId,
        project_id: input.projectId,
        environment: input.environment,
        installation_id: input.installationId,
        subject: input.subject,
        request: input.request,
        return_url: input.returnUrl ?? null,
        prompt: input.prompt ?? null,
        tenant_hint: input.tenantHint ?? null,
        status: "pending",
        expires_at: input.expiresAt,
        created_at: now
      })}`
      return { ...input, id, status: "pending", error: undefined, createdAt: now } satisfies AuthorizationRequestRecord
    }).pipe(Effect.mapError(fail("save an authorization request")))

const findAuthorizationRequest =
  ({ sql, sealer }: Repository): AuthorizationRequestStore["findAuthorizationRequest"] =>
  (by) =>
    ("id" in by
      ? sql<AuthorizationRow>`SELECT * FROM authorization_requests WHERE id = ${by.id}`
      : sql<AuthorizationRow>`SELECT * FROM authorization_requests WHERE state_hash = ${hashKey(by.state)}`
    ).pipe(
      Effect.flatMap(firstRow(toAuthorizationRequest(sealer))),
      Effect.mapError(fail("read an authorization request"))
    )

/** A pending request of the same subject and request that stays open beyond `validUntil`, to hand out again. */
const findPendingAuthorization =
  ({ sql, sealer }: Repository): AuthorizationRequestStore["findPendingAuthorization"] =>
  (key) =>
    sql<AuthorizationRow>`SELECT * FROM authorization_requests
    WHERE connector_id = ${key.connectorId} AND project_id = ${key.projectId} AND environment = ${key.environment}
      AND subject = ${key.subject} AND request = ${key.request} AND status = 'pending' AND return_url IS NULL
      AND user_code IS NULL
      AND expires_at > ${key.validUntil}
    ORDER BY expires_at DESC LIMIT 1`.pipe(
      Effect.flatMap(firstRow(toAuthorizationRequest(sealer))),
      Effect.mapError(fail("read an authorization request"))
    )

/**
 * How many requests of a project are still open at `now` (pending, being
 * completed, or awaiting confirmation), and when the first of them expires: what the cap on open
 * requests per project counts.
 */
const countOpenAuthorizations =
  ({ sql }: Repository): AuthorizationRequestStore["countOpenAuthorizations"] =>
  (projectId, now) =>
    sql<{ count: number | string; first_expiry: number | string | null }>`SELECT COUNT(*) AS count,
      MIN(expires_at) AS first_expiry FROM authorization_requests
    WHERE project_id = ${projectId} AND status IN ('pending', 'completing', 'awaiting_confirmation') AND expires_at > ${now}`.pipe(
      Effect.map((rows) => ({
        count: rows[0] === undefined ? 0 : num(rows[0].count),
        firstExpiry: rows[0]?.first_expiry == null ? now : num(rows[0].first_expiry)
      })),
      Effect.mapError(fail("count open authorization requests"))
    )

/**
 * Takes a pending, unexpired request for completion, once: of concurrent or
 * replayed callbacks with the same state, only one gets `true`.
 */
const claimAuthorizationRequest =
  ({ sql }: Repository): AuthorizationRequestStore["claimAuthorizationRequest"] =>
  (id, now) =>
    sql<{ id: string }>`UPDATE authorization_requests SET status = 'completing'
    WHERE id = ${id} AND status = 'pending' AND expires_at > ${now} RETURNING id`.pipe(
      Effect.map((rows) => rows.length === 1),
      Effect.mapError(fail("claim an authorization request"))
    )

const finishAuthorizationRequest =
  ({ sql }: Repository): AuthorizationRequestStore["finishAuthorizationRequest"] =>
  (id, outcome) =>
    Effect.gen(function* () {
      const now = yield* Clock.currentTimeMillis
      yield* sql`UPDATE authorization_requests SET ${sql.update({
        status: outcome.status,
        error: outcome.error ?? null,
        completed_at: now,
        // A grant that waited for confirmation is kept no longer than its request.
        sealed_grant: null,
        confirmation_hash: null,
        ...(outcome.installationId === undefined ? {} : { installation_id: outcome.installationId })
      })} WHERE id = ${id}`
    }).pipe(Effect.mapError(fail("finish an authorization request")))

/**
 * Parks a request being completed until the application confirms its user:
 * the grant the provider gave, sealed, and the hash of the one-time code
 * that confirms it.
 */
const awaitConfirmation =
  ({ sql, sealer }: Repository): AuthorizationRequestStore["awaitConfirmation"] =>
  (id, pending) =>
    Effect.gen(function* () {
      yield* sql`UPDATE authorization_requests SET ${sql.update({
        status: "awaiting_confirmation",
        sealed_grant: yield* sealer.seal(pending.grant, "authorization_requests/sealed_grant", id),
        confirmation_hash: pending.confirmationHash
      })} WHERE id = ${id} AND status = 'completing'`
    }).pipe(Effect.mapError(fail("park an authorization request")))

/**
 * Takes a request awaiting confirmation whose code hashes to
 * `confirmationHash`, once and before it expires, and gives its sealed
 * grant: of concurrent confirmations, one gets it.
 */
const claimConfirmation =
  ({ sql, sealer }: Repository): AuthorizationRequestStore["claimConfirmation"] =>
  (id, confirmationHash, now) =>
    Effect.gen(function* () {
      const rows = yield* sql<{ sealed_grant: string | null }>`UPDATE authorization_requests SET status = 'completing'
      WHERE id = ${id} AND status = 'awaiting_confirmation' AND confirmation_hash = ${confirmationHash}
        AND expires_at > ${now} RETURNING sealed_grant`
      const sealed = rows[0]?.sealed_grant
      if (sealed === undefined || sealed === null) return Option.none<Redacted.Redacted<string>>()
      return Option.some(yield* sealer.unseal(sealed, "authorization_requests/sealed_grant", id))
    }).pipe(Effect.mapError(fail("claim an authorization request's confirmation")))

/** The authorization requests repository over the database, sealing with `sealer`. */
export const makeAuthorizationRequests = (repository: Repository): AuthorizationRequestStore => ({
  createAuthorizationRequest: createAuthorizationRequest(repository),
  findAuthorizationRequest: findAuthorizationRequest(repository),
  findPendingAuthorization: findPendingAuthorization(repository),
  countOpenAuthorizations: countOpenAuthorizations(repository),
  claimAuthorizationRequest: claimAuthorizationRequest(repository),
  finishAuthorizationRequest: finishAuthorizationRequest(repository),
  awaitConfirmation: awaitConfirmation(repository),
  claimConfirmation: claimConfirmation(repository)
})
