/**
 * The canonical identity of a token request: its connector, subject,
 * installation, scopes, resources, audience and authorization details, in a
 * form where order and defaults do not matter. The SDK's `TokenCache` keys its
 * entries by it, and the broker derives the `request_key` of the tokens it
 * stores from it, so both agree on what "the same request" is. Golden tests pin
 * it: changing it would stop stored tokens from matching.
 *
 * @since 0.2.0
 */
import * as internal from "./internal/cacheKey.js"

/**
 * What identifies a request: `id` is the canonical string; the other members
 * let revocation find the entries of a connector, subject and installation.
 *
 * @since 0.2.0
 * @category models
 */
export interface RequestKey extends internal.CacheKey {}

/**
 * The key of a token request made through one client or server (`scope` names
 * it: a server and caller credential in the SDK, `"broker"` in the broker), or
 * `undefined` when the request is not well formed (full Schema validation then
 * names the bad field).
 *
 * @since 0.2.0
 * @category constructors
 */
export const make: (scope: string, connector: unknown, params: unknown) => RequestKey | undefined = internal.cacheKey

/**
 * The SHA-256 digest (base64url) of a secret, for keys that must identify a
 * token without holding it.
 *
 * @since 0.2.0
 * @category utils
 */
export const digest: (secret: string) => string = internal.digest
