import { Config } from "effect"

/** The variable that names the broker's data directory. */
export const DATA_DIR_VARIABLE = "CONNECT_DATA_DIR"

/** Where the broker keeps its files (the SQLite database, the generated key): `.connect` by default. */
export const dataDirConfig: Config.Config<string> = Config.nonEmptyString(DATA_DIR_VARIABLE).pipe(
  Config.withDefault(".connect")
)
