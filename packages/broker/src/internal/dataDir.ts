import * as NodePath from "node:path"
import type { PlatformError } from "@effect/platform/Error"
import type * as FileSystem from "@effect/platform/FileSystem"
import { Config, Effect } from "effect"

/** The variable that names the broker's data directory. */
export const DATA_DIR_VARIABLE = "CONNECT_DATA_DIR"

/** Where the broker keeps its files (the SQLite database, the generated key): `.connect` by default. */
export const dataDirConfig: Config.Config<string> = Config.nonEmptyString(DATA_DIR_VARIABLE).pipe(
  Config.withDefault(".connect")
)

/** What the data directory's `.gitignore` says: nothing in it belongs in version control. */
export const GITIGNORE =
  "# The Connect broker's data: its database and encryption key. Keep them out of version control.\n*\n"

/**
 * Creates the data directory, owner only (`0700`), with a `.gitignore` that
 * keeps the database and the key file out of version control when the
 * directory is inside a repository. A `.gitignore` that cannot be written is
 * no reason not to start.
 */
export const makeDataDir = (fs: FileSystem.FileSystem, directory: string): Effect.Effect<void, PlatformError> =>
  Effect.gen(function* () {
    const existed = yield* fs.exists(directory).pipe(Effect.orElseSucceed(() => true))
    yield* fs.makeDirectory(directory, { recursive: true, mode: 0o700 })
    if (existed) return
    yield* fs
      .writeFileString(NodePath.join(directory, ".gitignore"), GITIGNORE, { flag: "wx", mode: 0o600 })
      .pipe(Effect.ignore)
  })
