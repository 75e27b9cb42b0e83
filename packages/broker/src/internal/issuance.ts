/**
 * Issuing a token for a request: a stored one while reusable, else from the
 * provider by the subject's grant (client credentials or an installation's own
 * grant for `app`, the stored grant for `user`, JWT bearer, token exchange).
 *
 * @since 0.2.0
 */
import { Clock, Effect, Option, type Redacted } from "effect"
import {
  type ConnectError,
  ConnectorInstallationRequired,
  InvalidRequest,
  NoValidToken,
  UserAuthorizationRequired
} from "effect-connect/ConnectError"
import type { TokenRequest, TokenResponse } from "effect-connect/Token"
import { refreshEndpointFor, tokenEndpointFor } from "../ConfigFile.js"
import { clientCredentialsGrant } from "../grants/clientCredentials.js"
import { directGrant } from "../grants/direct.js"
import { appInstallationGrant } from "../grants/githubApp.js"
import { jwtBearerGrant } from "../grants/jwtBearer.js"
import { refreshGrant } from "../grants/refreshToken.js"
import { REUSE_BUFFER_MS } from "../grants/reuse.js"
import { tokenExchangeGrant } from "../grants/tokenExchange.js"
import * as Metrics from "../Metrics.js"
import type { Grant, ProviderEndpoint, ProviderToken } from "../ProviderClient.js"
import type { Caller, Connector, Installation, Grant as StoredGrant, StoreError } from "../Store.js"
import { installationKey, resolveInstallation } from "./installationResolution.js"
import { grantSubject, INSTALLATION_SUBJECT, requestKeyOf, scopesFor, subjectKey } from "./tokenKeys.js"
import { shared, storeFailure, type TokensContext } from "./tokensContext.js"

/** Where and as whom the provider is asked for a connector's token. */
const endpointOf = (connector: Connector, installation: Option.Option<Installation>): ProviderEndpoint => ({
  // The tenant id goes into the URL percent-encoded, as one path segment.
  tokenEndpoint: tokenEndpointFor(connector.settings, Option.getOrUndefined(installation)),
  ...refreshEndpointFor(connector.settings, Option.getOrUndefined(installation)),
  clientId: connector.clientId,
  clientSecret: connector.clientSecret,
  authMethod: connector.settings.tokenEndpointAuthMethod,
  defaultLifetimeSeconds: connector.settings.defaultTokenLifetimeSeconds
})

/** What a request asks the provider for beyond the grant: its scopes, resources and audience. */
const targetsOf = (scopes: ReadonlyArray<string>, request: TokenRequest) => ({
  ...(scopes.length === 0 ? {} : { scope: scopes }),
  ...(request.resources === undefined ? {} : { resource: request.resources }),
  ...(request.audience === undefined ? {} : { audience: request.audience })
})

/** The answer to a token request: the token, and the connector and installation it is for. */
const answer = (
  connector: Connector,
  installation: Option.Option<Installation>,
  token: { readonly id: string; readonly accessToken: Redacted.Redacted<string>; readonly expiresAt: number }
): TokenResponse => ({
  token: token.accessToken,
  tokenId: token.id,
  expiresAt: token.expiresAt,
  connector: { id: connector.id, uid: connector.uid, type: connector.type },
  name: connector.name,
  ...Option.match(installation, {
    onNone: () => ({}),
    onSome: (i) => ({ installationId: i.id, ...(i.tenantId === undefined ? {} : { tenantId: i.tenantId }) })
  })
})

/**
 * How the answers obtained from the provider were obtained (by which grant).
 * Callers that share one provider call (a single flight) share its answer
 * object, so each of them is told `provider`; any other answer was stored.
 */
const fromProviderBy = new WeakMap<TokenResponse, string>()

/** Marks an answer as obtained from the provider by `grant`. */
const minted =
  (grant: string) =>
  (answer: TokenResponse): TokenResponse => {
    fromProviderBy.set(answer, grant)
    return answer
  }

/** The grant a subject's tokens come by, as the `token.issued` event names it. */
export const grantKindOf = (subject: TokenRequest["subject"]): string => {
  switch (subject.type) {
    case "app":
      return "client_credentials"
    case "jwt-bearer":
      return "jwt_bearer"
    case "token":
      return "token_exchange"
    default:
      return "refresh_token"
  }
}

/** Records the `token.issued` event of an answer handed out. */
const recordIssued = (context: TokensContext, caller: Caller, request: TokenRequest, answer: TokenResponse) => {
  const grant = fromProviderBy.get(answer)
  return context.events.record({
    kind: "token.issued",
    connector: answer.connector.uid,
    projectId: caller.projectId,
    environment: caller.environment,
    subject: subjectKey(request.subject),
    installationId: answer.installationId,
    data: {
      source: grant === undefined ? "stored" : "provider",
      grant: grant ?? grantKindOf(request.subject),
      expiresAt: answer.expiresAt
    }
  })
}

/** One token request on its way to the provider: what every grant's path reads. */
interface Issuance {
  readonly context: TokensContext
  readonly caller: Caller
  readonly connector: Connector
  readonly request: TokenRequest
  readonly installation: Option.Option<Installation>
  readonly installationId: string
  readonly requestKey: string
  readonly endpoint: ProviderEndpoint
  readonly targets: ReturnType<typeof targetsOf>
  /** A stored token for the request while reusable, as the answer. */
  readonly reuse: Effect.Effect<Option.Option<TokenResponse>, StoreError>
  /** Records a token handed out for the request (of a grant, if any), as the answer. */
  readonly record: (
    token: Pick<ProviderToken, "accessToken" | "expiresAt">,
    grantId: string | undefined
  ) => Effect.Effect<TokenResponse, StoreError>
}

/** The stored token for a request, while it is reusable at `now`. */
const reusableAt = (context: TokensContext, caller: Caller, connector: Connector, requestKey: string, now: number) =>
  context.store.findReusableToken({
    connectorId: connector.id,
    projectId: caller.projectId,
    environment: caller.environment,
    requestKey,
    now,
    bufferMs: REUSE_BUFFER_MS
  })

/** One provider call per request (across replicas) for grants that need no stored state. */
const direct = (issuance: Issuance, grant: Effect.Effect<Grant, ConnectError>) => {
  const { caller, connector, context } = issuance
  const key = `direct\n${caller.projectId}\n${caller.environment}\n${connector.id}\n${issuance.requestKey}`
  return shared(
    context,
    connector,
    key,
    directGrant(
      {
        store: context.store,
        provider: context.provider,
        owner: context.owner,
        connector,
        endpoint: issuance.endpoint,
        subject: issuance.request.subject,
        leaseKey: key,
        reuse: issuance.reuse,
        issue: (token) => Effect.map(issuance.record(token, undefined), minted(grantKindOf(issuance.request.subject)))
      },
      grant
    ).pipe(Effect.catchTag("StoreError", storeFailure(connector)))
  )
}

/** The access token held by a grant that has no refresh token, while it is valid. */
const heldToken = (issuance: Issuance, grant: StoredGrant) =>
  Effect.gen(function* () {
    const { connector } = issuance
    const now = yield* Clock.currentTimeMillis
    if (grant.accessToken === undefined || (grant.accessExpiresAt ?? Number.POSITIVE_INFINITY) <= now) {
      return yield* new NoValidToken({
        connector: connector.uid,
        detail: "the token has expired and there is no refresh token to renew it"
      })
    }
    return yield* issuance.record(
      {
        accessToken: grant.accessToken,
        // A token that does not expire is handed out for the connector's default lifetime at a time.
        expiresAt: grant.accessExpiresAt ?? now + connector.settings.defaultTokenLifetimeSeconds * 1000
      },
      grant.id
    )
  })

/**
 * A token from a stored grant (a user's, or an installation's own): the
 * refresh grant, or the access token held by a grant that has no refresh
 * token. `gone` says what the caller must do when the grant is no more.
 */
const viaGrant = (
  issuance: Issuance,
  grant: StoredGrant,
  gone: () => ConnectError
): Effect.Effect<TokenResponse, ConnectError> =>
  Effect.gen(function* () {
    if (grant.status !== "active") return yield* gone()
    if (grant.refreshToken === undefined) return yield* heldToken(issuance, grant)
    const { caller, connector, context } = issuance
    const grantId = grant.id
    const { store, provider, owner, events } = context
    const { endpoint, targets } = issuance
    return yield* shared(
      context,
      connector,
      `grant\n${grantId}\n${caller.projectId}\n${caller.environment}\n${issuance.requestKey}`,
      refreshGrant(
        { store, provider, owner, events, connector, endpoint, subject: issuance.request.subject, targets },
        grantId,
        {
          reuse: issuance.reuse,
          // The grant is saved by then: the access token is recorded after it.
          issue: (token) => Effect.map(issuance.record(token, grantId), minted("refresh_token")),
          gone
        },
        grant
      ).pipe(Effect.catchTag("StoreError", storeFailure(connector)))
    )
  }).pipe(Effect.catchTag("StoreError", storeFailure(issuance.connector)))

/** An `app` token: from the installation's own grant when it holds one, else by client credentials. */
const appToken = (issuance: Issuance) =>
  Effect.gen(function* () {
    const { connector, installation } = issuance
    // An installation made through the install flow may hold its own grant.
    if (Option.isSome(installation)) {
      const own = yield* issuance.context.store.findGrant(connector.id, installation.value.id, INSTALLATION_SUBJECT)
      if (Option.isSome(own)) {
        const id = installation.value.id
        return yield* viaGrant(
          issuance,
          own.value,
          () =>
            new ConnectorInstallationRequired({
              connector: connector.uid,
              detail: `the provider no longer honours installation "${id}"; install the connector again`
            })
        )
      }
    }
    const app = connector.settings.appTokens
    if (app !== undefined && Option.isSome(installation)) {
      // A GitHub App's installation: its token comes from the app's JWT, at the installation's endpoint.
      const tokenEndpoint = tokenEndpointFor(
        { tokenEndpoint: app.tokenEndpoint },
        {
          id: installation.value.id,
          tokenEndpoint: app.tokenEndpoint,
          tenantId: installation.value.tenantId ?? installation.value.id
        }
      )
      const endpoint = { ...issuance.endpoint, tokenEndpoint }
      return yield* direct({ ...issuance, endpoint }, appInstallationGrant(connector, app.appId))
    }
    return yield* direct(issuance, Effect.succeed(clientCredentialsGrant(issuance.request, issuance.targets)))
  })

/** A `user` token: by the user's stored grant, which an authorization must have given. */
const userToken = (issuance: Issuance) =>
  Effect.gen(function* () {
    const { caller, connector, request } = issuance
    const grant = yield* issuance.context.store.findGrant(
      connector.id,
      issuance.installationId,
      grantSubject(caller.projectId, request.subject)
    )
    if (Option.isNone(grant)) return yield* new UserAuthorizationRequired({ connector: connector.uid })
    return yield* viaGrant(issuance, grant.value, () => new UserAuthorizationRequired({ connector: connector.uid }))
  })

/** A token from the provider, by the grant of the request's subject. */
const fromProvider = (issuance: Issuance) => {
  const { connector, request } = issuance
  const subject = request.subject
  switch (subject.type) {
    case "app":
      return appToken(issuance)
    case "jwt-bearer":
      return direct(issuance, jwtBearerGrant(connector, subject, issuance.endpoint.tokenEndpoint, issuance.targets))
    case "token":
      return direct(issuance, Effect.succeed(tokenExchangeGrant(subject, issuance.targets)))
    case "user":
      return userToken(issuance)
    default:
      return Effect.fail(
        new InvalidRequest({
          connector: connector.uid,
          status: 400,
          issues: [{ path: "subject.type", message: "Expected app, user, jwt-bearer or token" }]
        })
      )
  }
}

/**
 * A token for a request: a stored one while reusable, else from the provider
 * by the subject's grant.
 *
 * @since 0.2.0
 * @category issuing
 */
export const issue = (
  context: TokensContext,
  caller: Caller,
  connector: Connector,
  request: TokenRequest
): Effect.Effect<TokenResponse, ConnectError> =>
  Effect.gen(function* () {
    const installation = yield* resolveInstallation(context.configuration, connector, request.installationId)
    const installationId = installationKey(installation, request.installationId)
    const scopes = scopesFor(connector, request)
    const requestKey = requestKeyOf(request, installationId, scopes)
    const subject = subjectKey(request.subject)
    const reusable = (now: number) => reusableAt(context, caller, connector, requestKey, now)
    const stored = yield* reusable(yield* Clock.currentTimeMillis)
    if (Option.isSome(stored)) {
      yield* Metrics.count(Metrics.tokenReuses, { connector: connector.uid })
      const reused = answer(connector, installation, stored.value)
      yield* recordIssued(context, caller, request, reused)
      return reused
    }
    const issuedAnswer = (token: Parameters<typeof answer>[2]) => answer(connector, installation, token)
    const record: Issuance["record"] = (token, grantId) =>
      Effect.map(
        context.store.insertIssuedToken({
          connectorId: connector.id,
          projectId: caller.projectId,
          environment: caller.environment,
          subject,
          installationId,
          requestKey,
          grantId,
          accessToken: token.accessToken,
          expiresAt: token.expiresAt
        }),
        issuedAnswer
      )
    const reuse = Effect.flatMap(Clock.currentTimeMillis, (now) => Effect.map(reusable(now), Option.map(issuedAnswer)))
    const endpoint = endpointOf(connector, installation)
    const targets = targetsOf(scopes, request)
    const issuance = {
      context,
      caller,
      connector,
      request,
      installation,
      installationId,
      requestKey,
      endpoint,
      targets,
      reuse,
      record
    }
    return yield* Effect.tap(fromProvider(issuance), (issued) => recordIssued(context, caller, request, issued))
  }).pipe(Effect.catchTag("StoreError", storeFailure(connector)))
