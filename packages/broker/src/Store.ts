/**
 * The broker's store: connectors and their installations, projects and their
 * caller keys, links, users' grants and issued tokens, over `@effect/sql` (SQLite
 * or Postgres alike).
 *
 * Every secret is sealed by the `Cipher` before it reaches a row, with the row's
 * identity as associated data, and unsealed only on the way out; caller keys are
 * kept only as SHA-256 hashes.
 *
 * @since 0.1.0
 */
import { createHash, randomBytes, timingSafeEqual } from "node:crypto"
import { SqlClient, type SqlError } from "@effect/sql"
import { Clock, Context, Effect, Layer, Option, Redacted, Schema } from "effect"
import { Cipher, type DecryptionFailed } from "./Cipher.js"
import { isReusable } from "./grants/reuse.js"

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
  data: Schema.Record({ key: Schema.String, value: Schema.Unknown })
})

/**
 * @since 0.1.0
 * @category models
 */
export interface ConnectorSettings extends Schema.Schema.Type<typeof ConnectorSettings> {}

const SettingsJson = Schema.parseJson(ConnectorSettings)
const Environments = Schema.parseJson(Schema.Array(Schema.String))

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

/** A new identifier with a prefix, as `stk_…` for tokens. */
export const newId = (prefix: string): string => `${prefix}_${randomBytes(12).toString("base64url")}`

/** The SHA-256 of a caller key, hex. */
export const hashKey = (key: Redacted.Redacted<string>): string =>
  createHash("sha256").update(Redacted.value(key)).digest("hex")

const aad = (table: string, column: string, id: string) => `${table}/${column}/${id}`

interface ConnectorRow {
  readonly id: string
  readonly uid: string
  readonly name: string
  readonly type: string
  readonly service: string
  readonly client_id: string
  readonly client_secret: string
  readonly private_key: string | null
  readonly settings: string
  readonly created_at: number | string
  readonly updated_at: number | string
}

interface GrantRow {
  readonly id: string
  readonly connector_id: string
  readonly installation_id: string
  readonly subject: string
  readonly refresh_token: string | null
  readonly refresh_expires_at: number | string | null
  readonly access_token: string | null
  readonly access_expires_at: number | string | null
  readonly scope: string | null
  readonly status: string
  readonly version: number | string
  readonly lease_owner?: string | null
  readonly lease_expires_at?: number | string | null
  readonly attempt_started_at?: number | string | null
  readonly lost_reason?: string | null
}

interface AuthorizationRow {
  readonly id: string
  readonly state: string
  readonly verifier_hash: string
  readonly code_verifier: string
  readonly kind: string
  readonly connector_id: string
  readonly project_id: string
  readonly environment: string
  readonly installation_id: string
  readonly subject: string
  readonly request: string
  readonly return_url: string | null
  readonly prompt: string | null
  readonly tenant_hint: string | null
  readonly user_code: string | null
  readonly status: string
  readonly error: string | null
  readonly expires_at: number | string
  readonly created_at: number | string
}

const ProjectSettingsJson = Schema.parseJson(
  Schema.Struct({
    returnUrls: Schema.optionalWith(Schema.Array(Schema.String), { default: () => [] }),
    /** Users' grants wait for the application to confirm the user (see `Authorizations`). */
    confirmUsers: Schema.optionalWith(Schema.Boolean, { default: () => false })
  })
)

interface DeviceAuthorizationRow extends AuthorizationRow {
  readonly device_code: string | null
  readonly verification_url: string | null
  readonly poll_interval_ms: number | string | null
  readonly next_poll_at: number | string | null
}

interface TokenRow {
  readonly id: string
  readonly connector_id: string
  readonly project_id: string
  readonly environment: string
  readonly subject: string
  readonly installation_id: string
  readonly request_key: string
  readonly grant_id: string | null
  readonly access_token: string
  readonly expires_at: number | string
  readonly status: string
  readonly created_at: number | string
}

/** The first row of a result decoded, or none. */
const firstRow =
  <Row, A, E>(decode: (row: Row) => Effect.Effect<A, E>) =>
  (rows: ReadonlyArray<Row>): Effect.Effect<Option.Option<A>, E> =>
    rows[0] === undefined ? Effect.succeed(Option.none()) : Effect.asSome(decode(rows[0]))

// Postgres returns BIGINT as a string; SQLite as a number.
const num = (value: number | string): number => (typeof value === "number" ? value : Number(value))
const optionalNum = (value: number | string | null | undefined): number | undefined =>
  value === null || value === undefined ? undefined : num(value)

const make = Effect.gen(function* () {
  const sql = yield* SqlClient.SqlClient
  const cipher = yield* Cipher

  const fail = (operation: string) => (error: SqlError.SqlError | DecryptionFailed | unknown) =>
    new StoreError({
      operation,
      reason: typeof error === "object" && error !== null && "message" in error ? String(error.message) : String(error)
    })

  const seal = (value: Redacted.Redacted<string>, table: string, column: string, id: string) =>
    cipher.encrypt(value, aad(table, column, id))
  const unseal = (sealed: string, table: string, column: string, id: string) =>
    cipher.decrypt(sealed, aad(table, column, id))

  const toConnector = (row: ConnectorRow) =>
    Effect.all({
      clientSecret: unseal(row.client_secret, "connectors", "client_secret", row.id),
      privateKey:
        row.private_key === null
          ? Effect.succeed(undefined)
          : unseal(row.private_key, "connectors", "private_key", row.id),
      settings: Schema.decode(SettingsJson)(row.settings)
    }).pipe(
      Effect.map(
        ({ clientSecret, privateKey, settings }): Connector => ({
          id: row.id,
          uid: row.uid,
          name: row.name,
          type: row.type,
          service: row.service,
          clientId: row.client_id,
          clientSecret,
          privateKey,
          settings,
          createdAt: num(row.created_at),
          updatedAt: num(row.updated_at)
        })
      )
    )

  const toGrant = (row: GrantRow) => {
    const secret = (column: "refresh_token" | "access_token") => {
      const sealed = row[column]
      return sealed === null
        ? Effect.succeed<Redacted.Redacted<string> | undefined>(undefined)
        : unseal(sealed, "grants", column, row.id)
    }
    return Effect.all([secret("refresh_token"), secret("access_token")]).pipe(
      Effect.map(
        ([refreshToken, accessToken]): Grant => ({
          id: row.id,
          connectorId: row.connector_id,
          installationId: row.installation_id,
          subject: row.subject,
          refreshToken,
          refreshExpiresAt: row.refresh_expires_at === null ? undefined : num(row.refresh_expires_at),
          accessToken,
          accessExpiresAt: row.access_expires_at === null ? undefined : num(row.access_expires_at),
          scope: row.scope ?? undefined,
          status: row.status as Grant["status"],
          version: num(row.version),
          leaseOwner: row.lease_owner ?? undefined,
          leaseExpiresAt: optionalNum(row.lease_expires_at),
          attemptStartedAt: optionalNum(row.attempt_started_at),
          lostReason: row.lost_reason ?? undefined
        })
      )
    )
  }

  const toToken = (row: TokenRow) =>
    unseal(row.access_token, "issued_tokens", "access_token", row.id).pipe(
      Effect.map(
        (accessToken): IssuedToken => ({
          id: row.id,
          connectorId: row.connector_id,
          projectId: row.project_id,
          environment: row.environment,
          subject: row.subject,
          installationId: row.installation_id,
          requestKey: row.request_key,
          grantId: row.grant_id ?? undefined,
          accessToken,
          expiresAt: num(row.expires_at),
          status: row.status as IssuedToken["status"],
          createdAt: num(row.created_at)
        })
      )
    )

  const findConnector = (uidOrId: string) =>
    sql<ConnectorRow>`SELECT * FROM connectors WHERE uid = ${uidOrId} OR id = ${uidOrId}`.pipe(
      Effect.flatMap(firstRow(toConnector)),
      Effect.mapError(fail("read a connector"))
    )

  const putConnector = (input: ConnectorInput) =>
    Effect.gen(function* () {
      const now = yield* Clock.currentTimeMillis
      const existing = yield* sql<{ id: string }>`SELECT id FROM connectors WHERE uid = ${input.uid}`
      const id = existing[0]?.id ?? newId("conn")
      const clientSecret = yield* seal(input.clientSecret, "connectors", "client_secret", id)
      const privateKey =
        input.privateKey === undefined ? null : yield* seal(input.privateKey, "connectors", "private_key", id)
      const settings = yield* Schema.encode(SettingsJson)(input.settings)
      if (existing[0] === undefined) {
        yield* sql`INSERT INTO connectors ${sql.insert({
          id,
          uid: input.uid,
          name: input.name,
          type: input.type,
          service: input.service,
          client_id: input.clientId,
          client_secret: clientSecret,
          private_key: privateKey,
          settings,
          created_at: now,
          updated_at: now
        })}`
      } else {
        yield* sql`UPDATE connectors SET ${sql.update({
          name: input.name,
          type: input.type,
          service: input.service,
          client_id: input.clientId,
          client_secret: clientSecret,
          private_key: privateKey,
          settings,
          updated_at: now
        })} WHERE id = ${id}`
      }
      return yield* findConnector(id).pipe(Effect.flatMap(Effect.orDie))
    }).pipe(Effect.mapError(fail("save a connector")))

  const removeConnector = (uidOrId: string) =>
    sql<{ id: string }>`SELECT id FROM connectors WHERE uid = ${uidOrId} OR id = ${uidOrId}`.pipe(
      Effect.flatMap((rows) =>
        rows[0] === undefined
          ? Effect.succeed(false)
          : sql
              .withTransaction(
                Effect.all([
                  // Explicit: SQLite does not enforce the foreign keys' cascades.
                  sql`DELETE FROM authorization_requests WHERE connector_id = ${rows[0].id}`,
                  sql`DELETE FROM issued_tokens WHERE connector_id = ${rows[0].id}`,
                  sql`DELETE FROM grants WHERE connector_id = ${rows[0].id}`,
                  sql`DELETE FROM links WHERE connector_id = ${rows[0].id}`,
                  sql`DELETE FROM installations WHERE connector_id = ${rows[0].id}`,
                  sql`DELETE FROM connectors WHERE id = ${rows[0].id}`
                ])
              )
              .pipe(Effect.as(true))
      ),
      Effect.mapError(fail("remove a connector"))
    )

  const listConnectors = sql<ConnectorRow>`SELECT * FROM connectors ORDER BY uid`.pipe(
    Effect.flatMap((rows) => Effect.forEach(rows, toConnector)),
    Effect.mapError(fail("list connectors"))
  )

  /**
   * Replaces the installations the config file declares; those made through
   * the install flow stay, unless the file declares one with the same id.
   */
  const setInstallations = (
    connectorId: string,
    installations: ReadonlyArray<Omit<Installation, "connectorId" | "source">>
  ) =>
    Effect.gen(function* () {
      const now = yield* Clock.currentTimeMillis
      yield* sql`DELETE FROM installations WHERE connector_id = ${connectorId} AND source = 'config'`
      for (const installation of installations) {
        yield* sql`DELETE FROM installations WHERE connector_id = ${connectorId} AND id = ${installation.id}`
        yield* sql`INSERT INTO installations ${sql.insert({
          connector_id: connectorId,
          id: installation.id,
          tenant_id: installation.tenantId ?? null,
          is_default: installation.isDefault ? 1 : 0,
          token_endpoint: installation.tokenEndpoint ?? null,
          source: "config",
          created_at: now,
          updated_at: now
        })}`
      }
    }).pipe(sql.withTransaction, Effect.mapError(fail("save installations")))

  /**
   * Saves an installation made through the install flow: a new one, or the
   * same tenant installed again. It becomes the default when asked to and the
   * connector has no default yet.
   */
  const putInstallation = (installation: {
    readonly connectorId: string
    readonly id: string
    readonly tenantId: string | undefined
    readonly tokenEndpoint: string | undefined
    readonly defaultIfNone: boolean
  }) =>
    Effect.gen(function* () {
      const now = yield* Clock.currentTimeMillis
      const defaults = yield* sql<{
        id: string
      }>`SELECT id FROM installations WHERE connector_id = ${installation.connectorId} AND is_default <> 0`
      const isDefault =
        defaults.some((row) => row.id === installation.id) || (installation.defaultIfNone && defaults.length === 0)
      const existing = yield* sql<{
        created_at: number | string
        token_endpoint: string | null
      }>`SELECT created_at, token_endpoint FROM installations WHERE connector_id = ${installation.connectorId} AND id = ${installation.id}`
      yield* sql`DELETE FROM installations WHERE connector_id = ${installation.connectorId} AND id = ${installation.id}`
      yield* sql`INSERT INTO installations ${sql.insert({
        connector_id: installation.connectorId,
        id: installation.id,
        tenant_id: installation.tenantId ?? null,
        is_default: isDefault ? 1 : 0,
        token_endpoint: installation.tokenEndpoint ?? existing[0]?.token_endpoint ?? null,
        source: "installed",
        created_at: existing[0] === undefined ? now : num(existing[0].created_at),
        updated_at: now
      })}`
    }).pipe(sql.withTransaction, Effect.mapError(fail("save an installation")))

  /** Deletes an installation and every grant made within it (its own and its users'). */
  const removeInstallation = (connectorId: string, installationId: string) =>
    Effect.gen(function* () {
      yield* sql`DELETE FROM grants WHERE connector_id = ${connectorId} AND installation_id = ${installationId}`
      const removed = yield* sql<{
        id: string
      }>`DELETE FROM installations WHERE connector_id = ${connectorId} AND id = ${installationId} RETURNING id`
      return removed.length > 0
    }).pipe(sql.withTransaction, Effect.mapError(fail("remove an installation")))

  /** The grants made within an installation (`""`: the connector's default), or all of the connector's. */
  const listGrants = (connectorId: string, installationId?: string) =>
    sql<GrantRow>`SELECT * FROM grants WHERE connector_id = ${connectorId}
      ${installationId === undefined ? sql`` : sql`AND installation_id = ${installationId}`} ORDER BY created_at`.pipe(
      Effect.flatMap((rows) => Effect.forEach(rows, toGrant)),
      Effect.mapError(fail("list grants"))
    )

  const listInstallations = (connectorId: string) =>
    sql<{
      connector_id: string
      id: string
      tenant_id: string | null
      is_default: number | boolean
      token_endpoint: string | null
      source: string
    }>`SELECT * FROM installations WHERE connector_id = ${connectorId} ORDER BY id`.pipe(
      Effect.map((rows) =>
        rows.map(
          (row): Installation => ({
            connectorId: row.connector_id,
            id: row.id,
            tenantId: row.tenant_id ?? undefined,
            isDefault: Boolean(row.is_default),
            tokenEndpoint: row.token_endpoint ?? undefined,
            source: row.source === "installed" ? "installed" : "config"
          })
        )
      ),
      Effect.mapError(fail("list installations"))
    )

  const putProject = (project: {
    readonly id: string
    readonly name: string
    readonly returnUrls?: ReadonlyArray<string>
    readonly confirmUsers?: boolean | undefined
  }) =>
    Effect.gen(function* () {
      const now = yield* Clock.currentTimeMillis
      const settings = JSON.stringify({
        returnUrls: project.returnUrls ?? [],
        ...(project.confirmUsers === true ? { confirmUsers: true } : {})
      })
      const existing = yield* sql<{ id: string }>`SELECT id FROM projects WHERE id = ${project.id}`
      if (existing[0] === undefined) {
        yield* sql`INSERT INTO projects ${sql.insert({ id: project.id, name: project.name, settings, created_at: now })}`
      } else {
        yield* sql`UPDATE projects SET ${sql.update({ name: project.name, settings })} WHERE id = ${project.id}`
      }
    }).pipe(Effect.mapError(fail("save a project")))

  const putProjectKey = (projectId: string, environment: string, key: Redacted.Redacted<string>) =>
    Effect.gen(function* () {
      const now = yield* Clock.currentTimeMillis
      const keyHash = hashKey(key)
      yield* sql`DELETE FROM project_keys WHERE key_hash = ${keyHash}`
      yield* sql`INSERT INTO project_keys ${sql.insert({
        key_hash: keyHash,
        project_id: projectId,
        environment,
        created_at: now
      })}`
    }).pipe(sql.withTransaction, Effect.mapError(fail("save a project key")))

  const findCaller = (key: Redacted.Redacted<string>) =>
    Effect.gen(function* () {
      const keyHash = hashKey(key)
      const rows = yield* sql<{
        key_hash: string
        project_id: string
        environment: string
      }>`SELECT key_hash, project_id, environment FROM project_keys WHERE key_hash = ${keyHash}`
      const row = rows[0]
      // The lookup is by hash; the comparison of what came back is in constant time.
      if (row === undefined || !timingSafeEqual(Buffer.from(row.key_hash), Buffer.from(keyHash))) return Option.none()
      return Option.some<Caller>({ projectId: row.project_id, environment: row.environment })
    }).pipe(Effect.mapError(fail("check a caller key")))

  const putLink = (connectorId: string, projectId: string, environments: ReadonlyArray<string>) =>
    Effect.gen(function* () {
      const value = JSON.stringify([...new Set(environments)].sort())
      yield* sql`DELETE FROM links WHERE connector_id = ${connectorId} AND project_id = ${projectId}`
      yield* sql`INSERT INTO links ${sql.insert({ connector_id: connectorId, project_id: projectId, environments: value })}`
    }).pipe(sql.withTransaction, Effect.mapError(fail("save a link")))

  const findLink = (connectorId: string, projectId: string) =>
    sql<{
      environments: string
    }>`SELECT environments FROM links WHERE connector_id = ${connectorId} AND project_id = ${projectId}`.pipe(
      Effect.flatMap((rows) =>
        rows[0] === undefined
          ? Effect.succeed(Option.none<ReadonlyArray<string>>())
          : Effect.asSome(Schema.decode(Environments)(rows[0].environments))
      ),
      Effect.mapError(fail("read a link"))
    )

  const removeLink = (connectorId: string, projectId: string) =>
    sql`DELETE FROM links WHERE connector_id = ${connectorId} AND project_id = ${projectId}`.pipe(
      Effect.asVoid,
      Effect.mapError(fail("remove a link"))
    )

  const findGrant = (connectorId: string, installationId: string, subject: string) =>
    sql<GrantRow>`SELECT * FROM grants WHERE connector_id = ${connectorId} AND installation_id = ${installationId} AND subject = ${subject}`.pipe(
      Effect.flatMap(firstRow(toGrant)),
      Effect.mapError(fail("read a grant"))
    )

  const findGrantById = (grantId: string) =>
    sql<GrantRow>`SELECT * FROM grants WHERE id = ${grantId}`.pipe(
      Effect.flatMap(firstRow(toGrant)),
      Effect.mapError(fail("read a grant"))
    )

  const putGrant = (grant: {
    readonly connectorId: string
    readonly installationId: string
    readonly subject: string
    readonly refreshToken: Redacted.Redacted<string> | undefined
    readonly refreshExpiresAt?: number | undefined
    readonly scope?: string | undefined
    /** Without a refresh token, keep the one the grant holds instead of clearing it. */
    readonly keepRefreshToken?: boolean | undefined
    /** The access token to keep, for a grant that has no refresh token to renew it. */
    readonly accessToken?: Redacted.Redacted<string> | undefined
    readonly accessExpiresAt?: number | undefined
  }) =>
    Effect.gen(function* () {
      const now = yield* Clock.currentTimeMillis
      const existing = yield* sql<{
        id: string
        version: number | string
      }>`SELECT id, version FROM grants WHERE connector_id = ${grant.connectorId} AND installation_id = ${grant.installationId} AND subject = ${grant.subject}`
      const id = existing[0]?.id ?? newId("grt")
      const refreshToken =
        grant.refreshToken === undefined ? null : yield* seal(grant.refreshToken, "grants", "refresh_token", id)
      const keep = refreshToken === null && grant.keepRefreshToken === true && existing[0] !== undefined
      const accessToken =
        grant.accessToken === undefined ? null : yield* seal(grant.accessToken, "grants", "access_token", id)
      const fields = {
        ...(keep ? {} : { refresh_token: refreshToken, refresh_expires_at: grant.refreshExpiresAt ?? null }),
        access_token: accessToken,
        access_expires_at: accessToken === null ? null : (grant.accessExpiresAt ?? null),
        scope: grant.scope ?? null,
        status: "active",
        // A new consent starts afresh: a refresh under way with the old token may not save over it.
        ...(existing[0] === undefined ? {} : { attempt_started_at: null, lost_reason: null, lease_owner: null }),
        ...(existing[0] === undefined ? {} : { lease_expires_at: null }),
        updated_at: now
      }
      if (existing[0] === undefined) {
        yield* sql`INSERT INTO grants ${sql.insert({
          id,
          connector_id: grant.connectorId,
          installation_id: grant.installationId,
          subject: grant.subject,
          version: 1,
          created_at: now,
          ...fields
        })}`
      } else {
        yield* sql`UPDATE grants SET ${sql.update({ ...fields, version: num(existing[0].version) + 1 })} WHERE id = ${id}`
      }
      return id
    }).pipe(sql.withTransaction, Effect.mapError(fail("save a grant")))

  /**
   * Runs `f` with the grant's row locked, giving it the grant as read under the
   * lock. On Postgres this is `SELECT … FOR UPDATE` in a transaction, so other
   * broker processes wait and then read what `f` wrote. SQLite serves one
   * process, whose own single flight keeps one writer per grant; holding its
   * only connection across a provider call would stall every other request, so
   * there `f` runs on a plain read and makes its writes atomic with
   * `transaction`.
   */
  const withGrantLock = <A, E, R>(grantId: string, f: (grant: Grant) => Effect.Effect<A, E, R>) => {
    const locked = (rows: ReadonlyArray<GrantRow>) =>
      Effect.gen(function* () {
        if (rows[0] === undefined) return yield* new StoreError({ operation: "lock a grant", reason: "no such grant" })
        const grant = yield* toGrant(rows[0]).pipe(Effect.mapError(fail("lock a grant")))
        return yield* f(grant)
      })
    return sql
      .onDialectOrElse({
        pg: () =>
          sql.withTransaction(
            Effect.flatMap(sql<GrantRow>`SELECT * FROM grants WHERE id = ${grantId} FOR UPDATE`, locked)
          ),
        orElse: () => Effect.flatMap(sql<GrantRow>`SELECT * FROM grants WHERE id = ${grantId}`, locked)
      })
      .pipe(Effect.catchTag("SqlError", (error) => Effect.fail(fail("lock a grant")(error))))
  }

  /** Runs `effect` in a transaction (nested ones become savepoints). */
  const transaction = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
    sql.withTransaction(effect).pipe(Effect.catchTag("SqlError", (error) => Effect.fail(fail("commit")(error))))

  const updateGrant = (
    grantId: string,
    changes: {
      readonly refreshToken?: Redacted.Redacted<string> | undefined
      readonly refreshExpiresAt?: number | undefined
      readonly status?: Grant["status"] | undefined
    }
  ) =>
    Effect.gen(function* () {
      const now = yield* Clock.currentTimeMillis
      const refreshToken =
        changes.refreshToken === undefined
          ? undefined
          : yield* seal(changes.refreshToken, "grants", "refresh_token", grantId)
      yield* sql`UPDATE grants SET ${sql.update({
        ...(refreshToken === undefined ? {} : { refresh_token: refreshToken }),
        ...(changes.refreshExpiresAt === undefined ? {} : { refresh_expires_at: changes.refreshExpiresAt }),
        ...(changes.status === undefined ? {} : { status: changes.status }),
        updated_at: now
      })}, version = version + 1 WHERE id = ${grantId}`
    }).pipe(Effect.mapError(fail("update a grant")))

  // ---------------------------------------------------------------------------
  // The refresh journal (src/broker/grants/refreshToken.ts): each of these is
  // one statement, atomic on its own, so no transaction or row lock is held
  // while the provider is called.

  /**
   * Takes the lease on a grant to refresh it, if it is still at `version`,
   * active, and not leased by another broker until after `now`; records the
   * attempt (the earliest unfinished one is kept). Says whether it did: the
   * grant's version is then `version + 1`.
   */
  const claimGrantLease = (claim: {
    readonly grantId: string
    readonly version: number
    readonly owner: string
    readonly now: number
    readonly until: number
  }) =>
    sql<{ id: string }>`UPDATE grants SET lease_owner = ${claim.owner}, lease_expires_at = ${claim.until},
        attempt_started_at = COALESCE(attempt_started_at, ${claim.now}), version = version + 1,
        updated_at = ${claim.now}
      WHERE id = ${claim.grantId} AND version = ${claim.version} AND status = 'active'
        AND (lease_expires_at IS NULL OR lease_expires_at <= ${claim.now})
      RETURNING id`.pipe(
      Effect.map((rows) => rows.length === 1),
      Effect.mapError(fail("claim a grant"))
    )

  /**
   * Ends a refresh under the lease taken at `version - 1`: saves what it gave
   * (a rotated refresh token, a new status) and releases the lease, if nobody
   * changed the grant since (compare-and-set on `version`). `keepAttempt` keeps
   * the attempt recorded when its outcome is unknown (no answer, a 5xx).
   */
  const finishGrantRefresh = (finish: {
    readonly grantId: string
    readonly version: number
    readonly refreshToken?: Redacted.Redacted<string> | undefined
    readonly refreshExpiresAt?: number | undefined
    readonly status?: Grant["status"] | undefined
    readonly lostReason?: string | undefined
    readonly keepAttempt: boolean
    /** Keep the lease (to record the access token before others look); `releaseGrantLease` ends it. */
    readonly keepLease?: boolean | undefined
  }) =>
    Effect.gen(function* () {
      const now = yield* Clock.currentTimeMillis
      const refreshToken =
        finish.refreshToken === undefined
          ? undefined
          : yield* seal(finish.refreshToken, "grants", "refresh_token", finish.grantId)
      const rows = yield* sql<{ id: string }>`UPDATE grants SET ${sql.update({
        ...(refreshToken === undefined ? {} : { refresh_token: refreshToken }),
        ...(finish.refreshExpiresAt === undefined ? {} : { refresh_expires_at: finish.refreshExpiresAt }),
        ...(finish.status === undefined ? {} : { status: finish.status }),
        ...(finish.lostReason === undefined ? {} : { lost_reason: finish.lostReason }),
        ...(finish.keepAttempt ? {} : { attempt_started_at: null }),
        ...(finish.keepLease === true ? {} : { lease_owner: null, lease_expires_at: null }),
        updated_at: now
      })}, version = version + 1 WHERE id = ${finish.grantId} AND version = ${finish.version} RETURNING id`
      return rows.length === 1
    }).pipe(Effect.mapError(fail("save a refreshed grant")))

  /** Ends the lease `owner` holds on a grant (the grant's refresh is saved already). */
  const releaseGrantLease = (grantId: string, owner: string) =>
    sql`UPDATE grants SET lease_owner = NULL, lease_expires_at = NULL, version = version + 1
      WHERE id = ${grantId} AND lease_owner = ${owner}`.pipe(Effect.asVoid, Effect.mapError(fail("release a grant")))

  /**
   * The grants with a refresh whose outcome is unknown and that nobody is
   * refreshing now: their lease expired, or (`anyLease`, for SQLite, which one
   * process serves) was taken by a process that is gone.
   */
  const listUnfinishedRefreshes = (now: number, anyLease: boolean) =>
    sql<{ id: string }>`SELECT id FROM grants
      WHERE attempt_started_at IS NOT NULL AND status = 'active'
        ${anyLease ? sql`` : sql`AND (lease_expires_at IS NULL OR lease_expires_at <= ${now})`}
      ORDER BY attempt_started_at`.pipe(
      Effect.map((rows) => rows.map((row) => row.id)),
      Effect.mapError(fail("list unfinished refreshes"))
    )

  /** Whether one process serves the database (SQLite), so that any lease found at start is stale. */
  const singleProcess = sql.onDialectOrElse({ sqlite: () => true, orElse: () => false })

  /** Frees the leases a process that is gone left behind (SQLite, at start: one process serves it). */
  const releaseAllLeases = Effect.gen(function* () {
    yield* sql`UPDATE grants SET lease_owner = NULL, lease_expires_at = NULL, version = version + 1
      WHERE lease_owner IS NOT NULL`
    yield* sql`DELETE FROM token_leases`
  }).pipe(Effect.mapError(fail("release leases")))

  /**
   * Takes the lease of `key` (a token request that needs no stored grant) until
   * `until`, unless another broker holds it past `now`. Says whether it did.
   */
  const claimTokenLease = (key: string, owner: string, now: number, until: number) =>
    sql<{ lease_key: string }>`INSERT INTO token_leases (lease_key, owner, expires_at)
      VALUES (${key}, ${owner}, ${until})
      ON CONFLICT (lease_key) DO UPDATE SET owner = ${owner}, expires_at = ${until}
        WHERE token_leases.expires_at <= ${now}
      RETURNING lease_key`.pipe(
      Effect.map((rows) => rows.length === 1),
      Effect.mapError(fail("claim a token lease"))
    )

  /** Gives up the lease of `key`, if `owner` still holds it. */
  const releaseTokenLease = (key: string, owner: string) =>
    sql`DELETE FROM token_leases WHERE lease_key = ${key} AND owner = ${owner}`.pipe(
      Effect.asVoid,
      Effect.mapError(fail("release a token lease"))
    )

  const insertIssuedToken = (token: Omit<IssuedToken, "id" | "status" | "createdAt">) =>
    Effect.gen(function* () {
      const now = yield* Clock.currentTimeMillis
      const id = newId("stk")
      const accessToken = yield* seal(token.accessToken, "issued_tokens", "access_token", id)
      yield* sql`INSERT INTO issued_tokens ${sql.insert({
        id,
        connector_id: token.connectorId,
        project_id: token.projectId,
        environment: token.environment,
        subject: token.subject,
        installation_id: token.installationId,
        request_key: token.requestKey,
        grant_id: token.grantId ?? null,
        access_token: accessToken,
        expires_at: token.expiresAt,
        status: "active",
        created_at: now
      })}`
      return { ...token, id, status: "active", createdAt: now } satisfies IssuedToken
    }).pipe(Effect.mapError(fail("record an issued token")))

  /**
   * The newest active token for the same request that may be handed out at
   * `now` by the reuse rule (`isReusable` in `grants/reuse.ts`, with
   * `bufferMs`); the SQL only leaves out the expired ones.
   */
  const findReusableToken = (key: {
    readonly connectorId: string
    readonly projectId: string
    readonly environment: string
    readonly requestKey: string
    readonly now: number
    readonly bufferMs: number
  }) =>
    sql<TokenRow>`SELECT * FROM issued_tokens
      WHERE connector_id = ${key.connectorId} AND project_id = ${key.projectId}
        AND environment = ${key.environment} AND request_key = ${key.requestKey}
        AND status = 'active' AND expires_at > ${key.now}
      ORDER BY expires_at DESC LIMIT 20`.pipe(
      Effect.map((rows) =>
        rows.filter((row) =>
          isReusable({ expiresAt: num(row.expires_at), createdAt: num(row.created_at) }, key.now, key.bufferMs)
        )
      ),
      Effect.flatMap(firstRow(toToken)),
      Effect.mapError(fail("read an issued token"))
    )

  const listActiveTokens = (filter: TokenFilter) =>
    sql<TokenRow>`SELECT * FROM issued_tokens
      WHERE connector_id = ${filter.connectorId} AND status = 'active'
        ${filter.projectId === undefined ? sql`` : sql`AND project_id = ${filter.projectId}`}
        ${filter.subject === undefined ? sql`` : sql`AND subject = ${filter.subject}`}
        ${filter.installationId === undefined ? sql`` : sql`AND installation_id = ${filter.installationId}`}
      ORDER BY created_at`.pipe(
      Effect.flatMap((rows) => Effect.forEach(rows, toToken)),
      Effect.mapError(fail("list issued tokens"))
    )

  /** Deletes the issued tokens that expired before `before`, and says how many. */
  const pruneIssuedTokens = (before: number) =>
    sql<{ id: string }>`DELETE FROM issued_tokens WHERE expires_at < ${before} RETURNING id`.pipe(
      Effect.map((rows) => rows.length),
      Effect.mapError(fail("prune issued tokens"))
    )

  const markTokens = (ids: ReadonlyArray<string>, status: "revoked" | "deleted") =>
    Effect.gen(function* () {
      if (ids.length === 0) return
      const now = yield* Clock.currentTimeMillis
      yield* sql`UPDATE issued_tokens SET status = ${status}, revoked_at = ${now} WHERE ${sql.in("id", ids)}`
    }).pipe(Effect.mapError(fail("mark issued tokens")))

  const toAuthorizationRequest = (row: AuthorizationRow) =>
    Effect.all({
      state: unseal(row.state, "authorization_requests", "state", row.id),
      codeVerifier: unseal(row.code_verifier, "authorization_requests", "code_verifier", row.id)
    }).pipe(
      Effect.map(
        ({ state, codeVerifier }): AuthorizationRequestRecord => ({
          id: row.id,
          state,
          verifierHash: row.verifier_hash,
          codeVerifier,
          kind: row.kind as AuthorizationRequestRecord["kind"],
          connectorId: row.connector_id,
          projectId: row.project_id,
          environment: row.environment,
          installationId: row.installation_id,
          subject: row.subject,
          request: row.request,
          returnUrl: row.return_url ?? undefined,
          prompt: row.prompt ?? undefined,
          ...(row.tenant_hint === null ? {} : { tenantHint: row.tenant_hint }),
          ...(row.user_code === null ? {} : { userCode: row.user_code }),
          status: row.status as AuthorizationRequestRecord["status"],
          error: row.error ?? undefined,
          expiresAt: num(row.expires_at),
          createdAt: num(row.created_at)
        })
      )
    )

  const createAuthorizationRequest = (
    input: Omit<AuthorizationRequestRecord, "id" | "status" | "error" | "createdAt">
  ) =>
    Effect.gen(function* () {
      const now = yield* Clock.currentTimeMillis
      // Requests a day past their expiry serve nothing any more, not even a status check.
      yield* sql`DELETE FROM authorization_requests WHERE expires_at < ${now - 86_400_000}`
      // An unconfirmed grant expires with its request.
      yield* sql`UPDATE authorization_requests SET sealed_grant = NULL, confirmation_hash = NULL
        WHERE status = 'awaiting_confirmation' AND expires_at <= ${now}`
      const id = newId("req")
      yield* sql`INSERT INTO authorization_requests ${sql.insert({
        id,
        state_hash: hashKey(input.state),
        state: yield* seal(input.state, "authorization_requests", "state", id),
        verifier_hash: input.verifierHash,
        code_verifier: yield* seal(input.codeVerifier, "authorization_requests", "code_verifier", id),
        kind: input.kind,
        connector_id: input.connectorId,
        project_id: input.projectId,
        environment: input.environment,
        installation_id: input.installationId,
        subject: input.subject,
        request: input.request,
        return_url: input.returnUrl ?? null,
        prompt: input.prompt ?? null,
        tenant_hint: input.tenantHint ?? null,
        status: "pending",
        expires_at: input.expiresAt,
        created_at: now
      })}`
      return { ...input, id, status: "pending", error: undefined, createdAt: now } satisfies AuthorizationRequestRecord
    }).pipe(Effect.mapError(fail("save an authorization request")))

  const findAuthorizationRequest = (by: { readonly id: string } | { readonly state: Redacted.Redacted<string> }) =>
    ("id" in by
      ? sql<AuthorizationRow>`SELECT * FROM authorization_requests WHERE id = ${by.id}`
      : sql<AuthorizationRow>`SELECT * FROM authorization_requests WHERE state_hash = ${hashKey(by.state)}`
    ).pipe(Effect.flatMap(firstRow(toAuthorizationRequest)), Effect.mapError(fail("read an authorization request")))

  /** A pending request of the same subject and request that stays open beyond `validUntil`, to hand out again. */
  const findPendingAuthorization = (key: {
    readonly connectorId: string
    readonly projectId: string
    readonly environment: string
    readonly subject: string
    readonly request: string
    readonly validUntil: number
  }) =>
    sql<AuthorizationRow>`SELECT * FROM authorization_requests
      WHERE connector_id = ${key.connectorId} AND project_id = ${key.projectId} AND environment = ${key.environment}
        AND subject = ${key.subject} AND request = ${key.request} AND status = 'pending' AND return_url IS NULL
        AND user_code IS NULL
        AND expires_at > ${key.validUntil}
      ORDER BY expires_at DESC LIMIT 1`.pipe(
      Effect.flatMap(firstRow(toAuthorizationRequest)),
      Effect.mapError(fail("read an authorization request"))
    )

  /**
   * How many requests of a project are still open at `now` (pending, being
   * completed, or awaiting confirmation), and when the first of them expires: what the cap on open
   * requests per project counts.
   */
  const countOpenAuthorizations = (projectId: string, now: number) =>
    sql<{ count: number | string; first_expiry: number | string | null }>`SELECT COUNT(*) AS count,
        MIN(expires_at) AS first_expiry FROM authorization_requests
      WHERE project_id = ${projectId} AND status IN ('pending', 'completing', 'awaiting_confirmation') AND expires_at > ${now}`.pipe(
      Effect.map((rows) => ({
        count: rows[0] === undefined ? 0 : num(rows[0].count),
        firstExpiry: rows[0]?.first_expiry == null ? now : num(rows[0].first_expiry)
      })),
      Effect.mapError(fail("count open authorization requests"))
    )

  /**
   * Takes a pending, unexpired request for completion, once: of concurrent or
   * replayed callbacks with the same state, only one gets `true`.
   */
  const claimAuthorizationRequest = (id: string, now: number) =>
    sql<{ id: string }>`UPDATE authorization_requests SET status = 'completing'
      WHERE id = ${id} AND status = 'pending' AND expires_at > ${now} RETURNING id`.pipe(
      Effect.map((rows) => rows.length === 1),
      Effect.mapError(fail("claim an authorization request"))
    )

  const finishAuthorizationRequest = (
    id: string,
    outcome: {
      readonly status: "completed" | "failed"
      readonly error?: string
      /** The installation an install request made. */
      readonly installationId?: string
    }
  ) =>
    Effect.gen(function* () {
      const now = yield* Clock.currentTimeMillis
      yield* sql`UPDATE authorization_requests SET ${sql.update({
        status: outcome.status,
        error: outcome.error ?? null,
        completed_at: now,
        // A grant that waited for confirmation is kept no longer than its request.
        sealed_grant: null,
        confirmation_hash: null,
        ...(outcome.installationId === undefined ? {} : { installation_id: outcome.installationId })
      })} WHERE id = ${id}`
    }).pipe(Effect.mapError(fail("finish an authorization request")))

  /**
   * Parks a request being completed until the application confirms its user:
   * the grant the provider gave, sealed, and the hash of the one-time code
   * that confirms it.
   */
  const awaitConfirmation = (
    id: string,
    pending: { readonly grant: Redacted.Redacted<string>; readonly confirmationHash: string }
  ) =>
    Effect.gen(function* () {
      yield* sql`UPDATE authorization_requests SET ${sql.update({
        status: "awaiting_confirmation",
        sealed_grant: yield* seal(pending.grant, "authorization_requests", "sealed_grant", id),
        confirmation_hash: pending.confirmationHash
      })} WHERE id = ${id} AND status = 'completing'`
    }).pipe(Effect.mapError(fail("park an authorization request")))

  /**
   * Takes a request awaiting confirmation whose code hashes to
   * `confirmationHash`, once and before it expires, and gives its sealed
   * grant: of concurrent confirmations, one gets it.
   */
  const claimConfirmation = (id: string, confirmationHash: string, now: number) =>
    Effect.gen(function* () {
      const rows = yield* sql<{ sealed_grant: string | null }>`UPDATE authorization_requests SET status = 'completing'
        WHERE id = ${id} AND status = 'awaiting_confirmation' AND confirmation_hash = ${confirmationHash}
          AND expires_at > ${now} RETURNING sealed_grant`
      const sealed = rows[0]?.sealed_grant
      if (sealed === undefined || sealed === null) return Option.none<Redacted.Redacted<string>>()
      return Option.some(yield* unseal(sealed, "authorization_requests", "sealed_grant", id))
    }).pipe(Effect.mapError(fail("claim an authorization request's confirmation")))

  /** Whether a project's users' grants wait for the application to confirm the user. */
  const findProjectConfirmsUsers = (projectId: string) =>
    sql<{ settings: string }>`SELECT settings FROM projects WHERE id = ${projectId}`.pipe(
      Effect.flatMap((rows) =>
        rows[0] === undefined
          ? Effect.succeed(false)
          : Schema.decode(ProjectSettingsJson)(rows[0].settings).pipe(Effect.map((settings) => settings.confirmUsers))
      ),
      Effect.mapError(fail("read a project"))
    )

  const findProjectReturnUrls = (projectId: string) =>
    sql<{ settings: string }>`SELECT settings FROM projects WHERE id = ${projectId}`.pipe(
      Effect.flatMap((rows) =>
        rows[0] === undefined
          ? Effect.succeed<ReadonlyArray<string>>([])
          : Schema.decode(ProjectSettingsJson)(rows[0].settings).pipe(Effect.map((settings) => settings.returnUrls))
      ),
      Effect.mapError(fail("read a project"))
    )

  // ---------------------------------------------------------------------------
  // Device authorization (RFC 8628, DeviceAuthorizations.ts): a user
  // request completed on another device, which the broker polls the provider
  // for. The device code is sealed like `state`.

  const toDeviceAuthorization = (row: DeviceAuthorizationRow) =>
    Effect.gen(function* () {
      if (row.device_code === null || row.user_code === null) return Option.none<DeviceAuthorizationRecord>()
      const request = yield* toAuthorizationRequest(row)
      const deviceCode = yield* unseal(row.device_code, "authorization_requests", "device_code", row.id)
      return Option.some<DeviceAuthorizationRecord>({
        request,
        deviceCode,
        userCode: row.user_code,
        verificationUrl: row.verification_url ?? "",
        intervalMs: row.poll_interval_ms === null ? 5_000 : num(row.poll_interval_ms),
        nextPollAt: row.next_poll_at === null ? 0 : num(row.next_poll_at)
      })
    })

  /** Creates a pending request with its device authorization, in one transaction. */
  const createDeviceAuthorizationRequest = (
    input: Parameters<typeof createAuthorizationRequest>[0],
    device: {
      readonly deviceCode: Redacted.Redacted<string>
      readonly userCode: string
      readonly verificationUrl: string
      readonly intervalMs: number
      readonly nextPollAt: number
    }
  ) =>
    transaction(
      Effect.gen(function* () {
        const record = yield* createAuthorizationRequest(input)
        yield* Effect.gen(function* () {
          yield* sql`UPDATE authorization_requests SET ${sql.update({
            device_code: yield* seal(device.deviceCode, "authorization_requests", "device_code", record.id),
            user_code: device.userCode,
            verification_url: device.verificationUrl,
            poll_interval_ms: device.intervalMs,
            next_poll_at: device.nextPollAt
          })} WHERE id = ${record.id}`
        }).pipe(Effect.mapError(fail("save a device authorization")))
        return {
          request: { ...record, userCode: device.userCode },
          ...device
        } satisfies DeviceAuthorizationRecord
      })
    )

  /** The device authorization of a request, if it is one. */
  const findDeviceAuthorization = (id: string) =>
    sql<DeviceAuthorizationRow>`SELECT * FROM authorization_requests WHERE id = ${id}`.pipe(
      Effect.flatMap((rows) =>
        rows[0] === undefined
          ? Effect.succeed(Option.none<DeviceAuthorizationRecord>())
          : toDeviceAuthorization(rows[0])
      ),
      Effect.mapError(fail("read a device authorization"))
    )

  /** The ids of the device authorizations still pending and open at `now`. */
  const listPendingDeviceAuthorizations = (now: number) =>
    sql<{ id: string }>`SELECT id FROM authorization_requests
      WHERE status = 'pending' AND device_code IS NOT NULL AND expires_at > ${now} ORDER BY next_poll_at`.pipe(
      Effect.map((rows) => rows.map((row) => row.id)),
      Effect.mapError(fail("list device authorizations"))
    )

  /**
   * Takes the next poll of a pending, open device authorization whose poll
   * time has come, moving that time to `until`: of concurrent pollers (in any
   * replica), only one gets `true`.
   */
  const claimDevicePoll = (id: string, now: number, until: number) =>
    sql<{ id: string }>`UPDATE authorization_requests SET next_poll_at = ${until}
      WHERE id = ${id} AND status = 'pending' AND device_code IS NOT NULL
        AND next_poll_at <= ${now} AND expires_at > ${now} RETURNING id`.pipe(
      Effect.map((rows) => rows.length === 1),
      Effect.mapError(fail("claim a device authorization poll"))
    )

  /** Sets when a pending device authorization is polled next, and how often after that. */
  const scheduleDevicePoll = (id: string, next: { readonly intervalMs: number; readonly nextPollAt: number }) =>
    sql`UPDATE authorization_requests SET ${sql.update({
      poll_interval_ms: next.intervalMs,
      next_poll_at: next.nextPollAt
    })} WHERE id = ${id} AND status = 'pending'`.pipe(
      Effect.asVoid,
      Effect.mapError(fail("schedule a device authorization poll"))
    )

  // ---------------------------------------------------------------------------
  // Admin API (Admin.ts): projects with their key counts, a
  // connector's links, and the projects holding a connector's active tokens.

  const keyCounts = (projectId?: string) =>
    sql<{ project_id: string; environment: string; count: number | string }>`SELECT project_id, environment,
        COUNT(*) AS count FROM project_keys
      ${projectId === undefined ? sql`` : sql`WHERE project_id = ${projectId}`}
      GROUP BY project_id, environment ORDER BY environment`

  const toProject = (
    row: { id: string; name: string; settings: string; created_at: number | string },
    counts: ReadonlyArray<{ project_id: string; environment: string; count: number | string }>
  ) =>
    Schema.decode(ProjectSettingsJson)(row.settings).pipe(
      Effect.map((settings) => ({
        id: row.id,
        name: row.name,
        returnUrls: settings.returnUrls,
        confirmUsers: settings.confirmUsers,
        keys: counts
          .filter((count) => count.project_id === row.id)
          .map((count) => ({ environment: count.environment, count: num(count.count) })),
        createdAt: num(row.created_at)
      }))
    )

  /** A project, with how many caller keys it has per environment. */
  const findProject = (projectId: string) =>
    Effect.gen(function* () {
      const rows = yield* sql<{
        id: string
        name: string
        settings: string
        created_at: number | string
      }>`SELECT * FROM projects WHERE id = ${projectId}`
      if (rows[0] === undefined) return Option.none()
      return Option.some(yield* toProject(rows[0], yield* keyCounts(projectId)))
    }).pipe(Effect.mapError(fail("read a project")))

  /** Every project, by id, with how many caller keys each has per environment. */
  const listProjects = Effect.gen(function* () {
    const rows = yield* sql<{
      id: string
      name: string
      settings: string
      created_at: number | string
    }>`SELECT * FROM projects ORDER BY id`
    const counts = yield* keyCounts()
    return yield* Effect.forEach(rows, (row) => toProject(row, counts))
  }).pipe(Effect.mapError(fail("list projects")))

  /** The links of a connector, by project. */
  const listConnectorLinks = (connectorId: string) =>
    sql<{
      project_id: string
      environments: string
    }>`SELECT project_id, environments FROM links WHERE connector_id = ${connectorId} ORDER BY project_id`.pipe(
      Effect.flatMap((rows) =>
        Effect.forEach(rows, (row) =>
          Schema.decode(Environments)(row.environments).pipe(
            Effect.map((environments) => ({ projectId: row.project_id, environments }))
          )
        )
      ),
      Effect.mapError(fail("list links"))
    )

  return {
    findConnector,
    putConnector,
    removeConnector,
    listConnectors,
    setInstallations,
    putInstallation,
    removeInstallation,
    listInstallations,
    listGrants,
    putProject,
    putProjectKey,
    findCaller,
    putLink,
    findLink,
    removeLink,
    findGrant,
    findGrantById,
    putGrant,
    withGrantLock,
    transaction,
    updateGrant,
    claimGrantLease,
    finishGrantRefresh,
    releaseGrantLease,
    listUnfinishedRefreshes,
    releaseAllLeases,
    singleProcess,
    claimTokenLease,
    releaseTokenLease,
    insertIssuedToken,
    findReusableToken,
    listActiveTokens,
    pruneIssuedTokens,
    markTokens,
    createAuthorizationRequest,
    findAuthorizationRequest,
    findPendingAuthorization,
    countOpenAuthorizations,
    claimAuthorizationRequest,
    finishAuthorizationRequest,
    findProjectReturnUrls,
    findProjectConfirmsUsers,
    awaitConfirmation,
    claimConfirmation,
    // Device authorization
    createDeviceAuthorizationRequest,
    findDeviceAuthorization,
    listPendingDeviceAuthorizations,
    claimDevicePoll,
    scheduleDevicePoll,
    // Admin API
    findProject,
    listProjects,
    listConnectorLinks
  }
})

/**
 * The operations of the store.
 *
 * @since 0.1.0
 * @category models
 */
export type StoreService = Effect.Effect.Success<typeof make>

/**
 * The broker's store.
 *
 * @since 0.1.0
 * @category tags
 */
export class Store extends Context.Tag("effect-connect/broker/Store")<Store, StoreService>() {
  /** The store over the `SqlClient` in context, sealing with the `Cipher`. */
  static readonly layer: Layer.Layer<Store, never, SqlClient.SqlClient | Cipher> = Layer.effect(Store, make)
}
