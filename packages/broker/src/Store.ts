/**
 * The broker's store: connectors and their installations, projects and their
 * caller keys, links, users' grants and issued tokens, over `@effect/sql` (SQLite
 * or Postgres alike).
 *
 * `StoreService` is the interface; `Store.layer` implements it with one
 * repository per table or two (under `store/`), over the `SqlClient` in context.
 * Every secret is sealed by the `Cipher` before it reaches a row, with the row's
 * identity as associated data, and unsealed only on the way out (see
 * `store/sealer.ts`); caller keys are kept only as SHA-256 hashes.
 *
 * @since 0.1.0
 */
import { SqlClient } from "@effect/sql"
import { Context, Effect, Layer, type Option, type Redacted } from "effect"
import { Cipher } from "./Cipher.js"
import { HotCache } from "./HotCache.js"
import { makeAuthorizationRequests } from "./internal/store/authorizationRequests.js"
import { transaction } from "./internal/store/common.js"
import { makeConnectors } from "./internal/store/connectors.js"
import { makeDeviceAuthorizations } from "./internal/store/deviceAuthorizations.js"
import { makeGrants } from "./internal/store/grants.js"
import { invalidating } from "./internal/store/invalidating.js"
import { makeIssuedTokens } from "./internal/store/issuedTokens.js"
import type {
  AuthorizationRequestRecord,
  Caller,
  Connector,
  ConnectorInput,
  ConnectorLink,
  DeviceAuthorizationRecord,
  Grant,
  GrantPage,
  GrantPageQuery,
  Installation,
  IssuedToken,
  Project,
  StoreError,
  TokenFilter
} from "./internal/store/models.js"
import { makeProjects } from "./internal/store/projects.js"
import { makeSealer } from "./internal/store/sealer.js"
import { makeTokenLeases } from "./internal/store/tokenLeases.js"
import { traced } from "./internal/store/traced.js"

export { hashKey, newId } from "./internal/store/common.js"
export * from "./internal/store/models.js"

/**
 * Connectors and their installations.
 *
 * @since 0.1.0
 * @category models
 */
export interface ConnectorStore {
  /** The connector with this uid or id. */
  readonly findConnector: (uidOrId: string) => Effect.Effect<Option.Option<Connector>, StoreError>
  /** Creates or updates the connector of `input.uid` (its id is kept), sealing its secrets. */
  readonly putConnector: (input: ConnectorInput) => Effect.Effect<Connector, StoreError>
  /** Deletes a connector with everything made with it; says whether there was one. */
  readonly removeConnector: (uidOrId: string) => Effect.Effect<boolean, StoreError>
  /** Every connector, by uid. */
  readonly listConnectors: Effect.Effect<Array<Connector>, StoreError>
  /**
   * Replaces the installations the config file declares; those made through
   * the install flow stay, unless the file declares one with the same id.
   */
  readonly setInstallations: (
    connectorId: string,
    installations: ReadonlyArray<Omit<Installation, "connectorId" | "source">>
  ) => Effect.Effect<void, StoreError>
  /**
   * Saves an installation made through the install flow: a new one, or the
   * same tenant installed again. It becomes the default when asked to and the
   * connector has no default yet.
   */
  readonly putInstallation: (installation: {
    readonly connectorId: string
    readonly id: string
    readonly tenantId: string | undefined
    readonly tokenEndpoint: string | undefined
    readonly defaultIfNone: boolean
  }) => Effect.Effect<void, StoreError>
  /** Deletes an installation and every grant made within it (its own and its users'). */
  readonly removeInstallation: (connectorId: string, installationId: string) => Effect.Effect<boolean, StoreError>
  /** A connector's installations, by id. */
  readonly listInstallations: (connectorId: string) => Effect.Effect<Array<Installation>, StoreError>
}

/**
 * Projects, their caller keys and their links to connectors.
 *
 * @since 0.1.0
 * @category models
 */
export interface ProjectStore {
  /** Creates or updates a project. */
  readonly putProject: (project: {
    readonly id: string
    readonly name: string
    readonly returnUrls?: ReadonlyArray<string>
    readonly confirmUsers?: boolean | undefined
  }) => Effect.Effect<void, StoreError>
  /** Adds a caller key of a project's environment (kept as its hash). */
  readonly putProjectKey: (
    projectId: string,
    environment: string,
    key: Redacted.Redacted<string>
  ) => Effect.Effect<void, StoreError>
  /** The project and environment a caller key belongs to. */
  readonly findCaller: (key: Redacted.Redacted<string>) => Effect.Effect<Option.Option<Caller>, StoreError>
  /** Links a connector to a project's environments (replacing the link it had). */
  readonly putLink: (
    connectorId: string,
    projectId: string,
    environments: ReadonlyArray<string>
  ) => Effect.Effect<void, StoreError>
  /** The environments of a project linked to a connector. */
  readonly findLink: (
    connectorId: string,
    projectId: string
  ) => Effect.Effect<Option.Option<ReadonlyArray<string>>, StoreError>
  /** Unlinks a connector from a project. */
  readonly removeLink: (connectorId: string, projectId: string) => Effect.Effect<void, StoreError>
  /** The URLs a project's users may be sent back to. */
  readonly findProjectReturnUrls: (projectId: string) => Effect.Effect<ReadonlyArray<string>, StoreError>
  /** Whether a project's users' grants wait for the application to confirm the user. */
  readonly findProjectConfirmsUsers: (projectId: string) => Effect.Effect<boolean, StoreError>
  /** A project, with how many caller keys it has per environment. */
  readonly findProject: (projectId: string) => Effect.Effect<Option.Option<Project>, StoreError>
  /** Every project, by id, with how many caller keys each has per environment. */
  readonly listProjects: Effect.Effect<Array<Project>, StoreError>
  /** A project's caller keys by environment, each as the prefix kept to tell it apart (none for short keys). */
  readonly listProjectKeys: (
    projectId: string
  ) => Effect.Effect<
    ReadonlyArray<{ readonly environment: string; readonly prefix: string | undefined; readonly createdAt: number }>,
    StoreError
  >
  /** The links of a connector, by project. */
  readonly listConnectorLinks: (connectorId: string) => Effect.Effect<Array<ConnectorLink>, StoreError>
}

/**
 * Users' (and installations') grants, and the refresh journal: leases,
 * attempts and compare-and-set saves on a grant's `version`.
 *
 * @since 0.1.0
 * @category models
 */
export interface GrantStore {
  /** The grants made within an installation (`""`: the connector's default), or all of the connector's. */
  readonly listGrants: (connectorId: string, installationId?: string) => Effect.Effect<Array<Grant>, StoreError>
  /** How many grants there are of each status (for the metrics). */
  readonly countGrantsByStatus: Effect.Effect<
    ReadonlyArray<{ readonly status: string; readonly count: number }>,
    StoreError
  >
  /** A page of a connector's grants (whose subject contains `query.search`), newest first, without their tokens. */
  readonly listGrantPage: (connectorId: string, query: GrantPageQuery) => Effect.Effect<GrantPage, StoreError>
  /** How many grants each connector has of each status. */
  readonly countGrantsByConnector: Effect.Effect<
    ReadonlyArray<{ readonly connectorId: string; readonly status: string; readonly count: number }>,
    StoreError
  >
  /** The grant of a subject within an installation of a connector. */
  readonly findGrant: (
    connectorId: string,
    installationId: string,
    subject: string
  ) => Effect.Effect<Option.Option<Grant>, StoreError>
  /** The grant with this id. */
  readonly findGrantById: (grantId: string) => Effect.Effect<Option.Option<Grant>, StoreError>
  /** Saves a new consent: creates the grant, or replaces what it holds (active, a new version); gives its id. */
  readonly putGrant: (grant: {
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
  }) => Effect.Effect<string, StoreError>
  /**
   * Runs `f` with the grant's row locked (Postgres: `SELECT … FOR UPDATE` in a
   * transaction; SQLite, which one process serves: a plain read).
   */
  readonly withGrantLock: <A, E, R>(
    grantId: string,
    f: (grant: Grant) => Effect.Effect<A, E, R>
  ) => Effect.Effect<A, StoreError | Exclude<E, { _tag: "SqlError" }>, R>
  /** Changes a grant's refresh token or status, bumping its version. */
  readonly updateGrant: (
    grantId: string,
    changes: {
      readonly refreshToken?: Redacted.Redacted<string> | undefined
      readonly refreshExpiresAt?: number | undefined
      readonly status?: Grant["status"] | undefined
    }
  ) => Effect.Effect<void, StoreError>
  /**
   * Takes the lease on a grant to refresh it, if it is still at `version`,
   * active, and not leased by another broker until after `now`; records the
   * attempt. Says whether it did: the grant's version is then `version + 1`.
   */
  readonly claimGrantLease: (claim: {
    readonly grantId: string
    readonly version: number
    readonly owner: string
    readonly now: number
    readonly until: number
  }) => Effect.Effect<boolean, StoreError>
  /**
   * Ends a refresh under the lease taken at `version - 1`: saves what it gave
   * and releases the lease, if nobody changed the grant since. Says whether it did.
   */
  readonly finishGrantRefresh: (finish: {
    readonly grantId: string
    readonly version: number
    readonly refreshToken?: Redacted.Redacted<string> | undefined
    readonly refreshExpiresAt?: number | undefined
    readonly status?: Grant["status"] | undefined
    readonly lostReason?: string | undefined
    readonly keepAttempt: boolean
    /** Keep the lease (to record the access token before others look); `releaseGrantLease` ends it. */
    readonly keepLease?: boolean | undefined
  }) => Effect.Effect<boolean, StoreError>
  /** Ends the lease `owner` holds on a grant (the grant's refresh is saved already). */
  readonly releaseGrantLease: (grantId: string, owner: string) => Effect.Effect<void, StoreError>
  /**
   * The grants with a refresh whose outcome is unknown and that nobody is
   * refreshing now (`anyLease`: whatever their lease, for SQLite).
   */
  readonly listUnfinishedRefreshes: (now: number, anyLease: boolean) => Effect.Effect<Array<string>, StoreError>
}

/**
 * Leases of token requests that need no stored grant, and leases left behind.
 *
 * @since 0.1.0
 * @category models
 */
export interface LeaseStore {
  /** Whether one process serves the database (SQLite), so that any lease found at start is stale. */
  readonly singleProcess: boolean
  /** Frees the leases a process that is gone left behind (SQLite, at start: one process serves it). */
  readonly releaseAllLeases: Effect.Effect<void, StoreError>
  /** Takes the lease of `key` until `until`, unless another broker holds it past `now`. Says whether it did. */
  readonly claimTokenLease: (
    key: string,
    owner: string,
    now: number,
    until: number
  ) => Effect.Effect<boolean, StoreError>
  /** Gives up the lease of `key`, if `owner` still holds it. */
  readonly releaseTokenLease: (key: string, owner: string) => Effect.Effect<void, StoreError>
}

/**
 * The tokens the broker handed out.
 *
 * @since 0.1.0
 * @category models
 */
export interface IssuedTokenStore {
  /** Records a token handed out, sealed, as active. */
  readonly insertIssuedToken: (
    token: Omit<IssuedToken, "id" | "status" | "createdAt">
  ) => Effect.Effect<IssuedToken, StoreError>
  /** The newest active token for the same request that the reuse rule lets the broker hand out again at `now`. */
  readonly findReusableToken: (key: {
    readonly connectorId: string
    readonly projectId: string
    readonly environment: string
    readonly requestKey: string
    readonly now: number
    readonly bufferMs: number
  }) => Effect.Effect<Option.Option<IssuedToken>, StoreError>
  /** The active tokens a revocation covers, oldest first. */
  readonly listActiveTokens: (filter: TokenFilter) => Effect.Effect<Array<IssuedToken>, StoreError>
  /** How many tokens each connector handed out (recorded) since `since`. */
  readonly countIssuedTokensSince: (
    since: number
  ) => Effect.Effect<ReadonlyArray<{ readonly connectorId: string; readonly count: number }>, StoreError>
  /** Deletes the issued tokens that expired before `before`, and says how many. */
  readonly pruneIssuedTokens: (before: number) => Effect.Effect<number, StoreError>
  /** Marks issued tokens revoked or deleted. */
  readonly markTokens: (ids: ReadonlyArray<string>, status: "revoked" | "deleted") => Effect.Effect<void, StoreError>
}

/**
 * What creates an authorization request.
 *
 * @since 0.1.0
 * @category models
 */
export type AuthorizationRequestInput = Omit<AuthorizationRequestRecord, "id" | "status" | "error" | "createdAt">

/**
 * Users' consents under way (the code flow), and the grants that wait for the
 * application to confirm their user.
 *
 * @since 0.1.0
 * @category models
 */
export interface AuthorizationRequestStore {
  /** Creates a pending request (and drops those long past their expiry). */
  readonly createAuthorizationRequest: (
    input: AuthorizationRequestInput
  ) => Effect.Effect<AuthorizationRequestRecord, StoreError>
  /** The request with this id, or whose `state` this is. */
  readonly findAuthorizationRequest: (
    by: { readonly id: string } | { readonly state: Redacted.Redacted<string> }
  ) => Effect.Effect<Option.Option<AuthorizationRequestRecord>, StoreError>
  /** A pending request of the same subject and request that stays open beyond `validUntil`, to hand out again. */
  readonly findPendingAuthorization: (key: {
    readonly connectorId: string
    readonly projectId: string
    readonly environment: string
    readonly subject: string
    readonly request: string
    readonly validUntil: number
  }) => Effect.Effect<Option.Option<AuthorizationRequestRecord>, StoreError>
  /** How many requests of a project are still open at `now`, and when the first of them expires. */
  readonly countOpenAuthorizations: (
    projectId: string,
    now: number
  ) => Effect.Effect<{ count: number; firstExpiry: number }, StoreError>
  /** Takes a pending, unexpired request for completion, once: of concurrent callbacks, one gets `true`. */
  readonly claimAuthorizationRequest: (id: string, now: number) => Effect.Effect<boolean, StoreError>
  /** Ends a request, completed or failed (and drops the grant it parked). */
  readonly finishAuthorizationRequest: (
    id: string,
    outcome: {
      readonly status: "completed" | "failed"
      readonly error?: string
      /** The installation an install request made. */
      readonly installationId?: string
    }
  ) => Effect.Effect<void, StoreError>
  /** Parks a request being completed until the application confirms its user: the grant, sealed, and the code's hash. */
  readonly awaitConfirmation: (
    id: string,
    pending: { readonly grant: Redacted.Redacted<string>; readonly confirmationHash: string }
  ) => Effect.Effect<void, StoreError>
  /** Takes a request awaiting confirmation with this code's hash, once and before it expires, and gives its grant. */
  readonly claimConfirmation: (
    id: string,
    confirmationHash: string,
    now: number
  ) => Effect.Effect<Option.Option<Redacted.Redacted<string>>, StoreError>
}

/**
 * Device authorizations (RFC 8628): user requests completed on another
 * device, which the broker polls the provider for.
 *
 * @since 0.1.0
 * @category models
 */
export interface DeviceAuthorizationStore {
  /** Creates a pending request with its device authorization, in one transaction. */
  readonly createDeviceAuthorizationRequest: (
    input: AuthorizationRequestInput,
    device: {
      readonly deviceCode: Redacted.Redacted<string>
      readonly userCode: string
      readonly verificationUrl: string
      readonly intervalMs: number
      readonly nextPollAt: number
    }
  ) => Effect.Effect<DeviceAuthorizationRecord, StoreError>
  /** The device authorization of a request, if it is one. */
  readonly findDeviceAuthorization: (id: string) => Effect.Effect<Option.Option<DeviceAuthorizationRecord>, StoreError>
  /** The ids of the device authorizations still pending and open at `now`. */
  readonly listPendingDeviceAuthorizations: (now: number) => Effect.Effect<Array<string>, StoreError>
  /** Takes the next poll whose time has come, moving that time to `until`: of concurrent pollers, one gets `true`. */
  readonly claimDevicePoll: (id: string, now: number, until: number) => Effect.Effect<boolean, StoreError>
  /** Sets when a pending device authorization is polled next, and how often after that. */
  readonly scheduleDevicePoll: (
    id: string,
    next: { readonly intervalMs: number; readonly nextPollAt: number }
  ) => Effect.Effect<void, StoreError>
}

/**
 * The operations of the store.
 *
 * @since 0.1.0
 * @category models
 */
export interface StoreService
  extends ConnectorStore,
    ProjectStore,
    GrantStore,
    LeaseStore,
    IssuedTokenStore,
    AuthorizationRequestStore,
    DeviceAuthorizationStore {
  /** Runs `effect` in a transaction (nested ones become savepoints). */
  readonly transaction: <A, E, R>(
    effect: Effect.Effect<A, E, R>
  ) => Effect.Effect<A, StoreError | Exclude<E, { _tag: "SqlError" }>, R>
}

const make: Effect.Effect<StoreService, never, SqlClient.SqlClient | Cipher> = Effect.gen(function* () {
  const sql = yield* SqlClient.SqlClient
  const repository = { sql, sealer: makeSealer(yield* Cipher) }
  return {
    transaction: transaction(sql),
    ...makeConnectors(repository),
    ...makeProjects(repository),
    ...makeGrants(repository),
    ...makeTokenLeases(repository),
    ...makeIssuedTokens(repository),
    ...makeAuthorizationRequests(repository),
    ...makeDeviceAuthorizations(repository)
  }
})

/**
 * The broker's store.
 *
 * @since 0.1.0
 * @category tags
 */
export class Store extends Context.Tag("effect-connect/broker/Store")<Store, StoreService>() {
  /**
   * The store over the `SqlClient` in context, sealing with the `Cipher`, with
   * the `HotCache` its changes empty.
   */
  static readonly layer: Layer.Layer<Store | HotCache, never, SqlClient.SqlClient | Cipher> = Layer.effect(
    Store,
    Effect.zipWith(make, HotCache, (store, cache) => invalidating(traced(store), cache))
  ).pipe(Layer.provideMerge(HotCache.layer))
}
