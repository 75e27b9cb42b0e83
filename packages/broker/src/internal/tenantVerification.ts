/**
 * Checks a tenant that only the install callback named. An admin-consent
 * redirect (Entra's) carries the tenant and the state but no code, so nothing
 * the provider signed says that tenant consented: anyone holding the install
 * link can call the callback with a tenant of their choice. Before such a
 * tenant becomes an installation, the broker asks that tenant's token endpoint
 * for a client-credentials token; a tenant that did not consent (or does not
 * exist) refuses it.
 */
import { Effect, Either } from "effect"
import type { TokenRequest } from "effect-connect/Token"
import { tokenEndpointFor } from "../ConfigFile.js"
import { appInstallationGrant } from "../grants/githubApp.js"
import type { ProviderClientService } from "../ProviderClient.js"
import type { Connector } from "../Store.js"
import { scopesFor } from "../Tokens.js"

const TENANT_ID = "{tenantId}"

/** Why a tenant could not be verified: the request's error code. */
export type TenantRefusal = "unverified_tenant" | "provider_unavailable"

/** A tenant refused, logged by the kind of failure. */
const refused = (connector: Connector) => (error: { readonly kind: string }) =>
  Effect.as(
    Effect.logWarning(
      `connector "${connector.uid}": the tenant of an install callback was not verified (${error.kind})`
    ),
    Either.left<TenantRefusal>(error.kind === "transient" ? "provider_unavailable" : "unverified_tenant")
  )

/** A GitHub App's installation is verified by getting its token with the app's JWT. */
const verifyAppInstallation = (
  provider: ProviderClientService,
  connector: Connector,
  app: NonNullable<Connector["settings"]["appTokens"]>,
  tenantId: string
): Effect.Effect<Either.Either<void, TenantRefusal>> =>
  appInstallationGrant(connector, app.appId).pipe(
    Effect.mapError(() => ({ kind: "invalid_key" })),
    Effect.flatMap((grant) =>
      provider.requestToken(
        {
          tokenEndpoint: tokenEndpointFor(
            { tokenEndpoint: app.tokenEndpoint },
            { tokenEndpoint: app.tokenEndpoint, tenantId }
          ),
          clientId: connector.clientId,
          clientSecret: connector.clientSecret,
          authMethod: connector.settings.tokenEndpointAuthMethod,
          defaultLifetimeSeconds: connector.settings.defaultTokenLifetimeSeconds
        },
        grant
      )
    ),
    Effect.as(Either.right<void>(undefined)),
    Effect.catchAll(refused(connector))
  )

/**
 * Verifies `tenantId` for `connector` with a client-credentials token at the
 * tenant's own token endpoint (`installations.tokenEndpoint` with
 * `{tenantId}`). Without such an endpoint there is nothing to ask, and the
 * tenant stays unverified.
 */
export const verifyTenant = (
  provider: ProviderClientService,
  connector: Connector,
  tenantId: string,
  request: TokenRequest
): Effect.Effect<Either.Either<void, TenantRefusal>> => {
  const app = connector.settings.appTokens
  if (app !== undefined) return verifyAppInstallation(provider, connector, app, tenantId)
  const template = connector.settings.install?.tokenEndpoint
  if (template === undefined || !template.includes(TENANT_ID)) {
    return Effect.as(
      Effect.logWarning(
        `connector "${connector.uid}" reads the tenant from the install callback without a code, but its installations.tokenEndpoint has no {tenantId} to verify the tenant at`
      ),
      Either.left("unverified_tenant" as const)
    )
  }
  const scopes = scopesFor(connector, request)
  return provider
    .requestToken(
      {
        tokenEndpoint: tokenEndpointFor(connector.settings, { tokenEndpoint: template, tenantId }),
        clientId: connector.clientId,
        clientSecret: connector.clientSecret,
        authMethod: connector.settings.tokenEndpointAuthMethod,
        defaultLifetimeSeconds: connector.settings.defaultTokenLifetimeSeconds
      },
      { type: "client_credentials", ...(scopes.length === 0 ? {} : { scope: scopes }) }
    )
    .pipe(Effect.as(Either.right<void>(undefined)), Effect.catchAll(refused(connector)))
}
