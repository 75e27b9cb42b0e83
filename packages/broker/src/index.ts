/**
 * The self-hostable Connect broker (`effect-connect/broker`): the Connect wire
 * protocol's server side, as Layers over a SQLite or Postgres store.
 *
 * @since 0.1.0
 */

export * as Admin from "./Admin.js"
export * as AdminApi from "./AdminApi.js"
export * as AdminRoutes from "./AdminRoutes.js"
export * as AdminToken from "./AdminToken.js"
export * as Assertion from "./Assertion.js"
export * as Authorizations from "./Authorizations.js"
export * as Broker from "./Broker.js"
export * as Cipher from "./Cipher.js"
export * as ConfigFile from "./ConfigFile.js"
export * as Database from "./Database.js"
export * as DeviceAuthorizations from "./DeviceAuthorizations.js"
export * as Housekeeping from "./Housekeeping.js"
export * as PgRateLimiter from "./PgRateLimiter.js"
export * as ProviderClient from "./ProviderClient.js"
export * as PublicUrl from "./PublicUrl.js"
export * as RateLimiter from "./RateLimiter.js"
export * as Routes from "./Routes.js"
export * as Setup from "./Setup.js"
export * as Store from "./Store.js"
export * as Tokens from "./Tokens.js"
