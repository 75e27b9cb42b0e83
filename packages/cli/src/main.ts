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
import { Cause, Console, Effect, Either, Exit } from "effect"
import * as Argv from "./Argv.js"
import * as Cli from "./Cli.js"
import { CliExit, ExitCode, interruptedExitCode, printError, setErrorFormat } from "./Exit.js"

// While @effect/cli parses the command line, what it prints is a usage error.
let parsing = false

const cli = Command.run(
  Command.transformHandler(Cli.connect, (effect) =>
    Effect.zipRight(
      Effect.sync(() => {
        parsing = false
      }),
      effect
    )
  ),
  { name: "connect", version: Cli.VERSION }
)

let exitCode: number = ExitCode.Success

// biome-ignore lint/suspicious/noControlCharactersInRegex: ANSI escapes are what it removes.
const ansi = /\u001b\[[0-9;]*m/g

const strip = (args: ReadonlyArray<unknown>) =>
  args.map((arg) => (typeof arg === "string" ? arg.replace(ansi, "") : arg))

/**
 * The console, without colours when NO_COLOR is set or the output is not a
 * terminal (@effect/cli styles its errors whatever the output); with
 * `--format json`, what @effect/cli prints before the command runs (its usage
 * errors) is kept, to be printed as JSON.
 */
const cliConsole = (console: Console.Console, colours: boolean, usage: Array<string> | undefined): Console.Console => {
  const clean = (args: ReadonlyArray<unknown>) => (colours ? args : strip(args))
  const error = (...args: ReadonlyArray<unknown>) => {
    if (usage !== undefined && parsing) usage.push(strip(args).map(String).join(" "))
    else console.unsafe.error(...clean(args))
  }
  return {
    ...console,
    log: (...args) => console.log(...clean(args)),
    error: (...args) => Effect.sync(() => error(...args)),
    unsafe: { ...console.unsafe, log: (...args) => console.unsafe.log(...clean(args)), error }
  }
}

const colours = process.env.NO_COLOR === undefined && process.stdout.isTTY === true

const run = (prepared: Argv.Prepared, usage: Array<string> | undefined) =>
  Effect.suspend(() => {
    parsing = true
    return cli([...process.argv.slice(0, 2), ...prepared.args])
  }).pipe(
    Effect.catchAll((error) => {
      parsing = false
      exitCode = error instanceof CliExit ? error.code : ExitCode.Failure
      if (error instanceof CliExit) return Effect.void
      // @effect/cli has printed a usage error already, unless it was kept for JSON.
      if (isValidationError(error)) {
        return usage === undefined ? Effect.void : printError("usage", usage.join(" ").trim() || "Invalid command line")
      }
      return printError("error", error instanceof Error ? error.message : String(error))
    })
  )

const main = Effect.suspend(() => {
  const args = process.argv.slice(2)
  const format = Argv.formatOf(args)
  setErrorFormat(format)
  const usage = format === "json" ? [] : undefined
  return Either.match(Argv.prepare(Cli.helpTree, args), {
    onLeft: (error) =>
      Effect.sync(() => (exitCode = ExitCode.Failure)).pipe(Effect.zipRight(printError("usage", error.message))),
    onRight: (prepared) => (prepared.help ? Console.log(Cli.helpOf(prepared)) : run(prepared, usage))
  }).pipe(Effect.provide(NodeContext.layer), (effect) =>
    Console.consoleWith((console) => Console.withConsole(effect, cliConsole(console, colours, usage)))
  )
})

NodeRuntime.runMain(main, {
  disableErrorReporting: false,
  teardown: (exit, onExit) => {
    if (Exit.isFailure(exit)) onExit(Cause.isInterruptedOnly(exit.cause) ? interruptedExitCode() : ExitCode.Failure)
    else onExit(exitCode)
  }
})
