import { Deferred, Effect, type Exit, FiberId, type Scope } from "effect"

/**
 * One run per key at a time: callers of a key that is running wait for its
 * result. The run is forked into `scope`, so interrupting a caller (a client
 * that hung up) never interrupts it: a refresh that rotated a provider's
 * refresh token always gets to save the new one.
 */
export const make = (scope: Scope.Scope) => {
  const running = new Map<string, Deferred.Deferred<unknown, unknown>>()
  return <A, E>(key: string, effect: Effect.Effect<A, E>): Effect.Effect<A, E> =>
    Effect.uninterruptibleMask((restore) =>
      Effect.suspend(() => {
        const existing = running.get(key) as Deferred.Deferred<A, E> | undefined
        if (existing !== undefined) return restore(Deferred.await(existing))
        const deferred = Deferred.unsafeMake<A, E>(FiberId.none)
        running.set(key, deferred as Deferred.Deferred<unknown, unknown>)
        const run = effect.pipe(
          Effect.exit,
          Effect.flatMap((exit: Exit.Exit<A, E>) =>
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
