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

/**
 * Prints one line on stderr and stops with exit code 2.
 *
 * @since 0.1.0
 * @category utils
 */
export const fail = (message: string): Effect.Effect<never, CliExit> =>
  Effect.zipRight(Console.error(oneLine(message)), Effect.fail(new CliExit({ code: ExitCode.Failure })))

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
  if (error instanceof UserAuthorizationRequired && error.authorizeUrl !== undefined) {
    return Effect.zipRight(
      Console.error(
        `The user must authorize connector "${error.connector}" first. Open this URL:\n${error.authorizeUrl}`
      ),
      Effect.fail(new CliExit({ code: ExitCode.ActionRequired }))
    )
  }
  if (error instanceof ConnectorInstallationRequired && error.installUrl !== undefined) {
    return Effect.zipRight(
      Console.error(
        `Connector "${error.connector}" must be installed for this request. Open this URL:\n${error.installUrl}`
      ),
      Effect.fail(new CliExit({ code: ExitCode.ActionRequired }))
    )
  }
  if (error instanceof UserAuthorizationRequired || error instanceof ConnectorInstallationRequired) {
    return Effect.zipRight(
      Console.error(oneLine(error.message)),
      Effect.fail(new CliExit({ code: ExitCode.ActionRequired }))
    )
  }
  if (isConnectError(error) || error instanceof Error) return fail(error.message)
  return fail(String(error))
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
