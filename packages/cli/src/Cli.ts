/**
 * The `connect` command line as a value: its commands, and what their help
 * says (read once from their descriptors), for `main.ts` to run and for tests.
 *
 * @since 0.1.0
 */
import * as Command from "@effect/cli/Command"
import * as Descriptor from "@effect/cli/CommandDescriptor"
import { HashSet } from "effect"
import type * as Argv from "./Argv.js"
import * as Authorize from "./Authorize.js"
import * as Completions from "./Completions.js"
import * as Connectors from "./Connectors.js"
import * as Events from "./Events.js"
import * as Help from "./Help.js"
import * as Install from "./Install.js"
import * as Installations from "./Installations.js"
import * as Links from "./Links.js"
import * as Projects from "./Projects.js"
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
