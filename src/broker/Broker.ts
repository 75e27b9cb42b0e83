/**
 * The broker: a self-hostable Connect server, as a Layer.
 *
 * `Broker.layerConfig` reads its settings from the environment
 * (`CONNECT_HOST`, `CONNECT_PORT`, `CONNECT_PUBLIC_URL`, `CONNECT_DATABASE_URL`,
 * `CONNECT_ENCRYPTION_KEY`, `CONNECT_DATA_DIR`, `CONNECT_CONFIG`,
 * `CONNECT_RATE_LIMIT_PER_MINUTE`), opens and migrates the database, applies the
 * configuration file, and serves the Connect wire protocol.
 *
 * @since 0.1.0
 */
import { createServer } from "node:http"
import { FetchHttpClient, HttpServer } from "@effect/platform"
import { NodeFileSystem, NodeHttpServer } from "@effect/platform-node"
import { Config, Context, Effect, Layer, Option } from "effect"
import { Cipher } from "./Cipher.js"
import * as ConfigFile from "./ConfigFile.js"
import * as Database from "./Database.js"
import { RateLimiter } from "./RateLimiter.js"
import { app } from "./Routes.js"
import * as Setup from "./Setup.js"
import { Store } from "./Store.js"
import { Tokens } from "./Tokens.js"

/**
 * Where the broker listens, and what it says about itself.
 *
 * @since 0.1.0
 * @category models
 */
export interface ListenOptions {
  readonly host: string
  readonly port: number
}

/**
 * The broker's settings from the environment.
 *
 * @since 0.1.0
 * @category config
 */
export const listenConfig: Config.Config<ListenOptions> = Config.all({
  host: Config.nonEmptyString("CONNECT_HOST").pipe(Config.withDefault("127.0.0.1")),
  port: Config.port("CONNECT_PORT").pipe(Config.withDefault(4100))
})

/**
 * The broker's public base URL, from which it builds the URLs it hands out:
 * `CONNECT_PUBLIC_URL`, by default `http://CONNECT_HOST:CONNECT_PORT`.
 *
 * @since 0.1.0
 * @category tags
 */
export class PublicUrl extends Context.Tag("effect-connect/broker/PublicUrl")<PublicUrl, string>() {
  /** From the environment; a value that is not an http(s) URL is a configuration error. */
  static readonly layerConfig = Layer.effect(
    PublicUrl,
    Effect.gen(function* () {
      const listen = yield* listenConfig
      const configured = yield* Config.option(Config.url("CONNECT_PUBLIC_URL"))
      if (Option.isNone(configured)) return `http://${listen.host}:${listen.port}`
      const url = configured.value
      if (url.protocol !== "http:" && url.protocol !== "https:") {
        return yield* Effect.fail(new Error("CONNECT_PUBLIC_URL must be an http:// or https:// URL"))
      }
      return url.href.replace(/\/+$/, "")
    })
  )
}

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
    yield* Effect.logInfo(
      `applied ${path.value}: ${applied.connectors} connectors, ${applied.projects} projects, ${applied.links} links`
    )
  })
)

/**
 * The HTTP client for providers. It does not follow redirects: a token endpoint
 * that redirects would otherwise receive the client's credentials at wherever
 * it points. A redirect is answered as the provider's error.
 *
 * @since 0.1.0
 * @category layers
 */
export const providerHttpClient = FetchHttpClient.layer.pipe(
  Layer.provide(Layer.succeed(FetchHttpClient.RequestInit, { redirect: "manual" }))
)

/**
 * Everything the routes need, from the environment: the store (database and
 * cipher), the rate limiter and the token service, with the configuration file
 * applied.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerServices = Layer.mergeAll(Tokens.layer, RateLimiter.layerConfig, layerSetup).pipe(
  Layer.provideMerge(Store.layer),
  Layer.provideMerge(Layer.merge(Database.layerConfig, Cipher.layerConfig)),
  Layer.provide(Layer.merge(providerHttpClient, NodeFileSystem.layer))
)

/**
 * The broker serving on `CONNECT_HOST:CONNECT_PORT` (default 127.0.0.1:4100).
 *
 * @since 0.1.0
 * @category layers
 */
export const layerConfig = HttpServer.serve(app).pipe(
  HttpServer.withLogAddress,
  Layer.provide(layerServices),
  Layer.provideMerge(
    Layer.effectDiscard(
      Effect.flatMap(PublicUrl, (url) => Effect.logInfo(`public URL ${url} (set CONNECT_PUBLIC_URL to change it)`))
    ).pipe(Layer.provideMerge(PublicUrl.layerConfig))
  ),
  Layer.provide(Layer.unwrapEffect(Effect.map(listenConfig, (listen) => NodeHttpServer.layer(createServer, listen))))
)

/**
 * Runs the broker until the process is stopped.
 *
 * @since 0.1.0
 * @category running
 */
export const serve = Layer.launch(layerConfig)
