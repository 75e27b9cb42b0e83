/**
 * The grants repository: the `grants` table, with the refresh journal kept in
 * it (a lease, the attempt under way, a version for compare-and-set saves).
 * A grant's refresh token and access token are sealed.
 *
 * @internal
 */
import { Clock, Effect } from "effect"
import type { GrantStore } from "../../Store.js"
import { fail, firstRow, newId, num, optionalNum, type Repository } from "./common.js"
import { type Grant, type GrantSummary, StoreError } from "./models.js"
import type { Sealer } from "./sealer.js"

interface GrantRow {
  readonly id: string
  readonly connector_id: string
  readonly installation_id: string
  readonly subject: string
  readonly refresh_token: string | null
  readonly refresh_expires_at: number | string | null
  readonly access_token: string | null
  readonly access_expires_at: number | string | null
  readonly scope: string | null
  readonly status: string
  readonly version: number | string
  readonly lease_owner?: string | null
  readonly lease_expires_at?: number | string | null
  readonly attempt_started_at?: number | string | null
  readonly lost_reason?: string | null
}

/** A grant row, its secrets opened. */
const toGrant = (sealer: Sealer) => (row: GrantRow) =>
  Effect.all([
    sealer.unsealNullable(row.refresh_token, "grants/refresh_token", row.id),
    sealer.unsealNullable(row.access_token, "grants/access_token", row.id)
  ]).pipe(
    Effect.map(
      ([refreshToken, accessToken]): Grant => ({
        id: row.id,
        connectorId: row.connector_id,
        installationId: row.installation_id,
        subject: row.subject,
        refreshToken,
        refreshExpiresAt: row.refresh_expires_at === null ? undefined : num(row.refresh_expires_at),
        accessToken,
        accessExpiresAt: row.access_expires_at === null ? undefined : num(row.access_expires_at),
        scope: row.scope ?? undefined,
        status: row.status as Grant["status"],
        version: num(row.version),
        leaseOwner: row.lease_owner ?? undefined,
        leaseExpiresAt: optionalNum(row.lease_expires_at),
        attemptStartedAt: optionalNum(row.attempt_started_at),
        lostReason: row.lost_reason ?? undefined
      })
    )
  )

/** The grants made within an installation (`""`: the connector's default), or all of the connector's. */
const listGrants =
  ({ sql, sealer }: Repository): GrantStore["listGrants"] =>
  (connectorId, installationId) =>
    sql<GrantRow>`SELECT * FROM grants WHERE connector_id = ${connectorId}
    ${installationId === undefined ? sql`` : sql`AND installation_id = ${installationId}`} ORDER BY created_at`.pipe(
      Effect.flatMap((rows) => Effect.forEach(rows, toGrant(sealer))),
      Effect.mapError(fail("list grants"))
    )

/** How many grants there are of each status: one grouped count, for the broker's metrics. */
const countGrantsByStatus = ({ sql }: Repository): GrantStore["countGrantsByStatus"] =>
  sql<{
    readonly status: string
    readonly n: number | string
  }>`SELECT status, COUNT(*) AS n FROM grants GROUP BY status`.pipe(
    Effect.map((rows) => rows.map((row) => ({ status: row.status, count: num(row.n) }))),
    Effect.mapError(fail("count grants"))
  )

/** The columns of a grant an operator may see: never its tokens. */
interface GrantSummaryRow {
  readonly id: string
  readonly connector_id: string
  readonly installation_id: string
  readonly subject: string
  readonly status: string
  readonly lost_reason: string | null
  readonly scope: string | null
  readonly has_refresh_token: number | string | boolean
  readonly refresh_expires_at: number | string | null
  readonly access_expires_at: number | string | null
  readonly created_at: number | string
  readonly updated_at: number | string
}

const toGrantSummary = (row: GrantSummaryRow): GrantSummary => ({
  id: row.id,
  connectorId: row.connector_id,
  installationId: row.installation_id,
  subject: row.subject,
  status: row.status as Grant["status"],
  lostReason: row.lost_reason ?? undefined,
  scope: row.scope ?? undefined,
  hasRefreshToken: row.has_refresh_token === true || num(row.has_refresh_token as number | string) === 1,
  refreshExpiresAt: optionalNum(row.refresh_expires_at),
  accessExpiresAt: optionalNum(row.access_expires_at),
  createdAt: num(row.created_at),
  updatedAt: num(row.updated_at)
})

/**
 * The text of a `LIKE … ESCAPE '!'` that finds `search` anywhere: its own
 * `%`, `_` and `!` are matched as themselves.
 */
export const containsPattern = (search: string): string => `%${search.replace(/[!%_]/g, (c) => `!${c}`)}%`

/** A page of a connector's grants, newest first, without their tokens, and how many match. */
const listGrantPage =
  ({ sql }: Repository): GrantStore["listGrantPage"] =>
  (connectorId, query) =>
    Effect.gen(function* () {
      const matching =
        query.search === undefined || query.search === ""
          ? sql``
          : sql`AND subject LIKE ${containsPattern(query.search)} ESCAPE '!'`
      const rows = yield* sql<GrantSummaryRow>`SELECT id, connector_id, installation_id, subject, status, lost_reason,
        scope, CASE WHEN refresh_token IS NULL THEN 0 ELSE 1 END AS has_refresh_token, refresh_expires_at,
        access_expires_at, created_at, updated_at
      FROM grants WHERE connector_id = ${connectorId} ${matching}
      ORDER BY created_at DESC, id LIMIT ${query.limit} OFFSET ${query.offset}`
      const total = yield* sql<{
        readonly n: number | string
      }>`SELECT COUNT(*) AS n FROM grants WHERE connector_id = ${connectorId} ${matching}`
      return { grants: rows.map(toGrantSummary), total: num(total[0]?.n ?? 0) }
    }).pipe(Effect.mapError(fail("list a page of grants")))

/** How many grants each connector has of each status: one grouped count. */
const countGrantsByConnector = ({ sql }: Repository): GrantStore["countGrantsByConnector"] =>
  sql<{
    readonly connector_id: string
    readonly status: string
    readonly n: number | string
  }>`SELECT connector_id, status, COUNT(*) AS n FROM grants GROUP BY connector_id, status`.pipe(
    Effect.map((rows) => rows.map((row) => ({ connectorId: row.connector_id, status: row.status, count: num(row.n) }))),
    Effect.mapError(fail("count grants by connector"))
  )

const findGrant =
  ({ sql, sealer }: Repository): GrantStore["findGrant"] =>
  (connectorId, installationId, subject) =>
    sql<GrantRow>`SELECT * FROM grants WHERE connector_id = ${connectorId} AND installation_id = ${installationId} AND subject = ${subject}`.pipe(
      Effect.flatMap(firstRow(toGrant(sealer))),
      Effect.mapError(fail("read a grant"))
    )

const findGrantById =
  ({ sql, sealer }: Repository): GrantStore["findGrantById"] =>
  (grantId) =>
    sql<GrantRow>`SELECT * FROM grants WHERE id = ${grantId}`.pipe(
      Effect.flatMap(firstRow(toGrant(sealer))),
      Effect.mapError(fail("read a grant"))
    )

const putGrant =
  ({ sql, sealer }: Repository): GrantStore["putGrant"] =>
  (grant) =>
    Effect.gen(function* () {
      const now = yield* Clock.currentTimeMillis
      const existing = yield* sql<{
        id: string
        version: number | string
      }>`SELECT id, version FROM grants WHERE connector_id = ${grant.connectorId} AND installation_id = ${grant.installationId} AND subject = ${grant.subject}`
      const id = existing[0]?.id ?? newId("grt")
      const refreshToken =
        grant.refreshToken === undefined ? null : yield* sealer.seal(grant.refreshToken, "grants/refresh_token", id)
      const keep = refreshToken === null && grant.keepRefreshToken === true && existing[0] !== undefined
      const accessToken =
        grant.accessToken === undefined ? null : yield* sealer.seal(grant.accessToken, "grants/access_token", id)
      const fields = {
        ...(keep ? {} : { refresh_token: refreshToken, refresh_expires_at: grant.refreshExpiresAt ?? null }),
        access_token: accessToken,
        access_expires_at: accessToken === null ? null : (grant.accessExpiresAt ?? null),
        scope: grant.scope ?? null,
        status: "active",
        // A new consent starts afresh: a refresh under way with the old token may not save over it.
        ...(existing[0] === undefined ? {} : { attempt_started_at: null, lost_reason: null, lease_owner: null }),
        ...(existing[0] === undefined ? {} : { lease_expires_at: null }),
        updated_at: now
      }
      if (existing[0] === undefined) {
        yield* sql`INSERT INTO grants ${sql.insert({
          id,
          connector_id: grant.connectorId,
          installation_id: grant.installationId,
          subject: grant.subject,
          version: 1,
          created_at: now,
          ...fields
        })}`
      } else {
        yield* sql`UPDATE grants SET ${sql.update({ ...fields, version: num(existing[0].version) + 1 })} WHERE id = ${id}`
      }
      return id
    }).pipe(sql.withTransaction, Effect.mapError(fail("save a grant")))

/**
 * Runs `f` with the grant's row locked, giving it the grant as read under the
 * lock. On Postgres this is `SELECT … FOR UPDATE` in a transaction, so other
 * broker processes wait and then read what `f` wrote. SQLite serves one
 * process, whose own single flight keeps one writer per grant; holding its
 * only connection across a provider call would stall every other request, so
 * there `f` runs on a plain read and makes its writes atomic with
 * `transaction`.
 */
const withGrantLock =
  ({ sql, sealer }: Repository): GrantStore["withGrantLock"] =>
  <A, E, R>(grantId: string, f: (grant: Grant) => Effect.Effect<A, E, R>) => {
    const locked = (rows: ReadonlyArray<GrantRow>) =>
      Effect.gen(function* () {
        if (rows[0] === undefined) return yield* new StoreError({ operation: "lock a grant", reason: "no such grant" })
        const grant = yield* toGrant(sealer)(rows[0]).pipe(Effect.mapError(fail("lock a grant")))
        return yield* f(grant)
      })
    return sql
      .onDialectOrElse({
        pg: () =>
          sql.withTransaction(
            Effect.flatMap(sql<GrantRow>`SELECT * FROM grants WHERE id = ${grantId} FOR UPDATE`, locked)
          ),
        orElse: () => Effect.flatMap(sql<GrantRow>`SELECT * FROM grants WHERE id = ${grantId}`, locked)
      })
      .pipe(Effect.catchTag("SqlError", (error) => Effect.fail(fail("lock a grant")(error))))
  }

const updateGrant =
  ({ sql, sealer }: Repository): GrantStore["updateGrant"] =>
  (grantId, changes) =>
    Effect.gen(function* () {
      const now = yield* Clock.currentTimeMillis
      const refreshToken =
        changes.refreshToken === undefined
          ? undefined
          : yield* sealer.seal(changes.refreshToken, "grants/refresh_token", grantId)
      yield* sql`UPDATE grants SET ${sql.update({
        ...(refreshToken === undefined ? {} : { refresh_token: refreshToken }),
        ...(changes.refreshExpiresAt === undefined ? {} : { refresh_expires_at: changes.refreshExpiresAt }),
        ...(changes.status === undefined ? {} : { status: changes.status }),
        updated_at: now
      })}, version = version + 1 WHERE id = ${grantId}`
    }).pipe(Effect.mapError(fail("update a grant")))

/**
 * Takes the lease on a grant to refresh it, if it is still at `version`,
 * active, and not leased by another broker until after `now`; records the
 * attempt (the earliest unfinished one is kept). Says whether it did: the
 * grant's version is then `version + 1`.
 */
const claimGrantLease =
  ({ sql }: Repository): GrantStore["claimGrantLease"] =>
  (claim) =>
    sql<{ id: string }>`UPDATE grants SET lease_owner = ${claim.owner}, lease_expires_at = ${claim.until},
      attempt_started_at = COALESCE(attempt_started_at, ${claim.now}), version = version + 1,
      updated_at = ${claim.now}
    WHERE id = ${claim.grantId} AND version = ${claim.version} AND status = 'active'
      AND (lease_expires_at IS NULL OR lease_expires_at <= ${claim.now})
    RETURNING id`.pipe(
      Effect.map((rows) => rows.length === 1),
      Effect.mapError(fail("claim a grant"))
    )

/**
 * Ends a refresh under the lease taken at `version - 1`: saves what it gave
 * (a rotated refresh token, a new status) and releases the lease, if nobody
 * changed the grant since (compare-and-set on `version`). `keepAttempt` keeps
 * the attempt recorded when its outcome is unknown (no answer, a 5xx).
 */
const finishGrantRefresh =
  ({ sql, sealer }: Repository): GrantStore["finishGrantRefresh"] =>
  (finish) =>
    Effect.gen(function* () {
      const now = yield* Clock.currentTimeMillis
      const refreshToken =
        finish.refreshToken === undefined
          ? undefined
          : yield* sealer.seal(finish.refreshToken, "grants/refresh_token", finish.grantId)
      const rows = yield* sql<{ id: string }>`UPDATE grants SET ${sql.update({
        ...(refreshToken === undefined ? {} : { refresh_token: refreshToken }),
        ...(finish.refreshExpiresAt === undefined ? {} : { refresh_expires_at: finish.refreshExpiresAt }),
        ...(finish.status === undefined ? {} : { status: finish.status }),
        ...(finish.lostReason === undefined ? {} : { lost_reason: finish.lostReason }),
        ...(finish.keepAttempt ? {} : { attempt_started_at: null }),
        ...(finish.keepLease === true ? {} : { lease_owner: null, lease_expires_at: null }),
        updated_at: now
      })}, version = version + 1 WHERE id = ${finish.grantId} AND version = ${finish.version} RETURNING id`
      return rows.length === 1
    }).pipe(Effect.mapError(fail("save a refreshed grant")))

/** Ends the lease `owner` holds on a grant (the grant's refresh is saved already). */
const releaseGrantLease =
  ({ sql }: Repository): GrantStore["releaseGrantLease"] =>
  (grantId, owner) =>
    sql`UPDATE grants SET lease_owner = NULL, lease_expires_at = NULL, version = version + 1
    WHERE id = ${grantId} AND lease_owner = ${owner}`.pipe(Effect.asVoid, Effect.mapError(fail("release a grant")))

/**
 * The grants with a refresh whose outcome is unknown and that nobody is
 * refreshing now: their lease expired, or (`anyLease`, for SQLite, which one
 * process serves) was taken by a process that is gone.
 */
const listUnfinishedRefreshes =
  ({ sql }: Repository): GrantStore["listUnfinishedRefreshes"] =>
  (now, anyLease) =>
    sql<{ id: string }>`SELECT id FROM grants
    WHERE attempt_started_at IS NOT NULL AND status = 'active'
      ${anyLease ? sql`` : sql`AND (lease_expires_at IS NULL OR lease_expires_at <= ${now})`}
    ORDER BY attempt_started_at`.pipe(
      Effect.map((rows) => rows.map((row) => row.id)),
      Effect.mapError(fail("list unfinished refreshes"))
    )

/** The grants repository over the database, sealing with `sealer`. */
export const makeGrants = (repository: Repository): GrantStore => ({
  listGrants: listGrants(repository),
  countGrantsByStatus: countGrantsByStatus(repository),
  listGrantPage: listGrantPage(repository),
  countGrantsByConnector: countGrantsByConnector(repository),
  findGrant: findGrant(repository),
  findGrantById: findGrantById(repository),
  putGrant: putGrant(repository),
  withGrantLock: withGrantLock(repository),
  updateGrant: updateGrant(repository),
  claimGrantLease: claimGrantLease(repository),
  finishGrantRefresh: finishGrantRefresh(repository),
  releaseGrantLease: releaseGrantLease(repository),
  listUnfinishedRefreshes: listUnfinishedRefreshes(repository)
})
