/**
 * The built `connect` binary (`packages/cli/dist/main.js`, so `npm run build` first), run as a user runs it:
 * a process of its own, its output collected, in an environment without the test process's Connect settings.
 */
import { type ChildProcess, spawn } from "node:child_process"
import { fileURLToPath } from "node:url"
import { expect } from "vitest"

/** The built command line. */
export const BIN = fileURLToPath(new URL("../../../cli/dist/main.js", import.meta.url))

/** The built broker, as `npm run broker` runs it. */
export const BROKER_MAIN = fileURLToPath(new URL("../../dist/main.js", import.meta.url))

/** How a run of the command ended, and all it printed. */
export interface Run {
  readonly code: number | null
  readonly signal: NodeJS.Signals | null
  readonly stdout: string
  readonly stderr: string
}

/** A run of the command still going, its output so far growing as it prints. */
export interface Running {
  readonly child: ChildProcess
  readonly output: { stdout: string; stderr: string }
  /** Whether the process has ended and closed its output. */
  readonly exited: () => boolean
  readonly done: Promise<Run>
}

/** The environment of the test process without any Connect settings, and without colours. */
export const cleanEnv = (): Record<string, string> => {
  const env: Record<string, string> = {}
  for (const [name, value] of Object.entries(process.env)) {
    if (value === undefined || name.startsWith("CONNECT_") || name === "VERCEL_OIDC_TOKEN") continue
    env[name] = value
  }
  return { ...env, NO_COLOR: "1" }
}

/** Waits `ms` milliseconds. */
export const sleep = (ms: number): Promise<void> => new Promise((wake) => setTimeout(wake, ms))

/**
 * Starts the built binary with pipes (not a terminal): no browser is opened, no spinner drawn.
 * Its stdin is a pipe closed at once, or with `stdin: "ignore"` none at all.
 */
export const start = (
  args: ReadonlyArray<string>,
  env: Record<string, string>,
  options: { readonly cwd?: string; readonly stdin?: "pipe" | "ignore" } = {}
): Running => {
  const child = spawn(process.execPath, [BIN, ...args], {
    env,
    cwd: options.cwd ?? process.cwd(),
    stdio: [options.stdin ?? "pipe", "pipe", "pipe"]
  })
  const output = { stdout: "", stderr: "" }
  child.stdout?.on("data", (chunk: Buffer) => {
    output.stdout += chunk.toString("utf8")
  })
  child.stderr?.on("data", (chunk: Buffer) => {
    output.stderr += chunk.toString("utf8")
  })
  child.stdin?.end()
  let exited = false
  const done = new Promise<Run>((resolveRun, reject) => {
    child.once("error", reject)
    child.once("close", (code, signal) => {
      exited = true
      resolveRun({ code, signal, ...output })
    })
  })
  return { child, output, exited: () => exited, done }
}

/** Runs the built binary to its end as a user would, with stdin a closed pipe (not a terminal). */
export const run = (args: ReadonlyArray<string>, env: Record<string, string>, cwd?: string): Promise<Run> =>
  start(args, env, cwd === undefined ? {} : { cwd }).done

/** Runs the built binary as `run` does, and checks as it ends that it printed none of `secrets` (naming the command). */
export const runPrintingNone = async (
  secrets: ReadonlyArray<string>,
  args: ReadonlyArray<string>,
  env: Record<string, string>
): Promise<Run> => {
  const result = await run(args, env)
  for (const secret of secrets) {
    expect(result.stdout, `connect ${args.join(" ")}`).not.toContain(secret)
    expect(result.stderr, `connect ${args.join(" ")}`).not.toContain(secret)
  }
  return result
}

/** Asserts a refusal: exit code 2, nothing on stdout, one line on stderr. */
export const failsWithOneLine = (result: Run): void => {
  expect(result.code).toBe(2)
  expect(result.stdout).toBe("")
  expect(result.stderr.trim().split("\n")).toHaveLength(1)
}

/** Ends a run that is still going after `ms`, so a broken wait fails the test instead of hanging it. */
export const within = async (running: Running, ms: number): Promise<Run> => {
  const timer = setTimeout(() => running.child.kill("SIGKILL"), ms)
  try {
    return await running.done
  } finally {
    clearTimeout(timer)
  }
}

/**
 * Reads the output of a run (of the binary, or in the test's process) every `interval` ms, at most `attempts` times,
 * until `read` finds what it looks for; `undefined` when it never does, or when the run ends without having printed it.
 */
export const waitForOutput = async <A>(
  running: Pick<Running, "output" | "exited">,
  read: (output: { readonly stdout: string; readonly stderr: string }) => A | undefined,
  { attempts, interval }: { readonly attempts: number; readonly interval: number }
): Promise<A | undefined> => {
  for (let attempt = 0; attempt < attempts; attempt++) {
    const found = read(running.output)
    if (found !== undefined || running.exited()) return found
    await sleep(interval)
  }
  return undefined
}
