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
import { Context, Effect, Layer, type Option, type Redacted, type Scope } from "effect"
import type { ConnectError } from "effect-connect/ConnectError"
import type { RevocationSummary } from "effect-connect/Revocation"
import type { Subject } from "effect-connect/Subject"
import type { TokenRequest, TokenResponse } from "effect-connect/Token"
import { Events } from "./Events.js"
import { recoverRefreshes } from "./grants/recovery.js"
import { HotCache } from "./HotCache.js"
import { recordAuthorization, recordInstallation } from "./internal/grantRecords.js"
import { remembering } from "./internal/hotCache/remembering.js"
import { installationOf } from "./internal/installationResolution.js"
import { issue } from "./internal/issuance.js"
import {
  removeInstallation,
  revoke,
  revokeConnector,
  revokeGrant,
  revokeIssuedToken,
  type SingleRevocation
} from "./internal/revocation.js"
import * as SingleFlight from "./internal/singleFlight.js"
import { importTokens } from "./internal/tokenImport.js"
import type { TokensContext } from "./internal/tokensContext.js"
import { ProviderClient, type ProviderToken } from "./ProviderClient.js"
import { type Caller, type Connector, newId, Store, type StoreError } from "./Store.js"

/**
 * How close to expiry a stored token may come and still be handed out: see `grants/reuse.ts`.
 *
 * @since 0.1.0
 * @category constants
 */
export { isReusable, REUSE_BUFFER_MS } from "./grants/reuse.js"

/**
 * How tokens and grants are keyed: a subject's identity (`subjectKey`), the
 * subject of an installation's own grant (`INSTALLATION_SUBJECT`), a grant's
 * identity within its project (`grantSubject`), and the scopes a request asks
 * for (`scopesFor`). See `internal/tokenKeys.ts`.
 *
 * @since 0.1.0
 * @category utils
 */
export { grantSubject, INSTALLATION_SUBJECT, scopesFor, subjectKey } from "./internal/tokenKeys.js"

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

/**
 * What revoking one grant or one token did.
 *
 * @since 0.2.0
 * @category models
 */
export type { SingleRevocation } from "./internal/revocation.js"

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
  /** Revokes a grant (and the tokens issued from it) for an operator; none when the connector has no such grant. */
  readonly revokeGrant: (
    connector: Connector,
    grantId: string
  ) => Effect.Effect<Option.Option<SingleRevocation>, ConnectError>
  /** Revokes one active issued token for an operator; none when the connector has no such token. */
  readonly revokeToken: (
    connector: Connector,
    tokenId: string
  ) => Effect.Effect<Option.Option<SingleRevocation>, ConnectError>
  /** Revokes everything a connector holds, before it is removed. */
  readonly revokeConnector: (
    connector: Connector
  ) => Effect.Effect<Omit<InstallationRemoval, "installationId">, ConnectError>
}

const make: Effect.Effect<TokensService, never, Store | HotCache | ProviderClient | Events | Scope.Scope> = Effect.gen(
  function* () {
    const scope = yield* Effect.scope
    const store = yield* Store
    const context: TokensContext = {
      store,
      configuration: remembering(store, yield* HotCache),
      provider: yield* ProviderClient,
      events: yield* Events,
      // This process, as the holder of leases on grants and token requests.
      owner: newId("brk"),
      singleFlight: SingleFlight.make(scope)
    }
    // Refreshes a stopped broker left unfinished are taken up again in the background.
    yield* Effect.forkIn(recoverRefreshes(context), scope)

    return {
      issue: (caller, connector, request) => issue(context, caller, connector, request),
      revoke: (caller, connector, params) => revoke(context, caller, connector, params),
      importTokens: (caller, connector, tokens) => importTokens(context, caller, connector, tokens),
      installationOf: (connector, requested) => installationOf(store, connector, requested),
      recordAuthorization: (caller, connector, request, installationId, token) =>
        recordAuthorization(store, caller, connector, request, installationId, token),
      recordInstallation: (connector, installation) =>
        Effect.tap(recordInstallation(store, connector, installation), () =>
          context.events.record({
            kind: "installation.added",
            connector: connector.uid,
            installationId: installation.id,
            data: {
              source: "install",
              ...(installation.tenantId === undefined ? {} : { tenantId: installation.tenantId })
            }
          })
        ),
      removeInstallation: (connector, installationId) => removeInstallation(context, connector, installationId),
      revokeConnector: (connector) => revokeConnector(context, connector),
      revokeGrant: (connector, grantId) => revokeGrant(context, connector, grantId),
      revokeToken: (connector, tokenId) => revokeIssuedToken(context, connector, tokenId)
    }
  }
)

/**
 * The token service.
 *
 * @since 0.1.0
 * @category tags
 */
export class Tokens extends Context.Tag("effect-connect/broker/Tokens")<Tokens, TokensService>() {
  /** Issues over the `Store`, asking providers through the `ProviderClient`, recording `Events`. */
  static readonly layer: Layer.Layer<Tokens, never, Store | HotCache | ProviderClient | Events> = Layer.scoped(
    Tokens,
    make
  )
}
