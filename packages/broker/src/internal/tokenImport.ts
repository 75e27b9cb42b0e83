/**
 * Importing tokens obtained elsewhere: each is kept as an issued token for the
 * request it answers, with its refresh token (or, for a user, none) as a grant.
 *
 * @since 0.2.0
 */
import { Effect } from "effect"
import type { ConnectError } from "effect-connect/ConnectError"
import type { Caller, Connector } from "../Store.js"
import type { TokensService } from "../Tokens.js"
import { installationKey, resolveInstallation } from "./installationResolution.js"
import { grantSubject, requestKeyOf, subjectKey } from "./tokenKeys.js"
import { storeFailure, type TokensContext } from "./tokensContext.js"

/** One token to import, as the token service takes it. */
type ImportedToken = Parameters<TokensService["importTokens"]>[2][number]

/** Keeps one imported token, and its grant. */
const importToken = (context: TokensContext, caller: Caller, connector: Connector, token: ImportedToken) =>
  Effect.gen(function* () {
    const { store } = context
    // The installation as a token request would resolve it (the default one when
    // none is named), so that the requests this import is for find it.
    const installationId = installationKey(
      yield* resolveInstallation(store, connector, token.installationId),
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
      (token.subject.type === "app" ? connector.settings.defaultScopes.app : connector.settings.defaultScopes.user) ??
      []
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

/**
 * Keeps tokens obtained elsewhere (with their refresh tokens as grants),
 * together; says how many.
 *
 * @since 0.2.0
 * @category import
 */
export const importTokens = (
  context: TokensContext,
  caller: Caller,
  connector: Connector,
  tokens: ReadonlyArray<ImportedToken>
): Effect.Effect<number, ConnectError> =>
  context.store
    .transaction(Effect.forEach(tokens, (token) => importToken(context, caller, connector, token)))
    .pipe(Effect.as(tokens.length), Effect.catchTag("StoreError", storeFailure(connector)))
