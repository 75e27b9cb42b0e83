/**
 * The broker's scheduler: fibers ready to run take slices, and the event loop
 * gets its turn (its sockets read, here a `setImmediate`) between them.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, FiberRef, Layer, Runtime, Scheduler } from "effect"
import * as Broker from "../src/Broker.js"
import * as SlicedScheduler from "../src/internal/slicedScheduler.js"

/** Keeps the CPU busy for `ms`, as a refresh's synchronous work does. */
const busy = (ms: number) => {
  const until = performance.now() + ms
  while (performance.now() < until) {}
}

/** Runs 20 fibers ready at once, each busy 1 ms; says when the event loop's turn came, in fibers done before it. */
const turnAfter = (scheduler: Scheduler.Scheduler) =>
  Effect.gen(function* () {
    const order: Array<string> = []
    // From a turn of the event loop of its own: a slice counts the time since the last one.
    yield* Effect.promise(() => new Promise((resolve) => setImmediate(resolve)))
    setImmediate(() => order.push("event loop"))
    yield* Effect.forEach(
      Array.from({ length: 20 }, (_, i) => i),
      (i) =>
        Effect.yieldNow().pipe(
          Effect.andThen(() => busy(1)),
          Effect.andThen(() => order.push(`fiber ${i}`))
        ),
      { concurrency: "unbounded", discard: true }
    ).pipe(Effect.withScheduler(scheduler))
    yield* Effect.promise(() => new Promise((resolve) => setImmediate(resolve)))
    return order.indexOf("event loop")
  })

describe("the broker's scheduler", () => {
  it.live("lets the event loop take its turn between slices, where Effect's default runs every ready fiber first", () =>
    Effect.gen(function* () {
      expect(yield* turnAfter(Scheduler.defaultScheduler)).toBe(20)
      const sliced = yield* turnAfter(SlicedScheduler.make(SlicedScheduler.SLICE_MS))
      // A slice of 2 ms holds two or three of them (fewer when the machine is busy).
      expect(sliced).toBeLessThanOrEqual(5)
    })
  )

  it.live("is the scheduler of what a layer built with Broker.scheduled runs later (the server's requests)", () =>
    Effect.gen(function* () {
      let captured: Runtime.Runtime<never> | undefined
      const layer = Layer.effectDiscard(
        Effect.map(Effect.runtime<never>(), (runtime) => {
          captured = runtime
        })
      )
      yield* Effect.scoped(Broker.scheduled(Layer.build(layer)))
      const scheduler = Runtime.runSync(captured as Runtime.Runtime<never>)(FiberRef.get(FiberRef.currentScheduler))
      expect(scheduler).not.toBe(Scheduler.defaultScheduler)
      expect(scheduler).not.toBe(yield* FiberRef.get(FiberRef.currentScheduler))
    })
  )
})
