/**
 * The JWT bearer assertions (RFC 7523 section 2.1) the broker signs for a
 * `jwt-bearer` subject, to exchange at the provider's token endpoint.
 *
 * - The header is `{ alg, typ: "JWT", kid? }`; `alg` is RS256 (an RSA key of
 *   2048 bits or more) or ES256 (an EC key on P-256), and the key must fit it.
 * - The claims are `iss`, `sub`, `aud`, `iat` and `exp` (from the `Clock`, so
 *   tests control the time), a fresh random `jti`, and any additional claims,
 *   which may not set any of those six: such a claim is refused, not dropped.
 * - The lifetime is 300 seconds unless asked otherwise, and at most 3600.
 * - The private key is PEM: PKCS#8 (`BEGIN PRIVATE KEY`), PKCS#1
 *   (`BEGIN RSA PRIVATE KEY`) or SEC 1 (`BEGIN EC PRIVATE KEY`). A PEM whose
 *   line breaks were written as `\n` (as in an environment variable) is read too.
 * - Neither the key nor the signed assertion ever appears in an error.
 *
 * @since 0.1.0
 */
import * as Crypto from "node:crypto"
import { Clock, Effect, Redacted, Schema } from "effect"
import { errors as JoseErrors, SignJWT } from "jose"

/**
 * The signature algorithms the broker signs assertions with.
 *
 * @since 0.1.0
 * @category constants
 */
export const ASSERTION_ALGORITHMS = ["RS256", "ES256"] as const

/**
 * @since 0.1.0
 * @category models
 */
export type AssertionAlgorithm = (typeof ASSERTION_ALGORITHMS)[number]

/**
 * The lifetime of an assertion when none is given, in seconds.
 *
 * @since 0.1.0
 * @category constants
 */
export const DEFAULT_LIFETIME_SECONDS = 300

/**
 * The longest lifetime an assertion may have, in seconds.
 *
 * @since 0.1.0
 * @category constants
 */
export const MAX_LIFETIME_SECONDS = 3600

/**
 * The claims the broker sets itself, which additional claims may not set.
 *
 * @since 0.1.0
 * @category constants
 */
export const REGISTERED_CLAIMS = ["iss", "sub", "aud", "exp", "iat", "jti"] as const

/** The smallest RSA modulus for RS256 (RFC 7518 section 3.3). */
const MIN_RSA_BITS = 2048

/**
 * An assertion could not be signed. `kind` says what to fix:
 *
 * - `invalid_key`: the private key is not a usable PEM private key.
 * - `key_mismatch`: the key does not fit the algorithm (RSA for RS256, EC P-256 for ES256).
 * - `reserved_claim`: an additional claim tries to set a claim the broker sets itself (`claim` names it).
 * - `invalid_claims`: a claim or header value is empty, or the additional claims are not JSON.
 * - `invalid_lifetime`: the lifetime is not a whole number of seconds from 1 to 3600.
 * - `signing_failed`: the signature itself failed.
 *
 * Never carries the private key or the signed assertion.
 *
 * @since 0.1.0
 * @category errors
 */
export class AssertionError extends Schema.TaggedError<AssertionError>()("AssertionError", {
  kind: Schema.Literal(
    "invalid_key",
    "key_mismatch",
    "reserved_claim",
    "invalid_claims",
    "invalid_lifetime",
    "signing_failed"
  ),
  /** What is wrong, phrased to follow its subject ("is not a PEM private key"), without any key material. */
  reason: Schema.String,
  /** The algorithm the assertion was to be signed with. */
  algorithm: Schema.optional(Schema.Literal(...ASSERTION_ALGORITHMS)),
  /** The claim at fault, for `reserved_claim` and `invalid_claims`. */
  claim: Schema.optional(Schema.String)
}) {
  override get message(): string {
    const algorithm = this.algorithm ?? "the algorithm"
    switch (this.kind) {
      case "invalid_key":
        return `The private key for JWT bearer assertions ${this.reason}: configure an unencrypted PEM private key, PKCS#8 ("-----BEGIN PRIVATE KEY-----"), PKCS#1 ("-----BEGIN RSA PRIVATE KEY-----") or SEC 1 ("-----BEGIN EC PRIVATE KEY-----")`
      case "key_mismatch":
        return `The private key for JWT bearer assertions does not fit ${algorithm}: it ${this.reason}. Use an RSA key of at least ${MIN_RSA_BITS} bits for RS256 or an EC P-256 key for ES256, or set the algorithm that fits the key`
      case "reserved_claim":
        return `The additional claims of a JWT bearer assertion may not set "${this.claim ?? "?"}": the broker sets ${REGISTERED_CLAIMS.join(", ")} itself. Remove it from additionalClaims (the subject's iss, sub and aud set those claims)`
      case "invalid_claims":
        return `The claims of a JWT bearer assertion are not valid: ${this.reason}`
      case "invalid_lifetime":
        return `The lifetime of a JWT bearer assertion ${this.reason}: give a whole number of seconds from 1 to ${MAX_LIFETIME_SECONDS} (default ${DEFAULT_LIFETIME_SECONDS})`
      default:
        return `Could not sign a JWT bearer assertion with ${algorithm} (${this.reason}): check the connector's private key and algorithm`
    }
  }
}

/**
 * What the broker signs: the key, the algorithm, and the claims.
 *
 * @since 0.1.0
 * @category models
 */
export interface AssertionInput {
  /** A PEM private key: PKCS#8, PKCS#1 (RSA) or SEC 1 (EC). */
  readonly privateKey: Redacted.Redacted<string>
  readonly algorithm: AssertionAlgorithm
  /** The `kid` header, naming the key at the provider. */
  readonly keyId?: string
  /** The `iss` claim: who signs (by default the connector's client id). */
  readonly issuer: string
  /** The `sub` claim: on whose behalf. */
  readonly subject: string
  /** The `aud` claim: usually the provider's token endpoint. */
  readonly audience: string
  /** Merged into the claims; may not set any of {@link REGISTERED_CLAIMS}. */
  readonly additionalClaims?: Readonly<Record<string, unknown>>
  /** Seconds from `iat` to `exp`: default {@link DEFAULT_LIFETIME_SECONDS}, at most {@link MAX_LIFETIME_SECONDS}. */
  readonly lifetimeSeconds?: number
}

const PEM_LABEL = /-----BEGIN ([A-Z0-9 ]+)-----/
const PRIVATE_KEY_LABELS = new Set(["PRIVATE KEY", "RSA PRIVATE KEY", "EC PRIVATE KEY"])
const PUBLIC_LABELS = new Set(["PUBLIC KEY", "RSA PUBLIC KEY", "CERTIFICATE"])

const CURVE_NAMES: Readonly<Record<string, string>> = {
  prime256v1: "P-256",
  secp384r1: "P-384",
  secp521r1: "P-521",
  secp256k1: "secp256k1"
}

/** The key as text with real line breaks: a PEM written on one line with `\n` escapes is unfolded. */
const unfold = (text: string): string => {
  const trimmed = text.trim()
  return trimmed.includes("\n") ? trimmed : trimmed.replace(/\\r\\n|\\n/g, "\n")
}

/** Why `text` is not a PEM private key, judged from its label alone, or `undefined` if the label is right. */
const labelProblem = (text: string): string | undefined => {
  if (text.length === 0) return "is empty"
  if (text.startsWith("{"))
    return "is JSON, not PEM (from a service account file, give the PEM of its private_key field)"
  const label = PEM_LABEL.exec(text)?.[1]
  if (label === undefined) return 'is not PEM (there is no "-----BEGIN ...-----" line)'
  if (label === "ENCRYPTED PRIVATE KEY" || text.includes("Proc-Type: 4,ENCRYPTED")) {
    return "is encrypted with a passphrase (decrypt it first)"
  }
  if (PRIVATE_KEY_LABELS.has(label)) return undefined
  if (PUBLIC_LABELS.has(label)) return `is a ${label}, not a private key`
  return `is a PEM "${label}", not a private key`
}

/** A Node error code (`ERR_OSSL_...`): never any of the input. */
const errorCode = (error: unknown): string | undefined => {
  const code = typeof error === "object" && error !== null && "code" in error ? error.code : undefined
  return typeof code === "string" && /^[A-Z0-9_]{1,64}$/.test(code) ? code : undefined
}

/** The key's type and size, for errors: `an RSA key of 2048 bits`, `an EC key on P-384`. */
const describeKey = (key: Crypto.KeyObject): string => {
  const details = key.asymmetricKeyDetails
  switch (key.asymmetricKeyType) {
    case "rsa":
      return details?.modulusLength === undefined ? "an RSA key" : `an RSA key of ${details.modulusLength} bits`
    case "rsa-pss":
      return "an RSA-PSS key"
    case "ec": {
      const curve = details?.namedCurve
      return curve === undefined ? "an EC key" : `an EC key on ${CURVE_NAMES[curve] ?? curve}`
    }
    case "ed25519":
      return "an Ed25519 key"
    case "ed448":
      return "an Ed448 key"
    case undefined:
      return "not an asymmetric key"
    default:
      return `a key of type ${key.asymmetricKeyType}`
  }
}

/** Whether the key can sign with the algorithm. */
const fits = (key: Crypto.KeyObject, algorithm: AssertionAlgorithm): boolean => {
  const details = key.asymmetricKeyDetails
  switch (algorithm) {
    case "RS256":
      return key.asymmetricKeyType === "rsa" && (details?.modulusLength ?? 0) >= MIN_RSA_BITS
    case "ES256":
      return key.asymmetricKeyType === "ec" && details?.namedCurve === "prime256v1"
  }
}

/**
 * Reads a PEM private key and checks that it fits the algorithm: an RSA key of
 * at least 2048 bits for RS256, an EC key on P-256 for ES256. Use it to check a
 * connector's configuration at start; {@link signAssertion} calls it too.
 *
 * @since 0.1.0
 * @category keys
 */
export const parsePrivateKey = (
  pem: Redacted.Redacted<string>,
  algorithm: AssertionAlgorithm
): Effect.Effect<Crypto.KeyObject, AssertionError> =>
  Effect.suspend(() => {
    const invalid = (reason: string) => Effect.fail(new AssertionError({ kind: "invalid_key", reason, algorithm }))
    const text = unfold(Redacted.value(pem))
    const problem = labelProblem(text)
    if (problem !== undefined) return invalid(problem)
    let key: Crypto.KeyObject
    try {
      key = Crypto.createPrivateKey({ key: text, format: "pem" })
    } catch (error) {
      const code = errorCode(error)
      return invalid(`could not be read${code === undefined ? "" : ` (${code})`}: the PEM is damaged or incomplete`)
    }
    if (!fits(key, algorithm)) {
      return Effect.fail(new AssertionError({ kind: "key_mismatch", reason: `is ${describeKey(key)}`, algorithm }))
    }
    return Effect.succeed(key)
  })

const lifetimeProblem = (seconds: number): string | undefined => {
  if (!Number.isInteger(seconds)) return "is not a whole number of seconds"
  if (seconds < 1) return "is less than 1 second"
  if (seconds > MAX_LIFETIME_SECONDS) return `is more than ${MAX_LIFETIME_SECONDS} seconds`
  return undefined
}

/** The first problem with the claims and header values of the input, or `undefined`. */
const claimsProblem = (input: AssertionInput): AssertionError | undefined => {
  const { algorithm } = input
  const required: ReadonlyArray<readonly [string, string]> = [
    ["iss", input.issuer],
    ["sub", input.subject],
    ["aud", input.audience]
  ]
  for (const [claim, value] of required) {
    if (value.trim().length === 0) {
      return new AssertionError({ kind: "invalid_claims", reason: `"${claim}" is empty`, algorithm, claim })
    }
  }
  if (input.keyId !== undefined && input.keyId.trim().length === 0) {
    return new AssertionError({ kind: "invalid_claims", reason: "the key id (kid) is empty", algorithm })
  }
  const additional = input.additionalClaims ?? {}
  const reserved: ReadonlySet<string> = new Set(REGISTERED_CLAIMS)
  for (const claim of Object.keys(additional)) {
    if (reserved.has(claim)) {
      return new AssertionError({
        kind: "reserved_claim",
        reason: `additionalClaims sets "${claim}"`,
        algorithm,
        claim
      })
    }
  }
  try {
    JSON.stringify(additional)
  } catch {
    return new AssertionError({
      kind: "invalid_claims",
      reason: "additionalClaims cannot be written as JSON (a BigInt, or a cycle?)",
      algorithm
    })
  }
  return undefined
}

/** Why signing failed: jose's own message (fixed text about the algorithm or key), else the error's name. */
const signingReason = (error: unknown): string => {
  if (error instanceof JoseErrors.JOSEError) return `${error.code}: ${error.message}`
  const code = errorCode(error)
  if (code !== undefined) return code
  return error instanceof Error ? error.name : "unknown error"
}

/**
 * Signs a JWT bearer assertion (RFC 7523 section 2.1) with the header
 * `{ alg, typ: "JWT", kid? }` and the claims `iss`, `sub`, `aud`, `iat`, `exp`
 * (`iat` from the `Clock`, `exp` the lifetime later), a random `jti`, and the
 * additional claims, which may not set any of those. Fails with an
 * {@link AssertionError} when the key is not usable or does not fit the
 * algorithm, a claim is empty or reserved, or the lifetime is out of range.
 *
 * @since 0.1.0
 * @category signing
 */
export const signAssertion = (input: AssertionInput): Effect.Effect<Redacted.Redacted<string>, AssertionError> =>
  Effect.gen(function* () {
    const { algorithm } = input
    const lifetime = input.lifetimeSeconds ?? DEFAULT_LIFETIME_SECONDS
    const badLifetime = lifetimeProblem(lifetime)
    if (badLifetime !== undefined) {
      return yield* new AssertionError({ kind: "invalid_lifetime", reason: badLifetime, algorithm })
    }
    const badClaims = claimsProblem(input)
    if (badClaims !== undefined) return yield* badClaims
    const key = yield* parsePrivateKey(input.privateKey, algorithm)
    const iat = Math.floor((yield* Clock.currentTimeMillis) / 1000)
    const claims = {
      ...input.additionalClaims,
      iss: input.issuer,
      sub: input.subject,
      aud: input.audience,
      iat,
      exp: iat + lifetime,
      jti: Crypto.randomUUID()
    }
    const header = { alg: algorithm, typ: "JWT", ...(input.keyId === undefined ? {} : { kid: input.keyId }) }
    const signed = yield* Effect.tryPromise({
      try: () => new SignJWT(claims).setProtectedHeader(header).sign(key),
      catch: (error) => new AssertionError({ kind: "signing_failed", reason: signingReason(error), algorithm })
    })
    return Redacted.make(signed)
  }).pipe(Effect.withSpan("Assertion.signAssertion", { attributes: { "jwt.alg": input.algorithm } }))
