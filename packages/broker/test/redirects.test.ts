import { createServer, type Server } from "node:http"
import type { AddressInfo } from "node:net"
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { type RunningBroker, startBroker } from "./support/broker.js"
import { sqlite, type TestDatabase } from "./support/databases.js"

const SECRET = "cs_must_not_follow_redirects_7731"
const KEY = "ck_redirects_key_1180"

const listen = (server: Server) =>
  new Promise<string>((resolve) =>
    server.listen(0, "127.0.0.1", () => resolve(`http://127.0.0.1:${(server.address() as AddressInfo).port}`))
  )

describe("a provider token endpoint that redirects", () => {
  const received: Array<string> = []
  // Where the redirect points: it must never see the client's credentials.
  const elsewhere = createServer((req, res) => {
    let body = ""
    req.on("data", (chunk) => {
      body += chunk
    })
    req.on("end", () => {
      received.push(`${req.headers.authorization ?? ""} ${body}`)
      res.writeHead(200, { "content-type": "application/json" })
      res.end(JSON.stringify({ access_token: "stolen", token_type: "Bearer", expires_in: 3600 }))
    })
  })
  let target = ""
  const redirecting = createServer((_req, res) => {
    res.writeHead(307, { location: `${target}/token` })
    res.end()
  })
  let database: TestDatabase
  let broker: RunningBroker

  beforeAll(async () => {
    target = await listen(elsewhere)
    const tokenEndpoint = `${await listen(redirecting)}/token`
    database = sqlite()
    broker = await startBroker({
      database,
      config: {
        connectors: [
          {
            uid: "acme/api",
            name: "Acme",
            type: "oauth",
            clientId: "broker",
            clientSecret: SECRET,
            tokenEndpoint,
            tokenEndpointAuthMethod: "client_secret_post"
          }
        ],
        projects: [{ id: "prj", keys: [{ environment: "production", secret: KEY }] }],
        links: [{ connector: "acme/api", project: "prj", environments: ["production"] }]
      }
    })
  })
  afterAll(async () => {
    await broker?.close()
    await database?.drop()
    redirecting.close()
    elsewhere.close()
  })

  it("is not followed: the credentials stay with the declared endpoint, and the caller gets an error", async () => {
    const response = await fetch(`${broker.url}/v1/connect/token/acme%2Fapi`, {
      method: "POST",
      headers: { authorization: `Bearer ${KEY}`, "content-type": "application/json" },
      body: JSON.stringify({ subject: { type: "app" } })
    })
    expect(response.status).toBe(502)
    const body = await response.json()
    expect(body.error.code).toBe("provider_error")
    expect(JSON.stringify(body)).not.toContain(SECRET)
    expect(received).toEqual([])
  })
})
