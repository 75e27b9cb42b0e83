#!/usr/bin/env node
/**
 * The `connect` binary: the command line of `Cli.ts` in a process of its own,
 * its exit code the process's (Ctrl+C and SIGTERM interrupt it).
 *
 * @since 0.1.0
 */
import * as NodeContext from "@effect/platform-node/NodeContext"
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import { Cause, Effect, Exit } from "effect"
import { program } from "./Cli.js"
import { ExitCode, interruptedExitCode } from "./Exit.js"

let exitCode: number = ExitCode.Success

const colours = process.env.NO_COLOR === undefined && process.stdout.isTTY === true

const main = program(process.argv, { colours }).pipe(
  Effect.flatMap((code) =>
    Effect.sync(() => {
      exitCode = code
    })
  ),
  Effect.provide(NodeContext.layer)
)

NodeRuntime.runMain(main, {
  disableErrorReporting: false,
  teardown: (exit, onExit) => {
    if (Exit.isFailure(exit)) onExit(Cause.isInterruptedOnly(exit.cause) ? interruptedExitCode() : ExitCode.Failure)
    else onExit(exitCode)
  }
})
