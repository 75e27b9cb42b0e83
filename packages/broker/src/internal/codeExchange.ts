import { Effect, Either, Redacted } from "effect"
import type { BrowserAnswer } from "../Pages.js"
import { ProviderClientConfig, type ProviderToken } from "../ProviderClient.js"
import type { AuthorizationRequestRecord, Connector, StoreError } from "../Store.js"
import { decodeRequest } from "./authorizationRequest.js"
import type { FlowContext } from "./flowContext.js"

/** Ends a taken request failed with `error`, answering what the browser is shown. */
export type Fail = (error: string) => Effect.Effect<BrowserAnswer, StoreError>

/**
 * Exchanges a code at a token endpoint, once: a code is good once, so after
 * an answer lost in transit a retry could only be refused. A refusal ends
 * the request failed: its answer for the browser is on the left.
 */
export const exchange = (
  context: FlowContext,
  connector: Connector,
  tokenEndpoint: string,
  record: AuthorizationRequestRecord,
  code: string,
  fail: Fail
): Effect.Effect<Either.Either<ProviderToken, BrowserAnswer>, StoreError> =>
  Effect.flatMap(decodeRequest(record), (request) =>
    context.provider
      .requestToken(
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
          redirectUri: context.callbackUrl,
          codeVerifier: record.codeVerifier,
          // A user's token may be a member of the answer (Slack's `authed_user`); an install's is the answer.
          ...(record.kind !== "install" && connector.settings.userTokenMember !== undefined
            ? { tokenMember: connector.settings.userTokenMember }
            : {}),
          ...(connector.settings.tokenParams === undefined ? {} : { extraParams: connector.settings.tokenParams }),
          // The token is for the resources the user consented to (RFC 8707 section 2.2).
          ...(request.resources === undefined ? {} : { resource: request.resources })
        }
      )
      .pipe(
        Effect.provide(ProviderClientConfig.layer({ retries: 0 })),
        Effect.map(Either.right),
        Effect.catchAll((error) =>
          Effect.zipRight(
            Effect.logWarning(`request ${record.id}: the provider refused the code (${error.kind})`),
            Effect.map(fail(error.kind === "transient" ? "provider_unavailable" : "provider_refused"), Either.left)
          )
        )
      )
  )
