/**
 * User authorization with the authorization code grant and PKCE (RFC 7636).
 *
 * 1. `POST /v1/connect/authorize/{connector}` creates a request bound to the
 *    caller's project and environment, the connector, installation, subject
 *    and what is asked for, and answers a broker URL for the user.
 * 2. That URL redirects the browser to the provider's authorization endpoint
 *    with a fresh `state` and a S256 code challenge; neither leaves the broker
 *    any other way.
 * 3. The provider sends the user back to the broker's callback. The `state`
 *    finds the request, which is taken once (a replay or a forged state is
 *    refused) and only before it expires; the code is exchanged with the PKCE
 *    verifier; the grant and the first token are stored together; the user is
 *    sent to the request's `returnUrl`, which must be on the project's
 *    allow-list. A denied or failed authorization leaves no grant.
 *
 * @since 0.1.0
 */
import { createHash, randomBytes } from "node:crypto"
import type * as HttpClient from "@effect/platform/HttpClient"
import {
  Clock,
  Config,
  type ConfigError,
  Context,
  Deferred,
  Effect,
  Either,
  FiberSet,
  Layer,
  Option,
  Redacted,
  Schema
} from "effect"
import type { AuthorizationRequest, InstallationRequest } from "effect-connect/Authorization"
import { type ConnectError, InvalidRequest, RateLimited, UnknownConnectError } from "effect-connect/ConnectError"
import { routes } from "effect-connect/Protocol"
import { TokenRequest } from "effect-connect/Token"
import { tokenEndpointFor } from "./ConfigFile.js"
import { DeviceAuthorizations } from "./DeviceAuthorizations.js"
import { isTenantId } from "./internal/limits.js"
import { park, unpark } from "./internal/sealedGrant.js"
import { verifyTenant } from "./internal/tenantVerification.js"
import { ProviderClientConfig, type ProviderToken, requestToken } from "./ProviderClient.js"
import { PublicUrl } from "./PublicUrl.js"
import { type AuthorizationRequestRecord, type Caller, type Connector, Store, type StoreError } from "./Store.js"
import { INSTALLATION_SUBJECT, scopesFor, subjectKey, Tokens } from "./Tokens.js"

/**
 * How long a request stays open by default, and at most.
 *
 * @since 0.1.0
 * @category constants
 */
export const DEFAULT_EXPIRES_IN_MS = 10 * 60_000
const MAX_EXPIRES_IN_MS = 60 * 60_000
const ABANDONED_AFTER_MS = 5 * 60_000
/**
 * How long a callback's completion (the code exchange, saving the grant,
 * finishing the request) may take before it ends the request failed.
 *
 * @since 0.1.0
 * @category constants
 */
export const COMPLETION_DEADLINE_MS = 60_000
/**
 * How many requests a project may have open (pending, or being completed) at
 * once, unless `CONNECT_MAX_PENDING_AUTHORIZATIONS` says otherwise: each holds
 * a row until it expires, so without a cap a caller key could fill the disk.
 *
 * @since 0.1.0
 * @category constants
 */
export const DEFAULT_MAX_PENDING_AUTHORIZATIONS = 100
/**
 * The environment variable that overrides {@link DEFAULT_MAX_PENDING_AUTHORIZATIONS}.
 *
 * @since 0.1.0
 * @category constants
 */
export const MAX_PENDING_VARIABLE = "CONNECT_MAX_PENDING_AUTHORIZATIONS"
const CONFIRMS_USERS_NO_DEVICE =
  "this project confirms its users on its return URL (confirmUsers); the device flow, which has no return URL, is not offered"
const CONFIRMS_USERS_NEEDS_RETURN_URL =
  "this project confirms its users (confirmUsers): name the return URL that receives the confirmation code"
/** How often a replayed callback reads a completion under way in another replica. */
const COMPLETION_POLL_MS = 250

class CompletionTimeout extends Schema.TaggedError<CompletionTimeout>()("CompletionTimeout", {
  message: Schema.String
}) {}

const random = () => randomBytes(32).toString("base64url")
const sha256 = (value: string) => createHash("sha256").update(value).digest("base64url")

/**
 * What the broker answers to a started authorization.
 *
 * @since 0.1.0
 * @category models
 */
export interface StartedAuthorization {
  readonly request: string
  readonly verifier: Redacted.Redacted<string>
  readonly url: string
  /** The user code to show the user, for a device authorization (RFC 8628). */
  readonly deviceCode?: string
  readonly expiresAt: number
  readonly connector: {
    readonly id: string
    readonly uid: string
    readonly type: string
    readonly name: string
    readonly service: string
  }
}

/**
 * Where the user's browser goes next: a redirect, or a page of its own.
 *
 * @since 0.1.0
 * @category models
 */
export type BrowserAnswer =
  | { readonly _tag: "Redirect"; readonly location: string }
  | { readonly _tag: "Page"; readonly status: number; readonly title: string; readonly text: string }

const page = (status: number, title: string, text: string): BrowserAnswer => ({ _tag: "Page", status, title, text })

/** Whether a return URL is on the allow-list: the same origin and path as an entry. */
const allowed = (returnUrl: string, allowList: ReadonlyArray<string>): boolean => {
  const target = new URL(returnUrl)
  return allowList.some((entry) => {
    try {
      const allowedUrl = new URL(entry)
      return allowedUrl.origin === target.origin && allowedUrl.pathname === target.pathname
    } catch {
      return false
    }
  })
}

const withParams = (url: string, params: Record<string, string>): string => {
  const target = new URL(url)
  for (const [key, value] of Object.entries(params)) target.searchParams.set(key, value)
  return target.toString()
}

const bad = (connector: Connector, path: string, message: string) =>
  new InvalidRequest({ connector: connector.uid, status: 400, issues: [{ path, message }] })

const RequestJson = Schema.parseJson(TokenRequest)

const TENANT_ID = "{tenantId}"

const nonEmpty = (text: string | undefined): string | undefined =>
  text === undefined || text.length === 0 ? undefined : text

/** Where a tenant's admin installs a connector: its install endpoint, or its authorization endpoint. */
const installEndpointOf = (connector: Connector): string | undefined =>
  connector.settings.install?.authorizationEndpoint ?? connector.settings.authorizationEndpoint

/** A string or number member of a JSON object at a dotted path (`team.id`), as text. */
const memberAt = (object: { readonly [key: string]: unknown }, path: string): string | undefined => {
  let value: unknown = object
  for (const part of path.split(".")) {
    if (typeof value !== "object" || value === null || Array.isArray(value)) return undefined
    value = (value as { readonly [key: string]: unknown })[part]
  }
  if (typeof value === "number" && Number.isFinite(value)) return String(value)
  return typeof value === "string" && value.length > 0 ? value : undefined
}

const make = Effect.gen(function* () {
  const store = yield* Store
  const tokens = yield* Tokens
  const devices = yield* DeviceAuthorizations
  const publicUrl = yield* PublicUrl
  const http = yield* Effect.context<HttpClient.HttpClient>()
  const callbackUrl = `${publicUrl}${routes.callback.path({})}`
  // Callbacks' completions run here, not in the browser's request: they end with the broker, not with the browser.
  const completions = yield* FiberSet.make<BrowserAnswer>()
  // The outcome of each completion under way in this process, for the replayed callbacks that wait for it.
  const inFlight = new Map<string, Deferred.Deferred<BrowserAnswer>>()

  const maxPending = yield* Config.integer(MAX_PENDING_VARIABLE).pipe(
    Config.validate({ message: "Expected a positive integer", validation: (n) => n > 0 }),
    Config.withDefault(DEFAULT_MAX_PENDING_AUTHORIZATIONS)
  )

  /** Refuses a new request while the project has `maxPending` open ones, until the first of them expires. */
  const checkPendingCap = (caller: Caller, connector: Connector) =>
    Effect.gen(function* () {
      const now = yield* Clock.currentTimeMillis
      const open = yield* store.countOpenAuthorizations(caller.projectId, now)
      if (open.count < maxPending) return
      return yield* new RateLimited({
        connector: connector.uid,
        retryAfterMs: Math.max(1_000, open.firstExpiry - now),
        detail: `the project has ${maxPending} authorization requests open (${MAX_PENDING_VARIABLE}); retry once one ends or expires`
      })
    })

  const storeFailure = (error: { readonly message: string }) =>
    Effect.zipRight(
      Effect.logError("store failure", error.message),
      Effect.fail(new UnknownConnectError({ status: 500, code: "internal_error", detail: "see the broker's log" }))
    )

  const describeConnector = (connector: Connector) => ({
    id: connector.id,
    uid: connector.uid,
    type: connector.type,
    name: connector.name,
    service: connector.service
  })

  const create = (
    caller: Caller,
    connector: Connector,
    request: TokenRequest,
    options: {
      readonly returnUrl?: string | undefined
      readonly prompt?: string | undefined
      readonly expiresInMs?: number | undefined
      /** An installation's: for no installation yet, for a tenant's whole. */
      readonly install?: { readonly tenantHint: string | undefined } | undefined
    }
  ) =>
    Effect.gen(function* () {
      yield* checkPendingCap(caller, connector)
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
        request: yield* Schema.encode(RequestJson)(request).pipe(Effect.orDie),
        returnUrl: options.returnUrl,
        prompt: options.prompt,
        expiresAt: now + Math.min(options.expiresInMs ?? DEFAULT_EXPIRES_IN_MS, MAX_EXPIRES_IN_MS)
      })
      return { record, verifier }
    })

  const startUrl = (record: AuthorizationRequestRecord) =>
    `${publicUrl}${routes.authorizationStart.path({ request: record.id })}`

  /** The answer to a started request: its link, and the verifier its starter checks its status with. */
  const answerOf = (
    connector: Connector,
    created: { readonly record: AuthorizationRequestRecord; readonly verifier: string }
  ): StartedAuthorization => ({
    request: created.record.id,
    verifier: Redacted.make(created.verifier),
    url: startUrl(created.record),
    expiresAt: created.record.expiresAt,
    connector: describeConnector(connector)
  })

  /** `POST /v1/connect/authorize/{connector}`. */
  const start = (
    caller: Caller,
    connector: Connector,
    body: AuthorizationRequest
  ): Effect.Effect<StartedAuthorization, ConnectError> =>
    Effect.gen(function* () {
      if (body.subject.type !== "user") {
        return yield* bad(connector, "subject.type", "only a user subject authorizes a connector")
      }
      const confirmsUsers = yield* store.findProjectConfirmsUsers(caller.projectId)
      if (confirmsUsers && body.deviceCode === true) {
        return yield* bad(connector, "deviceCode", CONFIRMS_USERS_NO_DEVICE)
      }
      // The device flow (RFC 8628): see DeviceAuthorizations.
      if (body.deviceCode === true) {
        yield* checkPendingCap(caller, connector)
        return { ...(yield* devices.start(caller, connector, body)), connector: describeConnector(connector) }
      }
      if (connector.settings.authorizationEndpoint === undefined) {
        return yield* bad(connector, "connector", `connector "${connector.uid}" declares no authorizationEndpoint`)
      }
      if (body.webhook !== undefined) {
        return yield* bad(connector, "webhook", "this broker does not call webhooks; poll the request's status instead")
      }
      if (body.returnUrl !== undefined) {
        const allowList = yield* store.findProjectReturnUrls(caller.projectId)
        if (!allowed(body.returnUrl, allowList)) {
          return yield* bad(connector, "returnUrl", "not on the project's allow-list of return URLs (returnUrls)")
        }
      } else if (confirmsUsers) {
        return yield* bad(connector, "returnUrl", CONFIRMS_USERS_NEEDS_RETURN_URL)
      }
      const { returnUrl: _r, webhook: _w, deviceCode: _d, expiresInMs, prompt, ...request } = body
      return answerOf(
        connector,
        yield* create(caller, connector, request, { returnUrl: body.returnUrl, prompt, expiresInMs })
      )
    }).pipe(Effect.catchTag("StoreError", storeFailure))

  /**
   * The link for a token request that found no grant (or installation): an
   * open request for the same thing, still good for a while, is handed out
   * again; otherwise a new one. (A device authorization, completed with a code
   * and not a link, is never handed out.)
   */
  const linkFor = (
    caller: Caller,
    connector: Connector,
    asked: TokenRequest,
    install: { readonly tenantHint: string | undefined } | undefined
  ) =>
    Effect.gen(function* () {
      const now = yield* Clock.currentTimeMillis
      const open = yield* store.findPendingAuthorization({
        connectorId: connector.id,
        projectId: caller.projectId,
        environment: caller.environment,
        subject: install === undefined ? subjectKey(asked.subject) : INSTALLATION_SUBJECT,
        request: yield* Schema.encode(RequestJson)(asked).pipe(Effect.orDie),
        validUntil: now + DEFAULT_EXPIRES_IN_MS / 2
      })
      if (Option.isSome(open) && open.value.tenantHint === install?.tenantHint) {
        return Option.some(startUrl(open.value))
      }
      const { record } = yield* create(caller, connector, asked, { install })
      return Option.some(startUrl(record))
    }).pipe(Effect.catchAll(() => Effect.succeed(Option.none<string>())))

  /** The URL that starts a user's authorization, for a token request that found no grant. */
  const authorizeUrlFor = (caller: Caller, connector: Connector, request: TokenRequest) => {
    if (connector.settings.authorizationEndpoint === undefined) return Effect.succeed(Option.none<string>())
    const { validityBufferMs: _b, ...asked } = request
    // A project that confirms its users starts its users' requests itself, with a return URL.
    return store.findProjectConfirmsUsers(caller.projectId).pipe(
      Effect.flatMap((confirms) =>
        confirms ? Effect.succeed(Option.none<string>()) : linkFor(caller, connector, asked, undefined)
      ),
      Effect.catchAll(() => Effect.succeed(Option.none<string>()))
    )
  }

  /** Checks a return URL against the project's allow-list. */
  const checkReturnUrl = (caller: Caller, connector: Connector, returnUrl: string | undefined) =>
    Effect.gen(function* () {
      if (returnUrl === undefined) return
      const allowList = yield* store.findProjectReturnUrls(caller.projectId)
      if (!allowed(returnUrl, allowList)) {
        return yield* bad(connector, "returnUrl", "not on the project's allow-list of return URLs (returnUrls)")
      }
    })

  /** `POST /v1/connect/install/{connector}`: a tenant's admin installs the connector. */
  const install = (
    caller: Caller,
    connector: Connector,
    body: InstallationRequest
  ): Effect.Effect<StartedAuthorization, ConnectError> =>
    Effect.gen(function* () {
      const endpoint = installEndpointOf(connector)
      if (endpoint === undefined) {
        return yield* bad(
          connector,
          "connector",
          `connector "${connector.uid}" declares no authorizationEndpoint to install at`
        )
      }
      if (body.deviceCode === true) {
        return yield* bad(
          connector,
          "deviceCode",
          "an installation is made in a browser by the tenant's admin; the device flow is for users"
        )
      }
      if (endpoint.includes(TENANT_ID) && body.tenantId === undefined) {
        return yield* bad(
          connector,
          "tenantId",
          `connector "${connector.uid}" is installed per tenant: name the tenant (tenantId)`
        )
      }
      yield* checkReturnUrl(caller, connector, body.returnUrl)
      const { returnUrl, tenantId, deviceCode: _d, expiresInMs, installationId: _i, ...asked } = body
      return answerOf(
        connector,
        yield* create(
          caller,
          connector,
          { ...asked, subject: { type: "app" } },
          { returnUrl, expiresInMs, install: { tenantHint: tenantId } }
        )
      )
    }).pipe(Effect.catchTag("StoreError", storeFailure))

  /**
   * The URL that installs a connector, for a token request that found no
   * installation: an open request for the same thing is handed out again. A
   * request naming an installation that does not exist yet asks for that
   * tenant.
   */
  const installUrlFor = (caller: Caller, connector: Connector, request: TokenRequest) => {
    const endpoint = installEndpointOf(connector)
    const tenantHint = request.installationId === "*" ? undefined : request.installationId
    if (endpoint === undefined || (endpoint.includes(TENANT_ID) && tenantHint === undefined)) {
      return Effect.succeed(Option.none<string>())
    }
    const asked: TokenRequest = {
      subject: { type: "app" },
      ...(request.scopes === undefined || request.subject.type !== "app" ? {} : { scopes: request.scopes })
    }
    return linkFor(caller, connector, asked, { tenantHint })
  }

  /** `GET /v1/connect/authorize/{request}/start`: on to the provider. */
  const redirect = (requestId: string): Effect.Effect<BrowserAnswer> =>
    Effect.gen(function* () {
      const now = yield* Clock.currentTimeMillis
      const found = yield* store.findAuthorizationRequest({ id: requestId })
      if (Option.isNone(found) || found.value.status !== "pending" || found.value.expiresAt <= now) {
        return page(400, "Link expired", "This authorization link has expired or was already used. Ask for a new one.")
      }
      if (found.value.userCode !== undefined) {
        return page(400, "Not a link", "This authorization is completed with a code at the provider's page, not here.")
      }
      const record = found.value
      const connector = yield* store.findConnector(record.connectorId)
      const isInstall = record.kind === "install"
      const endpoint = Option.flatMap(connector, (c) =>
        Option.fromNullable(isInstall ? installEndpointOf(c) : c.settings.authorizationEndpoint)
      )
      if (Option.isNone(connector) || Option.isNone(endpoint)) {
        return page(400, "Connector unavailable", "The connector of this link no longer exists.")
      }
      const request = yield* Schema.decode(RequestJson)(record.request).pipe(Effect.orDie)
      const url = new URL(endpoint.value.replaceAll(TENANT_ID, encodeURIComponent(record.tenantHint ?? "")))
      const scopes = scopesFor(connector.value, request)
      const params = url.searchParams
      // The connector's own parameters first: the protocol's below take precedence.
      const extra = isInstall
        ? connector.value.settings.install?.authorizationParams
        : connector.value.settings.authorizationParams
      for (const [name, value] of Object.entries(extra ?? {})) params.set(name, value)
      params.set("response_type", "code")
      params.set("client_id", connector.value.clientId)
      params.set("redirect_uri", callbackUrl)
      params.set("state", Redacted.value(record.state))
      params.set("code_challenge", sha256(Redacted.value(record.codeVerifier)))
      params.set("code_challenge_method", "S256")
      if (scopes.length > 0) params.set("scope", scopes.join(" "))
      for (const resource of request.resources ?? []) params.append("resource", resource)
      if (request.authorizationDetails !== undefined && request.authorizationDetails.length > 0) {
        params.set("authorization_details", JSON.stringify(request.authorizationDetails))
      }
      // OpenID providers grant offline_access (a refresh token) only with prompt=consent (OIDC Core 11).
      const prompt = record.prompt ?? (scopes.includes("offline_access") ? "consent" : undefined)
      if (prompt !== undefined) params.set("prompt", prompt)
      return { _tag: "Redirect", location: url.toString() } satisfies BrowserAnswer
    }).pipe(
      Effect.catchAll((error) =>
        Effect.zipRight(
          Effect.logError("authorization redirect failed", error.message),
          Effect.succeed(page(500, "Something went wrong", "The broker could not start this authorization."))
        )
      )
    )

  /** Where the user goes once the request is over: its return URL, or a page. */
  const finished = (
    record: AuthorizationRequestRecord,
    outcome: { readonly error?: string; readonly installationId?: string }
  ): BrowserAnswer => {
    const params: Record<string, string> = {
      request: record.id,
      status: outcome.error === undefined ? "completed" : "failed",
      ...(outcome.error === undefined ? {} : { error: outcome.error }),
      ...(outcome.installationId === undefined ? {} : { installationId: outcome.installationId })
    }
    if (record.returnUrl !== undefined) return { _tag: "Redirect", location: withParams(record.returnUrl, params) }
    return outcome.error === undefined
      ? page(200, "Connected", "Your account is connected. You can close this window.")
      : page(400, "Not connected", `The authorization did not complete (${outcome.error}). You can close this window.`)
  }

  /**
   * The answer to a callback for a request already taken: its outcome, once it
   * has one (a replayed or concurrent callback changes nothing). A completion
   * under way in this process is awaited; one in another replica is read
   * again until it ends, within the completion's own deadline.
   */
  const outcomeOf = (record: AuthorizationRequestRecord): Effect.Effect<BrowserAnswer, StoreError> =>
    Effect.gen(function* () {
      const running = inFlight.get(record.id)
      if (running !== undefined) return yield* Deferred.await(running)
      const read = store.findAuthorizationRequest({ id: record.id }).pipe(Effect.map(Option.getOrElse(() => record)))
      const untilSettled: Effect.Effect<AuthorizationRequestRecord, StoreError> = Effect.flatMap(read, (current) =>
        current.status === "completing"
          ? Effect.zipRight(Effect.sleep(COMPLETION_POLL_MS), untilSettled)
          : Effect.succeed(current)
      )
      const settled = yield* untilSettled.pipe(
        Effect.timeoutTo({
          duration: COMPLETION_DEADLINE_MS,
          onTimeout: () => record,
          onSuccess: (current) => current
        })
      )
      switch (settled.status) {
        case "completed":
          return finished(settled, settled.kind === "install" ? { installationId: settled.installationId } : {})
        case "failed":
          return finished(settled, { error: settled.error ?? "failed" })
        case "awaiting_confirmation":
          // Never the code again: whoever replays the state (it is in the link's first redirect) must not get it.
          return settled.returnUrl === undefined
            ? page(200, "Connected", "Return to the application to finish connecting your account.")
            : {
                _tag: "Redirect",
                location: withParams(settled.returnUrl, { request: settled.id, status: "awaiting_confirmation" })
              }
        case "completing":
          return page(503, "Still connecting", "The authorization is still being completed. Reload this page.")
        default:
          return page(400, "Link expired", "This authorization has expired. Ask for a new one.")
      }
    })

  /**
   * Completes a taken request to the end, whatever the browser does: in a
   * fiber of the service's own (the browser's request only awaits it, so a
   * browser that goes away does not interrupt it), bounded by
   * `COMPLETION_DEADLINE_MS`. Whatever goes wrong, the request ends failed,
   * never half-done.
   */
  const completeTaken = (record: AuthorizationRequestRecord, query: Readonly<Record<string, string | undefined>>) =>
    Effect.gen(function* () {
      const fail = (error: string) =>
        Effect.as(store.finishAuthorizationRequest(record.id, { status: "failed", error }), finished(record, { error }))
      const outcome = yield* Deferred.make<BrowserAnswer>()
      inFlight.set(record.id, outcome)
      const run = complete(record, query, fail).pipe(
        Effect.timeoutFail({
          duration: COMPLETION_DEADLINE_MS,
          onTimeout: () => new CompletionTimeout({ message: `no outcome within ${COMPLETION_DEADLINE_MS} ms` })
        }),
        Effect.catchAll((error) =>
          Effect.zipRight(
            Effect.logError(`authorization ${record.id} failed`, error.message),
            Effect.as(
              store.finishAuthorizationRequest(record.id, {
                status: "failed",
                error: error._tag === "CompletionTimeout" ? "timeout" : "internal_error"
              }),
              page(500, "Something went wrong", "The broker could not complete this authorization.")
            )
          )
        ),
        Effect.catchAll(() =>
          Effect.succeed(page(500, "Something went wrong", "The broker could not complete this authorization."))
        ),
        Effect.tap((answer) => Deferred.succeed(outcome, answer)),
        Effect.onInterrupt(() => Deferred.interrupt(outcome)),
        Effect.ensuring(Effect.sync(() => inFlight.delete(record.id)))
      )
      yield* FiberSet.run(completions, run)
      return yield* Deferred.await(outcome)
    })

  /** `GET /v1/connect/callback`: the provider sends the user back. */
  const callback = (query: Readonly<Record<string, string | undefined>>): Effect.Effect<BrowserAnswer> =>
    Effect.gen(function* () {
      const state = query.state
      if (state === undefined || state.length === 0) {
        return page(
          400,
          "Invalid request",
          "The provider's answer has no state: this link was not made by this broker."
        )
      }
      const found = yield* store.findAuthorizationRequest({ state: Redacted.make(state) })
      if (Option.isNone(found)) {
        return page(400, "Invalid request", "This authorization is unknown to the broker: the state does not match.")
      }
      const record = found.value
      // Single use: of replayed or concurrent callbacks, one proceeds; the others answer its outcome.
      const claimed = yield* store.claimAuthorizationRequest(record.id, yield* Clock.currentTimeMillis)
      if (!claimed) return yield* outcomeOf(record)
      return yield* completeTaken(record, query)
    }).pipe(
      Effect.catchAll((error) =>
        Effect.zipRight(
          Effect.logError("authorization callback failed", error.message),
          Effect.succeed(page(500, "Something went wrong", "The broker could not complete this authorization."))
        )
      )
    )

  /**
   * Exchanges a code at a token endpoint, once: a code is good once, so after
   * an answer lost in transit a retry could only be refused. A refusal ends
   * the request failed: its answer for the browser is on the left.
   */
  const exchange = (
    connector: Connector,
    tokenEndpoint: string,
    record: AuthorizationRequestRecord,
    code: string,
    fail: (error: string) => Effect.Effect<BrowserAnswer, StoreError>
  ): Effect.Effect<Either.Either<ProviderToken, BrowserAnswer>, StoreError> =>
    Effect.flatMap(Schema.decode(RequestJson)(record.request).pipe(Effect.orDie), (request) =>
      requestToken(
        {
          tokenEndpoint,
          clientId: connector.clientId,
          clientSecret: connector.clientSecret,
          authMethod: connector.settings.tokenEndpointAuthMethod,
          defaultLifetimeSeconds: connector.settings.defaultTokenLifetimeSeconds
        },
        {
          type: "authorization_code",
          code: Redacted.make(code),
          redirectUri: callbackUrl,
          codeVerifier: record.codeVerifier,
          // The token is for the resources the user consented to (RFC 8707 section 2.2).
          ...(request.resources === undefined ? {} : { resource: request.resources })
        }
      ).pipe(
        Effect.provide(ProviderClientConfig.layer({ retries: 0 })),
        Effect.provide(http),
        Effect.map(Either.right),
        Effect.catchAll((error) =>
          Effect.zipRight(
            Effect.logWarning(`request ${record.id}: the provider refused the code (${error.kind})`),
            Effect.map(fail(error.kind === "transient" ? "provider_unavailable" : "provider_refused"), Either.left)
          )
        )
      )
    )

  /**
   * Completes an installation: the tenant's admin consented. The provider may
   * send a code (Slack, GitHub with user authorization on install), exchanged
   * for the installation's own grant, or only the tenant (Entra admin consent).
   * The tenant id comes from where the connector says, or from the request.
   */
  const completeInstallation = (
    record: AuthorizationRequestRecord,
    connector: Connector,
    query: Readonly<Record<string, string | undefined>>,
    code: string | undefined,
    fail: (error: string) => Effect.Effect<BrowserAnswer, StoreError>
  ) =>
    Effect.gen(function* () {
      const source = connector.settings.install?.tenantIdFrom
      const fromCallback = source !== undefined && "callback" in source ? nonEmpty(query[source.callback]) : undefined
      if (fromCallback !== undefined && !isTenantId(fromCallback)) return yield* fail("invalid_response")
      const known = fromCallback ?? record.tenantHint
      let token: ProviderToken | undefined
      if (code !== undefined) {
        const template = connector.settings.install?.tokenEndpoint
        const tokenEndpoint =
          template === undefined || (template.includes(TENANT_ID) && known === undefined)
            ? connector.settings.tokenEndpoint
            : tokenEndpointFor(connector.settings, { tokenEndpoint: template, tenantId: known })
        const exchanged = yield* exchange(connector, tokenEndpoint, record, code, fail)
        if (Either.isLeft(exchanged)) return exchanged.left
        token = exchanged.right
      } else if (fromCallback === undefined) {
        // Neither a code nor the tenant the connector reads from the redirect.
        return yield* fail("invalid_response")
      }
      const fromToken =
        source !== undefined && "tokenResponse" in source && token !== undefined
          ? memberAt(token.fields ?? {}, source.tokenResponse)
          : undefined
      const tenantId = fromCallback ?? fromToken ?? record.tenantHint
      if (tenantId === undefined) {
        yield* Effect.logWarning(
          `installation ${record.id}: no tenant id in the provider's answer; set installations.tenantIdFrom for connector "${connector.uid}"`
        )
        return yield* fail("no_tenant")
      }
      // It becomes an installation id that callers name in requests and paths.
      if (!isTenantId(tenantId)) {
        yield* Effect.logWarning(`installation ${record.id}: the provider's tenant id is not 1 to 256 plain characters`)
        return yield* fail("invalid_response")
      }
      // The admin consented for another tenant than the one asked for.
      if (record.tenantHint !== undefined && tenantId !== record.tenantHint) return yield* fail("tenant_mismatch")
      // Without a code, nothing the provider vouched for names the tenant: the provider is asked first.
      if (token === undefined) {
        const request = yield* Schema.decode(RequestJson)(record.request).pipe(Effect.orDie)
        const verified = yield* verifyTenant(connector, tenantId, request).pipe(Effect.provide(http))
        if (Either.isLeft(verified)) return yield* fail(verified.left)
      }
      yield* tokens.recordInstallation(connector, { id: tenantId, tenantId, token })
      yield* store.finishAuthorizationRequest(record.id, { status: "completed", installationId: tenantId })
      return finished(record, { installationId: tenantId })
    })

  /** Exchanges the code of a taken request and keeps what it gives. */
  const complete = (
    record: AuthorizationRequestRecord,
    query: Readonly<Record<string, string | undefined>>,
    fail: (error: string) => Effect.Effect<BrowserAnswer, StoreError>
  ) =>
    Effect.gen(function* () {
      if (query.error !== undefined)
        return yield* fail(query.error === "access_denied" ? "access_denied" : "provider_error")
      const code = query.code === undefined || query.code.length === 0 ? undefined : query.code
      const connector = yield* store.findConnector(record.connectorId)
      if (record.kind === "install" && Option.isSome(connector)) {
        return yield* completeInstallation(record, connector.value, query, code, fail)
      }
      if (code === undefined) return yield* fail("invalid_response")
      if (Option.isNone(connector)) return yield* fail("connector_removed")
      const request = yield* Schema.decode(RequestJson)(record.request).pipe(Effect.orDie)
      const exchanged = yield* exchange(
        connector.value,
        // The installation's endpoint, as its refreshes will use (a tenant's, say).
        tokenEndpointFor(
          connector.value.settings,
          (yield* store.listInstallations(record.connectorId)).find((i) => i.id === record.installationId)
        ),
        record,
        code,
        fail
      )
      if (Either.isLeft(exchanged)) return exchanged.left
      if (yield* store.findProjectConfirmsUsers(record.projectId)) {
        return yield* awaitConfirmation(record, exchanged.right, fail)
      }
      yield* tokens.recordAuthorization(
        { projectId: record.projectId, environment: record.environment },
        connector.value,
        request,
        record.installationId,
        exchanged.right
      )
      yield* store.finishAuthorizationRequest(record.id, { status: "completed" })
      return finished(record, {})
    })

  /** A request of the caller's, found by its id and the verifier its start answered. */
  const ownRequest = (caller: Caller, requestId: string, verifier: Redacted.Redacted<string>) =>
    Effect.gen(function* () {
      const found = yield* store.findAuthorizationRequest({ id: requestId })
      if (
        Option.isNone(found) ||
        found.value.projectId !== caller.projectId ||
        found.value.environment !== caller.environment ||
        found.value.verifierHash !== sha256(Redacted.value(verifier))
      ) {
        return yield* new InvalidRequest({
          status: 400,
          issues: [{ path: "verifier", message: "no authorization request matches this id and verifier" }]
        })
      }
      return found.value
    })

  /**
   * Parks an exchanged grant until the application confirms its user: sealed
   * in the request, with the hash of a one-time code that only the return URL
   * receives.
   */
  const awaitConfirmation = (
    record: AuthorizationRequestRecord,
    token: ProviderToken,
    fail: (error: string) => Effect.Effect<BrowserAnswer, StoreError>
  ) =>
    Effect.gen(function* () {
      if (record.returnUrl === undefined) return yield* fail("confirmation_unavailable")
      const code = random()
      yield* store.awaitConfirmation(record.id, { grant: yield* park(token), confirmationHash: sha256(code) })
      return {
        _tag: "Redirect",
        location: withParams(record.returnUrl, { request: record.id, status: "awaiting_confirmation", code })
      } satisfies BrowserAnswer
    })

  /**
   * `POST /v1/connect/authorize/{request}/confirm`: the application confirms
   * that the browser that came back with `code` is its user, the request's
   * subject; the grant that waited is kept, once.
   */
  const confirm = (
    caller: Caller,
    requestId: string,
    verifier: Redacted.Redacted<string>,
    code: Redacted.Redacted<string>
  ) =>
    Effect.gen(function* () {
      const record = yield* ownRequest(caller, requestId, verifier)
      const now = yield* Clock.currentTimeMillis
      const parked = yield* store.claimConfirmation(record.id, sha256(Redacted.value(code)), now)
      if (Option.isNone(parked)) {
        return yield* new InvalidRequest({
          status: 400,
          issues: [
            {
              path: "code",
              message: "no authorization request awaits confirmation with this code (wrong, already used, or expired)"
            }
          ]
        })
      }
      const connector = yield* store.findConnector(record.connectorId)
      const keep = Option.match(connector, {
        onNone: () => store.finishAuthorizationRequest(record.id, { status: "failed", error: "connector_removed" }),
        onSome: (connector) =>
          Effect.gen(function* () {
            const request = yield* Schema.decode(RequestJson)(record.request).pipe(Effect.orDie)
            const token = yield* unpark(parked.value)
            yield* tokens.recordAuthorization(
              { projectId: record.projectId, environment: record.environment },
              connector,
              request,
              record.installationId,
              token
            )
            yield* store.finishAuthorizationRequest(record.id, { status: "completed" })
          })
      })
      // Taken is kept or failed, never left half-done.
      yield* keep.pipe(
        Effect.catchAll((error) =>
          Effect.zipRight(
            Effect.logError(`authorization ${record.id}: the confirmed grant was not kept`, error.message),
            store.finishAuthorizationRequest(record.id, { status: "failed", error: "internal_error" })
          )
        ),
        Effect.uninterruptible
      )
      const after = yield* store.findAuthorizationRequest({ id: record.id })
      const final = Option.getOrElse(after, () => record)
      return { request: final.id, status: final.status, ...(final.error === undefined ? {} : { error: final.error }) }
    }).pipe(Effect.catchTag("StoreError", storeFailure))

  /** The status of a request, for the caller that started it (who holds its verifier). */
  const status = (caller: Caller, requestId: string, verifier: Redacted.Redacted<string>) =>
    Effect.gen(function* () {
      const found = yield* ownRequest(caller, requestId, verifier)
      const now = yield* Clock.currentTimeMillis
      // A device authorization whose poll is due is polled first.
      const record = yield* devices.refresh(found)
      // A completion takes seconds; one still under way long after expiry was cut
      // short (the broker stopped mid-exchange) and will not finish.
      const abandoned = record.status === "completing" && record.expiresAt + ABANDONED_AFTER_MS <= now
      const lapsed =
        (record.status === "pending" || record.status === "awaiting_confirmation") && record.expiresAt <= now
      const state = lapsed ? "expired" : abandoned ? "failed" : record.status
      const error = abandoned ? "interrupted" : record.error
      return {
        request: record.id,
        status: state,
        ...(error === undefined ? {} : { error }),
        ...(record.kind === "install" && record.status === "completed" ? { installationId: record.installationId } : {})
      }
    }).pipe(Effect.catchTag("StoreError", storeFailure))

  return { start, install, authorizeUrlFor, installUrlFor, redirect, callback, status, confirm }
})

/**
 * The authorization service.
 *
 * @since 0.1.0
 * @category tags
 */
export class Authorizations extends Context.Tag("effect-connect/broker/Authorizations")<
  Authorizations,
  Effect.Effect.Success<typeof make>
>() {
  /**
   * Over the store and the token service, with the broker's public URL; the
   * cap on open requests from `CONNECT_MAX_PENDING_AUTHORIZATIONS`.
   */
  static readonly layer: Layer.Layer<
    Authorizations,
    ConfigError.ConfigError,
    Store | Tokens | PublicUrl | HttpClient.HttpClient
  > = Layer.scoped(Authorizations, make).pipe(Layer.provide(DeviceAuthorizations.layer))
}
