/**
 * The broker's administration: what the admin API (`/v1/admin/…`) does, over
 * the `Store`. Connectors are created with the configuration file's rules
 * (its schemas, its checks, its private-key check) and removed after their
 * active tokens are revoked at the provider; links gain and lose
 * environments; projects are created and get new caller keys, of which the
 * broker keeps only the hash.
 *
 * Nothing it answers holds a secret, except the caller key it creates, once.
 *
 * @since 0.1.0
 */
import { randomBytes } from "node:crypto"
import { Clock, Context, Effect, Layer, Option, Redacted, Schema } from "effect"
import { type ConnectError, type FieldIssue, InvalidRequest } from "effect-connect/ConnectError"
import { isRecord } from "effect-connect/Json"
import type {
  ConnectorRemoved,
  ConnectorView,
  CreatedKey,
  EventList,
  EventView,
  GrantList,
  GrantView,
  InstallationRemoved,
  InstallationView,
  LinkChanged,
  ProjectBody,
  ProjectView,
  Revoked,
  TokenView
} from "./AdminApi.js"
import * as ConfigFile from "./ConfigFile.js"
import { type BrokerEvent, concerns, type EventFilter, Events, type EventsService } from "./Events.js"
import { isPathName, PATH_NAME_RULE } from "./internal/limits.js"
import { grantOwner } from "./internal/tokenKeys.js"
import * as Setup from "./Setup.js"
import {
  type Connector,
  type GrantPageQuery,
  type GrantSummary,
  type IssuedToken,
  type Project,
  Store,
  type StoreError,
  type StoreService
} from "./Store.js"
import { Tokens, type TokensService } from "./Tokens.js"

/**
 * What the admin API was asked about does not exist: a connector, a project,
 * or a link.
 *
 * @since 0.1.0
 * @category errors
 */
export class AdminNotFound extends Schema.TaggedError<AdminNotFound>()("AdminNotFound", {
  detail: Schema.String
}) {
  override get message(): string {
    return this.detail
  }
}

/**
 * What the admin API was asked to create exists already.
 *
 * @since 0.1.0
 * @category errors
 */
export class AdminConflict extends Schema.TaggedError<AdminConflict>()("AdminConflict", {
  detail: Schema.String
}) {
  override get message(): string {
    return this.detail
  }
}

/**
 * Any failure of an admin operation: the request's fault (`InvalidRequest`,
 * `AdminNotFound`, `AdminConflict`), or the broker's (`StoreError`, and the
 * errors of revoking tokens).
 *
 * @since 0.1.0
 * @category errors
 */
export type AdminError = InvalidRequest | AdminNotFound | AdminConflict | StoreError | ConnectError

/**
 * What the admin API does: connectors, their installations and links,
 * projects and their caller keys.
 *
 * @since 0.1.0
 * @category models
 */
export interface AdminService {
  /** Every connector, without secrets. */
  readonly listConnectors: Effect.Effect<ReadonlyArray<ConnectorView>, StoreError>
  /** One connector (by uid or id) with its links and installations. */
  readonly showConnector: (name: string) => Effect.Effect<ConnectorView, AdminNotFound | StoreError>
  /** Creates a connector from a declaration shaped like the configuration file's, its secrets written as themselves. */
  readonly createConnector: (body: unknown) => Effect.Effect<ConnectorView, InvalidRequest | AdminConflict | StoreError>
  /** Revokes the connector's active tokens at the provider, then deletes it with all its rows. */
  readonly removeConnector: (name: string) => Effect.Effect<ConnectorRemoved, AdminNotFound | StoreError | ConnectError>
  /** The installations of a connector, declared and installed. */
  readonly listInstallations: (
    name: string
  ) => Effect.Effect<ReadonlyArray<InstallationView>, AdminNotFound | StoreError>
  /** Revokes an installation's tokens and grants at the provider, then deletes it with its grants. */
  readonly removeInstallation: (
    name: string,
    installationId: string
  ) => Effect.Effect<InstallationRemoved, AdminNotFound | StoreError | ConnectError>
  /** A page of a connector's grants (their subject containing `query.search`), newest first, with why any is lost. */
  readonly listGrants: (name: string, query: GrantPageQuery) => Effect.Effect<GrantList, AdminNotFound | StoreError>
  /** Revokes a grant and the tokens issued from it; the next request of its subject needs a new authorization. */
  readonly revokeGrant: (
    name: string,
    grantId: string
  ) => Effect.Effect<Revoked, AdminNotFound | StoreError | ConnectError>
  /** A connector's active issued tokens not yet expired, oldest first, without their values. */
  readonly listTokens: (name: string) => Effect.Effect<ReadonlyArray<TokenView>, AdminNotFound | StoreError>
  /** Revokes one active issued token. */
  readonly revokeToken: (
    name: string,
    tokenId: string
  ) => Effect.Effect<Revoked, AdminNotFound | StoreError | ConnectError>
  /** Adds environments to the link of a connector and a project (creating it). */
  readonly attach: (
    name: string,
    projectId: string,
    environments: ReadonlyArray<string>
  ) => Effect.Effect<LinkChanged, AdminNotFound | StoreError>
  /** Takes environments (all when none are named) out of a link; a link left without any is removed. */
  readonly detach: (
    name: string,
    projectId: string,
    environments: ReadonlyArray<string> | undefined
  ) => Effect.Effect<LinkChanged, AdminNotFound | StoreError>
  /** Every project. */
  readonly listProjects: Effect.Effect<ReadonlyArray<ProjectView>, StoreError>
  /** Creates a project. */
  readonly createProject: (body: ProjectBody) => Effect.Effect<ProjectView, AdminConflict | StoreError>
  /** A new random caller key for a project and environment, answered once; only its hash is stored. */
  readonly createKey: (projectId: string, environment: string) => Effect.Effect<CreatedKey, AdminNotFound | StoreError>
  /** A page of the event history, and the cursor of the next (see `EVENT_SETTLE_MS` for following). */
  readonly listEvents: (filter: EventFilter) => Effect.Effect<EventList, StoreError>
}

/** The prefix of the caller keys the admin API creates. */
const KEY_PREFIX = "ck_"

const invalid = (issues: ReadonlyArray<FieldIssue>) => new InvalidRequest({ status: 400, issues })

// The declaration is checked as the only connector of a configuration file:
// its paths and messages are said without the file's `connectors[0]`.
const FILE_PREFIX = "connectors[0]"
const unprefix = (text: string) =>
  text.startsWith(`${FILE_PREFIX}.`) ? text.slice(FILE_PREFIX.length + 1) : text === FILE_PREFIX ? "" : text
const fromFileIssues = (issues: ReadonlyArray<FieldIssue>): ReadonlyArray<FieldIssue> =>
  issues.map((issue) => ({
    path: unprefix(issue.path),
    message: issue.message.replaceAll(`${FILE_PREFIX}.`, "")
  }))

/** A connector as the admin API shows it: no client secret, no private key. */
const viewOf = (connector: Connector): ConnectorView => {
  const settings = connector.settings
  return {
    id: connector.id,
    uid: connector.uid,
    name: connector.name,
    type: connector.type,
    service: connector.service,
    ...(settings.provider === undefined ? {} : { provider: settings.provider }),
    clientId: connector.clientId,
    tokenEndpoint: settings.tokenEndpoint,
    ...(settings.revocationEndpoint === undefined ? {} : { revocationEndpoint: settings.revocationEndpoint }),
    ...(settings.authorizationEndpoint === undefined ? {} : { authorizationEndpoint: settings.authorizationEndpoint }),
    ...(settings.introspectionEndpoint === undefined ? {} : { introspectionEndpoint: settings.introspectionEndpoint }),
    tokenEndpointAuthMethod: settings.tokenEndpointAuthMethod,
    defaultScopes: settings.defaultScopes,
    defaultTokenLifetimeSeconds: settings.defaultTokenLifetimeSeconds,
    hasPrivateKey: connector.privateKey !== undefined,
    ...(settings.privateKeyId === undefined ? {} : { privateKeyId: settings.privateKeyId }),
    ...(settings.signingAlgorithm === undefined ? {} : { signingAlgorithm: settings.signingAlgorithm }),
    installationsRequired: settings.installationsRequired,
    crossInstallation: settings.crossInstallation,
    data: settings.data,
    createdAt: connector.createdAt,
    updatedAt: connector.updatedAt
  }
}

const connectorNamed = (store: StoreService, name: string): Effect.Effect<Connector, AdminNotFound | StoreError> =>
  Effect.flatMap(store.findConnector(name), (found) =>
    Option.match(found, {
      onNone: () => Effect.fail(new AdminNotFound({ detail: `no connector "${name}": check its uid or id` })),
      onSome: Effect.succeed
    })
  )

const projectNamed = (store: StoreService, id: string): Effect.Effect<Project, AdminNotFound | StoreError> =>
  Effect.flatMap(store.findProject(id), (found) =>
    Option.match(found, {
      onNone: () => Effect.fail(new AdminNotFound({ detail: `no project "${id}": create it first` })),
      onSome: Effect.succeed
    })
  )

const installationViews = (store: StoreService, connector: Connector) =>
  Effect.map(store.listInstallations(connector.id), (installations) =>
    installations.map(
      (installation): InstallationView => ({
        id: installation.id,
        ...(installation.tenantId === undefined ? {} : { tenantId: installation.tenantId }),
        default: installation.isDefault,
        source: installation.source
      })
    )
  )

/** One connector with its links and installations. */
const detailed = (store: StoreService, connector: Connector) =>
  Effect.gen(function* () {
    const links = yield* store.listConnectorLinks(connector.id)
    return {
      ...viewOf(connector),
      links: links.map((link) => ({ project: link.projectId, environments: link.environments })),
      installations: yield* installationViews(store, connector)
    } satisfies ConnectorView
  })

/**
 * Removes an installation: its tokens and grants are revoked at the provider,
 * then it is deleted with its grants.
 */
const removeInstallation = (
  store: StoreService,
  tokens: TokensService,
  name: string,
  installationId: string
): Effect.Effect<InstallationRemoved, AdminNotFound | StoreError | ConnectError> =>
  Effect.gen(function* () {
    const connector = yield* connectorNamed(store, name)
    const removed = yield* tokens.removeInstallation(connector, installationId)
    if (Option.isNone(removed)) {
      return yield* new AdminNotFound({
        detail: `connector "${connector.uid}" has no installation "${installationId}"`
      })
    }
    yield* Effect.logInfo(`admin: removed installation ${installationId} of ${connector.uid}`)
    return removed.value
  })

/** The body as a connector declaration, checked as the configuration file's only connector. */
const declarationOf = (body: unknown) =>
  Effect.gen(function* () {
    if (!isRecord(body)) {
      return yield* invalid([{ path: "", message: "Expected a JSON object: a connector declaration" }])
    }
    // `{ "env": NAME }` would read the broker's own environment: only the file may do that.
    const references = (["clientSecret", "privateKey"] as const).filter((key) => isRecord(body[key]))
    if (references.length > 0) {
      return yield* invalid(
        references.map((key) => ({
          path: key,
          message:
            'Expected the secret itself, a non-empty string: { "env": "NAME" } is read only from the configuration file, not through the admin API'
        }))
      )
    }
    const setup = yield* ConfigFile.decode({ connectors: [body] }).pipe(
      Effect.mapError((error) => invalid(fromFileIssues(error.issues)))
    )
    const declared = setup.connectors[0]
    if (declared === undefined) return yield* invalid([{ path: "", message: "Expected a connector declaration" }])
    if (!isPathName(declared.uid)) {
      return yield* invalid([{ path: "uid", message: PATH_NAME_RULE }])
    }
    return declared
  })

/**
 * Creates a connector from a declaration shaped like the configuration
 * file's, with its secrets written as themselves.
 */
const createConnector = (
  store: StoreService,
  events: EventsService,
  body: unknown
): Effect.Effect<ConnectorView, InvalidRequest | AdminConflict | StoreError, never> =>
  Effect.gen(function* () {
    const declared = yield* declarationOf(body)
    const existing = yield* store.findConnector(declared.uid)
    if (Option.isSome(existing)) {
      return yield* new AdminConflict({
        detail: `connector "${declared.uid}" exists already: remove it first, or choose another uid`
      })
    }
    // The checks and the saving of the configuration file, private key included.
    yield* Setup.apply({ connectors: [declared], projects: [], links: [] }, "admin").pipe(
      Effect.provideService(Store, store),
      Effect.provideService(Events, events),
      Effect.catchTag("ConfigFileError", (error) => Effect.fail(invalid(fromFileIssues(error.issues))))
    )
    const saved = yield* connectorNamed(store, declared.uid).pipe(Effect.orDie)
    yield* Effect.logInfo(`admin: created connector ${saved.uid} (${saved.id})`)
    return yield* detailed(store, saved)
  })

/** Revokes the connector's active tokens, of every project, then deletes it with all its rows. */
const removeConnector = (
  store: StoreService,
  tokens: TokensService,
  events: EventsService,
  name: string
): Effect.Effect<ConnectorRemoved, AdminNotFound | StoreError | ConnectError, never> =>
  Effect.gen(function* () {
    const connector = yield* connectorNamed(store, name)
    const { grantsFound, ...revoked } = yield* tokens.revokeConnector(connector)
    yield* store.removeConnector(connector.id)
    yield* events.record({
      kind: "connector.removed",
      connector: connector.uid,
      data: { source: "admin", tokensRevoked: revoked.tokensFound, grantsRemoved: grantsFound }
    })
    yield* Effect.logInfo(`admin: removed connector ${connector.uid} (${connector.id})`)
    return { removed: connector.uid, tokens: { ...revoked, deleted: revoked.tokensFound }, grantsFound }
  })

/** The user's id in a subject as the broker keys it (`user:[issuer, id]`), for a user's grant. */
const userOf = (subject: string): string | undefined => {
  if (!subject.startsWith("user:")) return undefined
  try {
    const parsed: unknown = JSON.parse(subject.slice("user:".length))
    return Array.isArray(parsed) && typeof parsed[1] === "string" ? parsed[1] : undefined
  } catch {
    return undefined
  }
}

/** A grant as the admin API shows it. */
const grantViewOf = (grant: GrantSummary): GrantView => {
  const owner = grantOwner(grant.subject)
  const user = userOf(owner.subject)
  return {
    id: grant.id,
    ...(grant.installationId === "" ? {} : { installationId: grant.installationId }),
    ...(owner.projectId === undefined ? {} : { project: owner.projectId }),
    subject: owner.subject,
    ...(user === undefined ? {} : { user }),
    status: grant.status,
    ...(grant.lostReason === undefined ? {} : { lostReason: grant.lostReason }),
    ...(grant.scope === undefined ? {} : { scope: grant.scope }),
    hasRefreshToken: grant.hasRefreshToken,
    ...(grant.refreshExpiresAt === undefined ? {} : { refreshExpiresAt: grant.refreshExpiresAt }),
    ...(grant.accessExpiresAt === undefined ? {} : { accessExpiresAt: grant.accessExpiresAt }),
    createdAt: grant.createdAt,
    updatedAt: grant.updatedAt
  }
}

/** An issued token as the admin API shows it: never its value. */
const tokenViewOf = (token: IssuedToken): TokenView => ({
  id: token.id,
  project: token.projectId,
  environment: token.environment,
  subject: token.subject,
  ...(token.installationId === "" ? {} : { installationId: token.installationId }),
  ...(token.grantId === undefined ? {} : { grantId: token.grantId }),
  expiresAt: token.expiresAt,
  createdAt: token.createdAt
})

/** Revokes one grant or token of a connector through `revoke`; not found when the connector has none of that id. */
const revokeOne = (
  store: StoreService,
  name: string,
  what: "grant" | "token",
  id: string,
  revoke: (connector: Connector) => Effect.Effect<Option.Option<Omit<Revoked, "revoked">>, ConnectError>
): Effect.Effect<Revoked, AdminNotFound | StoreError | ConnectError> =>
  Effect.gen(function* () {
    const connector = yield* connectorNamed(store, name)
    const done = yield* revoke(connector)
    if (Option.isNone(done)) {
      return yield* new AdminNotFound({
        detail: `connector "${connector.uid}" has no ${what === "grant" ? "grant" : "active token"} "${id}"`
      })
    }
    yield* Effect.logInfo(`admin: revoked ${what} ${id} of ${connector.uid}`)
    return { revoked: id, ...done.value }
  })

/** Adds environments to the link of a connector and a project (creating it). */
const attach = (
  store: StoreService,
  name: string,
  projectId: string,
  environments: ReadonlyArray<string>
): Effect.Effect<LinkChanged, AdminNotFound | StoreError> =>
  Effect.gen(function* () {
    const connector = yield* connectorNamed(store, name)
    const project = yield* projectNamed(store, projectId)
    const existing = yield* store.findLink(connector.id, project.id)
    const union = [...new Set([...Option.getOrElse(existing, () => []), ...environments])].sort()
    yield* store.putLink(connector.id, project.id, union)
    yield* Effect.logInfo(`admin: linked ${connector.uid} to ${project.id} for ${union.join(", ")}`)
    return { connector: connector.uid, project: project.id, environments: union }
  })

/** Takes environments out of a link, or the whole link; a link left without any is removed. */
const detach = (
  store: StoreService,
  name: string,
  projectId: string,
  environments: ReadonlyArray<string> | undefined
): Effect.Effect<LinkChanged, AdminNotFound | StoreError> =>
  Effect.gen(function* () {
    const connector = yield* connectorNamed(store, name)
    const project = yield* projectNamed(store, projectId)
    const existing = yield* store.findLink(connector.id, project.id)
    if (Option.isNone(existing)) {
      return yield* new AdminNotFound({
        detail: `connector "${connector.uid}" is not linked to project "${project.id}"`
      })
    }
    const left =
      environments === undefined ? [] : existing.value.filter((environment) => !environments.includes(environment))
    if (left.length === 0) yield* store.removeLink(connector.id, project.id)
    else yield* store.putLink(connector.id, project.id, left)
    yield* Effect.logInfo(
      left.length === 0
        ? `admin: unlinked ${connector.uid} from ${project.id}`
        : `admin: linked ${connector.uid} to ${project.id} for ${left.join(", ")}`
    )
    return { connector: connector.uid, project: project.id, environments: [...left].sort() }
  })

const createProject = (
  store: StoreService,
  body: ProjectBody
): Effect.Effect<ProjectView, AdminConflict | StoreError> =>
  Effect.gen(function* () {
    if (Option.isSome(yield* store.findProject(body.id))) {
      return yield* new AdminConflict({ detail: `project "${body.id}" exists already` })
    }
    yield* store.putProject({
      id: body.id,
      name: body.name ?? body.id,
      returnUrls: body.returnUrls ?? [],
      confirmUsers: body.confirmUsers
    })
    yield* Effect.logInfo(`admin: created project ${body.id}`)
    return yield* projectNamed(store, body.id).pipe(Effect.orDie)
  })

/** A new random caller key for a project and environment; only its hash is stored. */
const createKey = (
  store: StoreService,
  projectId: string,
  environment: string
): Effect.Effect<CreatedKey, AdminNotFound | StoreError> =>
  Effect.gen(function* () {
    const project = yield* projectNamed(store, projectId)
    const key = Redacted.make(`${KEY_PREFIX}${randomBytes(32).toString("base64url")}`)
    const createdAt = yield* Clock.currentTimeMillis
    yield* store.putProjectKey(project.id, environment, key)
    yield* Effect.logInfo(`admin: created a caller key for ${project.id} (${environment})`)
    return { key, project: project.id, environment, createdAt }
  })

/**
 * How long a follower waits for events to settle on a database shared by
 * several brokers (Postgres): an event's `seq` is taken when its batch is
 * inserted, but batches of other brokers may commit out of that order. An
 * event is handed to a follower (`after`) only once every event written
 * before it has had this long to commit: the page stops before the first
 * event that occurred less than this long ago. It covers a batch's wait in
 * its queue, its transaction and the brokers' clock skew.
 *
 * @since 0.1.0
 * @category constants
 */
export const EVENT_SETTLE_MS = 5_000

/** The view of an event: its time in milliseconds and as ISO 8601. */
const eventViewOf = (event: BrokerEvent): EventView => ({
  seq: event.seq,
  id: event.id,
  kind: event.kind,
  occurredAt: event.occurredAt,
  time: new Date(event.occurredAt).toISOString(),
  ...concerns(event),
  data: event.data
})

/**
 * A page of events. Following (`afterSeq`) on a shared database stops before
 * the first event not yet settled (see {@link EVENT_SETTLE_MS}), whatever the
 * filter, so that no event a follower has not seen can commit behind its
 * cursor.
 */
const listEvents = (store: StoreService, events: EventsService, filter: EventFilter) =>
  Effect.gen(function* () {
    const following = filter.afterSeq !== undefined
    let page = filter
    if (following && !store.singleProcess) {
      const settled = (yield* Clock.currentTimeMillis) - EVENT_SETTLE_MS
      const unsettled = yield* events.list({ afterSeq: filter.afterSeq, since: settled, limit: 1 })
      const stop = unsettled[0]?.seq
      if (stop !== undefined) page = { ...filter, beforeSeq: stop }
    }
    const found = yield* events.list(page)
    const last = found.at(-1)?.seq
    const next = following
      ? String(last ?? filter.afterSeq)
      : found.length === filter.limit && last !== undefined
        ? String(last)
        : undefined
    return { events: found.map(eventViewOf), ...(next === undefined ? {} : { next }) }
  })

const make = Effect.gen(function* () {
  const store = yield* Store
  const tokens = yield* Tokens
  const events = yield* Events
  return {
    listConnectors: Effect.map(store.listConnectors, (connectors) => connectors.map(viewOf)),
    showConnector: (name) => Effect.flatMap(connectorNamed(store, name), (connector) => detailed(store, connector)),
    createConnector: (body) => createConnector(store, events, body),
    removeConnector: (name) => removeConnector(store, tokens, events, name),
    listInstallations: (name) =>
      Effect.flatMap(connectorNamed(store, name), (connector) => installationViews(store, connector)),
    removeInstallation: (name, installationId) => removeInstallation(store, tokens, name, installationId),
    listGrants: (name, query) =>
      Effect.flatMap(connectorNamed(store, name), (connector) =>
        Effect.map(store.listGrantPage(connector.id, query), (page) => ({
          grants: page.grants.map(grantViewOf),
          total: page.total,
          offset: query.offset,
          limit: query.limit
        }))
      ),
    revokeGrant: (name, grantId) =>
      revokeOne(store, name, "grant", grantId, (connector) => tokens.revokeGrant(connector, grantId)),
    listTokens: (name) =>
      Effect.gen(function* () {
        const connector = yield* connectorNamed(store, name)
        const now = yield* Clock.currentTimeMillis
        // Expired tokens stay active in the store until housekeeping prunes them: they are not worth showing.
        const found = yield* store.listActiveTokens({ connectorId: connector.id })
        return found.filter((token) => token.expiresAt > now).map(tokenViewOf)
      }),
    revokeToken: (name, tokenId) =>
      revokeOne(store, name, "token", tokenId, (connector) => tokens.revokeToken(connector, tokenId)),
    attach: (name, projectId, environments) => attach(store, name, projectId, environments),
    detach: (name, projectId, environments) => detach(store, name, projectId, environments),
    listProjects: store.listProjects,
    createProject: (body) => createProject(store, body),
    createKey: (projectId, environment) => createKey(store, projectId, environment),
    listEvents: (filter) => listEvents(store, events, filter)
  } satisfies AdminService
})

/**
 * The admin service.
 *
 * @since 0.1.0
 * @category tags
 */
export class Admin extends Context.Tag("effect-connect/broker/Admin")<Admin, AdminService>() {
  /** Over the `Store`, revoking through `Tokens`, recording `Events`. */
  static readonly layer: Layer.Layer<Admin, never, Store | Tokens | Events> = Layer.effect(Admin, make)
}
