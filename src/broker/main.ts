/**
 * `npm run broker`: runs the broker with its settings from the environment
 * until the process is stopped.
 *
 * A broker that cannot start says why on stderr, in words (`The broker could
 * not start: ...`, a configuration file's problems each on a line of its own
 * with its path), and exits with code 1; a stop by a signal exits with 0.
 *
 * @since 0.1.0
 */
import { NodeRuntime } from "@effect/platform-node"
import { Cause, Chunk, ConfigError, Console, Effect } from "effect"
import { serve } from "./Broker.js"

/** What a startup failure says: the error's own message, without a stack trace. */
const messageOf = (error: unknown): string => {
  // `(Invalid data at CONNECT_PORT: "...")`: the parentheses only group.
  if (ConfigError.isConfigError(error)) return String(error).replace(/^\(([\s\S]*)\)$/, "$1")
  if (error instanceof Error) {
    // A server that cannot listen says why in its cause (EADDRINUSE, EACCES).
    if ("_tag" in error && error._tag === "ServeError" && error.cause instanceof Error) {
      return `the HTTP server could not listen: ${error.cause.message}`
    }
    return error.message
  }
  return String(error)
}

/** One line per failure; a defect (a bug) keeps its stack trace. */
const describe = (cause: Cause.Cause<unknown>): string => {
  const messages = [...new Set(Chunk.toReadonlyArray(Cause.failures(cause)).map(messageOf))]
  if (messages.length === 0) return `The broker could not start (unexpected error):\n${Cause.pretty(cause)}`
  return messages.map((message) => `The broker could not start: ${message}`).join("\n")
}

const main = serve.pipe(
  Effect.tapErrorCause((cause) => (Cause.isInterruptedOnly(cause) ? Effect.void : Console.error(describe(cause))))
)

NodeRuntime.runMain(main, { disableErrorReporting: true })
