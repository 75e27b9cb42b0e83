/**
 * Which endpoints an admin may give a connector (in the configuration file or
 * through the admin API): `https:` only, except on loopback (127.0.0.0/8,
 * `::1`, `localhost`) and on the hosts `CONNECT_ALLOWED_HTTP_HOSTS` names;
 * never a link-local or cloud metadata address, even over `https:` (the
 * broker would hand out the metadata service's answers as tokens).
 *
 * @since 0.1.0
 */
import { Config, Effect } from "effect"

/**
 * The environment variable that lists, comma-separated, the hosts a
 * connector's endpoints may reach over plain `http:`.
 *
 * @since 0.1.0
 * @category constants
 */
export const ALLOWED_HTTP_HOSTS_VARIABLE = "CONNECT_ALLOWED_HTTP_HOSTS"

/** Cloud metadata services, by name and by address (AWS's IPv6 one; the IPv4 one is link-local). */
const METADATA_HOSTS = new Set(["metadata.google.internal", "metadata", "fd00:ec2::254"])

/**
 * The hosts `CONNECT_ALLOWED_HTTP_HOSTS` names, lower-cased; none when unset.
 *
 * @since 0.1.0
 * @category config
 */
export const allowedHttpHosts: Effect.Effect<ReadonlySet<string>> = Config.string(ALLOWED_HTTP_HOSTS_VARIABLE).pipe(
  Config.withDefault(""),
  Effect.map(
    (list) =>
      new Set(
        list
          .split(",")
          .map((host) => host.trim().toLowerCase())
          .filter((host) => host.length > 0)
      )
  ),
  Effect.orElseSucceed((): ReadonlySet<string> => new Set())
)

const ipv4 = (host: string): ReadonlyArray<number> | undefined => {
  const parts = host.split(".")
  if (parts.length !== 4 || !parts.every((part) => /^\d{1,3}$/.test(part))) return undefined
  return parts.map(Number)
}

/** An IPv4 address mapped into IPv6 (`::ffff:a9fe:a9fe`, as the URL parser writes it). */
const mappedIpv4 = (host: string): ReadonlyArray<number> | undefined => {
  const match = /^::ffff:([0-9a-f]{1,4}):([0-9a-f]{1,4})$/.exec(host)
  if (match === null) return ipv4(host.replace(/^::ffff:/, ""))
  const high = Number.parseInt(match[1] ?? "0", 16)
  const low = Number.parseInt(match[2] ?? "0", 16)
  return [high >> 8, high & 255, low >> 8, low & 255]
}

/**
 * Whether `host` (lower-case, without brackets) is a link-local or cloud
 * metadata address or name.
 *
 * @since 0.1.0
 * @category utils
 */
export const isLinkLocalOrMetadata = (host: string): boolean => {
  const v4 = ipv4(host) ?? mappedIpv4(host)
  if (v4 !== undefined) return v4[0] === 169 && v4[1] === 254
  return METADATA_HOSTS.has(host) || /^fe[89ab][0-9a-f]?:/.test(host)
}

/**
 * Whether `host` (lower-case, without brackets) is loopback.
 *
 * @since 0.1.0
 * @category utils
 */
export const isLoopback = (host: string): boolean => {
  const v4 = ipv4(host) ?? mappedIpv4(host)
  if (v4 !== undefined) return v4[0] === 127
  return host === "localhost" || host.endsWith(".localhost") || host === "::1"
}

/**
 * The host of `url` as the policy compares it: lower-case, without the
 * brackets of an IPv6 address or the trailing dot of a fully qualified name.
 *
 * @since 0.1.0
 * @category utils
 */
export const hostOf = (url: URL): string =>
  url.hostname
    .toLowerCase()
    .replace(/^\[|\]$/g, "")
    .replace(/\.$/, "")

/**
 * What is wrong with `value` as a connector's endpoint under the broker's
 * policy, if anything. A value that is not an http(s) URL is left to the schema.
 *
 * @since 0.1.0
 * @category utils
 */
export const endpointProblem = (value: string, allowed: ReadonlySet<string>): string | undefined => {
  let url: URL
  try {
    url = new URL(value.replaceAll("{tenantId}", "tenant"))
  } catch {
    return undefined
  }
  // Other schemes are the schema's to refuse.
  if (url.protocol !== "http:" && url.protocol !== "https:") return undefined
  const host = hostOf(url)
  if (isLinkLocalOrMetadata(host)) {
    return "Expected a provider's URL: link-local and cloud metadata addresses are refused"
  }
  if (url.protocol === "https:" || isLoopback(host) || allowed.has(host)) return undefined
  return `Expected an https:// URL (http:// only on loopback, or on a host listed in ${ALLOWED_HTTP_HOSTS_VARIABLE})`
}

/** The endpoint fields of a connector declaration, as paths within it. */
export const ENDPOINT_FIELDS: ReadonlyArray<ReadonlyArray<string>> = [
  ["tokenEndpoint"],
  ["revocationEndpoint"],
  ["authorizationEndpoint"],
  ["deviceAuthorizationEndpoint"],
  ["refreshEndpoint"],
  ["introspectionEndpoint"],
  ["installations", "authorizationEndpoint"],
  ["installations", "tokenEndpoint"],
  ["appTokens", "tokenEndpoint"]
]
