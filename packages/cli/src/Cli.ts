/**
 * The `connect` command line as a program: run by the `connect` binary in a
 * process of its own, or in-process with its own output streams and
 * environment (`run`), as tests and embedding tools do.
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
import { isValidationError } from "@effect/cli/ValidationError"
import * as NodeContext from "@effect/platform-node/NodeContext"
import { Cause, ConfigProvider, Console, Effect, Exit } from "effect"
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
  Effect.suspend(() => cli(argv)).pipe(
    Effect.as<number>(ExitCode.Success),
    Effect.catchAll((error) => {
      if (error instanceof CliExit) return Effect.succeed(error.code)
      // @effect/cli has printed a usage error already.
      if (isValidationError(error)) return Effect.succeed(ExitCode.Failure)
      return Effect.as(Console.error(error instanceof Error ? error.message : String(error)), ExitCode.Failure)
    }),
    (effect) =>
      options.colours ? effect : Console.consoleWith((console) => Console.withConsole(effect, plainConsole(console)))
  )

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
