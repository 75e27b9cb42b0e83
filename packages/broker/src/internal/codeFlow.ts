import { Clock, Effect, Option, Redacted } from "effect"
import type { AuthorizationRequest } from "effect-connect/Authorization"
import type { ConnectError } from "effect-connect/ConnectError"
import { routes } from "effect-connect/Protocol"
import type { TokenRequest } from "effect-connect/Token"
import type { StartedAuthorization } from "../Authorizations.js"
import * as Pages from "../Pages.js"
import type { AuthorizationRequestRecord, Caller, Connector } from "../Store.js"
import { INSTALLATION_SUBJECT, scopesFor, subjectKey } from "../Tokens.js"
import { recordStarted } from "./authorizationEvents.js"
import {
  CONFIRMS_USERS_NEEDS_RETURN_URL,
  CONFIRMS_USERS_NO_DEVICE,
  checkPendingCap,
  checkReturnUrl
} from "./authorizationPolicy.js"
import {
  DEFAULT_EXPIRES_IN_MS,
  decodeRequest,
  encodeRequest,
  expiryOf,
  random,
  sha256
} from "./authorizationRequest.js"
import { badField, storeFailure } from "./errors.js"
import type { FlowContext } from "./flowContext.js"
import { installEndpointOf, TENANT_ID } from "./installTenant.js"

/** What a new request is for, besides what it asks. */
export interface CreateOptions {
  readonly returnUrl?: string | undefined
  readonly prompt?: string | undefined
  readonly expiresInMs?: number | undefined
  /** An installation's: for no installation yet, for a tenant's whole. */
  readonly install?: { readonly tenantHint: string | undefined } | undefined
}

/** The connector as a started request describes it. */
export const describeConnector = (connector: Connector) => ({
  id: connector.id,
  uid: connector.uid,
  type: connector.type,
  name: connector.name,
  service: connector.service
})

/** Stores a new request (under the project's cap), with its secrets; answers it and its verifier. */
export const create = (
  context: FlowContext,
  caller: Caller,
  connector: Connector,
  request: TokenRequest,
  options: CreateOptions
) =>
  Effect.gen(function* () {
    const { store, tokens } = context
    yield* checkPendingCap(store, context.maxPending, caller, connector)
    const installationId =
      options.install === undefined ? yield* tokens.installationOf(connector, request.installationId) : ""
    const verifier = random()
    const now = yield* Clock.currentTimeMillis
    const record = yield* store.createAuthorizationRequest({
      state: Redacted.make(random()),
      verifierHash: sha256(verifier),
      codeVerifier: Redacted.make(random()),
      kind: options.install === undefined ? "user" : "install",
      connectorId: connector.id,
      projectId: caller.projectId,
      environment: caller.environment,
      installationId,
      subject: options.install === undefined ? subjectKey(request.subject) : INSTALLATION_SUBJECT,
      tenantHint: options.install?.tenantHint,
      request: yield* encodeRequest(request),
      returnUrl: options.returnUrl,
      prompt: options.prompt,
      expiresAt: expiryOf(now, options.expiresInMs)
    })
    yield* recordStarted(context.events, connector.uid, record)
    return { record, verifier }
  })

/** The broker's link that starts a request. */
export const startUrl = (context: FlowContext, record: AuthorizationRequestRecord) =>
  `${context.publicUrl}${routes.authorizationStart.path({ request: record.id })}`

/** The answer to a started request: its link, and the verifier its starter checks its status with. */
export const answerOf = (
  context: FlowContext,
  connector: Connector,
  created: { readonly record: AuthorizationRequestRecord; readonly verifier: string }
): StartedAuthorization => ({
  request: created.record.id,
  verifier: Redacted.make(created.verifier),
  url: startUrl(context, created.record),
  expiresAt: created.record.expiresAt,
  connector: describeConnector(connector)
})

/** `POST /v1/connect/authorize/{connector}`: a code flow request, or a device authorization. */
export const start = (
  context: FlowContext,
  caller: Caller,
  connector: Connector,
  body: AuthorizationRequest
): Effect.Effect<StartedAuthorization, ConnectError> =>
  Effect.gen(function* () {
    const { store } = context
    if (body.subject.type !== "user") {
      return yield* badField(connector, "subject.type", "only a user subject authorizes a connector")
    }
    const confirmsUsers = yield* store.findProjectConfirmsUsers(caller.projectId)
    if (confirmsUsers && body.deviceCode === true) {
      return yield* badField(connector, "deviceCode", CONFIRMS_USERS_NO_DEVICE)
    }
    // The device flow (RFC 8628): see DeviceAuthorizations.
    if (body.deviceCode === true) {
      yield* checkPendingCap(store, context.maxPending, caller, connector)
      return { ...(yield* context.devices.start(caller, connector, body)), connector: describeConnector(connector) }
    }
    if (connector.settings.authorizationEndpoint === undefined) {
      return yield* badField(connector, "connector", `connector "${connector.uid}" declares no authorizationEndpoint`)
    }
    if (body.webhook !== undefined) {
      return yield* badField(
        connector,
        "webhook",
        "this broker does not call webhooks; poll the request's status instead"
      )
    }
    if (body.returnUrl !== undefined) yield* checkReturnUrl(store, caller, connector, body.returnUrl)
    else if (confirmsUsers) return yield* badField(connector, "returnUrl", CONFIRMS_USERS_NEEDS_RETURN_URL)
    const { returnUrl: _r, webhook: _w, deviceCode: _d, expiresInMs, prompt, ...request } = body
    const created = yield* create(context, caller, connector, request, {
      returnUrl: body.returnUrl,
      prompt,
      expiresInMs
    })
    return answerOf(context, connector, created)
  }).pipe(Effect.catchTag("StoreError", storeFailure))

/**
 * The link for a token request that found no grant (or installation): an
 * open request for the same thing, still good for a while, is handed out
 * again; otherwise a new one. (A device authorization, completed with a code
 * and not a link, is never handed out.)
 */
export const linkFor = (
  context: FlowContext,
  caller: Caller,
  connector: Connector,
  asked: TokenRequest,
  install: { readonly tenantHint: string | undefined } | undefined
) =>
  Effect.gen(function* () {
    const now = yield* Clock.currentTimeMillis
    const open = yield* context.store.findPendingAuthorization({
      connectorId: connector.id,
      projectId: caller.projectId,
      environment: caller.environment,
      subject: install === undefined ? subjectKey(asked.subject) : INSTALLATION_SUBJECT,
      request: yield* encodeRequest(asked),
      validUntil: now + DEFAULT_EXPIRES_IN_MS / 2
    })
    if (Option.isSome(open) && open.value.tenantHint === install?.tenantHint) {
      return Option.some(startUrl(context, open.value))
    }
    const { record } = yield* create(context, caller, connector, asked, { install })
    return Option.some(startUrl(context, record))
  }).pipe(Effect.catchAll(() => Effect.succeed(Option.none<string>())))

/** The URL that starts a user's authorization, for a token request that found no grant. */
export const authorizeUrlFor = (context: FlowContext, caller: Caller, connector: Connector, request: TokenRequest) => {
  if (connector.settings.authorizationEndpoint === undefined) return Effect.succeed(Option.none<string>())
  const { validityBufferMs: _b, ...asked } = request
  // A project that confirms its users starts its users' requests itself, with a return URL.
  return context.store.findProjectConfirmsUsers(caller.projectId).pipe(
    Effect.flatMap((confirms) =>
      confirms ? Effect.succeed(Option.none<string>()) : linkFor(context, caller, connector, asked, undefined)
    ),
    Effect.catchAll(() => Effect.succeed(Option.none<string>()))
  )
}

/** The provider's authorization URL for a request: its endpoint, with the protocol's parameters and PKCE. */
const providerUrl = (
  context: FlowContext,
  record: AuthorizationRequestRecord,
  connector: Connector,
  endpoint: string,
  request: TokenRequest
): string => {
  const isInstall = record.kind === "install"
  const url = new URL(endpoint.replaceAll(TENANT_ID, encodeURIComponent(record.tenantHint ?? "")))
  const scopes = scopesFor(connector, request)
  const params = url.searchParams
  // The connector's own parameters first: the protocol's below take precedence.
  const extra = isInstall ? connector.settings.install?.authorizationParams : connector.settings.authorizationParams
  for (const [name, value] of Object.entries(extra ?? {})) params.set(name, value)
  params.set("response_type", "code")
  params.set("client_id", connector.clientId)
  params.set("redirect_uri", context.callbackUrl)
  params.set("state", Redacted.value(record.state))
  params.set("code_challenge", sha256(Redacted.value(record.codeVerifier)))
  params.set("code_challenge_method", "S256")
  // Slack asks for a user's scopes in `user_scope`; `scope` would ask for the bot's.
  const scopeParam = !isInstall && connector.settings.userTokenMember === "authed_user" ? "user_scope" : "scope"
  // Linear reads a comma-separated list (https://linear.app/developers/oauth-2-0-authentication).
  if (scopes.length > 0) params.set(scopeParam, scopes.join(connector.settings.scopeSeparator ?? " "))
  for (const resource of request.resources ?? []) params.append("resource", resource)
  if (request.authorizationDetails !== undefined && request.authorizationDetails.length > 0) {
    params.set("authorization_details", JSON.stringify(request.authorizationDetails))
  }
  // OpenID providers grant offline_access (a refresh token) only with prompt=consent (OIDC Core 11).
  const prompt = record.prompt ?? (scopes.includes("offline_access") ? "consent" : undefined)
  if (prompt !== undefined) params.set("prompt", prompt)
  return url.toString()
}

/** `GET /v1/connect/authorize/{request}/start`: on to the provider. */
export const redirect = (context: FlowContext, requestId: string): Effect.Effect<Pages.BrowserAnswer> =>
  Effect.gen(function* () {
    const { store } = context
    const now = yield* Clock.currentTimeMillis
    const found = yield* store.findAuthorizationRequest({ id: requestId })
    if (Option.isNone(found) || found.value.status !== "pending" || found.value.expiresAt <= now) {
      return Pages.page(
        400,
        "Link expired",
        "This authorization link has expired or was already used. Ask for a new one."
      )
    }
    if (found.value.userCode !== undefined) {
      return Pages.page(
        400,
        "Not a link",
        "This authorization is completed with a code at the provider's page, not here."
      )
    }
    const record = found.value
    const connector = yield* store.findConnector(record.connectorId)
    const endpoint = Option.flatMap(connector, (c) =>
      Option.fromNullable(record.kind === "install" ? installEndpointOf(c) : c.settings.authorizationEndpoint)
    )
    if (Option.isNone(connector) || Option.isNone(endpoint)) {
      return Pages.page(400, "Connector unavailable", "The connector of this link no longer exists.")
    }
    const request = yield* decodeRequest(record)
    return Pages.redirect(providerUrl(context, record, connector.value, endpoint.value, request))
  }).pipe(
    Effect.catchAll((error) =>
      Effect.zipRight(
        Effect.logError("authorization redirect failed", error.message),
        Effect.succeed(Pages.somethingWentWrong("start"))
      )
    )
  )
