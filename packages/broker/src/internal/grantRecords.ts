/**
 * Keeping what a completed authorization or installation gave: its grant, and
 * the access token it answers with, together.
 *
 * @since 0.2.0
 */
import { Effect } from "effect"
import type { TokenRequest } from "effect-connect/Token"
import type { ProviderToken } from "../ProviderClient.js"
import type { Caller, Connector, StoreService } from "../Store.js"
import { grantSubject, INSTALLATION_SUBJECT, requestKeyOf, scopesFor, subjectKey } from "./tokenKeys.js"

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
 * Keeps what a completed authorization gave: the user's grant (refresh token)
 * and the access token, as the answer to the request that was authorized,
 * together. Gives the grant's id.
 *
 * @since 0.2.0
 * @category records
 */
export const recordAuthorization = (
  store: StoreService,
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
 *
 * @since 0.2.0
 * @category records
 */
export const recordInstallation = (
  store: StoreService,
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
