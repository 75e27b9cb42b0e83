/**
 * The request-time half of the endpoint policy of `endpoints.ts`: a
 * connector's endpoint written as a link-local or metadata address is refused
 * when it is saved, but a host NAME may resolve to one (a DNS record pointing
 * at 169.254.169.254). Before the broker sends its client's credentials to a
 * provider, it resolves the endpoint's host and refuses such an address.
 *
 * Loopback and the hosts of `CONNECT_ALLOWED_HTTP_HOSTS` are trusted as they
 * are when saved, and not resolved. A name that does not resolve is left to
 * the HTTP client, which reports it as it always has. The HTTP client resolves
 * the name again when it connects: a record changed in between is not caught
 * (a pinned address would need a connection-level hook the fetch client does
 * not offer).
 *
 * @since 0.1.0
 */
import { lookup as dnsLookup } from "node:dns/promises"
import { isIP } from "node:net"
import { type Duration, Effect } from "effect"
import { hostOf, isLinkLocalOrMetadata, isLoopback } from "./endpoints.js"

/**
 * Resolves a host name to all its addresses, as `node:dns` `lookup` with
 * `all: true` does; a failure means the name does not resolve.
 *
 * @since 0.1.0
 * @category models
 */
export type Lookup = (hostname: string) => Effect.Effect<ReadonlyArray<string>, unknown>

/**
 * The system's resolver (`node:dns` `lookup`, as the HTTP client uses it).
 *
 * @since 0.1.0
 * @category constructors
 */
export const systemLookup: Lookup = (hostname) =>
  Effect.tryPromise(() => dnsLookup(hostname, { all: true })).pipe(
    Effect.map((addresses) => addresses.map((address) => address.address))
  )

/**
 * The link-local or metadata addresses `url`'s host is or resolves to: none
 * for loopback and allowed hosts, and none when the name does not resolve
 * within `timeout`.
 *
 * @since 0.1.0
 * @category utils
 */
export const forbiddenAddresses = (
  url: URL,
  options: { readonly allowedHosts: ReadonlySet<string>; readonly lookup: Lookup; readonly timeout: Duration.Duration }
): Effect.Effect<ReadonlyArray<string>> => {
  const host = hostOf(url)
  if (isLoopback(host) || options.allowedHosts.has(host)) return Effect.succeed([])
  // An address, or a metadata service's name, needs no resolver.
  if (isIP(host) !== 0 || isLinkLocalOrMetadata(host)) {
    return Effect.succeed(isLinkLocalOrMetadata(host) ? [host] : [])
  }
  return options.lookup(host).pipe(
    Effect.map((addresses) => addresses.filter((address) => isLinkLocalOrMetadata(address.toLowerCase()))),
    Effect.timeout(options.timeout),
    Effect.orElseSucceed((): ReadonlyArray<string> => [])
  )
}
