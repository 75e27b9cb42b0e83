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
import { Config, type ConfigError, Effect, FiberRef, HashSet, Layer, Logger } from "effect"

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
 * Replaces the default logger with the one `CONNECT_LOG_FORMAT` chooses.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerConfig: Layer.Layer<never, ConfigError.ConfigError> = Layer.unwrapEffect(
  Effect.map(formatConfig, layer)
)
