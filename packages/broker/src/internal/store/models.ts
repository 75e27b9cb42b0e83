/**
 * The store's models: what the broker keeps, as the rest of the broker sees
 * it (secrets as `Redacted`), and the store's error. Re-exported by `Store`.
 *
 * @since 0.1.0
 */
import type { Redacted } from "effect"
import { Schema, Struct } from "effect"
import { PresetSettings } from "../../providers/Presets.js"

/**
 * How a connector talks to its provider.
 *
 * @since 0.1.0
 * @category models
 */
export const ConnectorSettings = Schema.Struct({
  tokenEndpoint: Schema.String,
  revocationEndpoint: Schema.optional(Schema.String),
  authorizationEndpoint: Schema.optional(Schema.String),
  deviceAuthorizationEndpoint: Schema.optional(Schema.String),
  authorizationParams: Schema.optional(Schema.Record({ key: Schema.String, value: Schema.String })),
  // The providers' quirks, as the presets declare them (documented there).
  ...Struct.pick(
    PresetSettings.fields,
    "refreshEndpoint",
    "tokenParams",
    "scopeSeparator",
    "revocationRequest",
    "deviceScopeParameter"
  ),
  introspectionEndpoint: Schema.optional(Schema.String),
  tokenEndpointAuthMethod: Schema.Literal("client_secret_basic", "client_secret_post"),
  defaultScopes: Schema.Struct({
    app: Schema.optional(Schema.Array(Schema.String)),
    user: Schema.optional(Schema.Array(Schema.String))
  }),
  defaultTokenLifetimeSeconds: Schema.Number,
  /** The key id (`kid`) and algorithm of JWT bearer assertions, with `privateKey`. */
  privateKeyId: Schema.optional(Schema.String),
  signingAlgorithm: Schema.optional(Schema.Literal("RS256", "ES256")),
  installationsRequired: Schema.Boolean,
  crossInstallation: Schema.Boolean,
  /** How long a caller waits for the provider, in milliseconds (default 10 seconds); absent in older rows. */
  providerTimeoutMs: Schema.optional(Schema.Number),
  /** How long the provider still accepts a refresh token it has rotated (Xero: 1800, Atlassian: 600). */
  refreshTokenGracePeriodSeconds: Schema.optional(Schema.Number),
  /** The install flow: see `InstallationsDeclaration` in the config file. */
  install: Schema.optional(
    Schema.Struct({
      authorizationEndpoint: Schema.optional(Schema.String),
      authorizationParams: Schema.optional(Schema.Record({ key: Schema.String, value: Schema.String })),
      tenantIdFrom: Schema.optional(
        Schema.Union(Schema.Struct({ callback: Schema.String }), Schema.Struct({ tokenResponse: Schema.String }))
      ),
      tokenEndpoint: Schema.optional(Schema.String)
    })
  ),
  data: Schema.Record({ key: Schema.String, value: Schema.Unknown }),
  /** The provider preset the connector was declared with (`github`, `slack`). */
  provider: Schema.optional(Schema.String),
  /** Where a user's token is in the code exchange's answer when not at its top level (Slack's `authed_user`). */
  userTokenMember: Schema.optional(Schema.Literal("authed_user")),
  /** App tokens of an installation from a GitHub App's `access_tokens` endpoint (`{tenantId}` = installation id). */
  appTokens: Schema.optional(
    Schema.Struct({ type: Schema.Literal("github_app"), appId: Schema.String, tokenEndpoint: Schema.String })
  )
})

/**
 * @since 0.1.0
 * @category models
 */
export interface ConnectorSettings extends Schema.Schema.Type<typeof ConnectorSettings> {}

/**
 * A connector as stored.
 *
 * @since 0.1.0
 * @category models
 */
export interface Connector {
  readonly id: string
  readonly uid: string
  readonly name: string
  readonly type: string
  readonly service: string
  readonly clientId: string
  readonly clientSecret: Redacted.Redacted<string>
  /** The PEM private key that signs JWT bearer assertions, when the connector has one. */
  readonly privateKey: Redacted.Redacted<string> | undefined
  readonly settings: ConnectorSettings
  readonly createdAt: number
  readonly updatedAt: number
}

/**
 * What declares a connector (its id is kept when it exists).
 *
 * @since 0.1.0
 * @category models
 */
export type ConnectorInput = Omit<Connector, "id" | "createdAt" | "updatedAt" | "privateKey"> & {
  readonly privateKey?: Redacted.Redacted<string> | undefined
}

/**
 * An installation of a connector: a tenant such as a workspace or organization.
 *
 * @since 0.1.0
 * @category models
 */
export interface Installation {
  readonly connectorId: string
  readonly id: string
  readonly tenantId: string | undefined
  readonly isDefault: boolean
  readonly tokenEndpoint: string | undefined
  /** Declared in the config file, or made by a tenant's admin through the install flow. */
  readonly source: "config" | "installed"
}

/**
 * Who is calling: a project, in one environment.
 *
 * @since 0.1.0
 * @category models
 */
export interface Caller {
  readonly projectId: string
  readonly environment: string
}

/**
 * A user's (or an installation's) grant: the refresh token the broker holds.
 *
 * @since 0.1.0
 * @category models
 */
export interface Grant {
  readonly id: string
  readonly connectorId: string
  /** `""` for the connector's default. */
  readonly installationId: string
  readonly subject: string
  readonly refreshToken: Redacted.Redacted<string> | undefined
  readonly refreshExpiresAt: number | undefined
  /**
   * The access token of a grant that has no refresh token (a Slack bot token, a
   * GitHub OAuth app token): the only thing it can give, until it expires.
   */
  readonly accessToken: Redacted.Redacted<string> | undefined
  /** When `accessToken` expires; none when the provider gave no expiry. */
  readonly accessExpiresAt: number | undefined
  readonly scope: string | undefined
  /** `lost`: a rotated refresh token was lost (a crash or a lost answer) and the provider refused the previous one. */
  readonly status: "active" | "revoked" | "invalid" | "lost"
  /** Bumped on every change, so a writer can tell it read the latest. */
  readonly version: number
  /** The broker process refreshing the grant now, and until when it may (see `claimGrantLease`). */
  readonly leaseOwner?: string | undefined
  readonly leaseExpiresAt?: number | undefined
  /** When a refresh was sent whose outcome is not known yet: set before sending, cleared once known. */
  readonly attemptStartedAt?: number | undefined
  /** Why the grant is `lost` or `invalid`, for the operator. */
  readonly lostReason?: string | undefined
}

/**
 * A token the broker handed out.
 *
 * @since 0.1.0
 * @category models
 */
export interface IssuedToken {
  readonly id: string
  readonly connectorId: string
  readonly projectId: string
  readonly environment: string
  readonly subject: string
  readonly installationId: string
  readonly requestKey: string
  readonly grantId: string | undefined
  readonly accessToken: Redacted.Redacted<string>
  readonly expiresAt: number
  readonly status: "active" | "revoked" | "deleted"
  readonly createdAt: number
}

/**
 * A user's consent under way: created by `POST /v1/connect/authorize`, finished
 * when the provider sends the user back.
 *
 * @since 0.1.0
 * @category models
 */
export interface AuthorizationRequestRecord {
  readonly id: string
  readonly state: Redacted.Redacted<string>
  readonly verifierHash: string
  readonly codeVerifier: Redacted.Redacted<string>
  readonly kind: "user" | "install"
  readonly connectorId: string
  readonly projectId: string
  readonly environment: string
  readonly installationId: string
  readonly subject: string
  /** The token request it authorizes, as JSON (subject, scopes, resources, authorization details). */
  readonly request: string
  readonly returnUrl: string | undefined
  readonly prompt: string | undefined
  /** The tenant an install request is for, when its starter named one. */
  readonly tenantHint?: string | undefined
  /** The user code of a device authorization (RFC 8628); absent for the code flow. */
  readonly userCode?: string | undefined
  /** `awaiting_confirmation`: the grant waits, sealed, for the application to confirm its user. */
  readonly status: "pending" | "completing" | "awaiting_confirmation" | "completed" | "failed"
  readonly error: string | undefined
  readonly expiresAt: number
  readonly createdAt: number
}

/**
 * A device authorization (RFC 8628) under way: the request it completes and
 * what the broker polls the provider's token endpoint with.
 *
 * @since 0.1.0
 * @category models
 */
export interface DeviceAuthorizationRecord {
  readonly request: AuthorizationRequestRecord
  /** The provider's device code: a secret, sealed at rest. */
  readonly deviceCode: Redacted.Redacted<string>
  readonly userCode: string
  /** Where the user was sent: the provider's `verification_uri_complete`, or its `verification_uri`. */
  readonly verificationUrl: string
  /** How long the broker waits between polls. */
  readonly intervalMs: number
  /** The earliest time of the next poll. */
  readonly nextPollAt: number
}

/**
 * A grant as an operator sees it: its identity, status and times, and whether
 * it holds a refresh token, never the token itself.
 *
 * @since 0.2.0
 * @category models
 */
export interface GrantSummary {
  readonly id: string
  readonly connectorId: string
  /** `""` for the connector's default. */
  readonly installationId: string
  /** The stored subject: the project and the user, as `grantSubject` writes them. */
  readonly subject: string
  readonly status: Grant["status"]
  /** Why the grant is `lost` or `invalid`. */
  readonly lostReason: string | undefined
  readonly scope: string | undefined
  readonly hasRefreshToken: boolean
  readonly refreshExpiresAt: number | undefined
  readonly accessExpiresAt: number | undefined
  readonly createdAt: number
  /** When the grant last changed: its last refresh, or its last change of status. */
  readonly updatedAt: number
}

/**
 * Which grants of a connector a page shows: those whose subject contains
 * `search` (as typed: `%` and `_` are not wildcards), newest first.
 *
 * @since 0.2.0
 * @category models
 */
export interface GrantPageQuery {
  readonly search?: string | undefined
  readonly offset: number
  readonly limit: number
}

/**
 * A page of grants and how many match in all.
 *
 * @since 0.2.0
 * @category models
 */
export interface GrantPage {
  readonly grants: ReadonlyArray<GrantSummary>
  readonly total: number
}

/**
 * Which issued tokens a revocation covers.
 *
 * @since 0.1.0
 * @category models
 */
export interface TokenFilter {
  readonly connectorId: string
  /** Every project's tokens when absent. */
  readonly projectId?: string | undefined
  readonly subject?: string | undefined
  readonly installationId?: string | undefined
}

/**
 * A store operation failed: the database or a sealed value could not be read.
 *
 * @since 0.1.0
 * @category errors
 */
export class StoreError extends Schema.TaggedError<StoreError>()("StoreError", {
  operation: Schema.String,
  reason: Schema.String
}) {
  override get message(): string {
    return `The broker store failed to ${this.operation}: ${this.reason}`
  }
}

/**
 * A project as the admin API shows it, with how many caller keys it has per environment.
 *
 * @since 0.1.0
 * @category models
 */
export interface Project {
  readonly id: string
  readonly name: string
  readonly returnUrls: ReadonlyArray<string>
  readonly confirmUsers: boolean
  readonly keys: Array<{ readonly environment: string; readonly count: number }>
  readonly createdAt: number
}

/**
 * A connector's link to a project: the environments of the project that may use it.
 *
 * @since 0.1.0
 * @category models
 */
export interface ConnectorLink {
  readonly projectId: string
  readonly environments: ReadonlyArray<string>
}
