/**
 * The help of the `connect` command line, rendered from the commands'
 * own descriptors: what `@effect/cli` knows of each command (its description,
 * arguments and options, through the public `HelpDoc`) without the boilerplate
 * of its generic renderer, within 100 columns.
 *
 * @since 0.1.0
 */
import * as CliConfig from "@effect/cli/CliConfig"
import * as Descriptor from "@effect/cli/CommandDescriptor"
import type * as HelpDoc from "@effect/cli/HelpDoc"
import type * as Span from "@effect/cli/HelpDoc/Span"
import { HashMap, Option } from "effect"

/** The widest line the help prints. */
export const WIDTH = 100

/**
 * An option of a command, as its help shows it.
 *
 * @since 0.1.0
 * @category models
 */
export interface OptionHelp {
  /** `--format`, the name the parser knows. */
  readonly flag: string
  /** `-f`, when there is one. */
  readonly alias: string | undefined
  /** `<text>`, `plain|json`, or nothing for a switch. */
  readonly value: string | undefined
  /** The values a choice accepts. */
  readonly choices: ReadonlyArray<string> | undefined
  readonly description: string
  readonly default: string | undefined
  readonly repeats: boolean
  readonly required: boolean
}

/**
 * A positional argument of a command.
 *
 * @since 0.1.0
 * @category models
 */
export interface ArgumentHelp {
  readonly name: string
  readonly description: string
  /** The values a choice accepts. */
  readonly choices: ReadonlyArray<string> | undefined
}

/**
 * A command (or group of commands) and what its help says.
 *
 * @since 0.1.0
 * @category models
 */
export interface CommandHelp {
  /** The words after `connect`: `["connectors", "list"]`. */
  readonly path: ReadonlyArray<string>
  readonly summary: string
  /** The description's lines after the summary, without its examples. */
  readonly details: ReadonlyArray<string>
  readonly examples: ReadonlyArray<string>
  readonly args: ReadonlyArray<ArgumentHelp>
  readonly options: ReadonlyArray<OptionHelp>
  readonly children: ReadonlyArray<CommandHelp>
}

const spanText = (span: Span.Span): string => {
  switch (span._tag) {
    case "Sequence":
      return spanText(span.left) + spanText(span.right)
    case "Highlight":
    case "Strong":
    case "Weak":
      return spanText(span.value)
    case "Text":
    case "URI":
      return span.value
  }
}

/** The paragraphs of a document, in order. */
const paragraphs = (doc: HelpDoc.HelpDoc): ReadonlyArray<string> => {
  switch (doc._tag) {
    case "Paragraph":
      return [spanText(doc.value)]
    case "Sequence":
      return [...paragraphs(doc.left), ...paragraphs(doc.right)]
    case "Enumeration":
      return doc.elements.flatMap(paragraphs)
    default:
      return []
  }
}

/** The parts of a help document: the blocks that follow each header. */
const sections = (doc: HelpDoc.HelpDoc): Map<string, Array<HelpDoc.HelpDoc>> => {
  const result = new Map<string, Array<HelpDoc.HelpDoc>>()
  let current = ""
  const visit = (node: HelpDoc.HelpDoc): void => {
    if (node._tag === "Sequence") {
      visit(node.left)
      visit(node.right)
    } else if (node._tag === "Header") {
      current = spanText(node.value)
    } else if (node._tag !== "Empty") {
      result.set(current, [...(result.get(current) ?? []), node])
    }
  }
  visit(doc)
  return result
}

const definitions = (blocks: ReadonlyArray<HelpDoc.HelpDoc>): ReadonlyArray<readonly [string, HelpDoc.HelpDoc]> => {
  const found: Array<readonly [string, HelpDoc.HelpDoc]> = []
  const visit = (node: HelpDoc.HelpDoc): void => {
    if (node._tag === "Sequence") {
      visit(node.left)
      visit(node.right)
    } else if (node._tag === "DescriptionList") {
      for (const [span, block] of node.definitions) found.push([spanText(span), block])
    }
  }
  for (const block of blocks) visit(block)
  return found
}

// What @effect/cli adds to every option's description, which says nothing of this option.
const boilerplate =
  /^(One of the following|A user-defined piece|A true or false value|An integer|A floating point|A date|This setting is optional|This (option|argument) (may|must) be repeated)/

const DEFAULT = /^Default: (.*?)\.?$/

const describeParagraphs = (block: HelpDoc.HelpDoc) => {
  const texts = paragraphs(block)
  const own = texts.filter((text) => !boilerplate.test(text) && !DEFAULT.test(text))
  const defaulted = texts.map((text) => DEFAULT.exec(text)?.[1]).find((value) => value !== undefined)
  return {
    description: own.join(" ").replace(/\s+/g, " ").trim(),
    default: defaulted,
    optional: texts.some((text) => text.startsWith("This setting is optional")),
    repeats: texts.some((text) => / be repeated/.test(text)),
    switch: texts.some((text) => text.startsWith("A true or false value"))
  }
}

const placeholder = (type: string): string => (type === "redacted" ? "<secret>" : `<${type}>`)

const toOption = ([span, block]: readonly [string, HelpDoc.HelpDoc]): OptionHelp => {
  const match = /^\(?(?:(-\w), )?(--[\w-]+)\)?(?: (.*?))?(\.\.\.| \d+\+)?$/.exec(span.trim())
  const said = describeParagraphs(block)
  const value = match?.[3]
  const choices = value?.includes(" | ") === true ? value.split(" | ") : undefined
  return {
    flag: match?.[2] ?? span,
    alias: match?.[1],
    value: value === undefined ? undefined : choices !== undefined ? choices.join("|") : placeholder(value),
    choices,
    description: said.description,
    default: said.default,
    repeats: said.repeats,
    required: !said.optional && !said.switch && !(said.repeats && match?.[4] === "...")
  }
}

const splitDescription = (texts: ReadonlyArray<string>) => {
  const lines = texts.flatMap((text) => text.split("\n")).map((line) => line.trimEnd())
  const examples: Array<string> = []
  const rest: Array<string> = []
  for (const line of lines) {
    if (line.startsWith("Example: ")) examples.push(line.slice("Example: ".length))
    else if (/^\s+\S/.test(line) && examples.length > 0) examples[examples.length - 1] += `\n${line}`
    else if (line.length > 0) rest.push(line)
  }
  return { summary: rest[0] ?? "", details: rest.slice(1), examples }
}

const config = CliConfig.make({ showBuiltIns: false })

/**
 * The help of a command's descriptor; a group's children come in the order
 * its help lists them.
 *
 * @since 0.1.0
 * @category constructors
 */
export const describe = (command: Descriptor.Command<unknown>, path: ReadonlyArray<string>): CommandHelp => {
  const parts = sections(Descriptor.getHelp(command, config))
  const description = splitDescription((parts.get("DESCRIPTION") ?? []).flatMap(paragraphs))
  const listed = (parts.get("COMMANDS") ?? []).flatMap(paragraphs).map((text) => text.split(/\s/)[0] ?? "")
  const children = Descriptor.getSubcommands(command)
  return {
    path,
    ...description,
    args: definitions(parts.get("ARGUMENTS") ?? []).map(([name, block]) => ({
      name: name.trim(),
      description: describeParagraphs(block).description,
      choices: paragraphs(block)
        .map((text) => /^One of the following: (.*)$/.exec(text)?.[1]?.split(", "))
        .find((choices) => choices !== undefined)
    })),
    options: definitions(parts.get("OPTIONS") ?? []).map(toOption),
    children: listed.flatMap((name) => {
      const child = HashMap.get(children, name)
      return Option.isNone(child) ? [] : [describe(child.value, [...path, name])]
    })
  }
}

/** `text` cut into lines of at most `width` columns, at spaces. */
export const wrap = (text: string, width: number): ReadonlyArray<string> => {
  const lines: Array<string> = []
  let line = ""
  for (const word of text.split(/\s+/).filter((w) => w.length > 0)) {
    if (line.length > 0 && line.length + 1 + word.length > width) {
      lines.push(line)
      line = word
    } else line = line.length === 0 ? word : `${line} ${word}`
  }
  if (line.length > 0) lines.push(line)
  return lines
}

/** Rows of a two-column table: the name, then its text wrapped beside it (or below a long name). */
export const table = (rows: ReadonlyArray<readonly [string, string]>, maxName = 30): ReadonlyArray<string> => {
  const column = Math.min(maxName, Math.max(0, ...rows.map(([name]) => name.length))) + 4
  return rows.flatMap(([name, text]) => {
    const wrapped = wrap(text, WIDTH - column)
    const head = `  ${name}`
    if (head.length + 2 > column) return [head, ...wrapped.map((line) => " ".repeat(column) + line)]
    const [first = "", ...rest] = wrapped
    return [`${head.padEnd(column)}${first}`.trimEnd(), ...rest.map((line) => " ".repeat(column) + line)]
  })
}

const optionName = (option: OptionHelp): string =>
  `${option.alias === undefined ? "" : `${option.alias}, `}${option.flag}${option.value === undefined ? "" : ` ${option.value}`}`

const optionText = (option: OptionHelp): string => {
  const notes = [
    option.required ? "required" : undefined,
    option.default === undefined ? undefined : `default: ${option.default}`,
    option.repeats ? "repeatable" : undefined
  ].filter((note) => note !== undefined)
  return notes.length === 0 ? option.description : `${option.description} [${notes.join("; ")}]`
}

const usageLine = (help: CommandHelp): string => {
  const required = help.options
    .filter((option) => option.required)
    .map(
      (option) => `${option.flag}${option.value === undefined ? "" : ` ${option.value}`}${option.repeats ? "..." : ""}`
    )
  const optional = help.options.some((option) => !option.required) ? ["[options]"] : []
  const args = help.args.map((arg) => arg.name)
  return ["connect", ...help.path, ...args, ...required, ...optional].join(" ")
}

/**
 * The help of one command: usage, description, arguments, options (each with
 * its default, and whether it is required or repeats), examples; for a group,
 * its commands.
 *
 * @since 0.1.0
 * @category rendering
 */
export const renderCommand = (help: CommandHelp): string => {
  const lines: Array<string> = []
  const usage = help.children.length > 0 ? `connect ${help.path.join(" ")} <command> [options]` : usageLine(help)
  lines.push(...wrap(`Usage: ${usage}`, WIDTH), "")
  lines.push(...[help.summary, ...help.details].flatMap((line) => wrap(line, WIDTH)))
  if (help.children.length > 0) {
    lines.push("", "Commands:")
    lines.push(...table(help.children.map((child) => [child.path.join(" "), child.summary])))
  }
  if (help.args.length > 0) {
    lines.push("", "Arguments:")
    lines.push(...table(help.args.map((arg) => [arg.name, arg.description])))
  }
  if (help.options.length > 0) {
    lines.push("", "Options:")
    lines.push(...table(help.options.map((option) => [optionName(option), optionText(option)])))
  }
  lines.push("", "Global options:")
  lines.push(
    ...table([
      ["--log-level <level>", "Logs from this level up: all|trace|debug|info|warning|error|fatal|none"],
      ["-h, --help", "This help"]
    ])
  )
  if (help.examples.length > 0) {
    lines.push("", help.examples.length === 1 ? "Example:" : "Examples:")
    lines.push(...help.examples.flatMap((example) => example.split("\n").map((line) => `  ${line}`)))
  }
  if (help.children.length > 0)
    lines.push("", `Run connect ${help.path.join(" ")} <command> --help for a command's options.`)
  return lines.join("\n")
}

/** A summary up to its first colon or parenthesis: what fits on the top-level's one line. */
const headline = (summary: string): string => summary.split(/: | \(/)[0]?.replace(/\.$/, "") ?? summary

/**
 * The top-level help: the commands, one line each, the global options and
 * one example.
 *
 * @since 0.1.0
 * @category rendering
 */
export const renderTop = (options: {
  readonly version: string
  readonly summary: string
  readonly commands: ReadonlyArray<CommandHelp>
  readonly example: string
}): string =>
  [
    `connect ${options.version}: ${options.summary}`,
    "",
    "Usage: connect <command> [options]",
    "",
    "Commands:",
    ...table(
      options.commands.map((command) => [
        command.path.join(" "),
        command.children.length > 0
          ? `${headline(command.summary)}: ${command.children.map((child) => child.path.at(-1)).join(", ")}`
          : headline(command.summary)
      ])
    ),
    "",
    "Global options (before or after the command, where the command takes them):",
    ...table([
      ["--url <url>", "The Connect server or broker (default: CONNECT_URL)"],
      ["--token <secret>", "The credential (default: CONNECT_TOKEN; admin commands: CONNECT_ADMIN_TOKEN)"],
      ["--format plain|json", "Output, and errors on stderr, as text or JSON (default: plain)"],
      ["--log-level <level>", "Logs from this level up: all|trace|debug|info|warning|error|fatal|none"],
      ["-h, --help", "This help; connect <command> --help for a command's options"],
      ["--version", "The version"]
    ]),
    "",
    "Example:",
    `  ${options.example}`
  ].join("\n")
