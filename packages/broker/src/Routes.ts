/**
 * The broker's HTTP routes: the Connect wire protocol (`/v1/connect/…`) and
 * `GET /healthz`. Every request body is decoded with the shared schemas of the
 * protocol; every failure is answered in the protocol's error envelope by
 * `toWire`, the inverse of the client's mapping.
 *
 * @since 0.1.0
 */
import * as HttpRouter from "@effect/platform/HttpRouter"
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import type * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import { SqlClient } from "@effect/sql"
import { Cause, Clock, Effect, Exit, FiberRef, Option, Schema } from "effect"
import {
  AuthorizationConfirmation,
  AuthorizationRequest,
  AuthorizationResponse,
  AuthorizationStatus,
  AuthorizationStatusRequest,
  InstallationRequest
} from "effect-connect/Authorization"
import {
  ClientNotEnabledForEnvironment,
  ClientNotLinkedToProject,
  type ConnectError,
  ConnectorInstallationRequired,
  ConnectorNotFound,
  InvalidRequest,
  isConnectError,
  RateLimited,
  toWire,
  Unauthorized,
  UserAuthorizationRequired
} from "effect-connect/ConnectError"
import { ConnectorMetadataWire } from "effect-connect/Connector"
import { routes } from "effect-connect/Protocol"
import { RevocationSummary, RevokeParams } from "effect-connect/Revocation"
import { TokenImport, TokenImportResult, TokenRequest, TokenResponse } from "effect-connect/Token"
import * as AdminRoutes from "./AdminRoutes.js"
import { Authorizations } from "./Authorizations.js"
import * as Dashboard from "./Dashboard.js"
import { HotCache } from "./HotCache.js"
import { answerKey, connectorOf } from "./internal/fastPath.js"
import { remembering } from "./internal/hotCache/remembering.js"
import * as Http from "./internal/http.js"
import { answerFailures, bearerToken, decodeBody, json, pathName, serve } from "./internal/http.js"
import { checkImportEnvironments } from "./internal/importPolicy.js"
import { grantKindOf } from "./internal/issuance.js"
import { type Bound, MAX_ID_LENGTH, MAX_PATH_PARAM_LENGTH, RequestBounds } from "./internal/limits.js"
import { subjectKey } from "./internal/tokenKeys.js"
import * as Metrics from "./Metrics.js"
import * as MetricsRoutes from "./MetricsRoutes.js"
import * as Pages from "./Pages.js"
import { RateLimiter } from "./RateLimiter.js"
import { type Caller, type Connector, Store } from "./Store.js"
import { distance, threshold } from "./Suggest.js"
import { Tokens } from "./Tokens.js"

/**
 * The protocol's answer for an error.
 *
 * @since 0.1.0
 * @category responses
 */
export const errorResponse: (error: ConnectError) => HttpServerResponse.HttpServerResponse = Http.errorResponse

/** The store, with the configuration reads every request makes remembered by the hot cache. */
const rememberingStore = Effect.zipWith(Store, HotCache, remembering)

/** The caller, from `Authorization: Bearer <project key>`. */
const authenticate = Effect.gen(function* () {
  const key = yield* bearerToken
  if (Option.isNone(key)) {
    return yield* new Unauthorized({ connector: "", detail: "send the project key as Authorization: Bearer <key>" })
  }
  const store = yield* rememberingStore
  const caller = yield* store.findCaller(key.value)
  return yield* Option.match(caller, {
    onNone: () => Effect.fail(new Unauthorized({ connector: "", detail: "unknown project key" })),
    onSome: (found) =>
      Effect.as(
        Effect.annotateCurrentSpan({ "connect.project": found.projectId, "connect.environment": found.environment }),
        found
      )
  })
})

/**
 * The connector of the caller's project nearest to a name that matches none,
 * for a "did you mean": only the project's own connectors, so that a caller
 * learns nothing of other projects'. A failure of the store just means no hint.
 */
const nearestLinked = (name: string, caller: Caller) =>
  Effect.gen(function* () {
    const store = yield* Store
    const wanted = name.toLowerCase()
    const near = (yield* store.listConnectors)
      .map((connector) => ({ connector, edits: distance(wanted, connector.uid.toLowerCase()) }))
      .filter(({ edits }) => edits > 0 && edits <= threshold(name))
      .sort((a, b) => a.edits - b.edits)
    for (const { connector } of near) {
      if (Option.isSome(yield* store.findLink(connector.id, caller.projectId))) return connector.uid
    }
    return undefined
  }).pipe(Effect.orElseSucceed(() => undefined))

/** The connector of the path, linked to the caller's project for its environment. */
const linkedConnector = (caller: Caller) =>
  Effect.gen(function* () {
    const name = yield* pathName(
      "connector",
      `Expected a connector uid or id: 1 to ${MAX_ID_LENGTH} characters, no control characters`
    )
    const store = yield* rememberingStore
    const connector = yield* store.findConnector(name)
    if (Option.isNone(connector)) {
      const near = yield* nearestLinked(name, caller)
      return yield* new ConnectorNotFound({
        connector: name,
        ...(near === undefined
          ? {}
          : { detail: `No connector "${name}" exists for this caller: did you mean "${near}"?` })
      })
    }
    yield* Metrics.setConnector(connector.value.uid)
    const link = yield* store.findLink(connector.value.id, caller.projectId)
    if (Option.isNone(link)) return yield* new ClientNotLinkedToProject({ connector: connector.value.uid })
    if (!link.value.includes(caller.environment)) {
      return yield* new ClientNotEnabledForEnvironment({
        connector: connector.value.uid,
        detail: `the link does not include the environment "${caller.environment}"`
      })
    }
    return connector.value
  })

/** The JSON body, decoded strictly with a protocol schema and the broker's bounds; failures name the field. */
const body = <A, I>(schema: Schema.Schema<A, I>, connector: Connector, bounds: ReadonlyArray<Bound>) =>
  decodeBody(schema, { connector: connector.uid, bounds })

/** Runs a route, answering any failure in the protocol's envelope. */
const handle = <R>(route: Effect.Effect<HttpServerResponse.HttpServerResponse, unknown, R>) =>
  answerFailures(route, { logAs: "request failed", connector: "" })

/** Fails with `error`, given the link `find` makes when it has none yet. */
const withLink = <E>(
  error: E,
  link: string | undefined,
  find: (authorizations: Authorizations["Type"]) => Effect.Effect<Option.Option<string>>,
  linked: (url: string) => E
): Effect.Effect<never, E, Authorizations> =>
  link !== undefined
    ? Effect.fail(error)
    : Effect.flatMap(Authorizations, find).pipe(
        Effect.flatMap((url) => Effect.fail(Option.match(url, { onNone: () => error, onSome: linked })))
      )

/** Takes one request from the project's bucket of the rate limiter, or refuses. */
const rateLimited = (caller: Caller, what: string) =>
  Effect.gen(function* () {
    const decision = yield* Effect.flatMap(RateLimiter, (limiter) => limiter.take(caller.projectId))
    if (!decision.allowed) {
      yield* Metrics.count(Metrics.rateLimited, { route: what === "token requests" ? "token" : "start" })
      return yield* new RateLimited({
        connector: "",
        retryAfterMs: decision.retryAfterMs,
        detail: `too many ${what} for this project`
      })
    }
  })

/**
 * Remembers a token answer for the fast path (`internal/fastPath.ts`), keyed
 * by the request's exact body: for app and user subjects, whose answers the
 * broker hands out again while reusable.
 */
const rememberAnswer = (
  generation: number,
  caller: Caller,
  request: TokenRequest,
  issued: TokenResponse,
  body: string
) =>
  Effect.gen(function* () {
    if (request.subject.type !== "app" && request.subject.type !== "user") return
    const httpRequest = yield* HttpServerRequest.HttpServerRequest
    const connector = connectorOf(httpRequest.url)
    if (connector === undefined) return
    const text = yield* Effect.orElseSucceed(Http.bodyText(), () => undefined)
    if (text === undefined) return
    const cache = yield* HotCache
    cache.rememberAnswer(generation, answerKey(caller, connector, text), {
      body,
      expiresAt: issued.expiresAt,
      connector: issued.connector.uid,
      subject: subjectKey(request.subject),
      installationId: issued.installationId,
      grant: grantKindOf(request.subject)
    })
  })

const token = Effect.gen(function* () {
  const generation = (yield* HotCache).generation()
  const caller = yield* authenticate
  yield* rateLimited(caller, "token requests")
  const connector = yield* linkedConnector(caller)
  const request = yield* body(TokenRequest, connector, RequestBounds.token)
  const issued = yield* Effect.flatMap(Tokens, (tokens) => tokens.issue(caller, connector, request)).pipe(
    // Tell the caller where to send the user, or the tenant's admin.
    Effect.catchTag("UserAuthorizationRequired", (error) =>
      withLink(
        error,
        error.authorizeUrl,
        (authorizations) => authorizations.authorizeUrlFor(caller, connector, request),
        (authorizeUrl) => new UserAuthorizationRequired({ ...error, authorizeUrl })
      )
    ),
    Effect.catchTag("ConnectorInstallationRequired", (error) =>
      withLink(
        error,
        error.installUrl,
        (authorizations) => authorizations.installUrlFor(caller, connector, request),
        (installUrl) => new ConnectorInstallationRequired({ ...error, installUrl })
      )
    )
  )
  yield* Metrics.observe(
    Metrics.tokenTimeLeft,
    { connector: connector.uid },
    Math.max(0, issued.expiresAt - (yield* Clock.currentTimeMillis)) / 1000
  )
  // Serialised once: the same bytes are answered now and, from memory, to the same request again.
  const answer = JSON.stringify(yield* Schema.encode(TokenResponse)(issued))
  yield* rememberAnswer(generation, caller, request, issued, answer)
  return Http.jsonText(200, answer)
})

/** Counts a token request by connector and outcome: `issued`, or the code of the error answered. */
const countTokenRequest = <R>(route: Effect.Effect<HttpServerResponse.HttpServerResponse, unknown, R>) =>
  Effect.onExit(route, (exit) =>
    Effect.flatMap(FiberRef.get(Metrics.currentConnector), (connector) =>
      Metrics.count(Metrics.tokenRequests, {
        connector,
        outcome: Exit.isSuccess(exit)
          ? "issued"
          : Option.match(Cause.failureOption(exit.cause), {
              onNone: () => "internal_error",
              onSome: (error) => (isConnectError(error) ? String(toWire(error).body.error.code) : "internal_error")
            })
      })
    )
  )

const revoke = Effect.gen(function* () {
  const caller = yield* authenticate
  const connector = yield* linkedConnector(caller)
  const params = yield* body(RevokeParams, connector, RequestBounds.revoke)
  const summary = yield* Effect.flatMap(Tokens, (tokens) => tokens.revoke(caller, connector, params))
  return json(200, yield* Schema.encode(RevocationSummary)(summary))
})

const metadata = Effect.gen(function* () {
  const caller = yield* authenticate
  const connector = yield* linkedConnector(caller)
  return json(
    200,
    yield* Schema.encode(ConnectorMetadataWire)({
      id: connector.id,
      uid: connector.uid,
      name: connector.name,
      type: connector.type,
      service: connector.service,
      createdAt: connector.createdAt,
      updatedAt: connector.updatedAt,
      data: connector.settings.data
    })
  )
})

const importTokens = Effect.gen(function* () {
  const caller = yield* authenticate
  const connector = yield* linkedConnector(caller)
  const payload = yield* body(TokenImport, connector, RequestBounds.importTokens)
  // All or nothing: a token for another environment refuses the whole import before anything is written.
  const linked = yield* Effect.flatMap(Store, (store) => store.findLink(connector.id, caller.projectId))
  yield* checkImportEnvironments(
    caller,
    connector,
    Option.getOrElse(linked, () => []),
    payload.tokens
  )
  const imported = yield* Effect.flatMap(Tokens, (tokens) => tokens.importTokens(caller, connector, payload.tokens))
  return json(200, yield* Schema.encode(TokenImportResult)({ imported }))
})

const authorize = Effect.gen(function* () {
  const caller = yield* authenticate
  // Starts (the device flow's too) share the project's rate limit with its token requests.
  yield* rateLimited(caller, "requests")
  const connector = yield* linkedConnector(caller)
  const payload = yield* body(AuthorizationRequest, connector, RequestBounds.authorize)
  const started = yield* Effect.flatMap(Authorizations, (authorizations) =>
    authorizations.start(caller, connector, payload)
  )
  return json(200, yield* Schema.encode(AuthorizationResponse)(started))
})

const install = Effect.gen(function* () {
  const caller = yield* authenticate
  yield* rateLimited(caller, "requests")
  const connector = yield* linkedConnector(caller)
  const payload = yield* body(InstallationRequest, connector, RequestBounds.install)
  const started = yield* Effect.flatMap(Authorizations, (authorizations) =>
    authorizations.install(caller, connector, payload)
  )
  return json(200, yield* Schema.encode(AuthorizationResponse)(started))
})

const startAuthorization = Effect.gen(function* () {
  const params = yield* HttpRouter.params
  const answer = yield* Effect.flatMap(Authorizations, (authorizations) =>
    authorizations.redirect(params.request ?? "")
  )
  return Pages.toResponse(answer)
})

const callback = Effect.gen(function* () {
  const request = yield* HttpServerRequest.HttpServerRequest
  const query = Object.fromEntries(new URL(request.url, "http://broker").searchParams)
  const answer = yield* Effect.flatMap(Authorizations, (authorizations) => authorizations.callback(query))
  return Pages.toResponse(answer)
})

const authorizationStatus = Effect.gen(function* () {
  const caller = yield* authenticate
  const params = yield* HttpRouter.params
  const { verifier } = yield* decodeBody(AuthorizationStatusRequest, { bounds: RequestBounds.status })
  const status = yield* Effect.flatMap(Authorizations, (authorizations) =>
    authorizations.status(caller, params.request ?? "", verifier)
  )
  return json(200, yield* Schema.encode(AuthorizationStatus)(status))
})

const confirmAuthorization = Effect.gen(function* () {
  const caller = yield* authenticate
  const params = yield* HttpRouter.params
  const payload = yield* decodeBody(AuthorizationConfirmation, { bounds: RequestBounds.confirm })
  const status = yield* Effect.flatMap(Authorizations, (authorizations) =>
    authorizations.confirm(caller, params.request ?? "", payload.verifier, payload.code)
  )
  return json(200, yield* Schema.encode(AuthorizationStatus)(status))
})

const healthz = Effect.gen(function* () {
  const sql = yield* SqlClient.SqlClient
  yield* sql`SELECT 1`
  return json(200, { status: "ok" })
})

/**
 * The routes of the broker.
 *
 * @since 0.1.0
 * @category routes
 */
export const router = HttpRouter.empty.pipe(
  serve(routes.token, handle(countTokenRequest(token))),
  serve(routes.importTokens, handle(importTokens)),
  serve(routes.revokeTokens, handle(revoke)),
  serve(routes.connector, handle(metadata)),
  serve(routes.authorize, handle(authorize)),
  serve(routes.install, handle(install)),
  serve(routes.authorizationStart, handle(startAuthorization)),
  serve(routes.authorizationStatus, handle(authorizationStatus)),
  serve(routes.authorizationConfirm, handle(confirmAuthorization)),
  serve(routes.callback, handle(callback)),
  serve(routes.health, healthz.pipe(Effect.catchAll(() => Effect.succeed(json(503, { status: "unavailable" }))))),
  // The admin API (`/v1/admin/…`), behind CONNECT_ADMIN_TOKEN.
  HttpRouter.concat(AdminRoutes.router)
)

/**
 * The broker as an HTTP app: the routes and `GET /metrics`, with unknown
 * paths answered 404 in the protocol's envelope.
 *
 * @since 0.1.0
 * @category routes
 */
export const app = router.pipe(
  // `GET /metrics` (behind the admin token): not part of the protocol, so not in `router`.
  HttpRouter.concat(MetricsRoutes.router),
  // The operator's dashboard (`/dashboard`), behind the admin token too.
  HttpRouter.concat(Dashboard.router),
  // Past the router's own bound on a parameter (100 by default) a path is a 404: let the routes refuse it by name.
  HttpRouter.withRouterConfig({ maxParamLength: MAX_PATH_PARAM_LENGTH }),
  Effect.catchTag("RouteNotFound", (error) =>
    Effect.sync(() => {
      // A path the router could not decode is a bad request, not a missing endpoint.
      const path = error.request.url.split("?")[0] ?? ""
      try {
        decodeURIComponent(path)
      } catch {
        return errorResponse(
          new InvalidRequest({
            status: 400,
            issues: [{ path: "connector", message: "the path is not valid percent-encoding (encodeURIComponent)" }]
          })
        )
      }
      // Not `not_found`: that code says the connector is unknown; a client hearing this one checks its base URL.
      return json(404, {
        error: { code: "endpoint_not_found", message: `no such endpoint: ${error.request.method} ${path}` }
      })
    })
  )
)
