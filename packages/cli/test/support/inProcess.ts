/**
 * The `connect` command run in the test's own process (`run` of `src/Cli.ts`), its output collected as the binary's
 * would be, in the environment given: no Node start per command. What only a process can show (exit codes as a shell
 * sees them, signals, the binary itself) stays with the runs of `../../../broker/test/support/cli.ts`.
 */
import { expect } from "vitest"
import type { Run } from "../../../broker/test/support/cli.js"
import { run } from "../../src/Cli.js"

/** A run of the command still going in this process, its output so far growing as it prints. */
export interface InProcess {
  readonly args: ReadonlyArray<string>
  readonly output: { stdout: string; stderr: string }
  /** Whether the command has ended. */
  readonly exited: () => boolean
  readonly done: Promise<Run>
  /** Interrupts the command, as Ctrl+C does the binary's. */
  readonly interrupt: () => void
}

/** Starts the command with `args` in this process, reading its settings from `env` only. */
export const startInProcess = (args: ReadonlyArray<string>, env: Record<string, string>): InProcess => {
  const output = { stdout: "", stderr: "" }
  const controller = new AbortController()
  let exited = false
  const done = run(args, {
    stdout: { write: (chunk) => (output.stdout += chunk) },
    stderr: { write: (chunk) => (output.stderr += chunk) },
    env,
    signal: controller.signal
  }).then(
    (code): Run => {
      exited = true
      return { code, signal: null, ...output }
    },
    (error: unknown) => {
      exited = true
      throw error
    }
  )
  return { args, output, exited: () => exited, done, interrupt: () => controller.abort() }
}

/** Runs the command with `args` in this process to its end. */
export const runInProcess = (args: ReadonlyArray<string>, env: Record<string, string>): Promise<Run> =>
  startInProcess(args, env).done

/** Runs the command as `runInProcess` does, and checks as it ends that it printed none of `secrets` (naming the command). */
export const runInProcessPrintingNone = async (
  secrets: ReadonlyArray<string>,
  args: ReadonlyArray<string>,
  env: Record<string, string>
): Promise<Run> => {
  const result = await runInProcess(args, env)
  for (const secret of secrets) {
    expect(result.stdout, `connect ${args.join(" ")}`).not.toContain(secret)
    expect(result.stderr, `connect ${args.join(" ")}`).not.toContain(secret)
  }
  return result
}

/** Interrupts a run still going after `ms`, so a broken wait fails the test instead of hanging it. */
export const withinInProcess = async (running: InProcess, ms: number): Promise<Run> => {
  const timer = setTimeout(running.interrupt, ms)
  try {
    return await running.done
  } finally {
    clearTimeout(timer)
  }
}
