/**
 * The in-process signal that new deliveries were written: the events'
 * writer raises it after a batch's transaction commits, the dispatcher waits
 * on it between rounds (and polls, for what other replicas wrote).
 *
 * @internal
 */
import { Context, Effect, Layer, Queue } from "effect"

/** Raises and awaits the signal. */
export interface WebhookSignalService {
  /** Says new deliveries may be due; never waits. */
  readonly raise: Effect.Effect<void>
  /** Waits until the signal is raised (at once if it was since the last wait). */
  readonly await: Effect.Effect<void>
}

/** The signal, shared by the events' writer and the webhooks' dispatcher of one process. */
export class WebhookSignal extends Context.Tag("effect-connect/broker/WebhookSignal")<
  WebhookSignal,
  WebhookSignalService
>() {
  /** A fresh signal. */
  static readonly layer: Layer.Layer<WebhookSignal> = Layer.effect(
    WebhookSignal,
    // One slot: signals raised while the dispatcher is busy make one more round, not one each.
    Effect.map(Queue.sliding<void>(1), (queue) => ({
      raise: Effect.asVoid(Queue.offer(queue, undefined)),
      await: Queue.take(queue)
    }))
  )
}
