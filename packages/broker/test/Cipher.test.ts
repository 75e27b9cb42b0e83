import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { NodeFileSystem } from "@effect/platform-node"
import { describe, expect, it } from "@effect/vitest"
import { ConfigProvider, Effect, Layer, Logger, Redacted } from "effect"
import { Cipher, DecryptionFailed, generateKey, InvalidEncryptionKey, KEY_FILE, KEY_VARIABLE } from "../src/Cipher.js"

const ROW = "grants/refresh_token/grt_123"
const SECRET = "rt-secret-5f2a9c"

const base64 = (bytes: Uint8Array): string => Buffer.from(bytes).toString("base64")

/** A real temporary directory, removed when the scope closes. */
const tempDir = Effect.acquireRelease(
  Effect.sync(() => fs.mkdtempSync(path.join(os.tmpdir(), "effect-connect-cipher-"))),
  (dir) => Effect.sync(() => fs.rmSync(dir, { recursive: true, force: true }))
)

const environment = (vars: Readonly<Record<string, string>>) => ConfigProvider.fromMap(new Map(Object.entries(vars)))

/** Runs `use` with `Cipher.layerConfig` built from `vars`, and returns its result with the log lines. */
const withConfig = <A, E>(vars: Readonly<Record<string, string>>, use: Effect.Effect<A, E, Cipher>) =>
  Effect.gen(function* () {
    const lines: Array<string> = []
    const logger = Logger.make(({ logLevel, message }) => {
      const text = Array.isArray(message) ? message.map(String).join(" ") : String(message)
      lines.push(`${logLevel.label} ${text}`)
    })
    const result = yield* use.pipe(
      Effect.provide(Cipher.layerConfig.pipe(Layer.provide(NodeFileSystem.layer))),
      Effect.provide(Logger.replace(Logger.defaultLogger, logger)),
      Effect.withConfigProvider(environment(vars))
    )
    return { result, lines }
  })

const seal = (plaintext: string, associatedData = ROW) =>
  Effect.flatMap(Cipher, (cipher) => cipher.encrypt(Redacted.make(plaintext), associatedData))

const open = (sealed: string, associatedData = ROW) =>
  Effect.flatMap(Cipher, (cipher) => cipher.decrypt(sealed, associatedData)).pipe(Effect.map(Redacted.value))

/** Replaces the character at `index` of base64url text by another base64url character. */
const flipAt = (text: string, index: number): string =>
  `${text.slice(0, index)}${text[index] === "A" ? "B" : "A"}${text.slice(index + 1)}`

describe("Cipher", () => {
  const key = generateKey()

  describe("encrypt and decrypt", () => {
    const provided = <A, E>(effect: Effect.Effect<A, E, Cipher>) =>
      Effect.provide(effect, Cipher.layer(Redacted.make(key)))

    it.effect("round trips, including empty and non-ASCII text", () =>
      provided(
        Effect.gen(function* () {
          for (const plaintext of [SECRET, "", "clé-秘密-🔑", "x".repeat(10_000)]) {
            const sealed = yield* seal(plaintext)
            expect(yield* open(sealed)).toBe(plaintext)
          }
        })
      )
    )

    it.effect("seals as v1.<nonce>.<ciphertext and tag> in base64url", () =>
      provided(
        Effect.gen(function* () {
          const sealed = yield* seal(SECRET)
          expect(sealed).toMatch(/^v1\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/)
          const [, nonce = "", body = ""] = sealed.split(".")
          expect(Buffer.from(nonce, "base64url").length).toBe(12)
          expect(Buffer.from(body, "base64url").length).toBe(Buffer.byteLength(SECRET) + 16)
          expect(sealed).not.toContain(SECRET)
        })
      )
    )

    it.effect("uses a fresh nonce for every encryption", () =>
      provided(
        Effect.gen(function* () {
          const first = yield* seal(SECRET)
          const second = yield* seal(SECRET)
          expect(first).not.toBe(second)
          expect(first.split(".")[1]).not.toBe(second.split(".")[1])
        })
      )
    )

    it.effect("returns the plaintext redacted", () =>
      provided(
        Effect.gen(function* () {
          const cipher = yield* Cipher
          const opened = yield* cipher.decrypt(yield* seal(SECRET), ROW)
          expect(String(opened)).not.toContain(SECRET)
          expect(Redacted.value(opened)).toBe(SECRET)
        })
      )
    )

    it.effect("fails for another row's associated data, without leaking anything", () =>
      provided(
        Effect.gen(function* () {
          const sealed = yield* seal(SECRET)
          const error = yield* Effect.flip(open(sealed, "grants/refresh_token/grt_456"))
          expect(error).toBeInstanceOf(DecryptionFailed)
          expect(error.associatedData).toBe("grants/refresh_token/grt_456")
          expect(error.message).toContain("belongs to another row")
          expect(error.message).toContain(KEY_VARIABLE)
          expect(error.message).not.toContain(SECRET)
          expect(error.message).not.toContain(sealed)
          expect(error.message).not.toContain(base64(key))
        })
      )
    )

    it.effect("fails when any part of the sealed value is altered", () =>
      provided(
        Effect.gen(function* () {
          const sealed = yield* seal(SECRET)
          const [version = "", nonce = "", body = ""] = sealed.split(".")
          const tampered = [
            `${version}.${flipAt(nonce, 0)}.${body}`,
            `${version}.${nonce}.${flipAt(body, 0)}`,
            `${version}.${nonce}.${flipAt(body, body.length - 3)}`
          ]
          for (const value of tampered) {
            const error = yield* Effect.flip(open(value))
            expect(error._tag).toBe("DecryptionFailed")
          }
          // Dropping the last tag byte leaves a too-short tag, which is refused as well.
          const truncated = Buffer.from(body, "base64url").subarray(0, -1).toString("base64url")
          expect((yield* Effect.flip(open(`${version}.${nonce}.${truncated}`)))._tag).toBe("DecryptionFailed")
        })
      )
    )

    it.effect("fails under another key", () =>
      Effect.gen(function* () {
        const sealed = yield* seal(SECRET).pipe(Effect.provide(Cipher.layer(Redacted.make(key))))
        const error = yield* Effect.flip(open(sealed).pipe(Effect.provide(Cipher.layer(Redacted.make(generateKey())))))
        expect(error).toBeInstanceOf(DecryptionFailed)
      })
    )

    it.effect("fails, never dies, on malformed sealed values", () =>
      provided(
        Effect.gen(function* () {
          const sealed = yield* seal(SECRET)
          const [, nonce = "", body = ""] = sealed.split(".")
          const malformed = [
            "",
            "v1",
            "v1..",
            "v2.x.y",
            `v2.${nonce}.${body}`,
            `v1.${nonce}.${body}.extra`,
            `v1.${nonce}!.${body}`,
            `v1.${nonce}.${body}==`,
            `v1.${nonce}.${body.replaceAll("-", "+").replaceAll("_", "/")}+/`,
            `v1.${nonce.slice(0, 8)}.${body}`,
            `v1.${nonce}.${Buffer.alloc(15).toString("base64url")}`,
            `v1.${nonce}.A`,
            "v1.%%%.@@@",
            SECRET
          ]
          for (const value of malformed) {
            const error = yield* Effect.flip(open(value))
            expect(error).toBeInstanceOf(DecryptionFailed)
            if (value.length > 8) expect(error.message).not.toContain(value)
          }
        })
      )
    )
  })

  describe("Cipher.layer", () => {
    it.effect("refuses a key that is not 32 bytes", () =>
      Effect.gen(function* () {
        for (const length of [0, 16, 31, 33, 64]) {
          const error = yield* Effect.flip(Layer.build(Cipher.layer(Redacted.make(new Uint8Array(length)))))
          expect(error).toBeInstanceOf(InvalidEncryptionKey)
          expect(error.message).toContain(`is ${length} bytes instead of 32`)
        }
      }).pipe(Effect.scoped)
    )

    it("generateKey gives distinct 32-byte keys", () => {
      const first = generateKey()
      expect(first).toBeInstanceOf(Uint8Array)
      expect(first.length).toBe(32)
      expect(base64(generateKey())).not.toBe(base64(first))
    })
  })

  describe("Cipher.layerConfig", () => {
    it.scoped("uses CONNECT_ENCRYPTION_KEY and writes no key file", () =>
      Effect.gen(function* () {
        const dir = yield* tempDir
        const dataDir = path.join(dir, "data")
        const { result: sealed, lines } = yield* withConfig(
          { [KEY_VARIABLE]: base64(key), CONNECT_DATA_DIR: dataDir },
          seal(SECRET)
        )
        expect(fs.existsSync(dataDir)).toBe(false)
        expect(lines).toEqual([])
        // The same key given directly opens it.
        const opened = yield* open(sealed).pipe(Effect.provide(Cipher.layer(Redacted.make(key))))
        expect(opened).toBe(SECRET)
      })
    )

    it.scoped("accepts the key with surrounding whitespace and in base64url", () =>
      Effect.gen(function* () {
        const sealed = yield* seal(SECRET).pipe(Effect.provide(Cipher.layer(Redacted.make(key))))
        for (const text of [` ${base64(key)}\n`, Buffer.from(key).toString("base64url")]) {
          const { result } = yield* withConfig({ [KEY_VARIABLE]: text }, open(sealed))
          expect(result).toBe(SECRET)
        }
      })
    )

    it.scoped("refuses a CONNECT_ENCRYPTION_KEY of the wrong length or not base64, without printing it", () =>
      Effect.gen(function* () {
        const dir = yield* tempDir
        const values = [
          base64(new Uint8Array(16).fill(7)),
          base64(new Uint8Array(48).fill(7)),
          "not a base64 key at all!",
          "c2VjcmV0=a",
          Buffer.from(key).toString("hex"),
          ""
        ]
        for (const value of values) {
          const error = yield* Effect.flip(withConfig({ [KEY_VARIABLE]: value, CONNECT_DATA_DIR: dir }, seal(SECRET)))
          expect(error).toBeInstanceOf(InvalidEncryptionKey)
          if (error._tag !== "InvalidEncryptionKey") continue
          expect(error.variable).toBe(KEY_VARIABLE)
          expect(error.message).toContain(KEY_VARIABLE)
          expect(error.message).toContain("base64 of exactly 32")
          if (value.length > 0) expect(error.message).not.toContain(value)
        }
        expect(fs.readdirSync(dir)).toEqual([])
      })
    )

    it.scoped("generates a key file with mode 0600, reuses it, and warns without the key", () =>
      Effect.gen(function* () {
        const dir = yield* tempDir
        const dataDir = path.join(dir, "nested", "data")
        const keyPath = path.join(dataDir, KEY_FILE)

        const first = yield* withConfig({ CONNECT_DATA_DIR: dataDir }, seal(SECRET))
        expect(fs.readdirSync(dataDir).sort()).toEqual([".gitignore", KEY_FILE])
        expect(fs.statSync(keyPath).mode & 0o777).toBe(0o600)
        // A new data directory keeps itself out of version control.
        expect(fs.readFileSync(path.join(dataDir, ".gitignore"), "utf8")).toMatch(/^\*$/m)
        const stored = fs.readFileSync(keyPath, "utf8").trim()
        expect(Buffer.from(stored, "base64").length).toBe(32)

        expect(first.lines).toHaveLength(1)
        const [warning = ""] = first.lines
        expect(warning).toMatch(/^WARN /)
        expect(warning).toContain(keyPath)
        expect(warning).toContain(KEY_VARIABLE)
        expect(warning).not.toContain(stored)
        expect(warning).not.toContain(Buffer.from(stored, "base64").toString("base64url"))

        const second = yield* withConfig({ CONNECT_DATA_DIR: dataDir }, open(first.result))
        expect(second.result).toBe(SECRET)
        expect(second.lines).toEqual([])
        expect(fs.readFileSync(keyPath, "utf8").trim()).toBe(stored)
      })
    )

    it.scoped("defaults the data directory to .connect", () =>
      Effect.gen(function* () {
        const dir = yield* tempDir
        const cwd = process.cwd()
        yield* Effect.acquireRelease(
          Effect.sync(() => process.chdir(dir)),
          () => Effect.sync(() => process.chdir(cwd))
        )
        yield* withConfig({}, seal(SECRET))
        expect(fs.existsSync(path.join(dir, ".connect", KEY_FILE))).toBe(true)
      })
    )

    it.scoped("agrees on one key when several start at once", () =>
      Effect.gen(function* () {
        const dir = yield* tempDir
        const vars = { CONNECT_DATA_DIR: dir }
        const runs = yield* Effect.all(
          Array.from({ length: 8 }, (_, i) => withConfig(vars, seal(`${SECRET}-${i}`))),
          { concurrency: "unbounded" }
        )
        expect(fs.readdirSync(dir)).toEqual([KEY_FILE])
        expect(runs.flatMap((run) => run.lines)).toHaveLength(1)
        for (const [i, run] of runs.entries()) {
          const { result } = yield* withConfig(vars, open(run.result))
          expect(result).toBe(`${SECRET}-${i}`)
        }
      })
    )

    it.scoped("refuses an unreadable key file, naming the file", () =>
      Effect.gen(function* () {
        const dir = yield* tempDir
        const keyPath = path.join(dir, KEY_FILE)
        fs.mkdirSync(keyPath)
        const error = yield* Effect.flip(withConfig({ CONNECT_DATA_DIR: dir }, seal(SECRET)))
        expect(error).toBeInstanceOf(InvalidEncryptionKey)
        expect(error.message).toContain(`${keyPath} could not be read`)
      })
    )

    it.scoped("refuses a corrupted key file, naming the file", () =>
      Effect.gen(function* () {
        const dir = yield* tempDir
        const keyPath = path.join(dir, KEY_FILE)
        const contents = ["garbage that is not a key\n", `${base64(new Uint8Array(16).fill(1))}\n`, ""]
        for (const text of contents) {
          fs.writeFileSync(keyPath, text, { mode: 0o600 })
          const error = yield* Effect.flip(withConfig({ CONNECT_DATA_DIR: dir }, seal(SECRET)))
          expect(error).toBeInstanceOf(InvalidEncryptionKey)
          if (error._tag !== "InvalidEncryptionKey") continue
          expect(error.path).toBe(keyPath)
          expect(error.message).toContain(keyPath)
          expect(error.message).toContain(KEY_VARIABLE)
          if (text.trim().length > 0) expect(error.message).not.toContain(text.trim())
          // The file is left alone: it may be the only copy of the key.
          expect(fs.readFileSync(keyPath, "utf8")).toBe(text)
        }
      })
    )
  })
})
