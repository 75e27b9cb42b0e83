import { Effect, Either, Option } from "effect"
import type { InstallationRequest } from "effect-connect/Authorization"
import type { ConnectError } from "effect-connect/ConnectError"
import type { TokenRequest } from "effect-connect/Token"
import type { StartedAuthorization } from "../Authorizations.js"
import * as Pages from "../Pages.js"
import type { ProviderToken } from "../ProviderClient.js"
import type { AuthorizationRequestRecord, Caller, Connector } from "../Store.js"
import { finishAuthorization } from "./authorizationEvents.js"
import { checkReturnUrl } from "./authorizationPolicy.js"
import { decodeRequest } from "./authorizationRequest.js"
import { exchange, type Fail } from "./codeExchange.js"
import { answerOf, create, linkFor } from "./codeFlow.js"
import { badField, storeFailure } from "./errors.js"
import type { FlowContext } from "./flowContext.js"
import {
  installEndpointOf,
  installTokenEndpoint,
  TENANT_ID,
  tenantFromCallback,
  tenantFromToken
} from "./installTenant.js"
import { isTenantId } from "./limits.js"
import { verifyTenant } from "./tenantVerification.js"

/** `POST /v1/connect/install/{connector}`: a tenant's admin installs the connector. */
export const install = (
  context: FlowContext,
  caller: Caller,
  connector: Connector,
  body: InstallationRequest
): Effect.Effect<StartedAuthorization, ConnectError> =>
  Effect.gen(function* () {
    const endpoint = installEndpointOf(connector)
    if (endpoint === undefined) {
      return yield* badField(
        connector,
        "connector",
        `connector "${connector.uid}" declares no authorizationEndpoint to install at`
      )
    }
    if (body.deviceCode === true) {
      return yield* badField(
        connector,
        "deviceCode",
        "an installation is made in a browser by the tenant's admin; the device flow is for users"
      )
    }
    if (endpoint.includes(TENANT_ID) && body.tenantId === undefined) {
      return yield* badField(
        connector,
        "tenantId",
        `connector "${connector.uid}" is installed per tenant: name the tenant (tenantId)`
      )
    }
    yield* checkReturnUrl(context.store, caller, connector, body.returnUrl)
    const { returnUrl, tenantId, deviceCode: _d, expiresInMs, installationId: _i, ...asked } = body
    const created = yield* create(
      context,
      caller,
      connector,
      { ...asked, subject: { type: "app" } },
      { returnUrl, expiresInMs, install: { tenantHint: tenantId } }
    )
    return answerOf(context, connector, created)
  }).pipe(Effect.catchTag("StoreError", storeFailure))

/**
 * The URL that installs a connector, for a token request that found no
 * installation: an open request for the same thing is handed out again. A
 * request naming an installation that does not exist yet asks for that
 * tenant.
 */
export const installUrlFor = (context: FlowContext, caller: Caller, connector: Connector, request: TokenRequest) => {
  const endpoint = installEndpointOf(connector)
  const tenantHint = request.installationId === "*" ? undefined : request.installationId
  if (endpoint === undefined || (endpoint.includes(TENANT_ID) && tenantHint === undefined)) {
    return Effect.succeed(Option.none<string>())
  }
  const asked: TokenRequest = {
    subject: { type: "app" },
    ...(request.scopes === undefined || request.subject.type !== "app" ? {} : { scopes: request.scopes })
  }
  return linkFor(context, caller, connector, asked, { tenantHint })
}

/** Checks the tenant an installation ends with, and keeps the installation: the request ends completed. */
const keepInstallation = (
  context: FlowContext,
  record: AuthorizationRequestRecord,
  connector: Connector,
  tenantId: string | undefined,
  token: ProviderToken | undefined,
  fail: Fail
) =>
  Effect.gen(function* () {
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
      const request = yield* decodeRequest(record)
      const verified = yield* verifyTenant(context.provider, connector, tenantId, request)
      if (Either.isLeft(verified)) return yield* fail(verified.left)
    }
    yield* context.tokens.recordInstallation(connector, { id: tenantId, tenantId, token })
    yield* finishAuthorization(context, record, { status: "completed", installationId: tenantId })
    return Pages.finished(record, { installationId: tenantId })
  })

/**
 * Completes an installation: the tenant's admin consented. The provider may
 * send a code (Slack, GitHub with user authorization on install), exchanged
 * for the installation's own grant, or only the tenant (Entra admin consent).
 * The tenant id comes from where the connector says, or from the request.
 */
export const completeInstallation = (
  context: FlowContext,
  record: AuthorizationRequestRecord,
  connector: Connector,
  query: Readonly<Record<string, string | undefined>>,
  code: string | undefined,
  fail: Fail
) =>
  Effect.gen(function* () {
    const fromCallback = tenantFromCallback(connector, query)
    if (fromCallback === "invalid") return yield* fail("invalid_response")
    let token: ProviderToken | undefined
    if (code !== undefined) {
      const tokenEndpoint = installTokenEndpoint(connector, fromCallback ?? record.tenantHint)
      const exchanged = yield* exchange(context, connector, tokenEndpoint, record, code, fail)
      if (Either.isLeft(exchanged)) return exchanged.left
      token = exchanged.right
    } else if (fromCallback === undefined) {
      // Neither a code nor the tenant the connector reads from the redirect.
      return yield* fail("invalid_response")
    }
    const fromToken = token === undefined ? undefined : tenantFromToken(connector, token.fields ?? {})
    const tenantId = fromCallback ?? fromToken ?? record.tenantHint
    return yield* keepInstallation(context, record, connector, tenantId, token, fail)
  })
