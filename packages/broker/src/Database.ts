/**
 * The broker's database: an embedded SQLite file by default, or Postgres for
 * several broker replicas, chosen by `CONNECT_DATABASE_URL`; migrations are
 * applied when the layer is built.
 *
 * @since 0.1.0
 */

import * as FileSystem from "@effect/platform/FileSystem"
import * as Path from "@effect/platform/Path"
import * as NodeFileSystem from "@effect/platform-node/NodeFileSystem"
import { Migrator, SqlClient } from "@effect/sql"
import { PgClient } from "@effect/sql-pg"
import { SqliteClient } from "@effect/sql-sqlite-node"
import { Config, Effect, Layer, Redacted, Schema } from "effect"
import { dataDirConfig, makeDataDir } from "./internal/dataDir.js"
import { migrations } from "./internal/migrations.js"

/**
 * Where the data lives: a SQLite file, or a Postgres database.
 *
 * @since 0.1.0
 * @category models
 */
export type DatabaseLocation =
  | { readonly _tag: "Sqlite"; readonly filename: string }
  | { readonly _tag: "Postgres"; readonly url: Redacted.Redacted<string> }

/**
 * The database could not be opened or migrated. The message names the
 * database (a Postgres URL without its password).
 *
 * @since 0.1.0
 * @category errors
 */
export class DatabaseUnavailable extends Schema.TaggedError<DatabaseUnavailable>()("DatabaseUnavailable", {
  location: Schema.String,
  reason: Schema.String
}) {
  override get message(): string {
    return `The broker database ${this.location} could not be opened: ${this.reason}`
  }
}

/**
 * The default SQLite file inside the data directory.
 *
 * @since 0.1.0
 * @category constants
 */
export const DEFAULT_FILENAME = "broker.db"

/**
 * Reads a location: a `postgres://` or `postgresql://` URL selects Postgres;
 * anything else is a SQLite file path.
 *
 * @since 0.1.0
 * @category constructors
 */
export const parseLocation = (value: string): DatabaseLocation =>
  /^postgres(ql)?:\/\//i.test(value)
    ? { _tag: "Postgres", url: Redacted.make(value) }
    : { _tag: "Sqlite", filename: value }

/**
 * A location fit to print: a Postgres URL loses its password.
 *
 * @since 0.1.0
 * @category utils
 */
export const describeLocation = (location: DatabaseLocation): string => {
  if (location._tag === "Sqlite") return location.filename
  try {
    const url = new URL(Redacted.value(location.url))
    if (url.password !== "") url.password = "***"
    return url.toString()
  } catch {
    return "postgres://(unparsable URL)"
  }
}

/** Applies the migrations that have not run yet (Postgres replicas starting together take turns). */
const migrate = Migrator.make({})({ loader: Migrator.fromRecord(migrations) })

/**
 * A `SqlClient` for a location, migrated. A SQLite file's directory is created.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (location: DatabaseLocation): Layer.Layer<SqlClient.SqlClient, DatabaseUnavailable> => {
  const unavailable = (error: unknown) =>
    new DatabaseUnavailable({
      location: describeLocation(location),
      reason: error instanceof Error ? error.message : String(error)
    })
  const client: Layer.Layer<SqlClient.SqlClient, unknown> =
    location._tag === "Sqlite"
      ? Layer.unwrapEffect(
          Effect.gen(function* () {
            const fs = yield* FileSystem.FileSystem
            const path = yield* Path.Path
            const directory = path.dirname(location.filename)
            // The data directory holds the database (and the key file): owner only, out of version control.
            yield* makeDataDir(fs, directory)
            return SqliteClient.layer({ filename: location.filename })
          }).pipe(Effect.provide(Layer.merge(NodeFileSystem.layer, Path.layer)))
        )
      : PgClient.layer({ url: location.url, maxConnections: 10 })
  // SQLite enforces foreign keys only when asked, per connection (the client keeps one): the same rules as Postgres.
  const foreignKeys = Layer.effectDiscard(
    Effect.flatMap(SqlClient.SqlClient, (sql) =>
      sql.onDialectOrElse({ sqlite: () => sql`PRAGMA foreign_keys = ON`, orElse: () => Effect.void })
    )
  )
  const migrated = Layer.effectDiscard(migrate).pipe(Layer.provideMerge(foreignKeys), Layer.provideMerge(client))
  return migrated.pipe(Layer.mapError(unavailable))
}

/**
 * The database from `CONNECT_DATABASE_URL`: a `postgres://` URL, or a SQLite
 * file path; by default `broker.db` in the data directory (`CONNECT_DATA_DIR`,
 * default `.connect`).
 *
 * @since 0.1.0
 * @category layers
 */
export const layerConfig: Layer.Layer<SqlClient.SqlClient, DatabaseUnavailable> = Layer.unwrapEffect(
  Config.all({
    url: Config.option(Config.nonEmptyString("CONNECT_DATABASE_URL")),
    dataDir: dataDirConfig
  }).pipe(
    Effect.map(({ url, dataDir }) =>
      layer(
        url._tag === "Some" ? parseLocation(url.value) : { _tag: "Sqlite", filename: `${dataDir}/${DEFAULT_FILENAME}` }
      )
    ),
    Effect.mapError((error) => new DatabaseUnavailable({ location: "CONNECT_DATABASE_URL", reason: String(error) }))
  )
)
