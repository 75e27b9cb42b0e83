import { generateKeyPairSync } from "node:crypto"
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest"
import { type RunningBroker, startBroker } from "./support/broker.js"
import { backends, type TestDatabase } from "./support/databases.js"
import { type OAuthProviderHarness, startOAuthProvider } from "./support/oauthProvider.js"

const ADMIN_TOKEN = "adm_test_token_that_must_stay_secret_5521"
const RESOURCE = "https://api.test/orders"

interface Answer {
  readonly status: number
  readonly headers: Headers
  readonly text: string
  // biome-ignore lint/suspicious/noExplicitAny: test answers are read loosely.
  readonly body: any
}

/** A request to the broker as any HTTP client would make it. */
const call = async (
  broker: RunningBroker,
  method: string,
  path: string,
  token: string | undefined,
  body?: unknown
): Promise<Answer> => {
  const response = await fetch(`${broker.url}${path}`, {
    method,
    headers: {
      accept: "application/json",
      "content-type": "application/json",
      ...(token === undefined ? {} : { authorization: `Bearer ${token}` })
    },
    ...(body === undefined ? {} : { body: typeof body === "string" ? body : JSON.stringify(body) })
  })
  const text = await response.text()
  return { status: response.status, headers: response.headers, text, body: text === "" ? undefined : JSON.parse(text) }
}

const paths = (answer: Answer): ReadonlyArray<string> =>
  (answer.body?.error?.issues ?? []).map((issue: { path: string }) => issue.path)

describe.each(backends)("the admin API, on $name", ({ make }) => {
  let provider: OAuthProviderHarness
  let database: TestDatabase
  let disabledDatabase: TestDatabase
  let broker: RunningBroker
  let disabled: RunningBroker
  const answers: Array<Answer> = []

  /** An admin call with the right token; every answer is kept, to look for secrets in. */
  const admin = async (method: string, path: string, body?: unknown) => {
    const answer = await call(broker, method, path, ADMIN_TOKEN, body)
    answers.push(answer)
    return answer
  }
  const token = (key: string) =>
    call(broker, "POST", `/v1/connect/token/${encodeURIComponent("acme/admin")}`, key, {
      subject: { type: "app" },
      resources: [RESOURCE]
    })

  const declaration = () => ({
    uid: "acme/admin",
    name: "Acme (admin API)",
    type: "oauth",
    clientId: provider.clients.broker.clientId,
    clientSecret: provider.clients.broker.clientSecret,
    tokenEndpoint: provider.tokenEndpoint,
    revocationEndpoint: provider.revocationEndpoint,
    defaultScopes: { app: ["api:read"] },
    data: { docs: "https://acme.example/docs" }
  })

  // Every admin answer a test got, checked as the test ends: none holds the client secret or the admin token.
  afterEach(() => {
    for (const answer of answers.splice(0)) {
      expect(answer.text).not.toContain(provider.clients.broker.clientSecret)
      expect(answer.text).not.toContain(ADMIN_TOKEN)
    }
  })

  beforeAll(async () => {
    provider = await startOAuthProvider({ clientCredentialsTtl: 3600 })
    database = await make()
    disabledDatabase = await make()
    broker = await startBroker({ database, config: {}, env: { CONNECT_ADMIN_TOKEN: ADMIN_TOKEN } })
    disabled = await startBroker({ database: disabledDatabase, config: {} })
  }, 60_000)
  afterAll(async () => {
    await broker?.close()
    await disabled?.close()
    await provider?.close()
    await database?.drop()
    await disabledDatabase?.drop()
  })

  it("is disabled without CONNECT_ADMIN_TOKEN: every endpoint answers 401", async () => {
    for (const [method, path] of [
      ["GET", "/v1/admin/connectors"],
      ["POST", "/v1/admin/connectors"],
      ["GET", "/v1/admin/connectors/acme%2Fadmin"],
      ["DELETE", "/v1/admin/connectors/acme%2Fadmin"],
      ["PUT", "/v1/admin/connectors/acme%2Fadmin/links/prj"],
      ["DELETE", "/v1/admin/connectors/acme%2Fadmin/links/prj"],
      ["GET", "/v1/admin/projects"],
      ["POST", "/v1/admin/projects"],
      ["POST", "/v1/admin/projects/prj/keys"]
    ] as const) {
      const answer = await call(disabled, method, path, ADMIN_TOKEN, method === "GET" ? undefined : {})
      expect(answer.status, `${method} ${path}`).toBe(401)
      expect(answer.body.error.code).toBe("unauthorized")
      expect(answer.body.error.message).toContain("disabled until CONNECT_ADMIN_TOKEN is set")
      expect(answer.headers.get("cache-control")).toBe("no-store")
    }
  })

  it("answers 401 to a missing or wrong admin token", async () => {
    const missing = await call(broker, "GET", "/v1/admin/connectors", undefined)
    expect(missing.status).toBe(401)
    expect(missing.body.error.code).toBe("unauthorized")
    const wrong = await call(broker, "GET", "/v1/admin/connectors", `${ADMIN_TOKEN}x`)
    expect(wrong.status).toBe(401)
    expect(wrong.body.error.code).toBe("unauthorized")
    expect(wrong.text).not.toContain(ADMIN_TOKEN)
    const prefix = await call(broker, "GET", "/v1/admin/connectors", ADMIN_TOKEN.slice(0, -1))
    expect(prefix.status).toBe(401)
  })

  it("creates a connector, a project and a key, links them, and the key gets a real token", async () => {
    const created = await admin("POST", "/v1/admin/connectors", declaration())
    expect(created.status).toBe(201)
    expect(created.headers.get("cache-control")).toBe("no-store")
    expect(created.body).toMatchObject({
      uid: "acme/admin",
      name: "Acme (admin API)",
      type: "oauth",
      service: "acme",
      clientId: provider.clients.broker.clientId,
      tokenEndpoint: provider.tokenEndpoint,
      revocationEndpoint: provider.revocationEndpoint,
      tokenEndpointAuthMethod: "client_secret_basic",
      defaultScopes: { app: ["api:read"] },
      defaultTokenLifetimeSeconds: 3600,
      hasPrivateKey: false,
      installationsRequired: false,
      crossInstallation: false,
      data: { docs: "https://acme.example/docs" },
      links: [],
      installations: []
    })
    expect(created.body.id).toMatch(/^conn_/)
    expect(created.body).not.toHaveProperty("clientSecret")

    const byUid = await admin("GET", `/v1/admin/connectors/${encodeURIComponent("acme/admin")}`)
    expect(byUid.status).toBe(200)
    expect(byUid.body.id).toBe(created.body.id)
    const byId = await admin("GET", `/v1/admin/connectors/${created.body.id}`)
    expect(byId.body.uid).toBe("acme/admin")
    const list = await admin("GET", "/v1/admin/connectors")
    expect(list.status).toBe(200)
    expect(list.body.connectors.map((c: { uid: string }) => c.uid)).toContain("acme/admin")

    const project = await admin("POST", "/v1/admin/projects", {
      id: "prj_admin",
      name: "Admin-made",
      returnUrls: ["https://app.example/done"]
    })
    expect(project.status).toBe(201)
    expect(project.body).toMatchObject({
      id: "prj_admin",
      name: "Admin-made",
      returnUrls: ["https://app.example/done"],
      keys: []
    })

    const key = await admin("POST", "/v1/admin/projects/prj_admin/keys", { environment: "production" })
    expect(key.status).toBe(201)
    expect(key.body).toMatchObject({ project: "prj_admin", environment: "production" })
    expect(key.body.key).toMatch(/^ck_[A-Za-z0-9_-]{43}$/)
    const callerKey: string = key.body.key
    // A caller key is not an admin token.
    expect((await call(broker, "GET", "/v1/admin/connectors", callerKey)).status).toBe(401)
    const projects = await admin("GET", "/v1/admin/projects")
    expect(projects.body.projects).toContainEqual(
      expect.objectContaining({ id: "prj_admin", keys: [{ environment: "production", count: 1 }] })
    )
    expect(projects.text).not.toContain(callerKey)

    // Not linked yet.
    expect((await token(callerKey)).body.error.code).toBe("client_not_linked_to_project")

    const attached = await admin("PUT", `/v1/admin/connectors/acme%2Fadmin/links/prj_admin`, {
      environments: ["production", "preview"]
    })
    expect(attached.status).toBe(200)
    expect(attached.body).toEqual({
      connector: "acme/admin",
      project: "prj_admin",
      environments: ["preview", "production"]
    })
    // Attaching adds to the environments already there.
    const again = await admin("PUT", `/v1/admin/connectors/acme%2Fadmin/links/prj_admin`, {
      environments: ["development"]
    })
    expect(again.body.environments).toEqual(["development", "preview", "production"])

    const issued = await token(callerKey)
    expect(issued.status).toBe(200)
    expect(issued.body.connector.uid).toBe("acme/admin")
    const introspection = await provider.introspect(issued.body.token)
    expect(introspection.active).toBe(true)
    expect(introspection.aud).toBe(RESOURCE)

    const shown = await admin("GET", `/v1/admin/connectors/acme%2Fadmin`)
    expect(shown.body.links).toEqual([{ project: "prj_admin", environments: ["development", "preview", "production"] }])

    // Detaching one environment keeps the link for the others.
    const detached = await admin("DELETE", `/v1/admin/connectors/acme%2Fadmin/links/prj_admin`, {
      environments: ["production"]
    })
    expect(detached.status).toBe(200)
    expect(detached.body.environments).toEqual(["development", "preview"])
    const refused = await token(callerKey)
    expect(refused.status).toBe(403)
    expect(refused.body.error.code).toBe("client_not_enabled_for_environment")

    // Detaching without environments removes the link.
    const unlinked = await admin("DELETE", `/v1/admin/connectors/acme%2Fadmin/links/prj_admin`)
    expect(unlinked.status).toBe(200)
    expect(unlinked.body.environments).toEqual([])
    expect((await token(callerKey)).body.error.code).toBe("client_not_linked_to_project")
    expect((await admin("DELETE", `/v1/admin/connectors/acme%2Fadmin/links/prj_admin`)).status).toBe(404)

    // Removing the connector revokes its active tokens at the provider first.
    await admin("PUT", `/v1/admin/connectors/acme%2Fadmin/links/prj_admin`, { environments: ["production"] })
    const live = await token(callerKey)
    expect(live.status).toBe(200)
    const removed = await admin("DELETE", `/v1/admin/connectors/acme%2Fadmin`)
    expect(removed.status).toBe(200)
    expect(removed.body.removed).toBe("acme/admin")
    expect(removed.body.tokens.tokensFound).toBeGreaterThanOrEqual(1)
    expect(removed.body.tokens.providerRevoked).toBe(removed.body.tokens.tokensFound)
    expect(removed.body.tokens.deleted).toBe(removed.body.tokens.tokensFound)
    expect((await provider.introspect(live.body.token)).active).toBe(false)

    const gone = await admin("GET", `/v1/admin/connectors/acme%2Fadmin`)
    expect(gone.status).toBe(404)
    expect(gone.body.error.code).toBe("not_found")
    expect((await admin("DELETE", `/v1/admin/connectors/acme%2Fadmin`)).status).toBe(404)
    expect((await token(callerKey)).body.error.code).toBe("not_found")
  })

  it("answers 409 conflict to a connector or project that exists", async () => {
    const first = await admin("POST", "/v1/admin/connectors", { ...declaration(), uid: "acme/twice" })
    expect(first.status).toBe(201)
    const second = await admin("POST", "/v1/admin/connectors", { ...declaration(), uid: "acme/twice" })
    expect(second.status).toBe(409)
    expect(second.body.error.code).toBe("conflict")
    expect(second.body.error.message).toContain("acme/twice")
    expect((await admin("POST", "/v1/admin/projects", { id: "prj_twice" })).status).toBe(201)
    const project = await admin("POST", "/v1/admin/projects", { id: "prj_twice" })
    expect(project.status).toBe(409)
    expect(project.body.error.code).toBe("conflict")
  })

  it("answers 400 naming each bad field", async () => {
    const connector = await admin("POST", "/v1/admin/connectors", {
      uid: "acme/bad",
      tokenEndpoint: "ftp://auth.example/token",
      clientSecret: "",
      defaultTokenLifetimeSeconds: -5,
      scopes: ["x"]
    })
    expect(connector.status).toBe(400)
    expect(connector.body.error.code).toBe("bad_request")
    expect(paths(connector)).toEqual(
      expect.arrayContaining([
        "name",
        "type",
        "clientId",
        "clientSecret",
        "tokenEndpoint",
        "defaultTokenLifetimeSeconds",
        "scopes"
      ])
    )
    expect(paths(await admin("POST", "/v1/admin/connectors", "[1, 2]"))).toEqual([""])
    const notJson = await admin("POST", "/v1/admin/connectors", "{not json")
    expect(notJson.status).toBe(400)
    expect(notJson.body.error.issues).toEqual([{ path: "", message: "the body is not JSON" }])

    const installations = await admin("POST", "/v1/admin/connectors", {
      ...declaration(),
      uid: "acme/installations",
      installations: {
        items: [
          { id: "a", default: true },
          { id: "a", default: true }
        ]
      }
    })
    expect(installations.status).toBe(400)
    expect(paths(installations)).toEqual(["installations.items[1].id", "installations.items[1].default"])
    expect(installations.text).not.toContain("connectors[0]")

    const key = await admin("POST", "/v1/admin/connectors", {
      ...declaration(),
      uid: "acme/key",
      privateKey: "not a PEM key",
      signingAlgorithm: "RS256"
    })
    expect(key.status).toBe(400)
    expect(paths(key)).toEqual(["privateKey"])
    expect(key.text).not.toContain("not a PEM key")
    const alone = await admin("POST", "/v1/admin/connectors", { ...declaration(), uid: "acme/key", privateKey: "k" })
    expect(paths(alone)).toEqual(["signingAlgorithm"])

    const project = await admin("POST", "/v1/admin/projects", { id: "", returnUrls: ["javascript:alert(1)"], x: 1 })
    expect(project.status).toBe(400)
    expect(paths(project)).toEqual(expect.arrayContaining(["id", "returnUrls.0", "x"]))
    expect(project.body.error.issues).toContainEqual({
      path: "x",
      message: "is not a known field (check its spelling)"
    })

    await admin("POST", "/v1/admin/connectors", { ...declaration(), uid: "acme/links" })
    await admin("POST", "/v1/admin/projects", { id: "prj_links" })
    const empty = await admin("PUT", "/v1/admin/connectors/acme%2Flinks/links/prj_links", { environments: [] })
    expect(empty.status).toBe(400)
    expect(empty.body.error.issues).toEqual([{ path: "environments", message: "Expected at least one environment" }])
    const missing = await admin("PUT", "/v1/admin/connectors/acme%2Flinks/links/prj_links", {})
    expect(paths(missing)).toEqual(["environments"])
    const keyBody = await admin("POST", "/v1/admin/projects/prj_links/keys", { environment: 7 })
    expect(paths(keyBody)).toEqual(["environment"])
  })

  it("answers 404 to an unknown connector or project", async () => {
    await admin("POST", "/v1/admin/connectors", { ...declaration(), uid: "acme/known" })
    await admin("POST", "/v1/admin/projects", { id: "prj_known" })
    const project = await admin("PUT", "/v1/admin/connectors/acme%2Fknown/links/prj_nope", {
      environments: ["production"]
    })
    expect(project.status).toBe(404)
    expect(project.body.error).toMatchObject({ code: "not_found" })
    expect(project.body.error.message).toContain("prj_nope")
    const connector = await admin("PUT", "/v1/admin/connectors/acme%2Fnope/links/prj_known", {
      environments: ["production"]
    })
    expect(connector.status).toBe(404)
    expect(connector.body.error.message).toContain("acme/nope")
    expect((await admin("POST", "/v1/admin/projects/prj_nope/keys", { environment: "production" })).status).toBe(404)
  })

  it("refuses a secret given as { env: NAME }", async () => {
    const answer = await admin("POST", "/v1/admin/connectors", {
      ...declaration(),
      uid: "acme/env",
      clientSecret: { env: "ACME_CLIENT_SECRET" }
    })
    expect(answer.status).toBe(400)
    expect(answer.body.error.issues).toHaveLength(1)
    expect(answer.body.error.issues[0].path).toBe("clientSecret")
    expect(answer.body.error.issues[0].message).toContain("configuration file")
    expect((await admin("GET", "/v1/admin/connectors/acme%2Fenv")).status).toBe(404)
  })

  it("accepts a private key that fits its algorithm, and shows only that there is one", async () => {
    const { privateKey } = generateKeyPairSync("ec", { namedCurve: "P-256" })
    const pem = privateKey.export({ type: "pkcs8", format: "pem" }).toString()
    const created = await admin("POST", "/v1/admin/connectors", {
      ...declaration(),
      uid: "acme/signed",
      privateKey: pem,
      privateKeyId: "kid-1",
      signingAlgorithm: "ES256"
    })
    expect(created.status).toBe(201)
    expect(created.body).toMatchObject({ hasPrivateKey: true, privateKeyId: "kid-1", signingAlgorithm: "ES256" })
    expect(created.text).not.toContain("PRIVATE KEY")
  })

  it("never answers with the client secret or the admin token", async () => {
    // Its own calls (the other tests' answers are checked as each ends): a connector with a secret, shown and listed.
    const uid = "acme/secretive"
    expect((await admin("POST", "/v1/admin/connectors", { ...declaration(), uid })).status).toBe(201)
    expect((await admin("GET", `/v1/admin/connectors/${encodeURIComponent(uid)}`)).status).toBe(200)
    expect((await admin("GET", "/v1/admin/connectors")).status).toBe(200)
    expect((await admin("POST", "/v1/admin/connectors", { ...declaration(), uid })).status).toBe(409)
    expect(answers.length).toBe(4)
    expect(answers.map((answer) => answer.text).join("")).toContain(uid)
  })
})
