/**
 * Revoking tokens: a project's issued tokens (of a subject, or an
 * installation), everything within an installation when it is removed, and
 * everything a connector holds before it is removed. The provider is asked
 * when the connector has a revocation endpoint; the store forgets the tokens
 * whatever it says.
 *
 * @since 0.2.0
 */
import { Effect, Option, Redacted } from "effect"
import type { ConnectError } from "effect-connect/ConnectError"
import type { RevocationSummary } from "effect-connect/Revocation"
import type { Subject } from "effect-connect/Subject"
import type { Caller, Connector, IssuedToken, Grant as StoredGrant, StoreService } from "../Store.js"
import type { InstallationRemoval } from "../Tokens.js"
import { grantOwner, INSTALLATION_SUBJECT, subjectKey } from "./tokenKeys.js"
import { storeFailure, type TokensContext } from "./tokensContext.js"

/** How the provider answered one revocation, as a summary counts it. */
type ProviderOutcome = "providerRevoked" | "providerSkipped" | "providerFailed"

/** Revokes one token at the connector's revocation endpoint, and says how that went. */
const revokeAtProvider = (
  context: TokensContext,
  connector: Connector,
  token: Redacted.Redacted<string>,
  hint: "access_token" | "refresh_token"
): Effect.Effect<ProviderOutcome> => {
  const endpoint = connector.settings.revocationEndpoint
  if (endpoint === undefined) return Effect.succeed("providerSkipped")
  return context.provider
    .revokeToken(
      {
        revocationEndpoint: endpoint,
        clientId: connector.clientId,
        clientSecret: connector.clientSecret,
        authMethod: connector.settings.tokenEndpointAuthMethod,
        ...(connector.settings.revocationRequest === undefined ? {} : { request: connector.settings.revocationRequest })
      },
      token,
      hint
    )
    .pipe(Effect.match({ onSuccess: () => "providerRevoked" as const, onFailure: () => "providerFailed" as const }))
}

/** The grants of tokens, each read once from the store. */
const grantCache = (store: StoreService) => {
  const grants = new Map<string, Option.Option<StoredGrant>>()
  return (grantId: string | undefined) =>
    grantId === undefined
      ? Effect.succeed(Option.none<StoredGrant>())
      : Effect.suspend(() => {
          const known = grants.get(grantId)
          if (known !== undefined) return Effect.succeed(known)
          return Effect.tap(store.findGrantById(grantId), (grant) => Effect.sync(() => grants.set(grantId, grant)))
        })
}

/**
 * Revokes a project's tokens at the provider, counting the outcomes into
 * `summary`; gives the grants that held one of them as their only token.
 */
const revokeIssuedAtProvider = (
  context: TokensContext,
  connector: Connector,
  tokens: ReadonlyArray<IssuedToken>,
  summary: Record<ProviderOutcome, number>
) =>
  Effect.gen(function* () {
    // Grants with no refresh token hold the one token they can give.
    const grantOf = grantCache(context.store)
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
      summary[yield* revokeAtProvider(context, connector, token.accessToken, "access_token")]++
    }
    return spent
  })

/** The events of a revocation: the tokens revoked, and each grant that held its only token. */
const recordRevocation = (
  context: TokensContext,
  caller: Caller,
  connector: Connector,
  params: { readonly subject?: Subject | undefined; readonly installationId?: string | undefined },
  summary: RevocationSummary,
  spent: ReadonlySet<string>
) => {
  const about = {
    connector: connector.uid,
    projectId: caller.projectId,
    environment: caller.environment,
    subject: params.subject === undefined ? undefined : subjectKey(params.subject),
    installationId: params.installationId
  }
  return Effect.zipRight(
    context.events.record({
      kind: "token.revoked",
      ...about,
      data: {
        count: summary.deleted,
        providerRevoked: summary.providerRevoked,
        providerFailed: summary.providerFailed
      }
    }),
    Effect.forEach(spent, (grantId) => context.events.record({ kind: "grant.revoked", ...about, data: { grantId } }), {
      discard: true
    })
  )
}

/**
 * Revokes a project's issued tokens (of a subject, or an installation), at the
 * provider too when it can.
 *
 * @since 0.2.0
 * @category revocation
 */
export const revoke = (
  context: TokensContext,
  caller: Caller,
  connector: Connector,
  params: { readonly subject?: Subject | undefined; readonly installationId?: string | undefined }
): Effect.Effect<RevocationSummary, ConnectError> =>
  Effect.gen(function* () {
    const { store } = context
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
    const spent = yield* revokeIssuedAtProvider(context, connector, tokens, summary)
    // Whatever the provider said, these tokens are not handed out again; a
    // grant whose only token was revoked can give nothing more.
    yield* store.transaction(
      Effect.zipRight(
        store.markTokens(
          tokens.map((token) => token.id),
          connector.settings.revocationEndpoint === undefined ? "deleted" : "revoked"
        ),
        Effect.forEach(spent, (grantId) => store.updateGrant(grantId, { status: "revoked" }), { discard: true })
      )
    )
    summary.deleted = tokens.length
    yield* recordRevocation(context, caller, connector, params, summary, spent)
    return summary
  }).pipe(Effect.catchTag("StoreError", storeFailure(connector)))

/** The distinct token values of issued tokens and grants: one token may have been handed to several projects. */
const distinctValues = (tokens: ReadonlyArray<IssuedToken>, grants: ReadonlyArray<StoredGrant>) => {
  const values = new Map<string, { token: Redacted.Redacted<string>; hint: "access_token" | "refresh_token" }>()
  for (const token of tokens)
    values.set(Redacted.value(token.accessToken), { token: token.accessToken, hint: "access_token" })
  for (const grant of grants) {
    if (grant.accessToken !== undefined)
      values.set(Redacted.value(grant.accessToken), { token: grant.accessToken, hint: "access_token" })
    if (grant.refreshToken !== undefined)
      values.set(Redacted.value(grant.refreshToken), { token: grant.refreshToken, hint: "refresh_token" })
  }
  return values.values()
}

/**
 * Revokes at the provider every token issued within an installation (or the
 * whole connector), to any project, and the tokens its grants hold; each
 * distinct token once. The caller deletes what it removes.
 */
const revokeWithin = (context: TokensContext, connector: Connector, installationId: string | undefined) =>
  Effect.gen(function* () {
    const { store } = context
    const tokens = yield* store.listActiveTokens({ connectorId: connector.id, installationId })
    const grants = yield* store.listGrants(connector.id, installationId)
    const summary = {
      tokensFound: tokens.length,
      grantsFound: grants.length,
      providerRevoked: 0,
      providerSkipped: 0,
      providerFailed: 0
    }
    for (const { token, hint } of distinctValues(tokens, grants))
      summary[yield* revokeAtProvider(context, connector, token, hint)]++
    yield* store.markTokens(
      tokens.map((token) => token.id),
      connector.settings.revocationEndpoint === undefined ? "deleted" : "revoked"
    )
    return summary
  })

/**
 * Removes an installation: every token handed out within it is revoked at the
 * provider, then its grants (its own and its users') are revoked there too,
 * and the installation and its grants are deleted.
 *
 * @since 0.2.0
 * @category revocation
 */
export const removeInstallation = (
  context: TokensContext,
  connector: Connector,
  installationId: string
): Effect.Effect<Option.Option<InstallationRemoval>, ConnectError> =>
  Effect.gen(function* () {
    const installations = yield* context.store.listInstallations(connector.id)
    if (!installations.some((i) => i.id === installationId)) return Option.none()
    const summary = yield* revokeWithin(context, connector, installationId)
    yield* context.store.removeInstallation(connector.id, installationId)
    yield* context.events.record({
      kind: "installation.removed",
      connector: connector.uid,
      installationId,
      data: { tokensRevoked: summary.tokensFound, grantsRemoved: summary.grantsFound }
    })
    return Option.some({ installationId, ...summary })
  }).pipe(Effect.catchTag("StoreError", storeFailure(connector)))

/**
 * Revokes everything a connector holds before it is removed: every issued
 * token, of every project and installation, and every grant's tokens
 * (users' refresh tokens, installations' own).
 *
 * @since 0.2.0
 * @category revocation
 */
export const revokeConnector = (
  context: TokensContext,
  connector: Connector
): Effect.Effect<Omit<InstallationRemoval, "installationId">, ConnectError> =>
  revokeWithin(context, connector, undefined).pipe(Effect.catchTag("StoreError", storeFailure(connector)))

/**
 * What revoking one grant or one token did: the tokens found, and how the
 * provider answered their revocation.
 *
 * @since 0.2.0
 * @category models
 */
export interface SingleRevocation {
  readonly tokensFound: number
  readonly providerRevoked: number
  readonly providerSkipped: number
  readonly providerFailed: number
}

/**
 * Revokes a user's (or an installation's) grant, for an operator: its refresh
 * and access tokens and the tokens issued from it are revoked at the provider,
 * the issued tokens are no longer handed out, and the grant is marked
 * `revoked`, so that the next request for its subject needs a new
 * authorization. None when the connector has no such grant.
 *
 * @since 0.2.0
 * @category revocation
 */
export const revokeGrant = (
  context: TokensContext,
  connector: Connector,
  grantId: string
): Effect.Effect<Option.Option<SingleRevocation>, ConnectError> =>
  Effect.gen(function* () {
    const { store } = context
    const grant = yield* store.findGrantById(grantId)
    if (Option.isNone(grant) || grant.value.connectorId !== connector.id) return Option.none()
    const tokens = (yield* store.listActiveTokens({ connectorId: connector.id })).filter((t) => t.grantId === grantId)
    const summary = { tokensFound: tokens.length, providerRevoked: 0, providerSkipped: 0, providerFailed: 0 }
    for (const { token, hint } of distinctValues(tokens, [grant.value]))
      summary[yield* revokeAtProvider(context, connector, token, hint)]++
    yield* store.transaction(
      Effect.zipRight(
        store.markTokens(
          tokens.map((token) => token.id),
          connector.settings.revocationEndpoint === undefined ? "deleted" : "revoked"
        ),
        store.updateGrant(grantId, { status: "revoked" })
      )
    )
    const owner = grantOwner(grant.value.subject)
    yield* context.events.record({
      kind: "grant.revoked",
      connector: connector.uid,
      projectId: owner.projectId,
      subject: owner.subject,
      installationId: grant.value.installationId === "" ? undefined : grant.value.installationId,
      data: { grantId, source: "admin", tokensRevoked: tokens.length }
    })
    return Option.some(summary)
  }).pipe(Effect.catchTag("StoreError", storeFailure(connector)))

/**
 * Revokes one issued token, for an operator: at the provider, and in the
 * store so that it is not handed out again. None when the connector has no
 * such active token.
 *
 * @since 0.2.0
 * @category revocation
 */
export const revokeIssuedToken = (
  context: TokensContext,
  connector: Connector,
  tokenId: string
): Effect.Effect<Option.Option<SingleRevocation>, ConnectError> =>
  Effect.gen(function* () {
    const { store } = context
    const token = (yield* store.listActiveTokens({ connectorId: connector.id })).find((t) => t.id === tokenId)
    if (token === undefined) return Option.none()
    const summary = { tokensFound: 1, providerRevoked: 0, providerSkipped: 0, providerFailed: 0 }
    const spent = yield* revokeIssuedAtProvider(context, connector, [token], summary)
    yield* store.transaction(
      Effect.zipRight(
        store.markTokens([token.id], connector.settings.revocationEndpoint === undefined ? "deleted" : "revoked"),
        Effect.forEach(spent, (grantId) => store.updateGrant(grantId, { status: "revoked" }), { discard: true })
      )
    )
    yield* recordRevocation(
      context,
      { projectId: token.projectId, environment: token.environment },
      connector,
      { installationId: token.installationId === "" ? undefined : token.installationId },
      { ...summary, deleted: 1 },
      spent
    )
    return Option.some(summary)
  }).pipe(Effect.catchTag("StoreError", storeFailure(connector)))
