/**
 * How a change made on one replica empties the hot caches of the others.
 *
 * On Postgres, every replica `LISTEN`s on one channel and `NOTIFY`s its
 * changes there. A listener that silently stopped hearing would keep answering
 * stale tokens, so each replica also notifies a heartbeat every
 * {@link BEAT_MS}; the channel is healthy only while the replica heard its own
 * last heartbeat less than {@link STALE_MS} ago. When it hears again after a
 * gap, it forgets everything first: what was sent meanwhile is lost.
 *
 * On SQLite there is one process: a change is forgotten where it is made.
 *
 * @internal
 */
import { randomUUID } from "node:crypto"
import { SqlClient } from "@effect/sql"
import { PgClient } from "@effect/sql-pg"
import { Context, Deferred, Duration, Effect, Exit, Layer, Option, Schedule, Stream } from "effect"

/**
 * What a change makes every replica forget: `all` (connectors, installations,
 * projects, keys, links changed) or `tokens` (tokens were revoked).
 */
export type InvalidationScope = "all" | "tokens"

/** A channel of invalidations between the replicas of one database. */
export interface Invalidation {
  /** Whether changes made elsewhere are known to reach this replica now. */
  readonly healthy: () => boolean
  /** Calls `listener` with each change made on another replica (and with `all` after a gap). */
  readonly subscribe: (listener: (scope: InvalidationScope) => void) => void
  /** Tells the other replicas of a change made here. Never fails: a failure is logged. */
  readonly publish: (scope: InvalidationScope) => Effect.Effect<void>
}

/** The Postgres channel the replicas notify on. */
export const CHANNEL = "connect_hot_cache"

/** How often a replica notifies its heartbeat. */
export const BEAT_MS = 500

/** How long after its last heartbeat heard a replica stops trusting its cache. */
export const STALE_MS = 2_000

/** Deadline of one notification. */
const NOTIFY_TIMEOUT = Duration.seconds(2)

/** How long a change waits to hear itself back before it is answered anyway. */
const ECHO_TIMEOUT = Duration.seconds(1)

/** A channel for one process: nothing to tell anyone. */
const local = (): Invalidation => ({
  healthy: () => true,
  subscribe: () => {},
  publish: () => Effect.void
})

const scopeOf = (text: string | undefined): InvalidationScope | undefined =>
  text === "all" || text === "tokens" ? text : undefined

/** The channel over Postgres `LISTEN/NOTIFY`, with its listener and heartbeat in the scope's fibers. */
const postgres = (pg: PgClient.PgClient) =>
  Effect.gen(function* () {
    const origin = randomUUID()
    const listeners: Array<(scope: InvalidationScope) => void> = []
    const tell = (scope: InvalidationScope) => {
      for (const listener of listeners) listener(scope)
    }
    /** Changes sent by this replica, waiting to come back: by payload. */
    const echoes = new Map<string, () => void>()
    let sent = 0
    let lastBeat = 0
    const healthy = () => Date.now() - lastBeat < STALE_MS
    const hear = (payload: string) => {
      const [from, what] = payload.split("|")
      if (what === "beat") {
        if (from !== origin) return
        // Heard again after a gap: whatever was sent meanwhile is lost, so forget everything.
        if (!healthy()) tell("all")
        lastBeat = Date.now()
        return
      }
      const scope = scopeOf(what)
      if (scope === undefined) return
      if (from !== origin) return tell(scope)
      // Our own change came back: every listener has been sent it by now.
      const heard = echoes.get(payload)
      if (heard !== undefined) heard()
    }
    // `pg_notify` takes its payload as a parameter (NOTIFY itself does not).
    const notify = (what: string) =>
      pg`SELECT pg_notify(${CHANNEL}, ${`${origin}|${what}`})`.pipe(Effect.timeout(NOTIFY_TIMEOUT))
    yield* pg.listen(CHANNEL).pipe(
      Stream.runForEach((payload) => Effect.sync(() => hear(payload))),
      Effect.catchAllCause((cause) => Effect.logWarning("hot cache: the invalidation listener stopped", cause)),
      Effect.repeat(Schedule.spaced(Duration.seconds(1))),
      Effect.forkScoped
    )
    yield* notify("beat").pipe(
      Effect.ignore,
      Effect.repeat(Schedule.spaced(Duration.millis(BEAT_MS))),
      Effect.forkScoped
    )
    // Waits for the change to come back to this replica's own listener (at most ECHO_TIMEOUT): Postgres sends a
    // notification to every listener at once, so by then the other replicas have it too, and the change is
    // answered only once it holds everywhere.
    const publish = (scope: InvalidationScope) => {
      sent += 1
      const what = `${scope}|${sent}`
      const payload = `${origin}|${what}`
      return Effect.gen(function* () {
        const back = yield* Deferred.make<void>()
        echoes.set(payload, () => Deferred.unsafeDone(back, Exit.void))
        yield* notify(what).pipe(Effect.retry(Schedule.recurs(2)))
        if (healthy()) yield* Effect.timeoutOption(Deferred.await(back), ECHO_TIMEOUT)
      }).pipe(
        Effect.ensuring(Effect.sync(() => echoes.delete(payload))),
        Effect.catchAllCause((cause) =>
          Effect.logError(`hot cache: could not tell the other replicas of a change (${scope})`, cause)
        )
      )
    }
    return {
      healthy,
      subscribe: (listener: (scope: InvalidationScope) => void) => {
        listeners.push(listener)
      },
      publish
    } satisfies Invalidation
  })

/**
 * The invalidation channel of the database in context.
 *
 * @internal
 */
export class InvalidationChannel extends Context.Tag("effect-connect/broker/InvalidationChannel")<
  InvalidationChannel,
  Invalidation
>() {
  /** Over `LISTEN/NOTIFY` on Postgres; local on SQLite. */
  static readonly layer: Layer.Layer<InvalidationChannel, never, SqlClient.SqlClient> = Layer.scoped(
    InvalidationChannel,
    Effect.gen(function* () {
      yield* SqlClient.SqlClient
      const pg = yield* Effect.serviceOption(PgClient.PgClient)
      return Option.isSome(pg) ? yield* postgres(pg.value) : local()
    })
  )
}
