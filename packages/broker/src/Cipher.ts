/**
 * Encryption of secrets at rest: the broker stores provider client secrets,
 * refresh tokens and access tokens sealed with AES-256-GCM.
 *
 * - Every encryption draws a fresh random 12-byte nonce; decryption checks the
 *   16-byte authentication tag.
 * - Associated data binds a sealed value to the row it belongs to (for example
 *   `grants/refresh_token/grt_123`): copied to another row, it does not decrypt.
 *   Associated data is not secret and appears in errors.
 * - A sealed value is `v1.<nonce>.<ciphertext and tag>`, both parts base64url;
 *   the version prefix leaves room for a later format (key rotation).
 * - The key comes from `CONNECT_ENCRYPTION_KEY`, or else from the file
 *   `<CONNECT_DATA_DIR>/encryption.key`, generated on first start.
 *
 * @since 0.1.0
 */
import * as Crypto from "node:crypto"
import * as NodePath from "node:path"
import type { PlatformError } from "@effect/platform/Error"
import * as FileSystem from "@effect/platform/FileSystem"
import { Config, type ConfigError, Context, Effect, Either, Layer, Option, Redacted, Schema } from "effect"
import { DATA_DIR_VARIABLE, dataDirConfig, makeDataDir } from "./internal/dataDir.js"

/**
 * The length of a key, in bytes.
 *
 * @since 0.1.0
 * @category constants
 */
export const KEY_BYTES = 32

/**
 * The environment variable that holds the key: the base64 of {@link KEY_BYTES} bytes.
 *
 * @since 0.1.0
 * @category constants
 */
export const KEY_VARIABLE = "CONNECT_ENCRYPTION_KEY"

/**
 * The variable naming the data directory, where the key file is kept.
 *
 * @since 0.1.0
 * @category constants
 */
export { DATA_DIR_VARIABLE }

/**
 * The name of the generated key file in the data directory.
 *
 * @since 0.1.0
 * @category constants
 */
export const KEY_FILE = "encryption.key"

const ALGORITHM = "aes-256-gcm"
const VERSION = "v1"
const NONCE_BYTES = 12
const TAG_BYTES = 16

/**
 * A sealed value could not be decrypted: it was tampered with, belongs to
 * another row, was encrypted with another key, or is not a sealed value at all.
 * Never carries the plaintext, the key or the sealed value.
 *
 * @since 0.1.0
 * @category errors
 */
export class DecryptionFailed extends Schema.TaggedError<DecryptionFailed>()("DecryptionFailed", {
  /** The associated data the value was opened with: the row it was read from. */
  associatedData: Schema.String,
  /** What was wrong, without any of the data. */
  reason: Schema.String
}) {
  override get message(): string {
    return `Could not decrypt the value stored for ${this.associatedData} (${this.reason}): it was tampered with, belongs to another row, or was encrypted with another key (check ${KEY_VARIABLE})`
  }
}

/**
 * The encryption key is not usable: it has the wrong length, is not base64, or
 * its file cannot be read or written. Names where the key came from, never the key.
 *
 * @since 0.1.0
 * @category errors
 */
export class InvalidEncryptionKey extends Schema.TaggedError<InvalidEncryptionKey>()("InvalidEncryptionKey", {
  /** The environment variable the key came from, if it came from one. */
  variable: Schema.optional(Schema.String),
  /** The key file, if the key came from (or was to be written to) one. */
  path: Schema.optional(Schema.String),
  /** What is wrong, phrased to follow its subject ("is not base64"). */
  reason: Schema.String
}) {
  override get message(): string {
    if (this.variable !== undefined) {
      return `${this.variable} is not a valid encryption key: it ${this.reason}. Set it to the base64 of exactly ${KEY_BYTES} random bytes, for example the output of \`openssl rand -base64 ${KEY_BYTES}\``
    }
    if (this.path !== undefined) {
      return `The encryption key file ${this.path} ${this.reason}. Make it readable by the broker and holding the base64 of exactly ${KEY_BYTES} bytes (restore it from a backup rather than delete it: without it, stored secrets cannot be read), or set ${KEY_VARIABLE} to the key`
    }
    return `The encryption key ${this.reason}: pass exactly ${KEY_BYTES} bytes, for example from generateKey()`
  }
}

/**
 * @since 0.1.0
 * @category models
 */
export interface CipherService {
  /** Seals a secret for the row named by `associatedData`: `v1.<nonce>.<ciphertext and tag>`. */
  readonly encrypt: (plaintext: Redacted.Redacted<string>, associatedData: string) => Effect.Effect<string>
  /** Opens a sealed value; fails unless it was sealed with this key for the same `associatedData`. */
  readonly decrypt: (
    sealed: string,
    associatedData: string
  ) => Effect.Effect<Redacted.Redacted<string>, DecryptionFailed>
}

/**
 * A new random key of {@link KEY_BYTES} bytes.
 *
 * @since 0.1.0
 * @category constructors
 */
export const generateKey = (): Uint8Array => new Uint8Array(Crypto.randomBytes(KEY_BYTES))

const BASE64URL = /^[A-Za-z0-9_-]+$/

/** The bytes of canonical unpadded base64url text, or `undefined`. */
const fromBase64Url = (text: string | undefined): Buffer | undefined => {
  if (text === undefined || !BASE64URL.test(text)) return undefined
  const bytes = Buffer.from(text, "base64url")
  return bytes.toString("base64url") === text ? bytes : undefined
}

/**
 * A cipher over a key of exactly {@link KEY_BYTES} bytes (the bytes are copied).
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (key: Redacted.Redacted<Uint8Array>): Effect.Effect<CipherService, InvalidEncryptionKey> =>
  Effect.suspend(() => {
    const bytes = Redacted.value(key)
    if (bytes.length !== KEY_BYTES) {
      return Effect.fail(new InvalidEncryptionKey({ reason: `is ${bytes.length} bytes instead of ${KEY_BYTES}` }))
    }
    const secret = Crypto.createSecretKey(bytes)

    const encrypt = (plaintext: Redacted.Redacted<string>, associatedData: string): Effect.Effect<string> =>
      Effect.sync(() => {
        const nonce = Crypto.randomBytes(NONCE_BYTES)
        const cipher = Crypto.createCipheriv(ALGORITHM, secret, nonce, { authTagLength: TAG_BYTES })
        cipher.setAAD(Buffer.from(associatedData, "utf8"))
        const input = Buffer.from(Redacted.value(plaintext), "utf8")
        const body = Buffer.concat([cipher.update(input), cipher.final(), cipher.getAuthTag()])
        input.fill(0)
        return `${VERSION}.${nonce.toString("base64url")}.${body.toString("base64url")}`
      })

    const decrypt = (
      sealed: string,
      associatedData: string
    ): Effect.Effect<Redacted.Redacted<string>, DecryptionFailed> =>
      Effect.suspend(() => {
        const fail = (reason: string) => Effect.fail(new DecryptionFailed({ associatedData, reason }))
        const parts = sealed.split(".")
        if (parts.length !== 3 || parts[0] !== VERSION) return fail(`not a ${VERSION} sealed value`)
        const nonce = fromBase64Url(parts[1])
        if (nonce === undefined || nonce.length !== NONCE_BYTES) return fail("malformed nonce")
        const body = fromBase64Url(parts[2])
        if (body === undefined || body.length < TAG_BYTES) return fail("malformed ciphertext")
        try {
          const decipher = Crypto.createDecipheriv(ALGORITHM, secret, nonce, { authTagLength: TAG_BYTES })
          decipher.setAAD(Buffer.from(associatedData, "utf8"))
          decipher.setAuthTag(body.subarray(body.length - TAG_BYTES))
          const output = Buffer.concat([decipher.update(body.subarray(0, body.length - TAG_BYTES)), decipher.final()])
          const plaintext = output.toString("utf8")
          output.fill(0)
          return Effect.succeed(Redacted.make(plaintext))
        } catch {
          return fail("authentication failed")
        }
      })

    return Effect.succeed({ encrypt, decrypt })
  })

const BASE64 = /^[A-Za-z0-9+/_-]+={0,2}$/
const HEX_KEY = new RegExp(`^[0-9a-fA-F]{${KEY_BYTES * 2}}$`)

/** The key in base64 text (surrounding whitespace ignored), or why it is not one; never echoes the text. */
const parseKey = (text: string): Either.Either<Uint8Array, string> => {
  const trimmed = text.trim()
  if (trimmed.length === 0) return Either.left("is empty")
  if (HEX_KEY.test(trimmed)) return Either.left("looks like hex (encode the bytes as base64 instead)")
  if (!BASE64.test(trimmed)) return Either.left("is not base64")
  const bytes = Buffer.from(trimmed, "base64")
  if (bytes.length !== KEY_BYTES) return Either.left(`decodes to ${bytes.length} bytes instead of ${KEY_BYTES}`)
  return Either.right(new Uint8Array(bytes))
}

const isAlreadyExists = (error: PlatformError): boolean =>
  error._tag === "SystemError" && error.reason === "AlreadyExists"

/**
 * Publishes `contents` at `path` unless a file is already there; `true` if this
 * call created it. The contents go to a private temporary file first and are
 * hard-linked into place, so no process ever reads a half-written key; where
 * hard links are not supported, `path` is created exclusively instead.
 */
const createExclusive = (fs: FileSystem.FileSystem, path: string, contents: Uint8Array) =>
  Effect.gen(function* () {
    const exclusive = { flag: "wx", mode: 0o600 } as const
    yield* makeDataDir(fs, NodePath.dirname(path))
    const temporary = `${path}.${Crypto.randomBytes(6).toString("hex")}.tmp`
    const linked = fs
      .writeFile(temporary, contents, exclusive)
      .pipe(Effect.zipRight(fs.link(temporary, path)), Effect.ensuring(Effect.ignore(fs.remove(temporary))))
    return yield* linked.pipe(
      Effect.as(true),
      Effect.catchAll((error) =>
        isAlreadyExists(error)
          ? Effect.succeed(false)
          : fs.writeFile(path, contents, exclusive).pipe(
              Effect.as(true),
              Effect.catchIf(isAlreadyExists, () => Effect.succeed(false))
            )
      )
    )
  })

/** The key in the file at `path`, generated (with a warning) if there is no file yet. */
const keyFile = (path: string): Effect.Effect<Uint8Array, InvalidEncryptionKey, FileSystem.FileSystem> =>
  Effect.gen(function* () {
    const fs = yield* FileSystem.FileSystem
    const read = fs.readFileString(path).pipe(
      Effect.mapError((error) => new InvalidEncryptionKey({ path, reason: `could not be read (${error.message})` })),
      Effect.flatMap((text) =>
        Either.match(parseKey(text), {
          onLeft: (reason) =>
            Effect.fail(new InvalidEncryptionKey({ path, reason: `is not a valid key: it ${reason}` })),
          onRight: Effect.succeed
        })
      )
    )
    const present = yield* fs.exists(path).pipe(Effect.orElseSucceed(() => true))
    if (present) return yield* read
    const key = generateKey()
    const created = yield* createExclusive(fs, path, Buffer.from(`${Buffer.from(key).toString("base64")}\n`)).pipe(
      Effect.mapError((error) => new InvalidEncryptionKey({ path, reason: `could not be created (${error.message})` }))
    )
    if (!created) return yield* read
    yield* Effect.logWarning(
      `Generated a new encryption key at ${path}: back it up (stored secrets cannot be read without it), and set ${KEY_VARIABLE} in production`
    )
    return key
  })

/**
 * The key from the environment: {@link KEY_VARIABLE} if it is set, otherwise the
 * key file in {@link DATA_DIR_VARIABLE} (default `.connect`), generated on first use.
 */
const keyFromConfig: Effect.Effect<
  Redacted.Redacted<Uint8Array>,
  InvalidEncryptionKey | ConfigError.ConfigError,
  FileSystem.FileSystem
> = Effect.gen(function* () {
  const fromVariable = yield* Config.option(Config.redacted(KEY_VARIABLE))
  if (Option.isSome(fromVariable)) {
    const parsed = parseKey(Redacted.value(fromVariable.value))
    if (Either.isLeft(parsed)) {
      return yield* new InvalidEncryptionKey({ variable: KEY_VARIABLE, reason: parsed.left })
    }
    return Redacted.make(parsed.right)
  }
  const dataDir = yield* dataDirConfig
  return Redacted.make(yield* keyFile(NodePath.join(dataDir, KEY_FILE)))
})

/**
 * The cipher that seals the broker's secrets at rest.
 *
 * @since 0.1.0
 * @category tags
 */
export class Cipher extends Context.Tag("effect-connect/broker/Cipher")<Cipher, CipherService>() {
  /**
   * A cipher over the given key of exactly 32 bytes.
   */
  static readonly layer = (key: Redacted.Redacted<Uint8Array>): Layer.Layer<Cipher, InvalidEncryptionKey> =>
    Layer.effect(Cipher, make(key))

  /**
   * A cipher over `CONNECT_ENCRYPTION_KEY` (the base64 of 32 bytes) or, when it
   * is not set, over the key file `<CONNECT_DATA_DIR>/encryption.key` (default
   * `.connect`), which is generated with mode 0600 on first start.
   */
  static readonly layerConfig: Layer.Layer<
    Cipher,
    InvalidEncryptionKey | ConfigError.ConfigError,
    FileSystem.FileSystem
  > = Layer.effect(Cipher, Effect.flatMap(keyFromConfig, make))
}
