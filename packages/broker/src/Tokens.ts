/**
 * Issuing, revoking and importing tokens: the broker's side of
 * `POST /v1/connect/token/{connector}`, `DELETE …/tokens` and `…/import`.
 *
 * - A stored access token is handed out again until it comes within the
 *   server-side buffer of expiry; only then is the provider asked.
 * - `app` subjects get the client credentials grant; `user` subjects the
 *   refresh token grant on their stored grant.
 * - Concurrent requests that need the same token make one provider call: a
 *   single flight in the process, and a lease in the store across broker
 *   processes (`grants/refreshToken.ts`, `grants/direct.ts`); no lock or
 *   transaction is held while the provider is called.
 * - The caller waits at most its connector's provider timeout; the shared work
 *   runs detached from it to its own hard limit, so a late answer is saved and
 *   a client that hangs up cannot lose a rotated refresh token. See
 *   `docs/reliability.md`.
 *
 * @since 0.1.0
 */
import { createHash } from "node:crypto"
import { Clock, Context, Effect, Layer, Option, Redacted, type Scope } from "effect"
import {
  type ConnectError,
  ConnectorInstallationRequired,
  InvalidRequest,
  NoValidToken,
  UserAuthorizationRequired
} from "effect-connect/ConnectError"
import { canonicalJson } from "effect-connect/Json"
import * as RequestKey from "effect-connect/RequestKey"
import type { RevocationSummary } from "effect-connect/Revocation"
import type { Subject } from "effect-connect/Subject"
import type { TokenRequest, TokenResponse } from "effect-connect/Token"
import { tokenEndpointFor } from "./ConfigFile.js"
import { clientCredentialsGrant } from "./grants/clientCredentials.js"
import { limitsOf, providerTimedOut } from "./grants/common.js"
import { directGrant } from "./grants/direct.js"
import { jwtBearerGrant } from "./grants/jwtBearer.js"
import { recoverRefreshes } from "./grants/recovery.js"
import { refreshGrant } from "./grants/refreshToken.js"
import { REUSE_BUFFER_MS } from "./grants/reuse.js"
import { tokenExchangeGrant } from "./grants/tokenExchange.js"
import { internalError, STORE_FAILED } from "./internal/errors.js"
import * as SingleFlight from "./internal/singleFlight.js"
import { type Grant, ProviderClient, type ProviderToken } from "./ProviderClient.js"
import {
  type Caller,
  type Connector,
  type Installation,
  newId,
  Store,
  type Grant as StoredGrant,
  type StoreError
} from "./Store.js"

/**
 * How close to expiry a stored token may come and still be handed out: see `grants/reuse.ts`.
 *
 * @since 0.1.0
 * @category constants
 */
export { isReusable, REUSE_BUFFER_MS } from "./grants/reuse.js"

/**
 * The identity of a subject as stored: plain text a database column can hold
 * (JSON escapes any control character), with secrets only as digests.
 *
 * @since 0.1.0
 * @category utils
 */
export const subjectKey = (subject: Subject): string => {
  switch (subject.type) {
    case "app":
      return "app"
    case "user":
      return `user:${JSON.stringify([subject.issuer ?? null, subject.id])}`
    case "jwt-bearer":
      return `jwt-bearer:${RequestKey.digest(canonicalJson(subject))}`
    case "token":
      return `token:${RequestKey.digest(Redacted.value(subject.token))}`
  }
}

/**
 * The subject of an installation's own grant (a Slack bot token, say): the
 * tenant's, whichever project asks.
 *
 * @since 0.1.0
 * @category constants
 */
export const INSTALLATION_SUBJECT = "installation"

/**
 * The identity of a grant: the subject within the caller's project. User ids
 * are the application's own, so two projects may both have a user "u1" who are
 * different people; a grant made for one project is never used for another.
 *
 * @since 0.1.0
 * @category utils
 */
export const grantSubject = (projectId: string, subject: Subject): string =>
  `${JSON.stringify(projectId)}:${subjectKey(subject)}`

/** The request a stored token answers: its subject, installation, scopes and targets. */
const requestKeyOf = (request: TokenRequest, installationId: string, scopes: ReadonlyArray<string>): string => {
  const key = RequestKey.make("broker", "connector", {
    subject: request.subject,
    installationId: installationId === "" ? undefined : installationId,
    scopes,
    resources: request.resources,
    audience: request.audience,
    authorizationDetails: request.authorizationDetails
  })
  return createHash("sha256")
    .update(key?.id ?? canonicalJson(request))
    .digest("base64url")
}

/**
 * The scopes a request asks the provider for: its own, or for `["*"]` (or none)
 * the connector's defaults for the subject type.
 *
 * @since 0.1.0
 * @category utils
 */
export const scopesFor = (connector: Connector, request: TokenRequest): ReadonlyArray<string> => {
  const requested = request.scopes ?? ["*"]
  if (requested.length === 1 && requested[0] === "*") {
    return (
      (request.subject.type === "app" ? connector.settings.defaultScopes.app : connector.settings.defaultScopes.user) ??
      []
    )
  }
  return requested
}

/** How an installation is stored: its id, `"*"` for cross-installation, `""` for none. */
const installationKey = (installation: Option.Option<Installation>, requested: string | undefined): string =>
  Option.match(installation, { onNone: () => (requested === "*" ? "*" : ""), onSome: (i) => i.id })

/**
 * What removing an installation did: the tokens and grants it found, and how
 * the provider answered their revocation (each distinct token once).
 *
 * @since 0.1.0
 * @category models
 */
export interface InstallationRemoval {
  readonly installationId: string
  readonly tokensFound: number
  readonly grantsFound: number
  readonly providerRevoked: number
  readonly providerSkipped: number
  readonly providerFailed: number
}

/** The access token a grant keeps when it has no refresh token to renew it. */
const heldAccessToken = (token: ProviderToken) =>
  token.refreshToken === undefined
    ? {
        accessToken: token.accessToken,
        // No `expires_in`: the token does not expire (a Slack bot token without rotation).
        accessExpiresAt: token.expiresInSent === false ? undefined : token.expiresAt
      }
    : {}

/**
 * The token service: issuing, revoking and importing tokens, and keeping what
 * authorizations and installations gave.
 *
 * @since 0.1.0
 * @category models
 */
export interface TokensService {
  /** A token for a request: a stored one while reusable, else from the provider by the subject's grant. */
  readonly issue: (
    caller: Caller,
    connector: Connector,
    request: TokenRequest
  ) => Effect.Effect<TokenResponse, ConnectError>
  /** Revokes a project's issued tokens (of a subject, or an installation), at the provider too when it can. */
  readonly revoke: (
    caller: Caller,
    connector: Connector,
    params: { readonly subject?: Subject | undefined; readonly installationId?: string | undefined }
  ) => Effect.Effect<RevocationSummary, ConnectError>
  /** Keeps tokens obtained elsewhere (with their refresh tokens as grants); says how many. */
  readonly importTokens: (
    caller: Caller,
    connector: Connector,
    tokens: ReadonlyArray<{
      readonly subject: Subject
      readonly accessToken: Redacted.Redacted<string>
      readonly expiresAt: number
      readonly refreshToken?: Redacted.Redacted<string> | undefined
      readonly refreshTokenExpiresAt?: number | undefined
      readonly environment: string
      readonly installationId?: string | undefined
    }>
  ) => Effect.Effect<number, ConnectError>
  /** The installation a request resolves to, as stored (`""` for none). */
  readonly installationOf: (
    connector: Connector,
    requested: string | undefined
  ) => Effect.Effect<string, ConnectError | StoreError>
  /** Keeps a completed authorization's grant and access token together; gives the grant's id. */
  readonly recordAuthorization: (
    caller: Caller,
    connector: Connector,
    request: TokenRequest,
    installationId: string,
    token: ProviderToken
  ) => Effect.Effect<string, StoreError>
  /** Keeps a completed installation and its own grant together. */
  readonly recordInstallation: (
    connector: Connector,
    installation: {
      readonly id: string
      readonly tenantId: string | undefined
      readonly token: ProviderToken | undefined
    }
  ) => Effect.Effect<void, StoreError>
  /** Removes an installation, revoking what it holds at the provider; none when there is no such installation. */
  readonly removeInstallation: (
    connector: Connector,
    installationId: string
  ) => Effect.Effect<Option.Option<InstallationRemoval>, ConnectError>
  /** Revokes everything a connector holds, before it is removed. */
  readonly revokeConnector: (
    connector: Connector
  ) => Effect.Effect<Omit<InstallationRemoval, "installationId">, ConnectError>
}

const make: Effect.Effect<TokensService, never, Store | ProviderClient | Scope.Scope> = Effect.gen(function* () {
  const store = yield* Store
  const scope = yield* Effect.scope
  const singleFlight = SingleFlight.make(scope)
  const provider = yield* ProviderClient
  const { revokeToken } = provider
  // This process, as the holder of leases on grants and token requests.
  const owner = newId("brk")
  // Refreshes a stopped broker left unfinished are taken up again in the background.
  yield* Effect.forkIn(recoverRefreshes({ store, provider, owner }), scope)

  /**
   * The shared work of a key, run once in this process to its own hard limit;
   * the caller waits at most its connector's provider timeout for it.
   */
  const shared = <A>(connector: Connector, key: string, work: Effect.Effect<A, ConnectError>) => {
    const limits = limitsOf(connector.settings)
    return singleFlight(key, work, {
      hardLimit: limits.hardMs,
      onTimeout: () => providerTimedOut(connector)
    }).pipe(Effect.timeoutFail({ duration: limits.callerMs, onTimeout: () => providerTimedOut(connector) }))
  }

  const storeFailure = (connector: Connector) => (error: StoreError) =>
    Effect.zipRight(
      Effect.logError("store failure", error.message),
      Effect.fail(internalError({ connector: connector.uid, detail: STORE_FAILED }))
    )

  /** The installation a request is for, or the error that says which is needed. */
  const resolveInstallation = (connector: Connector, requested: string | undefined) =>
    Effect.gen(function* () {
      const installations = yield* store.listInstallations(connector.id)
      if (requested === "*") {
        if (!connector.settings.crossInstallation) {
          return yield* new InvalidRequest({
            connector: connector.uid,
            status: 400,
            issues: [
              { path: "installationId", message: `connector "${connector.uid}" offers no cross-installation tokens` }
            ]
          })
        }
        return Option.none<Installation>()
      }
      if (requested !== undefined) {
        const found = installations.find((installation) => installation.id === requested)
        if (found === undefined) {
          return yield* new ConnectorInstallationRequired({
            connector: connector.uid,
            detail: `no installation "${requested}"`
          })
        }
        return Option.some(found)
      }
      const fallback = installations.find((installation) => installation.isDefault)
      if (fallback === undefined && connector.settings.installationsRequired) {
        return yield* new ConnectorInstallationRequired({ connector: connector.uid })
      }
      return Option.fromNullable(fallback)
    })

  const endpointOf = (connector: Connector, installation: Option.Option<Installation>) => {
    return {
      // The tenant id goes into the URL percent-encoded, as one path segment.
      tokenEndpoint: tokenEndpointFor(connector.settings, Option.getOrUndefined(installation)),
      clientId: connector.clientId,
      clientSecret: connector.clientSecret,
      authMethod: connector.settings.tokenEndpointAuthMethod,
      defaultLifetimeSeconds: connector.settings.defaultTokenLifetimeSeconds
    }
  }

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

  const issue = (
    caller: Caller,
    connector: Connector,
    request: TokenRequest
  ): Effect.Effect<TokenResponse, ConnectError> =>
    Effect.gen(function* () {
      const installation = yield* resolveInstallation(connector, request.installationId)
      const installationId = installationKey(installation, request.installationId)
      const subjectType = request.subject.type
      const scopes = scopesFor(connector, request)
      const requestKey = requestKeyOf(request, installationId, scopes)
      const subject = subjectKey(request.subject)
      const reusable = (now: number) =>
        store.findReusableToken({
          connectorId: connector.id,
          projectId: caller.projectId,
          environment: caller.environment,
          requestKey,
          now,
          bufferMs: REUSE_BUFFER_MS
        })
      const stored = yield* reusable(yield* Clock.currentTimeMillis)
      if (Option.isSome(stored)) return answer(connector, installation, stored.value)
      const issuedAnswer = (token: Parameters<typeof answer>[2]) => answer(connector, installation, token)
      const reuseNow = Effect.flatMap(Clock.currentTimeMillis, (now) =>
        Effect.map(reusable(now), Option.map(issuedAnswer))
      )

      const record = (token: Pick<ProviderToken, "accessToken" | "expiresAt">, grantId: string | undefined) =>
        store.insertIssuedToken({
          connectorId: connector.id,
          projectId: caller.projectId,
          environment: caller.environment,
          subject,
          installationId,
          requestKey,
          grantId,
          accessToken: token.accessToken,
          expiresAt: token.expiresAt
        })
      const endpoint = endpointOf(connector, installation)
      const targets = {
        ...(scopes.length === 0 ? {} : { scope: scopes }),
        ...(request.resources === undefined ? {} : { resource: request.resources }),
        ...(request.audience === undefined ? {} : { audience: request.audience })
      }

      /** One provider call per request (across replicas) for grants that need no stored state. */
      const direct = (grant: Effect.Effect<Grant, ConnectError>) => {
        const key = `direct\n${caller.projectId}\n${caller.environment}\n${connector.id}\n${requestKey}`
        return shared(
          connector,
          key,
          directGrant(
            {
              store,
              provider,
              owner,
              connector,
              endpoint,
              subject: request.subject,
              leaseKey: key,
              reuse: reuseNow,
              issue: (token) => Effect.map(record(token, undefined), issuedAnswer)
            },
            grant
          ).pipe(Effect.catchTag("StoreError", storeFailure(connector)))
        )
      }

      /**
       * A token from a stored grant (a user's, or an installation's own): the
       * refresh grant, or the access token held by a grant that has no refresh
       * token. `gone` says what the caller must do when the grant is no more.
       */
      const viaGrant = (grant: StoredGrant, gone: () => ConnectError): Effect.Effect<TokenResponse, ConnectError> =>
        Effect.gen(function* () {
          if (grant.status !== "active") return yield* gone()
          if (grant.refreshToken === undefined) {
            const now = yield* Clock.currentTimeMillis
            if (grant.accessToken === undefined || (grant.accessExpiresAt ?? Number.POSITIVE_INFINITY) <= now) {
              return yield* new NoValidToken({
                connector: connector.uid,
                detail: "the token has expired and there is no refresh token to renew it"
              })
            }
            const held = yield* record(
              {
                accessToken: grant.accessToken,
                // A token that does not expire is handed out for the connector's default lifetime at a time.
                expiresAt: grant.accessExpiresAt ?? now + connector.settings.defaultTokenLifetimeSeconds * 1000
              },
              grant.id
            )
            return answer(connector, installation, held)
          }
          const grantId = grant.id
          return yield* shared(
            connector,
            `grant\n${grantId}\n${caller.projectId}\n${caller.environment}\n${requestKey}`,
            refreshGrant({ store, provider, owner, connector, endpoint, subject: request.subject, targets }, grantId, {
              reuse: reuseNow,
              // The grant is saved by then: the access token is recorded after it.
              issue: (token) => Effect.map(record(token, grantId), issuedAnswer),
              gone
            }).pipe(Effect.catchTag("StoreError", storeFailure(connector)))
          )
        }).pipe(Effect.catchTag("StoreError", storeFailure(connector)))

      if (subjectType === "app") {
        // An installation made through the install flow may hold its own grant.
        if (Option.isSome(installation)) {
          const own = yield* store.findGrant(connector.id, installation.value.id, INSTALLATION_SUBJECT)
          if (Option.isSome(own)) {
            const id = installation.value.id
            return yield* viaGrant(
              own.value,
              () =>
                new ConnectorInstallationRequired({
                  connector: connector.uid,
                  detail: `the provider no longer honours installation "${id}"; install the connector again`
                })
            )
          }
        }
        return yield* direct(Effect.succeed(clientCredentialsGrant(request, targets)))
      }

      if (request.subject.type === "jwt-bearer") {
        return yield* direct(jwtBearerGrant(connector, request.subject, endpoint.tokenEndpoint, targets))
      }

      if (request.subject.type === "token") {
        return yield* direct(Effect.succeed(tokenExchangeGrant(request.subject, targets)))
      }

      if (subjectType === "user") {
        const grant = yield* store.findGrant(
          connector.id,
          installationId,
          grantSubject(caller.projectId, request.subject)
        )
        if (Option.isNone(grant)) return yield* new UserAuthorizationRequired({ connector: connector.uid })
        return yield* viaGrant(grant.value, () => new UserAuthorizationRequired({ connector: connector.uid }))
      }

      return yield* new InvalidRequest({
        connector: connector.uid,
        status: 400,
        issues: [{ path: "subject.type", message: "Expected app, user, jwt-bearer or token" }]
      })
    }).pipe(Effect.catchTag("StoreError", storeFailure(connector)))

  /** Revokes one token at the connector's revocation endpoint, and says how that went (as a summary counts it). */
  const revokeAtProvider = (
    connector: Connector,
    token: Redacted.Redacted<string>,
    hint: "access_token" | "refresh_token"
  ): Effect.Effect<"providerRevoked" | "providerSkipped" | "providerFailed"> => {
    const endpoint = connector.settings.revocationEndpoint
    if (endpoint === undefined) return Effect.succeed("providerSkipped")
    return revokeToken(
      {
        revocationEndpoint: endpoint,
        clientId: connector.clientId,
        clientSecret: connector.clientSecret,
        authMethod: connector.settings.tokenEndpointAuthMethod
      },
      token,
      hint
    ).pipe(Effect.match({ onSuccess: () => "providerRevoked" as const, onFailure: () => "providerFailed" as const }))
  }

  const revoke = (
    caller: Caller,
    connector: Connector,
    params: { readonly subject?: Subject | undefined; readonly installationId?: string | undefined }
  ): Effect.Effect<RevocationSummary, ConnectError> =>
    Effect.gen(function* () {
      const tokens = yield* store.listActiveTokens({
        connectorId: connector.id,
        projectId: caller.projectId,
        subject: params.subject === undefined ? undefined : subjectKey(params.subject),
        installationId: params.installationId
      })
      const summary = {
        tokensFound: tokens.length,
        deleted: 0,
        providerRevoked: 0,
        providerSkipped: 0,
        providerFailed: 0
      }
      const endpoint = connector.settings.revocationEndpoint
      // Grants with no refresh token hold the one token they can give.
      const grants = new Map<string, Option.Option<StoredGrant>>()
      const grantOf = (grantId: string | undefined) =>
        grantId === undefined
          ? Effect.succeed(Option.none<StoredGrant>())
          : Effect.suspend(() => {
              const known = grants.get(grantId)
              if (known !== undefined) return Effect.succeed(known)
              return Effect.tap(store.findGrantById(grantId), (grant) => Effect.sync(() => grants.set(grantId, grant)))
            })
      const spent = new Set<string>()
      for (const token of tokens) {
        const grant = yield* grantOf(token.grantId)
        const held = Option.isSome(grant) && grant.value.refreshToken === undefined
        if (held && grant.value.subject === INSTALLATION_SUBJECT) {
          // Revoking an installation's only token at the provider would uninstall
          // it for every project: that is what removing the installation does.
          summary.providerSkipped++
          continue
        }
        if (held) spent.add(grant.value.id)
        summary[yield* revokeAtProvider(connector, token.accessToken, "access_token")]++
      }
      // Whatever the provider said, these tokens are not handed out again; a
      // grant whose only token was revoked can give nothing more.
      yield* store.transaction(
        Effect.zipRight(
          store.markTokens(
            tokens.map((token) => token.id),
            endpoint === undefined ? "deleted" : "revoked"
          ),
          Effect.forEach(spent, (grantId) => store.updateGrant(grantId, { status: "revoked" }), { discard: true })
        )
      )
      summary.deleted = tokens.length
      return summary
    }).pipe(Effect.catchTag("StoreError", storeFailure(connector)))

  const importTokens: TokensService["importTokens"] = (caller, connector, tokens) =>
    store
      .transaction(
        Effect.forEach(tokens, (token) =>
          Effect.gen(function* () {
            // The installation as a token request would resolve it (the default one when
            // none is named), so that the requests this import is for find it.
            const installationId = installationKey(
              yield* resolveInstallation(connector, token.installationId),
              token.installationId
            )
            const subject = subjectKey(token.subject)
            // A user's token always gets a grant row, with or without a refresh
            // token: once the token expires, that tells "no refresh token" (no_token)
            // from "never authorized" (user_authorization_required).
            const grantId =
              token.refreshToken === undefined && token.subject.type !== "user"
                ? undefined
                : yield* store.putGrant({
                    connectorId: connector.id,
                    installationId,
                    subject: grantSubject(caller.projectId, token.subject),
                    refreshToken: token.refreshToken,
                    refreshExpiresAt: token.refreshTokenExpiresAt
                  })
            const scopes =
              (token.subject.type === "app"
                ? connector.settings.defaultScopes.app
                : connector.settings.defaultScopes.user) ?? []
            yield* store.insertIssuedToken({
              connectorId: connector.id,
              projectId: caller.projectId,
              environment: token.environment,
              subject,
              installationId,
              requestKey: requestKeyOf({ subject: token.subject }, installationId, scopes),
              grantId,
              accessToken: token.accessToken,
              expiresAt: token.expiresAt
            })
          })
        )
      )
      .pipe(Effect.as(tokens.length), Effect.catchTag("StoreError", storeFailure(connector)))

  /** The installation a request resolves to, as stored (`""` for none). */
  const installationOf = (connector: Connector, requested: string | undefined) =>
    Effect.map(resolveInstallation(connector, requested), (installation) => installationKey(installation, requested))

  /**
   * Keeps what a completed authorization gave: the user's grant (refresh token)
   * and the access token, as the answer to the request that was authorized,
   * together.
   */
  const recordAuthorization = (
    caller: Caller,
    connector: Connector,
    request: TokenRequest,
    installationId: string,
    token: ProviderToken
  ) =>
    store.transaction(
      Effect.gen(function* () {
        const subject = subjectKey(request.subject)
        const grantId = yield* store.putGrant({
          connectorId: connector.id,
          installationId,
          subject: grantSubject(caller.projectId, request.subject),
          refreshToken: token.refreshToken,
          refreshExpiresAt: token.refreshTokenExpiresAt,
          scope: token.scope,
          // A repeat consent often brings no new refresh token: keep the one held.
          keepRefreshToken: true,
          ...heldAccessToken(token)
        })
        yield* store.insertIssuedToken({
          connectorId: connector.id,
          projectId: caller.projectId,
          environment: caller.environment,
          subject,
          installationId,
          requestKey: requestKeyOf(request, installationId, scopesFor(connector, request)),
          grantId,
          accessToken: token.accessToken,
          expiresAt: token.expiresAt
        })
        return grantId
      })
    )

  /**
   * Keeps a completed installation: the installation (a tenant installed again
   * is updated), and its own grant when the provider gave a token, together.
   */
  const recordInstallation = (
    connector: Connector,
    installation: {
      readonly id: string
      readonly tenantId: string | undefined
      readonly token: ProviderToken | undefined
    }
  ) =>
    store.transaction(
      Effect.gen(function* () {
        yield* store.putInstallation({
          connectorId: connector.id,
          id: installation.id,
          tenantId: installation.tenantId,
          tokenEndpoint: connector.settings.install?.tokenEndpoint,
          defaultIfNone: connector.settings.installationsRequired
        })
        const token = installation.token
        if (token !== undefined) {
          yield* store.putGrant({
            connectorId: connector.id,
            installationId: installation.id,
            subject: INSTALLATION_SUBJECT,
            refreshToken: token.refreshToken,
            refreshExpiresAt: token.refreshTokenExpiresAt,
            scope: token.scope,
            ...heldAccessToken(token)
          })
        }
      })
    )

  /**
   * Removes an installation: every token handed out within it is revoked at the
   * provider, then its grants (its own and its users') are revoked there too,
   * and the installation and its grants are deleted.
   */
  /**
   * Revokes at the provider every token issued within an installation (or the
   * whole connector), to any project, and the tokens its grants hold; each
   * distinct token once. The caller deletes what it removes.
   */
  const revokeWithin = (connector: Connector, installationId: string | undefined) =>
    Effect.gen(function* () {
      const tokens = yield* store.listActiveTokens({ connectorId: connector.id, installationId })
      const grants = yield* store.listGrants(connector.id, installationId)
      const summary = {
        tokensFound: tokens.length,
        grantsFound: grants.length,
        providerRevoked: 0,
        providerSkipped: 0,
        providerFailed: 0
      }
      const endpoint = connector.settings.revocationEndpoint
      // One token may have been handed to several projects: revoke each value once.
      const values = new Map<string, { token: Redacted.Redacted<string>; hint: "access_token" | "refresh_token" }>()
      for (const token of tokens)
        values.set(Redacted.value(token.accessToken), { token: token.accessToken, hint: "access_token" })
      for (const grant of grants) {
        if (grant.accessToken !== undefined)
          values.set(Redacted.value(grant.accessToken), { token: grant.accessToken, hint: "access_token" })
        if (grant.refreshToken !== undefined)
          values.set(Redacted.value(grant.refreshToken), { token: grant.refreshToken, hint: "refresh_token" })
      }
      for (const { token, hint } of values.values()) summary[yield* revokeAtProvider(connector, token, hint)]++
      yield* store.markTokens(
        tokens.map((token) => token.id),
        endpoint === undefined ? "deleted" : "revoked"
      )
      return summary
    })

  const removeInstallation = (
    connector: Connector,
    installationId: string
  ): Effect.Effect<Option.Option<InstallationRemoval>, ConnectError> =>
    Effect.gen(function* () {
      const installations = yield* store.listInstallations(connector.id)
      if (!installations.some((i) => i.id === installationId)) return Option.none()
      const summary = yield* revokeWithin(connector, installationId)
      yield* store.removeInstallation(connector.id, installationId)
      return Option.some({ installationId, ...summary })
    }).pipe(Effect.catchTag("StoreError", storeFailure(connector)))

  /**
   * Revokes everything a connector holds before it is removed: every issued
   * token, of every project and installation, and every grant's tokens
   * (users' refresh tokens, installations' own).
   */
  const revokeConnector = (
    connector: Connector
  ): Effect.Effect<Omit<InstallationRemoval, "installationId">, ConnectError> =>
    revokeWithin(connector, undefined).pipe(Effect.catchTag("StoreError", storeFailure(connector)))

  return {
    issue,
    revoke,
    importTokens,
    installationOf,
    recordAuthorization,
    recordInstallation,
    removeInstallation,
    revokeConnector
  }
})

/**
 * The token service.
 *
 * @since 0.1.0
 * @category tags
 */
export class Tokens extends Context.Tag("effect-connect/broker/Tokens")<Tokens, TokensService>() {
  /** Issues over the `Store`, asking providers through the `ProviderClient`. */
  static readonly layer: Layer.Layer<Tokens, never, Store | ProviderClient> = Layer.scoped(Tokens, make)
}
