/**
 * The built broker run as a user runs it: `node packages/broker/dist/main.js` in a fresh
 * directory, with nothing set but where to listen. It creates its database and
 * its encryption key there, warns about the key without printing it, serves,
 * and stops on SIGTERM; with a broken configuration file it refuses to start
 * and says which field is wrong.
 *
 * It runs the build (`npm test` builds first), not the sources.
 */
import { type ChildProcess, spawn } from "node:child_process"
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import { afterEach, describe, expect, it } from "vitest"
import { freePort } from "./support/broker.js"

const MAIN = fileURLToPath(new URL("../dist/main.js", import.meta.url))

interface Exit {
  readonly code: number | null
  readonly signal: NodeJS.Signals | null
}

interface Running {
  readonly child: ChildProcess
  /** Everything printed so far, stdout and stderr together. */
  readonly output: () => string
  readonly stderr: () => string
  readonly exited: Promise<Exit>
}

const running: Array<Running> = []
const directories: Array<string> = []

afterEach(async () => {
  for (const broker of running.splice(0)) {
    if (broker.child.exitCode === null && broker.child.signalCode === null) {
      broker.child.kill("SIGKILL")
      await broker.exited
    }
  }
  for (const directory of directories.splice(0)) rmSync(directory, { recursive: true, force: true })
})

const freshDirectory = (): string => {
  const directory = mkdtempSync(join(tmpdir(), "connect-run-"))
  directories.push(directory)
  return directory
}

/** Starts the built broker in `cwd` with the inherited environment minus every `CONNECT_*`, plus `env`. */
const startBroker = (cwd: string, env: Readonly<Record<string, string>>): Running => {
  expect(existsSync(MAIN), "packages/broker/dist/main.js is missing: run `npm run build` first").toBe(true)
  const inherited = Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith("CONNECT_")))
  const child = spawn(process.execPath, [MAIN], {
    cwd,
    env: { ...inherited, ...env },
    stdio: ["ignore", "pipe", "pipe"]
  })
  let output = ""
  let stderr = ""
  child.stdout?.on("data", (chunk: Buffer) => {
    output += chunk.toString("utf8")
  })
  child.stderr?.on("data", (chunk: Buffer) => {
    output += chunk.toString("utf8")
    stderr += chunk.toString("utf8")
  })
  const exited = new Promise<Exit>((resolve) => child.once("exit", (code, signal) => resolve({ code, signal })))
  const broker = { child, output: () => output, stderr: () => stderr, exited }
  running.push(broker)
  return broker
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

/** Waits for `GET /healthz` to answer 200: every 100 ms, for at most 15 seconds. */
const waitUntilHealthy = async (broker: Running, url: string): Promise<void> => {
  for (let attempt = 0; attempt < 150; attempt++) {
    if (broker.child.exitCode !== null || broker.child.signalCode !== null) {
      throw new Error(`the broker exited before it was healthy:\n${broker.output()}`)
    }
    const status = await fetch(`${url}/healthz`, { signal: AbortSignal.timeout(1_000) }).then(
      (response) => response.status,
      () => undefined
    )
    if (status === 200) return
    await sleep(100)
  }
  throw new Error(`the broker did not answer /healthz with 200 within 15 seconds:\n${broker.output()}`)
}

/** Waits for the process to exit, for at most `ms`. */
const exitWithin = (broker: Running, ms: number): Promise<Exit | "still running"> =>
  Promise.race([broker.exited, sleep(ms).then(() => "still running" as const)])

describe("the built broker, run as a user runs it", () => {
  it("starts with nothing configured: creates its database and key, warns without the key, serves, stops on SIGTERM", async () => {
    const cwd = freshDirectory()
    const port = await freePort()
    const url = `http://127.0.0.1:${port}`
    const broker = startBroker(cwd, { CONNECT_PORT: String(port), CONNECT_HOST: "127.0.0.1" })
    await waitUntilHealthy(broker, url)

    expect(existsSync(join(cwd, ".connect", "broker.db"))).toBe(true)
    // The data directory is its owner's alone.
    expect(statSync(join(cwd, ".connect")).mode & 0o777).toBe(0o700)
    const keyFile = join(cwd, ".connect", "encryption.key")
    expect(existsSync(keyFile)).toBe(true)
    expect(statSync(keyFile).mode & 0o777).toBe(0o600)
    const key = readFileSync(keyFile, "utf8").trim()
    expect(Buffer.from(key, "base64")).toHaveLength(32)

    const output = broker.output()
    expect(output).toContain("CONNECT_ENCRYPTION_KEY")
    expect(output).toContain("encryption.key")
    expect(output).not.toContain(key)
    expect(output).not.toContain(Buffer.from(key, "base64").toString("base64url"))

    const response = await fetch(`${url}/v1/connect/token/${encodeURIComponent("acme/api")}`, {
      method: "POST",
      headers: {
        accept: "application/json",
        "content-type": "application/json",
        authorization: "Bearer ck_nobody_knows_this_key"
      },
      body: JSON.stringify({ subject: { type: "app" } })
    })
    expect(response.status).toBe(401)
    expect(await response.json()).toMatchObject({ error: { code: "unauthorized" } })

    broker.child.kill("SIGTERM")
    expect(await exitWithin(broker, 10_000)).toEqual({ code: 0, signal: null })
    // Nothing it printed, from start to stop, holds the key.
    expect(broker.output()).not.toContain(key)
  })

  it("refuses to start with a broken configuration file, and names the field in one clear message", async () => {
    const cwd = freshDirectory()
    const port = await freePort()
    const keySecret = "ck_literal_secret_in_the_file_4417"
    writeFileSync(
      join(cwd, "connect.json"),
      JSON.stringify({
        connectors: [],
        projects: [{ id: "prj_web", keys: [{ environment: "production", secret: keySecret }] }],
        links: [{ connector: "acme/nope", project: "prj_web", environments: ["production"] }]
      })
    )
    const broker = startBroker(cwd, {
      CONNECT_PORT: String(port),
      CONNECT_HOST: "127.0.0.1",
      CONNECT_CONFIG: "./connect.json"
    })
    const exit = await exitWithin(broker, 15_000)
    expect(exit).not.toBe("still running")
    expect(exit === "still running" ? undefined : exit.code).toBe(1)

    // The log shares stderr (a line about the generated key may come first): the message starts a line of its own.
    const stderr = broker.stderr()
    const lines = stderr.split("\n")
    const first = lines.findIndex((line) => line.startsWith("The broker could not start:"))
    expect(lines[first]).toBe("The broker could not start: Invalid connector configuration in ./connect.json:")
    expect(lines.slice(0, first).every((line) => line.startsWith("timestamp="))).toBe(true)
    expect(stderr).toContain(
      'links[0].connector: no connector "acme/nope" is declared: declare it in connectors, or fix the uid'
    )
    // Words, not a dump: no stack trace, and no secret of the file.
    expect(stderr).not.toMatch(/^\s+at /m)
    expect(broker.output()).not.toContain(keySecret)
  })
})
