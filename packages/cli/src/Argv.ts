/**
 * The command line as the user typed it, made ready for `@effect/cli`: the
 * command it names, whether help was asked for, the output format, and the
 * global options (`--url`, `--token`, `--format`) moved after the command when
 * they were typed before it. A choice given a value it does not accept is
 * refused here, naming the flag and its values.
 *
 * @since 0.1.0
 */
import { closest } from "@effect-connect/broker/Suggest"
import { Either, Schema } from "effect"
import type { CommandHelp, OptionHelp } from "./Help.js"

/**
 * A command line that cannot be run: `detail` names the flag and what it accepts.
 *
 * @since 0.1.0
 * @category errors
 */
export class UsageError extends Schema.TaggedError<UsageError>()("UsageError", { detail: Schema.String }) {
  override get message(): string {
    return this.detail
  }
}

/**
 * @since 0.1.0
 * @category models
 */
export interface Prepared {
  /** The arguments for `@effect/cli`, without the runtime and script. */
  readonly args: ReadonlyArray<string>
  /** The command named (the top level, or a group, when none is). */
  readonly command: CommandHelp
  /** Whether to print the command's help instead of running it. */
  readonly help: boolean
  readonly format: "plain" | "json"
}

/** The options a command takes before or after its name, and `@effect/cli`'s own `--log-level`. */
const HOISTED = new Set(["--url", "--token", "--format"])

/**
 * The levels of `--log-level`.
 *
 * @since 0.1.0
 * @category constants
 */
export const LOG_LEVELS = ["all", "trace", "debug", "info", "warning", "error", "fatal", "none"] as const

const logLevel: OptionHelp = {
  flag: "--log-level",
  alias: undefined,
  value: "<level>",
  choices: LOG_LEVELS,
  description: "",
  default: undefined,
  repeats: false,
  required: false
}

/** The flag of `--name=value` or `--name`, and its value when written inline. */
const split = (arg: string): readonly [string, string | undefined] => {
  const at = arg.indexOf("=")
  return arg.startsWith("--") && at > 0 ? [arg.slice(0, at), arg.slice(at + 1)] : [arg, undefined]
}

// @effect/cli's own `--log-level` and `--completions` take a value too.
const valueTaking = (arg: string): boolean =>
  HOISTED.has(split(arg)[0]) || split(arg)[0] === "--log-level" || split(arg)[0] === "--completions"

/** The options before the command's name: those to move after it, and the others. */
const leading = (head: ReadonlyArray<string>) => {
  const hoisted: Array<string> = []
  const kept: Array<string> = []
  let i = 0
  while (i < head.length && (head[i] ?? "").startsWith("-")) {
    const arg = head[i] ?? ""
    const target = HOISTED.has(split(arg)[0]) ? hoisted : kept
    target.push(arg)
    if (valueTaking(arg) && split(arg)[1] === undefined && i + 1 < head.length) target.push(head[++i] ?? "")
    i++
  }
  return { hoisted, kept, next: i }
}

/** The first choice given a value it does not accept, as an error naming the flag. */
const badChoice = (args: ReadonlyArray<string>, options: ReadonlyArray<OptionHelp>): UsageError | undefined => {
  for (let i = 0; i < args.length; i++) {
    const [flag, inline] = split(args[i] ?? "")
    const option = options.find((o) => o.choices !== undefined && (o.flag === flag || o.alias === flag))
    if (option?.choices === undefined) continue
    const value = inline ?? args[i + 1]
    const allowed = option.choices.join(", ")
    if (value === undefined || (inline === undefined && value.startsWith("--"))) {
      return new UsageError({ detail: `${option.flag} needs a value: one of ${allowed}` })
    }
    if (!option.choices.includes(value)) {
      return new UsageError({ detail: `${option.flag} must be one of ${allowed}, not "${value}"` })
    }
  }
  return undefined
}

/** A word after a group that names none of its commands, with the nearest as a suggestion. */
const unknownCommand = (command: CommandHelp, rest: ReadonlyArray<string>): UsageError | undefined => {
  const word = rest[0]
  if (command.children.length === 0 || word === undefined || word.startsWith("-")) return undefined
  const names = command.children.map((child) => child.path.at(-1) ?? "")
  const near = closest(word, names)
  const where = ["connect", ...command.path].join(" ")
  return new UsageError({
    detail: `${where} has no command "${word}"${near === undefined ? "" : `: did you mean "${near}"?`} Its commands: ${names.join(", ")}`
  })
}

/** The first argument of choices given a value it does not accept, as an error naming the argument. */
const badArgument = (rest: ReadonlyArray<string>, command: CommandHelp): UsageError | undefined => {
  const positional: Array<string> = []
  for (let i = 0; i < rest.length; i++) {
    const arg = rest[i] ?? ""
    if (!arg.startsWith("-")) positional.push(arg)
    else if (split(arg)[1] === undefined && takesValue(command, split(arg)[0])) i++
  }
  for (const [i, arg] of command.args.entries()) {
    const value = positional[i]
    if (arg.choices !== undefined && value !== undefined && !arg.choices.includes(value)) {
      return new UsageError({ detail: `${arg.name} must be one of ${arg.choices.join(", ")}, not "${value}"` })
    }
  }
  return undefined
}

const takesValue = (command: CommandHelp, flag: string): boolean =>
  flag === "--log-level" || command.options.some((o) => (o.flag === flag || o.alias === flag) && o.value !== undefined)

/**
 * Reads the command line (`args` without the runtime and script) against the
 * commands' help.
 *
 * @since 0.1.0
 * @category constructors
 */
export const prepare = (root: CommandHelp, args: ReadonlyArray<string>): Either.Either<Prepared, UsageError> => {
  const end = args.indexOf("--")
  const head = end === -1 ? args : args.slice(0, end)
  const tail = end === -1 ? [] : args.slice(end)
  const { hoisted, kept, next } = leading(head)
  let command = root
  let i = next
  for (; i < head.length; i++) {
    const child = command.children.find((c) => c.path.at(-1) === head[i])
    if (child === undefined) break
    command = child
  }
  const path = head.slice(next, i)
  const rest = head.slice(i)
  const typed = [...kept, ...rest, ...hoisted]
  const builtIn = kept.some((arg) => arg === "--version" || split(arg)[0] === "--completions" || arg === "--wizard")
  const help =
    typed.some((arg) => arg === "-h" || arg === "--help") ||
    (command.children.length > 0 && rest.length === 0 && !builtIn)
  const prepared: Prepared = {
    args: [...kept, ...path, ...rest, ...hoisted, ...tail],
    command,
    help,
    format: formatOf(head)
  }
  if (help) return Either.right(prepared)
  const unknown = unknownCommand(command, rest)
  if (unknown !== undefined) return Either.left(unknown)
  const misplaced = hoisted.map((arg) => split(arg)[0]).find((flag) => HOISTED.has(flag) && !takes(command, flag))
  if (misplaced !== undefined && command.children.length === 0) {
    return Either.left(new UsageError({ detail: `${misplaced} does not apply to connect ${command.path.join(" ")}` }))
  }
  const bad = badChoice(typed, [...command.options, logLevel]) ?? badArgument(rest, command)
  return bad === undefined ? Either.right(prepared) : Either.left(bad)
}

/**
 * The output format the command line asks for (`--format json`, before or
 * after the command): errors are printed in it too.
 *
 * @since 0.1.0
 * @category utils
 */
export const formatOf = (args: ReadonlyArray<string>): "plain" | "json" => {
  const end = args.indexOf("--")
  const head = end === -1 ? args : args.slice(0, end)
  return head.some((arg, j) => arg === "--format=json" || (arg === "--format" && head[j + 1] === "json"))
    ? "json"
    : "plain"
}

const takes = (command: CommandHelp, flag: string): boolean => command.options.some((option) => option.flag === flag)
