import { describe, expect, it } from "@effect/vitest"
import { Deferred, Duration, Effect, Fiber, Ref, TestClock } from "effect"
import * as SingleFlight from "../src/internal/singleFlight.js"

const limit = { hardLimit: Duration.seconds(10), onTimeout: () => "hard limit" as const }

describe("singleFlight", () => {
  it.scoped("the shared run ends at its own hard limit, and its callers with it", () =>
    Effect.gen(function* () {
      const singleFlight = SingleFlight.make(yield* Effect.scope)
      const first = yield* Effect.fork(Effect.either(singleFlight("k", Effect.never, limit)))
      yield* TestClock.adjust("1 second")
      const second = yield* Effect.fork(Effect.either(singleFlight("k", Effect.never, limit)))
      yield* TestClock.adjust("9 seconds")
      const answers = [yield* Fiber.join(first), yield* Fiber.join(second)]
      expect(answers.map((answer) => answer._tag === "Left" && answer.left)).toEqual(["hard limit", "hard limit"])
      // The key is free again: a new run starts.
      expect(yield* singleFlight("k", Effect.succeed(1), limit)).toBe(1)
    })
  )

  it.scoped("a caller that gives up does not stop the shared run for the others", () =>
    Effect.gen(function* () {
      const singleFlight = SingleFlight.make(yield* Effect.scope)
      const started = yield* Deferred.make<void>()
      const gate = yield* Deferred.make<void>()
      const runs = yield* Ref.make(0)
      const work = Effect.zipRight(
        Effect.zipRight(
          Ref.update(runs, (n) => n + 1),
          Deferred.succeed(started, undefined)
        ),
        Effect.as(Deferred.await(gate), "done")
      )
      const first = yield* Effect.fork(singleFlight("k", work, limit))
      yield* Deferred.await(started)
      const second = yield* Effect.fork(singleFlight("k", work, limit))
      // The first caller hangs up (its own deadline, or its client gone).
      yield* Fiber.interrupt(first)
      yield* Deferred.succeed(gate, undefined)
      expect(yield* Fiber.join(second)).toBe("done")
      expect(yield* Ref.get(runs)).toBe(1)
    })
  )
})
