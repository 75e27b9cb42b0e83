// Benchmark: the broker's token endpoint under load, against a bare node:http server in the same run.
//
// Run with `npm run bench` (all parts) or `npm run build && node bench/broker.mjs`. It starts, on 127.0.0.1:
//   - a bare `node:http` server answering the broker's JSON body for a stored token (the ceiling);
//   - a minimal OAuth token endpoint (client credentials, and refresh with a configurable delay);
//   - the built broker (`packages/broker/dist/main.js`) as its own process, on SQLite (a file) and, when
//     CONNECT_TEST_DATABASE_URL or the local server answers, on Postgres;
// and loads each with autocannon: 10 connections, rate limit off, a stored app token. Then it measures the p99
// of stored-token requests while 50 users' refreshes are under way against the same without them.
//
// Settings: BENCH_BROKER_SECONDS (default 20; the figures in docs/benchmarks.md use 60), BENCH_BROKER_CONNECTIONS
// (10), BENCH_BROKER_WARMUP_SECONDS (15), BENCH_BROKER_POSTGRES=0 to skip Postgres, BENCH_BROKER_REFRESHES=0 to skip
// the refresh case, BENCH_BROKER_REFRESH_DELAY_MS (500: how long the provider holds each refresh).
import { spawn } from "node:child_process"
import { randomBytes } from "node:crypto"
import { mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { createServer } from "node:http"
import { tmpdir } from "node:os"
import { join } from "node:path"
import autocannon from "autocannon"
import pg from "pg"

const SECONDS = Number(process.env.BENCH_BROKER_SECONDS ?? 20)
const CONNECTIONS = Number(process.env.BENCH_BROKER_CONNECTIONS ?? 10)
/** Load before the measured one: long enough for the heap to settle (RSS is measured from its end). */
const WARMUP_SECONDS = Number(process.env.BENCH_BROKER_WARMUP_SECONDS ?? 15)
/** How often the broker's RSS is read during a load. */
const RSS_SAMPLE_MS = 5_000
const KEY = "ck_bench_0123456789abcdef"
const PROJECT = "prj_bench"
const CONNECTOR = "bench/api"
/** Users refreshing at once in the refresh case, and how long the provider takes for each refresh. */
const REFRESHES = 50
const REFRESH_DELAY_MS = Number(process.env.BENCH_BROKER_REFRESH_DELAY_MS ?? 500)
/** The steady stored-token rate of the refresh case, as a share of what the broker answered alone in a closed loop. */
const PACED_SHARE = 0.25
const MAIN = new URL("../packages/broker/dist/main.js", import.meta.url).pathname
/** One encryption key for every broker of the run: replicas read what the others sealed. */
const ENCRYPTION_KEY = randomBytes(32).toString("base64")

// --- servers ------------------------------------------------------------------

const listen = (server) =>
  new Promise((resolve) => server.listen(0, "127.0.0.1", () => resolve(`http://127.0.0.1:${server.address().port}`)))

const readBody = (request) =>
  new Promise((resolve) => {
    let body = ""
    request.on("data", (chunk) => {
      body += chunk
    })
    request.on("end", () => resolve(body))
  })

/**
 * The provider: client credentials answer at once; refreshes after REFRESH_DELAY_MS, rotating the refresh token.
 * `refreshes()` says how many refreshes it answered, and the mean number under way over the samples taken since.
 */
const startProvider = async () => {
  let issued = 0
  let answeredRefreshes = 0
  let underWay = 0
  const samples = []
  const sampler = setInterval(() => samples.push(underWay), 50)
  const server = createServer(async (request, response) => {
    const form = new URLSearchParams(await readBody(request))
    const grant = form.get("grant_type")
    const answer = (body) => {
      response.writeHead(200, { "content-type": "application/json" })
      response.end(JSON.stringify(body))
    }
    issued += 1
    const token = `at_${issued}_${randomBytes(8).toString("hex")}`
    if (grant === "client_credentials") return answer({ access_token: token, token_type: "Bearer", expires_in: 3600 })
    if (grant === "refresh_token") {
      underWay += 1
      // A refreshed token's life (counted from when the broker asked) ends as it arrives: it is handed to the request
      // that asked for it, and the user's next request refreshes again, so that every user always has one under way.
      setTimeout(() => {
        underWay -= 1
        answeredRefreshes += 1
        answer({
          access_token: token,
          token_type: "Bearer",
          expires_in: REFRESH_DELAY_MS / 1000,
          refresh_token: `rt_${issued}_${randomBytes(8).toString("hex")}`
        })
      }, REFRESH_DELAY_MS)
      return
    }
    response.writeHead(400, { "content-type": "application/json" })
    response.end(JSON.stringify({ error: "unsupported_grant_type" }))
  })
  const refreshes = () => {
    const taken = samples.splice(0)
    const mean = taken.length === 0 ? 0 : taken.reduce((a, b) => a + b, 0) / taken.length
    return { answered: answeredRefreshes, meanUnderWay: mean }
  }
  const close = () => {
    clearInterval(sampler)
    server.close()
  }
  return { url: await listen(server), close, refreshes }
}

/** A bare node:http server answering a body of the broker's shape and size. */
const startBare = async (body) => {
  const server = createServer(async (request, response) => {
    await readBody(request)
    response.writeHead(200, { "content-type": "application/json", "content-length": Buffer.byteLength(body) })
    response.end(body)
  })
  return { url: await listen(server), close: () => server.close() }
}

const freePort = async () => {
  const server = createServer()
  const url = await listen(server)
  await new Promise((done) => server.close(done))
  return Number(new URL(url).port)
}

// --- the broker ---------------------------------------------------------------

const config = (provider) => ({
  connectors: [
    {
      uid: CONNECTOR,
      name: CONNECTOR,
      type: "oauth",
      clientId: "bench",
      clientSecret: "bench-secret",
      tokenEndpoint: `${provider.url}/token`,
      defaultScopes: { app: ["api:read"], user: ["api:read"] }
    }
  ],
  projects: [{ id: PROJECT, keys: [{ environment: "production", secret: KEY }] }],
  links: [{ connector: CONNECTOR, project: PROJECT, environments: ["production"] }]
})

const startBroker = async (provider, databaseUrl) => {
  const directory = mkdtempSync(join(tmpdir(), "connect-bench-"))
  writeFileSync(join(directory, "connect.json"), JSON.stringify(config(provider)))
  const port = await freePort()
  const url = `http://127.0.0.1:${port}`
  // BENCH_BROKER_CPU_PROF=<dir> writes a V8 CPU profile of each broker there, when it stops; BENCH_BROKER_NODE_FLAGS
  // adds Node options (`--import` of a probe, `--trace-gc`, …), separated by spaces.
  const profile = process.env.BENCH_BROKER_CPU_PROF
  const flags = [
    ...(profile ? ["--cpu-prof", `--cpu-prof-dir=${profile}`] : []),
    ...(process.env.BENCH_BROKER_NODE_FLAGS ?? "").split(" ").filter(Boolean)
  ]
  const child = spawn(process.execPath, [...flags, MAIN], {
    cwd: directory,
    env: {
      PATH: process.env.PATH,
      CONNECT_HOST: "127.0.0.1",
      CONNECT_PORT: String(port),
      CONNECT_PUBLIC_URL: url,
      CONNECT_CONFIG: join(directory, "connect.json"),
      CONNECT_DATA_DIR: directory,
      CONNECT_DATABASE_URL: databaseUrl ?? join(directory, "connect.db"),
      CONNECT_RATE_LIMIT_PER_MINUTE: "off",
      CONNECT_ENCRYPTION_KEY: ENCRYPTION_KEY,
      CONNECT_ADMIN_TOKEN: "bench-admin-token",
      CONNECT_LOG_LEVEL: "warn"
    },
    stdio: ["ignore", "ignore", "inherit"]
  })
  for (let i = 0; i < 200; i++) {
    const ok = await fetch(`${url}/healthz`).then(
      (r) => r.status === 200,
      () => false
    )
    if (ok) break
    await new Promise((done) => setTimeout(done, 100))
  }
  const stop = async () => {
    const exited = new Promise((done) => child.once("exit", done))
    child.kill("SIGTERM")
    await exited
    rmSync(directory, { recursive: true, force: true })
  }
  return { url, pid: child.pid, stop }
}

/** The resident set size of a process, in MB, from /proc (Linux). */
const rssMb = async (pid) => {
  const { readFileSync } = await import("node:fs")
  const status = readFileSync(`/proc/${pid}/status`, "utf8")
  const kb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0)
  return Math.round(kb / 1024)
}

// --- load ---------------------------------------------------------------------

const tokenRequest = (url, subject = { type: "app" }) => ({
  url: `${url}/v1/connect/token/${encodeURIComponent(CONNECTOR)}`,
  method: "POST",
  headers: { authorization: `Bearer ${KEY}`, "content-type": "application/json" },
  body: JSON.stringify({ subject })
})

/** A closed loop (each connection sends again once answered), or `rate` requests a second over all connections. */
const load = (request, seconds, rate) =>
  new Promise((resolve, reject) => {
    const paced = rate === undefined ? {} : { overallRate: rate }
    autocannon({ ...request, connections: CONNECTIONS, duration: seconds, ...paced }, (error, result) =>
      error ? reject(error) : resolve(result)
    )
  })

const summary = (result) => ({
  rps: Math.round(result.requests.average),
  p50: result.latency.p50,
  p99: result.latency.p99,
  non2xx: result.non2xx,
  errors: result.errors
})

/** Warm up, then load for SECONDS, reading the RSS at the start, every RSS_SAMPLE_MS, and at the end. */
const measureBroker = async (broker) => {
  await load(tokenRequest(broker.url), WARMUP_SECONDS)
  const before = await rssMb(broker.pid)
  const samples = [before]
  const sampler = setInterval(async () => samples.push(await rssMb(broker.pid)), RSS_SAMPLE_MS)
  const result = summary(await load(tokenRequest(broker.url), SECONDS))
  clearInterval(sampler)
  const after = await rssMb(broker.pid)
  samples.push(after)
  return { ...result, rssBefore: before, rssAfter: after, rssMin: Math.min(...samples), rssMax: Math.max(...samples) }
}

const postgresUrl = async () => {
  if (process.env.BENCH_BROKER_POSTGRES === "0") return undefined
  const url = process.env.CONNECT_TEST_DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/test"
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 2000 })
  try {
    await client.connect()
    const schema = `bench_${randomBytes(4).toString("hex")}`
    await client.query(`CREATE DATABASE ${schema}`)
    const parsed = new URL(url)
    parsed.pathname = `/${schema}`
    return {
      url: parsed.toString(),
      drop: async () => {
        const admin = new pg.Client({ connectionString: url })
        await admin.connect()
        await admin.query(`DROP DATABASE IF EXISTS ${schema} WITH (FORCE)`)
        await admin.end()
      }
    }
  } catch {
    return undefined
  } finally {
    await client.end().catch(() => {})
  }
}

/** Imports `count` users whose access tokens have expired: each one's next token request refreshes. */
const importExpiredUsers = async (broker, prefix, count) => {
  const tokens = Array.from({ length: count }, (_, i) => ({
    accessToken: "expired",
    expiresAt: 1,
    refreshToken: `rt_${prefix}_${i}`,
    subject: { type: "user", id: `${prefix}-${i}` },
    environment: "production"
  }))
  const request = tokenRequest(broker.url)
  const response = await fetch(`${request.url}/import`, { ...request, body: JSON.stringify({ tokens }) })
  if (response.status !== 200) throw new Error(`import answered ${response.status}: ${await response.text()}`)
}

/**
 * The p99 of stored-token requests with REFRESHES users' refreshes under way (each held REFRESH_DELAY_MS by the
 * provider, and asked again as soon as it is answered), against the same load alone: as fast as the broker answers
 * (a closed loop, which slows with any other work), and at a steady PACED_SHARE of that rate, as a busy broker that
 * is not saturated sees it. The provider counts the refreshes and how many were under way.
 */
const measureRefreshes = async (broker, provider) => {
  await load(tokenRequest(broker.url), WARMUP_SECONDS)
  const alone = summary(await load(tokenRequest(broker.url), SECONDS))
  const rate = Math.round(alone.rps * PACED_SHARE)
  const pacedAlone = summary(await load(tokenRequest(broker.url), SECONDS, rate))
  await importExpiredUsers(broker, "bench", REFRESHES)
  // The users ask from a process of their own, so that the load generator here measures only the broker.
  const users = spawn(process.execPath, ["--input-type=module", "-e", USERS_SCRIPT], {
    env: { ...process.env, BENCH_URL: tokenRequest(broker.url).url, BENCH_KEY: KEY, BENCH_USERS: String(REFRESHES) },
    stdio: ["ignore", "inherit", "inherit"]
  })
  // Let every user's first refresh get under way.
  await new Promise((done) => setTimeout(done, REFRESH_DELAY_MS / 2))
  const before = provider.refreshes().answered
  const during = summary(await load(tokenRequest(broker.url), SECONDS))
  const pacedDuring = summary(await load(tokenRequest(broker.url), SECONDS, rate))
  const { answered, meanUnderWay } = provider.refreshes()
  const exited = new Promise((done) => users.once("exit", done))
  users.kill("SIGTERM")
  await exited
  const refreshes = { answered: answered - before, meanUnderWay: meanUnderWay.toFixed(1), seconds: 2 * SECONDS }
  return { alone, during, rate, pacedAlone, pacedDuring, refreshes }
}

/** The users of the refresh case: each asks for its token again as soon as it has one. */
const USERS_SCRIPT = `
process.on("SIGTERM", () => process.exit(0))
const user = async (i) => {
  for (;;) {
    const response = await fetch(process.env.BENCH_URL, {
      method: "POST",
      headers: { authorization: "Bearer " + process.env.BENCH_KEY, "content-type": "application/json" },
      body: JSON.stringify({ subject: { type: "user", id: "bench-" + i } })
    })
    await response.text()
  }
}
for (let i = 0; i < Number(process.env.BENCH_USERS); i++) user(i)
`

/**
 * How long after a revocation answered by replica A the first request to replica B stops getting the revoked
 * token, over `rounds` revocations.
 */
const measurePropagation = async (a, b, rounds) => {
  const delays = []
  for (let round = 0; round < rounds; round++) {
    const request = tokenRequest(b.url)
    const token = async () => JSON.parse(await (await fetch(request.url, request)).text()).token
    const revoked = await token()
    await token()
    const revoke = await fetch(`${a.url}/v1/connect/connectors/${encodeURIComponent(CONNECTOR)}/tokens`, {
      method: "DELETE",
      headers: request.headers,
      body: JSON.stringify({ subject: { type: "app" } })
    })
    if (revoke.status !== 200) throw new Error(`revocation answered ${revoke.status}`)
    const answered = performance.now()
    let seen = 0
    while ((await token()) === revoked) seen += 1
    delays.push({ ms: performance.now() - answered, stale: seen })
  }
  return delays
}

export const main = async () => {
  const provider = await startProvider()
  const sqlite = await startBroker(provider)
  const sample = await fetch(tokenRequest(sqlite.url).url, tokenRequest(sqlite.url)).then((r) => r.text())
  const bare = await startBare(sample)
  console.log(`broker token endpoint: ${CONNECTIONS} connections, ${SECONDS} s each after ${WARMUP_SECONDS} s warm-up`)
  await load({ ...tokenRequest(bare.url) }, WARMUP_SECONDS)
  const bareResult = summary(await load(tokenRequest(bare.url), SECONDS))
  const sqliteResult = await measureBroker(sqlite)
  await sqlite.stop()
  const rows = [
    ["bare node:http", bareResult],
    ["broker, SQLite", sqliteResult]
  ]
  const database = await postgresUrl()
  let propagation
  if (database) {
    const broker = await startBroker(provider, database.url)
    rows.push(["broker, Postgres", await measureBroker(broker)])
    const replica = await startBroker(provider, database.url)
    propagation = await measurePropagation(broker, replica, 20)
    await Promise.all([broker.stop(), replica.stop()])
    await database.drop()
  }
  for (const [name, r] of rows) {
    const ratio = ((r.rps / bareResult.rps) * 100).toFixed(1)
    const rss =
      r.rssBefore === undefined ? "" : `, RSS ${r.rssBefore} → ${r.rssAfter} MB (${r.rssMin}–${r.rssMax} MB during)`
    console.log(
      `  ${name.padEnd(18)} ${String(r.rps).padStart(6)} req/s (${ratio} % of bare), p50 ${r.p50} ms, p99 ${r.p99} ms` +
        `, non-2xx ${r.non2xx}, errors ${r.errors}${rss}`
    )
  }
  if (propagation) {
    const stale = propagation.filter((p) => p.stale > 0).length
    const ms = propagation.map((p) => p.ms).sort((x, y) => x - y)
    console.log(
      `  revocation on replica A, then requests to replica B: ${stale} of ${propagation.length} rounds saw the` +
        ` revoked token after A answered; B's first fresh answer after ${ms[Math.floor(ms.length / 2)]?.toFixed(1)} ms (median)`
    )
  }
  if (process.env.BENCH_BROKER_REFRESHES !== "0") await refreshCase(provider)
  provider.close()
  bare.close()
}

/** The refresh case on SQLite and on Postgres (`node bench/broker.mjs refresh` runs it alone). */
const refreshCase = async (provider) => {
  const refreshDatabase = await postgresUrl()
  console.log(`stored-token requests with ${REFRESHES} users refreshing, ${SECONDS} s each`)
  for (const [name, url] of [
    ["SQLite", undefined],
    ["Postgres", refreshDatabase?.url]
  ]) {
    if (name === "Postgres" && url === undefined) continue
    const refreshBroker = await startBroker(provider, url)
    const r = await measureRefreshes(refreshBroker, provider)
    await refreshBroker.stop()
    console.log(
      `  ${name}, closed loop: p99 alone ${r.alone.p99} ms (${r.alone.rps} req/s); with the users ${r.during.p99} ms` +
        ` (${r.during.rps} req/s); ${r.refreshes.answered} refreshes in ${r.refreshes.seconds} s,` +
        ` ${r.refreshes.meanUnderWay} under way on average`
    )
    console.log(
      `  ${name}, ${r.rate} req/s: p99 alone ${r.pacedAlone.p99} ms, p50 ${r.pacedAlone.p50} ms; with the users` +
        ` ${r.pacedDuring.p99} ms, p50 ${r.pacedDuring.p50} ms (${r.pacedDuring.rps} req/s answered)`
    )
  }
  await refreshDatabase?.drop()
}

/**
 * `node bench/broker.mjs serve`: the provider and a broker on SQLite, left running, for profiling by hand, until
 * SIGINT or SIGTERM stops both (the broker is a process of its own: it would outlive the bench otherwise).
 */
const serveOnly = async () => {
  const provider = await startProvider()
  const broker = await startBroker(provider)
  console.log(`${broker.url} ${broker.pid}`)
  const stop = async () => {
    await broker.stop()
    provider.close()
  }
  process.once("SIGINT", stop)
  process.once("SIGTERM", stop)
}

const refreshOnly = async () => {
  const provider = await startProvider()
  await refreshCase(provider)
  provider.close()
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const mode = process.argv[2]
  await (mode === "serve" ? serveOnly() : mode === "refresh" ? refreshOnly() : main())
}
