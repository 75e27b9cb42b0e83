import { Readable } from "node:stream"
import * as HttpIncomingMessage from "@effect/platform/HttpIncomingMessage"
import * as HttpRouter from "@effect/platform/HttpRouter"
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import { Effect, Option, Redacted, Schema } from "effect"
import {
  type ConnectError,
  InvalidRequest,
  isConnectError,
  toWire,
  UnknownConnectError
} from "effect-connect/ConnectError"
import { isRecord } from "effect-connect/Json"
import { describeParseError, type Route } from "effect-connect/Protocol"
import { internalError } from "./errors.js"
import {
  type Bound,
  boundIssues,
  isPathName,
  jsonNestingDepth,
  MAX_JSON_DEPTH,
  MaxBodyBytes,
  PATH_NAME_RULE
} from "./limits.js"

/** A JSON answer that no cache keeps (it may hold a token or a key). */
export const json = (status: number, body: unknown, headers: Record<string, string> = {}) =>
  HttpServerResponse.unsafeJson(body, { status, headers: { "cache-control": "no-store", ...headers } })

/**
 * A JSON answer whose body is already serialised, with the same headers as {@link json}.
 *
 * @since 0.3.0
 * @category responses
 */
export const jsonText = (status: number, body: string) =>
  HttpServerResponse.text(body, { status, contentType: "application/json", headers: { "cache-control": "no-store" } })

/** The protocol's answer for an error: its envelope, status and headers (`Retry-After`). */
export const errorResponse = (error: ConnectError) => {
  const wire = toWire(error)
  // A body refused unread may still be arriving: the connection is not reused.
  return json(wire.status, wire.body, wire.status === 413 ? { ...wire.headers, connection: "close" } : wire.headers)
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

const badRequest = (message: string, connector?: string, path = "") =>
  new InvalidRequest({
    ...(connector === undefined ? {} : { connector }),
    status: 400,
    issues: [{ path, message }]
  })

/**
 * The answer to a body over the limit: `413 payload_too_large`.
 *
 * @since 0.1.0
 * @category errors
 */
export const payloadTooLarge = (limit: number, connector?: string) =>
  new UnknownConnectError({
    ...(connector === undefined ? {} : { connector }),
    status: 413,
    code: "payload_too_large",
    detail: `the body is larger than the broker's limit of ${limit} bytes`
  })

/** Reads a Node request's body up to `limit` bytes; past it, stops reading (without buffering the rest). */
const readNodeBody = (source: Readable, limit: number, connector?: string) =>
  Effect.async<string, InvalidRequest | UnknownConnectError>((resume) => {
    if (source.readableEnded) return resume(Effect.succeed(""))
    const chunks: Array<Buffer> = []
    let bytes = 0
    let done = false
    const cleanup = () => {
      source.off("data", onData)
      source.off("end", onEnd)
      source.off("error", onError)
      source.off("aborted", onError)
    }
    const finish = (effect: Effect.Effect<string, InvalidRequest | UnknownConnectError>) => {
      if (done) return
      done = true
      cleanup()
      resume(effect)
    }
    function onData(chunk: Buffer | string) {
      const buffer = typeof chunk === "string" ? Buffer.from(chunk) : chunk
      bytes += buffer.length
      if (bytes > limit) {
        // Paused, not destroyed: the socket must stay open for the 413, which closes the connection.
        source.pause()
        finish(Effect.fail(payloadTooLarge(limit, connector)))
      } else chunks.push(buffer)
    }
    function onEnd() {
      finish(Effect.sync(() => Buffer.concat(chunks).toString("utf8")))
    }
    function onError() {
      finish(Effect.fail(badRequest("the body could not be read", connector)))
    }
    source.on("data", onData)
    source.once("end", onEnd)
    source.once("error", onError)
    source.once("aborted", onError)
    return Effect.sync(cleanup)
  })

/** The bodies read so far, by request: a body is read once, and may be asked for again. */
const bodies = new WeakMap<object, string>()

/**
 * The body as text, refused when over the limit: by its `Content-Length`
 * before reading, or as soon as it passes. Read once per request.
 *
 * @since 0.3.0
 * @category requests
 */
export const bodyText = (connector?: string) =>
  Effect.gen(function* () {
    const request = yield* HttpServerRequest.HttpServerRequest
    // The Node request, shared by every view of the request the router makes.
    const source = request.source as object
    const known = bodies.get(source)
    if (known !== undefined) return known
    const text = yield* readBodyText(request, connector)
    bodies.set(source, text)
    return text
  })

const readBodyText = (request: HttpServerRequest.HttpServerRequest, connector: string | undefined) =>
  Effect.gen(function* () {
    const limit = yield* MaxBodyBytes
    const declared = request.headers["content-length"]
    if (declared !== undefined && /^\d+$/.test(declared.trim()) && Number(declared.trim()) > limit) {
      return yield* payloadTooLarge(limit, connector)
    }
    const source: unknown = request.source
    if (source instanceof Readable) return yield* readNodeBody(source, limit, connector)
    return yield* request.text.pipe(
      HttpIncomingMessage.withMaxBodySize(Option.some(limit)),
      Effect.mapError(() => payloadTooLarge(limit, connector))
    )
  })

/**
 * The body as parsed JSON; an empty body reads as `{}`. A body over the size
 * limit is a `413`; one that is not JSON, or nests deeper than
 * `MAX_JSON_DEPTH`, is a bad request.
 *
 * @since 0.1.0
 * @category requests
 */
export const jsonBody = (connector?: string) =>
  Effect.gen(function* () {
    const text = yield* bodyText(connector)
    if (text.trim().length === 0) return {} as unknown
    if (jsonNestingDepth(text) > MAX_JSON_DEPTH) {
      return yield* badRequest(`the body nests deeper than ${MAX_JSON_DEPTH} levels`, connector)
    }
    try {
      return JSON.parse(text) as unknown
    } catch {
      return yield* badRequest("the body is not JSON", connector)
    }
  })

/**
 * The JSON body, a JSON object decoded strictly with `schema` (a field the
 * schema does not know is refused, by name), then checked against the
 * broker's `bounds` on lengths. Failures name each field.
 *
 * @since 0.1.0
 * @category requests
 */
export const decodeBody = <A, I>(
  schema: Schema.Schema<A, I>,
  options: { readonly connector?: string; readonly bounds?: ReadonlyArray<Bound> } = {}
) =>
  Effect.gen(function* () {
    const { connector } = options
    const parsed = yield* jsonBody(connector)
    if (!isRecord(parsed)) return yield* badRequest("Expected a JSON object", connector)
    const decoded = yield* Schema.decodeUnknown(schema, { errors: "all", onExcessProperty: "error" })(parsed).pipe(
      Effect.mapError(
        (error) =>
          new InvalidRequest({
            ...(connector === undefined ? {} : { connector }),
            status: 400,
            issues: describeParseError(error)
          })
      )
    )
    const issues = boundIssues(parsed, options.bounds ?? [])
    if (issues.length > 0) {
      return yield* new InvalidRequest({ ...(connector === undefined ? {} : { connector }), status: 400, issues })
    }
    return decoded
  })

/**
 * A name in the path (`connector`, `project`, …), decoded by the router and
 * refused, by name, when it is not a path name (1 to 256 characters, no
 * control characters).
 */
export const pathName = (name: string, rule: string = PATH_NAME_RULE) =>
  Effect.flatMap(HttpRouter.params, (params) => {
    const value = params[name] ?? ""
    return isPathName(value)
      ? Effect.succeed(value)
      : Effect.fail(new InvalidRequest({ status: 400, issues: [{ path: name, message: rule }] }))
  })

/**
 * Runs a route, answering any failure in the protocol's envelope: a
 * `ConnectError` as itself, one that `translate` knows as its translation, and
 * anything else as a `500 internal_error` whose cause goes to the log only.
 */
export const answerFailures = <R>(
  route: Effect.Effect<HttpServerResponse.HttpServerResponse, unknown, R>,
  options: {
    readonly logAs: string
    readonly connector?: string
    readonly translate?: (error: unknown) => ConnectError | undefined
  }
) =>
  route.pipe(
    Effect.catchAll((error) => {
      const known = isConnectError(error) ? error : options.translate?.(error)
      if (known !== undefined) return Effect.succeed(errorResponse(known))
      return Effect.zipRight(
        Effect.logError(options.logAs, error instanceof Error ? error.message : String(error)),
        Effect.succeed(
          errorResponse(internalError(options.connector === undefined ? {} : { connector: options.connector }))
        )
      )
    })
  )

/** Serves `handler` at a route of the protocol or of the admin API (its method and pattern, defined once). */
export const serve = <E, R>(route: Route, handler: HttpRouter.Route.Handler<E, R>) =>
  HttpRouter.route(route.method)(route.pattern, handler)
