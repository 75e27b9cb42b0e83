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

const isNonEmptyString = (u: unknown): u is string => typeof u === "string" && u.length > 0

/**
 * The canonical form of a string set: sorted, without duplicates. Returns
 * `undefined` for anything that is not an array of non-empty strings.
 */
const stringSet = (u: unknown, fallback: string): string | undefined => {
  if (u === undefined) return fallback
  if (!Array.isArray(u)) return undefined
  for (const item of u) if (!isNonEmptyString(item)) return undefined
  if (u.length <= 1) return JSON.stringify(u)
  return JSON.stringify(Array.from(new Set(u as Array<string>)).sort())
}

const DEFAULT_SCOPES = '["*"]'
const EMPTY = "[]"

const authorizationDetails = (u: unknown): string | undefined => {
  if (u === undefined) return EMPTY
  if (!Array.isArray(u)) return undefined
  const details: Array<string> = []
  for (const detail of u) {
    if (!isRecord(detail) || !isNonEmptyString(detail.type) || !isJsonValue(detail)) return undefined
    details.push(canonicalJson(detail))
  }
  return JSON.stringify(Array.from(new Set(details)).sort())
}

/**
 * The canonical identity of a subject, or `undefined` when the value is not a
 * valid subject. An exchanged token is kept only as its digest.
 */
export const subjectId = (u: unknown): string | undefined => {
  if (!isRecord(u)) return undefined
  switch (u.type) {
    case "app":
      return "app"
    case "user":
      if (!isNonEmptyString(u.id)) return undefined
      if (u.issuer !== undefined && !isNonEmptyString(u.issuer)) return undefined
      return `user:${JSON.stringify([u.issuer ?? null, u.id])}`
    case "jwt-bearer": {
      if (!isNonEmptyString(u.sub)) return undefined
      if (u.iss !== undefined && !isNonEmptyString(u.iss)) return undefined
      if (u.aud !== undefined && !isNonEmptyString(u.aud)) return undefined
      if (u.additionalClaims !== undefined && !(isRecord(u.additionalClaims) && isJsonValue(u.additionalClaims))) {
        return undefined
      }
      return `jwt-bearer:${canonicalJson({ sub: u.sub, iss: u.iss, aud: u.aud, additionalClaims: u.additionalClaims })}`
    }
    case "token": {
      const token = Redacted.isRedacted(u.token) ? Redacted.value(u.token) : u.token
      if (!isNonEmptyString(token)) return undefined
      return `token:${digest(token)}`
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
  const scopes = stringSet(params.scopes, DEFAULT_SCOPES)
  const resources = stringSet(params.resources, EMPTY)
  const audience = stringSet(params.audience, EMPTY)
  const details = authorizationDetails(params.authorizationDetails)
  if (scopes === undefined || resources === undefined || audience === undefined || details === undefined) {
    return undefined
  }
  const id = JSON.stringify([scope, connector, subject, installationId ?? null, scopes, resources, audience, details])
  return { id, connector, subject, installationId }
}

/** The validity buffer of a request, or `undefined` when it is not a valid one. */
export const bufferOf = (params: unknown, fallback: number): number | undefined => {
  if (!isRecord(params)) return undefined
  const buffer = params.validityBufferMs
  if (buffer === undefined) return fallback
  return typeof buffer === "number" && Number.isFinite(buffer) && buffer >= 0 ? buffer : undefined
}
