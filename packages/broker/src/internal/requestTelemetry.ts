/**
 * What every request of the broker carries: a request id (the caller's
 * `x-request-id` when it is sane, else a new one) answered in the same header,
 * on every log line of the request (`requestId`) and on its span; and a server
 * span that continues the caller's trace (W3C `traceparent`).
 *
 * The span is the broker's own rather than @effect/platform's: that one
 * records the full URL with its query, and the provider's callback carries the
 * authorization code in its query. Here only the method, the route pattern
 * (set by the router), the status and the broker's own attributes are kept.
 *
 * @internal
 */
import { randomUUID } from "node:crypto"
import type * as HttpApp from "@effect/platform/HttpApp"
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import * as HttpTraceContext from "@effect/platform/HttpTraceContext"
import { Effect, Option } from "effect"

/** The header of the request id, in requests and answers. */
export const REQUEST_ID_HEADER = "x-request-id"

/** What an incoming request id may be: short, and nothing that could break a log line or a header. */
const SANE_REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/

/** The request id of a request: its own when sane, else a new UUID. */
export const requestIdOf = (incoming: string | undefined): string =>
  incoming !== undefined && SANE_REQUEST_ID.test(incoming) ? incoming : randomUUID()

/** Whether a request seen by the platform's tracer is one the server received (not one the broker sends). */
export const isServerRequest = (request: object): boolean => HttpServerRequest.TypeId in request

/** Wraps the app: request id, server span, log annotation. */
export const withRequestTelemetry = <E, R>(
  app: HttpApp.Default<E, R>
): HttpApp.Default<E, R | HttpServerRequest.HttpServerRequest> =>
  Effect.flatMap(HttpServerRequest.HttpServerRequest, (request) => {
    const requestId = requestIdOf(request.headers[REQUEST_ID_HEADER])
    return Effect.useSpan(
      `http.server ${request.method}`,
      {
        kind: "server",
        parent: Option.getOrUndefined(HttpTraceContext.fromHeaders(request.headers)),
        captureStackTrace: false,
        attributes: { "http.request.method": request.method, "connect.request_id": requestId }
      },
      (span) =>
        app.pipe(
          Effect.withParentSpan(span),
          Effect.annotateLogs("requestId", requestId),
          Effect.tapErrorCause(() => Effect.sync(() => span.attribute("http.response.status_code", 500))),
          Effect.map((response) => {
            span.attribute("http.response.status_code", response.status)
            return HttpServerResponse.setHeader(response, REQUEST_ID_HEADER, requestId)
          })
        )
    )
  })
