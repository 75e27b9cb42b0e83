import { Cause, Chunk, ConfigError } from "effect"

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

/**
 * Why the broker could not start, one line per failure (a configuration
 * file's problems each on a line of their own); a defect (a bug) keeps its
 * stack trace. Shared by `npm run broker` and `connect serve`.
 */
export const describeStartupFailure = (cause: Cause.Cause<unknown>): string => {
  const messages = [...new Set(Chunk.toReadonlyArray(Cause.failures(cause)).map(messageOf))]
  if (messages.length === 0) return `The broker could not start (unexpected error):\n${Cause.pretty(cause)}`
  return messages.map((message) => `The broker could not start: ${message}`).join("\n")
}
