/**
 * `connect connectors list|show|create|remove`: the broker's connectors,
 * through its admin API.
 *
 * `create` takes the connector's declaration from a JSON file (shaped like a
 * connector of the broker's configuration file), from flags, or both (a flag
 * wins over the file). The client secret is never a flag's value: it comes
 * from the environment variable `--client-secret-env` names, from the file
 * (itself or `{ "env": "NAME" }`, read here), or from a prompt on a terminal.
 *
 * @since 0.1.0
 */
import * as Args from "@effect/cli/Args"
import * as Command from "@effect/cli/Command"
import * as Options from "@effect/cli/Options"
import * as Prompt from "@effect/cli/Prompt"
import * as FileSystem from "@effect/platform/FileSystem"
import { ConnectorList, ConnectorRemoved, ConnectorView } from "@effect-connect/broker/AdminApi"
import { Config, Console, Effect, Option, Redacted, Schema } from "effect"
import { isRecord } from "effect-connect/Json"
import * as AdminClient from "./AdminClient.js"
import { type CliExit, confirm, fail } from "./Exit.js"
import * as Flags from "./Flags.js"
import { formatSummary } from "./RevokeTokens.js"
import { isoTime, table } from "./Table.js"
import { splitScopes } from "./Token.js"

const json = (value: unknown) => Console.log(JSON.stringify(value, null, 2))

const connectorArg = Args.text({ name: "connector" }).pipe(
  Args.withDescription("The connector's uid or id, e.g. acme/api")
)

const yesNo = (value: boolean) => (value ? "yes" : "no")

/** A connector, one `field: value` line each, with its links and installations when shown. */
export const formatConnector = (connector: ConnectorView): string => {
  const lines: Array<[string, string]> = [
    ["uid", connector.uid],
    ["id", connector.id],
    ["name", connector.name],
    ["type", connector.type],
    ["service", connector.service],
    ["client id", connector.clientId],
    ["token endpoint", connector.tokenEndpoint]
  ]
  // After `service`: the preset the connector was declared with.
  if (connector.provider !== undefined) lines.splice(5, 0, ["provider", connector.provider])
  if (connector.authorizationEndpoint !== undefined)
    lines.push(["authorization endpoint", connector.authorizationEndpoint])
  if (connector.revocationEndpoint !== undefined) lines.push(["revocation endpoint", connector.revocationEndpoint])
  if (connector.introspectionEndpoint !== undefined)
    lines.push(["introspection endpoint", connector.introspectionEndpoint])
  lines.push(["auth method", connector.tokenEndpointAuthMethod])
  lines.push(["default scopes (app)", (connector.defaultScopes.app ?? []).join(" ") || "none"])
  lines.push(["default scopes (user)", (connector.defaultScopes.user ?? []).join(" ") || "none"])
  lines.push(["default token lifetime", `${connector.defaultTokenLifetimeSeconds} s`])
  const key = [
    connector.signingAlgorithm,
    connector.privateKeyId === undefined ? undefined : `kid ${connector.privateKeyId}`
  ]
    .filter((part) => part !== undefined)
    .join(", ")
  lines.push(["private key", connector.hasPrivateKey ? `yes${key === "" ? "" : ` (${key})`}` : "no"])
  lines.push(["installations required", yesNo(connector.installationsRequired)])
  lines.push(["cross-installation", yesNo(connector.crossInstallation)])
  lines.push(["created", isoTime(connector.createdAt)])
  lines.push(["updated", isoTime(connector.updatedAt)])
  const width = Math.max(...lines.map(([label]) => label.length)) + 1
  const out = lines.map(([label, value]) => `${`${label}:`.padEnd(width)} ${value}`)
  if (connector.links !== undefined) {
    out.push(connector.links.length === 0 ? "links: none" : "links:")
    for (const link of connector.links) out.push(`  ${link.project}: ${link.environments.join(", ")}`)
  }
  if (connector.installations !== undefined) {
    out.push(connector.installations.length === 0 ? "installations: none" : "installations:")
    for (const installation of connector.installations) {
      const details = [
        installation.tenantId === undefined ? undefined : `tenant ${installation.tenantId}`,
        installation.default ? "default" : undefined,
        installation.source
      ].filter((part) => part !== undefined)
      out.push(`  ${installation.id} (${details.join(", ")})`)
    }
  }
  return out.join("\n")
}

const list = Command.make("list", { ...AdminClient.options }, (input) =>
  Effect.gen(function* () {
    const answer = yield* AdminClient.request((client) => client.listConnectors)
    if (input.format === "json") return yield* json(yield* Schema.encode(ConnectorList)(answer).pipe(Effect.orDie))
    if (answer.connectors.length === 0) return yield* Console.log("No connectors.")
    return yield* Console.log(
      table([
        ["UID", "NAME", "TYPE", "SERVICE", "ID"],
        ...answer.connectors.map((c) => [c.uid, c.name, c.type, c.service, c.id])
      ])
    )
  }).pipe(Effect.provide(AdminClient.layer(input)))
).pipe(
  Command.withDescription(
    ["Lists the broker's connectors.", "", "Example: connect connectors list --format json"].join("\n")
  )
)

const show = Command.make("show", { connector: connectorArg, ...AdminClient.options }, (input) =>
  Effect.gen(function* () {
    const connector = yield* AdminClient.request((client) => client.showConnector(input.connector))
    if (input.format === "json") return yield* json(yield* Schema.encode(ConnectorView)(connector).pipe(Effect.orDie))
    return yield* Console.log(formatConnector(connector))
  }).pipe(Effect.provide(AdminClient.layer(input)))
).pipe(
  Command.withDescription(
    [
      "Shows a connector, its links and its installations; never its client secret or private key.",
      "",
      "Example: connect connectors show acme/api"
    ].join("\n")
  )
)

/** Reads the declaration file: a JSON object. Its text is never quoted, as it may hold a secret. */
const readDeclaration = (path: string): Effect.Effect<Record<string, unknown>, CliExit, FileSystem.FileSystem> =>
  Effect.gen(function* () {
    const fs = yield* FileSystem.FileSystem
    const text = yield* fs
      .readFileString(path)
      .pipe(
        Effect.catchAll((error) =>
          fail(
            error._tag === "SystemError" && error.reason === "NotFound"
              ? `Cannot read ${path}: the file does not exist`
              : `Cannot read ${path}: ${error.message}`
          )
        )
      )
    let parsed: unknown
    try {
      parsed = JSON.parse(text.startsWith("\uFEFF") ? text.slice(1) : text)
    } catch {
      return yield* fail(`${path} is not valid JSON: write the connector's declaration as a JSON object`)
    }
    if (!isRecord(parsed)) return yield* fail(`${path} must hold a JSON object: the connector's declaration`)
    return parsed
  })

/** An environment variable's value, or a failure that names it. */
const fromEnv = (name: string, what: string): Effect.Effect<string, CliExit> =>
  Config.redacted(name).pipe(
    Effect.map(Redacted.value),
    Effect.orElseSucceed(() => ""),
    Effect.flatMap((value) =>
      value.trim().length === 0
        ? fail(`${what}: environment variable ${name} is not set or is empty`)
        : Effect.succeed(value)
    )
  )

/** A secret of the file: the secret itself, or `{ "env": "NAME" }` read from this process's environment. */
const fileSecret = (value: unknown, what: string): Effect.Effect<unknown, CliExit> =>
  isRecord(value) && typeof value.env === "string" && Object.keys(value).length === 1
    ? fromEnv(value.env, what)
    : Effect.succeed(value)

const create = Command.make(
  "create",
  {
    file: Flags.optionalText(
      "file",
      "A JSON file with the connector's declaration, as in the broker's configuration file"
    ),
    uid: Flags.optionalText("uid", "The connector's uid, e.g. acme/api"),
    provider: Flags.optionalText(
      "provider",
      "A provider preset (connect providers list): its endpoints, scopes and quirks apply under the flags"
    ),
    tenantId: Flags.optionalText("tenant-id", "The connector's tenant at the provider, for a preset's {tenantId}"),
    name: Flags.optionalText("name", "A name for people (default: the uid)"),
    type: Flags.optionalText("type", "The connector's type (default: oauth)"),
    service: Flags.optionalText("service", "The provider (default: the uid's part before /)"),
    clientId: Flags.optionalText("client-id", "The OAuth client id"),
    clientSecretEnv: Flags.optionalText(
      "client-secret-env",
      "The name of the environment variable that holds the client secret"
    ),
    tokenEndpoint: Flags.optionalText("token-endpoint", "The provider's token endpoint"),
    authorizationEndpoint: Flags.optionalText(
      "authorization-endpoint",
      "The provider's authorization endpoint (for users' authorization)"
    ),
    revocationEndpoint: Flags.optionalText("revocation-endpoint", "The provider's revocation endpoint (RFC 7009)"),
    introspectionEndpoint: Flags.optionalText(
      "introspection-endpoint",
      "The provider's introspection endpoint (RFC 7662)"
    ),
    authMethod: Options.choice("auth-method", ["client_secret_basic", "client_secret_post"]).pipe(
      Options.withDescription("How the broker authenticates at the token endpoint (default: client_secret_basic)"),
      Options.optional
    ),
    scopesApp: Flags.optionalText(
      "scopes-app",
      'Default scopes of app tokens, separated by commas or spaces: "api:read,api:write"'
    ),
    scopesUser: Flags.optionalText("scopes-user", "Default scopes of user tokens, separated by commas or spaces"),
    tokenLifetime: Flags.optionalInteger(
      "token-lifetime",
      "Seconds a token lasts when the provider does not say (default: 3600)"
    ),
    privateKeyFile: Flags.optionalText(
      "private-key-file",
      "A PEM private key file, for jwt-bearer assertions (with --signing-algorithm)"
    ),
    privateKeyId: Flags.optionalText("private-key-id", "The key id (kid) of the private key"),
    signingAlgorithm: Options.choice("signing-algorithm", ["RS256", "ES256"]).pipe(
      Options.withDescription("The algorithm of the private key"),
      Options.optional
    ),
    installationsRequired: Options.boolean("installations-required").pipe(
      Options.withDescription("Token requests must name an installation")
    ),
    crossInstallation: Options.boolean("cross-installation").pipe(
      Options.withDescription('Allow cross-installation tokens (installationId "*")')
    ),
    ...AdminClient.options
  },
  (input) =>
    Effect.gen(function* () {
      const file = Option.getOrUndefined(input.file)
      const declaration: Record<string, unknown> = file === undefined ? {} : yield* readDeclaration(file)
      const from = file === undefined ? "" : ` in ${file}`
      const set = (key: string, value: Option.Option<unknown>) => {
        if (Option.isSome(value)) declaration[key] = value.value
      }
      set("uid", input.uid)
      set("provider", input.provider)
      set("tenantId", input.tenantId)
      set("name", input.name)
      set("type", input.type)
      set("service", input.service)
      set("clientId", input.clientId)
      set("tokenEndpoint", input.tokenEndpoint)
      set("authorizationEndpoint", input.authorizationEndpoint)
      set("revocationEndpoint", input.revocationEndpoint)
      set("introspectionEndpoint", input.introspectionEndpoint)
      set("tokenEndpointAuthMethod", input.authMethod)
      set("defaultTokenLifetimeSeconds", input.tokenLifetime)
      set("privateKeyId", input.privateKeyId)
      set("signingAlgorithm", input.signingAlgorithm)
      if (Option.isSome(input.scopesApp) || Option.isSome(input.scopesUser)) {
        declaration.defaultScopes = {
          ...(isRecord(declaration.defaultScopes) ? declaration.defaultScopes : {}),
          ...(Option.isSome(input.scopesApp) ? { app: splitScopes(input.scopesApp.value) } : {}),
          ...(Option.isSome(input.scopesUser) ? { user: splitScopes(input.scopesUser.value) } : {})
        }
      }
      if (input.installationsRequired || input.crossInstallation) {
        declaration.installations = {
          ...(isRecord(declaration.installations) ? declaration.installations : {}),
          ...(input.installationsRequired ? { required: true } : {}),
          ...(input.crossInstallation ? { crossInstallation: true } : {})
        }
      }
      // A preset names the connector and its type itself.
      if (declaration.provider === undefined) {
        if (declaration.type === undefined) declaration.type = "oauth"
        if (declaration.name === undefined && typeof declaration.uid === "string") declaration.name = declaration.uid
      }

      // The secrets: from the environment, the file, or a prompt; never from a flag's value.
      if (Option.isSome(input.clientSecretEnv)) {
        declaration.clientSecret = yield* fromEnv(input.clientSecretEnv.value, "--client-secret-env")
      } else if (declaration.clientSecret !== undefined) {
        declaration.clientSecret = yield* fileSecret(declaration.clientSecret, `clientSecret${from}`)
      } else if (process.stdin.isTTY === true) {
        const secret = yield* Prompt.hidden({ message: "Client secret" }).pipe(
          Effect.catchAll(() => fail("No client secret was given."))
        )
        declaration.clientSecret = Redacted.value(secret)
      } else {
        return yield* fail(
          "No client secret: pass --client-secret-env NAME (an environment variable that holds it), or put clientSecret in --file"
        )
      }
      if (Option.isSome(input.privateKeyFile)) {
        const path = input.privateKeyFile.value
        declaration.privateKey = yield* Effect.flatMap(FileSystem.FileSystem, (fs) => fs.readFileString(path)).pipe(
          Effect.catchAll(() => fail(`Cannot read the private key file ${path}`))
        )
      } else if (declaration.privateKey !== undefined) {
        declaration.privateKey = yield* fileSecret(declaration.privateKey, `privateKey${from}`)
      }

      const created = yield* AdminClient.request((client) => client.createConnector(declaration))
      if (input.format === "json") return yield* json(yield* Schema.encode(ConnectorView)(created).pipe(Effect.orDie))
      return yield* Console.log(`Created connector ${created.uid} (${created.id})`)
    }).pipe(Effect.provide(AdminClient.layer(input)))
).pipe(
  Command.withDescription(
    [
      "Creates a connector from a JSON declaration (--file), flags, or both (a flag wins over the file).",
      "The client secret comes from the variable --client-secret-env names, from the file, or a prompt.",
      "",
      "Example: ACME_SECRET=... connect connectors create --uid acme/api --client-id broker \\",
      "  --client-secret-env ACME_SECRET --token-endpoint https://auth.acme.example/token \\",
      "  --scopes-app api:read",
      "Example: connect connectors create --file ./acme-api.json",
      "Example: GITHUB_SECRET=... connect connectors create --uid github/acme --provider github \\",
      "  --client-id Ov23liAbc --client-secret-env GITHUB_SECRET"
    ].join("\n")
  )
)

const remove = Command.make(
  "remove",
  {
    connector: connectorArg,
    yes: Options.boolean("yes").pipe(Options.withDescription("Do not ask for confirmation")),
    ...AdminClient.options
  },
  (input) =>
    Effect.gen(function* () {
      const what = `connector "${input.connector}", its links, grants and tokens (active tokens are revoked first)`
      yield* confirm({ yes: input.yes, verb: "Remove", done: "removed", what })
      const removed = yield* AdminClient.request((client) => client.removeConnector(input.connector))
      if (input.format === "json")
        return yield* json(yield* Schema.encode(ConnectorRemoved)(removed).pipe(Effect.orDie))
      return yield* Console.log(
        `Removed connector ${removed.removed}\n${formatSummary(removed.tokens)}\ngrants removed: ${removed.grantsFound}`
      )
    }).pipe(Effect.provide(AdminClient.layer(input)))
).pipe(
  Command.withDescription(
    [
      "Removes a connector: revokes its tokens and its grants' tokens at the provider, then deletes it with its grants.",
      "Asks for confirmation on a terminal; elsewhere pass --yes.",
      "",
      "Example: connect connectors remove acme/api --yes"
    ].join("\n")
  )
)

/**
 * @since 0.1.0
 * @category commands
 */
export const command = Command.make("connectors").pipe(
  Command.withDescription(
    [
      "Lists, shows, creates and removes the broker's connectors (admin API: CONNECT_URL, CONNECT_ADMIN_TOKEN).",
      "",
      "Example: connect connectors list"
    ].join("\n")
  ),
  Command.withSubcommands([list, show, create, remove])
)
