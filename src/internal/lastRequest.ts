import { bufferOf, type CacheKey, cacheKey } from "./cacheKey.js"

/** The cache key of a request and the validity buffer it asks for. */
export interface KeyedRequest {
  readonly key: CacheKey
  readonly bufferMs: number
}

/** A copy of an array's items, or `undefined` for anything else. */
const itemsOf = (u: unknown): ReadonlyArray<unknown> | undefined => (Array.isArray(u) ? u.slice() : undefined)

/** Whether `u` still holds `items` (it is the array they were copied from, or both are absent). */
const sameItems = (u: unknown, items: ReadonlyArray<unknown> | undefined): boolean => {
  if (items === undefined) return u === undefined
  const array = u as ReadonlyArray<unknown>
  if (array.length !== items.length) return false
  for (let i = 0; i < items.length; i++) if (array[i] !== items[i]) return false
  return true
}

/**
 * The key and buffer of the last request object a client saw, reused while
 * the same object comes again with the same field values.
 *
 * Callers usually pass one request object again and again (a constant, or
 * one built once per job), and building its key is most of a cache hit's
 * cost: strings joined, scopes sorted, a new string hashed by the `Map`.
 * Identity alone would serve a stale key to a caller that changed the
 * object in place, so every field the key is made of is compared too: plain
 * reads and `===`, no allocation. Requests with authorization details or
 * subject claims (nested objects) are not remembered.
 */
export class LastRequest {
  private params: object | undefined = undefined
  private keyed: KeyedRequest | undefined = undefined
  private connector: unknown = undefined
  private subject: unknown = undefined
  private installationId: unknown = undefined
  private validityBufferMs: unknown = undefined
  private scopes: unknown = undefined
  private resources: unknown = undefined
  private audience: unknown = undefined
  private scopeItems: ReadonlyArray<unknown> | undefined = undefined
  private resourceItems: ReadonlyArray<unknown> | undefined = undefined
  private audienceItems: ReadonlyArray<unknown> | undefined = undefined
  // The subject's fields: `type` and those of each type the key reads.
  private type: unknown = undefined
  private id: unknown = undefined
  private issuer: unknown = undefined
  private token: unknown = undefined
  private sub: unknown = undefined
  private iss: unknown = undefined
  private aud: unknown = undefined

  constructor(
    /** The client's server and credential (see `scopeId`). */
    private readonly scope: string,
    /** The buffer of a request that gives none. */
    private readonly defaultBufferMs: number
  ) {}

  /** The key and buffer of a request, or `undefined` when it is not well formed (the slow way names why). */
  keyOf(connector: unknown, params: unknown): KeyedRequest | undefined {
    if (params === this.params && this.unchanged(connector, params as Record<string, unknown>)) return this.keyed
    const key = cacheKey(this.scope, connector, params)
    if (key === undefined) return undefined
    const bufferMs = bufferOf(params, this.defaultBufferMs)
    if (bufferMs === undefined) return undefined
    const keyed = { key, bufferMs }
    this.remember(connector, params as Record<string, unknown>, keyed)
    return keyed
  }

  private unchanged(connector: unknown, p: Record<string, unknown>): boolean {
    const s = this.subject as Record<string, unknown>
    return (
      connector === this.connector &&
      p.subject === s &&
      p.installationId === this.installationId &&
      p.validityBufferMs === this.validityBufferMs &&
      p.authorizationDetails === undefined &&
      p.scopes === this.scopes &&
      p.resources === this.resources &&
      p.audience === this.audience &&
      s.type === this.type &&
      s.id === this.id &&
      s.issuer === this.issuer &&
      s.token === this.token &&
      s.sub === this.sub &&
      s.iss === this.iss &&
      s.aud === this.aud &&
      s.additionalClaims === undefined &&
      sameItems(p.scopes, this.scopeItems) &&
      sameItems(p.resources, this.resourceItems) &&
      sameItems(p.audience, this.audienceItems)
    )
  }

  private remember(connector: unknown, p: Record<string, unknown>, keyed: KeyedRequest): void {
    // A well-formed key means a subject object and arrays (or nothing) for the sets.
    const s = p.subject as Record<string, unknown>
    if (p.authorizationDetails !== undefined || s.additionalClaims !== undefined) {
      this.params = undefined
      return
    }
    this.params = p
    this.keyed = keyed
    this.connector = connector
    this.subject = s
    this.installationId = p.installationId
    this.validityBufferMs = p.validityBufferMs
    this.scopes = p.scopes
    this.resources = p.resources
    this.audience = p.audience
    this.scopeItems = itemsOf(p.scopes)
    this.resourceItems = itemsOf(p.resources)
    this.audienceItems = itemsOf(p.audience)
    this.type = s.type
    this.id = s.id
    this.issuer = s.issuer
    this.token = s.token
    this.sub = s.sub
    this.iss = s.iss
    this.aud = s.aud
  }
}
