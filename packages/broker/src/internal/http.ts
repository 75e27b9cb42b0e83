import * as HttpRouter from "@effect/platform/HttpRouter"
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import { Effect, Option, Redacted } from "effect"
import { type ConnectError, InvalidRequest, toWire } from "effect-connect/ConnectError"
import type { Route } from "effect-connect/Protocol"

/** A JSON answer that no cache keeps (it may hold a token or a key). */
export const json = (status: number, body: unknown, headers: Record<string, string> = {}) =>
  HttpServerResponse.unsafeJson(body, { status, headers: { "cache-control": "no-store", ...headers } })

/** The protocol's answer for an error: its envelope, status and headers (`Retry-After`). */
export const errorResponse = (error: ConnectError) => {
  const wire = toWire(error)
  return json(wire.status, wire.body, wire.headers)
}

/** The credential of `Authorization: Bearer <credential>`, when the request has one. */
export const bearerToken: Effect.Effect<
  Option.Option<Redacted.Redacted<string>>,
  never,
  HttpServerRequest.HttpServerRequest
> = Effect.map(HttpServerRequest.HttpServerRequest, (request) => {
  const header = request.headers.authorization
  const match = header === undefined ? null : /^Bearer\s+(\S+)\s*$/i.exec(header)
  return match?.[1] === undefined ? Option.none() : Option.some(Redacted.make(match[1]))
})

/** The body as parsed JSON; an empty body reads as `{}`, one that is not JSON is a bad request. */
export const jsonBody = (connector?: string) =>
  Effect.gen(function* () {
    const request = yield* HttpServerRequest.HttpServerRequest
    const text = yield* request.text.pipe(Effect.orElseSucceed(() => ""))
    if (text.trim().length === 0) return {} as unknown
    try {
      return JSON.parse(text) as unknown
    } catch {
      return yield* new InvalidRequest({
        ...(connector === undefined ? {} : { connector }),
        status: 400,
        issues: [{ path: "", message: "the body is not JSON" }]
      })
    }
  })

/** Serves `handler` at a route of the protocol or of the admin API (its method and pattern, defined once). */
export const serve = <E, R>(route: Route, handler: HttpRouter.Route.Handler<E, R>) =>
  HttpRouter.route(route.method)(route.pattern, handler)
