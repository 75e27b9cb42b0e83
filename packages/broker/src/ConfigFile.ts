/**
 * The broker's configuration file (`CONNECT_CONFIG`): the connectors it serves,
 * the projects that may call it (with a caller key per environment) and the
 * links between them.
 *
 * The file is JSON. It is decoded with the schemas of this module, then checked
 * as a whole, after each connector's provider preset is applied
 * (`providers/PresetExpansion.ts`): unique uids and ids, links to declared connectors and projects,
 * one secret per key, endpoints `https:` except on loopback or
 * `CONNECT_ALLOWED_HTTP_HOSTS`, never link-local or metadata; and every secret is resolved: a literal string, or
 * `{ "env": "NAME" }` read through `Config`. Every problem is reported at once,
 * each with its path (`connectors[0].tokenEndpoint`); no error ever contains a
 * secret.
 *
 * @since 0.1.0
 */

import type { PlatformError } from "@effect/platform/Error"
import * as FileSystem from "@effect/platform/FileSystem"
import { Config, Effect, Either, ParseResult, Redacted, Schema } from "effect"
import { FieldIssue } from "effect-connect/ConnectError"
import { isRecord, JsonObject } from "effect-connect/Json"
import { allowedHttpHosts, ENDPOINT_FIELDS, endpointProblem } from "./internal/endpoints.js"
import { tenantIdProblem } from "./internal/limits.js"
import { EventPattern, secretProblem, webhookUrlProblem } from "./internal/webhooks/policy.js"
import { expandPresets } from "./providers/PresetExpansion.js"
import { DeviceScopeParameter, RevocationRequest, ScopeSeparator } from "./providers/Presets.js"

// A message that replaces those of the schema's parts (a union otherwise
// reports one line per member).
const says = (message: string) => ({ message: () => ({ message, override: true }) })

const TENANT_ID = "{tenantId}"

const urlProblem = (value: string, template: boolean): string | undefined => {
  const expanded = template ? value.replaceAll(TENANT_ID, "tenant") : value
  if (/[{}]/.test(expanded)) {
    return template
      ? "Expected a URL whose only placeholder is {tenantId}"
      : "Expected a URL without placeholders ({tenantId} is only replaced in an installation's tokenEndpoint)"
  }
  let url: URL
  try {
    url = new URL(expanded)
  } catch {
    return "Expected an absolute http(s) URL"
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") return "Expected an absolute http(s) URL"
  if (url.username !== "" || url.password !== "")
    return "Expected a URL without credentials (use clientId and clientSecret)"
  if (url.hash !== "") return "Expected a URL without a #fragment"
  return undefined
}

/**
 * An absolute `http:` or `https:` URL, without credentials or fragment.
 *
 * @since 0.1.0
 * @category schemas
 */
export const HttpUrl = Schema.String.pipe(Schema.filter((value) => urlProblem(value, false) ?? true)).annotations({
  identifier: "HttpUrl"
})

/**
 * An `HttpUrl` that may contain the placeholder `{tenantId}`, replaced by the
 * installation's tenant id.
 *
 * @since 0.1.0
 * @category schemas
 */
export const HttpUrlTemplate = Schema.String.pipe(
  Schema.filter((value) => urlProblem(value, true) ?? true)
).annotations({ identifier: "HttpUrlTemplate" })

/**
 * A tenant id: it replaces `{tenantId}` in URLs, so it must be one plain path
 * segment (not empty, `.` or `..`; no `/`, `\` or control character).
 *
 * @since 0.1.0
 * @category schemas
 */
export const TenantId = Schema.String.pipe(Schema.filter((value) => tenantIdProblem(value) ?? true)).annotations({
  identifier: "TenantId"
})

const EnvName = Schema.String.pipe(Schema.pattern(/^[A-Za-z_][A-Za-z0-9_]*$/))

/**
 * A secret as written in the file: the secret itself, or `{ "env": "NAME" }` to
 * read it from the environment variable `NAME` (through `Config`, so any
 * `ConfigProvider` works).
 *
 * @since 0.1.0
 * @category schemas
 */
export const SecretRef = Schema.Union(Schema.NonEmptyString, Schema.Struct({ env: EnvName })).annotations({
  identifier: "SecretRef",
  ...says('Expected a non-empty string, or { "env": "NAME" } with NAME an environment variable name')
})

/**
 * @since 0.1.0
 * @category models
 */
export type SecretRef = Schema.Schema.Type<typeof SecretRef>

const Strings = Schema.Array(Schema.NonEmptyString)

/**
 * The scopes a connector asks for when a caller names none, per subject type.
 *
 * @since 0.1.0
 * @category schemas
 */
export const ConnectorScopes = Schema.Struct({
  app: Schema.optional(Strings),
  user: Schema.optional(Strings)
}).annotations({ identifier: "ConnectorScopes" })

/**
 * @since 0.1.0
 * @category models
 */
export interface ConnectorScopes extends Schema.Schema.Type<typeof ConnectorScopes> {}

/**
 * One installation of a connector (a workspace, an organization, a tenant).
 * `tokenEndpoint`, when given, replaces the connector's for this installation
 * and may contain `{tenantId}`.
 *
 * @since 0.1.0
 * @category schemas
 */
export const InstallationDeclaration = Schema.Struct({
  id: Schema.NonEmptyString,
  tenantId: Schema.optional(TenantId),
  default: Schema.optionalWith(Schema.Boolean, { default: () => false }),
  tokenEndpoint: Schema.optional(HttpUrlTemplate)
}).annotations({ identifier: "InstallationDeclaration" })

/**
 * @since 0.1.0
 * @category models
 */
export interface InstallationDeclaration extends Schema.Schema.Type<typeof InstallationDeclaration> {}

/**
 * Where the install flow reads a new installation's tenant id: a parameter of
 * the provider's redirect back (`{ "callback": "installation_id" }`, GitHub;
 * `{ "callback": "tenant" }`, Entra admin consent) or a member of the token
 * response, as a dotted path (`{ "tokenResponse": "team.id" }`, Slack).
 *
 * @since 0.1.0
 * @category schemas
 */
export const TenantIdSource = Schema.Union(
  Schema.Struct({ callback: Schema.NonEmptyString }),
  Schema.Struct({ tokenResponse: Schema.NonEmptyString })
).annotations({
  identifier: "TenantIdSource",
  ...says('Expected { "callback": "<parameter>" } or { "tokenResponse": "<dotted.path>" }')
})

/**
 * @since 0.1.0
 * @category models
 */
export type TenantIdSource = Schema.Schema.Type<typeof TenantIdSource>

/** Extra query parameters for a provider's authorization URL. */
const AuthorizationParams = Schema.Record({ key: Schema.NonEmptyString, value: Schema.String })

/**
 * The token request parameters the broker sets itself: a connector's
 * `tokenParams` may not replace them (nor smuggle credentials into the form).
 *
 * @since 0.2.0
 * @category schemas
 */
export const RESERVED_TOKEN_PARAMS: ReadonlyArray<string> = [
  "grant_type",
  "code",
  "redirect_uri",
  "code_verifier",
  "client_id",
  "client_secret",
  "client_assertion",
  "client_assertion_type",
  "refresh_token",
  "device_code",
  "scope",
  "resource"
]

/**
 * Extra parameters of the authorization code exchange (Shopify's
 * `expiring: "1"`), string values, none of the names the broker sets itself.
 * An empty value sends nothing: it drops a parameter the preset sends.
 *
 * @since 0.2.0
 * @category schemas
 */
export const TokenParams = Schema.Record({ key: Schema.NonEmptyString, value: Schema.String })
  .pipe(
    Schema.filter((params) => {
      const reserved = Object.keys(params).filter((name) => RESERVED_TOKEN_PARAMS.includes(name.toLowerCase()))
      return reserved.length === 0 || `The broker sets ${reserved.join(", ")} itself: not a tokenParams name`
    })
  )
  .annotations({ identifier: "TokenParams" })

/**
 * How a connector uses installations: whether a token request needs one
 * (`required`), whether one installation's grants may serve another
 * (`crossInstallation`), the installations known at start, and how a tenant's
 * admin installs the connector (`POST /v1/connect/install/{connector}`): the
 * URL they consent at (`authorizationEndpoint`, by default the connector's;
 * it may contain `{tenantId}`), extra parameters for it, where the tenant id
 * comes from, and the token endpoint of installed tenants (may contain
 * `{tenantId}`).
 *
 * @since 0.1.0
 * @category schemas
 */
export const InstallationsDeclaration = Schema.Struct({
  required: Schema.optionalWith(Schema.Boolean, { default: () => false }),
  crossInstallation: Schema.optionalWith(Schema.Boolean, { default: () => false }),
  items: Schema.optionalWith(Schema.Array(InstallationDeclaration), { default: () => [] }),
  authorizationEndpoint: Schema.optional(HttpUrlTemplate),
  authorizationParams: Schema.optional(AuthorizationParams),
  tenantIdFrom: Schema.optional(TenantIdSource),
  tokenEndpoint: Schema.optional(HttpUrlTemplate)
}).annotations({ identifier: "InstallationsDeclaration" })

/**
 * @since 0.1.0
 * @category models
 */
export interface InstallationsDeclaration extends Schema.Schema.Type<typeof InstallationsDeclaration> {}

/**
 * How the broker authenticates to a provider's token endpoint (RFC 6749 §2.3.1).
 *
 * @since 0.1.0
 * @category schemas
 */
export const TokenEndpointAuthMethod = Schema.Literal("client_secret_basic", "client_secret_post").annotations({
  identifier: "TokenEndpointAuthMethod",
  ...says('Expected "client_secret_basic" or "client_secret_post"')
})

/**
 * The algorithm of the JWTs the broker signs with a connector's private key.
 *
 * @since 0.1.0
 * @category schemas
 */
export const SigningAlgorithm = Schema.Literal("RS256", "ES256").annotations({
  identifier: "SigningAlgorithm",
  ...says('Expected "RS256" or "ES256"')
})

/**
 * App tokens of an installation from a GitHub App: the app's JWT (RS256, signed
 * with the connector's `privateKey`, `iss` = `appId`) is sent to
 * `tokenEndpoint`, where `{tenantId}` is the installation's id at GitHub.
 *
 * @since 0.2.0
 * @category schemas
 */
export const AppTokensDeclaration = Schema.Struct({
  type: Schema.Literal("github_app"),
  appId: Schema.NonEmptyString,
  tokenEndpoint: HttpUrlTemplate
}).annotations({ identifier: "AppTokensDeclaration" })

/**
 * A connector: an OAuth client of one provider, registered with the broker.
 *
 * @since 0.1.0
 * @category schemas
 */
export const ConnectorDeclaration = Schema.Struct({
  /** The connector's unique id, conventionally `provider/name` (`slack/acme`). */
  uid: Schema.NonEmptyString,
  /** A human-readable name. */
  name: Schema.NonEmptyString,
  /** The kind of connector, such as `oauth`. */
  type: Schema.NonEmptyString,
  /** The provider; defaults to the part of `uid` before `/`. */
  service: Schema.optional(Schema.NonEmptyString),
  clientId: Schema.NonEmptyString,
  clientSecret: SecretRef,
  tokenEndpoint: HttpUrl,
  revocationEndpoint: Schema.optional(HttpUrl),
  authorizationEndpoint: Schema.optional(HttpUrl),
  /** The device authorization endpoint (RFC 8628), for `startAuthorization` with `deviceCode: true`. */
  deviceAuthorizationEndpoint: Schema.optional(HttpUrl),
  /** Where refresh tokens are spent, when the provider has an endpoint for it (Figma); `tokenEndpoint` otherwise. */
  refreshEndpoint: Schema.optional(HttpUrl),
  /** How scopes are joined in the authorization URL: `" "` (default) or `","` (Linear). */
  scopeSeparator: Schema.optional(ScopeSeparator),
  /** How revocation requests are sent: a `form` (RFC 7009, default) or `json` body (Notion), and extra headers. */
  revocationRequest: Schema.optional(RevocationRequest),
  /** The device authorization request's scope parameter: `scope` (default) or `scopes` (Twitch). */
  deviceScopeParameter: Schema.optional(DeviceScopeParameter),
  /** Extra parameters of the user authorization URL: Google's `access_type: "offline"`, Slack's `user_scope`. */
  authorizationParams: Schema.optional(AuthorizationParams),
  /** Extra parameters of the authorization code exchange: Shopify's `expiring: "1"` (expiring offline tokens). */
  tokenParams: Schema.optional(TokenParams),
  /** Deprecated and ignored (the broker never introspects tokens): still accepted, with a warning at load. */
  introspectionEndpoint: Schema.optional(HttpUrl),
  tokenEndpointAuthMethod: Schema.optionalWith(TokenEndpointAuthMethod, {
    default: () => "client_secret_basic" as const
  }),
  defaultScopes: Schema.optionalWith(ConnectorScopes, { default: () => ({}) }),
  /** The lifetime assumed when a provider's token response has no `expires_in`. */
  defaultTokenLifetimeSeconds: Schema.optionalWith(Schema.Int.pipe(Schema.positive()), { default: () => 3600 }),
  /** How long a request waits for the provider, in milliseconds (default 10000). */
  providerTimeoutMs: Schema.optional(Schema.Int.pipe(Schema.between(100, 300_000))),
  /** How long the provider still accepts a refresh token it rotated (Xero: 1800, Atlassian: 600); 0 for none. */
  refreshTokenGracePeriodSeconds: Schema.optional(Schema.Int.pipe(Schema.nonNegative())),
  /** A private key (PEM) for JWT bearer assertions. */
  privateKey: Schema.optional(SecretRef),
  privateKeyId: Schema.optional(Schema.NonEmptyString),
  signingAlgorithm: Schema.optional(SigningAlgorithm),
  /** Public provider details, returned as the connector's metadata. */
  data: Schema.optional(JsonObject),
  installations: Schema.optionalWith(InstallationsDeclaration, {
    default: () => ({ required: false, crossInstallation: false, items: [] })
  }),
  /** A provider preset (`providers/Presets.ts`): its settings apply under the connector's own. */
  provider: Schema.optional(Schema.NonEmptyString),
  /** The connector's tenant at its provider (a Zendesk subdomain, a Shopify shop): fills a preset's `{tenantId}`. */
  tenantId: Schema.optional(TenantId),
  /** The issuer of the `oidc` preset, whose discovery document gives the endpoints. */
  issuer: Schema.optional(HttpUrl),
  /** Where a user's token is in the code exchange's answer when not at its top level (Slack: `authed_user`). */
  userTokenMember: Schema.optional(Schema.Literal("authed_user")),
  /** App tokens of installations from a GitHub App (with `privateKey` and `signingAlgorithm: "RS256"`). */
  appTokens: Schema.optional(AppTokensDeclaration)
}).annotations({ identifier: "ConnectorDeclaration" })

/**
 * @since 0.1.0
 * @category models
 */
export interface ConnectorDeclaration extends Schema.Schema.Type<typeof ConnectorDeclaration> {}

/**
 * A caller key: the secret a project presents to call the broker from one
 * environment (`production`, `preview`, `development`).
 *
 * @since 0.1.0
 * @category schemas
 */
export const ProjectKeyDeclaration = Schema.Struct({
  environment: Schema.NonEmptyString,
  secret: SecretRef
}).annotations({ identifier: "ProjectKeyDeclaration" })

/**
 * @since 0.1.0
 * @category models
 */
export interface ProjectKeyDeclaration extends Schema.Schema.Type<typeof ProjectKeyDeclaration> {}

/**
 * A webhook of a project: where its events are sent, signed with `secret`
 * (`whsec_<base64>`, as Standard Webhooks writes it), and which kinds
 * (`token.issued`, or a group: `token.*`; every kind when absent). Without an
 * `id`, one is derived from the project and the URL.
 *
 * @since 0.1.0
 * @category schemas
 */
export const WebhookDeclaration = Schema.Struct({
  id: Schema.optional(Schema.NonEmptyString),
  url: HttpUrl,
  secret: SecretRef,
  events: Schema.optional(Schema.Array(EventPattern))
}).annotations({ identifier: "WebhookDeclaration" })

/**
 * @since 0.1.0
 * @category models
 */
export interface WebhookDeclaration extends Schema.Schema.Type<typeof WebhookDeclaration> {}

/**
 * A project: an application that calls the broker, with its caller keys.
 * `returnUrls` lists where an authorization flow may send the user back to.
 *
 * @since 0.1.0
 * @category schemas
 */
export const ProjectDeclaration = Schema.Struct({
  id: Schema.NonEmptyString,
  name: Schema.optional(Schema.NonEmptyString),
  keys: Schema.Array(ProjectKeyDeclaration),
  returnUrls: Schema.optional(Schema.Array(HttpUrl)),
  /** Users' grants wait until the application confirms its user (see docs/authorization.md). */
  confirmUsers: Schema.optional(Schema.Boolean),
  /** Where the project's events are sent (see docs/webhooks.md). */
  webhooks: Schema.optional(Schema.Array(WebhookDeclaration))
}).annotations({ identifier: "ProjectDeclaration" })

/**
 * @since 0.1.0
 * @category models
 */
export interface ProjectDeclaration extends Schema.Schema.Type<typeof ProjectDeclaration> {}

/**
 * Lets a project use a connector from the listed environments.
 *
 * @since 0.1.0
 * @category schemas
 */
export const LinkDeclaration = Schema.Struct({
  /** A connector's `uid`. */
  connector: Schema.NonEmptyString,
  /** A project's `id`. */
  project: Schema.NonEmptyString,
  environments: Schema.NonEmptyArray(Schema.NonEmptyString)
}).annotations({ identifier: "LinkDeclaration" })

/**
 * @since 0.1.0
 * @category models
 */
export interface LinkDeclaration extends Schema.Schema.Type<typeof LinkDeclaration> {}

/**
 * The whole file. Every list is optional and empty by default.
 *
 * @since 0.1.0
 * @category schemas
 */
export const ConfigFile = Schema.Struct({
  connectors: Schema.optionalWith(Schema.Array(ConnectorDeclaration), { default: () => [] }),
  projects: Schema.optionalWith(Schema.Array(ProjectDeclaration), { default: () => [] }),
  links: Schema.optionalWith(Schema.Array(LinkDeclaration), { default: () => [] })
}).annotations({ identifier: "ConfigFile" })

/**
 * @since 0.1.0
 * @category models
 */
export interface ConfigFile extends Schema.Schema.Type<typeof ConfigFile> {}

/**
 * A connector ready to use: defaults applied, `service` filled in, secrets
 * resolved.
 *
 * @since 0.1.0
 * @category models
 */
export interface ConnectorSetup extends Omit<ConnectorDeclaration, "service" | "clientSecret" | "privateKey"> {
  readonly service: string
  readonly clientSecret: Redacted.Redacted<string>
  readonly privateKey?: Redacted.Redacted<string>
}

/**
 * A caller key with its secret resolved.
 *
 * @since 0.1.0
 * @category models
 */
export interface ProjectKeySetup {
  readonly environment: string
  readonly secret: Redacted.Redacted<string>
}

/**
 * A webhook with its secret resolved.
 *
 * @since 0.1.0
 * @category models
 */
export interface WebhookSetup extends Omit<WebhookDeclaration, "secret"> {
  readonly secret: Redacted.Redacted<string>
}

/**
 * A project with its keys' and webhooks' secrets resolved.
 *
 * @since 0.1.0
 * @category models
 */
export interface ProjectSetup extends Omit<ProjectDeclaration, "keys" | "webhooks"> {
  readonly keys: ReadonlyArray<ProjectKeySetup>
  readonly webhooks?: ReadonlyArray<WebhookSetup>
}

/**
 * What the broker applies at start: the file's declarations, checked, with
 * defaults applied and every secret `Redacted`.
 *
 * @since 0.1.0
 * @category models
 */
export interface BrokerSetup {
  readonly connectors: ReadonlyArray<ConnectorSetup>
  readonly projects: ReadonlyArray<ProjectSetup>
  readonly links: ReadonlyArray<LinkDeclaration>
}

/**
 * The configuration file cannot be used: `issues` names each problem by its
 * path in the file (`connectors[0].tokenEndpoint`). No issue contains a secret.
 *
 * @since 0.1.0
 * @category errors
 */
export class ConfigFileError extends Schema.TaggedError<ConfigFileError>()("ConfigFileError", {
  /** The file, when the configuration was read from one. */
  path: Schema.optional(Schema.String),
  issues: Schema.Array(FieldIssue)
}) {
  override get message(): string {
    const where = this.path === undefined ? "" : ` in ${this.path}`
    const lines = this.issues.map((issue) => `\n  ${issue.path === "" ? "" : `${issue.path}: `}${issue.message}`)
    return `Invalid connector configuration${where}:${lines.join("")}`
  }
}

/**
 * The service a connector belongs to: its `service`, or the part of its uid
 * before `/`.
 *
 * @since 0.1.0
 * @category utils
 */
export const serviceOf = (connector: { readonly uid: string; readonly service?: string | undefined }): string => {
  if (connector.service !== undefined) return connector.service
  const slash = connector.uid.indexOf("/")
  return slash > 0 ? connector.uid.slice(0, slash) : connector.uid
}

/**
 * The connector's refresh endpoint (Figma's), unless the installation has a
 * token endpoint of its own: then refreshes go there, as every other grant.
 *
 * @since 0.2.0
 * @category utils
 */
export const refreshEndpointFor = (
  connector: { readonly refreshEndpoint?: string | undefined },
  installation?: { readonly tokenEndpoint?: string | undefined }
): { readonly refreshEndpoint?: string } =>
  connector.refreshEndpoint === undefined || installation?.tokenEndpoint !== undefined
    ? {}
    : { refreshEndpoint: connector.refreshEndpoint }

/**
 * The token endpoint to use for an installation: the installation's own, with
 * `{tenantId}` replaced, or else the connector's.
 * A tenant id that is not a single path segment (`..`) is a defect: every
 * source of tenant ids refuses one first (`tenantIdProblem`).
 *
 * @since 0.1.0
 * @category utils
 */
export const tokenEndpointFor = (
  connector: { readonly tokenEndpoint: string },
  installation?: {
    readonly id?: string
    readonly default?: boolean
    readonly tokenEndpoint?: string | undefined
    readonly tenantId?: string | undefined
  }
): string => {
  if (installation?.tokenEndpoint === undefined) return connector.tokenEndpoint
  if (!installation.tokenEndpoint.includes(TENANT_ID)) return installation.tokenEndpoint
  const tenantId = installation.tenantId ?? ""
  // Every source of tenant ids checks them; this guards the URL against any that slipped through.
  const problem = tenantIdProblem(tenantId)
  if (problem !== undefined)
    throw new Error(`Cannot build the token endpoint of installation ${installation.id}: ${problem}`)
  return installation.tokenEndpoint.replaceAll(TENANT_ID, encodeURIComponent(tenantId))
}

/**
 * Decodes and checks configuration data that is already parsed (no file), and
 * resolves its secrets. Connectors that name a `provider` get its preset
 * first (the `oidc` preset reads its issuer's discovery document).
 *
 * @since 0.1.0
 * @category constructors
 */
export const decode = (json: unknown): Effect.Effect<BrokerSetup, ConfigFileError> => decodeWith(json, undefined)

/**
 * Reads the configuration file at `path`, parses it as JSON, decodes and checks
 * it, and resolves its secrets.
 *
 * @since 0.1.0
 * @category constructors
 */
export const load = (path: string): Effect.Effect<BrokerSetup, ConfigFileError, FileSystem.FileSystem> =>
  Effect.gen(function* () {
    const fs = yield* FileSystem.FileSystem
    const text = yield* fs
      .readFileString(path)
      .pipe(
        Effect.mapError((error) => new ConfigFileError({ path, issues: [{ path: "", message: readFailure(error) }] }))
      )
    const json = yield* parseJson(text, path)
    const setup = yield* decodeWith(json, path)
    yield* warnDeprecated(setup, path)
    return setup
  })

/**
 * Fields still accepted, so that existing files keep loading, but no longer
 * used: each file that has them gets one warning that names them.
 */
const warnDeprecated = (setup: BrokerSetup, path: string): Effect.Effect<void> => {
  const used = setup.connectors.flatMap((connector, c) =>
    connector.introspectionEndpoint === undefined ? [] : [`connectors[${c}].introspectionEndpoint`]
  )
  return used.length === 0
    ? Effect.void
    : Effect.logWarning(
        `${path}: introspectionEndpoint is deprecated and ignored (the broker never introspects tokens); remove it from ${used.join(", ")}`
      )
}

// ---------------------------------------------------------------------------
// reading

const readFailure = (error: PlatformError): string => {
  if (error._tag === "SystemError" && error.reason === "NotFound") return "the file does not exist"
  if (error._tag === "SystemError" && error.reason === "PermissionDenied")
    return "the file cannot be read (permission denied)"
  return `the file cannot be read (${error.message})`
}

const lineAndColumn = (text: string, position: number): string => {
  const before = text.slice(0, position).split("\n")
  return `line ${before.length}, column ${(before[before.length - 1]?.length ?? 0) + 1}`
}

// JSON.parse may quote the text around the error, which can hold a secret:
// keep only its reason and position.
const parseJson = (text: string, path: string): Effect.Effect<unknown, ConfigFileError> => {
  const source = text.startsWith("\uFEFF") ? text.slice(1) : text
  return Effect.try({
    try: (): unknown => JSON.parse(source),
    catch: (error) => {
      if (source.trim() === "") {
        return new ConfigFileError({ path, issues: [{ path: "", message: "the file is empty: write a JSON object" }] })
      }
      const raw = error instanceof Error ? error.message : String(error)
      const position = /at position (\d+)/.exec(raw)?.[1]
      const reason = raw.startsWith("Unexpected token")
        ? "unexpected token"
        : raw.replace(/ in JSON at position \d+[\s\S]*$/, "").replace(/, "[\s\S]*$/, "")
      const where =
        position === undefined ? "" : ` at ${lineAndColumn(source, Number(position))} (position ${position})`
      const said = `${reason.charAt(0).toLowerCase()}${reason.slice(1)}`
      return new ConfigFileError({ path, issues: [{ path: "", message: `not valid JSON${where}: ${said}` }] })
    }
  })
}

// ---------------------------------------------------------------------------
// decoding

const decodeWith = (written: unknown, path: string | undefined): Effect.Effect<BrokerSetup, ConfigFileError> =>
  Effect.gen(function* () {
    // Presets first: what they supply is checked as if the connector had written it.
    const presets = yield* expandPresets(written)
    const json = presets.json
    const decoded = Schema.decodeUnknownEither(ConfigFile)(json, { errors: "all", onExcessProperty: "error" })
    const secrets = yield* resolveSecrets(json)
    const allowed = yield* allowedHttpHosts
    const presetPaths = new Set(presets.covered)
    const issues = [
      ...presets.issues,
      ...(Either.isLeft(decoded) ? formatParseError(decoded.left).filter((issue) => !presetPaths.has(issue.path)) : []),
      ...crossCheck(json),
      ...endpointIssues(json, allowed),
      ...secrets.issues,
      ...webhookSecretIssues(secrets.values),
      ...reusedKeySecrets(json, secrets.values)
    ]
    if (issues.length > 0 || Either.isLeft(decoded)) {
      return yield* new ConfigFileError({ issues: inFileOrder(issues), ...(path === undefined ? {} : { path }) })
    }
    return yield* build(decoded.right, secrets.values)
  })

const identifier = /^[A-Za-z_$][\w$]*$/

/** `connectors[0].installations.items[1].id` */
const formatPath = (path: ReadonlyArray<PropertyKey>): string =>
  path.reduce<string>((out, key) => {
    if (typeof key === "number") return `${out}[${key}]`
    if (typeof key === "string" && identifier.test(key)) return out === "" ? key : `${out}.${key}`
    return `${out}[${JSON.stringify(String(key))}]`
  }, "")

// Schema messages end with `, actual <value>`: the value may be a secret, so it
// is cut off. Structural expectations are said in words.
const describe = (issue: ParseResult.ArrayFormatterIssue): string => {
  if (issue._tag === "Unexpected") return "is not a known field (check its spelling)"
  const message = issue.message.replace(/, actual [\s\S]*$/, "")
  if (/^Expected (ReadonlyArray<|readonly \[)/.test(message)) return "Expected an array"
  if (/^Expected (Struct \(Encoded side\)|\{|[A-Za-z]*Declaration$|ConnectorScopes$|ConfigFile$)/.test(message))
    return "Expected an object"
  return message
}

const formatParseError = (error: ParseResult.ParseError): ReadonlyArray<FieldIssue> => {
  const issues = ParseResult.ArrayFormatter.formatErrorSync(error).map((issue) => {
    const last = issue.path[issue.path.length - 1]
    // `[0] is missing` in a non-empty array means the array is empty.
    if (issue._tag === "Missing" && typeof last === "number") {
      return { path: formatPath(issue.path.slice(0, -1)), message: "Expected at least one item" }
    }
    return { path: formatPath(issue.path), message: describe(issue) }
  })
  // An optional field is `X | undefined`: once X's own issue is reported, the
  // `undefined` alternative only misleads.
  const within = (path: string, other: string) =>
    path === "" || other === path || other.startsWith(`${path}.`) || other.startsWith(`${path}[`)
  return issues.filter(
    (issue, index) =>
      (issue.message !== "Expected undefined" ||
        !issues.some(
          (other) => other !== issue && other.message !== "Expected undefined" && within(issue.path, other.path)
        )) &&
      issues.findIndex((other) => other.path === issue.path && other.message === issue.message) === index
  )
}

const sections = ["connectors", "projects", "links"]

/**
 * File-level issues first, then by section and by the indices along the path
 * (`connectors[0].name` before `connectors[0].installations.items[1].id`);
 * stable otherwise.
 */
const inFileOrder = (issues: ReadonlyArray<FieldIssue>): ReadonlyArray<FieldIssue> => {
  const rank = (issue: FieldIssue): ReadonlyArray<number> => {
    const section = /^\w+/.exec(issue.path)?.[0]
    const indices = Array.from(issue.path.matchAll(/\[(\d+)\]/g), (match) => Number(match[1]))
    return [section === undefined ? -1 : sections.indexOf(section), ...indices]
  }
  const compare = (a: ReadonlyArray<number>, b: ReadonlyArray<number>): number => {
    for (let i = 0; i < Math.min(a.length, b.length); i++) {
      const difference = (a[i] ?? 0) - (b[i] ?? 0)
      if (difference !== 0) return difference
    }
    return a.length - b.length
  }
  return issues
    .map((issue, index) => ({ issue, index, rank: rank(issue) }))
    .sort((a, b) => compare(a.rank, b.rank) || a.index - b.index)
    .map(({ issue }) => issue)
}

// ---------------------------------------------------------------------------
// checks across the file
//
// They read the data as it was written, so that they run (and report) even
// when the schema found problems elsewhere.

const at = (value: unknown, key: string): unknown => (isRecord(value) ? value[key] : undefined)
const list = (value: unknown): ReadonlyArray<unknown> => (Array.isArray(value) ? value : [])
const text = (value: unknown): string | undefined => (typeof value === "string" && value.length > 0 ? value : undefined)

/** The values of `key` in a list, with the path of each. */
const declared = (json: unknown, section: string, key: string) =>
  list(at(json, section)).flatMap((item, index) => {
    const value = text(at(item, key))
    return value === undefined ? [] : [{ value, index, path: `${section}[${index}]` }]
  })

/** For each value seen before, where it was first seen. */
const duplicates = <A extends { readonly value: string; readonly path: string }>(
  entries: ReadonlyArray<A>
): ReadonlyArray<A & { readonly first: string }> => {
  const first = new Map<string, string>()
  return entries.flatMap((entry) => {
    const seen = first.get(entry.value)
    if (seen !== undefined) return [{ ...entry, first: seen }]
    first.set(entry.value, entry.path)
    return []
  })
}

/** Connectors sharing a uid, projects sharing an id. */
const duplicateIssues = (
  connectors: ReturnType<typeof declared>,
  projects: ReturnType<typeof declared>
): ReadonlyArray<FieldIssue> => [
  ...duplicates(connectors).map((dup) => ({
    path: `${dup.path}.uid`,
    message: `connector "${dup.value}" is already declared at ${dup.first}: give each connector its own uid`
  })),
  ...duplicates(projects).map((dup) => ({
    path: `${dup.path}.id`,
    message: `project "${dup.value}" is already declared at ${dup.first}: give each project its own id`
  }))
]

/** A connector's installations: ids declared twice, two defaults, a `{tenantId}` endpoint without a tenant. */
const installationIssues = (connector: unknown, c: number): ReadonlyArray<FieldIssue> => {
  const issues: Array<FieldIssue> = []
  const base = `connectors[${c}].installations.items`
  const items = list(at(at(connector, "installations"), "items"))
  const ids = items.flatMap((item, index) => {
    const value = text(at(item, "id"))
    return value === undefined ? [] : [{ value, path: `${base}[${index}]` }]
  })
  for (const dup of duplicates(ids)) {
    issues.push({
      path: `${dup.path}.id`,
      message: `installation "${dup.value}" is already declared at ${dup.first}: give each installation its own id`
    })
  }
  let defaultAt: string | undefined
  items.forEach((item, index) => {
    const path = `${base}[${index}]`
    if (at(item, "default") === true) {
      if (defaultAt === undefined) defaultAt = path
      else {
        issues.push({
          path: `${path}.default`,
          message: `${defaultAt} is already the default installation: mark only one installation as default`
        })
      }
    }
    const endpoint = at(item, "tokenEndpoint")
    if (typeof endpoint === "string" && endpoint.includes(TENANT_ID) && text(at(item, "tenantId")) === undefined) {
      issues.push({
        path: `${path}.tokenEndpoint`,
        message: "uses {tenantId} but the installation has no tenantId: add one"
      })
    }
  })
  return issues
}

/** Links naming an undeclared connector or project, and a project linked twice to one connector. */
const linkIssues = (
  json: unknown,
  connectors: ReturnType<typeof declared>,
  projects: ReturnType<typeof declared>
): ReadonlyArray<FieldIssue> => {
  const issues: Array<FieldIssue> = []
  // A list that is not a list is reported by the schema; then the links are not
  // checked against it.
  const known = (section: string, entries: ReadonlyArray<{ readonly value: string }>) => {
    const value = at(json, section)
    return value === undefined || Array.isArray(value) ? new Set(entries.map((entry) => entry.value)) : undefined
  }
  const connectorUids = known("connectors", connectors)
  const projectIds = known("projects", projects)
  const pairs = new Map<string, string>()
  list(at(json, "links")).forEach((link, index) => {
    const path = `links[${index}]`
    const connector = text(at(link, "connector"))
    const project = text(at(link, "project"))
    if (connector !== undefined && connectorUids !== undefined && !connectorUids.has(connector)) {
      issues.push({
        path: `${path}.connector`,
        message: `no connector "${connector}" is declared: declare it in connectors, or fix the uid`
      })
    }
    if (project !== undefined && projectIds !== undefined && !projectIds.has(project)) {
      issues.push({
        path: `${path}.project`,
        message: `no project "${project}" is declared: declare it in projects, or fix the id`
      })
    }
    if (connector !== undefined && project !== undefined) {
      const pair = JSON.stringify([connector, project])
      const first = pairs.get(pair)
      if (first === undefined) pairs.set(pair, path)
      else {
        issues.push({
          path,
          message: `project "${project}" is already linked to connector "${connector}" at ${first}: list all environments in one link`
        })
      }
    }
  })
  return issues
}

const crossCheck = (json: unknown): ReadonlyArray<FieldIssue> => {
  const connectors = declared(json, "connectors", "uid")
  const projects = declared(json, "projects", "id")
  return [
    ...duplicateIssues(connectors, projects),
    ...list(at(json, "connectors")).flatMap(installationIssues),
    ...linkIssues(json, connectors, projects)
  ]
}

/** Every endpoint of every connector that the broker's policy refuses (`endpointProblem`). */
const endpointIssues = (json: unknown, allowed: ReadonlySet<string>): ReadonlyArray<FieldIssue> => [
  ...connectorEndpointIssues(json, allowed),
  ...list(at(json, "projects")).flatMap((project, p) =>
    list(at(project, "webhooks")).flatMap((webhook, w) => {
      const url = at(webhook, "url")
      const problem = typeof url === "string" ? webhookUrlProblem(url, allowed) : undefined
      return problem === undefined ? [] : [{ path: `projects[${p}].webhooks[${w}].url`, message: problem }]
    })
  )
]

const connectorEndpointIssues = (json: unknown, allowed: ReadonlySet<string>): ReadonlyArray<FieldIssue> =>
  list(at(json, "connectors")).flatMap((connector, c) => {
    const items = list(at(at(connector, "installations"), "items")).map((item, i) => ({
      path: `connectors[${c}].installations.items[${i}].tokenEndpoint`,
      value: at(item, "tokenEndpoint")
    }))
    const fields = ENDPOINT_FIELDS.map((keys) => ({
      path: `connectors[${c}].${keys.join(".")}`,
      value: keys.reduce<unknown>((value, key) => at(value, key), connector)
    }))
    return [...fields, ...items].flatMap(({ path, value }) => {
      const problem = typeof value === "string" ? endpointProblem(value, allowed) : undefined
      return problem === undefined ? [] : [{ path, message: problem }]
    })
  })

// ---------------------------------------------------------------------------
// secrets

interface SecretAt {
  readonly path: string
  readonly ref: SecretRef
}

const isSecretRef = Schema.is(SecretRef)

const keySecrets = (json: unknown): ReadonlyArray<SecretAt> =>
  list(at(json, "projects")).flatMap((project, p) =>
    list(at(project, "keys")).flatMap((key, k) => {
      const ref = at(key, "secret")
      return isSecretRef(ref) ? [{ path: `projects[${p}].keys[${k}].secret`, ref }] : []
    })
  )

const webhookSecrets = (json: unknown): ReadonlyArray<SecretAt> =>
  list(at(json, "projects")).flatMap((project, p) =>
    list(at(project, "webhooks")).flatMap((webhook, w) => {
      const ref = at(webhook, "secret")
      return isSecretRef(ref) ? [{ path: `projects[${p}].webhooks[${w}].secret`, ref }] : []
    })
  )

/** Webhook secrets must be `whsec_<base64>`, whether written in the file or read from the environment. */
const webhookSecretIssues = (values: ReadonlyMap<string, Redacted.Redacted<string>>): ReadonlyArray<FieldIssue> =>
  [...values].flatMap(([path, value]) => {
    const problem = /\.webhooks\[\d+\]\.secret$/.test(path) ? secretProblem(Redacted.value(value)) : undefined
    return problem === undefined ? [] : [{ path, message: problem }]
  })

/** Every well-formed secret of the file, by its path. */
const secretsOf = (json: unknown): ReadonlyArray<SecretAt> => [
  ...list(at(json, "connectors")).flatMap((connector, c) =>
    (["clientSecret", "privateKey"] as const).flatMap((key) => {
      const ref = at(connector, key)
      return isSecretRef(ref) ? [{ path: `connectors[${c}].${key}`, ref }] : []
    })
  ),
  ...keySecrets(json),
  ...webhookSecrets(json)
]

const resolveSecrets = (
  json: unknown
): Effect.Effect<{
  readonly values: ReadonlyMap<string, Redacted.Redacted<string>>
  readonly issues: ReadonlyArray<FieldIssue>
}> =>
  Effect.gen(function* () {
    const values = new Map<string, Redacted.Redacted<string>>()
    const issues: Array<FieldIssue> = []
    for (const { path, ref } of secretsOf(json)) {
      if (typeof ref === "string") {
        values.set(path, Redacted.make(ref))
        continue
      }
      const read = yield* Effect.either(Config.redacted(ref.env))
      if (Either.isLeft(read)) {
        issues.push({ path, message: `environment variable ${ref.env} is not set` })
      } else if (Redacted.value(read.right).trim().length === 0) {
        issues.push({ path, message: `environment variable ${ref.env} is empty` })
      } else {
        values.set(path, read.right)
      }
    }
    return { values, issues }
  })

/**
 * The broker tells callers apart by their key, so no two keys may share a
 * secret: the same literal, the same variable, or the same resolved value.
 */
const reusedKeySecrets = (
  json: unknown,
  values: ReadonlyMap<string, Redacted.Redacted<string>>
): ReadonlyArray<FieldIssue> => {
  const first = new Map<string, string>()
  const issues: Array<FieldIssue> = []
  for (const { path, ref } of keySecrets(json)) {
    const value = values.get(path)
    const seen = [typeof ref === "string" ? `literal:${ref}` : `env:${ref.env}`]
    if (value !== undefined) seen.push(`value:${Redacted.value(value)}`)
    const earlier = seen.map((id) => first.get(id)).find((where) => where !== undefined)
    if (earlier !== undefined) {
      issues.push({
        path,
        message: `the same secret as ${earlier}: give every key its own secret`
      })
    } else {
      for (const id of seen) first.set(id, path)
    }
  }
  return issues
}

const build = (file: ConfigFile, secrets: ReadonlyMap<string, Redacted.Redacted<string>>): Effect.Effect<BrokerSetup> =>
  Effect.suspend(() => {
    const secret = (path: string): Redacted.Redacted<string> => {
      const value = secrets.get(path)
      if (value === undefined) throw new Error(`No secret was resolved for ${path}`)
      return value
    }
    const connectors = file.connectors.map((connector, c): ConnectorSetup => {
      const { clientSecret: _clientSecret, privateKey, ...rest } = connector
      return {
        ...rest,
        service: serviceOf(connector),
        clientSecret: secret(`connectors[${c}].clientSecret`),
        ...(privateKey === undefined ? {} : { privateKey: secret(`connectors[${c}].privateKey`) })
      }
    })
    const projects = file.projects.map((project, p): ProjectSetup => {
      const { webhooks, ...rest } = project
      return {
        ...rest,
        keys: project.keys.map((key, k) => ({
          environment: key.environment,
          secret: secret(`projects[${p}].keys[${k}].secret`)
        })),
        ...(webhooks === undefined
          ? {}
          : {
              webhooks: webhooks.map((webhook, w) => ({
                ...webhook,
                secret: secret(`projects[${p}].webhooks[${w}].secret`)
              }))
            })
      }
    })
    return Effect.succeed({ connectors, projects, links: file.links })
  })
