/**
 * The broker's public base URL, from which it builds the URLs it hands out
 * (authorization links, its OAuth callback): `CONNECT_PUBLIC_URL`, by default
 * `http://CONNECT_HOST:CONNECT_PORT`.
 *
 * @since 0.1.0
 */
import { Config, Context, Effect, Layer, Option } from "effect"

/**
 * The host and port the broker listens on, from `CONNECT_HOST` (default
 * 127.0.0.1) and `CONNECT_PORT` (default 4100).
 *
 * @since 0.1.0
 * @category config
 */
export const listenConfig = Config.all({
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
