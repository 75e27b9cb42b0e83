/**
 * The `connect` command line as a value and as a program: its commands and
 * what their help says (read once from their descriptors), and `program` /
 * `run`, which the `connect` binary runs in a process of its own and tests
 * and embedding tools run in-process, with their own output streams and
 * environment.
 *
 * Exit codes: 0 success; 1 the user must authorize or install first (the URL
 * to open is printed on stderr); 2 any other failure; 3 `authorize` ended on
 * an authorization that awaits the application's confirmation; 130
 * `authorize` stopped with Ctrl+C while it waited.
 *
 * @since 0.1.0
 */
import { Console as NodeConsole } from "node:console"
import { Writable } from "node:stream"
import * as Command from "@effect/cli/Command"
import * as Descriptor from "@effect/cli/CommandDescriptor"
import { isValidationError } from "@effect/cli/ValidationError"
import * as NodeContext from "@effect/platform-node/NodeContext"
import { Cause, ConfigProvider, Console, Effect, Either, Exit, HashSet } from "effect"
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
import * as Providers from "./Providers.js"
import * as RevokeTokens from "./RevokeTokens.js"
import * as Serve from "./Serve.js"
import * as Token from "./Token.js"
import * as Webhooks from "./Webhooks.js"

/** @since 0.1.0 */
export const SUMMARY = "short-lived provider tokens from a Connect server, and the self-hosted broker"
/** @since 0.1.0 */
export const EXAMPLE = "CONNECT_URL=http://127.0.0.1:4100 CONNECT_TOKEN=ck_... connect token acme/api --subject app"
/** @since 0.1.0 */
export const VERSION = "0.1.0"

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
  Providers.command,
  Installations.command,
  Links.attach,
  Links.detach,
  Projects.projects,
  Projects.keys,
  Webhooks.webhooks,
  Events.command,
  completions
] as const

/**
 * The `connect` command with its subcommands.
 *
 * @since 0.1.0
 * @category commands
 */
export const connect = Command.make("connect").pipe(
  Command.withDescription(`${SUMMARY}\n\nExample: ${EXAMPLE}`),
  Command.withSubcommands(commands)
)

/**
 * What the help says of every command, for the help and for reading the command line.
 *
 * @since 0.1.0
 * @category help
 */
export const helpTree: Help.CommandHelp = {
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

/**
 * The help `prepared` asks for: the top level's, or a command's.
 *
 * @since 0.1.0
 * @category help
 */
export const helpOf = (prepared: Argv.Prepared): string =>
  prepared.command.path.length === 0
    ? Help.renderTop({ version: VERSION, summary: SUMMARY, commands: helpTree.children, example: EXAMPLE })
    : Help.renderCommand(prepared.command)

// biome-ignore lint/suspicious/noControlCharactersInRegex: ANSI escapes are what it removes.
const ansi = /\u001b\[[0-9;]*m/g

const strip = (args: ReadonlyArray<unknown>) =>
  args.map((arg) => (typeof arg === "string" ? arg.replace(ansi, "") : arg))

/** Whether @effect/cli is still parsing the command line: what it prints then is a usage error. */
interface Parsing {
  now: boolean
}

/**
 * The console, without colours unless `colours` (@effect/cli styles its
 * errors whatever the output); with `--format json`, what @effect/cli prints
 * before the command runs (its usage errors) is kept in `usage`, to be
 * printed as JSON.
 */
const cliConsole = (
  console: Console.Console,
  colours: boolean,
  parsing: Parsing,
  usage: Array<string> | undefined
): Console.Console => {
  const clean = (args: ReadonlyArray<unknown>) => (colours ? args : strip(args))
  const error = (...args: ReadonlyArray<unknown>) => {
    if (usage !== undefined && parsing.now) usage.push(strip(args).map(String).join(" "))
    else console.unsafe.error(...clean(args))
  }
  return {
    ...console,
    log: (...args) => console.log(...clean(args)),
    error: (...args) => Effect.sync(() => error(...args)),
    unsafe: { ...console.unsafe, log: (...args) => console.unsafe.log(...clean(args)), error }
  }
}

/** Runs the prepared command line; succeeds with the exit code, every failure printed. */
const runPrepared = (
  argv: ReadonlyArray<string>,
  prepared: Argv.Prepared,
  parsing: Parsing,
  usage: Array<string> | undefined
): Effect.Effect<number, never, NodeContext.NodeContext> => {
  const cli = Command.run(
    Command.transformHandler(connect, (effect) =>
      Effect.zipRight(
        Effect.sync(() => {
          parsing.now = false
        }),
        effect
      )
    ),
    { name: "connect", version: VERSION }
  )
  return Effect.suspend(() => {
    parsing.now = true
    return cli([...argv.slice(0, 2), ...prepared.args])
  }).pipe(
    Effect.as<number>(ExitCode.Success),
    Effect.catchAll((error) => {
      parsing.now = false
      if (error instanceof CliExit) return Effect.succeed(error.code)
      // @effect/cli has printed a usage error already, unless it was kept for JSON.
      const printed = isValidationError(error)
        ? usage === undefined
          ? Effect.void
          : printError("usage", usage.join(" ").trim() || "Invalid command line")
        : printError("error", error instanceof Error ? error.message : String(error))
      return Effect.as(printed, ExitCode.Failure)
    })
  )
}

/**
 * The `connect` command on `argv` (as `process.argv`: the Node binary and the
 * script first), its failures printed; succeeds with the exit code.
 * `colours`: whether its output may keep @effect/cli's styles.
 *
 * @since 0.1.0
 * @category running
 */
export const program = (
  argv: ReadonlyArray<string>,
  options: { readonly colours: boolean }
): Effect.Effect<number, never, NodeContext.NodeContext> =>
  Effect.suspend(() => {
    const args = argv.slice(2)
    const format = Argv.formatOf(args)
    setErrorFormat(format)
    const usage = format === "json" ? [] : undefined
    const parsing: Parsing = { now: false }
    const ran: Effect.Effect<number, never, NodeContext.NodeContext> = Either.match(Argv.prepare(helpTree, args), {
      onLeft: (error) => Effect.as(printError("usage", error.message), ExitCode.Failure),
      onRight: (prepared) =>
        prepared.help
          ? Effect.as(Console.log(helpOf(prepared)), ExitCode.Success)
          : runPrepared(argv, prepared, parsing, usage)
    })
    return Console.consoleWith((console) =>
      Console.withConsole(ran, cliConsole(console, options.colours, parsing, usage))
    )
  })

/** Where an in-process run writes: `process.stdout` or anything with a `write`. */
export interface Output {
  readonly write: (chunk: string) => unknown
  readonly isTTY?: boolean | undefined
}

/**
 * The options of an in-process run: its output streams, the environment it
 * reads its settings from (in place of `process.env`), and what stops it.
 *
 * @since 0.1.0
 * @category running
 */
export interface RunOptions {
  readonly stdout: Output
  readonly stderr: Output
  readonly env: Readonly<Record<string, string | undefined>>
  /** Interrupts the run when aborted, as Ctrl+C does the binary's. */
  readonly signal?: AbortSignal | undefined
}

/** A stream over `output`, written at once (Node's console wants a stream). */
const writable = (output: Output): Writable =>
  new Writable({
    decodeStrings: false,
    write: (chunk: string | Buffer, _encoding, done) => {
      output.write(typeof chunk === "string" ? chunk : chunk.toString("utf8"))
      done()
    }
  })

/** An Effect console writing through a Node console. */
const consoleOf = (unsafe: Console.UnsafeConsole): Console.Console => ({
  [Console.TypeId]: Console.TypeId,
  assert: (condition, ...args) => Effect.sync(() => unsafe.assert(condition, ...args)),
  clear: Effect.sync(() => unsafe.clear()),
  count: (label) => Effect.sync(() => unsafe.count(label)),
  countReset: (label) => Effect.sync(() => unsafe.countReset(label)),
  debug: (...args) => Effect.sync(() => unsafe.debug(...args)),
  dir: (item, options) => Effect.sync(() => unsafe.dir(item, options)),
  dirxml: (...args) => Effect.sync(() => unsafe.dirxml(...args)),
  error: (...args) => Effect.sync(() => unsafe.error(...args)),
  group: (options) =>
    Effect.sync(() => (options?.collapsed ? unsafe.groupCollapsed(options.label) : unsafe.group(options?.label))),
  groupEnd: Effect.sync(() => unsafe.groupEnd()),
  info: (...args) => Effect.sync(() => unsafe.info(...args)),
  log: (...args) => Effect.sync(() => unsafe.log(...args)),
  table: (data, properties) => Effect.sync(() => unsafe.table(data, properties)),
  time: (label) => Effect.sync(() => unsafe.time(label)),
  timeEnd: (label) => Effect.sync(() => unsafe.timeEnd(label)),
  timeLog: (label, ...args) => Effect.sync(() => unsafe.timeLog(label, ...args)),
  trace: (...args) => Effect.sync(() => unsafe.trace(...args)),
  warn: (...args) => Effect.sync(() => unsafe.warn(...args)),
  unsafe
})

/**
 * Runs `connect` with `args` (what follows the command name) in this process,
 * printing to `options.stdout` and `options.stderr` and reading its settings
 * from `options.env`; resolves with the exit code it would exit with. Whether
 * it may prompt, draw a spinner or open a browser still depends on this
 * process's own stdin, stdout and stderr being terminals.
 *
 * @since 0.1.0
 * @category running
 */
export const run = async (args: ReadonlyArray<string>, options: RunOptions): Promise<number> => {
  const console = new NodeConsole({ stdout: writable(options.stdout), stderr: writable(options.stderr) })
  const env = new Map<string, string>()
  for (const [name, value] of Object.entries(options.env)) if (value !== undefined) env.set(name, value)
  const colours = options.env.NO_COLOR === undefined && options.stdout.isTTY === true
  const exit = await program(["node", "connect", ...args], { colours }).pipe(
    Effect.withConfigProvider(ConfigProvider.fromMap(env, { pathDelim: "_", seqDelim: "," })),
    Console.withConsole(consoleOf(console)),
    Effect.provide(NodeContext.layer),
    (effect) => Effect.runPromiseExit(effect, options.signal === undefined ? {} : { signal: options.signal })
  )
  if (Exit.isSuccess(exit)) return exit.value
  if (Cause.isInterruptedOnly(exit.cause)) return interruptedExitCode()
  console.error(Cause.pretty(exit.cause))
  return ExitCode.Failure
}
