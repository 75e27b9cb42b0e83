/**
 * The wire shapes of the broker's admin API (`/v1/admin/…`): the bodies it
 * takes and the answers it gives. The broker encodes its answers with these
 * schemas and the `connect` command line decodes them; a view never holds a
 * secret (a connector says `hasPrivateKey`, not its key, and nothing of its
 * client secret).
 *
 * @since 0.1.0
 */
import { Schema } from "effect"
import { route } from "effect-connect/Protocol"
import { RevocationSummary } from "effect-connect/Revocation"
import { HttpUrl } from "./ConfigFile.js"
import { EventData, EventKind } from "./internal/events/models.js"
import { isPathName, PATH_NAME_RULE } from "./internal/limits.js"
import { EventPattern, WebhookSecret } from "./internal/webhooks/policy.js"

/**
 * A name that travels in a path: 1 to 256 characters, no control characters.
 *
 * @since 0.1.0
 * @category schemas
 */
export const PathName = Schema.String.pipe(Schema.filter((value) => isPathName(value) || PATH_NAME_RULE)).annotations({
  identifier: "PathName"
})

const Environments = Schema.Array(PathName).pipe(
  Schema.filter((environments) => environments.length > 0 || "Expected at least one environment")
)

/**
 * A link of a connector: a project, and the environments it may use the
 * connector from.
 *
 * @since 0.1.0
 * @category schemas
 */
export const LinkView = Schema.Struct({
  project: Schema.String,
  environments: Schema.Array(Schema.String)
}).annotations({ identifier: "LinkView" })

/**
 * @since 0.1.0
 * @category models
 */
export interface LinkView extends Schema.Schema.Type<typeof LinkView> {}

/**
 * An installation of a connector, as the admin API shows it; `source` says
 * where it came from (`config` for the configuration file).
 *
 * @since 0.1.0
 * @category schemas
 */
export const InstallationView = Schema.Struct({
  id: Schema.String,
  tenantId: Schema.optional(Schema.String),
  default: Schema.Boolean,
  source: Schema.String
}).annotations({ identifier: "InstallationView" })

/**
 * @since 0.1.0
 * @category models
 */
export interface InstallationView extends Schema.Schema.Type<typeof InstallationView> {}

/**
 * The answer of `GET /v1/admin/connectors/{connector}/installations`.
 *
 * @since 0.1.0
 * @category schemas
 */
export const InstallationList = Schema.Struct({ installations: Schema.Array(InstallationView) }).annotations({
  identifier: "InstallationList"
})

/**
 * @since 0.1.0
 * @category models
 */
export interface InstallationList extends Schema.Schema.Type<typeof InstallationList> {}

/**
 * The answer of `DELETE /v1/admin/connectors/{connector}/installations/{id}`:
 * the tokens and grants found within the installation, and how the provider
 * answered their revocation (each distinct token once).
 *
 * @since 0.1.0
 * @category schemas
 */
export const InstallationRemoved = Schema.Struct({
  installationId: Schema.String,
  tokensFound: Schema.Number,
  grantsFound: Schema.Number,
  providerRevoked: Schema.Number,
  providerSkipped: Schema.Number,
  providerFailed: Schema.Number
}).annotations({ identifier: "InstallationRemoved" })

/**
 * @since 0.1.0
 * @category models
 */
export interface InstallationRemoved extends Schema.Schema.Type<typeof InstallationRemoved> {}

/**
 * A connector without its secrets. `links` and `installations` are given when
 * one connector is shown, not in the list.
 *
 * @since 0.1.0
 * @category schemas
 */
export const ConnectorView = Schema.Struct({
  id: Schema.String,
  uid: Schema.String,
  name: Schema.String,
  type: Schema.String,
  service: Schema.String,
  /** The provider preset the connector was declared with. */
  provider: Schema.optional(Schema.String),
  clientId: Schema.String,
  tokenEndpoint: Schema.String,
  revocationEndpoint: Schema.optional(Schema.String),
  authorizationEndpoint: Schema.optional(Schema.String),
  introspectionEndpoint: Schema.optional(Schema.String),
  tokenEndpointAuthMethod: Schema.String,
  defaultScopes: Schema.Struct({
    app: Schema.optional(Schema.Array(Schema.String)),
    user: Schema.optional(Schema.Array(Schema.String))
  }),
  defaultTokenLifetimeSeconds: Schema.Number,
  /** Whether the connector holds a private key for JWT bearer assertions (the key itself is never shown). */
  hasPrivateKey: Schema.Boolean,
  privateKeyId: Schema.optional(Schema.String),
  signingAlgorithm: Schema.optional(Schema.String),
  /** Whether a token request needs an installation. */
  installationsRequired: Schema.Boolean,
  /** Whether cross-installation tokens (`installationId: "*"`) are allowed. */
  crossInstallation: Schema.Boolean,
  data: Schema.Record({ key: Schema.String, value: Schema.Unknown }),
  createdAt: Schema.Number,
  updatedAt: Schema.Number,
  links: Schema.optional(Schema.Array(LinkView)),
  installations: Schema.optional(Schema.Array(InstallationView))
}).annotations({ identifier: "ConnectorView" })

/**
 * @since 0.1.0
 * @category models
 */
export interface ConnectorView extends Schema.Schema.Type<typeof ConnectorView> {}

/**
 * The answer of `GET /v1/admin/connectors`.
 *
 * @since 0.1.0
 * @category schemas
 */
export const ConnectorList = Schema.Struct({ connectors: Schema.Array(ConnectorView) })

/**
 * The answer of `DELETE /v1/admin/connectors/{connector}`: the uid removed and
 * what became of its tokens.
 *
 * @since 0.1.0
 * @category schemas
 */
export const ConnectorRemoved = Schema.Struct({
  removed: Schema.String,
  /** The issued tokens revoked; `providerRevoked` also counts the tokens grants held (refresh tokens). */
  tokens: RevocationSummary,
  /** The grants (users' and installations') deleted with the connector, their tokens revoked first. */
  grantsFound: Schema.Number
})

/**
 * @since 0.1.0
 * @category models
 */
export interface ConnectorRemoved extends Schema.Schema.Type<typeof ConnectorRemoved> {}

/**
 * The body of `PUT /v1/admin/connectors/{connector}/links/{project}`: the
 * environments to add to the link.
 *
 * @since 0.1.0
 * @category schemas
 */
export const AttachBody = Schema.Struct({ environments: Environments }).annotations({ identifier: "AttachBody" })

/**
 * The body of `DELETE /v1/admin/connectors/{connector}/links/{project}`: the
 * environments to take out of the link; without any, the whole link.
 *
 * @since 0.1.0
 * @category schemas
 */
export const DetachBody = Schema.Struct({ environments: Schema.optional(Environments) }).annotations({
  identifier: "DetachBody"
})

/**
 * A link after a change: `environments` is empty when the link was removed.
 *
 * @since 0.1.0
 * @category schemas
 */
export const LinkChanged = Schema.Struct({ connector: Schema.String, ...LinkView.fields }).annotations({
  identifier: "LinkChanged"
})

/**
 * @since 0.1.0
 * @category models
 */
export interface LinkChanged extends Schema.Schema.Type<typeof LinkChanged> {}

/**
 * A project, with how many caller keys it has in each environment.
 *
 * @since 0.1.0
 * @category schemas
 */
export const ProjectView = Schema.Struct({
  id: Schema.String,
  name: Schema.String,
  returnUrls: Schema.Array(Schema.String),
  /** Whether users' grants wait for the application to confirm the user. */
  confirmUsers: Schema.optionalWith(Schema.Boolean, { default: () => false }),
  keys: Schema.Array(Schema.Struct({ environment: Schema.String, count: Schema.Number })),
  createdAt: Schema.Number
}).annotations({ identifier: "ProjectView" })

/**
 * @since 0.1.0
 * @category models
 */
export interface ProjectView extends Schema.Schema.Type<typeof ProjectView> {}

/**
 * The answer of `GET /v1/admin/projects`.
 *
 * @since 0.1.0
 * @category schemas
 */
export const ProjectList = Schema.Struct({ projects: Schema.Array(ProjectView) })

/**
 * The body of `POST /v1/admin/projects`.
 *
 * @since 0.1.0
 * @category schemas
 */
export const ProjectBody = Schema.Struct({
  id: PathName,
  name: Schema.optional(Schema.NonEmptyString),
  returnUrls: Schema.optional(Schema.Array(HttpUrl)),
  confirmUsers: Schema.optional(Schema.Boolean)
}).annotations({ identifier: "ProjectBody" })

/**
 * @since 0.1.0
 * @category models
 */
export interface ProjectBody extends Schema.Schema.Type<typeof ProjectBody> {}

/**
 * The body of `POST /v1/admin/projects/{project}/keys`.
 *
 * @since 0.1.0
 * @category schemas
 */
export const KeyBody = Schema.Struct({ environment: PathName }).annotations({ identifier: "KeyBody" })

/**
 * A new caller key: the only answer that holds it; the broker keeps its hash.
 *
 * @since 0.1.0
 * @category schemas
 */
export const CreatedKey = Schema.Struct({
  key: Schema.Redacted(Schema.String),
  project: Schema.String,
  environment: Schema.String,
  createdAt: Schema.Number
}).annotations({ identifier: "CreatedKey" })

/**
 * @since 0.1.0
 * @category models
 */
export interface CreatedKey extends Schema.Schema.Type<typeof CreatedKey> {}

/**
 * An event of the broker's history, as the admin API shows it: `occurredAt`
 * in milliseconds since the epoch like the other answers' times, and `time`,
 * the same as ISO 8601. `seq` orders events as they were written; `id` is
 * unique. `subject` is `app`, `installation` (an installation's own grant),
 * or a user as the broker keys it (`user:[issuer, id]`).
 *
 * @since 0.1.0
 * @category schemas
 */
export const EventView = Schema.Struct({
  seq: Schema.Number,
  id: Schema.String,
  kind: EventKind,
  occurredAt: Schema.Number,
  time: Schema.String,
  connector: Schema.optional(Schema.String),
  project: Schema.optional(Schema.String),
  environment: Schema.optional(Schema.String),
  subject: Schema.optional(Schema.String),
  installationId: Schema.optional(Schema.String),
  requestId: Schema.optional(Schema.String),
  data: EventData
}).annotations({ identifier: "EventView" })

/**
 * @since 0.1.0
 * @category models
 */
export interface EventView extends Schema.Schema.Type<typeof EventView> {}

/**
 * The answer of `GET /v1/admin/events`: a page of events (newest first; oldest
 * first with `after`), and the cursor of the next one: for `before` when the
 * page is full, for `after` always (where to follow from).
 *
 * @since 0.1.0
 * @category schemas
 */
export const EventList = Schema.Struct({
  events: Schema.Array(EventView),
  next: Schema.optional(Schema.String)
}).annotations({ identifier: "EventList" })

/**
 * @since 0.1.0
 * @category models
 */
export interface EventList extends Schema.Schema.Type<typeof EventList> {}

/**
 * A grant as the admin API shows it: whom it is for (the project and the
 * subject as the broker keys it, `user:[issuer, id]`), its status and, for
 * `invalid` and `lost`, why (`lostReason`); whether it holds a refresh token,
 * never the token.
 *
 * @since 0.2.0
 * @category schemas
 */
export const GrantView = Schema.Struct({
  id: Schema.String,
  installationId: Schema.optional(Schema.String),
  project: Schema.optional(Schema.String),
  subject: Schema.String,
  /** The user's id, for a user's grant. */
  user: Schema.optional(Schema.String),
  status: Schema.Literal("active", "revoked", "invalid", "lost"),
  lostReason: Schema.optional(Schema.String),
  scope: Schema.optional(Schema.String),
  hasRefreshToken: Schema.Boolean,
  refreshExpiresAt: Schema.optional(Schema.Number),
  accessExpiresAt: Schema.optional(Schema.Number),
  createdAt: Schema.Number,
  updatedAt: Schema.Number
}).annotations({ identifier: "GrantView" })

/**
 * @since 0.2.0
 * @category models
 */
export interface GrantView extends Schema.Schema.Type<typeof GrantView> {}

/**
 * The answer of `GET /v1/admin/connectors/{connector}/grants`: a page of
 * grants, newest first, and how many match in all.
 *
 * @since 0.2.0
 * @category schemas
 */
export const GrantList = Schema.Struct({
  grants: Schema.Array(GrantView),
  total: Schema.Number,
  offset: Schema.Number,
  limit: Schema.Number
}).annotations({ identifier: "GrantList" })

/**
 * @since 0.2.0
 * @category models
 */
export interface GrantList extends Schema.Schema.Type<typeof GrantList> {}

/**
 * The query of a grants' listing: `user` (a part of the subject to search
 * for), `offset` (0 by default) and `limit` (1 to 200, 50 by default).
 *
 * @since 0.2.0
 * @category schemas
 */
export const GrantQuery = Schema.Struct({
  user: Schema.optional(Schema.String.pipe(Schema.maxLength(256))),
  offset: Schema.optionalWith(Schema.NumberFromString.pipe(Schema.int(), Schema.between(0, 1_000_000)), {
    default: () => 0
  }),
  limit: Schema.optionalWith(Schema.NumberFromString.pipe(Schema.int(), Schema.between(1, 200)), {
    default: () => 50
  })
}).annotations({ identifier: "GrantQuery" })

/**
 * An active token the broker handed out, as the admin API shows it: never
 * its value.
 *
 * @since 0.2.0
 * @category schemas
 */
export const TokenView = Schema.Struct({
  id: Schema.String,
  project: Schema.String,
  environment: Schema.String,
  subject: Schema.String,
  installationId: Schema.optional(Schema.String),
  grantId: Schema.optional(Schema.String),
  expiresAt: Schema.Number,
  createdAt: Schema.Number
}).annotations({ identifier: "TokenView" })

/**
 * @since 0.2.0
 * @category models
 */
export interface TokenView extends Schema.Schema.Type<typeof TokenView> {}

/**
 * The answer of `GET /v1/admin/connectors/{connector}/tokens`: the active
 * tokens not yet expired, oldest first.
 *
 * @since 0.2.0
 * @category schemas
 */
export const TokenList = Schema.Struct({ tokens: Schema.Array(TokenView) }).annotations({ identifier: "TokenList" })

/**
 * The answer of revoking a grant or a token: what was revoked, the tokens
 * found, and how the provider answered their revocation.
 *
 * @since 0.2.0
 * @category schemas
 */
export const Revoked = Schema.Struct({
  revoked: Schema.String,
  tokensFound: Schema.Number,
  providerRevoked: Schema.Number,
  providerSkipped: Schema.Number,
  providerFailed: Schema.Number
}).annotations({ identifier: "Revoked" })

/**
 * @since 0.2.0
 * @category models
 */
export interface Revoked extends Schema.Schema.Type<typeof Revoked> {}

/**
 * Every route of the admin API, as the broker serves them and the `connect`
 * admin commands call them.
 *
 * @since 0.2.0
 * @category routes
 */
export const adminRoutes = {
  listConnectors: route("GET", "/v1/admin/connectors"),
  createConnector: route("POST", "/v1/admin/connectors"),
  showConnector: route("GET", "/v1/admin/connectors/:connector"),
  removeConnector: route("DELETE", "/v1/admin/connectors/:connector"),
  listInstallations: route("GET", "/v1/admin/connectors/:connector/installations"),
  removeInstallation: route("DELETE", "/v1/admin/connectors/:connector/installations/:installation"),
  listGrants: route("GET", "/v1/admin/connectors/:connector/grants"),
  revokeGrant: route("DELETE", "/v1/admin/connectors/:connector/grants/:grant"),
  listTokens: route("GET", "/v1/admin/connectors/:connector/tokens"),
  revokeToken: route("DELETE", "/v1/admin/connectors/:connector/tokens/:token"),
  attach: route("PUT", "/v1/admin/connectors/:connector/links/:project"),
  detach: route("DELETE", "/v1/admin/connectors/:connector/links/:project"),
  listProjects: route("GET", "/v1/admin/projects"),
  createProject: route("POST", "/v1/admin/projects"),
  createKey: route("POST", "/v1/admin/projects/:project/keys"),
  listWebhooks: route("GET", "/v1/admin/projects/:project/webhooks"),
  createWebhook: route("POST", "/v1/admin/projects/:project/webhooks"),
  removeWebhook: route("DELETE", "/v1/admin/projects/:project/webhooks/:webhook"),
  listDeliveries: route("GET", "/v1/admin/webhooks/:webhook/deliveries"),
  retryDelivery: route("POST", "/v1/admin/webhook-deliveries/:delivery/retry"),
  listEvents: route("GET", "/v1/admin/events")
} as const

/**
 * A project's webhook, without its secret.
 *
 * @since 0.1.0
 * @category schemas
 */
export const WebhookView = Schema.Struct({
  id: Schema.String,
  project: Schema.String,
  url: Schema.String,
  /** The event kinds (or `<group>.*`) it takes; every kind when empty. */
  events: Schema.Array(Schema.String),
  enabled: Schema.Boolean,
  /** Why it was disabled (its receiver answered 410 Gone). */
  disabledReason: Schema.optional(Schema.String),
  /** `config` (the configuration file) or `api`. */
  source: Schema.String,
  createdAt: Schema.Number
}).annotations({ identifier: "WebhookView" })

/**
 * @since 0.1.0
 * @category models
 */
export interface WebhookView extends Schema.Schema.Type<typeof WebhookView> {}

/**
 * The answer of `GET /v1/admin/projects/{project}/webhooks`.
 *
 * @since 0.1.0
 * @category schemas
 */
export const WebhookList = Schema.Struct({ webhooks: Schema.Array(WebhookView) }).annotations({
  identifier: "WebhookList"
})

/**
 * @since 0.1.0
 * @category models
 */
export interface WebhookList extends Schema.Schema.Type<typeof WebhookList> {}

/**
 * The body of `POST /v1/admin/projects/{project}/webhooks`: the secret is
 * generated when not given.
 *
 * @since 0.1.0
 * @category schemas
 */
export const WebhookBody = Schema.Struct({
  id: Schema.optional(PathName),
  url: HttpUrl,
  secret: Schema.optional(Schema.Redacted(WebhookSecret)),
  events: Schema.optional(Schema.Array(EventPattern))
}).annotations({ identifier: "WebhookBody" })

/**
 * @since 0.1.0
 * @category models
 */
export interface WebhookBody extends Schema.Schema.Type<typeof WebhookBody> {}

/**
 * A new webhook with its secret: the only answer that holds it.
 *
 * @since 0.1.0
 * @category schemas
 */
export const CreatedWebhook = Schema.Struct({
  ...WebhookView.fields,
  secret: Schema.Redacted(Schema.String)
}).annotations({ identifier: "CreatedWebhook" })

/**
 * @since 0.1.0
 * @category models
 */
export interface CreatedWebhook extends Schema.Schema.Type<typeof CreatedWebhook> {}

/**
 * The answer of `DELETE /v1/admin/projects/{project}/webhooks/{webhook}`.
 *
 * @since 0.1.0
 * @category schemas
 */
export const WebhookRemoved = Schema.Struct({ id: Schema.String, project: Schema.String }).annotations({
  identifier: "WebhookRemoved"
})

/**
 * @since 0.1.0
 * @category models
 */
export interface WebhookRemoved extends Schema.Schema.Type<typeof WebhookRemoved> {}

/**
 * One attempt of a delivery: when, the receiver's HTTP status or what went
 * wrong, and how long it took.
 *
 * @since 0.1.0
 * @category schemas
 */
export const DeliveryAttemptView = Schema.Struct({
  at: Schema.Number,
  status: Schema.optional(Schema.Number),
  error: Schema.optional(Schema.String),
  durationMs: Schema.Number
}).annotations({ identifier: "DeliveryAttemptView" })

/**
 * @since 0.1.0
 * @category models
 */
export interface DeliveryAttemptView extends Schema.Schema.Type<typeof DeliveryAttemptView> {}

/**
 * A delivery's status: `pending` (to be sent, or sent again at
 * `nextAttemptAt`), `delivered` (a 2xx answer), `failed` (no more attempts).
 *
 * @since 0.1.0
 * @category schemas
 */
export const DeliveryStatus = Schema.Literal("pending", "delivered", "failed")

/**
 * A delivery of an event to a webhook, with its latest attempts.
 *
 * @since 0.1.0
 * @category schemas
 */
export const DeliveryView = Schema.Struct({
  id: Schema.String,
  webhookId: Schema.String,
  eventId: Schema.String,
  eventKind: Schema.String,
  status: DeliveryStatus,
  attempts: Schema.Number,
  nextAttemptAt: Schema.optional(Schema.Number),
  lastStatus: Schema.optional(Schema.Number),
  lastError: Schema.optional(Schema.String),
  createdAt: Schema.Number,
  updatedAt: Schema.Number,
  deliveredAt: Schema.optional(Schema.Number),
  attemptLog: Schema.Array(DeliveryAttemptView)
}).annotations({ identifier: "DeliveryView" })

/**
 * @since 0.1.0
 * @category models
 */
export interface DeliveryView extends Schema.Schema.Type<typeof DeliveryView> {}

/**
 * The answer of `GET /v1/admin/webhooks/{webhook}/deliveries`, newest first.
 *
 * @since 0.1.0
 * @category schemas
 */
export const DeliveryList = Schema.Struct({ deliveries: Schema.Array(DeliveryView) }).annotations({
  identifier: "DeliveryList"
})

/**
 * @since 0.1.0
 * @category models
 */
export interface DeliveryList extends Schema.Schema.Type<typeof DeliveryList> {}
