import { describe, expect, it } from "@effect/vitest"
import { Either, Redacted, Schema } from "effect"
import * as fc from "effect/FastCheck"
import { bufferOf, cacheKey } from "../src/internal/cacheKey.js"
import { isRecord } from "../src/internal/json.js"
import type { Subject } from "../src/Subject.js"
import { TokenParams } from "../src/Token.js"

const SCOPE = "http://connect.test\ncaller-digest"
const CONNECTOR = "acme/api"
const DEFAULT_BUFFER = 30_000

const keyOf = (params: unknown) => cacheKey(SCOPE, CONNECTOR, params)?.id
const validate = Schema.validateEither(TokenParams)
const decode = Schema.decodeUnknownEither(TokenParams)

describe("cacheKey", () => {
  it("is the same for scopes, resources and audience in another order or with duplicates", () => {
    const subject = { type: "user", id: "u1" }
    expect(keyOf({ subject, scopes: ["b", "a"] })).toBe(keyOf({ subject, scopes: ["a", "b", "a"] }))
    expect(keyOf({ subject, resources: ["r2", "r1"] })).toBe(keyOf({ subject, resources: ["r1", "r2", "r2"] }))
    expect(keyOf({ subject, audience: ["y", "x"] })).toBe(keyOf({ subject, audience: ["x", "y"] }))
    expect(keyOf({ subject })).toBe(keyOf({ subject, scopes: ["*"] }))
    expect(keyOf({ subject, resources: [] })).toBe(keyOf({ subject }))
    expect(keyOf({ subject, validityBufferMs: 5 })).toBe(keyOf({ subject }))
  })

  it("tells different requests apart", () => {
    const subject = { type: "user", id: "u1" }
    const keys = [
      { subject },
      { subject, scopes: [] },
      { subject, scopes: ["a"] },
      { subject, scopes: ["a", "b"] },
      { subject, resources: ["a"] },
      { subject, audience: ["a"] },
      { subject, installationId: "i" },
      { subject, authorizationDetails: [{ type: "a" }] },
      { subject: { type: "user", id: "u1", issuer: "i" } },
      { subject: { type: "user", id: "u2" } },
      { subject: { type: "jwt-bearer", sub: "u1" } },
      { subject: { type: "jwt-bearer", sub: "u1", additionalClaims: { a: 1 } } },
      { subject: { type: "token", token: Redacted.make("u1") } },
      { subject: { type: "app" } }
    ].map(keyOf)
    expect(keys.every((key) => key !== undefined)).toBe(true)
    expect(new Set(keys).size).toBe(keys.length)
    expect(cacheKey("another scope", CONNECTOR, { subject })?.id).not.toBe(keyOf({ subject }))
    expect(cacheKey(SCOPE, "beta/api", { subject })?.id).not.toBe(keyOf({ subject }))
  })

  it("canonicalizes authorization details and claims: members in any order, details as a set", () => {
    const detail = { type: "t", org: "acme", limits: { repos: 3, read: true } }
    const reordered = { limits: { read: true, repos: 3 }, org: "acme", type: "t" }
    expect(keyOf({ subject: { type: "app" }, authorizationDetails: [detail] })).toBe(
      keyOf({ subject: { type: "app" }, authorizationDetails: [reordered] })
    )
    expect(keyOf({ subject: { type: "app" }, authorizationDetails: [detail, { type: "u" }] })).toBe(
      keyOf({ subject: { type: "app" }, authorizationDetails: [{ type: "u" }, reordered, detail] })
    )
    expect(
      keyOf({ subject: { type: "jwt-bearer", sub: "s", additionalClaims: { a: 1, b: [1, { c: 2, d: 3 }] } } })
    ).toBe(keyOf({ subject: { type: "jwt-bearer", sub: "s", additionalClaims: { b: [1, { d: 3, c: 2 }], a: 1 } } }))
  })

  it("keeps an exchanged token only as its digest, the same for its plain and Redacted forms", () => {
    const key = cacheKey(SCOPE, CONNECTOR, { subject: { type: "token", token: Redacted.make("secret-value") } })
    expect(key?.id).toBeDefined()
    expect(key?.id).not.toContain("secret-value")
    expect(key?.subject).not.toContain("secret-value")
    expect(keyOf({ subject: { type: "token", token: "secret-value" } })).toBe(key?.id)
  })

  it("is undefined for requests that are not well formed", () => {
    const bad: ReadonlyArray<unknown> = [
      undefined,
      [],
      {},
      { subject: { type: "user", id: "" } },
      { subject: { type: "user", id: "u", issuer: 1 } },
      { subject: { type: "bot" } },
      { subject: { type: "token", token: Redacted.make("") } },
      { subject: { type: "app" }, scopes: "read" },
      { subject: { type: "app" }, scopes: [""] },
      { subject: { type: "app" }, installationId: "" },
      { subject: { type: "app" }, authorizationDetails: [{ org: "acme" }] },
      { subject: { type: "app" }, authorizationDetails: [{ type: "t", at: new Date(0) }] },
      { subject: { type: "jwt-bearer", sub: "s", additionalClaims: [1] } }
    ]
    for (const params of bad) expect(keyOf(params)).toBeUndefined()
    expect(cacheKey(SCOPE, "", { subject: { type: "app" } })).toBeUndefined()
  })

  it("leaves a record with a __proto__ member, which validation does not give back as is, to validation", () => {
    // JSON.parse makes `__proto__` an own member, as a request body would.
    const detail: unknown = JSON.parse('{"type":"t","__proto__":1}')
    const claims: unknown = JSON.parse('{"a":1,"__proto__":{"b":2}}')
    const withDetail = { subject: { type: "app" }, authorizationDetails: [detail] }
    const withClaims = { subject: { type: "jwt-bearer", sub: "s", additionalClaims: claims } }
    expect(keyOf(withDetail)).toBeUndefined()
    expect(keyOf(withClaims)).toBeUndefined()
    // Validation drops the member (or rejects the record); what it gives back has a key.
    expect(Either.isLeft(validate(withClaims))).toBe(true)
    expect(keyOf(Schema.validateSync(TokenParams)(withDetail))).toBe(
      keyOf({ subject: { type: "app" }, authorizationDetails: [{ type: "t" }] })
    )
    // Deeper down, validation keeps such a member, and so does the key.
    const nested = { subject: { type: "jwt-bearer", sub: "s", additionalClaims: { a: claims } } }
    expect(keyOf(Schema.validateSync(TokenParams)(nested))).toBe(keyOf(nested))
  })
})

// ---------------------------------------------------------------------------
// The fast path: a cache hit is answered from `cacheKey` and `bufferOf` alone,
// without Schema validation. It must never accept what validation rejects, nor
// find another entry than the one the validated request is cached under.

const nonEmpty = fc.string({ minLength: 1, maxLength: 6 })
const notAString = fc.oneof(
  fc.integer(),
  fc.boolean(),
  fc.constant(null),
  fc.constant([]),
  fc.constant({}),
  fc.constant(["a"])
)
/** A string field: mostly a good one, sometimes empty or not a string. */
const stringField = fc.oneof(
  { weight: 10, arbitrary: nonEmpty },
  { weight: 1, arbitrary: fc.constant("") },
  { weight: 1, arbitrary: notAString }
)
const optionalString = fc.oneof({ weight: 4, arbitrary: stringField }, { weight: 1, arbitrary: fc.constant(undefined) })

class Point {
  readonly x = 1
}
const notJson = fc.constantFrom<unknown>(
  undefined,
  Number.NaN,
  Number.POSITIVE_INFINITY,
  1n,
  new Date(0),
  new Map(),
  new Point(),
  Symbol.for("s"),
  () => 1
)
/** Member names, with the ones an object treats specially. */
const memberName = fc.oneof(
  { weight: 4, arbitrary: fc.string({ maxLength: 4 }) },
  { weight: 1, arbitrary: fc.constantFrom("__proto__", "constructor", "toString", "type", "hasOwnProperty") }
)
/** An object from entries (own data members, `__proto__` included), with or without a prototype. */
const objectOf = (value: fc.Arbitrary<unknown>): fc.Arbitrary<Record<string, unknown>> =>
  fc
    .tuple(fc.array(fc.tuple(memberName, value), { maxLength: 4 }), fc.boolean())
    .map(([entries, bare]) =>
      bare ? Object.assign(Object.create(null), Object.fromEntries(entries)) : Object.fromEntries(entries)
    )
/** JSON-ish data: mostly JSON, sometimes with values that are not. */
const { data } = fc.letrec<{ data: unknown }>((tie) => ({
  data: fc.oneof(
    { depthSize: "small", withCrossShrink: true },
    { weight: 6, arbitrary: fc.oneof(fc.constant(null), fc.boolean(), fc.integer(), nonEmpty) },
    { weight: 1, arbitrary: fc.double() },
    { weight: 1, arbitrary: notJson },
    { weight: 1, arbitrary: fc.array(tie("data"), { maxLength: 3 }) },
    { weight: 1, arbitrary: objectOf(tie("data")) }
  )
}))

/** A required string field, now and then left out. */
const requiredString = fc.oneof(
  { weight: 10, arbitrary: stringField },
  { weight: 1, arbitrary: fc.constant(undefined) }
)

const subject = fc.oneof(
  { weight: 3, arbitrary: fc.record({ type: fc.constant("app"), id: fc.anything() }, { requiredKeys: ["type"] }) },
  {
    weight: 3,
    arbitrary: fc.record(
      { type: fc.constant("user"), id: requiredString, issuer: optionalString },
      { requiredKeys: ["type", "id"] }
    )
  },
  {
    weight: 3,
    arbitrary: fc.record(
      {
        type: fc.constant("jwt-bearer"),
        sub: requiredString,
        iss: optionalString,
        aud: optionalString,
        additionalClaims: fc.oneof({ weight: 3, arbitrary: objectOf(data) }, { weight: 1, arbitrary: data })
      },
      { requiredKeys: ["type", "sub"] }
    )
  },
  {
    weight: 3,
    arbitrary: fc.record({
      type: fc.constant("token"),
      token: fc.oneof(
        { weight: 4, arbitrary: nonEmpty.map((token) => Redacted.make(token)) },
        { weight: 2, arbitrary: nonEmpty },
        { weight: 1, arbitrary: requiredString.map((token) => Redacted.make(token)) },
        { weight: 1, arbitrary: requiredString }
      )
    })
  },
  { weight: 1, arbitrary: fc.record({ type: fc.oneof(fc.constantFrom("App", "bot", ""), notAString) }) },
  { weight: 1, arbitrary: fc.oneof(notAString, nonEmpty, fc.constant(undefined)) }
)

const stringSet = fc.oneof(
  { weight: 8, arbitrary: fc.array(fc.constantFrom("*", "a", "b", "repo", "read:org"), { maxLength: 4 }) },
  { weight: 2, arbitrary: fc.array(stringField, { maxLength: 3 }) },
  { weight: 1, arbitrary: fc.oneof(nonEmpty, notAString) },
  { weight: 2, arbitrary: fc.constant(undefined) }
)

const authorizationDetail = fc.oneof(
  {
    weight: 6,
    arbitrary: fc
      .tuple(fc.option(stringField, { nil: undefined }), objectOf(data))
      .map(([type, rest]) => (type === undefined ? rest : { ...rest, type }))
  },
  { weight: 1, arbitrary: fc.oneof(notAString, nonEmpty) }
)

const validityBufferMs = fc.oneof(
  { weight: 4, arbitrary: fc.nat() },
  { weight: 1, arbitrary: fc.double() },
  { weight: 1, arbitrary: fc.constantFrom<unknown>(-1, -0, "100", null, undefined, Number.MAX_VALUE) }
)

const params = fc.oneof(
  {
    weight: 12,
    arbitrary: fc.record(
      {
        subject,
        installationId: optionalString,
        scopes: stringSet,
        resources: stringSet,
        audience: stringSet,
        authorizationDetails: fc.oneof(
          { weight: 3, arbitrary: fc.array(authorizationDetail, { maxLength: 3 }) },
          { weight: 1, arbitrary: fc.oneof(notAString, fc.constant(undefined)) }
        ),
        validityBufferMs,
        somethingElse: fc.anything()
      },
      { requiredKeys: ["subject"] }
    )
  },
  { weight: 1, arbitrary: fc.oneof(notAString, nonEmpty, fc.constant(undefined), fc.record({ scopes: stringSet })) }
)

/** An exchanged token given as a plain string: the form the Promise API hands to the fast path. */
const hasPlainExchangedToken = (u: unknown): boolean =>
  isRecord(u) && isRecord(u.subject) && u.subject.type === "token" && typeof u.subject.token === "string"

describe("cacheKey, the fast path of a cache hit", () => {
  it.prop(
    "gives a key only for params that validation accepts, and the key of the validated params",
    { params },
    ({ params }) => {
      const key = cacheKey(SCOPE, CONNECTOR, params)
      const buffer = bufferOf(params, DEFAULT_BUFFER)
      if (key === undefined || buffer === undefined) return
      // The Effect API passes the exchanged token Redacted (the schema's type
      // side); the Promise API passes it as a string (the encoded side).
      const accepted = hasPlainExchangedToken(params) ? decode(params) : validate(params)
      if (Either.isLeft(accepted)) {
        throw new Error(`cacheKey accepted params that validation rejects: ${accepted.left.message}`)
      }
      expect(cacheKey(SCOPE, CONNECTOR, accepted.right)).toEqual(key)
      expect(accepted.right.validityBufferMs ?? DEFAULT_BUFFER).toBe(buffer)
    },
    { fastCheck: { numRuns: 3000 } }
  )

  it.prop(
    "gives a key for every valid request, the same for its Redacted and plain forms",
    { params: params.filter((u) => Either.isRight(validate(u))) },
    ({ params }) => {
      const valid = Schema.validateSync(TokenParams)(params)
      const key = cacheKey(SCOPE, CONNECTOR, valid)
      expect(key).toBeDefined()
      expect(bufferOf(valid, DEFAULT_BUFFER)).toBe(valid.validityBufferMs ?? DEFAULT_BUFFER)
      expect(cacheKey(SCOPE, CONNECTOR, Schema.encodeSync(TokenParams)(valid))).toEqual(key)
    },
    { fastCheck: { numRuns: 500 } }
  )
})

// ---------------------------------------------------------------------------
// The key against a model of what makes two requests the same: the server and
// credential, the connector, the subject, the installation, the sets of scopes
// (["*"] when omitted), resources and audience, and the set of authorization
// details, compared as JSON with members in any order. Two requests share a key
// exactly when the model says they are the same request: a shared key for two
// different requests would serve one caller's token to another.

/** Short strings over a tiny alphabet, with the characters a key might use as separators. */
const tiny = fc
  .array(fc.constantFrom("a", "0", "1", "\u0000", '"'), { minLength: 1, maxLength: 3 })
  .map((chars) => chars.join(""))
const { tinyJson } = fc.letrec<{ tinyJson: unknown }>((tie) => ({
  tinyJson: fc.oneof(
    { depthSize: "small" },
    fc.constantFrom(null, true, 0, 1),
    tiny,
    fc.array(tie("tinyJson"), { maxLength: 2 }),
    fc.dictionary(tiny, tie("tinyJson"), { maxKeys: 2 })
  )
}))
const tinyObject = fc.dictionary(tiny, tinyJson, { maxKeys: 2 })

const validSubject: fc.Arbitrary<Subject> = fc.oneof(
  { weight: 3, arbitrary: fc.constant<Subject>({ type: "app" }) },
  fc.record({ type: fc.constant("user" as const), id: tiny, issuer: tiny }, { requiredKeys: ["type", "id"] }),
  fc.record(
    { type: fc.constant("jwt-bearer" as const), sub: tiny, iss: tiny, aud: tiny, additionalClaims: tinyObject },
    { requiredKeys: ["type", "sub"] }
  ),
  tiny.map((token): Subject => ({ type: "token", token: Redacted.make(token) }))
)
const validParams: fc.Arbitrary<TokenParams> = fc.record(
  {
    subject: validSubject,
    installationId: tiny,
    scopes: fc.array(tiny, { maxLength: 3 }),
    resources: fc.array(tiny, { maxLength: 3 }),
    audience: fc.array(tiny, { maxLength: 3 }),
    authorizationDetails: fc.array(
      fc.tuple(tiny, tinyObject).map(([type, rest]) => ({ ...rest, type })),
      { maxLength: 2 }
    )
  },
  { requiredKeys: ["subject"] }
)

/** JSON with the members of every object sorted (arrays keep their order). */
const sortedJson = (u: unknown): string =>
  Array.isArray(u)
    ? `[${u.map(sortedJson).join(",")}]`
    : isRecord(u)
      ? `{${Object.keys(u)
          .filter((name) => u[name] !== undefined)
          .sort()
          .map((name) => `${JSON.stringify(name)}:${sortedJson(u[name])}`)
          .join(",")}}`
      : JSON.stringify(u)
const asSet = (items: ReadonlyArray<string>) => Array.from(new Set(items)).sort()
const subjectModel = (subject: Subject): ReadonlyArray<unknown> => {
  switch (subject.type) {
    case "app":
      return ["app"]
    case "user":
      return ["user", subject.id, subject.issuer ?? null]
    case "jwt-bearer":
      return [
        "jwt-bearer",
        subject.sub,
        subject.iss ?? null,
        subject.aud ?? null,
        subject.additionalClaims === undefined ? null : sortedJson(subject.additionalClaims)
      ]
    case "token":
      return ["token", Redacted.value(subject.token)]
  }
}
const model = (scope: string, connector: string, params: TokenParams): string =>
  JSON.stringify([
    scope,
    connector,
    subjectModel(params.subject),
    params.installationId ?? null,
    asSet(params.scopes ?? ["*"]),
    asSet(params.resources ?? []),
    asSet(params.audience ?? []),
    asSet((params.authorizationDetails ?? []).map(sortedJson))
  ])

/** Object members in reverse order, at every depth; array order kept. */
const reversedMembers = <A>(value: A): A =>
  (Array.isArray(value)
    ? value.map(reversedMembers)
    : isRecord(value)
      ? Object.fromEntries(
          Object.entries(value)
            .reverse()
            .map(([name, member]) => [name, reversedMembers(member)])
        )
      : value) as A
const reversedSet = (items: ReadonlyArray<string>) => [...items].reverse().concat(items.slice(0, 1))
/** The same request written differently: sets reordered and repeated, members reordered, defaults spelled out. */
const sameRequest = (params: TokenParams): TokenParams => ({
  ...params,
  subject:
    params.subject.type === "token"
      ? { type: "token", token: Redacted.make(Redacted.value(params.subject.token)) }
      : reversedMembers(params.subject),
  scopes: reversedSet(params.scopes ?? ["*"]),
  resources: reversedSet(params.resources ?? []),
  audience: reversedSet(params.audience ?? []),
  authorizationDetails: [...reversedMembers(params.authorizationDetails ?? [])].reverse(),
  validityBufferMs: 1
})

describe("cacheKey against a model of request identity", () => {
  it("keeps requests apart whose strings hold NUL or other separator-like characters", () => {
    const app = { type: "app" } as const
    // Pairs of different requests whose parts, naively joined with a NUL, are one string.
    const pairs: ReadonlyArray<readonly [readonly [string, TokenParams], readonly [string, TokenParams]]> = [
      [
        ["a", { subject: app, scopes: ["s\u00001"] }],
        ["a", { subject: app, scopes: ["s"], resources: ["0"] }]
      ],
      [
        ["a", { subject: app, resources: ["r\u00000"] }],
        ["a", { subject: app, resources: ["r"], audience: ["0"] }]
      ],
      [
        ["a\u0000user", { subject: app, scopes: ["0"] }],
        ["a", { subject: { type: "user", id: "app" }, installationId: "1", scopes: [] }]
      ],
      [
        ["a", { subject: app, installationId: "i\u00001", scopes: [] }],
        ["a", { subject: app, installationId: "i", scopes: ["0"] }]
      ],
      [
        ["a", { subject: { type: "user", id: "u\u0000x" }, installationId: "1", scopes: [] }],
        ["a", { subject: { type: "user", id: "u", issuer: "x" }, scopes: ["0"] }]
      ],
      [
        ["a", { subject: { type: "user", id: "u", issuer: "x\u00001" }, scopes: [] }],
        ["a", { subject: { type: "user", id: "u", issuer: "x" }, installationId: "1", scopes: [] }]
      ],
      [
        ["a", { subject: { type: "user", id: "ux" } }],
        ["a", { subject: { type: "user", id: "u", issuer: "x" } }]
      ],
      [
        ["a", { subject: { type: "jwt-bearer", sub: "u", iss: "x" } }],
        ["a", { subject: { type: "jwt-bearer", sub: "u", aud: "x" } }]
      ],
      [
        ["a", { subject: { type: "user", id: 'u","x' } }],
        ["a", { subject: { type: "user", id: "u", issuer: "x" } }]
      ],
      [
        ["a", { subject: app, scopes: ["a,b"] }],
        ["a", { subject: app, scopes: ["a", "b"] }]
      ]
    ]
    for (const [[connectorA, a], [connectorB, b]] of pairs) {
      expect(model("c0", connectorA, a)).not.toBe(model("c0", connectorB, b))
      const keyA = cacheKey("c0", connectorA, a)
      const keyB = cacheKey("c0", connectorB, b)
      expect(keyA).toBeDefined()
      expect(keyB).toBeDefined()
      expect(keyA?.id).not.toBe(keyB?.id)
    }
  })

  it.prop(
    "two requests share a key exactly when they are the same request",
    {
      requests: fc.array(
        fc.tuple(
          fc.constantFrom("c0", "c1"),
          fc.constantFrom("a", "a\u00000", "0", "\u0000"),
          validParams,
          fc.boolean()
        ),
        { minLength: 1, maxLength: 12 }
      )
    },
    ({ requests }) => {
      const all = requests.flatMap(([scope, connector, params, twin]) =>
        (twin ? [params, sameRequest(params)] : [params]).map((p) => {
          Schema.validateSync(TokenParams)(p)
          const key = cacheKey(scope, connector, p)
          if (key === undefined) throw new Error(`no key for a valid request: ${model(scope, connector, p)}`)
          return { id: key.id, model: model(scope, connector, p) }
        })
      )
      for (const [i, a] of all.entries()) {
        for (const b of all.slice(i + 1)) {
          if ((a.id === b.id) !== (a.model === b.model)) {
            throw new Error(
              `${a.id === b.id ? "one key for different requests" : "two keys for one request"}:\n${a.model}\n${b.model}`
            )
          }
        }
      }
    },
    { fastCheck: { numRuns: 1000 } }
  )
})
