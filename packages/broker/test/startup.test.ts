/**
 * The built broker opens its port only when it can answer: requests sent from
 * the moment the port accepts connections get the real answer, none hangs.
 *
 * It runs the build (`npm test` builds first), not the sources.
 */
import { type ChildProcess, spawn } from "node:child_process"
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { connect } from "node:net"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import { afterEach, describe, expect, it } from "vitest"
import { freePort } from "./support/broker.js"

const MAIN = fileURLToPath(new URL("../dist/main.js", import.meta.url))
const KEY = "key_startup_production_0123456789"

const children: Array<ChildProcess> = []
const directories: Array<string> = []

afterEach(async () => {
  for (const child of children.splice(0)) {
    if (child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((resolve) => child.once("exit", resolve))
      child.kill("SIGKILL")
      await exited
    }
  }
  for (const directory of directories.splice(0)) rmSync(directory, { recursive: true, force: true })
})

/** Resolves once a TCP connection to the port succeeds, trying again at once on refusal. */
const portAccepts = (port: number, child: ChildProcess): Promise<void> =>
  new Promise((resolve, reject) => {
    const started = Date.now()
    const attempt = () => {
      if (child.exitCode !== null) return reject(new Error("the broker exited"))
      if (Date.now() - started > 30_000) return reject(new Error("the port never accepted"))
      const socket = connect({ port, host: "127.0.0.1" })
      socket.once("connect", () => {
        socket.destroy()
        resolve()
      })
      socket.once("error", () => {
        socket.destroy()
        setImmediate(attempt)
      })
    }
    attempt()
  })

const startBroker = (port: number): ChildProcess => {
  expect(existsSync(MAIN), "packages/broker/dist/main.js is missing: run `npm run build` first").toBe(true)
  const cwd = mkdtempSync(join(tmpdir(), "connect-startup-"))
  directories.push(cwd)
  writeFileSync(
    join(cwd, "connect.json"),
    JSON.stringify({
      connectors: [
        {
          uid: "acme/api",
          name: "Acme",
          type: "oauth",
          clientId: "client",
          clientSecret: "secret",
          tokenEndpoint: "http://127.0.0.1:9/token"
        }
      ],
      projects: [{ id: "prj_startup", keys: [{ environment: "production", secret: KEY }] }],
      links: [{ connector: "acme/api", project: "prj_startup", environments: ["production"] }]
    })
  )
  const inherited = Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith("CONNECT_")))
  const child = spawn(process.execPath, [MAIN], {
    cwd,
    env: { ...inherited, CONNECT_PORT: String(port), CONNECT_HOST: "127.0.0.1", CONNECT_CONFIG: "./connect.json" },
    stdio: ["ignore", "ignore", "ignore"]
  })
  children.push(child)
  return child
}

describe("the broker's start", () => {
  it("answers every request sent from the moment the port accepts, with the real answer", async () => {
    for (let start = 0; start < 3; start++) {
      const port = await freePort()
      const child = startBroker(port)
      await portAccepts(port, child)
      const url = `http://127.0.0.1:${port}`
      const answers = await Promise.all([
        ...Array.from({ length: 5 }, () =>
          fetch(`${url}/healthz`, { signal: AbortSignal.timeout(5_000) }).then(async (response) => ({
            status: response.status,
            body: await response.text()
          }))
        ),
        ...Array.from({ length: 5 }, () =>
          fetch(`${url}/v1/connect/connectors/${encodeURIComponent("acme/api")}`, {
            headers: { authorization: `Bearer ${KEY}` },
            signal: AbortSignal.timeout(5_000)
          }).then(async (response) => ({ status: response.status, body: await response.text() }))
        )
      ])
      for (const answer of answers.slice(0, 5)) expect(answer).toEqual({ status: 200, body: '{"status":"ok"}' })
      for (const answer of answers.slice(5)) {
        expect(answer.status).toBe(200)
        expect(JSON.parse(answer.body)).toMatchObject({ uid: "acme/api" })
      }
      child.kill("SIGKILL")
    }
  }, 120_000)
})
