/**
 * How the `connect` command line ends: its exit codes, and the one line it
 * prints on stderr when a command fails.
 *
 * @since 0.1.0
 */
import * as Prompt from "@effect/cli/Prompt"
import type * as Terminal from "@effect/platform/Terminal"
import { Console, Data, Effect } from "effect"
import { ConnectorInstallationRequired, isConnectError, UserAuthorizationRequired } from "effect-connect/ConnectError"

/**
 * The exit codes: 0 success; 1 the user must act (authorize, install) and the
 * URL to open was printed; 2 any other failure (a usage error, a refusal, an
 * error from the server or the network); 3 an authorization that awaits the
 * application's confirmation of its user.
 *
 * @since 0.1.0
 * @category constants
 */
export const ExitCode = {
  Success: 0,
  ActionRequired: 1,
  Failure: 2,
  /** The provider's part is done; the project confirms its users and the application has yet to. */
  AwaitingConfirmation: 3,
  /** Stopped by Ctrl+C or SIGTERM (128 + SIGINT), as shells report it. */
  Interrupted: 130
} as const

let interruptedWith: number = ExitCode.Success

/**
 * Makes Ctrl+C (or SIGTERM) during `effect` end the process with `code`: a
 * server stopped so exits 0, a wait that was cut short says so.
 *
 * @since 0.1.0
 * @category utils
 */
export const exitOnInterrupt =
  (code: number) =>
  <A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
    Effect.onInterrupt(effect, () =>
      Effect.sync(() => {
        interruptedWith = code
      })
    )

/**
 * The exit code of an interrupted run.
 *
 * @since 0.1.0
 * @category utils
 */
export const interruptedExitCode = (): number => interruptedWith

/**
 * A command that has already said why it stops, and the code to exit with.
 *
 * @since 0.1.0
 * @category errors
 */
export class CliExit extends Data.TaggedError("CliExit")<{ readonly code: number }> {}

let errorFormat: "plain" | "json" = "plain"

/**
 * Sets how errors are printed: as one line of text, or with `--format json`
 * as one JSON object, `{"error":{"code","message"}}` (and `url` when the user
 * must open one). The exit code is the same.
 *
 * @since 0.1.0
 * @category utils
 */
export const setErrorFormat = (format: "plain" | "json"): void => {
  errorFormat = format
}

/**
 * Prints an error on stderr in the chosen format: `message` as it is in
 * plain text, or on one line in JSON with its `code`.
 *
 * @since 0.1.0
 * @category utils
 */
export const printError = (code: string, message: string, url?: string): Effect.Effect<void> =>
  errorFormat === "json"
    ? Console.error(
        JSON.stringify({ error: { code, message: oneLine(message), ...(url === undefined ? {} : { url }) } })
      )
    : Console.error(url === undefined ? message : `${message}\n${url}`)

/**
 * Prints one line on stderr and stops with exit code 2; `code` names the
 * failure in JSON (`usage` by default: the command line asked for something
 * the command cannot do).
 *
 * @since 0.1.0
 * @category utils
 */
export const fail = (message: string, code = "usage"): Effect.Effect<never, CliExit> =>
  Effect.zipRight(printError(code, oneLine(message)), Effect.fail(new CliExit({ code: ExitCode.Failure })))

/** A message on one line. */
export const oneLine = (message: string): string => message.replace(/\s*\n\s*/g, " ").trim()

/**
 * What a failure of a Connect operation prints, and its exit code: the URL to
 * open when the user must authorize or install (exit 1), otherwise the error's
 * message (exit 2).
 *
 * @since 0.1.0
 * @category utils
 */
export const report = (error: unknown): Effect.Effect<never, CliExit> => {
  const actionRequired = Effect.fail(new CliExit({ code: ExitCode.ActionRequired }))
  if (error instanceof UserAuthorizationRequired && error.authorizeUrl !== undefined) {
    const message = `The user must authorize connector "${error.connector}" first. Open this URL:`
    return Effect.zipRight(printError(error.code, message, error.authorizeUrl), actionRequired)
  }
  if (error instanceof ConnectorInstallationRequired && error.installUrl !== undefined) {
    const message = `Connector "${error.connector}" must be installed for this request. Open this URL:`
    return Effect.zipRight(printError(error.code, message, error.installUrl), actionRequired)
  }
  if (error instanceof UserAuthorizationRequired || error instanceof ConnectorInstallationRequired) {
    return Effect.zipRight(printError(error.code, oneLine(error.message)), actionRequired)
  }
  if (isConnectError(error) || error instanceof Error) return fail(error.message, codeOf(error))
  return fail(String(error), "error")
}

/** The code of an error for JSON: its wire code, or its tag. */
const codeOf = (error: object): string => {
  if ("code" in error && typeof error.code === "string") return error.code
  if ("_tag" in error && typeof error._tag === "string") {
    return error._tag.replace(/(?<=[a-z])(?=[A-Z])/g, "_").toLowerCase()
  }
  return "error"
}

/**
 * Asks "`verb` `what`?" on a terminal, unless `yes`; without a terminal,
 * refuses (pass `--yes`). A "no" ends the command with "Nothing was `done`."
 *
 * @since 0.1.0
 * @category utils
 */
export const confirm = (options: {
  readonly yes: boolean
  readonly verb: string
  readonly done: string
  readonly what: string
}): Effect.Effect<void, CliExit, Terminal.Terminal> =>
  Effect.gen(function* () {
    if (options.yes) return
    if (process.stdin.isTTY !== true) {
      return yield* fail(
        `Refusing to ${options.verb.toLowerCase()} ${options.what} without confirmation: pass --yes (stdin is not a terminal)`
      )
    }
    const confirmed = yield* Prompt.confirm({ message: `${options.verb} ${options.what}?`, initial: false }).pipe(
      Effect.catchAll(() => Effect.succeed(false))
    )
    if (!confirmed) return yield* fail(`Nothing was ${options.done}.`)
  })
