/**
 * The webhooks' dispatcher: claims due deliveries with a lease, sends each
 * signed (Standard Webhooks) within a deadline, and records the outcome. No
 * transaction or pooled connection is held while a request is in flight: the
 * claim commits before, the outcome is a second short statement after.
 *
 * @internal
 */
import type * as HttpClient from "@effect/platform/HttpClient"
import * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import type { SqlClient } from "@effect/sql"
import { Clock, Duration, Effect, Either, Random, Stream } from "effect"
import { Webhook } from "standardwebhooks"
import type { DeliveryAttemptView } from "../../AdminApi.js"
import type { StoreError } from "../../Store.js"
import type { Sealer } from "../store/sealer.js"
import { type AttemptOutcome, type ClaimedDelivery, claimDue, completeAttempt } from "./deliveries.js"
import { DISABLE_ON_GONE, MAX_ANSWER_BYTES, MAX_ERROR_LENGTH, retryDelayMillis } from "./policy.js"
import { disableWebhook, secretOf, selectWebhook, type WebhookRow } from "./table.js"

/** How the dispatcher sends. */
export interface DispatcherSettings {
  /** The deadline of one request, answer included. */
  readonly timeout: Duration.Duration
  /** Multiplies the retry delays (1 in production). */
  readonly backoffScale: number
  /** How many deliveries one round claims. */
  readonly batchSize: number
}

/** What the dispatcher works with. */
export interface Dispatcher {
  readonly sql: SqlClient.SqlClient
  readonly sealer: Sealer
  readonly http: HttpClient.HttpClient
  readonly owner: string
  readonly settings: DispatcherSettings
}

/** How many deliveries are sent at once. */
const CONCURRENCY = 8

/**
 * A lease outlives the request's deadline by far, so that no other replica
 * claims a delivery while it may still be in flight here.
 */
export const leaseMillis = (timeout: Duration.Duration): number => 2 * Duration.toMillis(timeout) + 5_000

const clip = (text: string) => (text.length > MAX_ERROR_LENGTH ? `${text.slice(0, MAX_ERROR_LENGTH)}…` : text)

/** At most `MAX_ANSWER_BYTES` of an answer's body, as text; the rest is not read. */
const answerText = (stream: Stream.Stream<Uint8Array, unknown>) => {
  const decoder = new TextDecoder()
  return Stream.runFoldWhile(
    stream,
    "",
    (text) => text.length < MAX_ANSWER_BYTES,
    (text, chunk) => text + decoder.decode(chunk, { stream: true })
  ).pipe(
    Effect.map((text) => text.slice(0, MAX_ANSWER_BYTES)),
    Effect.orElseSucceed(() => "")
  )
}

/** The signed request of a delivery: its id is the event's, so a receiver can drop what it has already seen. */
const signedRequest = (row: WebhookRow, delivery: ClaimedDelivery, secret: string, now: number) => {
  const signature = new Webhook(secret).sign(delivery.eventId, new Date(now), delivery.payload)
  return HttpClientRequest.post(row.url).pipe(
    HttpClientRequest.setHeaders({
      "user-agent": "effect-connect-broker",
      "webhook-id": delivery.eventId,
      "webhook-timestamp": String(Math.floor(now / 1000)),
      "webhook-signature": signature
    }),
    HttpClientRequest.bodyText(delivery.payload, "application/json")
  )
}

/** What a receiver answered: its status, and for a failure the start of its body. */
interface Answer {
  readonly status: number
  readonly error?: string
}

/** Sends the request and reads what it must of the answer, within the deadline. */
const send = (dispatcher: Dispatcher, request: HttpClientRequest.HttpClientRequest) =>
  dispatcher.http.execute(request).pipe(
    Effect.flatMap(
      (response): Effect.Effect<Answer> =>
        response.status >= 200 && response.status < 300
          ? Effect.succeed({ status: response.status })
          : response.status >= 300 && response.status < 400
            ? Effect.succeed({ status: response.status, error: "redirect (not followed)" })
            : Effect.map(answerText(response.stream), (text) => ({
                status: response.status,
                ...(text === "" ? {} : { error: clip(text) })
              }))
    ),
    Effect.timeout(dispatcher.settings.timeout),
    Effect.either
  )

/** Sends one attempt; its record: the answer's status, or what went wrong instead. */
const attempt = (dispatcher: Dispatcher, row: WebhookRow, delivery: ClaimedDelivery) =>
  Effect.gen(function* () {
    const started = yield* Clock.currentTimeMillis
    const secret = yield* secretOf(dispatcher.sealer, row)
    const sent = yield* send(dispatcher, signedRequest(row, delivery, secret, started))
    const durationMs = (yield* Clock.currentTimeMillis) - started
    if (Either.isRight(sent)) return { at: started, ...sent.right, durationMs } satisfies DeliveryAttemptView
    const error =
      sent.left._tag === "TimeoutException"
        ? `no answer within ${Duration.format(dispatcher.settings.timeout)}`
        : sent.left.message
    return { at: started, error: clip(error), durationMs } satisfies DeliveryAttemptView
  })

/** The outcome of an attempt, by the retry policy. */
const outcomeOf = (dispatcher: Dispatcher, delivery: ClaimedDelivery, result: DeliveryAttemptView) =>
  Effect.map(Random.next, (random): AttemptOutcome => {
    const status = result.status
    if (status !== undefined && status >= 200 && status < 300) {
      return { attempt: result, status: "delivered", nextAttemptAt: result.at }
    }
    if (status === 410 && DISABLE_ON_GONE) return { attempt: result, status: "failed", nextAttemptAt: result.at }
    const delay = retryDelayMillis(delivery.attempts + 1, random, dispatcher.settings.backoffScale)
    return delay === undefined
      ? { attempt: result, status: "failed", nextAttemptAt: result.at }
      : { attempt: result, status: "pending", nextAttemptAt: result.at + result.durationMs + delay }
  })

/** Sends one claimed delivery and records its outcome; never fails (a failure is logged, the lease then expires). */
const deliver = (dispatcher: Dispatcher, delivery: ClaimedDelivery) =>
  Effect.gen(function* () {
    const row = yield* selectWebhook(dispatcher.sql, delivery.webhookId)
    // Removed since the claim: its deliveries went with it.
    if (row === undefined) return
    const result: DeliveryAttemptView = yield* attempt(dispatcher, row, delivery)
    const outcome = yield* outcomeOf(dispatcher, delivery, result)
    const recorded = yield* completeAttempt(dispatcher.sql, delivery, dispatcher.owner, outcome)
    if (outcome.attempt.status === 410 && DISABLE_ON_GONE) {
      yield* disableWebhook(dispatcher.sql, row.id, "the receiver answered 410 Gone", result.at)
    }
    if (outcome.status !== "delivered") {
      yield* Effect.logWarning("webhook delivery failed").pipe(
        Effect.annotateLogs({
          webhook: row.id,
          delivery: delivery.id,
          event: delivery.eventId,
          ...(result.status === undefined ? {} : { status: result.status }),
          ...(result.error === undefined ? {} : { error: result.error }),
          next: outcome.status === "pending" ? new Date(outcome.nextAttemptAt).toISOString() : "none"
        })
      )
    }
    if (!recorded) yield* Effect.logWarning(`webhook delivery ${delivery.id}: the lease expired before its outcome`)
  }).pipe(
    Effect.catchAll((error) =>
      Effect.logWarning(`webhook delivery ${delivery.id} could not be sent`, error.message ?? String(error))
    )
  )

/**
 * One round: claims what is due (up to the batch size) and sends it; says how
 * many it claimed.
 */
export const dispatchDue = (dispatcher: Dispatcher): Effect.Effect<number, StoreError> =>
  Effect.gen(function* () {
    const now = yield* Clock.currentTimeMillis
    const claimed = yield* claimDue(dispatcher.sql, {
      owner: dispatcher.owner,
      now,
      leaseUntil: now + leaseMillis(dispatcher.settings.timeout),
      limit: dispatcher.settings.batchSize
    })
    yield* Effect.forEach(claimed, (delivery) => deliver(dispatcher, delivery), {
      concurrency: CONCURRENCY,
      discard: true
    })
    return claimed.length
  })
