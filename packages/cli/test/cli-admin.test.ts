import { mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { adminRoutes } from "@effect-connect/broker/AdminApi"
import { type Method, type Route, routes } from "effect-connect/Protocol"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { type RunningBroker, startBroker } from "../../broker/test/support/broker.js"
import { oauthClientOf } from "../../broker/test/support/brokerWithProvider.js"
import { cleanEnv, failsWithOneLine, type Run } from "../../broker/test/support/cli.js"
import { sqlite, type TestDatabase } from "../../broker/test/support/databases.js"
import { adminRequest, sendJson } from "../../broker/test/support/http.js"
import { type OAuthProviderHarness, startOAuthProvider } from "../../broker/test/support/oauthProvider.js"
import { runInProcessPrintingNone } from "./support/inProcess.js"

const ADMIN_TOKEN = "adm_cli_token_never_printed_8830"

const oneLine = (text: string) => text.trim().split("\n")

// Every command runs in the test's process (a process of its own costs about a second on a busy machine). Each test
// makes the connectors, projects and keys it needs itself (over the admin API), under names no other test uses, so the
// tests pass in any order; the tests about a whole listing run against an empty broker of their own.
describe("the connect admin commands", { timeout: 90_000 }, () => {
  let provider: OAuthProviderHarness
  let database: TestDatabase
  let broker: RunningBroker
  let env: Record<string, string>
  let directory: string

  /** Runs the command in `runEnv`; every run is checked as it ends: it never prints the admin token or the client secret. */
  const connectWith = (runEnv: Record<string, string>, ...args: ReadonlyArray<string>): Promise<Run> =>
    runInProcessPrintingNone([ADMIN_TOKEN, provider.clients.broker.clientSecret], args, runEnv)
  const connect = (...args: ReadonlyArray<string>): Promise<Run> => connectWith(env, ...args)

  /** A call of the admin API over HTTP with the admin token (at the shared broker unless `at` says); its JSON answer. */
  const admin = <P extends `/${string}`>(
    route: Route<Method, P>,
    params: Parameters<Route<Method, P>["path"]>[0],
    body?: unknown,
    at = broker.url
  ): Promise<unknown> => adminRequest(at, ADMIN_TOKEN, route, params, body)
  /** An OAuth connector for the provider's client, with app scopes and the provider's revocation endpoint. */
  const createConnector = (uid: string, fields: Record<string, unknown> = {}, at = broker.url) =>
    admin(
      adminRoutes.createConnector,
      {},
      {
        uid,
        name: uid,
        ...oauthClientOf(provider),
        revocationEndpoint: provider.revocationEndpoint,
        defaultScopes: { app: ["api:read"] },
        ...fields
      },
      at
    )
  /** A project, with the fields `fields` gives (a name, return URLs). */
  const createProject = (id: string, fields: Record<string, unknown> = {}) =>
    admin(adminRoutes.createProject, {}, { id, ...fields })
  /** A new production caller key of `project`. */
  const createKey = async (project: string): Promise<string> => {
    const created = await admin(adminRoutes.createKey, { project }, { environment: "production" })
    return (created as { readonly key: string }).key
  }
  /** Starts an empty broker of the test's own, gives `use` its URL, and stops it (and drops its database) after. */
  const withOwnBroker = async (use: (url: string) => Promise<void>): Promise<void> => {
    const ownDatabase = sqlite()
    try {
      const own = await startBroker({ database: ownDatabase, config: {}, env: { CONNECT_ADMIN_TOKEN: ADMIN_TOKEN } })
      try {
        await use(own.url)
      } finally {
        await own.close()
      }
    } finally {
      await ownDatabase.drop()
    }
  }

  beforeAll(async () => {
    provider = await startOAuthProvider({ clientCredentialsTtl: 3600 })
    database = sqlite()
    broker = await startBroker({ database, config: {}, env: { CONNECT_ADMIN_TOKEN: ADMIN_TOKEN } })
    directory = mkdtempSync(join(tmpdir(), "connect-cli-admin-"))
    env = {
      ...cleanEnv(),
      CONNECT_URL: broker.url,
      CONNECT_ADMIN_TOKEN: ADMIN_TOKEN,
      ACME_SECRET: provider.clients.broker.clientSecret
    }
  }, 60_000)
  afterAll(async () => {
    await broker?.close()
    await provider?.close()
    await database?.drop()
    if (directory !== undefined) rmSync(directory, { recursive: true, force: true })
  })

  it("lists no connectors at first", async () => {
    await withOwnBroker(async (url) => {
      const result = await connectWith({ ...env, CONNECT_URL: url }, "connectors", "list")
      expect(result).toMatchObject({ code: 0, stdout: "No connectors.\n" })
    })
  })

  it("creates a connector from flags, the client secret read from the variable --client-secret-env names", async () => {
    const result = await connect(
      "connectors",
      "create",
      "--uid",
      "acme/flags",
      "--name",
      "Acme CLI",
      "--client-id",
      provider.clients.broker.clientId,
      "--client-secret-env",
      "ACME_SECRET",
      "--token-endpoint",
      provider.tokenEndpoint,
      "--revocation-endpoint",
      provider.revocationEndpoint,
      "--scopes-app",
      "api:read"
    )
    expect(result.code).toBe(0)
    expect(result.stdout).toMatch(/^Created connector acme\/flags \(conn_[\w-]+\)\n$/)
  })

  it("creates a connector from a file, resolving { env } there, and prints it as JSON", async () => {
    const file = join(directory, "acme-file.json")
    writeFileSync(
      file,
      JSON.stringify({
        uid: "acme/file",
        name: "Acme from a file",
        clientId: provider.clients.broker.clientId,
        clientSecret: { env: "ACME_SECRET" },
        tokenEndpoint: provider.tokenEndpoint,
        defaultScopes: { app: ["api:read"] }
      })
    )
    const result = await connect("connectors", "create", "--file", file, "--type", "oauth2", "--format", "json")
    expect(result.code).toBe(0)
    const body = JSON.parse(result.stdout)
    expect(body).toMatchObject({ uid: "acme/file", type: "oauth2", hasPrivateKey: false, links: [] })
  })

  it("fails with one line: a duplicate, no client secret, bad fields, a missing file", async () => {
    await createConnector("acme/duplicate")
    const duplicate = await connect(
      "connectors",
      "create",
      "--uid",
      "acme/duplicate",
      "--client-id",
      "x",
      "--client-secret-env",
      "ACME_SECRET",
      "--token-endpoint",
      provider.tokenEndpoint
    )
    failsWithOneLine(duplicate)
    expect(duplicate.stderr).toContain("exists already")
    expect(duplicate.stderr).toContain("409")

    const noSecret = await connect("connectors", "create", "--uid", "acme/nosecret", "--client-id", "x")
    failsWithOneLine(noSecret)
    expect(noSecret.stderr).toContain("--client-secret-env")

    const unset = await connect(
      "connectors",
      "create",
      "--uid",
      "acme/unset",
      "--client-secret-env",
      "NOT_SET_ANYWHERE"
    )
    failsWithOneLine(unset)
    expect(unset.stderr).toContain("NOT_SET_ANYWHERE")

    const bad = await connect(
      "connectors",
      "create",
      "--uid",
      "acme/bad",
      "--client-secret-env",
      "ACME_SECRET",
      "--token-endpoint",
      "ftp://auth.example/token"
    )
    failsWithOneLine(bad)
    expect(bad.stderr).toContain("clientId: is missing")
    expect(bad.stderr).toContain("tokenEndpoint: Expected an absolute http(s) URL")

    const missing = await connect("connectors", "create", "--file", join(directory, "nope.json"))
    failsWithOneLine(missing)
    expect(missing.stderr).toContain("does not exist")
  })

  it("lists and shows connectors, without their secrets", async () => {
    await withOwnBroker(async (url) => {
      // Created out of order: the listing is sorted by uid.
      await createConnector("acme/file", { name: "Acme from a file" }, url)
      await createConnector("acme/cli", { name: "Acme CLI" }, url)
      const own = { ...env, CONNECT_URL: url }
      const plain = await connectWith(own, "connectors", "list")
      expect(plain.code).toBe(0)
      const lines = oneLine(plain.stdout)
      expect(lines[0]).toMatch(/^UID\s+NAME\s+TYPE\s+SERVICE\s+ID$/)
      expect(lines.some((line) => line.startsWith("acme/cli ") && line.includes("Acme CLI"))).toBe(true)
      const json = await connectWith(own, "connectors", "list", "--format", "json")
      expect(JSON.parse(json.stdout).connectors.map((c: { uid: string }) => c.uid)).toEqual(["acme/cli", "acme/file"])

      const show = await connectWith(own, "connectors", "show", "acme/cli")
      expect(show.code).toBe(0)
      expect(show.stdout).toContain("uid:                    acme/cli")
      expect(show.stdout).toContain(`client id:              ${provider.clients.broker.clientId}`)
      expect(show.stdout).toContain("default scopes (app):   api:read")
      expect(show.stdout).toContain("private key:            no")
      expect(show.stdout).toContain("links: none")
    })
  })

  it("creates and lists projects", async () => {
    const created = await connect(
      "projects",
      "create",
      "prj_created",
      "--name",
      "CLI",
      "--return-url",
      "https://app.example/x"
    )
    expect(created).toMatchObject({ code: 0, stdout: "Created project prj_created\n" })
    const again = await connect("projects", "create", "prj_created")
    failsWithOneLine(again)
    expect(again.stderr).toContain("conflict")
    const bad = await connect("projects", "create", "prj_bad", "--return-url", "not a url")
    failsWithOneLine(bad)
    expect(bad.stderr).toContain("returnUrls")
  })

  it("creates a caller key and prints it once, alone on stdout", async () => {
    await createProject("prj_keys", { name: "CLI" })
    const result = await connect("keys", "create", "--project", "prj_keys", "--environment", "production")
    expect(result.code).toBe(0)
    expect(result.stdout).toMatch(/^ck_[A-Za-z0-9_-]{43}\n$/)
    const callerKey = result.stdout.trim()
    expect(oneLine(result.stderr)).toHaveLength(1)
    expect(result.stderr).toContain("shown only now")
    expect(result.stderr).not.toContain(callerKey)

    const list = await connect("projects", "list")
    expect(list.code).toBe(0)
    expect(list.stdout).toMatch(/prj_keys\s+CLI\s+production:1/)
    expect(list.stdout).not.toContain(callerKey)

    const json = await connect(
      "keys",
      "create",
      "--project",
      "prj_keys",
      "--environment",
      "preview",
      "--format",
      "json"
    )
    expect(json.code).toBe(0)
    expect(JSON.parse(json.stdout)).toMatchObject({ project: "prj_keys", environment: "preview" })

    const unknown = await connect("keys", "create", "--project", "prj_nope", "--environment", "production")
    failsWithOneLine(unknown)
    expect(unknown.stderr).toContain("prj_nope")
  })

  it("attaches and detaches, and the new key's token requests follow", async () => {
    await createConnector("acme/attach")
    await createProject("prj_attach")
    const callerKey = await createKey("prj_attach")
    const token = () =>
      connectWith(
        { ...cleanEnv(), CONNECT_URL: broker.url, CONNECT_TOKEN: callerKey },
        "token",
        "acme/attach",
        "--subject",
        "app"
      )

    const none = await connect("attach", "acme/attach", "--project", "prj_attach")
    failsWithOneLine(none)
    expect(none.stderr).toContain("--environment")

    const attached = await connect(
      "attach",
      "acme/attach",
      "--project",
      "prj_attach",
      "--environment",
      "production",
      "--environment",
      "preview"
    )
    expect(attached.code).toBe(0)
    expect(attached.stdout).toBe("Connector acme/attach is linked to project prj_attach for: preview, production\n")

    const issued = await token()
    expect(issued.code).toBe(0)
    const introspection = await provider.introspect(issued.stdout.trim())
    expect(introspection.active).toBe(true)

    const detached = await connect(
      "detach",
      "acme/attach",
      "--project",
      "prj_attach",
      "--environment",
      "production",
      "--format",
      "json"
    )
    expect(detached.code).toBe(0)
    expect(JSON.parse(detached.stdout)).toEqual({
      connector: "acme/attach",
      project: "prj_attach",
      environments: ["preview"]
    })
    const refused = await token()
    expect(refused.code).toBe(2)
    expect(refused.stderr).toContain("not enabled for this environment")

    const whole = await connect("detach", "acme/attach", "--project", "prj_attach")
    expect(whole).toMatchObject({
      code: 0,
      stdout: "Connector acme/attach is no longer linked to project prj_attach\n"
    })
    const notLinked = await connect("detach", "acme/attach", "--project", "prj_attach")
    failsWithOneLine(notLinked)
    expect(notLinked.stderr).toContain("not linked")
  })

  it("lists and removes installations", async () => {
    await createConnector("acme/inst", {
      name: "Acme with installations",
      installations: { items: [{ id: "T1", tenantId: "tenant-1", default: true }] }
    })
    const listed = await connect("installations", "list", "acme/inst")
    expect(listed.code).toBe(0)
    expect(listed.stdout).toMatch(/ID\s+TENANT\s+DEFAULT\s+SOURCE\nT1\s+tenant-1\s+yes\s+config\n/)

    const refused = await connect("installations", "remove", "acme/inst", "T1")
    failsWithOneLine(refused)
    expect(refused.stderr).toContain("--yes")
    const removed = await connect("installations", "remove", "acme/inst", "T1", "--yes", "--format", "json")
    expect(removed.code).toBe(0)
    expect(JSON.parse(removed.stdout)).toEqual({
      installationId: "T1",
      tokensFound: 0,
      grantsFound: 0,
      providerRevoked: 0,
      providerSkipped: 0,
      providerFailed: 0
    })
    expect((await connect("installations", "list", "acme/inst")).stdout).toBe(
      "Connector acme/inst has no installations.\n"
    )
    const again = await connect("installations", "remove", "acme/inst", "T1", "--yes")
    failsWithOneLine(again)
    expect(again.stderr).toContain("no installation")
    expect((await connect("connectors", "remove", "acme/inst", "--yes")).code).toBe(0)
  })

  it("removes a connector only with --yes when stdin is not a terminal", async () => {
    await createConnector("acme/unused")
    // A connector that has issued a token, which its removal revokes at the provider.
    await createConnector("acme/used")
    await createProject("prj_remove")
    const key = await createKey("prj_remove")
    await admin(adminRoutes.attach, { connector: "acme/used", project: "prj_remove" }, { environments: ["production"] })
    const issued = await sendJson(
      "POST",
      `${broker.url}${routes.token.path({ connector: "acme/used" })}`,
      {
        subject: { type: "app" }
      },
      key
    )
    expect(issued.status).toBe(200)

    const refused = await connect("connectors", "remove", "acme/unused")
    failsWithOneLine(refused)
    expect(refused.stderr).toContain("--yes")
    expect((await connect("connectors", "show", "acme/unused")).code).toBe(0)

    const removed = await connect("connectors", "remove", "acme/unused", "--yes")
    expect(removed.code).toBe(0)
    expect(removed.stdout).toContain("Removed connector acme/unused\ntokens found: 0")

    const json = await connect("connectors", "remove", "acme/used", "--yes", "--format", "json")
    expect(json.code).toBe(0)
    expect(JSON.parse(json.stdout)).toMatchObject({
      removed: "acme/used",
      tokens: { tokensFound: 1, providerRevoked: 1 }
    })

    const gone = await connect("connectors", "show", "acme/used")
    failsWithOneLine(gone)
    expect(gone.stderr).toContain("not_found")
  })

  it("says which admin token was refused and where it came from", async () => {
    const base = { ...cleanEnv(), CONNECT_URL: broker.url }
    const [fromCallerVariable, fromFlag, fromAdminVariable] = await Promise.all([
      connectWith({ ...base, CONNECT_TOKEN: "ck_caller_key_0001" }, "connectors", "list"),
      connectWith(base, "connectors", "list", "--token", "adm_wrong_token_0002"),
      connectWith({ ...base, CONNECT_ADMIN_TOKEN: "adm_wrong_token_0003" }, "connectors", "list")
    ])
    for (const result of [fromCallerVariable, fromFlag, fromAdminVariable]) failsWithOneLine(result)
    expect(fromCallerVariable.stderr).toContain(
      "CONNECT_TOKEN was sent as the admin token, since CONNECT_ADMIN_TOKEN is not set; set CONNECT_ADMIN_TOKEN or pass --token"
    )
    expect(fromFlag.stderr).toContain("The broker refused the admin token given by --token")
    expect(fromFlag.stderr).not.toContain("CONNECT_TOKEN")
    expect(fromAdminVariable.stderr).toContain("The broker refused the admin token given by CONNECT_ADMIN_TOKEN")
    for (const [result, secret] of [
      [fromCallerVariable, "ck_caller_key_0001"],
      [fromFlag, "adm_wrong_token_0002"],
      [fromAdminVariable, "adm_wrong_token_0003"]
    ] as const) {
      expect(result.stderr).not.toContain(secret)
    }
  })

  it("suggests the nearest connector when the one named does not exist", async () => {
    await createConnector("acme/suggested")
    const [near, far] = await Promise.all([
      connect("connectors", "show", "acme/sugested"),
      connect("installations", "list", "acme/nothing-like-it")
    ])
    failsWithOneLine(near)
    expect(near.stderr).toContain('did you mean "acme/suggested"?')
    failsWithOneLine(far)
    expect(far.stderr).not.toContain("did you mean")
  })

  it("exits 2 with one line on a wrong or missing admin token, or no broker", async () => {
    const wrong = await connectWith({ ...env, CONNECT_ADMIN_TOKEN: "adm_wrong_token_0001" }, "connectors", "list")
    failsWithOneLine(wrong)
    expect(wrong.stderr).toContain("unauthorized")
    expect(wrong.stderr).not.toContain("adm_wrong_token_0001")

    const viaFlag = await connectWith(
      { ...cleanEnv(), CONNECT_URL: broker.url },
      "connectors",
      "list",
      "--token",
      ADMIN_TOKEN
    )
    expect(viaFlag.code).toBe(0)

    const fallback = await connectWith(
      { ...cleanEnv(), CONNECT_URL: broker.url, CONNECT_TOKEN: ADMIN_TOKEN },
      "projects",
      "list"
    )
    expect(fallback.code).toBe(0)

    const missing = await connectWith({ ...cleanEnv(), CONNECT_URL: broker.url }, "projects", "list")
    failsWithOneLine(missing)
    expect(missing.stderr).toContain("CONNECT_ADMIN_TOKEN")

    const noUrl = await connectWith({ ...cleanEnv(), CONNECT_ADMIN_TOKEN: ADMIN_TOKEN }, "projects", "list")
    failsWithOneLine(noUrl)
    expect(noUrl.stderr).toContain("CONNECT_URL")
  })

  // Every command's help is checked in-process (Help.test.ts); these are the built binary's.
  it("shows help with an example for an admin group and command, and exits 0", async () => {
    const cases = [
      ["connectors", "--help"],
      ["connectors", "create", "--help"]
    ]
    const results = await Promise.all(cases.map((args) => connect(...args)))
    results.forEach((result, i) => {
      const args = cases[i] ?? []
      expect(result.code, args.join(" ")).toBe(0)
      expect(result.stdout, args.join(" ")).toMatch(new RegExp(`Examples?:\n {2}(\\S+=\\S+ )*connect ${args[0]}`))
    })
  })
})
