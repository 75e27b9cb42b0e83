/**
 * Verifies the broker's webhooks as the Standard Webhooks specification
 * signs them: `webhook-signature` holds one or more `v1,<base64>` signatures,
 * each the HMAC-SHA256 of `<webhook-id>.<webhook-timestamp>.<body>` under the
 * webhook's secret (`whsec_<base64>`). Web Crypto only: it runs on Node, Deno,
 * Bun, edge runtimes and browsers alike.
 *
 * ```ts
 * const message = yield* Webhook.verify(secret, request.headers, await request.text())
 * // message.id: the event's id (drop what you saw already); message.payload: { type, timestamp, data }
 * ```
 *
 * @since 0.1.0
 */
import { Clock, Effect, Redacted, Schema } from "effect"

/**
 * A webhook that did not verify; `reason` says why, never with a secret or a
 * signature.
 *
 * @since 0.1.0
 * @category errors
 */
export class WebhookVerificationError extends Schema.TaggedError<WebhookVerificationError>()(
  "WebhookVerificationError",
  {
    reason: Schema.Literal(
      "missing_header",
      "invalid_secret",
      "invalid_timestamp",
      "timestamp_out_of_tolerance",
      "invalid_signature",
      "invalid_payload"
    ),
    detail: Schema.String
  }
) {
  override get message(): string {
    return `Webhook verification failed (${this.reason}): ${this.detail}`
  }
}

/**
 * A verified webhook: its id (the event's, the same on every attempt), when
 * it was signed, and its JSON payload.
 *
 * @since 0.1.0
 * @category models
 */
export interface VerifiedWebhook {
  readonly id: string
  readonly timestamp: Date
  readonly payload: unknown
}

/**
 * The options of `verify`.
 *
 * @since 0.1.0
 * @category models
 */
export interface VerifyOptions {
  /** How far the signing time may be from now, either way; 300 seconds (5 minutes) by default. */
  readonly toleranceSeconds?: number
}

/**
 * The request's headers: a `Headers`, or a record (Node's `IncomingHttpHeaders`).
 *
 * @since 0.1.0
 * @category models
 */
export type WebhookHeaders =
  | { readonly get: (name: string) => string | null }
  | Readonly<Record<string, string | ReadonlyArray<string> | undefined>>

/**
 * The default tolerance on the signing time, in seconds.
 *
 * @since 0.1.0
 * @category constants
 */
export const DEFAULT_TOLERANCE_SECONDS = 300

const SECRET_PREFIX = "whsec_"

const fail = (reason: WebhookVerificationError["reason"], detail: string) =>
  Effect.fail(new WebhookVerificationError({ reason, detail }))

const header = (headers: WebhookHeaders, name: string): string | undefined => {
  if (typeof headers.get === "function") return (headers.get as (name: string) => string | null)(name) ?? undefined
  const record = headers as Readonly<Record<string, string | ReadonlyArray<string> | undefined>>
  const value = record[name] ?? Object.entries(record).find(([key]) => key.toLowerCase() === name)?.[1]
  return typeof value === "string" ? value : value?.[0]
}

const base64ToBytes = (text: string): Uint8Array<ArrayBuffer> | undefined => {
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(text) || text.length % 4 !== 0) return undefined
  const binary = atob(text)
  return Uint8Array.from(binary, (char) => char.charCodeAt(0))
}

/** Compares two byte strings in time that depends on their length only. */
const equalBytes = (a: Uint8Array, b: Uint8Array): boolean => {
  if (a.length !== b.length) return false
  let difference = 0
  for (let i = 0; i < a.length; i++) difference |= (a[i] ?? 0) ^ (b[i] ?? 0)
  return difference === 0
}

const hmac = (key: Uint8Array<ArrayBuffer>, content: Uint8Array<ArrayBuffer>) =>
  Effect.promise(async () => {
    const subtle = globalThis.crypto.subtle
    const imported = await subtle.importKey("raw", key, { name: "HMAC", hash: "SHA-256" }, false, ["sign"])
    return new Uint8Array(await subtle.sign("HMAC", imported, content))
  })

const signedContent = (id: string, timestamp: string, body: string | Uint8Array): Uint8Array<ArrayBuffer> => {
  const encoder = new TextEncoder()
  const prefix = encoder.encode(`${id}.${timestamp}.`)
  const bytes = typeof body === "string" ? encoder.encode(body) : body
  const content = new Uint8Array(prefix.length + bytes.length)
  content.set(prefix)
  content.set(bytes, prefix.length)
  return content
}

/** The `v1` signatures of the header, decoded; other versions are ignored. */
const signaturesOf = (value: string): ReadonlyArray<Uint8Array> =>
  value.split(" ").flatMap((item) => {
    const [version, signature] = item.split(",")
    const bytes = version === "v1" && signature !== undefined ? base64ToBytes(signature) : undefined
    return bytes === undefined ? [] : [bytes]
  })

/** Checks the signing time against now and the tolerance. */
const checkTimestamp = (raw: string, toleranceSeconds: number) =>
  Effect.gen(function* () {
    if (!/^\d{1,15}$/.test(raw)) return yield* fail("invalid_timestamp", "webhook-timestamp is not a whole number")
    const seconds = Number(raw)
    const now = Math.floor((yield* Clock.currentTimeMillis) / 1000)
    if (Math.abs(now - seconds) > toleranceSeconds) {
      return yield* fail("timestamp_out_of_tolerance", `signed more than ${toleranceSeconds} seconds from now`)
    }
    return new Date(seconds * 1000)
  })

/**
 * Verifies a webhook's signature and signing time, and parses its body.
 * `secret` is the webhook's `whsec_…` secret (the prefix may be left out);
 * `body` is the request's body exactly as received.
 *
 * @since 0.1.0
 * @category verification
 */
export const verify = (
  secret: string | Redacted.Redacted<string>,
  headers: WebhookHeaders,
  body: string | Uint8Array,
  options: VerifyOptions = {}
): Effect.Effect<VerifiedWebhook, WebhookVerificationError> =>
  Effect.gen(function* () {
    const id = header(headers, "webhook-id")
    const timestamp = header(headers, "webhook-timestamp")
    const signature = header(headers, "webhook-signature")
    if (id === undefined || timestamp === undefined || signature === undefined) {
      return yield* fail("missing_header", "webhook-id, webhook-timestamp and webhook-signature are required")
    }
    const value = Redacted.isRedacted(secret) ? Redacted.value(secret) : secret
    const key = base64ToBytes(value.startsWith(SECRET_PREFIX) ? value.slice(SECRET_PREFIX.length) : value)
    if (key === undefined || key.length === 0) return yield* fail("invalid_secret", "expected whsec_<base64>")
    const signedAt = yield* checkTimestamp(timestamp, options.toleranceSeconds ?? DEFAULT_TOLERANCE_SECONDS)
    const expected = yield* hmac(key, signedContent(id, timestamp, body))
    if (!signaturesOf(signature).some((candidate) => equalBytes(candidate, expected))) {
      return yield* fail("invalid_signature", "no signature matches")
    }
    const text = typeof body === "string" ? body : new TextDecoder().decode(body)
    const payload = yield* Effect.try({
      try: (): unknown => JSON.parse(text),
      catch: () => new WebhookVerificationError({ reason: "invalid_payload", detail: "the body is not JSON" })
    })
    return { id, timestamp: signedAt, payload }
  })
