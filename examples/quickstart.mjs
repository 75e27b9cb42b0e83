// `npm start`: the SDK at work against a Connect-protocol server on 127.0.0.1, in this process.
// The server here is a small stand-in that answers the wire protocol from memory; the self-hostable
// broker replaces it once it lands.
import { createServer } from "node:http"
import { FetchHttpClient } from "@effect/platform"
import { Console, Effect, Layer, Redacted } from "effect"
import {
  ConnectClient,
  ConnectorNotFound,
  getToken,
  getTokenResponse,
  revokeToken,
  startAuthorization,
  TokenCache,
  toWire,
  UserAuthorizationRequired
} from "../dist/index.js"

const CALLER_KEY = "ck_quickstart_demo_key"

/** A Connect-protocol server: one app connector, one user connector, grants in memory. */
const startServer = () => {
  const authorized = new Set()
  let issued = 0
  const counts = { token: 0 }
  const server = createServer((req, res) => {
    let text = ""
    req.on("data", (chunk) => {
      text += chunk
    })
    req.on("end", () => {
      const url = new URL(req.url ?? "/", "http://127.0.0.1")
      const send = (status, body) => {
        res.writeHead(status, { "content-type": "application/json" })
        res.end(JSON.stringify(body))
      }
      const fail = (error) => {
        const wire = toWire(error)
        res.writeHead(wire.status, { "content-type": "application/json", ...wire.headers })
        res.end(JSON.stringify(wire.body))
      }
      // The user's browser lands here: the stand-in of a provider's consent page.
      if (req.method === "GET" && url.pathname.startsWith("/consent/")) {
        authorized.add(decodeURIComponent(url.pathname.slice("/consent/".length)))
        res.writeHead(200, { "content-type": "text/plain" })
        return res.end("Connected. You can close this window.")
      }
      if (req.headers.authorization !== `Bearer ${CALLER_KEY}`) {
        return send(401, { error: { code: "unauthorized", message: "unknown caller key" } })
      }
      const body = text === "" ? {} : JSON.parse(text)
      const match = /^\/v1\/connect\/(token|authorize|connectors)\/([^/]+)(\/tokens)?$/.exec(url.pathname)
      const connector = match === null ? "" : decodeURIComponent(match[2])
      if (!["acme/api", "slack/acme"].includes(connector)) return fail(new ConnectorNotFound({ connector }))
      const ref = { id: `conn_${connector.replace("/", "_")}`, uid: connector, type: "oauth" }
      if (match[1] === "token") {
        counts.token++
        const subject = body.subject
        if (subject.type === "user" && !authorized.has(subject.id)) {
          const authorizeUrl = `http://127.0.0.1:${server.address().port}/consent/${encodeURIComponent(subject.id)}`
          return fail(new UserAuthorizationRequired({ connector, authorizeUrl }))
        }
        issued++
        return send(200, {
          token: `${connector.split("/")[0]}-token-${issued}-${Math.random().toString(36).slice(2, 14)}`,
          tokenId: `stk_${issued}`,
          expiresAt: Date.now() + 3_600_000,
          connector: ref
        })
      }
      if (match[1] === "authorize") {
        const consent = `http://127.0.0.1:${server.address().port}/consent/${encodeURIComponent(body.subject.id)}`
        return send(200, {
          request: `req_${issued}`,
          verifier: "ver_demo",
          url: consent,
          connector: { ...ref, name: connector }
        })
      }
      if (req.method === "DELETE") {
        const found = body.subject?.type === "user" && authorized.delete(body.subject.id) ? 1 : 0
        return send(200, {
          tokensFound: found,
          deleted: found,
          providerRevoked: found,
          providerSkipped: 0,
          providerFailed: 0
        })
      }
      return send(404, { error: { code: "not_found", message: "no such route" } })
    })
  })
  return new Promise((resolve) =>
    server.listen(0, "127.0.0.1", () => resolve({ server, counts, url: `http://127.0.0.1:${server.address().port}` }))
  )
}

const short = (token) => `${Redacted.value(token).slice(0, 10)}…`
const ms = (start) => `${(performance.now() - start).toFixed(2)} ms`
const step = (title) => Console.log(`\n== ${title}`)

const { server, counts, url } = await startServer()
const clientLayer = ConnectClient.layer({ baseUrl: url, token: Redacted.make(CALLER_KEY) }).pipe(
  Layer.provideMerge(Layer.merge(TokenCache.layer(), FetchHttpClient.layer))
)

const program = Effect.gen(function* () {
  yield* Console.log(`A Connect server is listening on ${url}; the SDK talks to it with a caller key.`)

  yield* step("1. An app token, then the same token from the cache")
  let start = performance.now()
  const first = yield* getTokenResponse("acme/api", {
    subject: { type: "app" },
    scopes: ["api:read"],
    resources: ["https://api.acme.test"]
  })
  yield* Console.log(`first call:  ${short(first.token)} (${first.tokenId}) in ${ms(start)}, asked the server`)
  start = performance.now()
  const second = yield* getTokenResponse("acme/api", {
    subject: { type: "app" },
    resources: ["https://api.acme.test"],
    scopes: ["api:read"]
  })
  yield* Console.log(`second call: ${short(second.token)} (${second.tokenId}) in ${ms(start)}, from the cache`)
  if (second.tokenId !== first.tokenId || counts.token !== 1)
    return yield* Effect.fail("the second call was not a cache hit")

  yield* step("2. A stampede: 500 callers want a token nobody has yet")
  const before = counts.token
  yield* Effect.all(
    Array.from({ length: 500 }, () => getToken("acme/api", { subject: { type: "app" }, scopes: ["api:write"] })),
    { concurrency: "unbounded" }
  )
  yield* Console.log(`500 callers, ${counts.token - before} request to the server`)
  if (counts.token - before !== 1) return yield* Effect.fail("the stampede was not shared")

  yield* step("3. A user token, before and after the user connects their account")
  const user = { type: "user", id: "u_ada" }
  const needed = yield* Effect.flip(getToken("slack/acme", { subject: user }))
  yield* Console.log(`${needed._tag}: ${needed.message}`)
  if (!(needed instanceof UserAuthorizationRequired)) return yield* Effect.fail(needed)
  const started = yield* startAuthorization(
    "slack/acme",
    { subject: user },
    { callbackUrl: "http://localhost:3000/done" }
  )
  yield* Console.log(`startAuthorization gave a URL to send the user to: ${started.url}`)
  const consent = yield* Effect.promise(() => fetch(started.url).then((r) => r.text()))
  yield* Console.log(`the user opened it and consented ("${consent}")`)
  const userToken = yield* getTokenResponse("slack/acme", { subject: user })
  yield* Console.log(`now: ${short(userToken.token)} (${userToken.tokenId})`)

  yield* step("4. Revoking the user's tokens")
  const summary = yield* revokeToken("slack/acme", { subject: user })
  yield* Console.log(`summary: ${JSON.stringify(summary)}`)
  const after = yield* Effect.flip(getToken("slack/acme", { subject: user }))
  yield* Console.log(`the cache dropped the token; the next call asks the server again: ${after._tag}`)

  yield* step("5. Failures a caller meets, each a tagged error with what to do")
  const notFound = yield* Effect.flip(getToken("acme/nope", { subject: { type: "app" } }))
  yield* Console.log(`${notFound._tag}: ${notFound.message}`)
  const invalid = yield* Effect.flip(getToken("acme/api", { subject: { type: "user", id: "" } }))
  yield* Console.log(`${invalid._tag}: ${invalid.message} (no request was sent)`)
  const wrongKey = yield* Effect.flip(
    getToken("acme/api", { subject: { type: "app" } }).pipe(
      Effect.provide(
        ConnectClient.layer({ baseUrl: url, token: Redacted.make("ck_wrong") }).pipe(
          Layer.provide(Layer.merge(TokenCache.layer(), FetchHttpClient.layer))
        )
      )
    )
  )
  yield* Console.log(`${wrongKey._tag}: ${wrongKey.message}`)
  yield* Console.log("\nEvery step behaved as described.")
})

const exit = await Effect.runPromiseExit(program.pipe(Effect.provide(clientLayer)))
server.close()
if (exit._tag === "Failure") {
  console.error("The walkthrough failed:", exit.cause.toString())
  process.exit(1)
}
