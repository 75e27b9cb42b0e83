/**
 * Applies provider presets to connector declarations before they are
 * decoded: the preset's settings under the connector's own (objects merged
 * member by member, anything else the connector's when it gives it),
 * `{tenantId}` in the preset's connector endpoints filled with the
 * connector's `tenantId`, and the `oidc` preset's endpoints read from its
 * issuer. Problems are reported by path, as the configuration file's are.
 *
 * @since 0.2.0
 */
import { Effect } from "effect"
import type { FieldIssue } from "effect-connect/ConnectError"
import { isRecord } from "effect-connect/Json"
import { discover } from "./Discovery.js"
import { findPreset, type Preset, presetNames } from "./Presets.js"

type Json = Readonly<Record<string, unknown>>

/** `base` with `over` on top: objects merged member by member; arrays and values replaced. */
const merge = (base: Json, over: Json): Json => {
  const out: Record<string, unknown> = { ...base }
  for (const [key, value] of Object.entries(over)) {
    const under = out[key]
    out[key] = isRecord(under) && isRecord(value) ? merge(under, value) : value
  }
  return out
}

const at = (value: unknown, path: string): unknown =>
  path.split(".").reduce<unknown>((current, key) => (isRecord(current) ? current[key] : undefined), value)

const TENANT_ID = "{tenantId}"
const CONNECTOR_ENDPOINTS = [
  "authorizationEndpoint",
  "tokenEndpoint",
  "revocationEndpoint",
  "deviceAuthorizationEndpoint",
  "refreshEndpoint"
]

interface Expanded {
  readonly declaration: unknown
  readonly issues: ReadonlyArray<FieldIssue>
  /** Paths whose other problems follow from these issues (an endpoint left out for want of a tenant). */
  readonly covered?: ReadonlyArray<string>
}

/** Settings a step of the expansion supplies, with its problems. */
interface Part {
  readonly settings: Json
  readonly issues: ReadonlyArray<FieldIssue>
  readonly covered: ReadonlyArray<string>
}

/** The preset's connector endpoints the declaration does not replace, with `{tenantId}` filled. */
const tenantEndpoints = (preset: Preset, declaration: Json, path: string): Part => {
  const settings: Record<string, unknown> = { ...preset.settings }
  const tenantId = typeof declaration.tenantId === "string" ? declaration.tenantId : preset.tenant?.default
  const issues: Array<FieldIssue> = []
  const covered: Array<string> = []
  for (const field of CONNECTOR_ENDPOINTS) {
    const value = settings[field]
    if (typeof value !== "string" || !value.includes(TENANT_ID) || declaration[field] !== undefined) continue
    if (tenantId === undefined) {
      delete settings[field]
      covered.push(`${path}.${field}`)
      if (issues.length === 0) {
        const what = preset.tenant?.description ?? "the connector's tenant at the provider"
        issues.push({ path: `${path}.tenantId`, message: `the ${preset.name} preset needs tenantId: ${what}` })
      }
    } else {
      settings[field] = value.replaceAll(TENANT_ID, encodeURIComponent(tenantId))
    }
  }
  return { settings, issues, covered }
}

/**
 * The client authentication the broker can use at an issuer's token endpoint: Basic where the document offers
 * it, or when it names none (OpenID Connect Discovery 1.0, section 3: the default is client_secret_basic); the
 * form body where only that is offered; none of the two otherwise (private_key_jwt, mutual TLS).
 */
const authMethodOf = (
  methods: ReadonlyArray<string> = ["client_secret_basic"]
): "client_secret_basic" | "client_secret_post" | undefined => {
  if (methods.includes("client_secret_basic")) return "client_secret_basic"
  return methods.includes("client_secret_post") ? "client_secret_post" : undefined
}

/** The `oidc` preset's endpoints and authentication method, from its issuer's discovery document. */
const discovered = (declaration: Json, path: string): Effect.Effect<Part> => {
  const issuer = declaration.issuer
  // Without the document there are no endpoints: the issuer's problem is the one reported.
  const covered = [`${path}.tokenEndpoint`, `${path}.issuer`]
  if (typeof issuer !== "string") return Effect.succeed({ settings: {}, issues: [], covered })
  return discover(issuer).pipe(
    Effect.map((document): Part => {
      const supported = document.token_endpoint_auth_methods_supported
      const method = authMethodOf(supported)
      // The connector's own method stands: a document may list less than the issuer accepts.
      const issues =
        method === undefined && declaration.tokenEndpointAuthMethod === undefined
          ? [
              {
                path: `${path}.issuer`,
                message: `${issuer} accepts neither client_secret_basic nor client_secret_post at its token endpoint (it names ${(supported ?? []).join(", ")}); set tokenEndpointAuthMethod to override`
              }
            ]
          : []
      return {
        settings: {
          tokenEndpoint: document.token_endpoint,
          ...(document.authorization_endpoint === undefined
            ? {}
            : { authorizationEndpoint: document.authorization_endpoint }),
          ...(document.revocation_endpoint === undefined ? {} : { revocationEndpoint: document.revocation_endpoint }),
          ...(document.device_authorization_endpoint === undefined
            ? {}
            : { deviceAuthorizationEndpoint: document.device_authorization_endpoint }),
          ...(method === undefined ? {} : { tokenEndpointAuthMethod: method })
        },
        issues,
        covered: []
      }
    }),
    Effect.catchAll((reason) =>
      Effect.succeed({ settings: {}, issues: [{ path: `${path}.issuer`, message: reason }], covered })
    )
  )
}

/**
 * One connector declaration with its preset applied (unchanged when it names
 * none), and the problems found: an unknown preset, a missing `tenantId`,
 * settings the preset requires of the connector, an issuer that cannot be read.
 *
 * @since 0.2.0
 * @category presets
 */
export const expandConnector = (declaration: unknown, path: string): Effect.Effect<Expanded> =>
  Effect.gen(function* () {
    if (!isRecord(declaration) || declaration.provider === undefined) return { declaration, issues: [] }
    const name = declaration.provider
    const preset = typeof name === "string" ? findPreset(name) : undefined
    if (preset === undefined) {
      const message = `unknown provider ${JSON.stringify(name)}: expected one of ${presetNames().join(", ")}`
      return { declaration, issues: [{ path: `${path}.provider`, message }] }
    }
    const tenant = tenantEndpoints(preset, declaration, path)
    const none: Part = { settings: {}, issues: [], covered: [] }
    const discovery = preset.discovery === true ? yield* discovered(declaration, path) : none
    const merged = merge(merge(tenant.settings, discovery.settings), declaration)
    const missing = (preset.requires ?? [])
      .filter((required) => at(merged, required.field) === undefined)
      .map((required) => ({
        path: `${path}.${required.field}`,
        message: `the ${preset.name} preset needs ${required.field}: ${required.hint}`
      }))
    return {
      declaration: merged,
      issues: [...tenant.issues, ...discovery.issues, ...missing],
      covered: [...tenant.covered, ...discovery.covered]
    }
  })

/**
 * A configuration (`{ connectors: [...] }`) with every connector's preset
 * applied, the problems found, each by its path in the file, and the paths
 * whose other problems they explain.
 *
 * @since 0.2.0
 * @category presets
 */
export const expandPresets = (
  json: unknown
): Effect.Effect<{
  readonly json: unknown
  readonly issues: ReadonlyArray<FieldIssue>
  readonly covered: ReadonlyArray<string>
}> =>
  Effect.gen(function* () {
    if (!isRecord(json) || !Array.isArray(json.connectors)) return { json, issues: [], covered: [] }
    const expanded = yield* Effect.forEach(
      json.connectors,
      (connector: unknown, index) => expandConnector(connector, `connectors[${index}]`),
      { concurrency: "unbounded" }
    )
    return {
      json: { ...json, connectors: expanded.map((each) => each.declaration) },
      issues: expanded.flatMap((each) => each.issues),
      covered: expanded.flatMap((each) => [...(each.covered ?? []), ...each.issues.map((issue) => issue.path)])
    }
  })
