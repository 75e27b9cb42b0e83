import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { freePort, type RunningBroker } from "../../broker/test/support/broker.js"
import {
  oauthClientOf,
  productionProject,
  startBrokerWithProvider
} from "../../broker/test/support/brokerWithProvider.js"
import { cleanEnv, type Run, run, sleep, start, waitForOutput, within } from "../../broker/test/support/cli.js"
import { sqlite, type TestDatabase } from "../../broker/test/support/databases.js"
import { postJson } from "../../broker/test/support/http.js"
import type { OAuthProviderHarness } from "../../broker/test/support/oauthProvider.js"
import { runInProcess } from "./support/inProcess.js"

const KEY = "ck_cli_production_key_6120"
const RESOURCE = "https://api.test/orders"

describe("the connect command line", () => {
  let provider: OAuthProviderHarness
  let database: TestDatabase
  let broker: RunningBroker
  let env: Record<string, string>
  /** Checks a run as it ends: it never prints the caller key. */
  const printsNoKey = (args: ReadonlyArray<string>, result: Run): Run => {
    expect(result.stdout, `connect ${args.join(" ")}`).not.toContain(KEY)
    expect(result.stderr, `connect ${args.join(" ")}`).not.toContain(KEY)
    return result
  }
  /** Runs the command in the test's process in `runEnv`. */
  const connectWith = async (runEnv: Record<string, string>, ...args: ReadonlyArray<string>): Promise<Run> =>
    printsNoKey(args, await runInProcess(args, runEnv))
  const connect = (...args: ReadonlyArray<string>): Promise<Run> => connectWith(env, ...args)
  /** Runs the built binary, for what a shell sees: its exit code, its output on a pipe. */
  const connectBinary = async (runEnv: Record<string, string>, ...args: ReadonlyArray<string>): Promise<Run> =>
    printsNoKey(args, await run(args, runEnv))

  beforeAll(async () => {
    database = sqlite()
    const started = await startBrokerWithProvider({
      database,
      provider: { clientCredentialsTtl: 3600 },
      config: (provider) => ({
        connectors: [
          {
            uid: "acme/api",
            name: "Acme API",
            ...oauthClientOf(provider),
            revocationEndpoint: provider.revocationEndpoint,
            authorizationEndpoint: provider.authorizationEndpoint,
            defaultScopes: { app: ["api:read"], user: ["openid", "offline_access", "api:read"] }
          }
        ],
        ...productionProject({ id: "prj_web", key: KEY }, ["acme/api"])
      })
    })
    provider = started.provider
    broker = started.broker
    env = { ...cleanEnv(), CONNECT_URL: broker.url, CONNECT_TOKEN: KEY }
  }, 60_000)
  afterAll(async () => {
    await broker?.close()
    await provider?.close()
    await database?.drop()
  })

  it("prints an app token alone on one line, and the provider knows it", async () => {
    const result = await connect("token", "acme/api", "--subject", "app", "--resource", RESOURCE, "--format", "plain")
    expect(result.code).toBe(0)
    expect(result.stdout.endsWith("\n")).toBe(true)
    const lines = result.stdout.split("\n")
    expect(lines).toHaveLength(2)
    const token = lines[0] ?? ""
    expect(token.length).toBeGreaterThan(0)
    const introspection = await provider.introspect(token)
    expect(introspection.active).toBe(true)
    expect(introspection.aud).toBe(RESOURCE)
  })

  it("prints the whole response with --format json", async () => {
    const result = await connect("token", "acme/api", "--subject", "app", "--format", "json")
    expect(result.code).toBe(0)
    const body = JSON.parse(result.stdout) as { tokenId?: unknown; token?: unknown; connector?: { uid?: unknown } }
    expect(body.tokenId).toMatch(/^stk_/)
    expect(typeof body.token).toBe("string")
    expect(body.connector?.uid).toBe("acme/api")
  })

  it("takes --url and --token over the environment", async () => {
    const wrongEnv = { ...cleanEnv(), CONNECT_URL: "http://127.0.0.1:1", CONNECT_TOKEN: "ck_wrong" }
    const result = await connectWith(
      wrongEnv,
      "token",
      "acme/api",
      "--subject",
      "app",
      "--url",
      broker.url,
      "--token",
      KEY
    )
    expect(result.code).toBe(0)
    expect(result.stdout.trim().length).toBeGreaterThan(0)
  })

  it("exits 2 on a wrong caller key, without printing it", async () => {
    const wrong = "ck_wrong_key_that_must_not_show_4412"
    const result = await connectBinary({ ...env, CONNECT_TOKEN: wrong }, "token", "acme/api", "--subject", "app")
    expect(result.code).toBe(2)
    expect(result.stderr.trim().split("\n")).toHaveLength(1)
    expect(`${result.stdout}${result.stderr}`).not.toContain(wrong)
  })

  it("exits 1 with the URL to open when the user has not authorized", async () => {
    const result = await connectBinary(env, "token", "acme/api", "--user-id", "nobody")
    expect(result.code).toBe(1)
    expect(result.stdout).toBe("")
    expect(result.stderr).toContain(`${broker.url}/v1/connect/authorize/`)
  })

  it("with --format json, says so in one JSON object with the URL, and exits 1 all the same", async () => {
    const result = await connect("token", "acme/api", "--user-id", "nobody", "--format", "json")
    expect(result.code).toBe(1)
    expect(result.stdout).toBe("")
    expect(result.stderr.trim().split("\n")).toHaveLength(1)
    const body = JSON.parse(result.stderr) as { error: { code: string; message: string; url: string } }
    expect(body.error.code).toBe("user_authorization_required")
    expect(body.error.message).toBe('The user must authorize connector "acme/api" first. Open this URL:')
    expect(body.error.url.startsWith(`${broker.url}/v1/connect/authorize/`)).toBe(true)
  })

  it("exits 2 with one line on stderr for an unknown connector", async () => {
    const result = await connect("token", "acme/nope", "--subject", "app")
    expect(result.code).toBe(2)
    expect(result.stdout).toBe("")
    expect(result.stderr.trim().split("\n")).toHaveLength(1)
    expect(result.stderr).toContain("acme/nope")
  })

  it("exits 2 when a user token has no --user-id", async () => {
    const result = await connect("token", "acme/api")
    expect(result.code).toBe(2)
    expect(result.stderr).toContain("--user-id")
  })

  it("revokes a user's tokens with --yes and prints the summary as JSON", async () => {
    const refreshToken = await provider.seedUserRefreshToken({
      accountId: "ada",
      scope: "openid offline_access api:read"
    })
    const imported = await postJson(
      `${broker.url}/v1/connect/token/acme%2Fapi/import`,
      {
        tokens: [
          {
            subject: { type: "user", id: "ada" },
            accessToken: "expired-token",
            expiresAt: 1,
            refreshToken,
            environment: "production"
          }
        ]
      },
      KEY
    )
    expect(imported.status).toBe(200)
    const token = await connect("token", "acme/api", "--user-id", "ada")
    expect(token.code).toBe(0)
    const result = await connect("revoke-tokens", "acme/api", "--user-id", "ada", "--yes", "--format", "json")
    expect(result.code).toBe(0)
    const summary = JSON.parse(result.stdout) as Record<string, number>
    expect(summary.tokensFound).toBeGreaterThanOrEqual(1)
    expect(summary.deleted).toBeGreaterThanOrEqual(1)
    const plain = await connect("revoke-tokens", "acme/api", "--user-id", "ada", "--yes")
    expect(plain.code).toBe(0)
    expect(plain.stdout).toContain("tokens found: 0")
  })

  it("refuses to revoke without --yes when stdin is not a terminal", async () => {
    const result = await connect("revoke-tokens", "acme/api", "--all-tokens")
    expect(result.code).toBe(2)
    expect(result.stdout).toBe("")
    expect(result.stderr).toContain("--yes")
  })

  it("wants exactly one of --user-id and --all-tokens", async () => {
    const result = await connect("revoke-tokens", "acme/api", "--yes")
    expect(result.code).toBe(2)
    expect(result.stderr).toContain("--all-tokens")
  })

  it("says which caller credential was refused and where it came from", async () => {
    const [fromFlag, fromVariable] = await Promise.all([
      connect("token", "acme/api", "--subject", "app", "--token", "ck_wrong_flag_0001"),
      connectWith({ ...env, CONNECT_TOKEN: "ck_wrong_variable_0002" }, "token", "acme/api", "--subject", "app")
    ])
    expect(fromFlag.code).toBe(2)
    expect(fromFlag.stderr).toContain("rejected the caller credential given by --token")
    expect(fromFlag.stderr).not.toContain("CONNECT_TOKEN")
    expect(fromFlag.stderr).not.toContain("ck_wrong_flag_0001")
    expect(fromVariable.code).toBe(2)
    expect(fromVariable.stderr).toContain("rejected the caller credential given by CONNECT_TOKEN")
    expect(fromVariable.stderr).not.toContain("ck_wrong_variable_0002")
  })

  it("suggests the project's connector nearest to a mistyped name", async () => {
    const result = await connect("token", "acme/apii", "--subject", "app")
    expect(result.code).toBe(2)
    expect(result.stderr).toBe('No connector "acme/apii" exists for this caller: did you mean "acme/api"?\n')
  })

  it("shows help with an example, and exits 0", async () => {
    // The binary's top-level help (its output is a pipe), a command's in the test's process; every command's help
    // is checked in Help.test.ts.
    for (const args of [["--help"], ["token", "--help"]]) {
      const result = args.length === 1 ? await connectBinary(env, ...args) : await connect(...args)
      expect(result.code).toBe(0)
      expect(result.stdout).toMatch(/Examples?:\n {2}(CONNECT_URL=\S+ CONNECT_TOKEN=\S+ )?connect /)
      // Not a terminal: no colour codes, which would garble a file or a pipe.
      expect(result.stdout).not.toContain("\u001b[")
    }
  })
})

describe("connect serve", () => {
  /** Starts `connect serve` on a free port; another process may take the port first, so a start that exits is retried. */
  const serve = async (directory: string) => {
    for (let attempt = 0; attempt < 3; attempt++) {
      const port = await freePort()
      const running = start(["serve", "--port", String(port), "--database", join(directory, "b.db")], cleanEnv(), {
        cwd: directory,
        stdin: "ignore"
      })
      // Bounded: each check has its own timeout, and a child that exits ends the wait.
      for (let check = 0; check < 100 && !running.exited(); check++) {
        const healthy = await fetch(`http://127.0.0.1:${port}/healthz`, { signal: AbortSignal.timeout(1_000) }).then(
          (response) => response.ok,
          () => false
        )
        if (healthy) return { running, port }
        await sleep(100)
      }
      if (!running.exited()) running.child.kill("SIGKILL")
      await running.done
      if (!running.output.stderr.includes("EADDRINUSE")) {
        throw new Error(`connect serve did not start: ${running.output.stderr}`)
      }
    }
    throw new Error("connect serve found no free port in three tries")
  }

  it("runs the broker on the given port and database until SIGTERM", async () => {
    const directory = mkdtempSync(join(tmpdir(), "connect-cli-"))
    try {
      const { running, port } = await serve(directory)
      await waitForOutput(running, (output) => (output.stdout.includes("Database:") ? true : undefined), {
        attempts: 50,
        interval: 100
      })
      expect(running.output.stdout).toContain(`http://127.0.0.1:${port}`)
      expect(running.output.stdout).toContain(join(directory, "b.db"))
      running.child.kill("SIGTERM")
      const { code } = await within(running, 10_000)
      expect(code).toBe(0)
    } finally {
      rmSync(directory, { recursive: true, force: true })
    }
  }, 30_000)
})
