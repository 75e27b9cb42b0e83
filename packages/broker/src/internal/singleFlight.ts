import { Deferred, type Duration, Effect, type Exit, FiberId, type Scope } from "effect"

/**
 * What a shared run is limited by: its hard deadline, and the error it ends
 * with when that passes.
 */
export interface SharedLimit<E> {
  readonly hardLimit: Duration.DurationInput
  readonly onTimeout: () => E
}

/**
 * One run per key at a time: callers of a key that is running wait for its
 * result. The run is forked into `scope`, so a caller that gives up (a client
 * that hung up, or its own deadline) never interrupts it: a refresh that
 * rotated a provider's refresh token always gets to save the new one. The run
 * itself is interruptible, and ends at its own hard deadline (`limit`), so a
 * provider that never answers cannot hold the key for ever.
 */
export const make = (scope: Scope.Scope) => {
  const running = new Map<string, Deferred.Deferred<unknown, unknown>>()
  return <A, E, E2 = E>(key: string, effect: Effect.Effect<A, E>, limit: SharedLimit<E2>): Effect.Effect<A, E | E2> =>
    Effect.uninterruptibleMask((restore) =>
      Effect.suspend(() => {
        const existing = running.get(key) as Deferred.Deferred<A, E | E2> | undefined
        if (existing !== undefined) return restore(Deferred.await(existing))
        const deferred = Deferred.unsafeMake<A, E | E2>(FiberId.none)
        running.set(key, deferred as Deferred.Deferred<unknown, unknown>)
        // The fork inherits this uninterruptible region: the work is made
        // interruptible explicitly (`restore` would restore the caller's
        // region, not this fiber's), so its timeout can stop it.
        const run = Effect.interruptible(
          Effect.timeoutFail(effect, { duration: limit.hardLimit, onTimeout: limit.onTimeout })
        ).pipe(
          Effect.exit,
          Effect.flatMap((exit: Exit.Exit<A, E | E2>) =>
            Effect.suspend(() => {
              running.delete(key)
              return Deferred.done(deferred, exit)
            })
          )
        )
        return Effect.forkIn(run, scope).pipe(Effect.zipRight(restore(Deferred.await(deferred))))
      })
    )
}
