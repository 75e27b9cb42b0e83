/**
 * A Node HTTP server that holds the requests it receives before its handler
 * is installed, and hands them to the handler once it is. `NodeHttpServer`
 * listens when its layer is built and installs the handler afterwards; a
 * request in between would otherwise never be answered.
 *
 * @since 0.1.0
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http"

/**
 * A listener of the server's requests.
 *
 * @since 0.3.0
 * @category models
 */
export type RequestListener = (request: IncomingMessage, response: ServerResponse) => void

/**
 * A server for `NodeHttpServer.layer(gatedServer, …)`: requests wait for the
 * first `request` listener, then go to it in the order they came.
 *
 * `front`, when given, sees every request before the listeners do: it answers
 * it, or passes it on (possibly another request object) to `next`.
 *
 * @since 0.1.0
 * @category constructors
 */
export const gatedServer = (front?: (next: RequestListener) => RequestListener): Server => {
  const server = createServer()
  if (front !== undefined) inFront(server, front)
  const held: Array<readonly [IncomingMessage, ServerResponse]> = []
  const hold: RequestListener = (request, response) => {
    held.push([request, response])
  }
  const onNewListener = (event: string | symbol, listener: (...args: ReadonlyArray<unknown>) => void) => {
    if (event !== "request" || listener === hold) return
    server.off("newListener", onNewListener)
    server.off("request", hold)
    // The listener is added after this event: hand it what waited on the next turn.
    queueMicrotask(() => {
      for (const [request, response] of held.splice(0)) (listener as RequestListener)(request, response)
    })
  }
  server.on("request", hold)
  server.on("newListener", onNewListener)
  return server
}

/** Puts `front` before the server's `request` listeners, whichever they are when a request comes. */
const inFront = (server: Server, front: (next: RequestListener) => RequestListener) => {
  const emit = server.emit.bind(server) as (event: string | symbol, ...args: Array<unknown>) => boolean
  const toListeners = front((request, response) => {
    emit("request", request, response)
  })
  server.emit = ((event: string | symbol, ...args: Array<unknown>) => {
    if (event !== "request") return emit(event, ...args)
    toListeners(args[0] as IncomingMessage, args[1] as ServerResponse)
    return true
  }) as Server["emit"]
}
