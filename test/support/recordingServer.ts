/**
 * A local HTTP server that speaks as much of the Connect wire protocol as a
 * test scripts: it parses each request, hands it to the test's `reply`, and
 * sends that answer back.
 */
import { createServer, type IncomingMessage, type Server } from "node:http"
import type { AddressInfo } from "node:net"

/** A request as the server saw it. */
export interface Recorded {
  readonly method: string
  readonly path: string
  readonly authorization: string | undefined
  readonly accept: string | undefined
  readonly contentType: string | undefined
  /** The parsed JSON body, or `undefined` when there was none. */
  readonly body: unknown
}

/** A scripted answer. */
export interface Reply {
  readonly status: number
  readonly body?: unknown
  /** A body sent as is, instead of `body` as JSON. */
  readonly raw?: string
  readonly headers?: Readonly<Record<string, string>>
}

/** The client operations the server tells apart. */
export type Operation = "token" | "revoke" | "metadata" | "authorize"

/** The operation and connector of a request, or `undefined` for a route the protocol does not have. */
export const routeOf = (method: string, path: string): { operation: Operation; connector: string } | undefined => {
  const match =
    /^\/v1\/connect\/(token|authorize)\/([^/]+)$/.exec(path) ??
    /^\/v1\/connect\/(connectors)\/([^/]+)(\/tokens)?$/.exec(path)
  const segment = match?.[2]
  if (match === null || segment === undefined) return undefined
  const connector = decodeURIComponent(segment)
  if (match[1] === "token" && method === "POST") return { operation: "token", connector }
  if (match[1] === "authorize" && method === "POST") return { operation: "authorize", connector }
  if (match[3] === "/tokens" && method === "DELETE") return { operation: "revoke", connector }
  if (match[1] === "connectors" && match[3] === undefined && method === "GET") {
    return { operation: "metadata", connector }
  }
  return undefined
}

/** A running server: its URL, and how to stop it. */
export interface RecordingServer {
  readonly server: Server
  readonly url: string
  readonly close: () => Promise<void>
}

const readBody = (request: IncomingMessage): Promise<string> =>
  new Promise((resolve, reject) => {
    const chunks: Array<Buffer> = []
    request.on("data", (chunk: Buffer) => chunks.push(chunk))
    request.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")))
    request.on("error", reject)
  })

/** Starts a server on 127.0.0.1 that answers every request with `reply` (a throw answers 500). */
export const startRecordingServer = async (
  reply: (request: Recorded) => Reply | Promise<Reply>
): Promise<RecordingServer> => {
  const server = createServer((request, response) => {
    const answer = async () => {
      const text = await readBody(request)
      const answered = await reply({
        method: request.method ?? "",
        path: new URL(request.url ?? "/", "http://local").pathname,
        authorization: request.headers.authorization,
        accept: request.headers.accept,
        contentType: request.headers["content-type"],
        body: text.length === 0 ? undefined : JSON.parse(text)
      })
      response.writeHead(answered.status, { "content-type": "application/json", ...answered.headers })
      response.end(answered.raw ?? (answered.body === undefined ? "" : JSON.stringify(answered.body)))
    }
    answer().catch((error: unknown) => {
      response.writeHead(500, { "content-type": "text/plain" })
      response.end(String(error))
    })
  })
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
  return {
    server,
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: async () => {
      server.closeAllConnections()
      await new Promise<void>((resolve, reject) => server.close((error) => (error ? reject(error) : resolve())))
    }
  }
}
