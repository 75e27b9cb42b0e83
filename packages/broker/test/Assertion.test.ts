import { generateKeyPairSync, type KeyObject, type KeyPairKeyObjectResult } from "node:crypto"
import { inspect } from "node:util"
import { FetchHttpClient } from "@effect/platform"
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "@effect/vitest"
import { Cause, Effect, Layer, Redacted, TestClock } from "effect"
import { decodeProtectedHeader, exportJWK, jwtVerify } from "jose"
import {
  type AssertionAlgorithm,
  AssertionError,
  type AssertionInput,
  DEFAULT_LIFETIME_SECONDS,
  MAX_LIFETIME_SECONDS,
  parsePrivateKey,
  REGISTERED_CLAIMS,
  signAssertion
} from "../src/Assertion.js"
import { ProviderClient, ProviderClientConfig, type ProviderEndpoint } from "../src/ProviderClient.js"
import { type OAuthProviderHarness, startOAuthProvider } from "./support/oauthProvider.js"
import { requestToken } from "./support/providerClient.js"

const NOW = 1_700_000_000_000
const ISSUER = "https://workload.test"
const SUBJECT = "workload-42"
const AUDIENCE = "https://provider.test/token"
const RESOURCE = "https://api.test/assertion"

interface TestKey {
  readonly pem: string
  readonly publicKey: KeyObject
}

const pemOf = (pair: KeyPairKeyObjectResult, type: "pkcs8" | "pkcs1" | "sec1" = "pkcs8"): TestKey => ({
  pem: pair.privateKey.export({ type, format: "pem" }).toString(),
  publicKey: pair.publicKey
})

const RSA = pemOf(generateKeyPairSync("rsa", { modulusLength: 2048 }))
const RSA_PKCS1 = pemOf(generateKeyPairSync("rsa", { modulusLength: 2048 }), "pkcs1")
const RSA_SMALL = pemOf(generateKeyPairSync("rsa", { modulusLength: 1024 }))
const EC = pemOf(generateKeyPairSync("ec", { namedCurve: "P-256" }))
const EC_SEC1 = pemOf(generateKeyPairSync("ec", { namedCurve: "P-256" }), "sec1")
const EC_P384 = pemOf(generateKeyPairSync("ec", { namedCurve: "P-384" }))
const ED25519 = pemOf(generateKeyPairSync("ed25519"))
const ENCRYPTED = generateKeyPairSync("rsa", {
  modulusLength: 2048,
  privateKeyEncoding: { type: "pkcs8", format: "pem", cipher: "aes-256-cbc", passphrase: "passphrase" },
  publicKeyEncoding: { type: "spki", format: "pem" }
}).privateKey
/** PKCS#1 with the encryption in PEM headers (`Proc-Type: 4,ENCRYPTED`), as `openssl genrsa -aes256` writes. */
const ENCRYPTED_PKCS1 = generateKeyPairSync("rsa", { modulusLength: 2048 })
  .privateKey.export({ type: "pkcs1", format: "pem", cipher: "aes-256-cbc", passphrase: "passphrase" })
  .toString()

const keyFor = (algorithm: AssertionAlgorithm): TestKey => (algorithm === "RS256" ? RSA : EC)

const input = (overrides: Partial<AssertionInput> = {}): AssertionInput => ({
  privateKey: Redacted.make(RSA.pem),
  algorithm: "RS256",
  issuer: ISSUER,
  subject: SUBJECT,
  audience: AUDIENCE,
  ...overrides
})

const withKey = (key: TestKey, algorithm: AssertionAlgorithm, overrides: Partial<AssertionInput> = {}) =>
  input({ privateKey: Redacted.make(key.pem), algorithm, ...overrides })

/** Signs at `NOW` on the test clock. */
const sign = (assertion: AssertionInput) =>
  TestClock.setTime(NOW).pipe(Effect.zipRight(signAssertion(assertion)), Effect.map(Redacted.value))

const signError = (assertion: AssertionInput) =>
  TestClock.setTime(NOW).pipe(Effect.zipRight(Effect.flip(signAssertion(assertion))))

/** Verifies the signature against the public key at `NOW` and returns the header and claims. */
const verify = (jwt: string, key: TestKey, algorithm: AssertionAlgorithm, at = NOW) =>
  Effect.promise(async () => {
    const { payload, protectedHeader } = await jwtVerify(jwt, key.publicKey, {
      algorithms: [algorithm],
      currentDate: new Date(at)
    })
    return { header: protectedHeader, claims: payload }
  })

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/

/** Every way an error can be turned into text. */
const renderings = (error: AssertionError): ReadonlyArray<string> => [
  error.message,
  String(error),
  JSON.stringify(error),
  inspect(error, { depth: 10 }),
  error.stack ?? "",
  Cause.pretty(Cause.fail(error))
]

/** The base64 lines of a PEM: the key material. */
const materialOf = (pem: string): ReadonlyArray<string> =>
  pem.split(/\n|\\n/).filter((line) => line.length >= 16 && !line.startsWith("-----") && !line.includes(":"))

const expectNoKeyMaterial = (error: AssertionError, pem: string) => {
  const material = materialOf(pem)
  expect(material.length).toBeGreaterThan(0)
  for (const text of renderings(error)) {
    expect(text).not.toContain(pem.trim())
    for (const line of material) expect(text).not.toContain(line)
  }
}

describe("signAssertion", () => {
  it.effect("RS256: verifies with the public key, with the header and the registered claims", () =>
    Effect.gen(function* () {
      const jwt = yield* sign(input({ keyId: "rsa-1" }))
      const { header, claims } = yield* verify(jwt, RSA, "RS256")
      expect(header).toEqual({ alg: "RS256", typ: "JWT", kid: "rsa-1" })
      const iat = NOW / 1000
      expect(claims).toEqual({
        iss: ISSUER,
        sub: SUBJECT,
        aud: AUDIENCE,
        iat,
        exp: iat + DEFAULT_LIFETIME_SECONDS,
        jti: expect.stringMatching(UUID)
      })
    })
  )

  it.effect("ES256: verifies with the public key; no kid unless one is given; exp - iat is the lifetime", () =>
    Effect.gen(function* () {
      const jwt = yield* sign(withKey(EC, "ES256", { lifetimeSeconds: 60 }))
      expect(decodeProtectedHeader(jwt)).toEqual({ alg: "ES256", typ: "JWT" })
      const { header, claims } = yield* verify(jwt, EC, "ES256")
      expect(header).toEqual({ alg: "ES256", typ: "JWT" })
      expect(claims).toMatchObject({ iss: ISSUER, sub: SUBJECT, aud: AUDIENCE, iat: NOW / 1000 })
      expect((claims.exp ?? 0) - (claims.iat ?? 0)).toBe(60)
    })
  )

  it.effect("the lifetime may be anything from 1 second to the maximum", () =>
    Effect.gen(function* () {
      for (const lifetimeSeconds of [1, DEFAULT_LIFETIME_SECONDS, MAX_LIFETIME_SECONDS]) {
        const { claims } = yield* verify(yield* sign(input({ lifetimeSeconds })), RSA, "RS256")
        expect((claims.exp ?? 0) - (claims.iat ?? 0)).toBe(lifetimeSeconds)
      }
    })
  )

  it.effect("PKCS#1 RSA and SEC 1 EC keys are read, and so is a PEM with its line breaks written as \\n", () =>
    Effect.gen(function* () {
      yield* verify(yield* sign(withKey(RSA_PKCS1, "RS256")), RSA_PKCS1, "RS256")
      yield* verify(yield* sign(withKey(EC_SEC1, "ES256")), EC_SEC1, "ES256")
      const oneLine = { ...EC, pem: EC.pem.replace(/\n/g, "\\n") }
      expect(oneLine.pem).not.toContain("\n")
      yield* verify(yield* sign(withKey(oneLine, "ES256")), EC, "ES256")
    })
  )

  it.effect("iat and exp come from the Clock, in whole seconds", () =>
    Effect.gen(function* () {
      const first = yield* verify(yield* sign(input()), RSA, "RS256")
      yield* TestClock.adjust("90999 millis")
      const second = yield* verify(Redacted.value(yield* signAssertion(input())), RSA, "RS256", NOW + 90_999)
      expect(second.claims.iat).toBe((first.claims.iat ?? 0) + 90)
      expect(second.claims.exp).toBe((first.claims.exp ?? 0) + 90)
    })
  )

  it.effect("every assertion has its own jti", () =>
    Effect.gen(function* () {
      const jtis = new Set<unknown>()
      for (let i = 0; i < 10; i++) {
        const { claims } = yield* verify(yield* sign(input()), RSA, "RS256")
        jtis.add(claims.jti)
      }
      expect(jtis.size).toBe(10)
    })
  )

  it.effect("additional claims are merged", () =>
    Effect.gen(function* () {
      const additionalClaims = { scope: "api:read", tenant: { id: "t-1", regions: ["eu", "us"] }, nbf: NOW / 1000 }
      const { claims } = yield* verify(yield* sign(input({ additionalClaims })), RSA, "RS256")
      expect(claims).toMatchObject({ ...additionalClaims, iss: ISSUER, sub: SUBJECT, aud: AUDIENCE })
    })
  )

  it.effect("an additional claim may not override a registered claim: it is refused, naming the claim", () =>
    Effect.gen(function* () {
      for (const claim of REGISTERED_CLAIMS) {
        const error = yield* signError(input({ additionalClaims: { extra: 1, [claim]: "override" } }))
        expect(error).toBeInstanceOf(AssertionError)
        expect(error).toMatchObject({ _tag: "AssertionError", kind: "reserved_claim", claim })
        expect(error.message).toContain(`may not set "${claim}"`)
        expect(error.message).toContain("Remove it from additionalClaims")
      }
    })
  )

  it.effect("empty iss, sub, aud or kid are refused", () =>
    Effect.gen(function* () {
      const cases: ReadonlyArray<readonly [Partial<AssertionInput>, string]> = [
        [{ issuer: "" }, '"iss" is empty'],
        [{ subject: " " }, '"sub" is empty'],
        [{ audience: "" }, '"aud" is empty'],
        [{ keyId: "" }, "the key id (kid) is empty"]
      ]
      for (const [overrides, reason] of cases) {
        const error = yield* signError(input(overrides))
        expect(error).toMatchObject({ kind: "invalid_claims", reason })
        expect(error.message).toBe(`The claims of a JWT bearer assertion are not valid: ${reason}`)
      }
    })
  )

  it.effect("additional claims that are not JSON are refused", () =>
    Effect.gen(function* () {
      const error = yield* signError(input({ additionalClaims: { big: 1n } }))
      expect(error.kind).toBe("invalid_claims")
      expect(error.message).toContain("cannot be written as JSON")
    })
  )

  it.effect("a lifetime out of range is refused", () =>
    Effect.gen(function* () {
      const cases: ReadonlyArray<readonly [number, string]> = [
        [0, "is less than 1 second"],
        [-300, "is less than 1 second"],
        [MAX_LIFETIME_SECONDS + 1, `is more than ${MAX_LIFETIME_SECONDS} seconds`],
        [86_400, `is more than ${MAX_LIFETIME_SECONDS} seconds`],
        [1.5, "is not a whole number of seconds"],
        [Number.NaN, "is not a whole number of seconds"],
        [Number.POSITIVE_INFINITY, "is not a whole number of seconds"]
      ]
      for (const [lifetimeSeconds, reason] of cases) {
        const error = yield* signError(input({ lifetimeSeconds }))
        expect(error).toMatchObject({ _tag: "AssertionError", kind: "invalid_lifetime", reason })
        expect(error.message).toBe(
          `The lifetime of a JWT bearer assertion ${reason}: give a whole number of seconds from 1 to 3600 (default 300)`
        )
        expectNoKeyMaterial(error, RSA.pem)
      }
    })
  )

  it.effect("a key of the wrong type for the algorithm is refused, saying what it is", () =>
    Effect.gen(function* () {
      const cases: ReadonlyArray<readonly [TestKey, AssertionAlgorithm, string]> = [
        [RSA, "ES256", "is an RSA key of 2048 bits"],
        [EC, "RS256", "is an EC key on P-256"],
        [EC_P384, "ES256", "is an EC key on P-384"],
        [RSA_SMALL, "RS256", "is an RSA key of 1024 bits"],
        [ED25519, "RS256", "is an Ed25519 key"],
        [ED25519, "ES256", "is an Ed25519 key"]
      ]
      for (const [key, algorithm, reason] of cases) {
        const error = yield* signError(withKey(key, algorithm))
        expect(error).toMatchObject({ _tag: "AssertionError", kind: "key_mismatch", algorithm, reason })
        expect(error.message).toBe(
          `The private key for JWT bearer assertions does not fit ${algorithm}: it ${reason}. Use an RSA key of at least 2048 bits for RS256 or an EC P-256 key for ES256, or set the algorithm that fits the key`
        )
        expectNoKeyMaterial(error, key.pem)
      }
    })
  )

  it.effect("a malformed or unusable PEM is refused without quoting it", () =>
    Effect.gen(function* () {
      const lines = RSA.pem.trim().split("\n")
      const truncated = [...lines.slice(0, 6), lines[lines.length - 1]].join("\n")
      const garbled = RSA.pem.replace(/[A-Za-z]/g, (c, i: number) => (i > 40 && i % 7 === 0 ? "!" : c))
      const publicPem = RSA.publicKey.export({ type: "spki", format: "pem" }).toString()
      const base64Only = lines.slice(1, -1).join("\n")
      const cases: ReadonlyArray<readonly [string, string]> = [
        [truncated, "could not be read"],
        [garbled, "could not be read"],
        [base64Only, "is not PEM"],
        [publicPem, "is a PUBLIC KEY, not a private key"],
        [ENCRYPTED, "is encrypted with a passphrase"],
        [ENCRYPTED_PKCS1, "is encrypted with a passphrase"],
        [JSON.stringify({ type: "service_account", private_key: RSA.pem }), "is JSON, not PEM"]
      ]
      for (const [pem, reason] of cases) {
        const error = yield* signError(input({ privateKey: Redacted.make(pem) }))
        expect(error).toMatchObject({ _tag: "AssertionError", kind: "invalid_key" })
        expect(error.reason).toContain(reason)
        expect(error.message).toContain("configure an unencrypted PEM private key")
        expectNoKeyMaterial(error, pem.includes("-----") ? pem : RSA.pem)
        expectNoKeyMaterial(error, RSA.pem)
      }
      const empty = yield* signError(input({ privateKey: Redacted.make("  ") }))
      expect(empty.message).toMatch(/^The private key for JWT bearer assertions is empty: /)
    })
  )
})

describe("parsePrivateKey", () => {
  it.effect("gives the private key when it fits the algorithm", () =>
    Effect.gen(function* () {
      for (const [key, algorithm] of [
        [RSA, "RS256"],
        [RSA_PKCS1, "RS256"],
        [EC, "ES256"],
        [EC_SEC1, "ES256"]
      ] as const) {
        const parsed = yield* parsePrivateKey(Redacted.make(key.pem), algorithm)
        expect(parsed.type).toBe("private")
        expect(parsed.asymmetricKeyType).toBe(algorithm === "RS256" ? "rsa" : "ec")
      }
    })
  )

  it.effect("refuses a key that does not fit, as signing does", () =>
    Effect.gen(function* () {
      const error = yield* Effect.flip(parsePrivateKey(Redacted.make(EC.pem), "RS256"))
      expect(error).toMatchObject({ kind: "key_mismatch", algorithm: "RS256", reason: "is an EC key on P-256" })
    })
  )
})

// ---------------------------------------------------------------------------------------------------------------
// End to end: a real authorization server exchanges the assertions
// ---------------------------------------------------------------------------------------------------------------

describe("signAssertion with a real authorization server (RFC 7523 grant)", () => {
  let provider: OAuthProviderHarness
  const refusals: Array<string> = []

  beforeAll(async () => {
    const keys = [
      { ...(await exportJWK(RSA.publicKey)), kid: "rsa-1", alg: "RS256" },
      { ...(await exportJWK(EC.publicKey)), kid: "ec-1", alg: "ES256" }
    ]
    provider = await startOAuthProvider({ jwtBearer: { key: { keys }, issuers: [ISSUER] } })
    // The server answers every refused assertion with the same description; its reason is in the detail.
    provider.provider.on("grant.error", (_ctx, error) => {
      refusals.push(error.error_detail ?? error.message)
    })
  })

  beforeEach(() => {
    refusals.length = 0
  })

  afterAll(async () => {
    await provider?.close()
  })

  const endpoint = (): ProviderEndpoint => ({
    tokenEndpoint: provider.tokenEndpoint,
    clientId: provider.clients.broker.clientId,
    clientSecret: Redacted.make(provider.clients.broker.clientSecret),
    authMethod: provider.clients.broker.authMethod,
    defaultLifetimeSeconds: 60
  })

  /** An assertion for the server's token endpoint, signed at the real time. */
  const assertion = (algorithm: AssertionAlgorithm, overrides: Partial<AssertionInput> = {}) =>
    signAssertion(
      withKey(keyFor(algorithm), algorithm, {
        keyId: algorithm === "RS256" ? "rsa-1" : "ec-1",
        audience: provider.tokenEndpoint,
        ...overrides
      })
    )

  const exchange = (signed: Redacted.Redacted<string>) =>
    requestToken(endpoint(), { type: "jwt_bearer", assertion: signed, resource: [RESOURCE], scope: ["api:read"] }).pipe(
      Effect.provide(
        Layer.merge(
          ProviderClient.layer.pipe(Layer.provide(FetchHttpClient.layer)),
          ProviderClientConfig.layer({ retries: 0 })
        )
      )
    )

  for (const algorithm of ["RS256", "ES256"] as const) {
    it.live(`${algorithm}: the assertion is exchanged for a token of the subject`, () =>
      Effect.gen(function* () {
        const token = yield* exchange(yield* assertion(algorithm))
        expect(token.tokenType).toBe("Bearer")
        const introspection = yield* Effect.promise(() => provider.introspect(Redacted.value(token.accessToken)))
        expect(introspection).toMatchObject({ active: true, sub: SUBJECT, aud: RESOURCE, scope: "api:read" })
        expect(provider.serverErrors).toEqual([])
      })
    )
  }

  it.live("additional claims do not get in the way", () =>
    Effect.gen(function* () {
      const token = yield* exchange(yield* assertion("ES256", { additionalClaims: { tenant: "t-1" } }))
      const introspection = yield* Effect.promise(() => provider.introspect(Redacted.value(token.accessToken)))
      expect(introspection).toMatchObject({ active: true, sub: SUBJECT })
    })
  )

  /** The refusal, as the broker sees it and as the server explained it. */
  const refused = (signed: Redacted.Redacted<string>) =>
    Effect.gen(function* () {
      const error = yield* Effect.flip(exchange(signed))
      expect(error._tag).toBe("ProviderError")
      expect(error.kind).toBe("invalid_grant")
      expect(error.grantType).toBe("jwt_bearer")
      expect(error.message).toContain("sign a new assertion")
      for (const text of [error.message, JSON.stringify(error)]) {
        expect(text).not.toContain(Redacted.value(signed))
      }
      return refusals.join("; ")
    })

  it.live("a replayed assertion (the same jti) is refused with invalid_grant", () =>
    Effect.gen(function* () {
      const signed = yield* assertion("RS256")
      yield* exchange(signed)
      expect(yield* refused(signed)).toBe("invalid assertion: jti reused")
      // A new assertion for the same subject is fine.
      yield* exchange(yield* assertion("RS256"))
    })
  )

  it.live("an assertion for another audience than the token endpoint is refused with invalid_grant", () =>
    Effect.gen(function* () {
      const detail = yield* refused(yield* assertion("ES256", { audience: provider.issuer }))
      expect(detail).toMatch(/^invalid assertion: .*"aud"/)
    })
  )

  it.live("an assertion from an issuer the server does not trust is refused with invalid_grant", () =>
    Effect.gen(function* () {
      const detail = yield* refused(yield* assertion("RS256", { issuer: "https://elsewhere.test" }))
      expect(detail).toBe("invalid assertion: issuer not trusted")
    })
  )
})
