/**
 * The HTTP routes of the broker's admin API (`/v1/admin/…`): connectors,
 * their links, projects and caller keys, webhooks and their deliveries, and the event history. Every route needs the admin token
 * (`Authorization: Bearer <CONNECT_ADMIN_TOKEN>`); without one configured,
 * every route answers `401 unauthorized`. Failures are answered in the
 * protocol's error envelope, bodies are decoded strictly (a field the schema
 * does not know is refused), and every answer carries `Cache-Control: no-store`.
 *
 * @since 0.1.0
 */
import * as HttpRouter from "@effect/platform/HttpRouter"
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import type * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import { Effect, Either, Option, Schema } from "effect"
import { InvalidRequest, Unauthorized, UnknownConnectError } from "effect-connect/ConnectError"
import { describeParseError } from "effect-connect/Protocol"
import { Admin, AdminConflict, AdminNotFound } from "./Admin.js"
import {
  AttachBody,
  adminRoutes,
  ConnectorList,
  ConnectorRemoved,
  ConnectorView,
  CreatedKey,
  CreatedWebhook,
  DeliveryList,
  DeliveryStatus,
  DeliveryView,
  DetachBody,
  EventList,
  GrantList,
  GrantQuery,
  InstallationList,
  InstallationRemoved,
  KeyBody,
  LinkChanged,
  ProjectBody,
  ProjectList,
  ProjectView,
  Revoked,
  TokenList,
  WebhookBody,
  WebhookList,
  WebhookRemoved
} from "./AdminApi.js"
import { AdminToken, matches } from "./AdminToken.js"
import { parseEventQuery } from "./internal/eventQuery.js"
import { answerFailures, bearerToken, decodeBody, json, jsonBody, pathName, serve } from "./internal/http.js"
import { type Bound, boundIssues, MAX_URL_LENGTH, RequestBounds } from "./internal/limits.js"
import { Webhooks } from "./Webhooks.js"

const unauthorized = (detail: string) => new Unauthorized({ connector: "", detail })

/** Checks `Authorization: Bearer <admin token>`, in constant time. */
const authenticate = Effect.gen(function* () {
  const expected = yield* AdminToken
  if (Option.isNone(expected)) {
    return yield* unauthorized("the admin API is disabled until CONNECT_ADMIN_TOKEN is set on the broker")
  }
  const token = yield* bearerToken
  if (Option.isNone(token)) {
    return yield* unauthorized("send the admin token as Authorization: Bearer <CONNECT_ADMIN_TOKEN>")
  }
  if (!matches(expected.value, token.value)) return yield* unauthorized("wrong admin token")
})

/**
 * Checks `Authorization: Bearer <admin token>`, in constant time: the admin
 * API's check, also used by `GET /metrics`.
 *
 * @since 0.1.0
 * @category authentication
 */
export const requireAdmin: Effect.Effect<void, Unauthorized, AdminToken | HttpServerRequest.HttpServerRequest> =
  authenticate

/** The JSON body, a JSON object decoded strictly with `schema` and checked against `bounds`; failures name each field. */
const body = <A, I>(schema: Schema.Schema<A, I>, bounds: ReadonlyArray<Bound>) => decodeBody(schema, { bounds })

/** A connector declaration, as JSON: `Admin` decodes it (strictly) as the configuration file would. */
const declarationBody = Effect.gen(function* () {
  const parsed = yield* jsonBody()
  const issues = boundIssues(parsed, RequestBounds.connector)
  if (issues.length > 0) return yield* new InvalidRequest({ status: 400, issues })
  return parsed
})

/** The admin service's own failures in the protocol's terms: 404 and 409. */
const adminFailure = (error: unknown) => {
  if (error instanceof AdminNotFound) {
    return new UnknownConnectError({ status: 404, code: "not_found", detail: error.message })
  }
  if (error instanceof AdminConflict) {
    return new UnknownConnectError({ status: 409, code: "conflict", detail: error.message })
  }
  return undefined
}

/** Runs a route after the admin token's check, answering any failure in the protocol's envelope. */
const handle = <R>(route: Effect.Effect<HttpServerResponse.HttpServerResponse, unknown, R>) =>
  answerFailures(Effect.zipRight(authenticate, route), { logAs: "admin request failed", translate: adminFailure })

const encode =
  <A, I>(schema: Schema.Schema<A, I>, status = 200) =>
  (value: A) =>
    Effect.map(Schema.encode(schema)(value), (encoded) => json(status, encoded))

const listConnectors = Effect.gen(function* () {
  const connectors = yield* Effect.flatMap(Admin, (admin) => admin.listConnectors)
  return yield* encode(ConnectorList)({ connectors })
})

const showConnector = Effect.gen(function* () {
  const name = yield* pathName("connector")
  return yield* encode(ConnectorView)(yield* Effect.flatMap(Admin, (admin) => admin.showConnector(name)))
})

const createConnector = Effect.gen(function* () {
  const declaration = yield* declarationBody
  const created = yield* Effect.flatMap(Admin, (admin) => admin.createConnector(declaration))
  return yield* encode(ConnectorView, 201)(created)
})

const removeConnector = Effect.gen(function* () {
  const name = yield* pathName("connector")
  return yield* encode(ConnectorRemoved)(yield* Effect.flatMap(Admin, (admin) => admin.removeConnector(name)))
})

const listInstallations = Effect.gen(function* () {
  const name = yield* pathName("connector")
  const installations = yield* Effect.flatMap(Admin, (admin) => admin.listInstallations(name))
  return yield* encode(InstallationList)({ installations })
})

const removeInstallation = Effect.gen(function* () {
  const name = yield* pathName("connector")
  const installation = yield* pathName("installation")
  return yield* encode(InstallationRemoved)(
    yield* Effect.flatMap(Admin, (admin) => admin.removeInstallation(name, installation))
  )
})

/** A query string decoded strictly with `schema`: unknown parameters are refused by name. */
const queryOf = <A, I extends Readonly<Record<string, string | ReadonlyArray<string> | undefined>>>(
  schema: Schema.Schema<A, I>
) =>
  HttpServerRequest.schemaSearchParams(schema, { onExcessProperty: "error" }).pipe(
    Effect.mapError(
      (error) =>
        new InvalidRequest({
          status: 400,
          issues: error._tag === "ParseError" ? describeParseError(error) : [{ path: "", message: error.message }]
        })
    )
  )

const listGrants = Effect.gen(function* () {
  const name = yield* pathName("connector")
  const query = yield* queryOf(GrantQuery)
  const page = yield* Effect.flatMap(Admin, (admin) =>
    admin.listGrants(name, { search: query.user, offset: query.offset, limit: query.limit })
  )
  return yield* encode(GrantList)(page)
})

const revokeGrant = Effect.gen(function* () {
  const name = yield* pathName("connector")
  const grant = yield* pathName("grant")
  return yield* encode(Revoked)(yield* Effect.flatMap(Admin, (admin) => admin.revokeGrant(name, grant)))
})

const listTokens = Effect.gen(function* () {
  const name = yield* pathName("connector")
  const tokens = yield* Effect.flatMap(Admin, (admin) => admin.listTokens(name))
  return yield* encode(TokenList)({ tokens })
})

const revokeToken = Effect.gen(function* () {
  const name = yield* pathName("connector")
  const token = yield* pathName("token")
  return yield* encode(Revoked)(yield* Effect.flatMap(Admin, (admin) => admin.revokeToken(name, token)))
})

const attach = Effect.gen(function* () {
  const name = yield* pathName("connector")
  const project = yield* pathName("project")
  const { environments } = yield* body(AttachBody, RequestBounds.environments)
  return yield* encode(LinkChanged)(yield* Effect.flatMap(Admin, (admin) => admin.attach(name, project, environments)))
})

const detach = Effect.gen(function* () {
  const name = yield* pathName("connector")
  const project = yield* pathName("project")
  const { environments } = yield* body(DetachBody, RequestBounds.environments)
  return yield* encode(LinkChanged)(yield* Effect.flatMap(Admin, (admin) => admin.detach(name, project, environments)))
})

const listProjects = Effect.gen(function* () {
  const projects = yield* Effect.flatMap(Admin, (admin) => admin.listProjects)
  return yield* encode(ProjectList)({ projects })
})

const createProject = Effect.gen(function* () {
  const payload = yield* body(ProjectBody, RequestBounds.project)
  return yield* encode(ProjectView, 201)(yield* Effect.flatMap(Admin, (admin) => admin.createProject(payload)))
})

const createKey = Effect.gen(function* () {
  const project = yield* pathName("project")
  const { environment } = yield* body(KeyBody, RequestBounds.key)
  return yield* encode(CreatedKey, 201)(yield* Effect.flatMap(Admin, (admin) => admin.createKey(project, environment)))
})

const listWebhooks = Effect.gen(function* () {
  const project = yield* pathName("project")
  const webhooks = yield* Effect.flatMap(Webhooks, (service) => service.list(project))
  return yield* encode(WebhookList)({ webhooks })
})

const createWebhook = Effect.gen(function* () {
  const project = yield* pathName("project")
  const payload = yield* body(WebhookBody, [
    { path: "url", maxLength: MAX_URL_LENGTH },
    { path: "events", maxItems: 50 }
  ])
  return yield* encode(
    CreatedWebhook,
    201
  )(yield* Effect.flatMap(Webhooks, (service) => service.create(project, payload)))
})

const removeWebhook = Effect.gen(function* () {
  const project = yield* pathName("project")
  const webhook = yield* pathName("webhook")
  return yield* encode(WebhookRemoved)(yield* Effect.flatMap(Webhooks, (service) => service.remove(project, webhook)))
})

/** The query of a deliveries' listing: `status` and `limit` (1 to 500, 50 by default). */
const DeliveriesQuery = Schema.Struct({
  status: Schema.optional(DeliveryStatus),
  limit: Schema.optionalWith(Schema.NumberFromString.pipe(Schema.int(), Schema.between(1, 500)), {
    default: () => 50
  })
})

const listDeliveries = Effect.gen(function* () {
  const webhook = yield* pathName("webhook")
  const query = yield* HttpServerRequest.schemaSearchParams(DeliveriesQuery, { onExcessProperty: "error" }).pipe(
    Effect.mapError(
      (error) =>
        new InvalidRequest({
          status: 400,
          issues: error._tag === "ParseError" ? describeParseError(error) : [{ path: "", message: error.message }]
        })
    )
  )
  const deliveries = yield* Effect.flatMap(Webhooks, (service) => service.deliveries(webhook, query))
  return yield* encode(DeliveryList)({ deliveries })
})

const retryDelivery = Effect.gen(function* () {
  const delivery = yield* pathName("delivery")
  return yield* encode(DeliveryView)(yield* Effect.flatMap(Webhooks, (service) => service.retry(delivery)))
})

const listEvents = Effect.gen(function* () {
  const request = yield* HttpServerRequest.HttpServerRequest
  const filter = parseEventQuery(new URL(request.url, "http://broker").searchParams)
  if (Either.isLeft(filter)) return yield* new InvalidRequest({ status: 400, issues: filter.left })
  return yield* encode(EventList)(yield* Effect.flatMap(Admin, (admin) => admin.listEvents(filter.right)))
})

/**
 * The routes of the admin API.
 *
 * @since 0.1.0
 * @category routes
 */
export const router = HttpRouter.empty
  .pipe(
    serve(adminRoutes.listConnectors, handle(listConnectors)),
    serve(adminRoutes.createConnector, handle(createConnector)),
    serve(adminRoutes.showConnector, handle(showConnector)),
    serve(adminRoutes.removeConnector, handle(removeConnector)),
    serve(adminRoutes.listInstallations, handle(listInstallations)),
    serve(adminRoutes.removeInstallation, handle(removeInstallation)),
    // The grants and tokens of a connector.
    serve(adminRoutes.listGrants, handle(listGrants)),
    serve(adminRoutes.revokeGrant, handle(revokeGrant)),
    serve(adminRoutes.listTokens, handle(listTokens)),
    serve(adminRoutes.revokeToken, handle(revokeToken))
  )
  .pipe(
    serve(adminRoutes.attach, handle(attach)),
    serve(adminRoutes.detach, handle(detach)),
    serve(adminRoutes.listProjects, handle(listProjects)),
    serve(adminRoutes.createProject, handle(createProject)),
    serve(adminRoutes.createKey, handle(createKey)),
    serve(adminRoutes.listWebhooks, handle(listWebhooks)),
    serve(adminRoutes.createWebhook, handle(createWebhook)),
    serve(adminRoutes.removeWebhook, handle(removeWebhook)),
    serve(adminRoutes.listDeliveries, handle(listDeliveries)),
    serve(adminRoutes.retryDelivery, handle(retryDelivery)),
    serve(adminRoutes.listEvents, handle(listEvents))
  )
