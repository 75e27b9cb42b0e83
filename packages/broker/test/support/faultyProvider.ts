/**
 * An OAuth token endpoint that misbehaves on demand (node:http on 127.0.0.1, a
 * free port), for the broker's refresh tests. It serves the refresh token and
 * client credentials grants, rotates refresh tokens on every refresh, and
 * records every request. What it does with the next requests is `mode`:
 *
 * - `ok`: answers at once;
 * - `stall`: accepts the request and never answers;
 * - `slow`: answers after `delayMs`;
 * - `500`, `html`: answers HTTP 500 with a JSON error, or 400 with an HTML page;
 * - `rotate-then-drop`: rotates the refresh token, then drops the connection
 *   (`drop: "reset"`) or answers 502 as a gateway would (`drop: "502"`).
 *
 * Rotation is strict (`graceMs: 0`: a consumed refresh token is
 * `invalid_grant`) or with a grace period (the previous refresh token keeps
 * working for `graceMs`, as Xero's and Atlassian's do).
 */
import { createServer, type IncomingMessage, type ServerResponse } from "node:http"
import type { AddressInfo, Socket } from "node:net"

/** What the provider does with the next requests. */
export type FaultMode =
  | { readonly kind: "ok" }
  | { readonly kind: "stall" }
  | { readonly kind: "slow"; readonly delayMs: number }
  | { readonly kind: "500" }
  | { readonly kind: "html" }
  | { readonly kind: "rotate-then-drop"; readonly drop: "reset" | "502" }

/** One request as the provider saw it, and what it did. */
export interface FaultyRequest {
  readonly grantType: string
  readonly refreshToken: string | undefined
  readonly scope: string | undefined
  readonly mode: FaultMode["kind"]
  /** The status answered, `"none"` when it never answered or dropped the connection. */
  outcome: number | "none"
  /** Whether the refresh token was rotated by this request. */
  rotated: boolean
  /** Whether it was answered (or dropped); a stalled request never is. */
  settled: boolean
  /** When the refresh token was rotated (ms since the epoch), if it was. */
  rotatedAt: number | undefined
}

interface RefreshState {
  /** When it was consumed (by a rotation), if it was. */
  consumedAt: number | undefined
}

/** A running faulty provider. */
export interface FaultyProvider {
  readonly tokenEndpoint: string
  readonly clientId: string
  readonly clientSecret: string
  /** What it does with the next requests. */
  mode: FaultMode
  readonly requests: Array<FaultyRequest>
  /** A new valid refresh token (a user who just authorized). */
  readonly seed: () => string
  /** Whether `token` is still accepted for a refresh now. */
  readonly accepts: (token: string) => boolean
  /** Resolves once `done` holds of the requests recorded (checked at each request and answer). */
  readonly until: (done: (requests: ReadonlyArray<FaultyRequest>) => boolean) => Promise<void>
  /** Resolves when `count` requests have arrived in all. */
  readonly received: (count: number) => Promise<void>
  readonly close: () => Promise<void>
}

const readBody = (request: IncomingMessage): Promise<string> =>
  new Promise((resolve, reject) => {
    let body = ""
    request.setEncoding("utf8")
    request.on("data", (chunk: string) => {
      body += chunk
    })
    request.on("end", () => resolve(body))
    request.on("error", reject)
  })

/** Starts a faulty provider: strict rotation unless `graceMs` is given. */
export const startFaultyProvider = async (
  options: { readonly graceMs?: number; readonly expiresIn?: number } = {}
): Promise<FaultyProvider> => {
  const graceMs = options.graceMs ?? 0
  const tokens = new Map<string, RefreshState>()
  const requests: Array<FaultyRequest> = []
  const sockets = new Set<Socket>()
  const waiters: Array<{ readonly done: () => boolean; readonly resolve: () => void }> = []
  let serial = 0
  const wake = () => {
    for (const waiter of waiters.splice(0)) {
      if (waiter.done()) waiter.resolve()
      else waiters.push(waiter)
    }
  }
  const until = (done: () => boolean) =>
    new Promise<void>((resolve) => {
      if (done()) resolve()
      else waiters.push({ done, resolve })
    })
  const fresh = () => {
    serial++
    const token = `rt_${serial}_${Math.random().toString(36).slice(2, 10)}`
    tokens.set(token, { consumedAt: undefined })
    return token
  }
  const accepts = (token: string) => {
    const state = tokens.get(token)
    return state !== undefined && (state.consumedAt === undefined || Date.now() - state.consumedAt < graceMs)
  }
  const json = (response: ServerResponse, status: number, body: unknown) => {
    response.writeHead(status, { "content-type": "application/json" })
    response.end(JSON.stringify(body))
  }

  const handle = async (request: IncomingMessage, response: ServerResponse) => {
    const params = new URLSearchParams(await readBody(request))
    const mode = provider.mode
    const record: FaultyRequest = {
      grantType: params.get("grant_type") ?? "",
      refreshToken: params.get("refresh_token") ?? undefined,
      scope: params.get("scope") ?? undefined,
      mode: mode.kind,
      outcome: "none",
      rotated: false,
      settled: false,
      rotatedAt: undefined
    }
    requests.push(record)
    wake()
    const finish = (status: number | "none") => {
      record.outcome = status
      record.settled = true
      wake()
    }
    if (mode.kind === "stall") return
    if (mode.kind === "slow") await new Promise((resolve) => setTimeout(resolve, mode.delayMs))
    if (mode.kind === "500") {
      json(response, 500, { error: "server_error" })
      return finish(500)
    }
    if (mode.kind === "html") {
      response.writeHead(400, { "content-type": "text/html" })
      response.end("<!doctype html><html><body><h1>Bad Request</h1></body></html>")
      return finish(400)
    }
    serial++
    const access = { access_token: `at_${serial}`, token_type: "Bearer", expires_in: options.expiresIn ?? 3600 }
    if (record.grantType === "client_credentials") {
      json(response, 200, access)
      return finish(200)
    }
    const old = record.refreshToken
    if (record.grantType !== "refresh_token" || old === undefined || !accepts(old)) {
      json(response, 400, { error: "invalid_grant", error_description: "the refresh token is not valid" })
      return finish(400)
    }
    const state = tokens.get(old)
    if (state !== undefined && state.consumedAt === undefined) state.consumedAt = Date.now()
    const next = fresh()
    record.rotated = true
    record.rotatedAt = Date.now()
    if (mode.kind === "rotate-then-drop") {
      if (mode.drop === "reset") request.socket.destroy()
      else json(response, 502, { message: "bad gateway" })
      return finish(mode.drop === "reset" ? "none" : 502)
    }
    json(response, 200, { ...access, refresh_token: next })
    return finish(200)
  }

  const server = createServer((request, response) => {
    handle(request, response).catch(() => response.destroy())
  })
  server.on("connection", (socket) => {
    sockets.add(socket)
    socket.on("close", () => sockets.delete(socket))
  })
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
  const { port } = server.address() as AddressInfo
  const provider: FaultyProvider = {
    tokenEndpoint: `http://127.0.0.1:${port}/token`,
    clientId: "faulty-client",
    clientSecret: "faulty-secret-1234",
    mode: { kind: "ok" },
    requests,
    seed: fresh,
    accepts,
    until: (done) => until(() => done(requests)),
    received: (count) => until(() => requests.length >= count),
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy()
        server.close(() => resolve())
      })
  }
  return provider
}
