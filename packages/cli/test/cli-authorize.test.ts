/**
 * `connect authorize`, as a user runs it: the command in the test's process (the
 * built binary in its own for Ctrl+C), against a real broker on
 * 127.0.0.1 and a real OAuth provider (oidc-provider), with the test playing the
 * user's browser from the URL the command prints.
 *
 * The command talks to the broker through a recording proxy, so the tests know
 * each verifier the broker handed out and can check that none is printed.
 */
import { createServer, type Server } from "node:http"
import type { AddressInfo } from "node:net"
import { Either } from "effect"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import type { RunningBroker } from "../../broker/test/support/broker.js"
import {
  oauthClientOf,
  productionProject,
  startBrokerWithProvider
} from "../../broker/test/support/brokerWithProvider.js"
import { cleanEnv, type Run, type Running, sleep, start, waitForOutput, within } from "../../broker/test/support/cli.js"
import { sqlite, type TestDatabase } from "../../broker/test/support/databases.js"
import { visit } from "../../broker/test/support/http.js"
import type { OAuthProviderHarness } from "../../broker/test/support/oauthProvider.js"
import { parseExpiresIn } from "../src/Consent.js"
import { type InProcess, startInProcess, withinInProcess } from "./support/inProcess.js"

const KEY = "ck_cli_authorize_key_3391"
const URL_PATTERN = /^(http:\/\/\S+\/v1\/connect\/authorize\/\S+\/start)$/m

/** A run of `connect authorize`, with the URL it prints for the user to open. */
const authorizing = <R extends Running | InProcess>(running: R) => ({
  ...running,
  url: async () => {
    const found = await waitForOutput(running, (output) => URL_PATTERN.exec(output.stderr)?.[1], {
      attempts: 200,
      interval: 50
    })
    if (found === undefined) throw new Error(`no URL printed: ${running.output.stderr}`)
    return found
  }
})

/** What a `describe` runs against: a broker with its OAuth provider. */
interface BrokerUnderTest {
  readonly provider: OAuthProviderHarness
  readonly broker: RunningBroker
  /** The command's environment for the broker: its URL and the project key. */
  readonly env: Record<string, string>
}

/** Starts a broker (SQLite) and its OAuth provider before the `describe`'s tests, and stops them after. */
const useBrokerWithProvider = (
  options: Omit<Parameters<typeof startBrokerWithProvider>[0], "database">
): BrokerUnderTest => {
  let database: TestDatabase | undefined
  let started: { readonly provider: OAuthProviderHarness; readonly broker: RunningBroker } | undefined
  beforeAll(async () => {
    database = sqlite()
    started = await startBrokerWithProvider({ database, ...options })
  }, 60_000)
  afterAll(async () => {
    await started?.broker.close()
    await started?.provider.close()
    await database?.drop()
  })
  const get = () => {
    if (started === undefined) throw new Error("the broker has not started")
    return started
  }
  return {
    get provider() {
      return get().provider
    },
    get broker() {
      return get().broker
    },
    get env() {
      return { ...cleanEnv(), CONNECT_URL: get().broker.url, CONNECT_TOKEN: KEY }
    }
  }
}

describe("connect authorize", () => {
  let proxy: Server
  let env: Record<string, string>
  /** Every verifier the broker handed out, read off its answers by the proxy. */
  const verifiers: Array<string> = []
  /** The verifiers the status reads carried. */
  const polled: Array<string> = []

  /** How far the proxy's records go, so that a run's own are known. */
  const records = () => ({ verifiers: verifiers.length, polled: polled.length })
  /** Starts the command against the proxy in the test's process. */
  const command = (...args: ReadonlyArray<string>) => ({ ...startInProcess(args, env), since: records() })
  const authorize = (...args: ReadonlyArray<string>) => {
    const running = command("authorize", ...args)
    return { ...authorizing(running), since: running.since }
  }
  /**
   * Waits for a run's end (it is stopped after `ms`) and checks it: it read the status with the verifiers it was
   * given, and printed none of them, nor the caller key.
   */
  const finish = async (
    running: (InProcess | Running) & { readonly since: ReturnType<typeof records> },
    ms = 25_000
  ): Promise<Run> => {
    const result = "child" in running ? await within(running, ms) : await withinInProcess(running, ms)
    const label = "child" in running ? running.child.spawnargs.slice(2).join(" ") : running.args.join(" ")
    expect(new Set(polled.slice(running.since.polled)), label).toEqual(
      new Set(verifiers.slice(running.since.verifiers))
    )
    for (const secret of [...verifiers, KEY]) {
      expect(result.stdout, label).not.toContain(secret)
      expect(result.stderr, label).not.toContain(secret)
    }
    return result
  }

  /** The user's browser: the broker's link, the provider's sign-in and consent (or refusal), back to the broker. */
  const browse = async (url: string, accountId: string, deny = false) => {
    const toProvider = await visit(url)
    expect(toProvider.status).toBe(302)
    const back = await setup.provider.completeAuthorization(toProvider.location ?? "", { accountId, deny })
    expect(back.toString().startsWith(`${setup.broker.url}/v1/connect/callback`)).toBe(true)
    return visit(back)
  }

  const setup = useBrokerWithProvider({
    config: (provider) => ({
      connectors: [
        {
          uid: "acme/api",
          name: "Acme API",
          ...oauthClientOf(provider),
          authorizationEndpoint: provider.authorizationEndpoint,
          defaultScopes: { user: ["openid", "offline_access", "api:read"] }
        }
      ],
      ...productionProject({ id: "prj_web", key: KEY }, ["acme/api"])
    })
  })

  beforeAll(async () => {
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
        fetch(`${setup.broker.url}${path}`, {
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
  })

  it("waits while the user consents in the browser, prints JSON, exits 0; then connect token has the user's token", async () => {
    const running = authorize("acme/api", "--user-id", "ada", "--format", "json")
    const url = await running.url()
    expect(url.startsWith(`${setup.broker.url}/v1/connect/authorize/req_`)).toBe(true)
    expect(running.output.stderr).toContain(
      'To connect user "ada" to connector "acme/api", open this URL in a browser:'
    )
    // Still waiting: it has read the status twice (so it took the first "pending" in and went on), and not exited.
    const before = polled.length
    for (let attempt = 0; attempt < 300 && polled.length < before + 2 && !running.exited(); attempt++) await sleep(50)
    expect(polled.length).toBeGreaterThanOrEqual(before + 2)
    expect(running.exited()).toBe(false)
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

    const token = await finish(command("token", "acme/api", "--user-id", "ada"), 20_000)
    expect(token.code).toBe(0)
    const accessToken = token.stdout.trim()
    expect(accessToken.length).toBeGreaterThan(0)
    expect(await setup.provider.introspect(accessToken)).toMatchObject({ active: true, sub: "ada" })
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
    const token = await finish(command("token", "acme/api", "--user-id", "linus"), 20_000)
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
      "The authorization link expired before it was used: run the command again for a new link."
    )
    // The link is dead too.
    const late = await visit(url)
    expect(late.status).toBe(400)
  })

  it("stops cleanly on Ctrl+C with exit code 130", async () => {
    const before = polled.length
    // The binary, for a signal as a shell sends it and the exit code the shell sees.
    const since = records()
    const running = { ...authorizing(start(["authorize", "acme/api", "--user-id", "barbara"], env)), since }
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
    const result = await finish(command("authorize", "--help"))
    expect(result.code).toBe(0)
    expect(result.stdout).toMatch(/Examples?:\n {2}connect authorize/)
  })
})

describe("connect authorize --device", () => {
  const setup = useBrokerWithProvider({
    // The broker polls the provider every second, not every 5 (RFC 8628's default).
    provider: { deviceInterval: 1 },
    config: (provider) => ({
      connectors: [
        {
          uid: "acme/device",
          name: "Acme (device)",
          ...oauthClientOf(provider),
          deviceAuthorizationEndpoint: provider.deviceAuthorizationEndpoint,
          defaultScopes: { user: ["openid", "offline_access", "api:read"] }
        }
      ],
      ...productionProject({ id: "prj_cli", key: KEY }, ["acme/device"])
    })
  })

  it("shows the user code and the provider's page, and exits 0 once the user has entered it", async () => {
    const running = startInProcess(
      ["authorize", "acme/device", "--user-id", "ada", "--device", "--format", "json"],
      setup.env
    )
    const shown = await waitForOutput(
      running,
      (output) => {
        const lines = output.stderr.split("\n")
        const intro = lines.findIndex((line) => line.includes("open this URL in a browser:"))
        const url = intro === -1 ? undefined : lines[intro + 1]
        const code = /^ {4}Your code: (\S+)$/m.exec(output.stderr)?.[1]
        return url === undefined || code === undefined ? undefined : { url, code }
      },
      { attempts: 200, interval: 50 }
    )
    const url = shown?.url
    const code = shown?.code
    expect(url?.startsWith(`${setup.provider.issuer}/device`)).toBe(true)
    expect(code).toMatch(/^[A-Z]{4}-[A-Z]{4}$/)
    await setup.provider.completeDeviceAuthorization(url ?? "", { accountId: "ada", userCode: code ?? "" })
    const result = await withinInProcess(running, 25_000)
    expect(result.code).toBe(0)
    expect(JSON.parse(result.stdout)).toMatchObject({ status: "completed", connector: "acme/device", userId: "ada" })
    const token = await withinInProcess(startInProcess(["token", "acme/device", "--user-id", "ada"], setup.env), 20_000)
    expect(token.code).toBe(0)
    expect(await setup.provider.introspect(token.stdout.trim())).toMatchObject({ active: true, sub: "ada" })
  })
})

describe("connect install", () => {
  const setup = useBrokerWithProvider({
    // A Slack-like token response that names the workspace.
    provider: { installQuirks: { tokenResponse: { team: { id: "T123", name: "Acme" } } } },
    config: (provider) => ({
      connectors: [
        {
          uid: "chat/bot",
          name: "Chat bot",
          ...oauthClientOf(provider),
          authorizationEndpoint: provider.authorizationEndpoint,
          defaultScopes: { app: ["openid", "offline_access", "api:read"] },
          installations: { required: true, tenantIdFrom: { tokenResponse: "team.id" } }
        },
        {
          uid: "directory/app",
          name: "Directory app",
          ...oauthClientOf(provider),
          defaultScopes: { app: ["api:read"] },
          installations: {
            required: true,
            authorizationEndpoint: `${provider.authorizationEndpoint}?tenant_path={tenantId}`,
            tenantIdFrom: { callback: "tenant" }
          }
        }
      ],
      ...productionProject({ id: "prj_cli", key: KEY }, ["chat/bot", "directory/app"])
    })
  })

  it("waits while the tenant's admin installs, prints the installation, exits 0; then app tokens work for it", async () => {
    const running = authorizing(startInProcess(["install", "chat/bot"], setup.env))
    const url = await running.url()
    expect(running.output.stderr).toContain('To install connector "chat/bot", an admin of the tenant opens this URL')
    const toProvider = await visit(url)
    const back = await setup.provider.completeAuthorization(toProvider.location ?? "", { accountId: "workspace-admin" })
    expect((await visit(back)).status).toBe(200)
    const result = await withinInProcess(running, 25_000)
    expect(result.code).toBe(0)
    expect(result.stdout).toBe('Installed: connector "chat/bot" for installation "T123".\n')

    const token = await withinInProcess(
      startInProcess(["token", "chat/bot", "--subject", "app", "--installation-id", "T123"], setup.env),
      20_000
    )
    expect(token.code).toBe(0)
    expect(await setup.provider.introspect(token.stdout.trim())).toMatchObject({ active: true, sub: "workspace-admin" })
  })

  it("a connector installed per tenant needs --tenant-id: one line, exit 2", async () => {
    const result = await withinInProcess(startInProcess(["install", "directory/app", "--no-open"], setup.env), 20_000)
    expect(result.code).toBe(2)
    expect(result.stdout).toBe("")
    expect(result.stderr.trim().split("\n")).toHaveLength(1)
    expect(result.stderr).toContain("tenantId")
    const help = await withinInProcess(startInProcess(["install", "--help"], setup.env), 20_000)
    expect(help.code).toBe(0)
    expect(help.stdout).toMatch(/Examples?:\n {2}connect install slack\/acme/)
  })
})

describe("connect authorize, for a project that confirms its users", () => {
  // A stub of the wire protocol: the user's part is done once the status has been read twice, and then only the
  // application can confirm the user (with the code its return URL received), which the command cannot do.
  let server: Server
  let env: Record<string, string>
  let reads = 0

  beforeAll(async () => {
    server = createServer((request, response) => {
      request.resume()
      request.on("end", () => {
        const path = request.url ?? "/"
        const answer =
          path === "/v1/connect/authorize/acme%2Fapi"
            ? {
                request: "req_confirm",
                verifier: "vrf_confirm_secret_5512",
                url: "http://127.0.0.1:9/start",
                expiresAt: Date.now() + 600_000
              }
            : path === "/v1/connect/authorize/req_confirm/status"
              ? { request: "req_confirm", status: ++reads < 2 ? "pending" : "awaiting_confirmation" }
              : undefined
        response.writeHead(answer === undefined ? 404 : 200, { "content-type": "application/json" })
        response.end(JSON.stringify(answer ?? { error: { code: "not_found", message: "no such route" } }))
      })
    })
    await new Promise<void>((listening) => server.listen(0, "127.0.0.1", listening))
    env = {
      ...cleanEnv(),
      CONNECT_URL: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
      CONNECT_TOKEN: KEY
    }
  })
  afterAll(async () => {
    server?.closeAllConnections()
    await new Promise<void>((closed) => (server === undefined ? closed() : server.close(() => closed())))
  })

  it("stops waiting on awaiting_confirmation, says the application must confirm the user, and exits 3", async () => {
    const plain = await withinInProcess(
      startInProcess(["authorize", "acme/api", "--user-id", "ada", "--no-open"], env),
      20_000
    )
    expect(plain.code).toBe(3)
    expect(plain.stdout).toBe("")
    expect(plain.stderr.trim().split("\n").at(-1)).toContain("awaits the application's confirmation")
    expect(plain.stderr).not.toContain("vrf_confirm_secret_5512")

    reads = 0
    const json = await withinInProcess(
      startInProcess(["authorize", "acme/api", "--user-id", "ada", "--format", "json"], env),
      20_000
    )
    expect(json.code).toBe(3)
    expect(JSON.parse(json.stdout)).toEqual({
      request: "req_confirm",
      status: "awaiting_confirmation",
      connector: "acme/api",
      userId: "ada"
    })
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
