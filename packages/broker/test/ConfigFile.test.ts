import * as fs from "node:fs"
import * as os from "node:os"
import * as nodePath from "node:path"
import { NodeFileSystem } from "@effect/platform-node"
import { afterAll, describe, expect, it } from "@effect/vitest"
import { ConfigProvider, Effect, Logger, LogLevel, Redacted } from "effect"
import { type BrokerSetup, type ConfigFileError, decode, load, serviceOf, tokenEndpointFor } from "../src/ConfigFile.js"

// Distinctive secrets: none of them may ever appear in an error.
const ACME_SECRET = "acme-client-secret-Zq81Tt"
const GRAPH_SECRET = "graph-client-secret-Mv27Pp"
const GRAPH_KEY = "graph-private-key-Lr55Ww"
const WEB_PROD = "web-prod-key-Hx42Kd"
const WEB_PREVIEW = "web-preview-key-Bn90Qa"
const ADMIN_PROD = "admin-prod-key-Fc13Ys"
const ADMIN_PREVIEW = "admin-preview-key-Ue68Gm"
const LITERAL = "literal-secret-Jw07Rc"

const ENV: Readonly<Record<string, string>> = {
  ACME_CLIENT_SECRET: ACME_SECRET,
  GRAPH_CLIENT_SECRET: GRAPH_SECRET,
  GRAPH_PRIVATE_KEY: GRAPH_KEY,
  WEB_PROD_KEY: WEB_PROD,
  WEB_PREVIEW_KEY: WEB_PREVIEW,
  ADMIN_PROD_KEY: ADMIN_PROD,
  ADMIN_PREVIEW_KEY: ADMIN_PREVIEW
}
const SECRETS = [...Object.values(ENV), LITERAL]

/** The example of docs/broker.md. */
const example = () => ({
  connectors: [
    {
      uid: "acme/api",
      name: "Acme API",
      type: "oauth",
      clientId: "broker",
      clientSecret: { env: "ACME_CLIENT_SECRET" },
      tokenEndpoint: "https://auth.acme.example/token",
      revocationEndpoint: "https://auth.acme.example/token/revocation",
      authorizationEndpoint: "https://auth.acme.example/authorize",
      defaultScopes: { app: ["api:read"], user: ["openid", "offline_access", "api:read"] }
    },
    {
      uid: "contoso/graph",
      name: "Contoso Graph",
      type: "oauth",
      service: "microsoft",
      clientId: "8d2f0c3e-broker",
      clientSecret: { env: "GRAPH_CLIENT_SECRET" },
      tokenEndpoint: "https://login.contoso.example/common/oauth2/v2.0/token",
      tokenEndpointAuthMethod: "client_secret_post",
      defaultTokenLifetimeSeconds: 1800,
      privateKey: { env: "GRAPH_PRIVATE_KEY" },
      privateKeyId: "key-2024",
      signingAlgorithm: "RS256",
      data: { tenantDomain: "contoso.example", docs: ["https://docs.contoso.example"] },
      installations: {
        required: true,
        items: [
          {
            id: "inst_eu",
            tenantId: "2f4a-eu",
            default: true,
            tokenEndpoint: "https://login.contoso.example/{tenantId}/oauth2/v2.0/token"
          },
          { id: "inst_us", tenantId: "9c1b-us" }
        ]
      }
    }
  ],
  projects: [
    {
      id: "prj_web",
      name: "Web",
      keys: [
        { environment: "production", secret: { env: "WEB_PROD_KEY" } },
        { environment: "preview", secret: { env: "WEB_PREVIEW_KEY" } }
      ],
      returnUrls: ["https://web.example/connected"]
    },
    {
      id: "prj_admin",
      keys: [
        { environment: "production", secret: { env: "ADMIN_PROD_KEY" } },
        { environment: "preview", secret: { env: "ADMIN_PREVIEW_KEY" } }
      ]
    }
  ],
  links: [
    { connector: "acme/api", project: "prj_web", environments: ["production", "preview"] },
    { connector: "contoso/graph", project: "prj_admin", environments: ["production"] }
  ]
})

/** A minimal valid connector. */
const connector = (uid: string, fields: Readonly<Record<string, unknown>> = {}) => ({
  uid,
  name: uid,
  type: "oauth",
  clientId: "broker",
  clientSecret: LITERAL,
  tokenEndpoint: "http://127.0.0.1:8080/token",
  ...fields
})

const dir = fs.mkdtempSync(nodePath.join(os.tmpdir(), "connect-config-"))
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }))

let files = 0
/** Writes a config file (JSON, or the text as is) and returns its path. */
const write = (content: unknown): string => {
  const file = nodePath.join(dir, `connect-${++files}.json`)
  fs.writeFileSync(file, typeof content === "string" ? content : JSON.stringify(content, null, 2))
  return file
}

const withEnv =
  (vars: Readonly<Record<string, string>>) =>
  <A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
    Effect.withConfigProvider(effect, ConfigProvider.fromMap(new Map(Object.entries(vars))))

const loadFile = (file: string, vars: Readonly<Record<string, string>> = ENV) =>
  load(file).pipe(Effect.provide(NodeFileSystem.layer), withEnv(vars))

const decodeFails = (json: unknown, vars: Readonly<Record<string, string>> = ENV) =>
  decode(json).pipe(withEnv(vars), Effect.flip)

const lines = (error: ConfigFileError): ReadonlyArray<string> =>
  error.issues.map((issue) => (issue.path === "" ? issue.message : `${issue.path}: ${issue.message}`))

const expectNoSecret = (error: ConfigFileError) => {
  const rendered = [error.message, JSON.stringify(error.issues), String(error)].join("\n")
  for (const secret of SECRETS) expect(rendered).not.toContain(secret)
}

describe("ConfigFile", () => {
  it.effect("still loads a file with the deprecated introspectionEndpoint, and warns once, naming the field", () =>
    Effect.gen(function* () {
      const warnings: Array<string> = []
      const logger = Logger.make(({ logLevel, message }) => {
        if (logLevel._tag === "Warning") warnings.push(Array.isArray(message) ? message.join(" ") : String(message))
      })
      const file = example()
      const withField = {
        ...file,
        connectors: file.connectors.map((connector, c) =>
          c === 0 ? { ...connector, introspectionEndpoint: "https://auth.acme.example/introspect" } : connector
        )
      }
      const setup = yield* loadFile(write(withField)).pipe(Effect.provide(Logger.replace(Logger.defaultLogger, logger)))
      expect(setup.connectors[0]?.uid).toBe("acme/api")
      expect(warnings).toHaveLength(1)
      expect(warnings[0]).toContain("connectors[0].introspectionEndpoint")
      expect(warnings[0]).toContain("deprecated")

      // Without it, no warning.
      warnings.length = 0
      yield* loadFile(write(example())).pipe(Effect.provide(Logger.replace(Logger.defaultLogger, logger)))
      expect(warnings).toEqual([])
    }).pipe(Logger.withMinimumLogLevel(LogLevel.All))
  )

  it.effect("loads a full file: defaults applied, secrets resolved", () =>
    Effect.gen(function* () {
      const setup: BrokerSetup = yield* loadFile(write(example()))
      const [acme, graph] = setup.connectors
      expect(acme?.uid).toBe("acme/api")
      expect(acme?.service).toBe("acme")
      expect(acme?.tokenEndpointAuthMethod).toBe("client_secret_basic")
      expect(acme?.defaultTokenLifetimeSeconds).toBe(3600)
      expect(acme?.defaultScopes).toEqual({ app: ["api:read"], user: ["openid", "offline_access", "api:read"] })
      expect(acme?.installations).toEqual({ required: false, crossInstallation: false, items: [] })
      expect(acme?.revocationEndpoint).toBe("https://auth.acme.example/token/revocation")
      expect(acme?.introspectionEndpoint).toBeUndefined()
      expect(acme && "privateKey" in acme).toBe(false)
      expect(acme && Redacted.value(acme.clientSecret)).toBe(ACME_SECRET)
      expect(String(acme?.clientSecret)).not.toContain(ACME_SECRET)

      expect(graph?.service).toBe("microsoft")
      expect(graph?.tokenEndpointAuthMethod).toBe("client_secret_post")
      expect(graph?.defaultTokenLifetimeSeconds).toBe(1800)
      expect(graph?.defaultScopes).toEqual({})
      expect(graph?.signingAlgorithm).toBe("RS256")
      expect(graph?.privateKeyId).toBe("key-2024")
      expect(graph?.data).toEqual({ tenantDomain: "contoso.example", docs: ["https://docs.contoso.example"] })
      expect(graph && Redacted.value(graph.clientSecret)).toBe(GRAPH_SECRET)
      expect(graph?.privateKey && Redacted.value(graph.privateKey)).toBe(GRAPH_KEY)
      expect(graph?.installations).toEqual({
        required: true,
        crossInstallation: false,
        items: [
          {
            id: "inst_eu",
            tenantId: "2f4a-eu",
            default: true,
            tokenEndpoint: "https://login.contoso.example/{tenantId}/oauth2/v2.0/token"
          },
          { id: "inst_us", tenantId: "9c1b-us", default: false }
        ]
      })

      expect(
        setup.projects.map((project) => ({
          id: project.id,
          name: project.name,
          returnUrls: project.returnUrls,
          keys: project.keys.map((key) => [key.environment, Redacted.value(key.secret)])
        }))
      ).toEqual([
        {
          id: "prj_web",
          name: "Web",
          returnUrls: ["https://web.example/connected"],
          keys: [
            ["production", WEB_PROD],
            ["preview", WEB_PREVIEW]
          ]
        },
        {
          id: "prj_admin",
          name: undefined,
          returnUrls: undefined,
          keys: [
            ["production", ADMIN_PROD],
            ["preview", ADMIN_PREVIEW]
          ]
        }
      ])
      expect(setup.links).toEqual(example().links)
    })
  )

  it.effect("accepts literal secrets, a byte order mark, and an empty object", () =>
    Effect.gen(function* () {
      const literal = {
        connectors: [connector("solo")],
        projects: [{ id: "p", keys: [{ environment: "development", secret: "dev-key" }] }]
      }
      const loaded = yield* loadFile(write(`\uFEFF${JSON.stringify(literal)}`), {})
      expect(loaded.connectors[0] && Redacted.value(loaded.connectors[0].clientSecret)).toBe(LITERAL)
      expect(loaded.connectors[0]?.service).toBe("solo")
      expect(loaded.projects[0]?.keys[0] && Redacted.value(loaded.projects[0].keys[0].secret)).toBe("dev-key")

      const decoded = yield* decode(literal).pipe(withEnv({}))
      expect(decoded.connectors[0] && Redacted.value(decoded.connectors[0].clientSecret)).toBe(LITERAL)
      expect(yield* decode({}).pipe(withEnv({}))).toEqual({ connectors: [], projects: [], links: [] })
    })
  )

  it.effect("a JSON syntax error names the file and the position, and does not quote the text", () =>
    Effect.gen(function* () {
      const file = write(
        `{\n  "projects": [{ "id": "p", "keys": [{ "environment": "production", "secret": "${LITERAL}" }] }]\n  "links": []\n}`
      )
      const error = yield* Effect.flip(loadFile(file))
      expect(error._tag).toBe("ConfigFileError")
      expect(error.path).toBe(file)
      expect(error.message).toContain(`Invalid connector configuration in ${file}:`)
      expect(error.message).toMatch(/not valid JSON at line 3, column 3 \(position \d+\)/)
      expectNoSecret(error)

      const bare = write(`{ "projects": ${LITERAL} }`)
      const unquoted = yield* Effect.flip(loadFile(bare))
      expect(unquoted.message).toContain(bare)
      expect(unquoted.message).toContain("not valid JSON")
      expectNoSecret(unquoted)
    })
  )

  it.effect("a missing or empty file is reported with its path", () =>
    Effect.gen(function* () {
      const file = nodePath.join(dir, "absent.json")
      const error = yield* Effect.flip(loadFile(file))
      expect(error.path).toBe(file)
      expect(lines(error)).toEqual(["the file does not exist"])
      const empty = yield* Effect.flip(loadFile(write("  \n")))
      expect(lines(empty)).toEqual(["the file is empty: write a JSON object"])
    })
  )

  it.effect("a bad URL, a missing field and a wrong type each name their path", () =>
    Effect.gen(function* () {
      const { uid: _uid, ...noUid } = connector("x")
      const error = yield* decodeFails({
        connectors: [
          connector("a", { tokenEndpoint: "not a url" }),
          noUid,
          connector("c", { defaultTokenLifetimeSeconds: "3600" }),
          connector("d", { revocationEndpoint: "ftp://auth.example/revoke" }),
          connector("e", { installations: { items: [{ id: "i", default: "yes" }] } })
        ],
        projects: [{ id: "p", keys: [{ environment: "production" }] }],
        links: [{ connector: "a", project: "p", environments: [] }]
      })
      expect(error.path).toBeUndefined()
      expect(lines(error)).toEqual([
        "connectors[0].tokenEndpoint: Expected an absolute http(s) URL",
        "connectors[1].uid: is missing",
        "connectors[2].defaultTokenLifetimeSeconds: Expected number",
        "connectors[3].revocationEndpoint: Expected an absolute http(s) URL",
        "connectors[4].installations.items[0].default: Expected boolean",
        "projects[0].keys[0].secret: is missing",
        "links[0].environments: Expected at least one item"
      ])
    })
  )

  it.effect("URLs: credentials, fragments and unknown placeholders are refused; http is allowed", () =>
    Effect.gen(function* () {
      const error = yield* decodeFails({
        connectors: [
          connector("a", { tokenEndpoint: "https://user:pass@auth.example/token" }),
          connector("b", { tokenEndpoint: "https://auth.example/token#top" }),
          connector("c", { tokenEndpoint: "https://auth.example/{tenantId}/token" }),
          connector("d", {
            installations: { items: [{ id: "i", tenantId: "t", tokenEndpoint: "https://auth.example/{tenant}/token" }] }
          }),
          connector("e", { tokenEndpoint: "http://127.0.0.1:9999/token" })
        ],
        projects: [{ id: "p", keys: [], returnUrls: ["/relative"] }]
      })
      expect(lines(error)).toEqual([
        "connectors[0].tokenEndpoint: Expected a URL without credentials (use clientId and clientSecret)",
        "connectors[1].tokenEndpoint: Expected a URL without a #fragment",
        "connectors[2].tokenEndpoint: Expected a URL without placeholders ({tenantId} is only replaced in an installation's tokenEndpoint)",
        "connectors[3].installations.items[0].tokenEndpoint: Expected a URL whose only placeholder is {tenantId}",
        "projects[0].returnUrls[0]: Expected an absolute http(s) URL"
      ])
    })
  )

  it.effect("tokenParams: string values, none of the parameters the broker sets itself", () =>
    Effect.gen(function* () {
      const error = yield* decodeFails({
        connectors: [
          connector("a", { tokenParams: { expiring: "1", Code_Verifier: "x", client_secret: "y" } }),
          connector("b", { tokenParams: { expiring: 1 } }),
          connector("c", { tokenParams: { expiring: "1", audience: "" } })
        ]
      })
      expect(lines(error)).toEqual([
        "connectors[0].tokenParams: The broker sets Code_Verifier, client_secret itself: not a tokenParams name",
        "connectors[1].tokenParams.expiring: Expected string"
      ])
      const setup = yield* decode({ connectors: [connector("c", { tokenParams: { expiring: "1" } })] }).pipe(
        withEnv(ENV)
      )
      expect(setup.connectors[0]?.tokenParams).toEqual({ expiring: "1" })
    })
  )

  it.effect("wrong types and unknown fields", () =>
    Effect.gen(function* () {
      const error = yield* decodeFails({
        connectors: [
          connector("a", {
            tokenEndpointAuthMethod: "private_key_jwt",
            signingAlgorithm: "HS256",
            defaultScopes: { app: "api:read" },
            data: ["not", "an", "object"],
            revocationEndpiont: "https://auth.example/revoke"
          }),
          "acme/api"
        ],
        projects: {},
        links: [{ connector: "a", project: "p", environments: ["production"], note: "x" }],
        extra: true
      })
      expect(lines(error)).toEqual([
        "extra: is not a known field (check its spelling)",
        "connectors[0].revocationEndpiont: is not a known field (check its spelling)",
        'connectors[0].tokenEndpointAuthMethod: Expected "client_secret_basic" or "client_secret_post"',
        "connectors[0].defaultScopes.app: Expected an array",
        'connectors[0].signingAlgorithm: Expected "RS256" or "ES256"',
        "connectors[0].data: Expected an object",
        "connectors[1]: Expected an object",
        "projects: Expected an array",
        "links[0].note: is not a known field (check its spelling)"
      ])
      const root = yield* decodeFails([1, 2])
      expect(lines(root)).toEqual(["Expected an object"])
    })
  )

  it.effect("a missing or empty environment variable names the variable and the path", () =>
    Effect.gen(function* () {
      const { ACME_CLIENT_SECRET: _acme, ...rest } = ENV
      const missing = yield* Effect.flip(loadFile(write(example()), rest))
      expect(lines(missing)).toEqual(["connectors[0].clientSecret: environment variable ACME_CLIENT_SECRET is not set"])

      const empty = yield* Effect.flip(loadFile(write(example()), { ...ENV, WEB_PREVIEW_KEY: "" }))
      expect(lines(empty)).toEqual(["projects[0].keys[1].secret: environment variable WEB_PREVIEW_KEY is empty"])

      const badName = yield* decodeFails({ connectors: [connector("a", { clientSecret: { env: "$ACME" } })] })
      expect(lines(badName)).toEqual([
        'connectors[0].clientSecret: Expected a non-empty string, or { "env": "NAME" } with NAME an environment variable name'
      ])
    })
  )

  describe("webhooks", () => {
    // Distinctive, well-formed secrets: never in an error either.
    const HOOK_SECRET = `whsec_${Buffer.from("hook-secret-bytes-Kp31Vd-0123456789ab").toString("base64")}`
    const HOOK_ENV_SECRET = `whsec_${Buffer.from("hook-env-secret-bytes-Rt77Qe-01234567").toString("base64")}`
    const project = (webhooks: ReadonlyArray<unknown>) => ({ projects: [{ id: "prj_web", keys: [], webhooks }] })
    const hook = (fields: Readonly<Record<string, unknown>> = {}) => ({
      url: "https://app.example/hooks/connect",
      secret: HOOK_SECRET,
      ...fields
    })
    const expectNoHookSecret = (error: ConfigFileError) => {
      const rendered = [error.message, JSON.stringify(error.issues), String(error)].join("\n")
      for (const secret of [HOOK_SECRET, HOOK_ENV_SECRET]) {
        expect(rendered).not.toContain(secret.slice("whsec_".length))
      }
    }

    it.effect("a declared webhook is decoded with its secret resolved, written or from the environment", () =>
      Effect.gen(function* () {
        const setup = yield* decode(
          project([
            hook({ events: ["token.*", "grant.revoked"] }),
            hook({ id: "wh_env", url: "http://127.0.0.1:8080/in", secret: { env: "HOOK_SECRET" } })
          ])
        ).pipe(withEnv({ HOOK_SECRET: HOOK_ENV_SECRET }))
        const webhooks = setup.projects[0]?.webhooks ?? []
        expect(webhooks.map(({ secret, ...rest }) => ({ ...rest, secret: Redacted.value(secret) }))).toEqual([
          { url: "https://app.example/hooks/connect", secret: HOOK_SECRET, events: ["token.*", "grant.revoked"] },
          { id: "wh_env", url: "http://127.0.0.1:8080/in", secret: HOOK_ENV_SECRET }
        ])
      })
    )

    it.effect("an unknown field, a bad secret, a missing variable and a bad URL each name their path", () =>
      Effect.gen(function* () {
        const error = yield* decodeFails(
          project([
            hook({ colour: "blue" }),
            hook({ secret: "whsec_short" }),
            hook({ secret: "hook-secret-without-prefix" }),
            hook({ secret: { env: "UNSET_HOOK_SECRET" } }),
            hook({ secret: { env: "BAD_HOOK_SECRET" } }),
            hook({ url: "not a url" }),
            hook({ url: "http://hooks.example.com/in" }),
            hook({ url: "http://169.254.169.254/latest" }),
            hook({ events: ["token.minted"] })
          ]),
          { BAD_HOOK_SECRET: "whsec_not*base64" }
        )
        const expected = "Expected whsec_ followed by the base64 of 24 to 64 bytes"
        expect(lines(error)).toEqual([
          "projects[0].webhooks[0].colour: is not a known field (check its spelling)",
          `projects[0].webhooks[1].secret: ${expected}`,
          `projects[0].webhooks[2].secret: ${expected}`,
          "projects[0].webhooks[3].secret: environment variable UNSET_HOOK_SECRET is not set",
          `projects[0].webhooks[4].secret: ${expected}`,
          "projects[0].webhooks[5].url: Expected an absolute http(s) URL",
          "projects[0].webhooks[6].url: Expected an https:// URL (http:// only on loopback, or on a host listed in CONNECT_ALLOWED_HTTP_HOSTS)",
          "projects[0].webhooks[7].url: Expected a public URL: link-local and cloud metadata addresses are refused",
          'projects[0].webhooks[8].events[0]: Expected an event kind (token.issued) or a group of kinds (token.*), not "token.minted"'
        ])
        expectNoHookSecret(error)
      })
    )
  })

  describe("checks across the file", () => {
    const cases: ReadonlyArray<readonly [string, unknown, string, string]> = [
      [
        "duplicate connector uids",
        { connectors: [connector("a"), connector("b"), connector("c"), connector("a")] },
        "connectors[3].uid",
        'connector "a" is already declared at connectors[0]'
      ],
      [
        "duplicate project ids",
        {
          projects: [
            { id: "p", keys: [] },
            { id: "p", keys: [] }
          ]
        },
        "projects[1].id",
        'project "p" is already declared at projects[0]'
      ],
      [
        "duplicate installation ids within a connector",
        { connectors: [connector("a", { installations: { items: [{ id: "i" }, { id: "j" }, { id: "i" }] } })] },
        "connectors[0].installations.items[2].id",
        'installation "i" is already declared at connectors[0].installations.items[0]'
      ],
      [
        "more than one default installation",
        {
          connectors: [
            connector("a", {
              installations: {
                items: [
                  { id: "i", default: true },
                  { id: "j", default: true }
                ]
              }
            })
          ]
        },
        "connectors[0].installations.items[1].default",
        "connectors[0].installations.items[0] is already the default installation"
      ],
      [
        "a link to an unknown connector",
        {
          projects: [{ id: "p", keys: [] }],
          links: [{ connector: "acme/nope", project: "p", environments: ["production"] }]
        },
        "links[0].connector",
        'no connector "acme/nope" is declared'
      ],
      [
        "a link to an unknown project",
        {
          connectors: [connector("a")],
          links: [{ connector: "a", project: "prj_nope", environments: ["production"] }]
        },
        "links[0].project",
        'no project "prj_nope" is declared'
      ],
      [
        "the same connector and project linked twice",
        {
          connectors: [connector("a")],
          projects: [{ id: "p", keys: [] }],
          links: [
            { connector: "a", project: "p", environments: ["production"] },
            { connector: "a", project: "p", environments: ["preview"] }
          ]
        },
        "links[1]",
        'project "p" is already linked to connector "a" at links[0]'
      ],
      [
        "a key secret reused as a literal",
        {
          projects: [
            { id: "p", keys: [{ environment: "production", secret: LITERAL }] },
            { id: "q", keys: [{ environment: "production", secret: LITERAL }] }
          ]
        },
        "projects[1].keys[0].secret",
        "the same secret as projects[0].keys[0].secret"
      ],
      [
        "a key secret reused through the same variable",
        {
          projects: [
            {
              id: "p",
              keys: [
                { environment: "production", secret: { env: "WEB_PROD_KEY" } },
                { environment: "preview", secret: { env: "WEB_PROD_KEY" } }
              ]
            }
          ]
        },
        "projects[0].keys[1].secret",
        "the same secret as projects[0].keys[0].secret"
      ],
      [
        "a key secret reused through two variables with the same value",
        {
          projects: [
            { id: "p", keys: [{ environment: "production", secret: { env: "WEB_PROD_KEY" } }] },
            { id: "q", keys: [{ environment: "production", secret: { env: "SAME_AS_WEB_PROD" } }] }
          ]
        },
        "projects[1].keys[0].secret",
        "the same secret as projects[0].keys[0].secret"
      ],
      [
        "a {tenantId} placeholder in an installation without tenantId",
        {
          connectors: [
            connector("a", {
              installations: { items: [{ id: "i", tokenEndpoint: "https://login.example/{tenantId}/token" }] }
            })
          ]
        },
        "connectors[0].installations.items[0].tokenEndpoint",
        "uses {tenantId} but the installation has no tenantId"
      ]
    ]
    for (const [name, json, path, message] of cases) {
      it.effect(name, () =>
        Effect.gen(function* () {
          const error = yield* decodeFails(json, { ...ENV, SAME_AS_WEB_PROD: WEB_PROD })
          expect(error.issues).toHaveLength(1)
          expect(error.issues[0]?.path).toBe(path)
          expect(error.issues[0]?.message).toContain(message)
          expectNoSecret(error)
        })
      )
    }
  })

  it.effect("reports every issue at once, in file order", () =>
    Effect.gen(function* () {
      const json = example()
      const [acme, graph] = json.connectors
      const file = write({
        ...json,
        connectors: [
          { ...acme, tokenEndpoint: "auth.acme.example/token", clientSecret: { env: "UNSET_SECRET" } },
          { ...graph, uid: "acme/api" }
        ],
        links: [...json.links, { connector: "acme/nope", project: "prj_web", environments: ["production"] }]
      })
      const error = yield* Effect.flip(loadFile(file))
      expect(lines(error)).toEqual([
        "connectors[0].tokenEndpoint: Expected an absolute http(s) URL",
        "connectors[0].clientSecret: environment variable UNSET_SECRET is not set",
        'connectors[1].uid: connector "acme/api" is already declared at connectors[0]: give each connector its own uid',
        'links[1].connector: no connector "contoso/graph" is declared: declare it in connectors, or fix the uid',
        'links[2].connector: no connector "acme/nope" is declared: declare it in connectors, or fix the uid'
      ])
      expect(error.message).toBe(
        [`Invalid connector configuration in ${file}:`, ...lines(error).map((line) => `  ${line}`)].join("\n")
      )
    })
  )

  it.effect("no error ever contains a secret", () =>
    Effect.gen(function* () {
      const error = yield* decodeFails(
        {
          connectors: [
            connector("a", { clientSecret: [LITERAL], clientSecrett: ACME_SECRET }),
            connector("b", { clientSecret: { env: "GRAPH_CLIENT_SECRET", value: GRAPH_SECRET } }),
            connector("c", { privateKey: 42, privateKeyId: GRAPH_KEY.length }),
            connector("d", { tokenEndpoint: `https://broker:${WEB_PREVIEW}@auth.example/token` }),
            connector("e", { clientSecret: { env: ADMIN_PREVIEW } })
          ],
          projects: [
            {
              id: "p",
              keys: [
                { environment: "production", secret: WEB_PROD },
                { environment: "preview", secret: WEB_PROD },
                { environment: "development", secret: { env: "ADMIN_PROD_KEY" } },
                { environment: "staging", secret: { env: "COPY_OF_ADMIN_PROD" } },
                { environment: 7, secret: ADMIN_PROD }
              ]
            }
          ]
        },
        { ...ENV, COPY_OF_ADMIN_PROD: ADMIN_PROD }
      )
      expect(error.issues.length).toBeGreaterThanOrEqual(8)
      expectNoSecret(error)
    })
  )

  it("the example of docs/broker.md is the one tested here", () => {
    const doc = fs.readFileSync(new URL("../docs/broker.md", import.meta.url), "utf8")
    const block = /### Example\n[\s\S]*?```json\n([\s\S]*?)\n```/.exec(doc)?.[1]
    expect(block && JSON.parse(block)).toEqual(example())
  })

  it("the message without a file", () => {
    const error = decode({ links: [{ connector: "a", project: "p", environments: ["x"] }] }).pipe(
      Effect.flip,
      Effect.runSync
    )
    expect(error.message).toBe(
      [
        "Invalid connector configuration:",
        '  links[0].connector: no connector "a" is declared: declare it in connectors, or fix the uid',
        '  links[0].project: no project "p" is declared: declare it in projects, or fix the id'
      ].join("\n")
    )
  })

  it("tokenEndpointFor and serviceOf", () => {
    const graph = { tokenEndpoint: "https://login.contoso.example/common/token" }
    expect(tokenEndpointFor(graph)).toBe(graph.tokenEndpoint)
    expect(tokenEndpointFor(graph, { id: "i", default: false })).toBe(graph.tokenEndpoint)
    expect(
      tokenEndpointFor(graph, {
        id: "i",
        tenantId: "2f4a eu",
        default: false,
        tokenEndpoint: "https://login.contoso.example/{tenantId}/token"
      })
    ).toBe("https://login.contoso.example/2f4a%20eu/token")
    expect(serviceOf({ uid: "slack/acme" })).toBe("slack")
    expect(serviceOf({ uid: "github" })).toBe("github")
    expect(serviceOf({ uid: "slack/acme", service: "slack-enterprise" })).toBe("slack-enterprise")
  })
})
