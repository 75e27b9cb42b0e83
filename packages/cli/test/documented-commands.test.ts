/**
 * The samples of packages/cli/docs/cli.md and packages/broker/docs/broker.md,
 * run: each block marked
 * `<!-- sample: connect … -->` is the output of that command against a broker
 * in the state the documentation describes (acme/api, prj_web and its keys,
 * made here over the admin API), once ids, times and ports are normalised.
 *
 * A marker's leading `NAME=value` words are set in the command's environment.
 * A block marked `<!-- file: NAME -->` is written to the file NAME before the
 * samples that follow it; the samples of a document run in one directory of
 * their own, in order, as a reader would run them. `connect serve` is stopped
 * (SIGTERM) once it listens, or has exited.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import { adminRoutes } from "@effect-connect/broker/AdminApi"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { freePort, type RunningBroker, startBroker } from "../../broker/test/support/broker.js"
import { cleanEnv, type Run, run, sleep, start } from "../../broker/test/support/cli.js"
import { sqlite, type TestDatabase } from "../../broker/test/support/databases.js"
import { adminRequest } from "../../broker/test/support/http.js"

const ADMIN_TOKEN = "adm_documented_commands_5521"
const DOC = fileURLToPath(new URL("../docs/cli.md", import.meta.url))
const BROKER_DOC = fileURLToPath(new URL("../../broker/docs/broker.md", import.meta.url))
const DOCS = [DOC, BROKER_DOC]

/** A marked sample: its command, the files written before it (by name), and the text block after it. */
export interface Sample {
  readonly command: string
  readonly files: ReadonlyMap<string, string>
  readonly output: string
}

/** The marked samples of a document, each with the files marked before it (the last block of each name). */
export const samples = (markdown: string): ReadonlyArray<Sample> => {
  const files = new Map<string, string>()
  const found: Array<Sample> = []
  for (const match of markdown.matchAll(/<!-- (sample|file): (.+?) -->\n```\w*\n([\s\S]*?)```/g)) {
    const [, kind, name = "", text = ""] = match
    if (kind === "file") files.set(name, text)
    else found.push({ command: name, files: new Map(files), output: text })
  }
  return found
}

/** A command line's words, with double-quoted words kept whole. */
const words = (command: string): ReadonlyArray<string> =>
  [...command.matchAll(/"([^"]*)"|(\S+)/g)].map((match) => match[1] ?? match[2] ?? "")

/** A command's leading `NAME=value` words, and the arguments after `connect`. */
const parse = (command: string): { readonly env: Record<string, string>; readonly args: ReadonlyArray<string> } => {
  const all = words(command)
  const program = all.indexOf("connect")
  const env = Object.fromEntries(
    all
      .slice(0, Math.max(program, 0))
      .map((word) => [word.slice(0, word.indexOf("=")), word.slice(word.indexOf("=") + 1)])
  )
  return { env, args: all.slice(program + 1) }
}

/** Runs `connect serve` until it listens (then stops it with SIGTERM) or exits. */
const serveUntilListening = async (args: ReadonlyArray<string>, env: Record<string, string>, cwd: string) => {
  const running = start(args, env, { cwd })
  for (let waited = 0; waited < 60_000 && !running.exited(); waited += 100) {
    if (running.output.stderr.includes("Listening on") && running.output.stdout.includes("Database:")) break
    await sleep(100)
  }
  if (!running.exited()) running.child.kill("SIGTERM")
  return running.done
}

/** Runs a sample's command in `cwd`, after writing its files there. */
const runSample = async (sample: Sample, env: Record<string, string>, cwd: string): Promise<Run> => {
  for (const [name, text] of sample.files) writeFileSync(join(cwd, name), text)
  const { env: own, args } = parse(sample.command)
  const environment = { ...env, ...own, CONNECT_PORT: String(await freePort()) }
  return args[0] === "serve" ? serveUntilListening(args, environment, cwd) : run(args, environment, cwd)
}

/** What may differ between runs: ids, times, ports, and the width of table columns. */
const normalise = (text: string): string =>
  text
    .replace(/conn_[\w-]+/g, "conn_<id>")
    .replace(/\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z/g, "<time>")
    .replace(/127\.0\.0\.1:\d+/g, "127.0.0.1:<port>")
    .replace(/^\[\d\d:\d\d:\d\d\.\d{3}\] (\w+) \(#\d+\)/gm, "[<time>] $1 (#<fiber>)")
    .replace(/ {2,}/g, "  ")
    .split("\n")
    .map((line) => line.trimEnd())
    .join("\n")
    .trim()

describe("the documented commands", { timeout: 120_000 }, () => {
  let database: TestDatabase
  let broker: RunningBroker
  let env: Record<string, string>
  const directories: Array<string> = []
  const admin = <P extends `/${string}`>(
    route: Parameters<typeof adminRequest<P>>[2],
    params: Parameters<typeof adminRequest<P>>[3],
    body?: unknown
  ) => adminRequest(broker.url, ADMIN_TOKEN, route, params, body)

  beforeAll(async () => {
    database = sqlite()
    broker = await startBroker({ database, config: {}, env: { CONNECT_ADMIN_TOKEN: ADMIN_TOKEN } })
    await admin(
      adminRoutes.createConnector,
      {},
      {
        uid: "acme/api",
        name: "Acme API",
        type: "oauth",
        clientId: "broker",
        clientSecret: "acme-client-secret-never-shown",
        tokenEndpoint: "https://auth.acme.example/token",
        defaultScopes: { app: ["api:read", "api:write"] }
      }
    )
    await admin(adminRoutes.createProject, {}, { id: "prj_web", name: "Web" })
    const created = await admin(adminRoutes.createKey, { project: "prj_web" }, { environment: "production" })
    await admin(adminRoutes.createKey, { project: "prj_web" }, { environment: "production" })
    await admin(adminRoutes.createKey, { project: "prj_web" }, { environment: "preview" })
    await admin(
      adminRoutes.attach,
      { connector: "acme/api", project: "prj_web" },
      {
        environments: ["production", "preview"]
      }
    )
    env = {
      ...cleanEnv(),
      CONNECT_URL: broker.url,
      CONNECT_ADMIN_TOKEN: ADMIN_TOKEN,
      CONNECT_TOKEN: (created as { readonly key: string }).key
    }
  }, 60_000)
  afterAll(async () => {
    await broker?.close()
    await database?.drop()
    for (const directory of directories) rmSync(directory, { recursive: true, force: true })
  })

  it("finds the marked samples", () => {
    expect(samples(readFileSync(DOC, "utf8")).length).toBeGreaterThanOrEqual(6)
    expect(samples(readFileSync(BROKER_DOC, "utf8")).length).toBeGreaterThanOrEqual(4)
  })

  it("prints what the documents show", async () => {
    for (const doc of DOCS) {
      const cwd = mkdtempSync(join(tmpdir(), "connect-documented-"))
      directories.push(cwd)
      for (const sample of samples(readFileSync(doc, "utf8"))) {
        expect(sample.command, "a sample runs connect").toMatch(/^(\w+=\S+ )*connect /)
        const result = await runSample(sample, env, cwd)
        expect(normalise(result.stdout + result.stderr), sample.command).toBe(normalise(sample.output))
      }
    }
  })
})
