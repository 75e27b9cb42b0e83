// Benchmark: the broker's rate limiter, per process (memory) against shared (Postgres).
//
// Run with `npm run build && node bench/rateLimiter.mjs [postgres URL]` (default: the local test server's `test`
// database). It creates a database of its own there and drops it afterwards. Measured:
//
//   1. the latency of one `take`, one after the other (p50, p99);
//   2. `take`s from 64 callers at once on one key, through one pool of 10 connections (the contention of one
//      busy project on one replica): how many a second, and that exactly the limit passed.
import { SqlClient } from "@effect/sql"
import { PgClient } from "@effect/sql-pg"
import { Effect, Layer, Redacted } from "effect"
import * as Database from "../packages/broker/dist/Database.js"
import * as PgRateLimiter from "../packages/broker/dist/PgRateLimiter.js"
import * as RateLimiter from "../packages/broker/dist/RateLimiter.js"

const SERVER = process.argv[2] ?? "postgres://postgres@127.0.0.1:5432/test"
const SEQUENTIAL = 2_000
const CONCURRENT = 5_000
const CALLERS = 64
const LIMIT = 1_000

const admin = (statement) =>
  Effect.runPromise(
    Effect.flatMap(SqlClient.SqlClient, (sql) => sql.unsafe(statement)).pipe(
      Effect.provide(PgClient.layer({ url: Redacted.make(SERVER), maxConnections: 1 }))
    )
  )

const percentile = (sorted, p) => sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))]

const sequential = (limiter) =>
  Effect.gen(function* () {
    const times = []
    for (let i = 0; i < SEQUENTIAL; i++) {
      const started = performance.now()
      yield* limiter.take(`prj_seq_${i % 50}`)
      times.push(performance.now() - started)
    }
    times.sort((a, b) => a - b)
    return { p50: percentile(times, 0.5).toFixed(3), p99: percentile(times, 0.99).toFixed(3) }
  })

const concurrent = (limiter) =>
  Effect.gen(function* () {
    const started = performance.now()
    const decisions = yield* Effect.forEach(Array.from({ length: CONCURRENT }), () => limiter.take("prj_hot"), {
      concurrency: CALLERS
    })
    const seconds = (performance.now() - started) / 1000
    return {
      perSecond: Math.round(CONCURRENT / seconds),
      allowed: decisions.filter((d) => d.allowed).length,
      seconds: seconds.toFixed(2)
    }
  })

const name = `connect_bench_${process.pid}`
await admin(`CREATE DATABASE ${name}`)
const url = new URL(SERVER)
url.pathname = `/${name}`
try {
  const database = Database.layer({ _tag: "Postgres", url: Redacted.make(url.toString()) })
  const results = await Effect.runPromise(
    Effect.scoped(
      Effect.gen(function* () {
        const memory = yield* RateLimiter.make({ perMinute: LIMIT })
        const shared = yield* PgRateLimiter.make({ perMinute: LIMIT })
        return {
          memory: { sequential: yield* sequential(memory), concurrent: yield* concurrent(memory) },
          postgres: { sequential: yield* sequential(shared), concurrent: yield* concurrent(shared) }
        }
      })
    ).pipe(Effect.provide(Layer.orDie(database)))
  )
  console.log(`take latency in ms over ${SEQUENTIAL} calls; ${CONCURRENT} takes by ${CALLERS} callers on one key,`)
  console.log(`limit ${LIMIT} a minute (so ${LIMIT} + refill should pass):`)
  console.log(JSON.stringify(results, null, 2))
} finally {
  await admin(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`)
}
