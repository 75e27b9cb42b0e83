/**
 * The token endpoint's fast path: a repeated request for a stored token,
 * answered from the `HotCache` by a plain Node request listener, before the
 * request enters the Effect HTTP stack.
 *
 * Why: on the same machine, `@effect/platform`'s server with an empty handler
 * costs several times a bare `node:http` server per request; a repeated
 * request for a stored token (most of a busy broker's traffic) needs none of
 * what it offers. The fast path answers only what the slow path answered for
 * the byte-identical body, from the same project key, while the token is
 * reusable and nothing changed since; it takes from the rate limiter, counts
 * the request in the same metrics and the event history (`hotCache/tally.ts`).
 * Anything else (another route, an unknown key or body, a chunked body, a
 * tracer installed) goes to the Effect app unchanged; a request whose body was
 * read before the miss was known goes with its body replayed.
 *
 * @internal
 */
import type { IncomingMessage, ServerResponse } from "node:http"
import { Readable } from "node:stream"
import { Exit, Redacted, Runtime } from "effect"
import type { HotCacheService } from "../HotCache.js"
import type { RateLimiterService } from "../RateLimiter.js"
import type { Caller } from "../Store.js"
import type { Tally } from "./hotCache/tally.js"
import { REQUEST_ID_HEADER, requestIdOf } from "./requestTelemetry.js"
import { hashKey } from "./store/common.js"

type RequestListener = (request: IncomingMessage, response: ServerResponse) => void

/** The token route's path, before the connector. */
const TOKEN_PATH = "/v1/connect/token/"

/**
 * The key of an answer: who asked (project and environment), of which
 * connector (as the path names it) and the exact body.
 */
export const answerKey = (caller: Caller, connector: string, body: string): string =>
  `${caller.projectId}\n${caller.environment}\n${connector}\n${body}`

/** What the fast path needs from the broker's services. */
export interface FastPathServices {
  readonly cache: HotCacheService
  readonly limiter: RateLimiterService
  /** Where the answers given are counted, for the metrics and the event history. */
  readonly tally: Tally
  readonly maxBodyBytes: number
  /** Runs the rate limiter's take, when limiting is on. */
  readonly runtime: Runtime.Runtime<never>
}

/** The connector named by a token route's path, or nothing when the path is another route's. */
export const connectorOf = (url: string | undefined): string | undefined => {
  if (url === undefined || !url.startsWith(TOKEN_PATH)) return undefined
  const segment = url.slice(TOKEN_PATH.length)
  if (segment.length === 0 || segment.includes("/") || segment.includes("?")) return undefined
  try {
    return decodeURIComponent(segment)
  } catch {
    return undefined
  }
}

/** The caller of a request, when its key is one the cache knows. */
const callerOf = (cache: HotCacheService, request: IncomingMessage): Caller | undefined => {
  const authorization = request.headers.authorization
  if (authorization === undefined || !authorization.startsWith("Bearer ")) return undefined
  const key = authorization.slice(7).trim()
  return key.length === 0 ? undefined : cache.caller(hashKey(Redacted.make(key)))
}

/** The request with its body, already read, to be read again by the Effect app. */
const replayed = (request: IncomingMessage, body: Buffer): IncomingMessage =>
  Object.assign(Readable.from(body.length === 0 ? [] : [body]), {
    headers: request.headers,
    rawHeaders: request.rawHeaders,
    url: request.url,
    method: request.method,
    httpVersion: request.httpVersion,
    socket: request.socket,
    connection: request.socket
  }) as unknown as IncomingMessage

/** Reads a body of `length` bytes, then calls `done` with it (or with nothing when the request broke off). */
const readBody = (request: IncomingMessage, length: number, done: (body: Buffer | undefined) => void) => {
  const chunks: Array<Buffer> = []
  let size = 0
  request.on("data", (chunk: Buffer) => {
    chunks.push(chunk)
    size += chunk.length
  })
  request.once("end", () => done(size === length ? Buffer.concat(chunks, size) : undefined))
  request.once("error", () => done(undefined))
}

/** Takes one request from the project's bucket, then calls `decided`: at once when limiting is off. */
const take = (services: FastPathServices, projectId: string, decided: (allowed: boolean) => void) => {
  if (services.limiter.perMinute === 0) return decided(true)
  // A shared limiter asks the database: the answer may come later.
  Runtime.runCallback(services.runtime)(services.limiter.take(projectId), {
    onExit: (exit) => decided(Exit.isSuccess(exit) && exit.value.allowed)
  })
}

/** Answers from the cache, or hands the request (its body replayed) to `next`. */
const answerOrReplay = (
  services: FastPathServices,
  next: RequestListener,
  request: IncomingMessage,
  response: ServerResponse,
  found: { readonly caller: Caller; readonly connector: string; readonly body: Buffer }
) => {
  const { caller, connector, body } = found
  const now = Date.now()
  const answer = services.cache.answer(answerKey(caller, connector, body.toString("utf8")), now)
  if (answer === undefined) return next(replayed(request, body), response)
  take(services, caller.projectId, (allowed) => {
    // Refused: the slow path takes again (a refusal takes nothing) and answers 429 in the protocol's envelope.
    if (!allowed) return next(replayed(request, body), response)
    const requestId = requestIdOf(request.headers[REQUEST_ID_HEADER] as string | undefined)
    response.writeHead(200, {
      "content-type": "application/json",
      "content-length": Buffer.byteLength(answer.body),
      "cache-control": "no-store",
      [REQUEST_ID_HEADER]: requestId
    })
    response.end(answer.body)
    services.tally.add(caller, answer, requestId, now)
  })
}

/**
 * Wraps the Effect app's request listener with the fast path.
 *
 * @internal
 */
export const withFastPath =
  (services: FastPathServices) =>
  (next: RequestListener): RequestListener =>
  (request, response) => {
    const connector = request.method === "POST" ? connectorOf(request.url) : undefined
    const caller = connector === undefined || !services.cache.usable() ? undefined : callerOf(services.cache, request)
    const length = Number(request.headers["content-length"])
    // A chunked or oversized body is the slow path's to refuse.
    if (caller === undefined || connector === undefined || !(length > 0 && length <= services.maxBodyBytes)) {
      return next(request, response)
    }
    readBody(request, length, (body) => {
      // The request broke off: there is no one to answer.
      if (body === undefined) return void response.destroy()
      answerOrReplay(services, next, request, response, { caller, connector, body })
    })
  }
