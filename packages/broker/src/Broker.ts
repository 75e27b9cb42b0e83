/**
 * The broker: a self-hostable Connect server, as a Layer.
 *
 * `Broker.layerConfig` reads its settings from the environment
 * (`CONNECT_HOST`, `CONNECT_PORT`, `CONNECT_PUBLIC_URL`, `CONNECT_DATABASE_URL`,
 * `CONNECT_ENCRYPTION_KEY`, `CONNECT_DATA_DIR`, `CONNECT_CONFIG`,
 * `CONNECT_RATE_LIMIT_PER_MINUTE`, `CONNECT_ADMIN_TOKEN`, `CONNECT_TOKEN_RETENTION_DAYS`,
 * `CONNECT_EVENT_RETENTION_DAYS`, `CONNECT_MAX_BODY_BYTES`, the `CONNECT_WEBHOOK_…` settings of `Webhooks`,
 * `CONNECT_METRICS_PORT`, `CONNECT_DASHBOARD_SESSION_MINUTES`, and the `OTEL_*` variables of `Telemetry`), opens and migrates the
 * database, applies the configuration file, and serves the Connect wire protocol
 * and, with an admin token, the admin API.
 *
 * @since 0.1.0
 */
import * as HttpMiddleware from "@effect/platform/HttpMiddleware"
import * as HttpServer from "@effect/platform/HttpServer"
import * as NodeFileSystem from "@effect/platform-node/NodeFileSystem"
import * as NodeHttpClient from "@effect/platform-node/NodeHttpClient"
import * as NodeHttpServer from "@effect/platform-node/NodeHttpServer"
import { Config, Effect, Layer, Option } from "effect"
import { Admin } from "./Admin.js"
import { AdminToken } from "./AdminToken.js"
import { Authorizations } from "./Authorizations.js"
import { Cipher } from "./Cipher.js"
import * as ConfigFile from "./ConfigFile.js"
import { Dashboard } from "./Dashboard.js"
import * as Database from "./Database.js"
import { Events } from "./Events.js"
import { HotCache } from "./HotCache.js"
import * as Housekeeping from "./Housekeeping.js"
import { withFastPath } from "./internal/fastPath.js"
import { gatedServer } from "./internal/gatedServer.js"
import { flushing, makeTally } from "./internal/hotCache/tally.js"
import { MaxBodyBytes } from "./internal/limits.js"
import { isServerRequest, withRequestTelemetry } from "./internal/requestTelemetry.js"
import * as SlicedScheduler from "./internal/slicedScheduler.js"
import * as MetricsRoutes from "./MetricsRoutes.js"
import * as PgRateLimiter from "./PgRateLimiter.js"
import { ProviderClient } from "./ProviderClient.js"
import { listenConfig, PublicUrl } from "./PublicUrl.js"
import { RateLimiter } from "./RateLimiter.js"
import { app } from "./Routes.js"
import * as Setup from "./Setup.js"
import { Store } from "./Store.js"
import * as Telemetry from "./Telemetry.js"
import { Tokens } from "./Tokens.js"
import { WebhookSignal, Webhooks } from "./Webhooks.js"

/**
 * Applies the configuration file named by `CONNECT_CONFIG`, if any, at start.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerSetup = Layer.effectDiscard(
  Effect.gen(function* () {
    const path = yield* Config.option(Config.nonEmptyString("CONNECT_CONFIG"))
    if (Option.isNone(path)) return
    const setup = yield* ConfigFile.load(path.value)
    const applied = yield* Setup.apply(setup)
    const webhooks = yield* Setup.applyWebhooks(setup)
    yield* Effect.logInfo(
      `applied ${path.value}: ${applied.connectors} connectors, ${applied.projects} projects, ${applied.links} links, ${webhooks} webhooks`
    )
  })
)

/**
 * The HTTP client for providers and webhook receivers: undici's `request`, over
 * a keep-alive agent the layer closes. It does not follow redirects: a token
 * endpoint that redirects would otherwise receive the client's credentials at
 * wherever it points. A redirect is answered as the provider's error.
 *
 * Not `fetch`: its WHATWG streams cost about three times the CPU per call
 * (docs/benchmarks.md), and a broker refreshing many users at once spends it
 * on the thread that answers stored tokens.
 *
 * @since 0.1.0
 * @category layers
 */
export const providerHttpClient = NodeHttpClient.layerUndici

/**
 * Everything the routes need, from the environment: the store (database and
 * cipher), the event history, the rate limiter and the token service, with the configuration file
 * applied.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerServices = Layer.mergeAll(
  Authorizations.layer,
  PgRateLimiter.layerConfig,
  layerSetup,
  Admin.layer,
  AdminToken.layerConfig,
  Dashboard.layerConfig,
  Housekeeping.layerConfig,
  MaxBodyBytes.layerConfig
).pipe(
  Layer.provideMerge(Tokens.layer),
  Layer.provideMerge(Webhooks.layerConfig),
  Layer.provideMerge(Events.layer),
  Layer.provideMerge(ProviderClient.layerConfig),
  Layer.provideMerge(PublicUrl.layerConfig),
  Layer.provideMerge(Store.layer),
  Layer.provideMerge(WebhookSignal.layer),
  Layer.provideMerge(Layer.merge(Database.layerConfig, Cipher.layerConfig)),
  Layer.provide(Layer.merge(providerHttpClient, NodeFileSystem.layer))
)

/** Effect's own tracer: while it is the current one, no tracer is installed and requests need no spans. */
const nativeTracer = Effect.runSync(Effect.tracer)

/**
 * The token endpoint's fast path (`internal/fastPath.ts`), unless
 * `CONNECT_FAST_PATH=false` or a tracer is installed: its answers make no span.
 */
const fastPath = Effect.gen(function* () {
  const enabled = yield* Config.boolean("CONNECT_FAST_PATH").pipe(Config.withDefault(true))
  if (!enabled || (yield* Effect.tracer) !== nativeTracer) return undefined
  const events = yield* Events
  const tally = makeTally(events)
  events.addSource(tally.flush)
  yield* flushing(tally)
  return withFastPath({
    cache: yield* HotCache,
    limiter: yield* RateLimiter,
    tally,
    maxBodyBytes: yield* MaxBodyBytes,
    runtime: yield* Effect.runtime<never>()
  })
})

/**
 * The HTTP server listening on `listen`, the token endpoint's fast path in
 * front of its listeners; requests wait for the app's handler.
 *
 * @since 0.3.0
 * @category layers
 */
export const layerNodeServer = (listen: { readonly host: string; readonly port: number }) =>
  Layer.unwrapScoped(Effect.map(fastPath, (front) => NodeHttpServer.layer(() => gatedServer(front), listen)))

/** The HTTP server on `CONNECT_HOST:CONNECT_PORT`. */
const nodeServer = Layer.unwrapEffect(Effect.map(listenConfig, layerNodeServer))

/**
 * The broker serving on `CONNECT_HOST:CONNECT_PORT` (default 127.0.0.1:4100).
 * The port opens only once the broker can answer: the services first
 * (database migrated, configuration applied), then the server, whose
 * requests wait for the handler.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerConfig = HttpServer.serve(
  // The server starts a request's fiber in its socket's callback, where it would run until its first wait; yielding
  // first hands it to the scheduler, so that a burst of requests is worked through in slices too.
  Effect.zipRight(Effect.yieldNow(), withRequestTelemetry(app))
).pipe(
  // The broker makes its own server span (see internal/requestTelemetry.ts); the platform's stays for outgoing calls.
  HttpMiddleware.withTracerDisabledWhen(isServerRequest),
  HttpServer.withLogAddress,
  Layer.merge(MetricsRoutes.layerPort),
  Layer.merge(
    Layer.effectDiscard(
      Effect.flatMap(PublicUrl, (url) => Effect.logInfo(`public URL ${url} (set CONNECT_PUBLIC_URL to change it)`))
    )
  ),
  Layer.provide(nodeServer),
  // Traces and metrics (OTEL_* variables): built before the server, so its requests see the tracer.
  Layer.provide(Telemetry.layerConfig),
  Layer.provide(layerServices)
)

/**
 * Runs `effect` (the broker, or the building of its layer) with the broker's
 * scheduler: fibers ready to run take slices of half a millisecond, and the
 * event loop reads its sockets between them, so that the requests answered
 * from memory do not wait behind refreshes (`internal/slicedScheduler.ts`).
 * The fibers of the server's requests inherit it from the building of the
 * layer.
 *
 * @since 0.3.0
 * @category running
 */
export const scheduled = <A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
  Effect.withScheduler(effect, SlicedScheduler.make())

/**
 * Runs the broker until the process is stopped.
 *
 * @since 0.1.0
 * @category running
 */
export const serve = scheduled(Layer.launch(layerConfig))
