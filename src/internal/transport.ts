import type * as HttpClient from "@effect/platform/HttpClient"
import * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import type * as HttpClientResponse from "@effect/platform/HttpClientResponse"
import { Duration, Effect, Redacted, Schedule, Schema } from "effect"
import {
  type ConnectError,
  fromWire,
  InvalidResponse,
  PermanentServerCodes,
  type ProviderUnavailable,
  type RateLimited,
  ServiceUnavailable,
  Unauthorized
} from "../ConnectError.js"
import { isRecord } from "./json.js"
import { describeParseError } from "./schema.js"
import { requestsSent } from "./telemetry.js"

/** How the client talks to a Connect server. */
export interface TransportOptions {
  readonly baseUrl: string
  readonly token: Redacted.Redacted<string>
  /** Where the token came from, named when the server rejects it. */
  readonly credentialSource: string
  /** The limit of one attempt, body included. */
  readonly timeout: Duration.Duration
  /** How many times a transient failure is retried. */
  readonly retries: number
  /** The first backoff delay; it doubles with each retry, with jitter. */
  readonly retryBaseDelay: Duration.Duration
  /** A `Retry-After` longer than this is not waited for: the error is returned. */
  readonly maxRetryAfter: Duration.Duration
}

/** One request to the server. */
export interface Call<A, I> {
  readonly method: "GET" | "POST" | "DELETE"
  readonly path: string
  readonly connector: string
  readonly body?: unknown
  readonly response: Schema.Schema<A, I>
  /** An empty success body (HTTP 204) reads as this value. */
  readonly empty?: I
}

/** Why one attempt failed, and whether another may succeed. */
type AttemptFailure =
  | {
      readonly _tag: "Transient"
      readonly reason: string
      readonly status?: number
      /** The server's own error, when it named one (rate limited, provider unavailable): what the caller gets if no retry succeeds. */
      readonly answered?: RateLimited | ProviderUnavailable
      readonly retryAfterMs?: number
    }
  | { readonly _tag: "Final"; readonly error: ConnectError }

interface Answer {
  readonly status: number
  readonly text: string
}

const errorBody = (text: string) => {
  if (text.length === 0) return { body: {} }
  let json: unknown
  try {
    json = JSON.parse(text)
  } catch {
    return { body: {} }
  }
  if (!isRecord(json)) return { body: {} }
  // The official client also accepts `err` for `error`.
  const error = isRecord(json.error) ? json.error : isRecord(json.err) ? json.err : undefined
  if (error === undefined) return { body: {}, vendor: vendorOf(json) }
  return {
    body: error,
    code: typeof error.code === "string" ? error.code : undefined,
    message: typeof error.message === "string" ? error.message : undefined,
    vendor: vendorOf(error) ?? vendorOf(json)
  }
}

const vendorOf = (record: Record<string, unknown>): Record<string, unknown> | undefined =>
  isRecord(record.vendor)
    ? record.vendor
    : isRecord(record.meta) && isRecord(record.meta.vendor)
      ? record.meta.vendor
      : undefined

/** `Retry-After` in milliseconds: delta seconds, or an HTTP date. */
export const parseRetryAfter = (value: string | undefined, nowMs: number): number | undefined => {
  if (value === undefined) return undefined
  const trimmed = value.trim()
  if (/^\d+$/.test(trimmed)) return Number(trimmed) * 1000
  const date = Date.parse(trimmed)
  return Number.isNaN(date) ? undefined : Math.max(0, date - nowMs)
}

/** The limits of {@link retrySchedule}. */
export interface RetryLimits {
  /** How many times a transient failure is retried. */
  readonly retries: number
  /** The first backoff delay; it doubles with each retry, with jitter. */
  readonly retryBaseDelay: Duration.DurationInput
  /** A `Retry-After` longer than this is not waited for: the failure is returned. */
  readonly maxRetryAfter: Duration.DurationInput
}

/**
 * The retry policy of the SDK's client and of the broker's provider client:
 * exponential backoff with jitter, at most `retries` times, only while
 * `transient` says a failure is (with the `Retry-After` it carried, which the
 * delay is at least, and which must not exceed `maxRetryAfter`).
 */
export const retrySchedule = <E>(
  limits: RetryLimits,
  transient: (failure: E) => { readonly retryAfterMs: number | undefined } | undefined
): Schedule.Schedule<[[Duration.Duration, number], E], E> => {
  const maxRetryAfterMs = Duration.toMillis(limits.maxRetryAfter)
  return Schedule.exponential(limits.retryBaseDelay, 2).pipe(
    Schedule.jittered,
    Schedule.intersect(Schedule.recurs(limits.retries)),
    Schedule.intersect(Schedule.identity<E>()),
    Schedule.whileInput((failure: E) => {
      const verdict = transient(failure)
      return verdict !== undefined && (verdict.retryAfterMs === undefined || verdict.retryAfterMs <= maxRetryAfterMs)
    }),
    Schedule.modifyDelay(([, failure], delay) => {
      const retryAfterMs = transient(failure)?.retryAfterMs
      return retryAfterMs === undefined ? delay : Duration.max(delay, Duration.millis(retryAfterMs))
    })
  )
}

const describeTransportError = (error: { readonly _tag: string; readonly reason?: string }): string =>
  error._tag === "RequestError"
    ? `request failed: ${error.reason ?? "transport error"}`
    : `response failed: ${error.reason ?? "body error"}`

/** Sends calls to a Connect server and decodes their answers. */
export interface Transport {
  /** Sends a call and decodes its answer. */
  readonly send: <A, I>(call: Call<A, I>) => Effect.Effect<A, ConnectError>
}

/** Codes whose error answer is still a Connect server's own: 401 and 429 without a code, 408 and 5xx (proxies). */
const speaksConnect = (status: number, code: string | undefined) =>
  code !== undefined || status === 401 || status === 408 || status === 429 || status >= 500

/**
 * Why an error answer cannot be a Connect server's, if it cannot: a server of
 * ours that has no such endpoint (a path in the base URL), an HTML page, an
 * OAuth server's `{"error": "..."}`, or a bare 404. The caller hears it with
 * the URL it called, as a setting to fix rather than a missing connector.
 */
const notConnect = (response: HttpClientResponse.HttpClientResponse, text: string, code: string | undefined) => {
  const fix = "check CONNECT_URL: the Connect server's root URL, without a path such as /v1"
  if (code === "endpoint_not_found") return `the server has no such endpoint; ${fix}`
  if (speaksConnect(response.status, code)) return undefined
  if (/html/i.test(response.headers["content-type"] ?? "") || text.trimStart().startsWith("<")) {
    return `an HTML page answered, not a Connect server; ${fix}`
  }
  const oauth = /^\s*\{\s*"error"\s*:\s*"([\w.-]{1,64})"/.exec(text)
  if (oauth !== null) return `an OAuth server answered (error ${oauth[1]}), not a Connect server; ${fix}`
  return response.status === 404 ? `no Connect server answers there; ${fix}` : undefined
}

/** Whether a failed status is worth another attempt (408, 429, 5xx but a permanent code), or final. */
const classify = (call: Call<unknown, unknown>, response: HttpClientResponse.HttpClientResponse, answer: Answer) =>
  Effect.clockWith((clock): Effect.Effect<Answer, AttemptFailure> => {
    const { status } = answer
    if (status >= 200 && status < 300) return Effect.succeed(answer)
    const retryAfterMs = parseRetryAfter(response.headers["retry-after"], clock.unsafeCurrentTimeMillis())
    const parsed = errorBody(answer.text)
    const foreign = notConnect(response, answer.text, parsed.code)
    if (foreign !== undefined) {
      const url = response.request.url
      return Effect.fail({ _tag: "Final", error: new InvalidResponse({ url, reason: foreign, status }) })
    }
    const error = fromWire({
      connector: call.connector,
      status,
      code: parsed.code,
      message: parsed.message,
      vendor: parsed.vendor,
      body: parsed.body,
      retryAfterMs
    })
    if (error._tag === "RateLimited") {
      return Effect.fail({
        _tag: "Transient",
        reason: "HTTP 429",
        status,
        answered: error,
        ...(retryAfterMs === undefined ? {} : { retryAfterMs })
      })
    }
    const permanent = parsed.code !== undefined && PermanentServerCodes.has(parsed.code)
    if (status === 408 || (status >= 500 && !permanent)) {
      return Effect.fail({
        _tag: "Transient",
        reason: `HTTP ${status}`,
        status,
        ...(error._tag === "ProviderUnavailable" ? { answered: error } : {}),
        ...(retryAfterMs === undefined ? {} : { retryAfterMs })
      })
    }
    return Effect.fail({ _tag: "Final", error })
  })

/** The HTTP request of a call: bearer credential, JSON body. */
const requestOf = (options: TransportOptions, call: Call<unknown, unknown>): HttpClientRequest.HttpClientRequest => {
  const url = `${options.baseUrl}${call.path}`
  const base = HttpClientRequest.make(call.method)(url).pipe(
    HttpClientRequest.acceptJson,
    HttpClientRequest.bearerToken(Redacted.value(options.token))
  )
  return call.body === undefined ? base : HttpClientRequest.bodyUnsafeJson(base, call.body)
}

/** One attempt: the answer read whole within the timeout, then classified. */
const attempt = (
  http: HttpClient.HttpClient,
  options: TransportOptions,
  timeoutText: string,
  call: Call<unknown, unknown>,
  req: HttpClientRequest.HttpClientRequest
) =>
  http.execute(req).pipe(
    Effect.flatMap((response) =>
      Effect.map(response.text, (text): readonly [HttpClientResponse.HttpClientResponse, Answer] => [
        response,
        { status: response.status, text }
      ])
    ),
    Effect.timeoutFail({
      duration: options.timeout,
      onTimeout: (): AttemptFailure => ({ _tag: "Transient", reason: `timed out after ${timeoutText}` })
    }),
    Effect.catchTags({
      RequestError: (error): Effect.Effect<never, AttemptFailure> =>
        Effect.fail({ _tag: "Transient", reason: describeTransportError(error) }),
      ResponseError: (error): Effect.Effect<never, AttemptFailure> =>
        Effect.fail({ _tag: "Transient", reason: describeTransportError(error) })
    }),
    Effect.flatMap(([response, answer]) => classify(call, response, answer))
  )

/** The success body of a call, decoded by its schema (an empty body reads as `call.empty`). */
const decode = <A, I>(baseUrl: string, call: Call<A, I>, answer: Answer): Effect.Effect<A, InvalidResponse> => {
  const invalid = (reason: string) => new InvalidResponse({ url: baseUrl, reason, status: answer.status })
  let json: unknown
  if (answer.text.length === 0) {
    if (call.empty === undefined) return Effect.fail(invalid("the body is empty"))
    json = call.empty
  } else {
    try {
      json = JSON.parse(answer.text)
    } catch {
      return Effect.fail(invalid(`the body is not JSON (${answer.text.length} bytes)`))
    }
  }
  return Schema.decodeUnknown(call.response)(json).pipe(
    Effect.mapError((error) =>
      invalid(
        describeParseError(error)
          .map((issue) => (issue.path === "" ? issue.message : `${issue.path}: ${issue.message}`))
          .join("; ")
      )
    )
  )
}

/** The error of a call whose last attempt failed. */
const finalError = (baseUrl: string, failure: AttemptFailure, attempts: number): ConnectError => {
  if (failure._tag === "Final") return failure.error
  if (failure.answered !== undefined) return failure.answered
  return new ServiceUnavailable({
    url: baseUrl,
    reason: failure.reason,
    attempts,
    ...(failure.status === undefined ? {} : { status: failure.status })
  })
}

/** An `Unauthorized` that says which credential was refused. */
const withSource = (error: ConnectError, options: TransportOptions): ConnectError =>
  error._tag === "Unauthorized" ? new Unauthorized({ ...error, credentialSource: options.credentialSource }) : error

/** The span of one HTTP attempt; the HTTP client's own span (which carries `traceparent`) is its child. */
const withAttemptSpan =
  (call: Call<unknown, unknown>, attemptNumber: number) =>
  <R>(effect: Effect.Effect<Answer, AttemptFailure, R>): Effect.Effect<Answer, AttemptFailure, R> =>
    effect.pipe(
      Effect.tapBoth({
        onSuccess: (answer) => Effect.annotateCurrentSpan("http.response.status_code", answer.status),
        onFailure: (failure) =>
          Effect.annotateCurrentSpan(
            failure._tag === "Final"
              ? { "error.type": failure.error._tag, ...statusOf(failure.error) }
              : {
                  "error.type": failure.reason,
                  ...(failure.status === undefined ? {} : { "http.response.status_code": failure.status })
                }
          )
      }),
      Effect.withSpan("connect.http.attempt", {
        kind: "internal",
        captureStackTrace: false,
        attributes: {
          "connect.connector": call.connector,
          "connect.attempt": attemptNumber,
          "http.request.method": call.method,
          "url.path": call.path
        }
      })
    )

const statusOf = (error: ConnectError): { readonly "http.response.status_code"?: number } => {
  const status: unknown = "status" in error ? error.status : undefined
  return typeof status === "number" ? { "http.response.status_code": status } : {}
}

/**
 * Sends calls to a Connect server: bearer credential, JSON bodies, a timeout on
 * each attempt, retries with exponential backoff and jitter for transient
 * failures (transport errors, timeouts, 408, 429, 5xx) that honour
 * `Retry-After`, and decoding of every success body.
 */
export const makeTransport = (http: HttpClient.HttpClient, options: TransportOptions): Transport => {
  const timeoutText = Duration.format(options.timeout)

  const schedule = retrySchedule(options, (failure: AttemptFailure) =>
    failure._tag === "Transient" ? { retryAfterMs: failure.retryAfterMs } : undefined
  )

  const send = <A, I>(call: Call<A, I>): Effect.Effect<A, ConnectError> =>
    Effect.suspend(() => {
      let attempts = 0
      const req = requestOf(options, call as Call<unknown, unknown>)
      return Effect.suspend(() => {
        attempts++
        requestsSent.unsafeUpdate(1, [])
        return attempt(http, options, timeoutText, call as Call<unknown, unknown>, req).pipe(
          withAttemptSpan(call as Call<unknown, unknown>, attempts)
        )
      }).pipe(
        Effect.retry(schedule),
        Effect.mapError((failure) => withSource(finalError(options.baseUrl, failure, attempts), options)),
        Effect.flatMap((answer) => decode(options.baseUrl, call, answer))
      )
    })

  return { send }
}
