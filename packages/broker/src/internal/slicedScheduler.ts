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
 * has read its sockets.
 *
 * @internal
 */
import { Scheduler } from "effect"

/** How long Effect's fibers run before the event loop reads its sockets again. */
export const SLICE_MS = 2

/** A scheduler running ready fibers in first-come order, in slices of `sliceMs` between the event loop's turns. */
export const make = (sliceMs: number = SLICE_MS): Scheduler.Scheduler => {
  let tasks: Array<Scheduler.Task> = []
  let next = 0
  let pending = false
  // When the current slice began: it lasts until the event loop has had its turn, across microtasks.
  let sliceStart: number | undefined
  const endSlice = () => {
    sliceStart = undefined
  }
  const drain = () => {
    pending = false
    if (sliceStart === undefined) {
      sliceStart = performance.now()
      setImmediate(endSlice)
    }
    while (next < tasks.length && performance.now() - sliceStart < sliceMs) {
      const task = tasks[next] as Scheduler.Task
      next += 1
      task()
    }
    tasks = tasks.slice(next)
    next = 0
    if (tasks.length === 0) return
    // The slice is spent: the rest once the event loop has read its sockets.
    pending = true
    setImmediate(drain)
  }
  return Scheduler.make((task) => {
    tasks.push(task)
    if (pending) return
    pending = true
    queueMicrotask(drain)
  })
}
