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

describe("the broker's scheduler under load", () => {
  it.live("keeps one drain going, however many fibers become ready while it runs", () =>
    Effect.gen(function* () {
      const scheduler = SlicedScheduler.make(SlicedScheduler.SLICE_MS)
      let turns = 0
      let counting = true
      const count = () => {
        turns += 1
        if (counting) setImmediate(count)
      }
      setImmediate(count)
      // 40 fibers yielding 25 times each, busy 0.1 ms between: each yield schedules a task while a drain runs.
      yield* Effect.forEach(
        Array.from({ length: 40 }, (_, i) => i),
        () =>
          Effect.forEach(
            Array.from({ length: 25 }),
            () =>
              Effect.zipRight(
                Effect.yieldNow(),
                Effect.sync(() => busy(0.1))
              ),
            {
              discard: true
            }
          ),
        { concurrency: "unbounded", discard: true }
      ).pipe(Effect.withScheduler(scheduler))
      counting = false
      const { drains, tasks } = scheduler.stats()
      expect(tasks).toBeGreaterThanOrEqual(1000)
      // A drain per turn of the event loop, and one more each time the queue filled again in a turn.
      expect(drains).toBeLessThanOrEqual(2 * turns + 2)
    })
  )

  it.live("makes a fiber that runs past its slice yield to the event loop", () =>
    Effect.gen(function* () {
      const scheduler = SlicedScheduler.make(SlicedScheduler.SLICE_MS)
      yield* Effect.promise(() => new Promise((resolve) => setImmediate(resolve)))
      let steps = 0
      let stepsAtTurn: number | undefined
      setImmediate(() => {
        stepsAtTurn = steps
      })
      // 400 synchronous steps of 0.05 ms (20 ms in all), too few operations for Effect's own yield; the first
      // yield puts the fiber in the scheduler's drain, as the server's fibers start.
      const steps400 = Effect.forEach(
        Array.from({ length: 400 }),
        () => Effect.sync(() => busy(0.05)).pipe(Effect.tap(() => steps++)),
        { discard: true }
      )
      yield* Effect.zipRight(Effect.yieldNow(), steps400).pipe(Effect.withScheduler(scheduler))
      expect(stepsAtTurn).toBeDefined()
      expect(stepsAtTurn).toBeLessThan(200)
      expect(scheduler.stats().yields).toBeGreaterThan(0)
    })
  )
})
