/**
 * A token endpoint in front of the test provider's: forwards each POST to it, and can act like a multi-tenant
 * provider (a `?tenant=` it does not know is refused, as Entra refuses an unknown tenant) or like a slow one
 * (code exchanges wait until the test lets them through). It records each request's grant type and each answer.
 */
import { createServer, type Server } from "node:http"

export interface TokenProxy {
  /** The proxy's token endpoint. */
  readonly tokenEndpoint: string
  /** The grant types of the requests forwarded or refused, in order. */
  readonly grantTypes: ReadonlyArray<string>
  count(grantType: string): number
  /** The JSON bodies of the successful answers, in order. */
  readonly answers: ReadonlyArray<Record<string, unknown>>
  /**
   * Makes code exchanges wait from now on: `arrived` resolves when one arrives, `abandoned` when the broker
   * gives one up (closes its connection) while it waits.
   */
  holdCodeExchanges(): {
    readonly arrived: Promise<void>
    readonly abandoned: Promise<void>
    readonly release: () => void
  }
  close(): Promise<void>
}

export const startTokenProxy = async (options: {
  readonly target: string
  /** The tenants `?tenant=` may name; any other is refused with 400 `invalid_request`. All when absent. */
  readonly tenants?: ReadonlyArray<string>
}): Promise<TokenProxy> => {
  const grantTypes: Array<string> = []
  const answers: Array<Record<string, unknown>> = []
  let hold: { arrived: () => void; abandoned: () => void; released: Promise<void> } | undefined
  const server: Server = createServer((request, response) => {
    const chunks: Array<Buffer> = []
    request.on("data", (chunk: Buffer) => chunks.push(chunk))
    request.on("end", async () => {
      const body = Buffer.concat(chunks).toString("utf8")
      const grantType = new URLSearchParams(body).get("grant_type") ?? "(none)"
      grantTypes.push(grantType)
      const tenant = new URL(request.url ?? "/", "http://proxy").searchParams.get("tenant")
      if (options.tenants !== undefined && tenant !== null && !options.tenants.includes(tenant)) {
        response.writeHead(400, { "content-type": "application/json" })
        response.end(JSON.stringify({ error: "invalid_request", error_description: "Tenant not found." }))
        return
      }
      if (grantType === "authorization_code" && hold !== undefined) {
        const current = hold
        response.on("close", () => {
          if (!response.writableEnded) current.abandoned()
        })
        current.arrived()
        await current.released
      }
      const forwarded = await fetch(options.target, {
        method: "POST",
        headers: {
          "content-type": request.headers["content-type"] ?? "application/x-www-form-urlencoded",
          ...(request.headers.authorization === undefined ? {} : { authorization: request.headers.authorization })
        },
        body
      })
      const text = await forwarded.text()
      if (forwarded.ok) answers.push(JSON.parse(text) as Record<string, unknown>)
      response.writeHead(forwarded.status, { "content-type": forwarded.headers.get("content-type") ?? "text/plain" })
      response.end(text)
    })
  })
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
  const address = server.address()
  const port = typeof address === "object" && address !== null ? address.port : 0
  return {
    tokenEndpoint: `http://127.0.0.1:${port}/token`,
    get grantTypes() {
      return [...grantTypes]
    },
    count: (grantType) => grantTypes.filter((type) => type === grantType).length,
    get answers() {
      return [...answers]
    },
    holdCodeExchanges: () => {
      let arrived: () => void = () => {}
      let abandoned: () => void = () => {}
      let release: () => void = () => {}
      const arrival = new Promise<void>((resolve) => {
        arrived = resolve
      })
      const abandonment = new Promise<void>((resolve) => {
        abandoned = resolve
      })
      const released = new Promise<void>((resolve) => {
        release = resolve
      })
      hold = { arrived, abandoned, released }
      return {
        arrived: arrival,
        abandoned: abandonment,
        release: () => {
          hold = undefined
          release()
        }
      }
    },
    close: () =>
      new Promise((resolve, reject) => {
        server.close((error) => (error ? reject(error) : resolve()))
        server.closeAllConnections()
      })
  }
}
