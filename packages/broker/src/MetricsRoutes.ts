/**
 * `GET /metrics`: the broker's metrics in the Prometheus text format. On the
 * broker's port it needs the admin token (as the admin API does); when
 * `CONNECT_METRICS_PORT` is set, it is also served without authentication on
 * that port of `CONNECT_HOST`, for a scraper on a private network.
 *
 * @since 0.1.0
 */
import { createServer } from "node:http"
import * as HttpMiddleware from "@effect/platform/HttpMiddleware"
import * as HttpRouter from "@effect/platform/HttpRouter"
import * as HttpServer from "@effect/platform/HttpServer"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import * as NodeHttpServer from "@effect/platform-node/NodeHttpServer"
import { Config, Effect, Layer, Option } from "effect"
import { requireAdmin } from "./AdminRoutes.js"
import { answerFailures } from "./internal/http.js"
import { PROMETHEUS_CONTENT_TYPE, prometheusText } from "./Metrics.js"
import { listenConfig } from "./PublicUrl.js"
import { Store } from "./Store.js"

/**
 * The path of the metrics.
 *
 * @since 0.1.0
 * @category constants
 */
export const METRICS_PATH = "/metrics"

const metrics = Effect.map(Effect.flatMap(Store, prometheusText), (text) =>
  HttpServerResponse.text(text, { contentType: PROMETHEUS_CONTENT_TYPE, headers: { "cache-control": "no-store" } })
)

/**
 * `GET /metrics` behind the admin token, for the broker's own port.
 *
 * @since 0.1.0
 * @category routes
 */
export const router = HttpRouter.empty.pipe(
  HttpRouter.get(METRICS_PATH, answerFailures(Effect.zipRight(requireAdmin, metrics), { logAs: "metrics failed" }))
)

/**
 * `GET /metrics` without authentication, on `CONNECT_HOST:CONNECT_METRICS_PORT`
 * when that variable is set; nothing otherwise.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerPort = Layer.unwrapEffect(
  Effect.gen(function* () {
    const port = yield* Config.option(Config.port("CONNECT_METRICS_PORT"))
    if (Option.isNone(port)) return Layer.empty
    const { host } = yield* listenConfig
    return HttpServer.serve(HttpRouter.empty.pipe(HttpRouter.get(METRICS_PATH, metrics))).pipe(
      // A scrape is not worth a trace.
      HttpMiddleware.withTracerDisabledWhen(() => true),
      HttpServer.withLogAddress,
      Layer.provide(NodeHttpServer.layer(createServer, { host, port: port.value }))
    )
  })
)
