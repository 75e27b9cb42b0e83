/**
 * The projects repository: the `projects`, `project_keys` and `links` tables.
 * Caller keys are kept only as SHA-256 hashes.
 *
 * @internal
 */
import { timingSafeEqual } from "node:crypto"
import type { SqlClient } from "@effect/sql"
import { Clock, Effect, Option, Redacted, Schema } from "effect"
import type { ProjectStore } from "../../Store.js"
import { fail, hashKey, num, type Repository } from "./common.js"
import type { Caller } from "./models.js"

const ProjectSettingsJson = Schema.parseJson(
  Schema.Struct({
    returnUrls: Schema.optionalWith(Schema.Array(Schema.String), { default: () => [] }),
    /** Users' grants wait for the application to confirm the user (see `Authorizations`). */
    confirmUsers: Schema.optionalWith(Schema.Boolean, { default: () => false })
  })
)

const Environments = Schema.parseJson(Schema.Array(Schema.String))

interface ProjectRow {
  readonly id: string
  readonly name: string
  readonly settings: string
  readonly created_at: number | string
}

interface KeyCountRow {
  readonly project_id: string
  readonly environment: string
  readonly count: number | string
}

const putProject =
  ({ sql }: Repository): ProjectStore["putProject"] =>
  (project) =>
    Effect.gen(function* () {
      const now = yield* Clock.currentTimeMillis
      const settings = JSON.stringify({
        returnUrls: project.returnUrls ?? [],
        ...(project.confirmUsers === true ? { confirmUsers: true } : {})
      })
      const existing = yield* sql<{ id: string }>`SELECT id FROM projects WHERE id = ${project.id}`
      if (existing[0] === undefined) {
        yield* sql`INSERT INTO projects ${sql.insert({ id: project.id, name: project.name, settings, created_at: now })}`
      } else {
        yield* sql`UPDATE projects SET ${sql.update({ name: project.name, settings })} WHERE id = ${project.id}`
      }
    }).pipe(Effect.mapError(fail("save a project")))

const putProjectKey =
  ({ sql }: Repository): ProjectStore["putProjectKey"] =>
  (projectId, environment, key) =>
    Effect.gen(function* () {
      const now = yield* Clock.currentTimeMillis
      const keyHash = hashKey(key)
      yield* sql`DELETE FROM project_keys WHERE key_hash = ${keyHash}`
      yield* sql`INSERT INTO project_keys ${sql.insert({
        key_hash: keyHash,
        project_id: projectId,
        environment,
        prefix: keyPrefix(key),
        created_at: now
      })}`
    }).pipe(sql.withTransaction, Effect.mapError(fail("save a project key")))

/** How many characters of a caller key are kept in the clear, to tell keys apart: too few to guess the rest. */
export const KEY_PREFIX_LENGTH = 8

/** The first characters of a caller key, as kept and shown; none of a key too short to give any away. */
export const keyPrefix = (key: Redacted.Redacted<string>): string | null => {
  const value = Redacted.value(key)
  return value.length >= KEY_PREFIX_LENGTH * 3 ? value.slice(0, KEY_PREFIX_LENGTH) : null
}

/** The caller keys of a project, by environment, as their prefixes: never the keys or their hashes. */
const listProjectKeys =
  ({ sql }: Repository): ProjectStore["listProjectKeys"] =>
  (projectId) =>
    sql<{
      readonly environment: string
      readonly prefix: string | null
      readonly created_at: number | string
    }>`SELECT environment, prefix, created_at FROM project_keys WHERE project_id = ${projectId}
    ORDER BY environment, created_at`.pipe(
      Effect.map((rows) =>
        rows.map((row) => ({
          environment: row.environment,
          prefix: row.prefix ?? undefined,
          createdAt: num(row.created_at)
        }))
      ),
      Effect.mapError(fail("list project keys"))
    )

const findCaller =
  ({ sql }: Repository): ProjectStore["findCaller"] =>
  (key) =>
    Effect.gen(function* () {
      const keyHash = hashKey(key)
      const rows = yield* sql<{
        key_hash: string
        project_id: string
        environment: string
      }>`SELECT key_hash, project_id, environment FROM project_keys WHERE key_hash = ${keyHash}`
      const row = rows[0]
      // The lookup is by hash; the comparison of what came back is in constant time.
      if (row === undefined || !timingSafeEqual(Buffer.from(row.key_hash), Buffer.from(keyHash))) return Option.none()
      return Option.some<Caller>({ projectId: row.project_id, environment: row.environment })
    }).pipe(Effect.mapError(fail("check a caller key")))

const putLink =
  ({ sql }: Repository): ProjectStore["putLink"] =>
  (connectorId, projectId, environments) =>
    Effect.gen(function* () {
      const value = JSON.stringify([...new Set(environments)].sort())
      yield* sql`DELETE FROM links WHERE connector_id = ${connectorId} AND project_id = ${projectId}`
      yield* sql`INSERT INTO links ${sql.insert({ connector_id: connectorId, project_id: projectId, environments: value })}`
    }).pipe(sql.withTransaction, Effect.mapError(fail("save a link")))

const findLink =
  ({ sql }: Repository): ProjectStore["findLink"] =>
  (connectorId, projectId) =>
    sql<{
      environments: string
    }>`SELECT environments FROM links WHERE connector_id = ${connectorId} AND project_id = ${projectId}`.pipe(
      Effect.flatMap((rows) =>
        rows[0] === undefined
          ? Effect.succeed(Option.none<ReadonlyArray<string>>())
          : Effect.asSome(Schema.decode(Environments)(rows[0].environments))
      ),
      Effect.mapError(fail("read a link"))
    )

const removeLink =
  ({ sql }: Repository): ProjectStore["removeLink"] =>
  (connectorId, projectId) =>
    sql`DELETE FROM links WHERE connector_id = ${connectorId} AND project_id = ${projectId}`.pipe(
      Effect.asVoid,
      Effect.mapError(fail("remove a link"))
    )

/** A project's settings, or none when there is no such project. */
const projectSettings = (sql: SqlClient.SqlClient, projectId: string) =>
  sql<{ settings: string }>`SELECT settings FROM projects WHERE id = ${projectId}`.pipe(
    Effect.flatMap((rows) =>
      rows[0] === undefined ? Effect.succeedNone : Effect.asSome(Schema.decode(ProjectSettingsJson)(rows[0].settings))
    ),
    Effect.mapError(fail("read a project"))
  )

/** Whether a project's users' grants wait for the application to confirm the user. */
const findProjectConfirmsUsers =
  ({ sql }: Repository): ProjectStore["findProjectConfirmsUsers"] =>
  (projectId) =>
    projectSettings(sql, projectId).pipe(
      Effect.map(Option.match({ onNone: () => false, onSome: (settings) => settings.confirmUsers }))
    )

const findProjectReturnUrls =
  ({ sql }: Repository): ProjectStore["findProjectReturnUrls"] =>
  (projectId) =>
    projectSettings(sql, projectId).pipe(
      Effect.map(Option.match({ onNone: (): ReadonlyArray<string> => [], onSome: (settings) => settings.returnUrls }))
    )

/** How many caller keys a project (or every project) has per environment. */
const keyCounts = (sql: SqlClient.SqlClient) => (projectId?: string) =>
  sql<KeyCountRow>`SELECT project_id, environment,
      COUNT(*) AS count FROM project_keys
    ${projectId === undefined ? sql`` : sql`WHERE project_id = ${projectId}`}
    GROUP BY project_id, environment ORDER BY environment`

/** A project row, with its key counts. */
const toProject = (row: ProjectRow, counts: ReadonlyArray<KeyCountRow>) =>
  Schema.decode(ProjectSettingsJson)(row.settings).pipe(
    Effect.map((settings) => ({
      id: row.id,
      name: row.name,
      returnUrls: settings.returnUrls,
      confirmUsers: settings.confirmUsers,
      keys: counts
        .filter((count) => count.project_id === row.id)
        .map((count) => ({ environment: count.environment, count: num(count.count) })),
      createdAt: num(row.created_at)
    }))
  )

/** A project, with how many caller keys it has per environment. */
const findProject =
  ({ sql }: Repository): ProjectStore["findProject"] =>
  (projectId) =>
    Effect.gen(function* () {
      const rows = yield* sql<ProjectRow>`SELECT * FROM projects WHERE id = ${projectId}`
      if (rows[0] === undefined) return Option.none()
      return Option.some(yield* toProject(rows[0], yield* keyCounts(sql)(projectId)))
    }).pipe(Effect.mapError(fail("read a project")))

/** Every project, by id, with how many caller keys each has per environment. */
const listProjects = ({ sql }: Repository): ProjectStore["listProjects"] =>
  Effect.gen(function* () {
    const rows = yield* sql<ProjectRow>`SELECT * FROM projects ORDER BY id`
    const counts = yield* keyCounts(sql)()
    return yield* Effect.forEach(rows, (row) => toProject(row, counts))
  }).pipe(Effect.mapError(fail("list projects")))

/** The links of a connector, by project. */
const listConnectorLinks =
  ({ sql }: Repository): ProjectStore["listConnectorLinks"] =>
  (connectorId) =>
    sql<{
      project_id: string
      environments: string
    }>`SELECT project_id, environments FROM links WHERE connector_id = ${connectorId} ORDER BY project_id`.pipe(
      Effect.flatMap((rows) =>
        Effect.forEach(rows, (row) =>
          Schema.decode(Environments)(row.environments).pipe(
            Effect.map((environments) => ({ projectId: row.project_id, environments }))
          )
        )
      ),
      Effect.mapError(fail("list links"))
    )

/** The projects repository over the database. */
export const makeProjects = (repository: Repository): ProjectStore => ({
  putProject: putProject(repository),
  putProjectKey: putProjectKey(repository),
  findCaller: findCaller(repository),
  putLink: putLink(repository),
  findLink: findLink(repository),
  removeLink: removeLink(repository),
  findProjectConfirmsUsers: findProjectConfirmsUsers(repository),
  findProjectReturnUrls: findProjectReturnUrls(repository),
  findProject: findProject(repository),
  listProjects: listProjects(repository),
  listProjectKeys: listProjectKeys(repository),
  listConnectorLinks: listConnectorLinks(repository)
})
