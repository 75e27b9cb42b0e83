/**
 * The token exchange grant (RFC 8693) for `token` subjects: the caller's access
 * token for one the provider issues. Fetched once across replicas by `direct.ts`.
 *
 * @since 0.1.0
 */
import type { TokenExchangeSubject } from "effect-connect/Subject"
import type { TokenExchangeGrant } from "../ProviderClient.js"

/** The token type of a subject token in a token exchange (RFC 8693). */
const ACCESS_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:access_token"

/**
 * The token exchange grant of a `token` subject.
 *
 * @since 0.1.0
 * @category grants
 */
export const tokenExchangeGrant = (
  subject: TokenExchangeSubject,
  targets: Pick<TokenExchangeGrant, "scope" | "resource" | "audience">
): TokenExchangeGrant => ({
  type: "token_exchange",
  subjectToken: subject.token,
  subjectTokenType: ACCESS_TOKEN_TYPE,
  ...targets
})
