/**
 * Provider presets: what a connector declared with `"provider": "github"`
 * takes from the catalogue (endpoints, default scopes, the token endpoint's
 * authentication method, where an installation's tenant id comes from, the
 * refresh token's rotation and grace period, extra authorization parameters,
 * the default token lifetime) and what the catalogue says about the provider
 * (its grants, the `Accept` header its token endpoint needs, what revoking
 * means there, the shape of its answers and errors, its documentation).
 *
 * The connector's own settings override the preset's. `{tenantId}` in a
 * preset's connector endpoints is the connector's `tenantId` (a Zendesk
 * subdomain, a Shopify shop, an Entra directory); in `installations` it stays
 * a template, filled per installation.
 *
 * @since 0.2.0
 */
import { Schema } from "effect"
import { business } from "./business.js"
import { developer } from "./developer.js"
import { identity } from "./identity.js"
import { media } from "./media.js"
import { workspace } from "./workspace.js"

/**
 * A grant a provider offers, as the broker uses it: `authorization_code`
 * (users authorize), `refresh_token`, `client_credentials` (app tokens),
 * `device_code`, `install` (a tenant's admin installs the connector), and
 * `app_installation` (a GitHub App's installation tokens).
 *
 * @since 0.2.0
 * @category schemas
 */
export const PresetGrant = Schema.Literal(
  "authorization_code",
  "refresh_token",
  "client_credentials",
  "device_code",
  "install",
  "app_installation"
)

/**
 * Whether a refresh hands out a new refresh token: `always` (the old one is
 * spent, perhaps after a grace period), `never` (the old one stays), `optional`
 * (sometimes; the broker keeps the old one when none comes).
 *
 * @since 0.2.0
 * @category schemas
 */
export const Rotation = Schema.Literal("always", "never", "optional")

/**
 * What revoking means at the provider: `token` (RFC 7009, one token), `grant`
 * (revoking any token of a grant ends the whole grant), `none` (no endpoint
 * the broker can call: remove the app at the provider).
 *
 * @since 0.2.0
 * @category schemas
 */
export const Revocation = Schema.Literal("token", "grant", "none")

/**
 * How the provider's token endpoint answers: the body (`json`, or `form`
 * without `Accept: application/json`), where errors are (`oauth`: a 4xx with
 * `error`; `ok_false`: HTTP 200 with `{"ok": false, "error"}`; `error_200`:
 * HTTP 200 with `{"error"}`; `hubspot`: a 4xx with HubSpot's `category`,
 * `message` and `correlationId`; `message`: a 4xx with `{"status", "message"}`,
 * the code in `message`, as Twitch answers), `expires_in` (a number, a numeric
 * string, or absent), where a user's token is (`authed_user`, Slack), and the
 * granted `scope` when it is a JSON array (Twitch) instead of a string.
 *
 * @since 0.2.0
 * @category schemas
 */
export const AnswerShape = Schema.Struct({
  body: Schema.Literal("json", "form"),
  errors: Schema.Literal("oauth", "ok_false", "error_200", "hubspot", "message"),
  expiresIn: Schema.Literal("number", "string", "absent"),
  userToken: Schema.optional(Schema.Literal("authed_user")),
  scope: Schema.optional(Schema.Literal("array"))
})

/**
 * @since 0.2.0
 * @category models
 */
export interface AnswerShape extends Schema.Schema.Type<typeof AnswerShape> {}

const Strings = Schema.Array(Schema.String)

/**
 * How scopes are joined in the authorization URL: `" "` as RFC 6749 section
 * 3.3 says, or `","` where the provider reads a comma-separated list (Linear).
 *
 * @since 0.2.0
 * @category schemas
 */
export const ScopeSeparator = Schema.Literal(" ", ",").annotations({ identifier: "ScopeSeparator" })

/**
 * How a revocation request is sent: its body (`form`, as RFC 7009 says, or
 * `json`, as Notion takes it) and headers the provider requires with it
 * (Notion's `Notion-Version`).
 *
 * @since 0.2.0
 * @category schemas
 */
export const RevocationRequest = Schema.Struct({
  body: Schema.Literal("form", "json"),
  headers: Schema.optional(Schema.Record({ key: Schema.NonEmptyString, value: Schema.String }))
}).annotations({ identifier: "RevocationRequest" })

/**
 * @since 0.2.0
 * @category models
 */
export interface RevocationRequest extends Schema.Schema.Type<typeof RevocationRequest> {}

/**
 * The parameter a device authorization request names its scopes in: `scope`
 * (RFC 8628 section 3.1) or `scopes` (Twitch).
 *
 * @since 0.2.0
 * @category schemas
 */
export const DeviceScopeParameter = Schema.Literal("scope", "scopes").annotations({
  identifier: "DeviceScopeParameter"
})

/**
 * The connector settings a preset supplies, as the configuration file writes
 * them (every one overridable by the connector).
 *
 * @since 0.2.0
 * @category schemas
 */
export const PresetSettings = Schema.Struct({
  type: Schema.String,
  name: Schema.String,
  tokenEndpoint: Schema.String,
  authorizationEndpoint: Schema.optional(Schema.String),
  revocationEndpoint: Schema.optional(Schema.String),
  deviceAuthorizationEndpoint: Schema.optional(Schema.String),
  /** Where refresh tokens are spent, when not at `tokenEndpoint` (Figma). */
  refreshEndpoint: Schema.optional(Schema.String),
  authorizationParams: Schema.optional(Schema.Record({ key: Schema.String, value: Schema.String })),
  /** Extra parameters of the code exchange (Shopify's `expiring: "1"`). */
  tokenParams: Schema.optional(Schema.Record({ key: Schema.String, value: Schema.String })),
  /** How scopes are joined in the authorization URL (Linear's `,`); a space when absent. */
  scopeSeparator: Schema.optional(ScopeSeparator),
  /** How revocation requests are sent (Notion's JSON body); an RFC 7009 form when absent. */
  revocationRequest: Schema.optional(RevocationRequest),
  /** The device authorization request's scope parameter (Twitch's `scopes`); `scope` when absent. */
  deviceScopeParameter: Schema.optional(DeviceScopeParameter),
  tokenEndpointAuthMethod: Schema.Literal("client_secret_basic", "client_secret_post"),
  defaultScopes: Schema.optional(Schema.Struct({ app: Schema.optional(Strings), user: Schema.optional(Strings) })),
  defaultTokenLifetimeSeconds: Schema.optional(Schema.Number),
  refreshTokenGracePeriodSeconds: Schema.optional(Schema.Number),
  signingAlgorithm: Schema.optional(Schema.Literal("RS256")),
  userTokenMember: Schema.optional(Schema.Literal("authed_user")),
  appTokens: Schema.optional(Schema.Struct({ type: Schema.Literal("github_app"), tokenEndpoint: Schema.String })),
  installations: Schema.optional(
    Schema.Struct({
      required: Schema.optional(Schema.Boolean),
      authorizationEndpoint: Schema.optional(Schema.String),
      authorizationParams: Schema.optional(Schema.Record({ key: Schema.String, value: Schema.String })),
      tenantIdFrom: Schema.optional(
        Schema.Union(Schema.Struct({ callback: Schema.String }), Schema.Struct({ tokenResponse: Schema.String }))
      ),
      tokenEndpoint: Schema.optional(Schema.String)
    })
  )
})

/**
 * @since 0.2.0
 * @category models
 */
export interface PresetSettings extends Schema.Schema.Type<typeof PresetSettings> {}

/**
 * A provider preset.
 *
 * @since 0.2.0
 * @category schemas
 */
export const Preset = Schema.Struct({
  /** What a connector names in `provider`. */
  name: Schema.String.pipe(Schema.pattern(/^[a-z][a-z0-9-]*$/)),
  title: Schema.String,
  /** The provider's documentation the preset was taken from. */
  docs: Schema.String.pipe(Schema.startsWith("https://")),
  grants: Schema.NonEmptyArray(PresetGrant),
  /** The `Accept` header the token endpoint needs for a JSON answer (the broker always sends it). */
  accept: Schema.String,
  rotation: Rotation,
  revocation: Revocation,
  answer: AnswerShape,
  /** What `{tenantId}` in the connector's endpoints is, and its value when the connector gives none. */
  tenant: Schema.optional(Schema.Struct({ description: Schema.String, default: Schema.optional(Schema.String) })),
  /** Settings the connector must give itself, each with a hint (`appTokens.appId`). */
  requires: Schema.optional(Schema.Array(Schema.Struct({ field: Schema.String, hint: Schema.String }))),
  /** The endpoints come from the issuer's discovery document (`issuer` on the connector), fetched at start. */
  discovery: Schema.optional(Schema.Boolean),
  /** What else to know, in one or two sentences. */
  notes: Schema.optional(Schema.String),
  settings: PresetSettings
}).annotations({ identifier: "Preset" })

/**
 * @since 0.2.0
 * @category models
 */
export interface Preset extends Schema.Schema.Type<typeof Preset> {}

/**
 * Every preset, by family, in the order of the catalogue.
 *
 * @since 0.2.0
 * @category catalogue
 */
export const presets: ReadonlyArray<Preset> = [...identity, ...developer, ...workspace, ...business, ...media]

const byName = new Map(presets.map((preset) => [preset.name, preset]))

/**
 * The preset of that name, if there is one.
 *
 * @since 0.2.0
 * @category catalogue
 */
export const findPreset = (name: string): Preset | undefined => byName.get(name)

/**
 * The names of every preset, sorted, as an error message lists them.
 *
 * @since 0.2.0
 * @category catalogue
 */
export const presetNames = (): ReadonlyArray<string> => [...byName.keys()].sort()
