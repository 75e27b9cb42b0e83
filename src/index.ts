/**
 * effect-connect: short-lived provider tokens for Effect programs, over the
 * Connect wire protocol (Vercel Connect, or a self-hosted effect-connect broker).
 *
 * The operations and errors are exported by name; the wire schemas by module
 * (`Subject.user("u_1")`, `Token.TokenResponse`), as Effect's own modules are.
 *
 * @since 0.1.0
 */

export * as Authorization from "./Authorization.js"
export {
  authorizationStatus,
  ConnectClient,
  type ConnectClientOptions,
  type ConnectClientService,
  DEFAULT_VALIDITY_BUFFER_MS,
  deleteTokenCacheEntry,
  type GetTokenOptions,
  getConnectorMetadata,
  getToken,
  getTokenResponse,
  revokeToken,
  startAuthorization,
  startInstallation,
  VERCEL_API_URL
} from "./ConnectClient.js"
export * from "./ConnectError.js"
export * as Connector from "./Connector.js"
export * as Logging from "./Logging.js"
export * as Revocation from "./Revocation.js"
export * as Subject from "./Subject.js"
export type { TokenParams, TokenParamsEncoded, TokenResponse } from "./Token.js"
export * as Token from "./Token.js"
export {
  type CacheKey,
  DEFAULT_CAPACITY,
  DEFAULT_REFRESH_AHEAD_MS,
  TokenCache,
  type TokenCacheService
} from "./TokenCache.js"
