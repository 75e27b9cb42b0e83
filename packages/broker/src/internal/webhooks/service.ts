/**
 * The webhooks service's operations, and the dispatcher's loop.
 *
 * @internal
 */
import { createHash, randomBytes } from "node:crypto"
import * as HttpClient from "@effect/platform/HttpClient"
import type { SqlClient } from "@effect/sql"
import { Clock, Duration, Effect, Redacted } from "effect"
import { InvalidRequest } from "effect-connect/ConnectError"
import { AdminConflict, AdminNotFound } from "../../Admin.js"
import type { CipherService } from "../../Cipher.js"
import type { WebhookSettings, WebhooksService } from "../../Webhooks.js"
import { newId } from "../store/common.js"
import type { Sealer } from "../store/sealer.js"
import { makeSealer } from "../store/sealer.js"
import { retryDelivery, selectDeliveries, selectDelivery, toDeliveryView } from "./deliveries.js"
import { type Dispatcher, dispatchDue } from "./dispatcher.js"
import { generateSecret, MAX_WEBHOOKS_PER_PROJECT, WEBHOOK_ID_PREFIX, webhookUrlProblem } from "./policy.js"
import type { WebhookSignalService } from "./signal.js"
import { deleteWebhook, projectExists, selectProjectWebhooks, selectWebhook, toView, upsertWebhook } from "./table.js"

/** How many deliveries one round of the dispatcher claims. */
const BATCH_SIZE = 50

/**
 * The id a webhook of the configuration file gets when it names none: the
 * same for the same project and URL, so that applying the file again
 * updates it rather than adding another.
 */
export const declaredWebhookId = (projectId: string, url: string): string =>
  `${WEBHOOK_ID_PREFIX}_${createHash("sha256").update(`${projectId}\n${url}`).digest("base64url").slice(0, 16)}`

/** The URL policy of connectors' endpoints, for webhooks: https, or http to loopback and allowed hosts. */
const urlIssues = (url: string, settings: WebhookSettings) => {
  const problem = webhookUrlProblem(url, settings.allowedHttpHosts)
  return problem === undefined ? [] : [{ path: "url", message: problem }]
}

const notFound = (detail: string) => new AdminNotFound({ detail })

/** What the management operations work with. */
interface Context {
  readonly sql: SqlClient.SqlClient
  readonly sealer: Sealer
  readonly settings: WebhookSettings
}

const requireProject = (sql: SqlClient.SqlClient, projectId: string) =>
  Effect.flatMap(projectExists(sql, projectId), (exists) =>
    exists ? Effect.void : Effect.fail(notFound(`no project ${projectId}`))
  )

const checkUrl = (url: string, settings: WebhookSettings) => {
  const issues = urlIssues(url, settings)
  return issues.length === 0 ? Effect.void : Effect.fail(new InvalidRequest({ status: 400, issues }))
}

/** Creates a webhook of the admin API: its secret generated unless given, returned this once. */
const create =
  ({ sql, sealer, settings }: Context): WebhooksService["create"] =>
  (projectId, body) =>
    Effect.gen(function* () {
      yield* checkUrl(body.url, settings)
      yield* requireProject(sql, projectId)
      const existing = yield* selectProjectWebhooks(sql, projectId)
      if (existing.length >= MAX_WEBHOOKS_PER_PROJECT) {
        return yield* new AdminConflict({
          detail: `project ${projectId} has ${MAX_WEBHOOKS_PER_PROJECT} webhooks already`
        })
      }
      const id = body.id ?? newId(WEBHOOK_ID_PREFIX)
      if ((yield* selectWebhook(sql, id)) !== undefined) {
        return yield* new AdminConflict({ detail: `a webhook ${id} exists already` })
      }
      const secret = body.secret ?? Redacted.make(generateSecret())
      const now = yield* Clock.currentTimeMillis
      const input = { id, projectId, url: body.url, secret, kinds: body.events ?? [], source: "api" as const }
      yield* upsertWebhook(sql, sealer, input, now)
      const row = yield* selectWebhook(sql, id)
      if (row === undefined) return yield* notFound(`no webhook ${id}`)
      return { ...toView(row), secret }
    })

/** Makes a delivery due now, with a fresh retry schedule, unless it is being sent. */
const retry =
  ({ sql }: Context): WebhooksService["retry"] =>
  (deliveryId) =>
    Effect.gen(function* () {
      if ((yield* selectDelivery(sql, deliveryId)) === undefined) {
        return yield* notFound(`no webhook delivery ${deliveryId}`)
      }
      const now = yield* Clock.currentTimeMillis
      if (!(yield* retryDelivery(sql, deliveryId, now))) {
        return yield* new AdminConflict({ detail: `webhook delivery ${deliveryId} is being sent` })
      }
      const row = yield* selectDelivery(sql, deliveryId)
      if (row === undefined) return yield* notFound(`no webhook delivery ${deliveryId}`)
      return toDeliveryView(row)
    })

/** The service over the database, and the dispatcher its loop runs. */
export const makeService = (sql: SqlClient.SqlClient, cipher: CipherService, settings: WebhookSettings) =>
  Effect.gen(function* () {
    const sealer = makeSealer(cipher)
    const dispatcher: Dispatcher = {
      sql,
      sealer,
      http: yield* HttpClient.HttpClient,
      owner: `rep_${randomBytes(9).toString("base64url")}`,
      settings: { timeout: settings.timeout, backoffScale: settings.backoffScale, batchSize: BATCH_SIZE }
    }
    const put: WebhooksService["put"] = (projectId, webhook) =>
      Effect.gen(function* () {
        yield* checkUrl(webhook.url, settings)
        const now = yield* Clock.currentTimeMillis
        const input = { ...webhook, projectId, kinds: webhook.events, source: "config" as const }
        yield* upsertWebhook(sql, sealer, input, now)
      })

    const list: WebhooksService["list"] = (projectId) =>
      Effect.zipRight(
        requireProject(sql, projectId),
        Effect.map(selectProjectWebhooks(sql, projectId), (rows) => rows.map(toView))
      )

    const remove: WebhooksService["remove"] = (projectId, id) =>
      Effect.flatMap(deleteWebhook(sql, projectId, id), (deleted) =>
        deleted ? Effect.succeed({ id, project: projectId }) : Effect.fail(notFound(`no webhook ${id} in ${projectId}`))
      )

    const deliveries: WebhooksService["deliveries"] = (webhookId, options) =>
      Effect.gen(function* () {
        if ((yield* selectWebhook(sql, webhookId)) === undefined) return yield* notFound(`no webhook ${webhookId}`)
        return yield* selectDeliveries(sql, webhookId, options)
      })

    const context: Context = { sql, sealer, settings }
    const service: WebhooksService = {
      create: create(context),
      put,
      list,
      remove,
      deliveries,
      retry: retry(context),
      dispatch: dispatchDue(dispatcher)
    }
    return { service, dispatcher }
  })

/**
 * The dispatcher's loop: a round, then, unless the round was full, a wait
 * for the signal or the poll interval, whichever comes first. A round that
 * fails (the database is down) is logged and tried again after the wait.
 */
export const runDispatcher = (dispatcher: Dispatcher, signal: WebhookSignalService, pollInterval: Duration.Duration) =>
  Effect.forever(
    Effect.gen(function* () {
      const claimed = yield* dispatchDue(dispatcher).pipe(
        Effect.catchAll((error) => Effect.as(Effect.logWarning("webhooks: a dispatch round failed", error.message), 0))
      )
      if (claimed < dispatcher.settings.batchSize) {
        yield* Effect.raceFirst(signal.await, Effect.sleep(Duration.decode(pollInterval)))
      }
    })
  )
