/**
 * The issued tokens repository: the `issued_tokens` table. A token's access
 * token is sealed.
 *
 * @internal
 */
import { Clock, Effect } from "effect"
import { isReusable } from "../../grants/reuse.js"
import type { IssuedTokenStore } from "../../Store.js"
import { fail, firstRow, newId, num, type Repository } from "./common.js"
import type { IssuedToken } from "./models.js"
import type { Sealer } from "./sealer.js"

interface TokenRow {
  readonly id: string
  readonly connector_id: string
  readonly project_id: string
  readonly environment: string
  readonly subject: string
  readonly installation_id: string
  readonly request_key: string
  readonly grant_id: string | null
  readonly access_token: string
  readonly expires_at: number | string
  readonly status: string
  readonly created_at: number | string
}

/** A token row, its access token opened. */
const toToken = (sealer: Sealer) => (row: TokenRow) =>
  sealer.unseal(row.access_token, "issued_tokens/access_token", row.id).pipe(
    Effect.map(
      (accessToken): IssuedToken => ({
        id: row.id,
        connectorId: row.connector_id,
        projectId: row.project_id,
        environment: row.environment,
        subject: row.subject,
        installationId: row.installation_id,
        requestKey: row.request_key,
        grantId: row.grant_id ?? undefined,
        accessToken,
        expiresAt: num(row.expires_at),
        status: row.status as IssuedToken["status"],
        createdAt: num(row.created_at)
      })
    )
  )

const insertIssuedToken =
  ({ sql, sealer }: Repository): IssuedTokenStore["insertIssuedToken"] =>
  (token) =>
    Effect.gen(function* () {
      const now = yield* Clock.currentTimeMillis
      const id = newId("stk")
      const accessToken = yield* sealer.seal(token.accessToken, "issued_tokens/access_token", id)
      yield* sql`INSERT INTO issued_tokens ${sql.insert({
        id,
        connector_id: token.connectorId,
        project_id: token.projectId,
        environment: token.environment,
        subject: token.subject,
        installation_id: token.installationId,
        request_key: token.requestKey,
        grant_id: token.grantId ?? null,
        access_token: accessToken,
        expires_at: token.expiresAt,
        status: "active",
        created_at: now
      })}`
      return { ...token, id, status: "active", createdAt: now } satisfies IssuedToken
    }).pipe(Effect.mapError(fail("record an issued token")))

/**
 * The newest active token for the same request that may be handed out at
 * `now` by the reuse rule (`isReusable` in `grants/reuse.ts`, with
 * `bufferMs`); the SQL only leaves out the expired ones.
 */
const findReusableToken =
  ({ sql, sealer }: Repository): IssuedTokenStore["findReusableToken"] =>
  (key) =>
    sql<TokenRow>`SELECT * FROM issued_tokens
    WHERE connector_id = ${key.connectorId} AND project_id = ${key.projectId}
      AND environment = ${key.environment} AND request_key = ${key.requestKey}
      AND status = 'active' AND expires_at > ${key.now}
    ORDER BY expires_at DESC LIMIT 20`.pipe(
      Effect.map((rows) =>
        rows.filter((row) =>
          isReusable({ expiresAt: num(row.expires_at), createdAt: num(row.created_at) }, key.now, key.bufferMs)
        )
      ),
      Effect.flatMap(firstRow(toToken(sealer))),
      Effect.mapError(fail("read an issued token"))
    )

const listActiveTokens =
  ({ sql, sealer }: Repository): IssuedTokenStore["listActiveTokens"] =>
  (filter) =>
    sql<TokenRow>`SELECT * FROM issued_tokens
    WHERE connector_id = ${filter.connectorId} AND status = 'active'
      ${filter.projectId === undefined ? sql`` : sql`AND project_id = ${filter.projectId}`}
      ${filter.subject === undefined ? sql`` : sql`AND subject = ${filter.subject}`}
      ${filter.installationId === undefined ? sql`` : sql`AND installation_id = ${filter.installationId}`}
    ORDER BY created_at`.pipe(
      Effect.flatMap((rows) => Effect.forEach(rows, toToken(sealer))),
      Effect.mapError(fail("list issued tokens"))
    )

/** How many tokens each connector handed out from the provider since `since`: one grouped count. */
const countIssuedTokensSince =
  ({ sql }: Repository): IssuedTokenStore["countIssuedTokensSince"] =>
  (since) =>
    sql<{
      readonly connector_id: string
      readonly n: number | string
    }>`SELECT connector_id, COUNT(*) AS n FROM issued_tokens WHERE created_at >= ${since} GROUP BY connector_id`.pipe(
      Effect.map((rows) => rows.map((row) => ({ connectorId: row.connector_id, count: num(row.n) }))),
      Effect.mapError(fail("count issued tokens"))
    )

/** Deletes the issued tokens that expired before `before`, and says how many. */
const pruneIssuedTokens =
  ({ sql }: Repository): IssuedTokenStore["pruneIssuedTokens"] =>
  (before) =>
    sql<{ id: string }>`DELETE FROM issued_tokens WHERE expires_at < ${before} RETURNING id`.pipe(
      Effect.map((rows) => rows.length),
      Effect.mapError(fail("prune issued tokens"))
    )

const markTokens =
  ({ sql }: Repository): IssuedTokenStore["markTokens"] =>
  (ids, status) =>
    Effect.gen(function* () {
      if (ids.length === 0) return
      const now = yield* Clock.currentTimeMillis
      yield* sql`UPDATE issued_tokens SET status = ${status}, revoked_at = ${now} WHERE ${sql.in("id", ids)}`
    }).pipe(Effect.mapError(fail("mark issued tokens")))

/** The issued tokens repository over the database, sealing with `sealer`. */
export const makeIssuedTokens = (repository: Repository): IssuedTokenStore => ({
  insertIssuedToken: insertIssuedToken(repository),
  findReusableToken: findReusableToken(repository),
  listActiveTokens: listActiveTokens(repository),
  countIssuedTokensSince: countIssuedTokensSince(repository),
  pruneIssuedTokens: pruneIssuedTokens(repository),
  markTokens: markTokens(repository)
})
