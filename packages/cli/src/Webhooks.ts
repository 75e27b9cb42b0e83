/**
 * `connect webhooks list|create|remove|deliveries|retry`: a project's
 * webhooks and their deliveries, through the broker's admin API. A new
 * webhook's secret is printed once: the broker never shows it again.
 *
 * @since 0.1.0
 */
import * as Args from "@effect/cli/Args"
import * as Command from "@effect/cli/Command"
import * as Options from "@effect/cli/Options"
import {
  CreatedWebhook,
  DeliveryList,
  DeliveryView,
  WebhookList,
  WebhookRemoved
} from "@effect-connect/broker/AdminApi"
import { Console, Effect, Option, Redacted, Schema } from "effect"
import * as AdminClient from "./AdminClient.js"
import * as Flags from "./Flags.js"
import { isoTime, table } from "./Table.js"

const printJson = <A, I>(schema: Schema.Schema<A, I>, value: A) =>
  Effect.flatMap(Schema.encode(schema)(value).pipe(Effect.orDie), (encoded) =>
    Console.log(JSON.stringify(encoded, null, 2))
  )

const project = Options.text("project").pipe(Options.withDescription("The project's id"))

const list = Command.make("list", { project, ...AdminClient.options }, (input) =>
  Effect.gen(function* () {
    const answer = yield* AdminClient.request((client) => client.listWebhooks(input.project))
    if (input.format === "json") return yield* printJson(WebhookList, answer)
    if (answer.webhooks.length === 0) return yield* Console.log(`No webhooks in ${input.project}.`)
    return yield* Console.log(
      table([
        ["ID", "URL", "EVENTS", "ENABLED", "SOURCE", "CREATED"],
        ...answer.webhooks.map((hook) => [
          hook.id,
          hook.url,
          hook.events.length === 0 ? "all" : hook.events.join(" "),
          hook.enabled ? "yes" : `no (${hook.disabledReason ?? "disabled"})`,
          hook.source,
          isoTime(hook.createdAt)
        ])
      ])
    )
  }).pipe(Effect.provide(AdminClient.layer(input)))
).pipe(
  Command.withDescription(
    ["Lists a project's webhooks (never their secrets).", "", "Example: connect webhooks list --project prj_web"].join(
      "\n"
    )
  )
)

const create = Command.make(
  "create",
  {
    project,
    endpoint: Args.text({ name: "webhook-url" }).pipe(Args.withDescription("Where to send the events (https://…)")),
    events: Options.text("event").pipe(
      Options.withDescription(
        "An event kind (token.issued) or group (token.*) to send; repeat for several (default: all)"
      ),
      Options.repeated
    ),
    secret: Options.redacted("secret").pipe(
      Options.withDescription("The signing secret, whsec_<base64> (default: generated, and printed once)"),
      Options.optional
    ),
    ...AdminClient.options
  },
  (input) =>
    Effect.gen(function* () {
      const created = yield* AdminClient.request((client) =>
        client.createWebhook(input.project, {
          url: input.endpoint,
          ...(Option.isSome(input.secret) ? { secret: Redacted.value(input.secret.value) } : {}),
          ...(input.events.length > 0 ? { events: input.events } : {})
        })
      )
      if (input.format === "json") yield* printJson(CreatedWebhook, created)
      else yield* Console.log(`Created webhook ${created.id}\nSecret: ${Redacted.value(created.secret)}`)
      yield* Console.error("The secret is shown only now: verify the webhooks' signatures with it.")
    }).pipe(Effect.provide(AdminClient.layer(input)))
).pipe(
  Command.withDescription(
    [
      "Creates a webhook of a project; its signing secret is printed once.",
      "",
      "Example: connect webhooks create --project prj_web --event token.* https://app.example/hooks/connect"
    ].join("\n")
  )
)

const remove = Command.make(
  "remove",
  { project, id: Args.text({ name: "id" }).pipe(Args.withDescription("The webhook's id")), ...AdminClient.options },
  (input) =>
    Effect.gen(function* () {
      const removed = yield* AdminClient.request((client) => client.removeWebhook(input.project, input.id))
      if (input.format === "json") return yield* printJson(WebhookRemoved, removed)
      return yield* Console.log(`Removed webhook ${removed.id} of ${removed.project}`)
    }).pipe(Effect.provide(AdminClient.layer(input)))
).pipe(
  Command.withDescription(
    ["Removes a webhook with its deliveries.", "", "Example: connect webhooks remove --project prj_web wh_1"].join("\n")
  )
)

const lastOutcome = (delivery: DeliveryView): string =>
  delivery.lastStatus !== undefined
    ? `HTTP ${delivery.lastStatus}`
    : delivery.lastError !== undefined
      ? delivery.lastError
      : "-"

const deliveries = Command.make(
  "deliveries",
  {
    id: Args.text({ name: "webhook" }).pipe(Args.withDescription("The webhook's id")),
    status: Options.choice("status", ["pending", "delivered", "failed"]).pipe(
      Options.withDescription("Only the deliveries with this status"),
      Options.optional
    ),
    limit: Options.integer("limit").pipe(
      Options.withDescription("At most this many (1 to 500)"),
      Flags.withDefault(50)
    ),
    ...AdminClient.options
  },
  (input) =>
    Effect.gen(function* () {
      const answer = yield* AdminClient.request((client) =>
        client.listDeliveries(input.id, {
          limit: input.limit,
          ...(Option.isSome(input.status) ? { status: input.status.value } : {})
        })
      )
      if (input.format === "json") return yield* printJson(DeliveryList, answer)
      if (answer.deliveries.length === 0) return yield* Console.log(`No deliveries for ${input.id}.`)
      return yield* Console.log(
        table([
          ["ID", "EVENT", "KIND", "STATUS", "ATTEMPTS", "LAST", "NEXT"],
          ...answer.deliveries.map((delivery) => [
            delivery.id,
            delivery.eventId,
            delivery.eventKind,
            delivery.status,
            String(delivery.attempts),
            lastOutcome(delivery),
            delivery.nextAttemptAt === undefined ? "-" : isoTime(delivery.nextAttemptAt)
          ])
        ])
      )
    }).pipe(Effect.provide(AdminClient.layer(input)))
).pipe(
  Command.withDescription(
    [
      "Lists a webhook's deliveries, newest first (--format json: with each attempt).",
      "",
      "Example: connect webhooks deliveries wh_1 --status failed"
    ].join("\n")
  )
)

const retry = Command.make(
  "retry",
  { id: Args.text({ name: "delivery" }).pipe(Args.withDescription("The delivery's id")), ...AdminClient.options },
  (input) =>
    Effect.gen(function* () {
      const delivery = yield* AdminClient.request((client) => client.retryDelivery(input.id))
      if (input.format === "json") return yield* printJson(DeliveryView, delivery)
      return yield* Console.log(`Delivery ${delivery.id} will be sent again now`)
    }).pipe(Effect.provide(AdminClient.layer(input)))
).pipe(
  Command.withDescription(
    ["Sends a delivery again now, with a fresh retry schedule.", "", "Example: connect webhooks retry whd_1"].join("\n")
  )
)

/**
 * @since 0.1.0
 * @category commands
 */
export const webhooks = Command.make("webhooks").pipe(
  Command.withDescription(
    [
      "Manages projects' webhooks and their deliveries (admin API: CONNECT_URL, CONNECT_ADMIN_TOKEN).",
      "",
      "Example: connect webhooks create --project prj_web https://app.example/hooks/connect"
    ].join("\n")
  ),
  Command.withSubcommands([list, create, remove, deliveries, retry])
)
