/**
 * `connect authorize`, as a user runs it: the built binary in its own process,
 * against a real broker on 127.0.0.1 and a real OAuth provider (oidc-provider),
 * with the test playing the user's browser from the URL the command prints.
 *
 * The command talks to the broker through a recording proxy, so the tests know
 * each verifier the broker handed out and can check that none is printed.
 */
import { type ChildProcessWithoutNullStreams, spawn } from "node:child_process"
import { createServer, type Server } from "node:http"
import type { AddressInfo } from "node:net"
import { resolve } from "node:path"
import { Either } from "effect"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { parseExpiresIn } from "../src/cli/Authorize.js"
import { freePort, type RunningBroker, startBroker } from "./support/broker.js"
import { sqlite, type TestDatabase } from "./support/databases.js"
import { type OAuthProviderHarness, startOAuthProvider } from "./support/oauthProvider.js"

const BIN = resolve("dist/cli/main.js")
const KEY = "ck_cli_authorize_key_3391"
const URL_PATTERN = /^(http:\/\/\S+\/v1\/connect\/authorize\/\S+\/start)$/m

interface Run {
  readonly code: number | null
  readonly signal: NodeJS.Signals | null
  readonly stdout: string
  readonly stderr: string
}

interface Running {
  readonly child: ChildProcessWithoutNullStreams
  readonly output: { stdout: string; stderr: string }
  /** The URL the command prints for the user to open. */
  readonly url: () => Promise<string>
  readonly done: Promise<Run>
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

const sleep = (ms: number) => new Promise((wake) => setTimeout(wake, ms))

/** Starts the built binary with pipes (not a terminal): no browser is opened, no spinner drawn. */
const start = (args: ReadonlyArray<string>, env: Record<string, string>): Running => {
  const child = spawn(process.execPath, [BIN, ...args], { env, stdio: "pipe" })
  const output = { stdout: "", stderr: "" }
  child.stdout.on("data", (chunk: Buffer) => {
    output.stdout += chunk.toString("utf8")
  })
  child.stderr.on("data", (chunk: Buffer) => {
    output.stderr += chunk.toString("utf8")
  })
  child.stdin.end()
  let exited = false
  const done = new Promise<Run>((resolveRun, reject) => {
    child.once("error", reject)
    child.once("close", (code, signal) => {
      exited = true
      resolveRun({ code, signal, ...output })
    })
  })
  const url = async () => {
    for (let attempt = 0; attempt < 200 && !exited; attempt++) {
      const found = URL_PATTERN.exec(output.stderr)?.[1]
      if (found !== undefined) return found
      await sleep(50)
    }
    throw new Error(`no URL printed: ${output.stderr}`)
  }
  return { child, output, url, done }
}

/** Ends a run that is still going after `ms`, so a broken wait fails the test instead of hanging it. */
const within = async (running: Running, ms: number): Promise<Run> => {
  const timer = setTimeout(() => running.child.kill("SIGKILL"), ms)
  try {
    return await running.done
  } finally {
    clearTimeout(timer)
  }
}

describe("connect authorize", () => {
  let provider: OAuthProviderHarness
  let database: TestDatabase
  let broker: RunningBroker
  let proxy: Server
  let env: Record<string, string>
  /** Every verifier the broker handed out, read off its answers by the proxy. */
  const verifiers: Array<string> = []
  /** The verifiers the status reads carried. */
  const polled: Array<string> = []
  const runs: Array<Run> = []

  const authorize = (...args: ReadonlyArray<string>) => start(["authorize", ...args], env)
  const finish = async (running: Running, ms = 25_000) => {
    const result = await within(running, ms)
    runs.push(result)
    return result
  }

  /** The user's browser: the broker's link, the provider's sign-in and consent (or refusal), back to the broker. */
  const browse = async (url: string, accountId: string, deny = false) => {
    const toProvider = await fetch(url, { redirect: "manual" })
    expect(toProvider.status).toBe(302)
    const back = await provider.completeAuthorization(toProvider.headers.get("location") ?? "", { accountId, deny })
    expect(back.toString().startsWith(`${broker.url}/v1/connect/callback`)).toBe(true)
    const landed = await fetch(back, { redirect: "manual" })
    return { status: landed.status, text: await landed.text() }
  }

  beforeAll(async () => {
    const port = await freePort()
    provider = await startOAuthProvider({ redirectUris: [`http://127.0.0.1:${port}/v1/connect/callback`] })
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
            authorizationEndpoint: provider.authorizationEndpoint,
            defaultScopes: { user: ["openid", "offline_access", "api:read"] }
          }
        ],
        projects: [{ id: "prj_web", keys: [{ environment: "production", secret: KEY }] }],
        links: [{ connector: "acme/api", project: "prj_web", environments: ["production"] }]
      }
    })
    proxy = createServer((request, response) => {
      const chunks: Array<Buffer> = []
      request.on("data", (chunk: Buffer) => chunks.push(chunk))
      request.on("end", () => {
        const body = Buffer.concat(chunks).toString("utf8")
        const path = request.url ?? "/"
        if (path.endsWith("/status") && body.length > 0) {
          const sent = JSON.parse(body) as { verifier?: unknown }
          if (typeof sent.verifier === "string") polled.push(sent.verifier)
        }
        const headers: Record<string, string> = {}
        for (const name of ["authorization", "content-type", "accept"]) {
          const value = request.headers[name]
          if (typeof value === "string") headers[name] = value
        }
        fetch(`${broker.url}${path}`, {
          method: request.method ?? "GET",
          headers,
          ...(body.length === 0 ? {} : { body })
        })
          .then(async (answer) => {
            const text = await answer.text()
            if (/^\/v1\/connect\/authorize\/[^/]+$/.test(path) && answer.ok) {
              const started = JSON.parse(text) as { verifier?: unknown }
              if (typeof started.verifier === "string") verifiers.push(started.verifier)
            }
            response.writeHead(answer.status, { "content-type": answer.headers.get("content-type") ?? "text/plain" })
            response.end(text)
          })
          .catch((error: unknown) => {
            response.writeHead(502)
            response.end(String(error))
          })
      })
    })
    await new Promise<void>((listening) => proxy.listen(0, "127.0.0.1", listening))
    const proxyUrl = `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`
    env = { ...cleanEnv(), CONNECT_URL: proxyUrl, CONNECT_TOKEN: KEY }
  }, 60_000)
  afterAll(async () => {
    proxy?.closeAllConnections()
    await new Promise<void>((closed) => (proxy === undefined ? closed() : proxy.close(() => closed())))
    await broker?.close()
    await provider?.close()
    await database?.drop()
  })

  it("waits while the user consents in the browser, prints JSON, exits 0; then connect token has the user's token", async () => {
    const running = authorize("acme/api", "--user-id", "ada", "--format", "json")
    const url = await running.url()
    expect(url.startsWith(`${broker.url}/v1/connect/authorize/req_`)).toBe(true)
    expect(running.output.stderr).toContain(
      'To connect user "ada" to connector "acme/api", open this URL in a browser:'
    )
    // Still waiting: the user has not come yet.
    await sleep(2_000)
    expect(running.child.exitCode).toBeNull()
    const landed = await browse(url, "ada")
    expect(landed.status).toBe(200)

    const result = await finish(running)
    expect(result.code).toBe(0)
    const printed = JSON.parse(result.stdout) as Record<string, unknown>
    expect(printed).toEqual({
      request: expect.stringMatching(/^req_/),
      status: "completed",
      connector: "acme/api",
      userId: "ada"
    })
    expect(url).toContain(String(printed.request))
    // Not a terminal: one waiting line, no spinner frames.
    expect(result.stderr).toContain("Waiting for the user to authorize")
    expect(result.stderr).not.toContain("\r")

    const token = await within(start(["token", "acme/api", "--user-id", "ada"], env), 20_000)
    runs.push(token)
    expect(token.code).toBe(0)
    const accessToken = token.stdout.trim()
    expect(accessToken.length).toBeGreaterThan(0)
    expect(await provider.introspect(accessToken)).toMatchObject({ active: true, sub: "ada" })
  })

  it("prints one line saying the user is connected in the plain format", async () => {
    const running = authorize("acme/api", "--user-id", "grace", "--scopes", "openid,offline_access api:read")
    await browse(await running.url(), "grace")
    const result = await finish(running)
    expect(result.code).toBe(0)
    expect(result.stdout).toBe('Connected: user "grace" authorized connector "acme/api".\n')
  })

  it("exits 2 with one clear line when the user refuses", async () => {
    const running = authorize("acme/api", "--user-id", "linus")
    const landed = await browse(await running.url(), "linus", true)
    expect(landed.status).toBe(400)
    const result = await finish(running)
    expect(result.code).toBe(2)
    expect(result.stdout).toBe("")
    const lines = result.stderr.trim().split("\n")
    expect(lines.at(-1)).toBe(
      "The authorization did not complete: the user denied access at the provider (access_denied)."
    )
    expect(lines.filter((line) => line.includes("access_denied"))).toHaveLength(1)
    // Nothing was connected.
    const token = await within(start(["token", "acme/api", "--user-id", "linus"], env), 20_000)
    runs.push(token)
    expect(token.code).toBe(1)
  })

  it("prints the outcome as JSON with --format json when the user refuses", async () => {
    const running = authorize("acme/api", "--user-id", "ken", "--format", "json")
    await browse(await running.url(), "ken", true)
    const result = await finish(running)
    expect(result.code).toBe(2)
    expect(JSON.parse(result.stdout)).toMatchObject({ status: "failed", error: "access_denied", userId: "ken" })
  })

  it("exits 2 and says to run it again when the link expires", async () => {
    const startedAt = Date.now()
    const running = authorize("acme/api", "--user-id", "margaret", "--expires-in", "2s")
    const url = await running.url()
    const result = await finish(running)
    expect(result.code).toBe(2)
    expect(Date.now() - startedAt).toBeGreaterThanOrEqual(1_500)
    expect(result.stdout).toBe("")
    expect(result.stderr.trim().split("\n").at(-1)).toBe(
      "The authorization link expired before the user completed it: run the command again for a new link."
    )
    // The link is dead too.
    const late = await fetch(url, { redirect: "manual" })
    expect(late.status).toBe(400)
  })

  it("stops cleanly on Ctrl+C with exit code 130", async () => {
    const before = polled.length
    const running = authorize("acme/api", "--user-id", "barbara")
    await running.url()
    // Once it waits: it has read the status at least once.
    for (let attempt = 0; attempt < 200 && polled.length === before; attempt++) await sleep(50)
    running.child.kill("SIGINT")
    const result = await finish(running, 10_000)
    expect(result.code).toBe(130)
    expect(result.stdout).toBe("")
    expect(result.stderr).toContain("Stopped waiting.")
  })

  it("refuses a missing --user-id and a bad --expires-in as usage errors (exit 2)", async () => {
    const missing = await finish(authorize("acme/api"))
    expect(missing.code).toBe(2)
    expect(missing.stderr).toContain("--user-id")
    const bad = await finish(authorize("acme/api", "--user-id", "ada", "--expires-in", "2h"))
    expect(bad.code).toBe(2)
    expect(bad.stderr).toContain("--expires-in")
  })

  it("exits 2 with the server's refusal when it offers no device flow", async () => {
    const result = await finish(authorize("acme/api", "--user-id", "ada", "--device"))
    expect(result.code).toBe(2)
    expect(result.stderr.trim().split("\n")).toHaveLength(1)
    expect(result.stderr).toContain("deviceCode")
  })

  it("exits 2 for an unknown connector", async () => {
    const result = await finish(authorize("acme/nope", "--user-id", "ada"))
    expect(result.code).toBe(2)
    expect(result.stderr.trim().split("\n")).toHaveLength(1)
    expect(result.stderr).toContain("acme/nope")
  })

  it("shows help with an example", async () => {
    const result = await finish(start(["authorize", "--help"], env))
    expect(result.code).toBe(0)
    expect(result.stdout).toContain("Example: connect authorize")
  })

  it("never prints a verifier or the caller key", () => {
    expect(verifiers.length).toBeGreaterThanOrEqual(5)
    // The command read the status with the verifiers it was given.
    expect(new Set(polled)).toEqual(new Set(verifiers))
    for (const result of runs) {
      for (const secret of [...verifiers, KEY]) {
        expect(result.stdout).not.toContain(secret)
        expect(result.stderr).not.toContain(secret)
      }
    }
  })
})

describe("connect authorize --device", () => {
  let provider: OAuthProviderHarness
  let database: TestDatabase
  let broker: RunningBroker
  let env: Record<string, string>

  beforeAll(async () => {
    const port = await freePort()
    provider = await startOAuthProvider({ redirectUris: [`http://127.0.0.1:${port}/v1/connect/callback`] })
    database = sqlite()
    broker = await startBroker({
      database,
      port,
      config: {
        connectors: [
          {
            uid: "acme/device",
            name: "Acme (device)",
            type: "oauth",
            clientId: provider.clients.broker.clientId,
            clientSecret: provider.clients.broker.clientSecret,
            tokenEndpoint: provider.tokenEndpoint,
            deviceAuthorizationEndpoint: provider.deviceAuthorizationEndpoint,
            defaultScopes: { user: ["openid", "offline_access", "api:read"] }
          }
        ],
        projects: [{ id: "prj_cli", keys: [{ environment: "production", secret: KEY }] }],
        links: [{ connector: "acme/device", project: "prj_cli", environments: ["production"] }]
      }
    })
    env = { ...cleanEnv(), CONNECT_URL: broker.url, CONNECT_TOKEN: KEY }
  }, 60_000)
  afterAll(async () => {
    await broker?.close()
    await provider?.close()
    await database?.drop()
  })

  it("shows the user code and the provider's page, and exits 0 once the user has entered it", async () => {
    const running = start(["authorize", "acme/device", "--user-id", "ada", "--device", "--format", "json"], env)
    let url: string | undefined
    let code: string | undefined
    for (let attempt = 0; attempt < 200 && (url === undefined || code === undefined); attempt++) {
      const lines = running.output.stderr.split("\n")
      const intro = lines.findIndex((line) => line.includes("open this URL in a browser:"))
      url = intro === -1 ? undefined : lines[intro + 1]
      code = /^ {4}Your code: (\S+)$/m.exec(running.output.stderr)?.[1]
      await sleep(50)
    }
    expect(url?.startsWith(`${provider.issuer}/device`)).toBe(true)
    expect(code).toMatch(/^[A-Z]{4}-[A-Z]{4}$/)
    await provider.completeDeviceAuthorization(url ?? "", { accountId: "ada", userCode: code ?? "" })
    const result = await within(running, 25_000)
    expect(result.code).toBe(0)
    expect(JSON.parse(result.stdout)).toMatchObject({ status: "completed", connector: "acme/device", userId: "ada" })
    const token = await within(start(["token", "acme/device", "--user-id", "ada"], env), 20_000)
    expect(token.code).toBe(0)
    expect(await provider.introspect(token.stdout.trim())).toMatchObject({ active: true, sub: "ada" })
  })
})

describe("--expires-in", () => {
  it("reads whole minutes, or a whole number with a unit, up to 60 minutes", () => {
    expect(parseExpiresIn("10")).toEqual(Either.right(600_000))
    expect(parseExpiresIn("90s")).toEqual(Either.right(90_000))
    expect(parseExpiresIn("1500ms")).toEqual(Either.right(1_500))
    expect(parseExpiresIn(" 60m ")).toEqual(Either.right(3_600_000))
    for (const bad of ["0", "61", "61m", "2h", "1.5", "-1", "", "ten"]) {
      expect(Either.isLeft(parseExpiresIn(bad))).toBe(true)
    }
  })
})
