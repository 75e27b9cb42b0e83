/**
 * The self-hostable Connect broker (`@effect-connect/broker`): the server side
 * of the Connect wire protocol, as Effect Layers over a SQLite or Postgres
 * store.
 *
 * - `Broker`: the whole server as a Layer, configured from the environment,
 *   and the services it is made of (`Broker.layerServices`).
 * - The services, each a `Context.Tag` with its layer: `Tokens` (issuing and
 *   revoking tokens), `Authorizations` and `DeviceAuthorizations` (users'
 *   and tenants' authorizations), `Admin` (what the admin API does),
 *   `RateLimiter`, `Store` (the repositories behind one interface).
 * - Their configuration: `ConfigFile` (the connectors, projects and links
 *   file) and `Setup` (applying it), `Database`, `Cipher` (encryption at
 *   rest), `PublicUrl`, `AdminToken`, `Housekeeping`, `Startup`.
 * - `AdminApi`: the admin API's routes and schemas, for its clients.
 *
 * HTTP routes, pages and the provider client are implementation, reachable
 * only through `Broker`.
 *
 * @since 0.1.0
 */

export * as Admin from "./Admin.js"
export * as AdminApi from "./AdminApi.js"
export * as AdminToken from "./AdminToken.js"
export * as Authorizations from "./Authorizations.js"
export * as Broker from "./Broker.js"
export * as Cipher from "./Cipher.js"
export * as ConfigFile from "./ConfigFile.js"
export * as Database from "./Database.js"
export * as DeviceAuthorizations from "./DeviceAuthorizations.js"
export * as Housekeeping from "./Housekeeping.js"
export * as Metrics from "./Metrics.js"
export * as MetricsRoutes from "./MetricsRoutes.js"
export * as PgRateLimiter from "./PgRateLimiter.js"
export * as PublicUrl from "./PublicUrl.js"
export * as RateLimiter from "./RateLimiter.js"
export * as Setup from "./Setup.js"
export * as Startup from "./Startup.js"
export * as Store from "./Store.js"
export * as Telemetry from "./Telemetry.js"
export * as Tokens from "./Tokens.js"
