#!/usr/bin/env node
/**
 * The `connect` command line: gets and revokes provider tokens through a
 * Connect server, connects users' accounts (`authorize`), and runs the broker.
 *
 * Exit codes: 0 success; 1 the user must authorize or install first (the URL
 * to open is printed on stderr); 2 any other failure; 3 `authorize` ended on
 * an authorization that awaits the application's confirmation; 130
 * `authorize` stopped with Ctrl+C while it waited.
 *
 * @since 0.1.0
 */
import * as Command from "@effect/cli/Command"
import { isValidationError } from "@effect/cli/ValidationError"
import * as NodeContext from "@effect/platform-node/NodeContext"
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import { Cause, Console, Effect, Exit } from "effect"
import * as Authorize from "./Authorize.js"
import * as Connectors from "./Connectors.js"
import * as Events from "./Events.js"
import { CliExit, ExitCode, interruptedExitCode } from "./Exit.js"
import * as Install from "./Install.js"
import * as Installations from "./Installations.js"
import * as Links from "./Links.js"
import * as Projects from "./Projects.js"
import * as Providers from "./Providers.js"
import * as RevokeTokens from "./RevokeTokens.js"
import * as Serve from "./Serve.js"
import * as Token from "./Token.js"
import * as Webhooks from "./Webhooks.js"

const connect = Command.make("connect").pipe(
  Command.withDescription(
    [
      "Short-lived provider tokens from a Connect server, and the self-hosted broker.",
      "Connection: --url/--token, or CONNECT_URL and CONNECT_TOKEN (then VERCEL_OIDC_TOKEN).",
      "",
      "Example: CONNECT_URL=http://127.0.0.1:4100 CONNECT_TOKEN=... connect token acme/api --subject app"
    ].join("\n")
  ),
  Command.withSubcommands([
    Token.command,
    Authorize.command,
    Install.command,
    RevokeTokens.command,
    Serve.command,
    Connectors.command,
    Providers.command,
    Installations.command,
    Links.attach,
    Links.detach,
    Projects.projects,
    Projects.keys,
    Webhooks.webhooks,
    Events.command
  ])
)

const cli = Command.run(connect, { name: "connect", version: "0.1.0" })

let exitCode: number = ExitCode.Success

// biome-ignore lint/suspicious/noControlCharactersInRegex: ANSI escapes are what it removes.
const ansi = /\u001b\[[0-9;]*m/g

/**
 * The console, without colours when NO_COLOR is set or the output is not a
 * terminal: @effect/cli styles its help and errors whatever the output.
 */
const plainConsole = (console: Console.Console): Console.Console => {
  const strip = (args: ReadonlyArray<unknown>) =>
    args.map((arg) => (typeof arg === "string" ? arg.replace(ansi, "") : arg))
  return {
    ...console,
    log: (...args) => console.log(...strip(args)),
    error: (...args) => console.error(...strip(args)),
    unsafe: {
      ...console.unsafe,
      log: (...args) => console.unsafe.log(...strip(args)),
      error: (...args) => console.unsafe.error(...strip(args))
    }
  }
}

const colours = process.env.NO_COLOR === undefined && process.stdout.isTTY === true

const main = Effect.suspend(() => cli(process.argv)).pipe(
  Effect.catchAll((error) => {
    if (error instanceof CliExit) exitCode = error.code
    // @effect/cli has printed a usage error already.
    else if (isValidationError(error)) exitCode = ExitCode.Failure
    else {
      exitCode = ExitCode.Failure
      return Console.error(error instanceof Error ? error.message : String(error))
    }
    return Effect.void
  }),
  Effect.provide(NodeContext.layer),
  (effect) => (colours ? effect : Console.consoleWith((console) => Console.withConsole(effect, plainConsole(console))))
)

NodeRuntime.runMain(main, {
  disableErrorReporting: false,
  teardown: (exit, onExit) => {
    if (Exit.isFailure(exit)) onExit(Cause.isInterruptedOnly(exit.cause) ? interruptedExitCode() : ExitCode.Failure)
    else onExit(exitCode)
  }
})
