/**
 * The client credentials grant (RFC 6749 section 4.4): a token for the broker's
 * own client, for `app` subjects, with the request's targets and authorization
 * details (RFC 9396). Fetched once across replicas by `direct.ts`.
 *
 * @since 0.1.0
 */
import type { TokenRequest } from "effect-connect/Token"
import type { ClientCredentialsGrant } from "../ProviderClient.js"

/**
 * The client credentials grant of a request.
 *
 * @since 0.1.0
 * @category grants
 */
export const clientCredentialsGrant = (
  request: Pick<TokenRequest, "authorizationDetails">,
  targets: Omit<ClientCredentialsGrant, "type" | "authorizationDetails">
): ClientCredentialsGrant => ({
  type: "client_credentials",
  ...targets,
  ...(request.authorizationDetails === undefined ? {} : { authorizationDetails: request.authorizationDetails })
})
