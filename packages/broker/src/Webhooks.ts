/**
 * Webhooks: a project's application hears of its events (tokens issued,
 * authorizations completed, grants revoked, …) by signed HTTP requests, as
 * the Standard Webhooks specification describes them (`webhook-id`,
 * `webhook-timestamp`, `webhook-signature`).
 *
 * Deliveries go through a durable outbox: the events' writer inserts one per
 * matching webhook in the transaction that writes the event, and a
 * dispatcher in every replica claims due ones with a lease, sends them within
 * a deadline and records the outcome, retrying with exponential backoff.
 * Each delivery is sent by one replica at a time, and at least once overall.
 * See `docs/webhooks.md`.
 *
 * @since 0.1.0
 */
import type * as HttpClient from "@effect/platform/HttpClient"
import { SqlClient } from "@effect/sql"
import { Config, type ConfigError, Context, Duration, Effect, Layer, type Redacted } from "effect"
import type { InvalidRequest } from "effect-connect/ConnectError"
import type { AdminConflict, AdminNotFound } from "./Admin.js"
import type { CreatedWebhook, DeliveryView, WebhookBody, WebhookRemoved, WebhookView } from "./AdminApi.js"
import { Cipher } from "./Cipher.js"
import { allowedHttpHosts } from "./internal/endpoints.js"
import { makeService, runDispatcher } from "./internal/webhooks/service.js"
import { WebhookSignal } from "./internal/webhooks/signal.js"
import type { StoreError } from "./Store.js"

export { WebhookSignal } from "./internal/webhooks/signal.js"

/**
 * A webhook declared by the configuration file: its secret resolved.
 *
 * @since 0.1.0
 * @category models
 */
export interface DeclaredWebhook {
  readonly id: string
  readonly url: string
  readonly secret: Redacted.Redacted<string>
  readonly events: ReadonlyArray<string>
}

/**
 * What the webhooks service does: manage a project's webhooks and their
 * deliveries. Nothing it answers holds a secret, except a created webhook's,
 * once.
 *
 * @since 0.1.0
 * @category models
 */
export interface WebhooksService {
  /** Creates a webhook; its secret is generated when not given, and answered this once. */
  readonly create: (
    projectId: string,
    body: WebhookBody
  ) => Effect.Effect<CreatedWebhook, InvalidRequest | AdminNotFound | AdminConflict | StoreError>
  /** Creates or updates a webhook of the configuration file (enabled again if it was disabled). */
  readonly put: (projectId: string, webhook: DeclaredWebhook) => Effect.Effect<void, InvalidRequest | StoreError>
  /** The webhooks of a project. */
  readonly list: (projectId: string) => Effect.Effect<ReadonlyArray<WebhookView>, AdminNotFound | StoreError>
  /** Removes a webhook with its deliveries. */
  readonly remove: (projectId: string, id: string) => Effect.Effect<WebhookRemoved, AdminNotFound | StoreError>
  /** A webhook's deliveries, newest first, with their attempts. */
  readonly deliveries: (
    webhookId: string,
    options: { readonly limit: number; readonly status?: DeliveryView["status"] | undefined }
  ) => Effect.Effect<ReadonlyArray<DeliveryView>, AdminNotFound | StoreError>
  /** Makes a delivery due now, with a fresh schedule; refused while it is being sent. */
  readonly retry: (deliveryId: string) => Effect.Effect<DeliveryView, AdminNotFound | AdminConflict | StoreError>
  /** Claims and sends what is due now, once; says how many it claimed (the dispatcher does this on its own). */
  readonly dispatch: Effect.Effect<number, StoreError>
}

/**
 * How webhooks are sent.
 *
 * @since 0.1.0
 * @category models
 */
export interface WebhookSettings {
  /** The deadline of one request, answer included (default 10 seconds). */
  readonly timeout: Duration.Duration
  /** How often the dispatcher looks for due deliveries when not woken (default 2 seconds). */
  readonly pollInterval: Duration.Duration
  /** Multiplies the retry delays: 1 in production, less to try a receiver's failures faster. */
  readonly backoffScale: number
  /** The hosts a webhook may reach over plain `http:`, besides loopback. */
  readonly allowedHttpHosts: ReadonlySet<string>
}

/**
 * The defaults: a 10 second deadline, a poll every 2 seconds, the full retry
 * schedule, `http:` only to loopback.
 *
 * @since 0.1.0
 * @category constants
 */
export const defaultSettings: WebhookSettings = {
  timeout: Duration.seconds(10),
  pollInterval: Duration.seconds(2),
  backoffScale: 1,
  allowedHttpHosts: new Set()
}

const positiveMillis = (name: string, fallback: Duration.Duration) =>
  Config.integer(name).pipe(
    Config.validate({ message: "Expected a whole number of milliseconds from 1", validation: (ms) => ms >= 1 }),
    Config.map(Duration.millis),
    Config.withDefault(fallback)
  )

/**
 * The settings from the environment: `CONNECT_WEBHOOK_TIMEOUT_MS`,
 * `CONNECT_WEBHOOK_POLL_MS`, `CONNECT_WEBHOOK_BACKOFF_SCALE` (above 0, at
 * most 1) and `CONNECT_ALLOWED_HTTP_HOSTS` (shared with connectors' endpoints).
 *
 * @since 0.1.0
 * @category config
 */
export const settingsConfig: Effect.Effect<WebhookSettings, ConfigError.ConfigError> = Effect.all({
  timeout: positiveMillis("CONNECT_WEBHOOK_TIMEOUT_MS", defaultSettings.timeout),
  pollInterval: positiveMillis("CONNECT_WEBHOOK_POLL_MS", defaultSettings.pollInterval),
  backoffScale: Config.number("CONNECT_WEBHOOK_BACKOFF_SCALE").pipe(
    Config.validate({ message: "Expected a number above 0, at most 1", validation: (x) => x > 0 && x <= 1 }),
    Config.withDefault(1)
  ),
  allowedHttpHosts
})

/**
 * The webhooks service.
 *
 * @since 0.1.0
 * @category tags
 */
export class Webhooks extends Context.Tag("effect-connect/broker/Webhooks")<Webhooks, WebhooksService>() {
  /**
   * The service, and its dispatcher running for as long as the layer lives.
   * The `HttpClient` must not follow redirects (the broker's does not).
   */
  static readonly layer = (
    settings: WebhookSettings
  ): Layer.Layer<Webhooks, never, SqlClient.SqlClient | Cipher | HttpClient.HttpClient | WebhookSignal> =>
    Layer.scoped(
      Webhooks,
      Effect.gen(function* () {
        const sql = yield* SqlClient.SqlClient
        const { service, dispatcher } = yield* makeService(sql, yield* Cipher, settings)
        yield* Effect.forkScoped(runDispatcher(dispatcher, yield* WebhookSignal, settings.pollInterval))
        return service
      })
    )

  /** The service with the settings from the environment (see `settingsConfig`). */
  static readonly layerConfig: Layer.Layer<
    Webhooks,
    ConfigError.ConfigError,
    SqlClient.SqlClient | Cipher | HttpClient.HttpClient | WebhookSignal
  > = Layer.unwrapEffect(Effect.map(settingsConfig, Webhooks.layer))
}
