import { spawn } from "node:child_process"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join, resolve } from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { freePort, type RunningBroker, startBroker } from "./support/broker.js"
import { sqlite, type TestDatabase } from "./support/databases.js"
import { type OAuthProviderHarness, startOAuthProvider } from "./support/oauthProvider.js"

const BIN = resolve("dist/cli/main.js")
const KEY = "ck_cli_production_key_6120"
const RESOURCE = "https://api.test/orders"

interface Run {
  readonly code: number | null
  readonly stdout: string
  readonly stderr: string
}

/** The environment of the test process without any Connect settings. */
const cleanEnv = (): Record<string, string> => {
  const env: Record<string, string> = {}
  for (const [name, value] of Object.entries(process.env)) {
    if (value === undefined || name.startsWith("CONNECT_") || name === "VERCEL_OIDC_TOKEN") continue
    env[name] = value
  }
  return { ...env, NO_COLOR: "1" }
}

/** Runs the built binary as a user would, with stdin a closed pipe (not a terminal). */
const run = (args: ReadonlyArray<string>, env: Record<string, string>, cwd?: string): Promise<Run> =>
  new Promise((resolvePromise, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], { env, cwd: cwd ?? process.cwd(), stdio: "pipe" })
    let stdout = ""
    let stderr = ""
    child.stdout.on("data", (chunk: Buffer) => {
      stdout += chunk.toString("utf8")
    })
    child.stderr.on("data", (chunk: Buffer) => {
      stderr += chunk.toString("utf8")
    })
    child.stdin.end()
    child.once("error", reject)
    child.once("close", (code) => resolvePromise({ code, stdout, stderr }))
  })

describe("the connect command line", () => {
  let provider: OAuthProviderHarness
  let database: TestDatabase
  let broker: RunningBroker
  let env: Record<string, string>
  const all: Array<Run> = []
  const connect = async (...args: ReadonlyArray<string>): Promise<Run> => {
    const result = await run(args, env)
    all.push(result)
    return result
  }

  beforeAll(async () => {
    const port = await freePort()
    provider = await startOAuthProvider({
      clientCredentialsTtl: 3600,
      redirectUris: [`http://127.0.0.1:${port}/v1/connect/callback`]
    })
    database = sqlite()
    broker = await startBroker({
      database,
      port,
      config: {
        connectors: [
          {
            uid: "acme/api",
            name: "Acme API",
            type: "oauth",
            clientId: provider.clients.broker.clientId,
            clientSecret: provider.clients.broker.clientSecret,
            tokenEndpoint: provider.tokenEndpoint,
            revocationEndpoint: provider.revocationEndpoint,
            authorizationEndpoint: provider.authorizationEndpoint,
            defaultScopes: { app: ["api:read"], user: ["openid", "offline_access", "api:read"] }
          }
        ],
        projects: [{ id: "prj_web", keys: [{ environment: "production", secret: KEY }] }],
        links: [{ connector: "acme/api", project: "prj_web", environments: ["production"] }]
      }
    })
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
    const result = await run(["token", "acme/api", "--subject", "app", "--url", broker.url, "--token", KEY], {
      ...cleanEnv(),
      CONNECT_URL: "http://127.0.0.1:1",
      CONNECT_TOKEN: "ck_wrong"
    })
    all.push(result)
    expect(result.code).toBe(0)
    expect(result.stdout.trim().length).toBeGreaterThan(0)
  })

  it("exits 2 on a wrong caller key, without printing it", async () => {
    const wrong = "ck_wrong_key_that_must_not_show_4412"
    const result = await run(["token", "acme/api", "--subject", "app"], { ...env, CONNECT_TOKEN: wrong })
    expect(result.code).toBe(2)
    expect(result.stderr.trim().split("\n")).toHaveLength(1)
    expect(`${result.stdout}${result.stderr}`).not.toContain(wrong)
  })

  it("exits 1 with the URL to open when the user has not authorized", async () => {
    const result = await connect("token", "acme/api", "--user-id", "nobody")
    expect(result.code).toBe(1)
    expect(result.stdout).toBe("")
    expect(result.stderr).toContain(`${broker.url}/v1/connect/authorize/`)
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
    const imported = await fetch(`${broker.url}/v1/connect/token/acme%2Fapi/import`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${KEY}` },
      body: JSON.stringify({
        tokens: [
          {
            subject: { type: "user", id: "ada" },
            accessToken: "expired-token",
            expiresAt: 1,
            refreshToken,
            environment: "production"
          }
        ]
      })
    })
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

  it("shows help with an example, and exits 0", async () => {
    for (const args of [["--help"], ["token", "--help"], ["revoke-tokens", "--help"], ["serve", "--help"]]) {
      const result = await connect(...args)
      expect(result.code).toBe(0)
      expect(result.stdout).toContain("Example: connect")
    }
  })

  it("never prints the caller key", () => {
    expect(all.length).toBeGreaterThan(5)
    for (const result of all) {
      expect(result.stdout).not.toContain(KEY)
      expect(result.stderr).not.toContain(KEY)
    }
  })
})

describe("connect serve", () => {
  /** Starts `connect serve` on a free port; another process may take the port first, so a start that exits is retried. */
  const serve = async (directory: string) => {
    for (let attempt = 0; attempt < 3; attempt++) {
      const port = await freePort()
      const child = spawn(
        process.execPath,
        [BIN, "serve", "--port", String(port), "--database", join(directory, "b.db")],
        {
          cwd: directory,
          env: cleanEnv(),
          stdio: ["ignore", "pipe", "pipe"]
        }
      )
      const output = { stdout: "", stderr: "" }
      child.stdout.on("data", (chunk: Buffer) => {
        output.stdout += chunk.toString("utf8")
      })
      child.stderr.on("data", (chunk: Buffer) => {
        output.stderr += chunk.toString("utf8")
      })
      let exited = false
      const closed = new Promise<number | null>((resolveClose) =>
        child.once("close", (code) => {
          exited = true
          resolveClose(code)
        })
      )
      // Bounded: each check has its own timeout, and a child that exits ends the wait.
      for (let check = 0; check < 100 && !exited; check++) {
        const healthy = await fetch(`http://127.0.0.1:${port}/healthz`, { signal: AbortSignal.timeout(1_000) }).then(
          (response) => response.ok,
          () => false
        )
        if (healthy) return { child, port, output, closed }
        await new Promise((wait) => setTimeout(wait, 100))
      }
      if (!exited) child.kill("SIGKILL")
      await closed
      if (!output.stderr.includes("EADDRINUSE")) throw new Error(`connect serve did not start: ${output.stderr}`)
    }
    throw new Error("connect serve found no free port in three tries")
  }

  it("runs the broker on the given port and database until SIGTERM", async () => {
    const directory = mkdtempSync(join(tmpdir(), "connect-cli-"))
    try {
      const { child, port, output, closed } = await serve(directory)
      for (let attempt = 0; attempt < 50 && !output.stdout.includes("Database:"); attempt++) {
        await new Promise((wait) => setTimeout(wait, 100))
      }
      expect(output.stdout).toContain(`http://127.0.0.1:${port}`)
      expect(output.stdout).toContain(join(directory, "b.db"))
      child.kill("SIGTERM")
      const code = await Promise.race([
        closed,
        new Promise<"still running">((r) => setTimeout(() => r("still running"), 10_000))
      ])
      if (code === "still running") child.kill("SIGKILL")
      expect(code).toBe(0)
    } finally {
      rmSync(directory, { recursive: true, force: true })
    }
  }, 30_000)
})
