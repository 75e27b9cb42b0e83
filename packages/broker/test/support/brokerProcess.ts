/**
 * The built broker (`packages/broker/dist/main.js`, so `npm run build` first) as a process of its own, as an operator runs a
 * replica: its settings in its environment, its configuration file in a temporary directory.
 */
import { type ChildProcess, spawn } from "node:child_process"
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Redacted } from "effect"
import { freePort } from "./broker.js"
import { BROKER_MAIN, cleanEnv, sleep } from "./cli.js"
import type { TestDatabase } from "./databases.js"

/** The built broker. */
export const MAIN = BROKER_MAIN

/** A broker process serving on 127.0.0.1. */
export interface BrokerProcess {
  readonly url: string
  readonly child: ChildProcess
  /** Everything it printed so far, stdout and stderr together. */
  readonly output: () => string
  /** Stops it with SIGTERM (SIGKILL after 10 seconds), and removes its directory. */
  readonly stop: () => Promise<void>
}

/** Asks `/healthz` until it answers 200 (each try within a second), for at most 20 seconds. */
const waitUntilHealthy = async (child: ChildProcess, url: string, output: () => string): Promise<void> => {
  const deadline = Date.now() + 20_000
  while (Date.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(`the broker exited before it was healthy:\n${output()}`)
    }
    const status = await fetch(`${url}/healthz`, { signal: AbortSignal.timeout(1_000) }).then(
      (response) => response.status,
      () => undefined
    )
    if (status === 200) return
    await sleep(100)
  }
  throw new Error(`the broker did not answer /healthz with 200 within 20 seconds:\n${output()}`)
}

/**
 * Starts the built broker on `database` with `config` as its configuration file and the encryption key given (every
 * replica must share it), plus `env`, on `port` or a free one; resolves once it answers `/healthz`.
 */
export const spawnBroker = async (options: {
  readonly database: TestDatabase
  readonly config: unknown
  readonly encryptionKey: string
  readonly env?: Readonly<Record<string, string>>
  /** The port to serve on (default: a free one), when a provider must know the broker's URL first. */
  readonly port?: number
}): Promise<BrokerProcess> => {
  if (!existsSync(MAIN)) throw new Error("packages/broker/dist/main.js is missing: run `npm run build` first")
  const port = options.port ?? (await freePort())
  const url = `http://127.0.0.1:${port}`
  const directory = mkdtempSync(join(tmpdir(), "connect-replica-"))
  const configFile = join(directory, "connect.json")
  writeFileSync(configFile, JSON.stringify(options.config))
  const location = options.database.location
  const child = spawn(process.execPath, [MAIN], {
    cwd: directory,
    env: {
      ...cleanEnv(),
      CONNECT_HOST: "127.0.0.1",
      CONNECT_PORT: String(port),
      CONNECT_PUBLIC_URL: url,
      CONNECT_CONFIG: configFile,
      CONNECT_DATA_DIR: directory,
      CONNECT_ENCRYPTION_KEY: options.encryptionKey,
      CONNECT_DATABASE_URL: location._tag === "Sqlite" ? location.filename : Redacted.value(location.url),
      ...options.env
    },
    stdio: ["ignore", "pipe", "pipe"]
  })
  let output = ""
  const collect = (chunk: Buffer) => {
    output += chunk.toString("utf8")
  }
  child.stdout?.on("data", collect)
  child.stderr?.on("data", collect)
  const exited = new Promise<void>((done) => child.once("exit", () => done()))
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill("SIGTERM")
      const timer = setTimeout(() => child.kill("SIGKILL"), 10_000)
      await exited
      clearTimeout(timer)
    }
    rmSync(directory, { recursive: true, force: true })
  }
  try {
    await waitUntilHealthy(child, url, () => output)
  } catch (error) {
    await stop()
    throw error
  }
  return { url, child, output: () => output, stop }
}
