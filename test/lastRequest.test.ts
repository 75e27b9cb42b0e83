import { describe, expect, it } from "@effect/vitest"
import { Redacted } from "effect"
import * as fc from "effect/FastCheck"
import { bufferOf, cacheKey } from "../src/internal/cacheKey.js"
import { LastRequest } from "../src/internal/lastRequest.js"

const SCOPE = "c0"
const DEFAULT_BUFFER = 30_000

/** What `LastRequest.keyOf` must answer: the key and buffer built from scratch. */
const fresh = (connector: unknown, params: unknown) => {
  const key = cacheKey(SCOPE, connector, params)
  const bufferMs = bufferOf(params, DEFAULT_BUFFER)
  return key === undefined || bufferMs === undefined ? undefined : { key, bufferMs }
}

type Mutable = Record<string, unknown>

// Few values, so that edits often give a field back a value it had.
const word = fc.constantFrom("a", "b", "c")
const value = fc.oneof(word, fc.constant(undefined), fc.constantFrom(0, 5, Number.NaN), fc.constant(Redacted.make("a")))
const words = fc.array(word, { maxLength: 3 })

/** One change made in place to a request object (or the connector it is sent to). */
const edit = fc.oneof(
  fc.record({
    at: fc.constant("params" as const),
    field: fc.constantFrom("installationId", "validityBufferMs", "scopes", "resources", "audience", "extra"),
    to: fc.oneof(value, words)
  }),
  fc.record({
    at: fc.constant("subject" as const),
    field: fc.constantFrom("type", "id", "issuer", "token", "sub", "iss", "aud", "additionalClaims"),
    to: fc.oneof(value, fc.constantFrom("app", "user", "token", "jwt-bearer"), fc.constant({ a: 1 }))
  }),
  fc.record({
    at: fc.constantFrom("scopes" as const, "resources" as const, "audience" as const),
    index: fc.nat(3),
    to: fc.oneof(word, fc.constant(undefined))
  }),
  fc.record({ at: fc.constant("push" as const), to: word }),
  fc.record({ at: fc.constant("pop" as const) }),
  fc.record({ at: fc.constant("details" as const), to: fc.constantFrom(undefined, [{ type: "a" }], [{ type: "b" }]) }),
  fc.record({ at: fc.constant("connector" as const), to: fc.constantFrom("acme/api", "beta/api", "") })
)
type Edit = typeof edit extends fc.Arbitrary<infer A> ? A : never

const apply = (state: { connector: string; params: Mutable }, change: Edit): void => {
  const { params } = state
  const subject = params.subject as Mutable
  switch (change.at) {
    case "params":
      params[change.field] = Array.isArray(change.to) ? [...change.to] : change.to
      return
    case "subject":
      subject[change.field] = change.to
      return
    case "scopes":
    case "resources":
    case "audience": {
      const items = params[change.at]
      if (Array.isArray(items)) items[change.index] = change.to
      return
    }
    case "push":
    case "pop": {
      const scopes = params.scopes
      if (!Array.isArray(scopes)) return
      if (change.at === "push") scopes.push(change.to)
      else scopes.pop()
      return
    }
    case "details":
      params.authorizationDetails = change.to === undefined ? undefined : structuredClone(change.to)
      return
    case "connector":
      state.connector = change.to
  }
}

describe("LastRequest", () => {
  it.prop(
    "answers what a key built from scratch answers, for one request object changed in place between calls",
    { edits: fc.array(edit, { maxLength: 25 }) },
    ({ edits }) => {
      const last = new LastRequest(SCOPE, DEFAULT_BUFFER)
      const state = {
        connector: "acme/api",
        params: { subject: { type: "user", id: "a" }, scopes: ["b", "a"] } as Mutable
      }
      expect(last.keyOf(state.connector, state.params)).toEqual(fresh(state.connector, state.params))
      for (const change of edits) {
        apply(state, change)
        // Twice: the second call is the one answered from memory.
        expect(last.keyOf(state.connector, state.params)).toEqual(fresh(state.connector, state.params))
        expect(last.keyOf(state.connector, state.params)).toEqual(fresh(state.connector, state.params))
      }
    },
    { fastCheck: { numRuns: 2000 } }
  )

  it("answers the key of each object when calls alternate between two", () => {
    const last = new LastRequest(SCOPE, DEFAULT_BUFFER)
    const one = { subject: { type: "app" } }
    const two = { subject: { type: "user", id: "u" }, validityBufferMs: 5 }
    for (let i = 0; i < 3; i++) {
      expect(last.keyOf("acme/api", one)).toEqual(fresh("acme/api", one))
      expect(last.keyOf("acme/api", two)).toEqual(fresh("acme/api", two))
    }
  })

  it("answers the same key object while the request is unchanged", () => {
    const last = new LastRequest(SCOPE, DEFAULT_BUFFER)
    const params = { subject: { type: "user", id: "u" }, scopes: ["b", "a"] }
    expect(last.keyOf("acme/api", params)).toBe(last.keyOf("acme/api", params))
  })
})
