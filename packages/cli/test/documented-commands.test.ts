/**
 * The samples of packages/cli/docs/cli.md and packages/broker/docs/broker.md,
 * run: each block marked
 * `<!-- sample: connect … -->` is the output of that command against a broker
 * in the state the documentation describes (acme/api, prj_web and its keys,
 * made here over the admin API), once ids, times and ports are normalised.
 */
import { readFileSync } from "node:fs"
import { fileURLToPath } from "node:url"
import { adminRoutes } from "@effect-connect/broker/AdminApi"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { type RunningBroker, startBroker } from "../../broker/test/support/broker.js"
import { cleanEnv, run } from "../../broker/test/support/cli.js"
import { sqlite, type TestDatabase } from "../../broker/test/support/databases.js"
import { adminRequest } from "../../broker/test/support/http.js"

const ADMIN_TOKEN = "adm_documented_commands_5521"
const DOC = fileURLToPath(new URL("../docs/cli.md", import.meta.url))
const DOCS = [DOC, fileURLToPath(new URL("../../broker/docs/broker.md", import.meta.url))]

/** The marked samples of a document: the command, and the text block after it. */
export const samples = (markdown: string): ReadonlyArray<{ readonly command: string; readonly output: string }> =>
  [...markdown.matchAll(/<!-- sample: (connect .+?) -->\n```text\n([\s\S]*?)```/g)].map((match) => ({
    command: match[1] ?? "",
    output: match[2] ?? ""
  }))

/** A command line's words, with double-quoted words kept whole. */
const words = (command: string): ReadonlyArray<string> =>
  [...command.matchAll(/"([^"]*)"|(\S+)/g)].map((match) => match[1] ?? match[2] ?? "")

/** What may differ between runs: ids, times, ports, and the width of table columns. */
const normalise = (text: string): string =>
  text
    .replace(/conn_[\w-]+/g, "conn_<id>")
    .replace(/\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z/g, "<time>")
    .replace(/127\.0\.0\.1:\d+/g, "127.0.0.1:<port>")
    .replace(/ {2,}/g, "  ")
    .split("\n")
    .map((line) => line.trimEnd())
    .join("\n")
    .trim()

describe("the documented commands", { timeout: 120_000 }, () => {
  let database: TestDatabase
  let broker: RunningBroker
  let env: Record<string, string>
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
  })

  it("finds the marked samples", () => {
    expect(samples(readFileSync(DOC, "utf8")).length).toBeGreaterThanOrEqual(6)
  })

  it("prints what the documents show", async () => {
    for (const sample of DOCS.flatMap((doc) => samples(readFileSync(doc, "utf8")))) {
      const result = await run(words(sample.command).slice(1), env)
      expect(normalise(result.stdout + result.stderr), sample.command).toBe(normalise(sample.output))
    }
  })
})
