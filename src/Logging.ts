/**
 * One way to log for the SDK, the broker and the examples: the format is
 * chosen by `CONNECT_LOG_FORMAT` (`pretty`, `logfmt` or `json`), and every
 * line goes to stderr, so that a program's own output on stdout stays clean.
 *
 * Without `CONNECT_LOG_FORMAT`, a terminal (stderr is a TTY) gets `pretty`,
 * anything else (a file, a pipe, a log collector) gets `logfmt`: one line per
 * event, readable by people and parsers alike. `json` is one JSON object per
 * line, with the fiber's log annotations (such as the broker's `requestId`)
 * as fields.
 *
 * @since 0.1.0
 */
import { Config, ConfigError, Effect, Either, FiberRef, HashSet, Layer, Logger, LogLevel, Option } from "effect"

/**
 * The formats of a log line.
 *
 * @since 0.1.0
 * @category models
 */
export type LogFormat = "pretty" | "logfmt" | "json"

/**
 * The variable that chooses the format.
 *
 * @since 0.1.0
 * @category constants
 */
export const LOG_FORMAT_VARIABLE = "CONNECT_LOG_FORMAT"

const isTerminal = (): boolean => {
  // Not every runtime has `process` (a browser, an edge worker): no terminal there.
  const proc = (globalThis as { readonly process?: { readonly stderr?: { readonly isTTY?: boolean } } }).process
  return proc?.stderr?.isTTY === true
}

/**
 * The format when none is configured: `pretty` on a terminal, `logfmt`
 * otherwise.
 *
 * @since 0.1.0
 * @category constructors
 */
export const defaultFormat = (): LogFormat => (isTerminal() ? "pretty" : "logfmt")

/**
 * The logger of a format, writing to stderr.
 *
 * @since 0.1.0
 * @category constructors
 */
export const logger = (format: LogFormat): Logger.Logger<unknown, void> => {
  switch (format) {
    case "pretty":
      return Logger.prettyLogger({ stderr: true })
    case "json":
      return Logger.withConsoleError(Logger.jsonLogger)
    case "logfmt":
      return Logger.withConsoleError(Logger.logfmtLogger)
  }
}

/**
 * The format from `CONNECT_LOG_FORMAT`, or {@link defaultFormat}.
 *
 * @since 0.1.0
 * @category config
 */
export const formatConfig: Config.Config<LogFormat> = Config.literal(
  "pretty",
  "logfmt",
  "json"
)(LOG_FORMAT_VARIABLE).pipe(Config.withDefault(defaultFormat()))

/**
 * Replaces the default logger with the logger of `format`; also the pretty
 * logger that `runMain` of @effect/platform puts in its place.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (format: LogFormat): Layer.Layer<never> =>
  Layer.scopedDiscard(
    Effect.locallyScopedWith(FiberRef.currentLoggers, (loggers) =>
      loggers.pipe(
        HashSet.remove(Logger.defaultLogger),
        HashSet.remove(Logger.prettyLoggerDefault),
        HashSet.add(logger(format))
      )
    )
  )

/**
 * The variable naming the least severe level logged.
 *
 * @since 0.3.0
 * @category config
 */
export const LOG_LEVEL_VARIABLE = "CONNECT_LOG_LEVEL"

const ALIASES: Readonly<Record<string, string>> = { none: "off", warning: "warn" }

/**
 * The least severe level logged, from `CONNECT_LOG_LEVEL` (`all`, `trace`,
 * `debug`, `info`, `warn` or `warning`, `error`, `fatal` or `none`, in any case).
 *
 * @since 0.3.0
 * @category config
 */
export const levelConfig: Config.Config<LogLevel.LogLevel> = Config.string(LOG_LEVEL_VARIABLE).pipe(
  // Effect names them `OFF` and `WARN`; `none` and `warning` (as `connect --log-level` spells it) are taken too.
  Config.map((text) => ALIASES[text.trim().toLowerCase()] ?? text.trim()),
  Config.mapOrFail((text) => {
    const level = LogLevel.allLevels.find((candidate) => candidate.label === text.toUpperCase())
    return level === undefined
      ? Either.left(
          ConfigError.InvalidData(
            [LOG_LEVEL_VARIABLE],
            `expected one of all, trace, debug, info, warn, error, fatal or none, not ${JSON.stringify(text)}`
          )
        )
      : Either.right(level)
  })
)

/**
 * Replaces the default logger with the one `CONNECT_LOG_FORMAT` chooses, and
 * logs from the level `CONNECT_LOG_LEVEL` names, when it is set.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerConfig: Layer.Layer<never, ConfigError.ConfigError> = Layer.unwrapEffect(
  Effect.map(Effect.all([formatConfig, Config.option(levelConfig)]), ([format, level]) =>
    // Without the variable, the level stays as it is (Effect's `info`, or what a command line set).
    Option.match(level, {
      onNone: () => layer(format),
      onSome: (level) => Layer.merge(layer(format), Logger.minimumLogLevel(level))
    })
  )
)
