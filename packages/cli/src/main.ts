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
import * as Descriptor from "@effect/cli/CommandDescriptor"
import { isValidationError } from "@effect/cli/ValidationError"
import * as NodeContext from "@effect/platform-node/NodeContext"
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import { Cause, Console, Effect, Either, Exit, HashSet } from "effect"
import * as Argv from "./Argv.js"
import * as Authorize from "./Authorize.js"
import * as Completions from "./Completions.js"
import * as Connectors from "./Connectors.js"
import * as Events from "./Events.js"
import { CliExit, ExitCode, interruptedExitCode, printError, setErrorFormat } from "./Exit.js"
import * as Help from "./Help.js"
import * as Install from "./Install.js"
import * as Installations from "./Installations.js"
import * as Links from "./Links.js"
import * as Projects from "./Projects.js"
import * as RevokeTokens from "./RevokeTokens.js"
import * as Serve from "./Serve.js"
import * as Token from "./Token.js"
import * as Webhooks from "./Webhooks.js"

const SUMMARY = "short-lived provider tokens from a Connect server, and the self-hosted broker"
const EXAMPLE = "CONNECT_URL=http://127.0.0.1:4100 CONNECT_TOKEN=ck_... connect token acme/api --subject app"
const VERSION = "0.1.0"

const completions = Completions.make((shell) =>
  shell === "bash"
    ? Command.getBashCompletions(connect, "connect")
    : shell === "zsh"
      ? Command.getZshCompletions(connect, "connect")
      : Command.getFishCompletions(connect, "connect")
)

const commands = [
  Token.command,
  Authorize.command,
  Install.command,
  RevokeTokens.command,
  Serve.command,
  Connectors.command,
  Installations.command,
  Links.attach,
  Links.detach,
  Projects.projects,
  Projects.keys,
  Webhooks.webhooks,
  Events.command,
  completions
] as const

// While @effect/cli parses the command line, what it prints is a usage error.
let parsing = false

const connect = Command.make("connect").pipe(
  Command.withDescription(`${SUMMARY}\n\nExample: ${EXAMPLE}`),
  Command.withSubcommands(commands),
  Command.transformHandler((effect) =>
    Effect.zipRight(
      Effect.sync(() => (parsing = false)),
      effect
    )
  )
)

/** What the help says of every command, for the help and for reading the command line. */
const helpTree: Help.CommandHelp = {
  path: [],
  summary: SUMMARY,
  details: [],
  examples: [EXAMPLE],
  args: [],
  options: [],
  children: commands.map((command): Help.CommandHelp => {
    const descriptor: Descriptor.Command<unknown> = command.descriptor
    return Help.describe(descriptor, [HashSet.values(Descriptor.getNames(descriptor)).next().value ?? ""])
  })
}

const cli = Command.run(connect, { name: "connect", version: VERSION })

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
  return Either.match(Argv.prepare(helpTree, args), {
    onLeft: (error) =>
      Effect.sync(() => (exitCode = ExitCode.Failure)).pipe(Effect.zipRight(printError("usage", error.message))),
    onRight: (prepared) =>
      prepared.help
        ? Console.log(
            prepared.command.path.length === 0
              ? Help.renderTop({ version: VERSION, summary: SUMMARY, commands: helpTree.children, example: EXAMPLE })
              : Help.renderCommand(prepared.command)
          )
        : run(prepared, usage)
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
