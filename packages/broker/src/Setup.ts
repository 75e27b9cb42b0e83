/**
 * Applies a configuration file's declarations to the store, idempotently:
 * connectors (with their installations), projects (with their caller keys and
 * webhooks) and links are created or updated to match. Applying the same file twice changes
 * nothing; keys and links made elsewhere are kept.
 *
 * @since 0.1.0
 */
import { Effect, Option, Redacted } from "effect"
import { parsePrivateKey } from "./Assertion.js"
import { type BrokerSetup, ConfigFileError } from "./ConfigFile.js"
import { Events } from "./Events.js"
import { declaredWebhookId } from "./internal/webhooks/service.js"
import { type Connector, Store, type StoreError } from "./Store.js"
import { Webhooks } from "./Webhooks.js"

type DeclaredConnector = BrokerSetup["connectors"][number]

/** Signing keys are checked now, not on the first jwt-bearer request. */
const keyIssues = (
  connectors: BrokerSetup["connectors"]
): Effect.Effect<ReadonlyArray<{ readonly path: string; readonly message: string }>> =>
  Effect.gen(function* () {
    const issues: Array<{ readonly path: string; readonly message: string }> = []
    for (const [index, connector] of connectors.entries()) {
      const path = `connectors[${index}]`
      if (
        connector.appTokens !== undefined &&
        (connector.privateKey === undefined || connector.signingAlgorithm !== "RS256")
      ) {
        issues.push({
          path: `${path}.appTokens`,
          message:
            'a GitHub App signs its JWT with RS256: give privateKey (the app\'s PEM) and signingAlgorithm "RS256"'
        })
      }
      if ((connector.privateKey === undefined) !== (connector.signingAlgorithm === undefined)) {
        issues.push({ path: `${path}.signingAlgorithm`, message: "privateKey and signingAlgorithm go together" })
      } else if (connector.privateKey !== undefined && connector.signingAlgorithm !== undefined) {
        const parsed = yield* Effect.either(parsePrivateKey(connector.privateKey, connector.signingAlgorithm))
        if (parsed._tag === "Left") issues.push({ path: `${path}.privateKey`, message: parsed.left.message })
      }
    }
    return issues
  })

/** How the installations of a declared connector are reached, as the store keeps it. */
const installSettingsOf = (connector: DeclaredConnector) => ({
  ...(connector.installations.authorizationEndpoint === undefined
    ? {}
    : { authorizationEndpoint: connector.installations.authorizationEndpoint }),
  ...(connector.installations.authorizationParams === undefined
    ? {}
    : { authorizationParams: connector.installations.authorizationParams }),
  ...(connector.installations.tenantIdFrom === undefined ? {} : { tenantIdFrom: connector.installations.tenantIdFrom }),
  ...(connector.installations.tokenEndpoint === undefined
    ? {}
    : { tokenEndpoint: connector.installations.tokenEndpoint })
})

/** A declared connector's settings, as the store keeps them. */
const settingsOf = (connector: DeclaredConnector) => ({
  tokenEndpoint: connector.tokenEndpoint,
  ...(connector.revocationEndpoint === undefined ? {} : { revocationEndpoint: connector.revocationEndpoint }),
  ...(connector.authorizationEndpoint === undefined ? {} : { authorizationEndpoint: connector.authorizationEndpoint }),
  ...(connector.deviceAuthorizationEndpoint === undefined
    ? {}
    : { deviceAuthorizationEndpoint: connector.deviceAuthorizationEndpoint }),
  ...(connector.refreshEndpoint === undefined ? {} : { refreshEndpoint: connector.refreshEndpoint }),
  ...(connector.authorizationParams === undefined ? {} : { authorizationParams: connector.authorizationParams }),
  ...(connector.tokenParams === undefined ? {} : { tokenParams: connector.tokenParams }),
  ...(connector.scopeSeparator === undefined ? {} : { scopeSeparator: connector.scopeSeparator }),
  ...(connector.revocationRequest === undefined ? {} : { revocationRequest: connector.revocationRequest }),
  ...(connector.deviceScopeParameter === undefined ? {} : { deviceScopeParameter: connector.deviceScopeParameter }),
  ...(connector.introspectionEndpoint === undefined ? {} : { introspectionEndpoint: connector.introspectionEndpoint }),
  tokenEndpointAuthMethod: connector.tokenEndpointAuthMethod,
  defaultScopes: connector.defaultScopes,
  defaultTokenLifetimeSeconds: connector.defaultTokenLifetimeSeconds,
  ...(connector.providerTimeoutMs === undefined ? {} : { providerTimeoutMs: connector.providerTimeoutMs }),
  ...(connector.refreshTokenGracePeriodSeconds === undefined
    ? {}
    : { refreshTokenGracePeriodSeconds: connector.refreshTokenGracePeriodSeconds }),
  ...(connector.privateKeyId === undefined ? {} : { privateKeyId: connector.privateKeyId }),
  ...(connector.signingAlgorithm === undefined ? {} : { signingAlgorithm: connector.signingAlgorithm }),
  installationsRequired: connector.installations.required,
  crossInstallation: connector.installations.crossInstallation,
  install: installSettingsOf(connector),
  data: connector.data ?? {},
  ...(connector.provider === undefined ? {} : { provider: connector.provider }),
  ...(connector.userTokenMember === undefined ? {} : { userTokenMember: connector.userTokenMember }),
  ...(connector.appTokens === undefined ? {} : { appTokens: connector.appTokens })
})

/**
 * Where a setup comes from, as its events say: the configuration file, or
 * the admin API (which creates connectors with the file's rules).
 *
 * @since 0.1.0
 * @category models
 */
export type SetupSource = "config" | "admin"

/** The fields of a stored connector that a declaration sets, each comparable as text (secrets compared, never shown). */
const fieldsOf = (connector: Connector): Record<string, string> => ({
  name: connector.name,
  type: connector.type,
  service: connector.service,
  clientId: connector.clientId,
  clientSecret: Redacted.value(connector.clientSecret),
  privateKey: connector.privateKey === undefined ? "" : Redacted.value(connector.privateKey),
  settings: JSON.stringify(connector.settings)
})

/** The names of the fields that differ between two versions of a connector. */
const changedFields = (before: Connector, after: Connector) => {
  const old = fieldsOf(before)
  const now = fieldsOf(after)
  return Object.keys(now).filter((key) => old[key] !== now[key])
}

/** Records what saving a connector changed: the connector (when it did change), its installations added and removed. */
const recordChanges = (
  source: SetupSource,
  before: Option.Option<Connector>,
  after: Connector,
  installations: { readonly before: ReadonlyArray<string>; readonly after: ReadonlyArray<string> }
) =>
  Effect.gen(function* () {
    const events = yield* Events
    const connector = after.uid
    const changed = Option.map(before, (previous) => changedFields(previous, after))
    if (Option.isNone(changed)) {
      yield* events.record({ kind: "connector.created", connector, data: { source } })
    } else if (changed.value.length > 0) {
      yield* events.record({ kind: "connector.updated", connector, data: { source, fields: changed.value.join(",") } })
    }
    for (const id of installations.after.filter((id) => !installations.before.includes(id))) {
      yield* events.record({ kind: "installation.added", connector, installationId: id, data: { source } })
    }
    for (const id of installations.before.filter((id) => !installations.after.includes(id))) {
      yield* events.record({ kind: "installation.removed", connector, installationId: id, data: { source } })
    }
  })

/** The ids of a connector's installations, as stored now. */
const installationIds = (connectorId: string) =>
  Effect.flatMap(Store, (store) =>
    Effect.map(store.listInstallations(connectorId), (installations) => installations.map((i) => i.id))
  )

/** Saves a declared connector and its installations, recording what changed; succeeds with its id. */
const putConnector = (
  connector: DeclaredConnector,
  source: SetupSource
): Effect.Effect<string, StoreError, Store | Events> =>
  Effect.gen(function* () {
    const store = yield* Store
    const before = yield* store.findConnector(connector.uid)
    const installedBefore = Option.isSome(before) ? yield* installationIds(before.value.id) : []
    const saved = yield* store.putConnector({
      uid: connector.uid,
      name: connector.name,
      type: connector.type,
      service: connector.service,
      clientId: connector.clientId,
      clientSecret: connector.clientSecret,
      privateKey: connector.privateKey,
      settings: settingsOf(connector)
    })
    yield* store.setInstallations(
      saved.id,
      connector.installations.items.map((item) => ({
        id: item.id,
        tenantId: item.tenantId,
        isDefault: item.default === true,
        tokenEndpoint: item.tokenEndpoint
      }))
    )
    const installedAfter = yield* installationIds(saved.id)
    yield* recordChanges(source, before, saved, { before: installedBefore, after: installedAfter })
    return saved.id
  })

/**
 * Applies the setup; succeeds with how many of each were applied. Connectors
 * created or changed, and installations added or removed, are recorded as
 * events of `source` (the configuration file by default).
 *
 * @since 0.1.0
 * @category operations
 */
export const apply = (
  setup: BrokerSetup,
  source: SetupSource = "config"
): Effect.Effect<
  { readonly connectors: number; readonly projects: number; readonly links: number },
  StoreError | ConfigFileError,
  Store | Events
> =>
  Effect.gen(function* () {
    const store = yield* Store
    const issues = yield* keyIssues(setup.connectors)
    if (issues.length > 0) return yield* new ConfigFileError({ issues })
    const ids = new Map<string, string>()
    for (const connector of setup.connectors) ids.set(connector.uid, yield* putConnector(connector, source))
    for (const project of setup.projects) {
      yield* store.putProject({
        id: project.id,
        name: project.name ?? project.id,
        returnUrls: project.returnUrls ?? [],
        confirmUsers: project.confirmUsers
      })
      for (const key of project.keys) yield* store.putProjectKey(project.id, key.environment, key.secret)
    }
    for (const link of setup.links) {
      const connectorId = ids.get(link.connector)
      // The file was cross-checked: every link names a declared connector.
      if (connectorId !== undefined) yield* store.putLink(connectorId, link.project, link.environments)
    }
    return { connectors: setup.connectors.length, projects: setup.projects.length, links: setup.links.length }
  })

/**
 * Applies the webhooks the setup declares (created, or updated and enabled
 * again); succeeds with how many. Webhooks made through the admin API are
 * kept.
 *
 * @since 0.1.0
 * @category operations
 */
export const applyWebhooks = (setup: BrokerSetup): Effect.Effect<number, StoreError | ConfigFileError, Webhooks> =>
  Effect.gen(function* () {
    const webhooks = yield* Webhooks
    let applied = 0
    for (const [p, project] of setup.projects.entries()) {
      for (const [w, webhook] of (project.webhooks ?? []).entries()) {
        const declared = {
          id: webhook.id ?? declaredWebhookId(project.id, webhook.url),
          url: webhook.url,
          secret: webhook.secret,
          events: webhook.events ?? []
        }
        yield* webhooks.put(project.id, declared).pipe(
          Effect.catchTag("InvalidRequest", (error) =>
            Effect.fail(
              new ConfigFileError({
                issues: error.issues.map((issue) => ({ ...issue, path: `projects[${p}].webhooks[${w}].${issue.path}` }))
              })
            )
          )
        )
        applied++
      }
    }
    return applied
  })
