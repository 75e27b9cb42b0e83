/**
 * The connectors repository: the `connectors` and `installations` tables.
 * A connector's client secret and private key are sealed.
 *
 * @internal
 */
import { Clock, Effect, Schema } from "effect"
import type { ConnectorStore } from "../../Store.js"
import { fail, firstRow, newId, num, type Repository } from "./common.js"
import { type Connector, ConnectorSettings, type Installation } from "./models.js"
import type { Sealer } from "./sealer.js"

interface ConnectorRow {
  readonly id: string
  readonly uid: string
  readonly name: string
  readonly type: string
  readonly service: string
  readonly client_id: string
  readonly client_secret: string
  readonly private_key: string | null
  readonly settings: string
  readonly created_at: number | string
  readonly updated_at: number | string
}

const SettingsJson = Schema.parseJson(ConnectorSettings)

/** A connector row, its secrets opened. */
const toConnector = (sealer: Sealer) => (row: ConnectorRow) =>
  Effect.all({
    clientSecret: sealer.unseal(row.client_secret, "connectors/client_secret", row.id),
    privateKey: sealer.unsealNullable(row.private_key, "connectors/private_key", row.id),
    settings: Schema.decode(SettingsJson)(row.settings)
  }).pipe(
    Effect.map(
      ({ clientSecret, privateKey, settings }): Connector => ({
        id: row.id,
        uid: row.uid,
        name: row.name,
        type: row.type,
        service: row.service,
        clientId: row.client_id,
        clientSecret,
        privateKey,
        settings,
        createdAt: num(row.created_at),
        updatedAt: num(row.updated_at)
      })
    )
  )

const findConnector =
  ({ sql, sealer }: Repository): ConnectorStore["findConnector"] =>
  (uidOrId) =>
    sql<ConnectorRow>`SELECT * FROM connectors WHERE uid = ${uidOrId} OR id = ${uidOrId}`.pipe(
      Effect.flatMap(firstRow(toConnector(sealer))),
      Effect.mapError(fail("read a connector"))
    )

const putConnector =
  ({ sql, sealer }: Repository): ConnectorStore["putConnector"] =>
  (input) =>
    Effect.gen(function* () {
      const now = yield* Clock.currentTimeMillis
      const existing = yield* sql<{ id: string }>`SELECT id FROM connectors WHERE uid = ${input.uid}`
      const id = existing[0]?.id ?? newId("conn")
      const clientSecret = yield* sealer.seal(input.clientSecret, "connectors/client_secret", id)
      const privateKey =
        input.privateKey === undefined ? null : yield* sealer.seal(input.privateKey, "connectors/private_key", id)
      const settings = yield* Schema.encode(SettingsJson)(input.settings)
      const fields = {
        name: input.name,
        type: input.type,
        service: input.service,
        client_id: input.clientId,
        client_secret: clientSecret,
        private_key: privateKey,
        settings,
        updated_at: now
      }
      if (existing[0] === undefined) {
        yield* sql`INSERT INTO connectors ${sql.insert({ id, uid: input.uid, ...fields, created_at: now })}`
      } else {
        yield* sql`UPDATE connectors SET ${sql.update(fields)} WHERE id = ${id}`
      }
      return yield* findConnector({ sql, sealer })(id).pipe(Effect.flatMap(Effect.orDie))
    }).pipe(Effect.mapError(fail("save a connector")))

const removeConnector =
  ({ sql }: Repository): ConnectorStore["removeConnector"] =>
  (uidOrId) =>
    sql<{ id: string }>`SELECT id FROM connectors WHERE uid = ${uidOrId} OR id = ${uidOrId}`.pipe(
      Effect.flatMap((rows) =>
        rows[0] === undefined
          ? Effect.succeed(false)
          : sql
              .withTransaction(
                Effect.all([
                  // Explicit: SQLite does not enforce the foreign keys' cascades.
                  sql`DELETE FROM authorization_requests WHERE connector_id = ${rows[0].id}`,
                  sql`DELETE FROM issued_tokens WHERE connector_id = ${rows[0].id}`,
                  sql`DELETE FROM grants WHERE connector_id = ${rows[0].id}`,
                  sql`DELETE FROM links WHERE connector_id = ${rows[0].id}`,
                  sql`DELETE FROM installations WHERE connector_id = ${rows[0].id}`,
                  sql`DELETE FROM connectors WHERE id = ${rows[0].id}`
                ])
              )
              .pipe(Effect.as(true))
      ),
      Effect.mapError(fail("remove a connector"))
    )

const listConnectors = ({ sql, sealer }: Repository): ConnectorStore["listConnectors"] =>
  sql<ConnectorRow>`SELECT * FROM connectors ORDER BY uid`.pipe(
    Effect.flatMap((rows) => Effect.forEach(rows, toConnector(sealer))),
    Effect.mapError(fail("list connectors"))
  )

/**
 * Replaces the installations the config file declares; those made through
 * the install flow stay, unless the file declares one with the same id.
 */
const setInstallations =
  ({ sql }: Repository): ConnectorStore["setInstallations"] =>
  (connectorId, installations) =>
    Effect.gen(function* () {
      const now = yield* Clock.currentTimeMillis
      yield* sql`DELETE FROM installations WHERE connector_id = ${connectorId} AND source = 'config'`
      for (const installation of installations) {
        yield* sql`DELETE FROM installations WHERE connector_id = ${connectorId} AND id = ${installation.id}`
        yield* sql`INSERT INTO installations ${sql.insert({
          connector_id: connectorId,
          id: installation.id,
          tenant_id: installation.tenantId ?? null,
          is_default: installation.isDefault ? 1 : 0,
          token_endpoint: installation.tokenEndpoint ?? null,
          source: "config",
          created_at: now,
          updated_at: now
        })}`
      }
    }).pipe(sql.withTransaction, Effect.mapError(fail("save installations")))

/**
 * Saves an installation made through the install flow: a new one, or the
 * same tenant installed again. It becomes the default when asked to and the
 * connector has no default yet.
 */
const putInstallation =
  ({ sql }: Repository): ConnectorStore["putInstallation"] =>
  (installation) =>
    Effect.gen(function* () {
      const now = yield* Clock.currentTimeMillis
      const defaults = yield* sql<{
        id: string
      }>`SELECT id FROM installations WHERE connector_id = ${installation.connectorId} AND is_default <> 0`
      const isDefault =
        defaults.some((row) => row.id === installation.id) || (installation.defaultIfNone && defaults.length === 0)
      const existing = yield* sql<{
        created_at: number | string
        token_endpoint: string | null
      }>`SELECT created_at, token_endpoint FROM installations WHERE connector_id = ${installation.connectorId} AND id = ${installation.id}`
      yield* sql`DELETE FROM installations WHERE connector_id = ${installation.connectorId} AND id = ${installation.id}`
      yield* sql`INSERT INTO installations ${sql.insert({
        connector_id: installation.connectorId,
        id: installation.id,
        tenant_id: installation.tenantId ?? null,
        is_default: isDefault ? 1 : 0,
        token_endpoint: installation.tokenEndpoint ?? existing[0]?.token_endpoint ?? null,
        source: "installed",
        created_at: existing[0] === undefined ? now : num(existing[0].created_at),
        updated_at: now
      })}`
    }).pipe(sql.withTransaction, Effect.mapError(fail("save an installation")))

/** Deletes an installation and every grant made within it (its own and its users'). */
const removeInstallation =
  ({ sql }: Repository): ConnectorStore["removeInstallation"] =>
  (connectorId, installationId) =>
    Effect.gen(function* () {
      yield* sql`DELETE FROM grants WHERE connector_id = ${connectorId} AND installation_id = ${installationId}`
      const removed = yield* sql<{
        id: string
      }>`DELETE FROM installations WHERE connector_id = ${connectorId} AND id = ${installationId} RETURNING id`
      return removed.length > 0
    }).pipe(sql.withTransaction, Effect.mapError(fail("remove an installation")))

const listInstallations =
  ({ sql }: Repository): ConnectorStore["listInstallations"] =>
  (connectorId) =>
    sql<{
      connector_id: string
      id: string
      tenant_id: string | null
      is_default: number | boolean
      token_endpoint: string | null
      source: string
    }>`SELECT * FROM installations WHERE connector_id = ${connectorId} ORDER BY id`.pipe(
      Effect.map((rows) =>
        rows.map(
          (row): Installation => ({
            connectorId: row.connector_id,
            id: row.id,
            tenantId: row.tenant_id ?? undefined,
            isDefault: Boolean(row.is_default),
            tokenEndpoint: row.token_endpoint ?? undefined,
            source: row.source === "installed" ? "installed" : "config"
          })
        )
      ),
      Effect.mapError(fail("list installations"))
    )

/** The connectors repository over the database, sealing with `sealer`. */
export const makeConnectors = (repository: Repository): ConnectorStore => ({
  findConnector: findConnector(repository),
  putConnector: putConnector(repository),
  removeConnector: removeConnector(repository),
  listConnectors: listConnectors(repository),
  setInstallations: setInstallations(repository),
  putInstallation: putInstallation(repository),
  removeInstallation: removeInstallation(repository),
  listInstallations: listInstallations(repository)
})
