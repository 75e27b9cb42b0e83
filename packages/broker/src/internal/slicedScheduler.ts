/**
 * The broker's fiber scheduler: Effect's work in slices, with the event loop's
 * I/O in between.
 *
 * Effect's default scheduler runs every fiber that is ready in microtasks, one
 * after another, until none is left: while fifty refreshes save their tokens,
 * no socket is read. The requests the fast path answers from memory in a few
 * microseconds then waited for all of it (a p99 of stored-token requests went
 * from 4 ms to 30 ms and more beside 50 users refreshing, docs/benchmarks.md).
 * Here, fibers ready to run still run at once in microtasks, but once a slice
 * of `sliceMs` is spent the rest waits for `setImmediate`, after the event loop
 * has read its sockets; and a fiber that runs on past the slice yields at its
 * next check, so that one long run of synchronous steps (a refresh's SQLite
 * statements, its decoding and sealing) cannot hold the loop either.
 *
 * @internal
 */
import { FiberRef, Scheduler } from "effect"

/**
 * How long Effect's fibers run before the event loop reads its sockets again.
 * Half a millisecond: beside 50 users refreshing, a stored token's p99 was
 * 10 to 12 ms with it against 16 to 20 ms with 2 ms slices, for about a fifth
 * fewer refreshes a second while the core is saturated (docs/benchmarks.md).
 */
export const SLICE_MS = 0.5

/** A running fiber looks at the clock every this many operations (a power of two: the check is a mask). */
export const YIELD_CHECK_OPS = 32

/** What a scheduler has done, for its tests: drains run, tasks run, and yields asked of running fibers. */
export interface SlicedSchedulerStats {
  readonly drains: number
  readonly tasks: number
  readonly yields: number
}

/** The scheduler, with what it has done (see {@link SlicedSchedulerStats}). */
export interface SlicedScheduler extends Scheduler.Scheduler {
  readonly stats: () => SlicedSchedulerStats
}

/**
 * A scheduler running ready fibers in first-come order, in slices of `sliceMs`
 * between the event loop's turns. One drain at a time is queued or running:
 * tasks scheduled while it runs join its queue instead of starting another.
 */
export const make = (sliceMs: number = SLICE_MS): SlicedScheduler => {
  let tasks: Array<Scheduler.Task | undefined> = []
  let head = 0
  // Whether a drain is queued or running.
  let draining = false
  // When the current slice began: it lasts until the event loop has had its turn, across microtasks.
  let sliceStart: number | undefined
  let drains = 0
  let ran = 0
  let yields = 0
  const endSlice = () => {
    sliceStart = undefined
  }
  const spent = () => sliceStart !== undefined && performance.now() - sliceStart >= sliceMs
  const drain = () => {
    drains += 1
    if (sliceStart === undefined) {
      sliceStart = performance.now()
      setImmediate(endSlice)
    }
    while (head < tasks.length && !spent()) {
      const task = tasks[head] as Scheduler.Task
      tasks[head] = undefined
      head += 1
      ran += 1
      task()
    }
    if (head === tasks.length) {
      tasks = []
      head = 0
      draining = false
      return
    }
    // Forget what ran once it is half the queue: each task is copied a bounded number of times.
    if (head * 2 > tasks.length) {
      tasks = tasks.slice(head)
      head = 0
    }
    // The slice is spent: the rest once the event loop has read its sockets.
    setImmediate(drain)
  }
  const scheduleTask = (task: Scheduler.Task) => {
    tasks.push(task)
    if (draining) return
    draining = true
    queueMicrotask(drain)
  }
  const shouldYield = (fiber: Parameters<Scheduler.Scheduler["shouldYield"]>[0]): number | false => {
    if ((fiber.currentOpCount & (YIELD_CHECK_OPS - 1)) === 0 && spent()) {
      yields += 1
      return fiber.getFiberRef(FiberRef.currentSchedulingPriority)
    }
    return Scheduler.defaultShouldYield(fiber)
  }
  const scheduler = Scheduler.make(scheduleTask, shouldYield)
  return Object.assign(scheduler, { stats: () => ({ drains, tasks: ran, yields }) })
}
