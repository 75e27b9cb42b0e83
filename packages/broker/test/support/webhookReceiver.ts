/**
 * A webhook receiver: a node:http server on 127.0.0.1 that keeps every request
 * it gets and answers each with the status its `answer` gives (200 by
 * default), or never answers (`"hang"`).
 */
import { createServer, type IncomingHttpHeaders } from "node:http"
import { sleep } from "./cli.js"

/** A request the receiver got. */
export interface Receipt {
  readonly headers: IncomingHttpHeaders
  readonly body: string
  readonly path: string
}

/** A running receiver. */
export interface WebhookReceiver {
  readonly url: string
  readonly receipts: Array<Receipt>
  /** How the n-th request (from 0) is answered. */
  answer: (index: number) => number | "hang"
  /** Resolves once `count` requests came, or rejects after `timeoutMs`. */
  readonly waitFor: (count: number, timeoutMs?: number) => Promise<void>
  readonly close: () => Promise<void>
}

/** The headers of a receipt as `standardwebhooks` takes them. */
export const webhookHeaders = (receipt: Receipt): Record<string, string> => ({
  "webhook-id": String(receipt.headers["webhook-id"]),
  "webhook-timestamp": String(receipt.headers["webhook-timestamp"]),
  "webhook-signature": String(receipt.headers["webhook-signature"])
})

/** Starts a receiver on a free port. */
export const startReceiver = async (path = "/hooks"): Promise<WebhookReceiver> => {
  const receipts: Array<Receipt> = []
  const server = createServer((request, response) => {
    const chunks: Array<Buffer> = []
    request.on("data", (chunk: Buffer) => chunks.push(chunk))
    request.on("end", () => {
      const index = receipts.length
      receipts.push({ headers: request.headers, body: Buffer.concat(chunks).toString("utf8"), path: request.url ?? "" })
      const status = receiver.answer(index)
      if (status === "hang") return
      response.writeHead(status, { "content-type": "text/plain" })
      response.end(status >= 200 && status < 300 ? "ok" : `failure ${index}`)
    })
  })
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
  const address = server.address()
  const port = typeof address === "object" && address !== null ? address.port : 0
  const receiver: WebhookReceiver = {
    url: `http://127.0.0.1:${port}${path}`,
    receipts,
    answer: () => 200,
    waitFor: async (count, timeoutMs = 15_000) => {
      const deadline = Date.now() + timeoutMs
      while (receipts.length < count) {
        if (Date.now() > deadline) throw new Error(`${receipts.length} webhook requests, expected ${count}`)
        await sleep(20)
      }
    },
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections()
        server.close(() => resolve())
      })
  }
  return receiver
}
