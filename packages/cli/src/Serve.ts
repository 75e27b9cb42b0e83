/**
 * `connect serve`: runs the broker. The flags are laid over the broker's
 * environment configuration (`CONNECT_HOST`, `CONNECT_PORT`, `CONNECT_CONFIG`,
 * `CONNECT_DATABASE_URL`); everything else comes from the environment.
 *
 * @since 0.1.0
 */

import * as Command from "@effect/cli/Command"
import { listenConfig } from "@effect-connect/broker/PublicUrl"
import { dataDirConfig, describeStartupFailure } from "@effect-connect/broker/Startup"
import { Cause, Config, ConfigProvider, Console, Effect, Layer, Option } from "effect"
import * as Logging from "effect-connect/Logging"
import { CliExit, ExitCode } from "./Exit.js"
import * as Flags from "./Flags.js"

/** The environment variables the flags stand for. */
const flagVariables = {
  host: "CONNECT_HOST",
  port: "CONNECT_PORT",
  config: "CONNECT_CONFIG",
  database: "CONNECT_DATABASE_URL"
} as const

/**
 * The flags over the environment: a flag that is given wins over its variable.
 *
 * @since 0.1.0
 * @category config
 */
export const configProvider = (
  flags: {
    readonly [K in keyof typeof flagVariables]: Option.Option<string>
  }
): ConfigProvider.ConfigProvider => {
  const entries: Array<[string, string]> = []
  for (const key of Object.keys(flagVariables) as Array<keyof typeof flagVariables>) {
    const value = flags[key]
    if (Option.isSome(value)) entries.push([flagVariables[key], value.value])
  }
  return ConfigProvider.fromMap(new Map(entries)).pipe(ConfigProvider.orElse(() => ConfigProvider.fromEnv()))
}

/** Where the broker listens and keeps its data, as its configuration says. */
const describeStart = (database: typeof import("@effect-connect/broker/Database")) =>
  Effect.gen(function* () {
    const { DEFAULT_FILENAME, describeLocation, parseLocation } = database
    const listen = yield* listenConfig
    const url = yield* Config.option(Config.nonEmptyString("CONNECT_DATABASE_URL"))
    const dataDir = yield* dataDirConfig
    const location = Option.isSome(url) ? parseLocation(url.value) : parseLocation(`${dataDir}/${DEFAULT_FILENAME}`)
    return [
      `Connect broker listening on http://${listen.host}:${listen.port}`,
      `Database: ${describeLocation(location)} (data directory ${dataDir})`
    ].join("\n")
  })

/**
 * @since 0.1.0
 * @category commands
 */
export const command = Command.make(
  "serve",
  {
    host: Flags.optionalText("host", "The address to listen on (CONNECT_HOST, default 127.0.0.1)"),
    port: Flags.optionalInteger("port", "The port to listen on (CONNECT_PORT, default 4100)"),
    config: Flags.optionalText("config", "The configuration file applied at start (CONNECT_CONFIG)"),
    database: Flags.optionalText(
      "database",
      "A SQLite file path or a postgres:// URL (CONNECT_DATABASE_URL, default .connect/broker.db)"
    )
  },
  (flags) => {
    const provider = configProvider({ ...flags, port: Option.map(flags.port, String) })
    const run = Effect.gen(function* () {
      // The broker and its database drivers load for this command only, so the others start sooner.
      const [broker, database] = yield* Effect.promise(() =>
        Promise.all([import("@effect-connect/broker/Broker"), import("@effect-connect/broker/Database")])
      )
      // Its requests' fibers take the broker's scheduler from the building of the layer.
      yield* broker.scheduled(Layer.build(broker.layerConfig))
      yield* Console.log(yield* describeStart(database))
      return yield* Effect.never
    }).pipe(
      Effect.scoped,
      // The log goes to stderr (CONNECT_LOG_FORMAT), apart from the status lines above on stdout.
      Effect.provide(Logging.layerConfig)
    )
    return run.pipe(
      Effect.catchAllCause((cause) =>
        Cause.isInterruptedOnly(cause)
          ? Effect.failCause(cause)
          : Effect.zipRight(
              Console.error(describeStartupFailure(cause)),
              Effect.fail(new CliExit({ code: ExitCode.Failure }))
            )
      ),
      Effect.withConfigProvider(provider)
    )
  }
).pipe(
  Command.withDescription(
    [
      "Runs the Connect broker until it is stopped (Ctrl+C or SIGTERM).",
      "Other settings come from the environment: see docs/broker.md in @effect-connect/broker.",
      "",
      "Example: connect serve --port 4100 --config ./connect.json --database ./data/broker.db"
    ].join("\n")
  )
)
