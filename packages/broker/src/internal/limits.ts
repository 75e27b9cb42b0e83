/**
 * The broker's bounds on what a request may carry: the size of its body, the
 * nesting of its JSON, and the length of each id, name and list in it. The
 * SDK's schemas stay permissive (Vercel's service may accept more); these are
 * the broker's own policy, checked after the shared schemas decoded a body.
 *
 * @since 0.1.0
 */
import { Config, Context, Layer } from "effect"
import type { FieldIssue } from "effect-connect/Protocol"

/** The default body size limit: 1 MiB, far above any request of the protocol. */
export const DEFAULT_MAX_BODY_BYTES = 1_048_576

/** The environment variable that sets the body size limit, in bytes. */
export const MAX_BODY_BYTES_VARIABLE = "CONNECT_MAX_BODY_BYTES"

/** How deep request JSON may nest: the protocol's bodies are a few levels deep. */
export const MAX_JSON_DEPTH = 32

/** Ids of the protocol: a connector uid or id, a project id, an environment, an installation or tenant id, a subject's id and issuer. */
export const MAX_ID_LENGTH = 256

/** Human-readable names: a connector's or a project's. */
export const MAX_NAME_LENGTH = 256

/** URLs a request carries: resources, audiences, return and webhook URLs, endpoints. */
export const MAX_URL_LENGTH = 2048

/** How many scopes a request may name, and how long each may be. */
export const MAX_SCOPES = 100
export const MAX_SCOPE_LENGTH = 256

/** How many resources, audiences or authorization details a request may name. */
export const MAX_LIST_ITEMS = 20

/** A secret a request hands over: a token to exchange or to import, a private key. */
export const MAX_SECRET_LENGTH = 16_384

/** How many tokens one import may carry. */
export const MAX_IMPORTED_TOKENS = 1000

/**
 * The body size limit in force, in bytes.
 *
 * @since 0.1.0
 * @category tags
 */
export class MaxBodyBytes extends Context.Reference<MaxBodyBytes>()("effect-connect/broker/MaxBodyBytes", {
  defaultValue: () => DEFAULT_MAX_BODY_BYTES
}) {
  /** From `CONNECT_MAX_BODY_BYTES` (a whole number of bytes, 1 KiB to 1 GiB), by default 1 MiB. */
  static readonly layerConfig = Layer.effect(
    MaxBodyBytes,
    Config.integer(MAX_BODY_BYTES_VARIABLE).pipe(
      Config.validate({
        message: "Expected a whole number of bytes from 1024 to 1073741824",
        validation: (bytes) => bytes >= 1024 && bytes <= 1_073_741_824
      }),
      Config.withDefault(DEFAULT_MAX_BODY_BYTES)
    )
  )
}

/**
 * A bound on a part of a decoded request: `path` names it, `*` standing for
 * every item of an array; `maxLength` bounds a string, `maxItems` an array.
 *
 * @since 0.1.0
 * @category models
 */
export interface Bound {
  readonly path: string
  readonly maxLength?: number
  readonly maxItems?: number
  /** What else is wrong with a string there, if anything. */
  readonly problem?: (value: string) => string | undefined
}

const childrenAt = (value: unknown, key: string): ReadonlyArray<readonly [string, unknown]> => {
  if (key === "*") return Array.isArray(value) ? value.map((item, index) => [String(index), item] as const) : []
  if (typeof value === "object" && value !== null && !Array.isArray(value) && key in value) {
    return [[key, (value as Record<string, unknown>)[key]]]
  }
  return []
}

/**
 * Every bound `value` breaks, each as an issue naming the field and the limit
 * (`subject.id: Expected at most 256 characters`).
 *
 * @since 0.1.0
 * @category utils
 */
export const boundIssues = (value: unknown, bounds: ReadonlyArray<Bound>): ReadonlyArray<FieldIssue> =>
  bounds.flatMap((bound) => {
    let found: ReadonlyArray<readonly [string, unknown]> = [["", value]]
    for (const key of bound.path.split(".")) {
      found = found.flatMap(([path, at]) =>
        childrenAt(at, key).map(([child, next]) => [path === "" ? child : `${path}.${child}`, next] as const)
      )
    }
    return found.flatMap(([path, at]): ReadonlyArray<FieldIssue> => {
      if (bound.maxLength !== undefined && typeof at === "string" && at.length > bound.maxLength) {
        return [{ path, message: `Expected at most ${bound.maxLength} characters` }]
      }
      if (bound.maxItems !== undefined && Array.isArray(at) && at.length > bound.maxItems) {
        return [{ path, message: `Expected at most ${bound.maxItems} items` }]
      }
      const problem = bound.problem !== undefined && typeof at === "string" ? bound.problem(at) : undefined
      return problem === undefined ? [] : [{ path, message: problem }]
    })
  })

/**
 * How deep the JSON `text` nests (`[` and `{` outside strings), read without
 * parsing or recursion, up to `limit + 1`: deeper input stops the count.
 *
 * @since 0.1.0
 * @category utils
 */
export const jsonNestingDepth = (text: string, limit: number = MAX_JSON_DEPTH): number => {
  let depth = 0
  let deepest = 0
  let inString = false
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i)
    if (inString) {
      if (c === 92 /* \\ */) i++
      else if (c === 34 /* " */) inString = false
    } else if (c === 34) inString = true
    else if (c === 91 /* [ */ || c === 123 /* { */) {
      depth++
      if (depth > deepest) deepest = depth
      if (deepest > limit) return deepest
    } else if (c === 93 /* ] */ || c === 125 /* } */) depth--
  }
  return deepest
}

/** A client id at a provider (some run to a hundred characters or so). */
export const MAX_CLIENT_ID_LENGTH = 1024

/** How many installations a connector may declare at once. */
export const MAX_INSTALLATIONS = 1000

const subjectBounds = (at: string): ReadonlyArray<Bound> => [
  { path: `${at}.id`, maxLength: MAX_ID_LENGTH },
  { path: `${at}.issuer`, maxLength: MAX_ID_LENGTH },
  { path: `${at}.sub`, maxLength: MAX_ID_LENGTH },
  { path: `${at}.iss`, maxLength: MAX_ID_LENGTH },
  { path: `${at}.aud`, maxLength: MAX_URL_LENGTH },
  { path: `${at}.token`, maxLength: MAX_SECRET_LENGTH }
]

const scopeBounds = (at: string): ReadonlyArray<Bound> => [
  { path: at, maxItems: MAX_SCOPES },
  { path: `${at}.*`, maxLength: MAX_SCOPE_LENGTH }
]

const urlListBounds = (at: string): ReadonlyArray<Bound> => [
  { path: at, maxItems: MAX_LIST_ITEMS },
  { path: `${at}.*`, maxLength: MAX_URL_LENGTH }
]

/** What a token is asked for: the fields shared by token, authorization and installation requests. */
const requestFieldBounds: ReadonlyArray<Bound> = [
  ...subjectBounds("subject"),
  { path: "installationId", maxLength: MAX_ID_LENGTH },
  ...scopeBounds("scopes"),
  ...urlListBounds("resources"),
  ...urlListBounds("audience"),
  { path: "authorizationDetails", maxItems: MAX_LIST_ITEMS },
  { path: "authorizationDetails.*.type", maxLength: MAX_ID_LENGTH }
]

/**
 * Tenant ids go into URLs as one path segment (`{tenantId}` in a connector's
 * endpoints): one that is not a plain segment (`..`, `a/b`) would move the
 * request elsewhere on the provider's host. What is wrong with `value` as a
 * tenant id, if anything: empty, `.` or `..`,
 * a `/` or `\`, a control character, or over `MAX_ID_LENGTH` characters.
 *
 * @since 0.1.0
 * @category utils
 */
export const tenantIdProblem = (value: string): string | undefined => {
  if (value.length === 0) return "Expected a tenant id, not an empty string"
  if (value.length > MAX_ID_LENGTH) return `Expected a tenant id of at most ${MAX_ID_LENGTH} characters`
  if (value === "." || value === "..") return 'Expected a tenant id, not "." or ".." (it is a path segment)'
  if (/[/\\]/.test(value)) return "Expected a tenant id without / or \\ (it is a path segment)"
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what it refuses.
  if (/[\u0000-\u001f\u007f]/.test(value)) return "Expected a tenant id without control characters"
  return undefined
}

/**
 * Whether `value` can serve as a tenant id (a single path segment).
 *
 * @since 0.1.0
 * @category utils
 */
export const isTenantId = (value: string): boolean => tenantIdProblem(value) === undefined

/**
 * The broker's bounds on each request body, by route.
 *
 * @since 0.1.0
 * @category constants
 */
export const RequestBounds = {
  token: requestFieldBounds,
  authorize: [
    ...requestFieldBounds,
    { path: "returnUrl", maxLength: MAX_URL_LENGTH },
    { path: "webhook", maxLength: MAX_URL_LENGTH },
    { path: "prompt", maxLength: MAX_ID_LENGTH }
  ],
  install: [
    ...requestFieldBounds,
    { path: "returnUrl", maxLength: MAX_URL_LENGTH },
    { path: "tenantId", problem: tenantIdProblem }
  ],
  revoke: [...subjectBounds("subject"), { path: "installationId", maxLength: MAX_ID_LENGTH }],
  importTokens: [
    { path: "tokens", maxItems: MAX_IMPORTED_TOKENS },
    { path: "tokens.*.accessToken", maxLength: MAX_SECRET_LENGTH },
    { path: "tokens.*.refreshToken", maxLength: MAX_SECRET_LENGTH },
    ...subjectBounds("tokens.*.subject"),
    { path: "tokens.*.environment", maxLength: MAX_ID_LENGTH },
    { path: "tokens.*.installationId", maxLength: MAX_ID_LENGTH }
  ],
  status: [{ path: "verifier", maxLength: MAX_ID_LENGTH }],
  confirm: [
    { path: "verifier", maxLength: MAX_ID_LENGTH },
    { path: "code", maxLength: MAX_ID_LENGTH }
  ],
  project: [
    { path: "id", maxLength: MAX_ID_LENGTH },
    { path: "name", maxLength: MAX_NAME_LENGTH },
    ...urlListBounds("returnUrls")
  ],
  environments: [
    { path: "environments", maxItems: MAX_LIST_ITEMS },
    { path: "environments.*", maxLength: MAX_ID_LENGTH }
  ],
  key: [{ path: "environment", maxLength: MAX_ID_LENGTH }],
  connector: [
    { path: "uid", maxLength: MAX_ID_LENGTH },
    { path: "name", maxLength: MAX_NAME_LENGTH },
    { path: "type", maxLength: MAX_ID_LENGTH },
    { path: "service", maxLength: MAX_ID_LENGTH },
    { path: "clientId", maxLength: MAX_CLIENT_ID_LENGTH },
    { path: "clientSecret", maxLength: MAX_SECRET_LENGTH },
    { path: "privateKey", maxLength: MAX_SECRET_LENGTH },
    { path: "privateKeyId", maxLength: MAX_ID_LENGTH },
    ...(
      [
        "tokenEndpoint",
        "revocationEndpoint",
        "authorizationEndpoint",
        "deviceAuthorizationEndpoint",
        "refreshEndpoint",
        "introspectionEndpoint",
        "installations.authorizationEndpoint",
        "installations.tokenEndpoint",
        "installations.items.*.tokenEndpoint"
      ] as const
    ).map((path) => ({ path, maxLength: MAX_URL_LENGTH })),
    ...scopeBounds("defaultScopes.app"),
    ...scopeBounds("defaultScopes.user"),
    { path: "installations.items", maxItems: MAX_INSTALLATIONS },
    { path: "installations.items.*.id", maxLength: MAX_ID_LENGTH },
    { path: "installations.items.*.tenantId", problem: tenantIdProblem }
  ]
} satisfies Record<string, ReadonlyArray<Bound>>

// Control characters are refused: a name is printed in logs and tables.
const PATH_NAME = new RegExp(`^[^\\u0000-\\u001f\\u007f]{1,${MAX_ID_LENGTH}}$`)

/**
 * Whether a value can be a name that travels in a path (a connector uid, a
 * project id, an environment, an installation id): 1 to `MAX_ID_LENGTH`
 * characters, no control characters. The one check for what may be created
 * and what the routes reach, so that each is the other.
 *
 * @since 0.1.0
 * @category utils
 */
export const isPathName = (value: string): boolean => PATH_NAME.test(value)

/**
 * What `isPathName` asks for, in words.
 *
 * @since 0.1.0
 * @category constants
 */
export const PATH_NAME_RULE = `Expected 1 to ${MAX_ID_LENGTH} characters, no control characters`

/**
 * The longest path parameter the router passes on (it answers 404 past it):
 * well above `MAX_ID_LENGTH`, so that an over-long name is refused by name.
 *
 * @since 0.1.0
 * @category constants
 */
export const MAX_PATH_PARAM_LENGTH = MAX_URL_LENGTH
