/**
 * `connect completions bash|zsh|fish`: prints the shell's completion script.
 *
 * @since 0.1.0
 */
import * as Args from "@effect/cli/Args"
import * as Command from "@effect/cli/Command"
import { Console, Effect } from "effect"

/**
 * The shells a script is printed for.
 *
 * @since 0.1.0
 * @category constants
 */
export const shells = ["bash", "zsh", "fish"] as const

/**
 * @since 0.1.0
 * @category models
 */
export type Shell = (typeof shells)[number]

/**
 * The command, over what makes a shell's script (the whole command line's
 * completions, which include this command: hence a function).
 *
 * @since 0.1.0
 * @category commands
 */
export const make = (script: (shell: Shell) => Effect.Effect<ReadonlyArray<string>>) =>
  Command.make(
    "completions",
    {
      shell: Args.choice(
        shells.map((shell) => [shell, shell] as const),
        { name: "shell" }
      ).pipe(Args.withDescription("bash, zsh or fish"))
    },
    (input) => Effect.flatMap(script(input.shell), (lines) => Console.log(lines.join("\n")))
  ).pipe(
    Command.withDescription(
      [
        "Prints the shell completion script for connect.",
        "",
        "Example: source <(connect completions bash)",
        "Example: connect completions fish > ~/.config/fish/completions/connect.fish"
      ].join("\n")
    )
  )
