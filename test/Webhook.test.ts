import { randomBytes } from "node:crypto"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Redacted, TestClock } from "effect"
import { Webhook as StandardWebhook } from "standardwebhooks"
import * as Webhook from "../src/Webhook.js"

const secret = `whsec_${randomBytes(32).toString("base64")}`
const body = JSON.stringify({ type: "token.issued", timestamp: "2030-01-01T00:00:00.000Z", data: { id: "evt_1" } })
const NOW = Date.UTC(2030, 0, 1)

/** Headers signed by the `standardwebhooks` package, at `at` (ms). */
const signed = (
  at: number,
  options: { readonly id?: string; readonly key?: string; readonly payload?: string } = {}
) => {
  const id = options.id ?? "evt_1"
  return {
    "webhook-id": id,
    "webhook-timestamp": String(Math.floor(at / 1000)),
    "webhook-signature": new StandardWebhook(options.key ?? secret).sign(id, new Date(at), options.payload ?? body)
  }
}

const reasonOf = <A>(effect: Effect.Effect<A, Webhook.WebhookVerificationError>) =>
  Effect.map(Effect.flip(effect), (error) => error.reason)

describe("Webhook.verify", () => {
  it.effect("accepts what standardwebhooks signed, from a record, Headers or bytes, with or without whsec_", () =>
    Effect.gen(function* () {
      yield* TestClock.setTime(NOW)
      const headers = signed(NOW - 60_000)
      const verified = yield* Webhook.verify(secret, headers, body)
      expect(verified).toEqual({ id: "evt_1", timestamp: new Date(NOW - 60_000), payload: JSON.parse(body) })
      yield* Webhook.verify(Redacted.make(secret.slice("whsec_".length)), new Headers(headers), body)
      yield* Webhook.verify(secret, headers, new TextEncoder().encode(body))
      // Several signatures (a secret being rotated): one match is enough.
      const other = signed(NOW, { key: `whsec_${randomBytes(32).toString("base64")}` })["webhook-signature"]
      const rotating = { ...signed(NOW), "webhook-signature": `${other} v2,abc ${signed(NOW)["webhook-signature"]}` }
      expect((yield* Webhook.verify(secret, rotating, body)).id).toBe("evt_1")
    })
  )

  it.effect("refuses what does not match, by reason", () =>
    Effect.gen(function* () {
      yield* TestClock.setTime(NOW)
      const reasons = yield* Effect.all([
        reasonOf(Webhook.verify(secret, signed(NOW), body.replace("evt_1", "evt_2"))),
        reasonOf(Webhook.verify(secret, { ...signed(NOW), "webhook-id": "evt_2" }, body)),
        reasonOf(Webhook.verify(secret, signed(NOW, { key: `whsec_${randomBytes(32).toString("base64")}` }), body)),
        reasonOf(Webhook.verify(secret, signed(NOW - 301_000), body)),
        reasonOf(Webhook.verify(secret, signed(NOW + 301_000), body)),
        reasonOf(Webhook.verify(secret, { ...signed(NOW), "webhook-timestamp": "soon" }, body)),
        reasonOf(Webhook.verify(secret, { "webhook-id": "evt_1" }, body)),
        reasonOf(Webhook.verify("whsec_not base64!", signed(NOW), body)),
        reasonOf(Webhook.verify(secret, signed(NOW, { payload: "not json" }), "not json"))
      ])
      expect(reasons).toEqual([
        "invalid_signature",
        "invalid_signature",
        "invalid_signature",
        "timestamp_out_of_tolerance",
        "timestamp_out_of_tolerance",
        "invalid_timestamp",
        "missing_header",
        "invalid_secret",
        "invalid_payload"
      ])
      // A wider tolerance, when asked for.
      yield* Webhook.verify(secret, signed(NOW - 301_000), body, { toleranceSeconds: 600 })
    })
  )

  it.effect("never says the secret or the signature", () =>
    Effect.gen(function* () {
      yield* TestClock.setTime(NOW)
      const headers = signed(NOW, { key: `whsec_${randomBytes(32).toString("base64")}` })
      const error = yield* Effect.flip(Webhook.verify(secret, headers, body))
      const said = `${error.message} ${JSON.stringify(error)}`
      expect(said).not.toContain(secret.slice("whsec_".length, 16))
      expect(said).not.toContain(headers["webhook-signature"].slice(3, 16))
    })
  )
})
