// Benchmark: effect-connect against the official @vercel/connect client.
//
// Run with `npm run bench` (builds src/ to dist/ first). Everything runs in one
// process against a local HTTP server that speaks the token endpoint of the
// Connect wire protocol, so both clients are measured in the same run:
//
//   1. cache-hit cost of getToken (warm cache), per call; the Effect API also with
//      an OpenTelemetry tracer (spans batched to an exporter that drops them);
//   2. a hit whose scopes are written in another order (request counts);
//   3. a stampede: 1000 concurrent getToken calls on a cold cache (request counts);
//   4. refresh-ahead: 100,000 calls spread over three lifetimes of a short token,
//      the slowest call with refresh-ahead and without (wall clock).
import { readFileSync } from "node:fs"
import { createServer } from "node:http"
import { availableParallelism, cpus } from "node:os"
import * as NodeSdk from "@effect/opentelemetry/NodeSdk"
import { FetchHttpClient } from "@effect/platform"
import { BatchSpanProcessor } from "@opentelemetry/sdk-trace-base"
import * as Official from "@vercel/connect"
import { Effect, Layer, ManagedRuntime, Redacted } from "effect"
import { Bench } from "tinybench"
import { ConnectClient, getToken as effectGetToken, TokenCache } from "../dist/index.js"
import { getToken as promiseGetToken } from "../dist/promise.js"

/** Calls per tinybench iteration: timer overhead is amortised over the batch. */
const OPS = 1000
/** Concurrent callers in the stampede. */
const STAMPEDE = 1000
/** Simulated server latency of one token request. */
const LATENCY_MS = 20
/** Refresh-ahead: a short-lived token's connector, lifetime, latency and client buffer. */
const SHORT_CONNECTOR = "bench/short-lived"
const SHORT_LIFETIME_MS = 3_000
const SHORT_LATENCY_MS = 30
const SHORT_BUFFER_MS = 500
/** Refresh-ahead: calls spread evenly over three lifetimes. */
const SPREAD_CALLS = 100_000
const SPREAD_MS = 3 * SHORT_LIFETIME_MS
const TIME_MS = 1500
const WARMUP_MS = 300
/** Cache hits again, interleaved: rounds, and batches of `OPS` calls per case in a round. */
const ROUNDS = 30
const ROUND_BATCHES = 5

const CALLER_KEY = "bench-key"
const CONNECTOR = "github/acme"

/** A realistic request: a user subject, three scopes, an installation. */
const params = {
  subject: { type: "user", id: "user_2f8KXw1mQ" },
  scopes: ["repo", "read:org", "workflow"],
  installationId: "inst_48213977"
}
/** The same request with its scopes in another order. */
const reordered = { ...params, scopes: ["workflow", "repo", "read:org"] }

const version = (pkg) =>
  JSON.parse(readFileSync(new URL(`../node_modules/${pkg}/package.json`, import.meta.url))).version

// --- the server -------------------------------------------------------------

let requests = 0
let shortRequests = 0
let issued = 0

const server = createServer((req, res) => {
  const match = /^\/v1\/connect\/token\/([^/?]+)$/.exec(req.url ?? "")
  if (req.method !== "POST" || match === null) {
    res.writeHead(404, { "content-type": "application/json" }).end('{"error":{"code":"not_found"}}')
    return
  }
  requests++
  const connector = decodeURIComponent(match[1])
  const short = connector === SHORT_CONNECTOR
  if (short) shortRequests++
  req.resume()
  req.on("end", () => {
    setTimeout(
      () => {
        issued++
        const body = JSON.stringify({
          token: `tok_${issued}`,
          tokenId: `tid_${issued}`,
          expiresAt: Date.now() + (short ? SHORT_LIFETIME_MS : 3_600_000),
          connector: { id: `conn_${connector.replace(/\W/g, "_")}`, uid: connector, type: "oauth" }
        })
        res.writeHead(200, { "content-type": "application/json", "content-length": Buffer.byteLength(body) }).end(body)
      },
      short ? SHORT_LATENCY_MS : LATENCY_MS
    )
  })
})

// Idle connections stay open for the whole run: the clients pool them, and a
// connection the server closed while idle would fail the next request.
server.keepAliveTimeout = 120_000

const listen = () =>
  new Promise((resolve, reject) => {
    server.once("error", reject)
    // The stampede of the official client opens one connection per call.
    server.listen({ port: 0, host: "127.0.0.1", backlog: 2048 }, () => {
      const address = server.address()
      if (address === null || typeof address === "string") reject(new Error("no TCP address"))
      else resolve(`http://127.0.0.1:${address.port}`)
    })
  })

/** The requests the server received while `action` ran. */
const countRequests = async (action) => {
  const before = requests
  const started = performance.now()
  const value = await action()
  return { requests: requests - before, ms: performance.now() - started, value }
}

/**
 * Starts `SPREAD_CALLS` calls spread evenly over `SPREAD_MS` of wall clock (a
 * batch each millisecond), after one warming call; each call's wait is the
 * time from its start to its answer.
 */
const spreadCalls = async (call) => {
  await call()
  const before = shortRequests
  let slowest = 0
  let waited = 0
  let started = 0
  const pending = []
  const begin = performance.now()
  while (started < SPREAD_CALLS) {
    const due = Math.min(SPREAD_CALLS, Math.ceil(((performance.now() - begin) / SPREAD_MS) * SPREAD_CALLS))
    for (; started < due; started++) {
      const t0 = performance.now()
      pending.push(
        call().then(() => {
          const wait = performance.now() - t0
          slowest = Math.max(slowest, wait)
          if (wait >= SHORT_LATENCY_MS) waited++
        })
      )
    }
    await new Promise((resolve) => setTimeout(resolve, 1))
  }
  await Promise.all(pending)
  return { slowest, waited, requests: shortRequests - before, ms: performance.now() - begin }
}

/** The median of some numbers. */
const median = (values) => {
  const sorted = [...values].sort((a, b) => a - b)
  const middle = Math.floor(sorted.length / 2)
  return sorted.length % 2 === 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2
}

/** The indices 0 … n-1 in a random order. */
const shuffled = (n) => {
  const order = Array.from({ length: n }, (_, i) => i)
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1))
    ;[order[i], order[j]] = [order[j], order[i]]
  }
  return order
}

/**
 * Each case's time over the first case's, as the median over `ROUNDS` rounds
 * that run every case for `ROUND_BATCHES` batches, in a new random order each
 * round (so that no case is always the one after the same other). Tinybench
 * runs its cases one after another, so a change of load on a shared machine
 * moves their ratios; here it falls on every case alike.
 */
const interleaved = async (runs) => {
  const ratios = runs.map(() => [])
  for (let round = 0; round < ROUNDS; round++) {
    const times = new Array(runs.length)
    for (const i of shuffled(runs.length)) {
      const started = performance.now()
      for (let batch = 0; batch < ROUND_BATCHES; batch++) await runs[i]()
      times[i] = performance.now() - started
    }
    for (let i = 0; i < runs.length; i++) ratios[i].push(times[i] / times[0])
  }
  return ratios.map(median)
}

// --- formatting ---------------------------------------------------------------

const fmt = (n, digits = 0) =>
  n.toLocaleString("en-US", { minimumFractionDigits: digits, maximumFractionDigits: digits })

const table = (header, rows) => {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i].length)))
  const line = (cells) =>
    `| ${cells.map((cell, i) => (i === 0 ? cell.padEnd(widths[i]) : cell.padStart(widths[i]))).join(" | ")} |`
  return [
    line(header),
    `|${widths.map((w, i) => (i === 0 ? `:${"-".repeat(w + 1)}` : `${"-".repeat(w + 1)}:`)).join("|")}|`,
    ...rows.map(line)
  ].join("\n")
}

// --- the run --------------------------------------------------------------------

const main = async () => {
  const baseUrl = await listen()

  // The official client always calls https://api.vercel.com (or a regional
  // api-{region}.vercel.com): send that origin to the local server instead.
  const realFetch = globalThis.fetch
  const vercelOrigin = /^https:\/\/api(?:-[a-z0-9-]+)?\.vercel\.com(?=\/)/
  globalThis.fetch = (input, init) =>
    typeof input === "string" && vercelOrigin.test(input)
      ? realFetch(input.replace(vercelOrigin, baseUrl), init)
      : realFetch(input, init)

  const officialOptions = { vercelToken: CALLER_KEY }
  const promiseOptions = { baseUrl, token: CALLER_KEY }
  const runtime = ManagedRuntime.make(
    ConnectClient.layer({ baseUrl, token: Redacted.make(CALLER_KEY) }).pipe(
      Layer.provide(TokenCache.layer()),
      Layer.provide(FetchHttpClient.layer)
    )
  )

  // The same client under an OpenTelemetry tracer: a span per getToken, batched to an exporter that drops them.
  const droppingExporter = { export: (_spans, done) => done({ code: 0 }), shutdown: () => Promise.resolve() }
  const tracedRuntime = ManagedRuntime.make(
    ConnectClient.layer({ baseUrl, token: Redacted.make(CALLER_KEY) }).pipe(
      Layer.provide(TokenCache.layer()),
      Layer.provide(FetchHttpClient.layer),
      Layer.provideMerge(
        NodeSdk.layer(() => ({
          resource: { serviceName: "bench" },
          spanProcessor: new BatchSpanProcessor(droppingExporter)
        }))
      )
    )
  )

  // Warm the caches (one request each), and check what they answer.
  const warm = {
    official: await countRequests(() => Official.getToken(CONNECTOR, params, officialOptions)),
    promise: await countRequests(() => promiseGetToken(CONNECTOR, params, promiseOptions)),
    effect: await countRequests(() =>
      runtime.runPromise(Effect.map(effectGetToken(CONNECTOR, params), Redacted.value))
    ),
    traced: await countRequests(() =>
      tracedRuntime.runPromise(Effect.map(effectGetToken(CONNECTOR, params), Redacted.value))
    )
  }
  for (const [name, warmed] of Object.entries(warm)) {
    if (warmed.requests !== 1 || !String(warmed.value).startsWith("tok_")) {
      throw new Error(`warming the ${name} cache: ${warmed.requests} requests, answer ${warmed.value}`)
    }
  }

  // A hit with the scopes in another order: ours hits, the official misses.
  const reorder = {
    official: await countRequests(() => Official.getToken(CONNECTOR, reordered, officialOptions)),
    promise: await countRequests(() => promiseGetToken(CONNECTOR, reordered, promiseOptions)),
    effect: await countRequests(() =>
      runtime.runPromise(Effect.map(effectGetToken(CONNECTOR, reordered), Redacted.value))
    )
  }

  // --- cache hits ---
  const requestsBeforeHits = requests
  const effectLoop = (p) =>
    Effect.gen(function* () {
      for (let i = 0; i < OPS; i++) yield* effectGetToken(CONNECTOR, p)
    })
  const effectHits = effectLoop(params)
  const effectHitsReordered = effectLoop(reordered)

  // The official client first: the ratios are to it.
  const hitCases = [
    [
      "official getToken (baseline)",
      async () => {
        for (let i = 0; i < OPS; i++) await Official.getToken(CONNECTOR, params, officialOptions)
      }
    ],
    [
      "ours, Promise getToken",
      async () => {
        for (let i = 0; i < OPS; i++) await promiseGetToken(CONNECTOR, params, promiseOptions)
      }
    ],
    ["ours, Effect getToken (N in one program)", () => runtime.runPromise(effectHits)],
    [
      "ours, Promise getToken, scopes reordered",
      async () => {
        for (let i = 0; i < OPS; i++) await promiseGetToken(CONNECTOR, reordered, promiseOptions)
      }
    ],
    ["ours, Effect getToken, scopes reordered", () => runtime.runPromise(effectHitsReordered)],
    // Not interleaved: its spans leave garbage that the case after it would be charged for.
    ["ours, Effect getToken, OpenTelemetry tracer on", () => tracedRuntime.runPromise(effectHits), false]
  ]
  const bench = new Bench({ time: TIME_MS, warmupTime: WARMUP_MS, warmupIterations: 20, iterations: 50 })
  for (const [name, run] of hitCases) bench.add(name, run)
  await bench.warmup()
  await bench.run()
  const interleavedRatios = await interleaved(
    hitCases.filter(([, , interleave]) => interleave !== false).map(([, run]) => run)
  )
  const hitRequests = requests - requestsBeforeHits
  if (hitRequests !== 0) throw new Error(`${hitRequests} requests reached the server during the cache-hit runs`)

  // --- stampede: cold cache, STAMPEDE concurrent callers of one request ---
  const cold = (id) => ({ ...params, subject: { type: "user", id } })
  const stampede = async (run) => {
    const result = await countRequests(run)
    return { ...result, tokens: new Set(result.value).size }
  }
  const officialParams = cold("user_stampede_official")
  const promiseParams = cold("user_stampede_promise")
  const effectParams = cold("user_stampede_effect")
  const stampedes = {
    official: await stampede(() =>
      Promise.all(Array.from({ length: STAMPEDE }, () => Official.getToken(CONNECTOR, officialParams, officialOptions)))
    ),
    promise: await stampede(() =>
      Promise.all(Array.from({ length: STAMPEDE }, () => promiseGetToken(CONNECTOR, promiseParams, promiseOptions)))
    ),
    effect: await stampede(() =>
      runtime.runPromise(
        Effect.all(
          Array.from({ length: STAMPEDE }, () => Effect.map(effectGetToken(CONNECTOR, effectParams), Redacted.value)),
          { concurrency: "unbounded" }
        )
      )
    )
  }

  // --- refresh-ahead: short tokens, calls spread over three lifetimes ---
  const shortClient = (refreshAhead) =>
    ManagedRuntime.make(
      ConnectClient.layer({
        baseUrl,
        token: Redacted.make(CALLER_KEY),
        validityBufferMs: SHORT_BUFFER_MS,
        ...(refreshAhead ? {} : { refreshAhead: false })
      }).pipe(Layer.provide(TokenCache.layer()), Layer.provide(FetchHttpClient.layer))
    )
  const spreads = []
  for (const [name, refreshAhead] of [
    ["ours, Effect getToken, refresh-ahead (default)", true],
    ["ours, Effect getToken, refreshAhead: false", false]
  ]) {
    const client = shortClient(refreshAhead)
    spreads.push([name, await spreadCalls(() => client.runPromise(effectGetToken(SHORT_CONNECTOR, params)))])
    await client.dispose()
  }
  const shortParams = { ...params, validityBufferMs: SHORT_BUFFER_MS }
  spreads.push([
    "ours, Promise getToken, refresh-ahead (default)",
    await spreadCalls(() => promiseGetToken(SHORT_CONNECTOR, shortParams, promiseOptions))
  ])

  await runtime.dispose()
  await tracedRuntime.dispose()
  globalThis.fetch = realFetch
  server.closeAllConnections()
  await new Promise((resolve) => server.close(resolve))

  // --- report ---
  const results = bench.tasks.map((task) => {
    const result = task.result
    if (result === undefined || result.error !== undefined) {
      throw new Error(`task "${task.name}" failed: ${result?.error ?? "no result"}`)
    }
    return { name: task.name, result }
  })
  const baseline = results[0].result.mean
  const nsPerOp = (ms) => (ms * 1e6) / OPS

  console.log("effect-connect benchmark")
  console.log(
    `node ${process.version}, ${availableParallelism()} cores (${cpus()[0]?.model.trim() ?? "unknown CPU"}), ` +
      `${process.platform}/${process.arch}`
  )
  console.log(
    `effect ${version("effect")}, @effect/platform ${version("@effect/platform")}, ` +
      `@vercel/connect ${version("@vercel/connect")}, tinybench ${version("tinybench")}`
  )
  console.log(
    `request: ${CONNECTOR}, user subject, ${params.scopes.length} scopes, installationId; ` +
      `${OPS} sequential calls per iteration, ${TIME_MS} ms per task after ${WARMUP_MS} ms warm-up`
  )
  console.log("")
  console.log("Cache hit (warm cache), per getToken call")
  console.log(
    table(
      ["case", "mean ns/op", "p99 ns/op*", "ops/s", "±rme", "samples", "time vs official", "interleaved**"],
      results.map(({ name, result }, i) => [
        name,
        fmt(nsPerOp(result.mean), 1),
        fmt(nsPerOp(result.p99), 1),
        fmt((OPS * 1000) / result.mean),
        `${fmt(result.rme, 2)}%`,
        fmt(result.samples.length),
        `${fmt(result.mean / baseline, 2)}x`,
        i < interleavedRatios.length ? `${fmt(interleavedRatios[i], 2)}x` : "-"
      ])
    )
  )
  console.log(
    `* p99 of the per-iteration mean (${OPS} calls per iteration). Requests during the hit runs: ${hitRequests}`
  )
  console.log(`** time vs official, median of ${ROUNDS} interleaved rounds of ${ROUND_BATCHES} iterations per case`)
  const meanOf = (name) => results.find((r) => r.name === name)?.result.mean ?? Number.NaN
  console.log(
    `Tracing on vs off (Effect getToken, same run): ${fmt(
      meanOf("ours, Effect getToken, OpenTelemetry tracer on") / meanOf("ours, Effect getToken (N in one program)"),
      2
    )}x`
  )
  console.log("")
  console.log("Scopes in another order than the cached request (first call)")
  console.log(
    table(
      ["client", "server requests"],
      [
        ["official getToken", String(reorder.official.requests)],
        ["ours, Promise getToken", String(reorder.promise.requests)],
        ["ours, Effect getToken", String(reorder.effect.requests)]
      ]
    )
  )
  console.log("")
  console.log(`Stampede: ${STAMPEDE} concurrent getToken calls, cold cache, server latency ${LATENCY_MS} ms`)
  console.log(
    table(
      ["client", "server requests", "distinct tokens", "wall ms"],
      [
        ["official getToken (Promise.all)", stampedes.official],
        ["ours, Promise getToken (Promise.all)", stampedes.promise],
        ["ours, Effect getToken (Effect.all, unbounded)", stampedes.effect]
      ].map(([name, s]) => [name, fmt(s.requests), fmt(s.tokens), fmt(s.ms, 1)])
    )
  )
  console.log("")
  console.log(
    `Refresh-ahead: ${fmt(SPREAD_CALLS)} calls over ${fmt(SPREAD_MS)} ms (three lifetimes of a ` +
      `${fmt(SHORT_LIFETIME_MS)} ms token, buffer ${SHORT_BUFFER_MS} ms), server latency ${SHORT_LATENCY_MS} ms`
  )
  console.log(
    table(
      ["client", "slowest call ms", `calls waiting >= ${SHORT_LATENCY_MS} ms`, "server requests", "wall ms"],
      spreads.map(([name, s]) => [name, fmt(s.slowest, 1), fmt(s.waited), fmt(s.requests), fmt(s.ms, 0)])
    )
  )
}

main().then(
  () => process.exit(0),
  (error) => {
    console.error(error)
    process.exit(1)
  }
)
