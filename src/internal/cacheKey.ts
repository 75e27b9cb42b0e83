import { createHash } from "node:crypto"
import { Redacted } from "effect"
import { canonicalJson, isJsonValue, isRecord } from "./json.js"

/**
 * What identifies a cached token. `id` is the canonical string the cache is
 * keyed by; the other members let revocation find the entries of a connector
 * and subject.
 */
export interface CacheKey {
  readonly id: string
  readonly connector: string
  readonly subject: string
  readonly installationId: string | undefined
}

/** A SHA-256 digest, for secrets that must identify an entry without being kept. */
export const digest = (secret: string): string => createHash("sha256").update(secret).digest("base64url")

const scopeIds = new Map<string, string>()

/**
 * A short id for a server and caller credential, the same for the life of the
 * process. Keys start with it instead of the URL and credential digest: a
 * shorter key is cheaper to hash on every lookup.
 */
export const scopeId = (baseUrl: string, credential: string): string => {
  const full = `${baseUrl}\n${digest(credential)}`
  let id = scopeIds.get(full)
  if (id === undefined) {
    id = `c${scopeIds.size}`
    scopeIds.set(full, id)
  }
  return id
}

// The key id is the request's parts joined by NUL, each set as its count then
// its elements. That is unambiguous as long as no part contains a NUL, and it
// is the hot path of every cache hit, so it is plain concatenation: no
// JSON.stringify, no Set, no sort unless a set is out of order. The rare
// request with a NUL in a string gets a JSON encoding instead, in a key space
// of its own (it starts with a NUL; the concatenated ids start with the scope).
const SEP = "\u0000"

/** A non-empty string without NUL. */
const isPlain = (u: unknown): u is string => typeof u === "string" && u.length > 0 && !u.includes(SEP)

const isNonEmptyString = (u: unknown): u is string => typeof u === "string" && u.length > 0

/** Sorted, without duplicates: the array itself when it already is, else a sorted copy. */
const canonicalSet = (items: ReadonlyArray<string>): ReadonlyArray<string> => {
  for (let i = 1; i < items.length; i++) {
    if (!((items[i - 1] as string) < (items[i] as string))) return sortedCopy(items)
  }
  return items
}

// Sets of scopes are small: an insertion sort beats a Set and Array#sort there.
const sortedCopy = (items: ReadonlyArray<string>): ReadonlyArray<string> => {
  if (items.length > 16) return Array.from(new Set(items)).sort()
  const out: Array<string> = []
  for (const item of items) {
    let i = out.length
    while (i > 0 && (out[i - 1] as string) > item) i--
    if (i > 0 && out[i - 1] === item) continue
    out.splice(i, 0, item)
  }
  return out
}

/** `count NUL e1 NUL e2 ...`, or `undefined` for anything but an array of non-empty strings. */
const stringSet = (u: unknown, fallback: string, plain: { ok: boolean }): string | undefined => {
  if (u === undefined) return fallback
  if (!Array.isArray(u)) return undefined
  for (const item of u) {
    if (!isNonEmptyString(item)) return undefined
    if (item.includes(SEP)) plain.ok = false
  }
  const set = canonicalSet(u as ReadonlyArray<string>)
  let out = String(set.length)
  for (const item of set) out += SEP + item
  return out
}

const DEFAULT_SCOPES = `1${SEP}*`
const EMPTY = "0"

/**
 * A JSON object that Schema validation gives back member for member. A member
 * named `__proto__` does not survive Schema's copy of a record (it is dropped,
 * or rejected when it holds an object), so such input takes the slow way.
 */
const isJsonRecord = (u: unknown): u is Record<string, unknown> =>
  isRecord(u) && !Object.hasOwn(u, "__proto__") && isJsonValue(u)

// Canonical JSON escapes control characters, so these parts never hold a NUL.
const authorizationDetails = (u: unknown): string | undefined => {
  if (u === undefined) return EMPTY
  if (!Array.isArray(u)) return undefined
  const details: Array<string> = []
  for (const detail of u) {
    if (!isJsonRecord(detail) || !isNonEmptyString(detail.type)) return undefined
    details.push(canonicalJson(detail))
  }
  const set = canonicalSet(details)
  let out = String(set.length)
  for (const detail of set) out += SEP + detail
  return out
}

/**
 * The canonical identity of a subject, or `undefined` when the value is not a
 * valid subject. An exchanged token is kept only as its digest. Each type has a
 * fixed number of NUL-separated fields.
 */
export const subjectId = (u: unknown): string | undefined => {
  if (!isRecord(u)) return undefined
  switch (u.type) {
    case "app":
      return "app"
    case "user":
      if (!isNonEmptyString(u.id)) return undefined
      if (u.issuer !== undefined && !isNonEmptyString(u.issuer)) return undefined
      return isPlain(u.id) && (u.issuer === undefined || isPlain(u.issuer))
        ? `user${SEP}${u.id}${SEP}${u.issuer ?? ""}`
        : `user-json${SEP}${JSON.stringify([u.id, u.issuer ?? null])}`
    case "jwt-bearer": {
      if (!isNonEmptyString(u.sub)) return undefined
      if (u.iss !== undefined && !isNonEmptyString(u.iss)) return undefined
      if (u.aud !== undefined && !isNonEmptyString(u.aud)) return undefined
      if (u.additionalClaims !== undefined && !isJsonRecord(u.additionalClaims)) return undefined
      return `jwt-bearer${SEP}${canonicalJson({ sub: u.sub, iss: u.iss, aud: u.aud, additionalClaims: u.additionalClaims })}`
    }
    case "token": {
      const token = Redacted.isRedacted(u.token) ? Redacted.value(u.token) : u.token
      if (!isNonEmptyString(token)) return undefined
      return `token${SEP}${digest(token)}`
    }
    default:
      return undefined
  }
}

/**
 * The cache key of a token request made through one client (`scope` names the
 * server and the caller credential). It doubles as a cheap structural check:
 * `undefined` means the request is not well formed, and the caller must go the
 * slow way, through full Schema validation, which then names the bad field.
 */
export const cacheKey = (scope: string, connector: unknown, params: unknown): CacheKey | undefined => {
  if (!isNonEmptyString(connector) || !isRecord(params)) return undefined
  const subject = subjectId(params.subject)
  if (subject === undefined) return undefined
  const installationId = params.installationId
  if (installationId !== undefined && !isNonEmptyString(installationId)) return undefined
  const plain = { ok: !connector.includes(SEP) && (installationId === undefined || !installationId.includes(SEP)) }
  const scopes = stringSet(params.scopes, DEFAULT_SCOPES, plain)
  const resources = stringSet(params.resources, EMPTY, plain)
  const audience = stringSet(params.audience, EMPTY, plain)
  const details = authorizationDetails(params.authorizationDetails)
  if (scopes === undefined || resources === undefined || audience === undefined || details === undefined) {
    return undefined
  }
  const id = plain.ok
    ? scope +
      SEP +
      connector +
      SEP +
      subject +
      SEP +
      (installationId ?? "") +
      SEP +
      scopes +
      SEP +
      resources +
      SEP +
      audience +
      SEP +
      details
    : SEP + JSON.stringify([scope, connector, subject, installationId ?? null, scopes, resources, audience, details])
  return { id, connector, subject, installationId }
}

/** The validity buffer of a request, or `undefined` when it is not a valid one. */
export const bufferOf = (params: unknown, fallback: number): number | undefined => {
  if (!isRecord(params)) return undefined
  const buffer = params.validityBufferMs
  if (buffer === undefined) return fallback
  return typeof buffer === "number" && Number.isFinite(buffer) && buffer >= 0 ? buffer : undefined
}
