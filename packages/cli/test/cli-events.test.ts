import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { type RunningBroker, startBroker } from "../../broker/test/support/broker.js"
import { cleanEnv, start, waitForOutput } from "../../broker/test/support/cli.js"
import { sqlite, type TestDatabase } from "../../broker/test/support/databases.js"
import { type OAuthProviderHarness, startOAuthProvider } from "../../broker/test/support/oauthProvider.js"
import { runInProcess } from "./support/inProcess.js"

const ADMIN_TOKEN = "adm_cli_events_token_6618"
const KEY = "ck_cli_events_key_2207"

// The commands run in the test's process (a process of its own costs about a second on a busy machine); --follow,
// stopped by a signal, runs the binary.
describe("connect events", { timeout: 90_000 }, () => {
  let provider: OAuthProviderHarness
  let database: TestDatabase
  let broker: RunningBroker
  let env: Record<string, string>

  /** An app token of `connector` (one of the configuration's), as an application asks for it. */
  const appToken = async (connector: string) => {
    const response = await fetch(`${broker.url}/v1/connect/token/${encodeURIComponent(connector)}`, {
      method: "POST",
      headers: { authorization: `Bearer ${KEY}`, "content-type": "application/json" },
      body: JSON.stringify({ subject: { type: "app" } })
    })
    expect(response.status).toBe(200)
  }

  beforeAll(async () => {
    provider = await startOAuthProvider({ clientCredentialsTtl: 3600 })
    database = sqlite()
    // One connector per test: each test's events are its own.
    const connectors = ["acme/listed", "acme/followed"]
    broker = await startBroker({
      database,
      env: { CONNECT_ADMIN_TOKEN: ADMIN_TOKEN },
      config: {
        connectors: connectors.map((uid) => ({
          uid,
          name: uid,
          type: "oauth",
          clientId: provider.clients.broker.clientId,
          clientSecret: provider.clients.broker.clientSecret,
          tokenEndpoint: provider.tokenEndpoint
        })),
        projects: [{ id: "prj_cli", keys: [{ environment: "production", secret: KEY }] }],
        links: connectors.map((connector) => ({ connector, project: "prj_cli", environments: ["production"] }))
      }
    })
    env = { ...cleanEnv(), CONNECT_URL: broker.url, CONNECT_ADMIN_TOKEN: ADMIN_TOKEN }
  }, 60_000)
  afterAll(async () => {
    await broker?.close()
    await provider?.close()
    await database?.drop()
  })

  it("lists events as a table, oldest first, and as the broker's JSON", async () => {
    await appToken("acme/listed")
    await appToken("acme/listed")
    const table = await runInProcess(["events", "--connector", "acme/listed", "--kind", "token.issued"], env)
    expect(table.code).toBe(0)
    const lines = table.stdout.trim().split("\n")
    expect(lines[0]?.split(/\s{2,}/)).toEqual(["TIME", "KIND", "CONNECTOR", "PROJECT/ENV", "SUBJECT", "DATA"])
    expect(lines).toHaveLength(3)
    expect(lines[1]).toMatch(/^\d{4}-\d{2}-\d{2}T\S+Z\s+token\.issued\s+acme\/listed\s+prj_cli\/production\s+app\s+/)
    expect(lines[1]).toContain("source=provider grant=client_credentials")
    expect(lines[2]).toContain("source=stored")

    const json = await runInProcess(["events", "--connector", "acme/listed", "--since", "1h", "--format", "json"], env)
    expect(json.code).toBe(0)
    const answer = JSON.parse(json.stdout) as { events: ReadonlyArray<{ kind: string; connector: string }> }
    expect(answer.events.map((event) => event.kind)).toEqual(["token.issued", "token.issued", "connector.created"])
    expect(answer.events.every((event) => event.connector === "acme/listed")).toBe(true)

    const none = await runInProcess(["events", "--connector", "acme/listed", "--until", "2000-01-01T00:00:00Z"], env)
    expect(none).toMatchObject({ code: 0, stdout: "No events.\n" })
    const bad = await runInProcess(["events", "--kind", "token.stolen"], env)
    expect(bad.code).toBe(2)
    expect(bad.stderr).toContain("kind: Unknown kind token.stolen")
  })

  it("--follow prints the events recorded after it started, and stops with exit code 0 on Ctrl+C", async () => {
    const running = start(["events", "--follow", "--connector", "acme/followed", "--kind", "token.issued"], env)
    const following = await waitForOutput(
      running,
      (output) => (output.stderr.includes("Following") ? true : undefined),
      {
        attempts: 300,
        interval: 50
      }
    )
    expect(following).toBe(true)
    expect(running.output.stdout).toBe("")
    await appToken("acme/followed")
    const printed = await waitForOutput(
      running,
      (output) => (output.stdout.includes("token.issued") ? output.stdout : undefined),
      { attempts: 300, interval: 50 }
    )
    expect(printed).toContain("acme/followed")
    expect(printed).toContain("source=provider")
    running.child.kill("SIGINT")
    const result = await running.done
    expect(result.code).toBe(0)
    expect(result.stdout.match(/token\.issued/g)).toHaveLength(1)
  })
})
