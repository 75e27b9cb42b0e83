/**
 * The connection settings shared by the commands that talk to a Connect server:
 * `--url` and `--token`, by default `CONNECT_URL` and `CONNECT_TOKEN` (then
 * `VERCEL_OIDC_TOKEN`, as `ConnectClient.layerConfig` reads them).
 *
 * @since 0.1.0
 */
import * as Options from "@effect/cli/Options"
import * as FetchHttpClient from "@effect/platform/FetchHttpClient"
import { Config, Effect, Layer, Option, Redacted } from "effect"
import { ConnectClient, resolveOptions } from "effect-connect/ConnectClient"
import { TokenCache } from "effect-connect/TokenCache"
import { type CliExit, report } from "./Exit.js"

/**
 * `--url` and `--token`, both optional on the command line.
 *
 * @since 0.1.0
 * @category options
 */
export const options = {
  url: Options.text("url").pipe(
    Options.withDescription("The Connect server (default: CONNECT_URL, or Vercel Connect with VERCEL_OIDC_TOKEN)"),
    Options.optional
  ),
  token: Options.redacted("token").pipe(
    Options.withDescription(
      "The caller credential (default: CONNECT_TOKEN, then VERCEL_OIDC_TOKEN); prefer the variable"
    ),
    Options.optional
  )
}

/**
 * @since 0.1.0
 * @category models
 */
export interface ConnectionFlags {
  readonly url: Option.Option<string>
  readonly token: Option.Option<Redacted.Redacted<string>>
}

const nonEmpty = (name: string) =>
  Config.option(Config.string(name)).pipe(
    Config.map(Option.flatMap((value) => (value.trim().length === 0 ? Option.none() : Option.some(value.trim()))))
  )

const nonEmptyFlag = <A>(value: Option.Option<A>, text: (a: A) => string): string | undefined =>
  Option.match(value, {
    onNone: () => undefined,
    onSome: (a) => {
      const trimmed = text(a).trim()
      return trimmed.length === 0 ? undefined : trimmed
    }
  })

/**
 * A client for the flags over the environment; a missing setting stops the
 * command with exit code 2 and says what to set.
 *
 * @since 0.1.0
 * @category layers
 */
export const clientLayer = (flags: ConnectionFlags): Layer.Layer<ConnectClient, CliExit> =>
  Layer.unwrapEffect(
    Effect.gen(function* () {
      const env = yield* Config.all({
        url: nonEmpty("CONNECT_URL"),
        token: nonEmpty("CONNECT_TOKEN"),
        oidc: nonEmpty("VERCEL_OIDC_TOKEN")
      })
      const flagToken = nonEmptyFlag(flags.token, Redacted.value)
      const resolved = yield* resolveOptions({
        url: nonEmptyFlag(flags.url, (url) => url) ?? Option.getOrUndefined(env.url),
        token: flagToken ?? Option.getOrUndefined(env.token),
        oidc: Option.getOrUndefined(env.oidc),
        tokenSource: flagToken === undefined ? "CONNECT_TOKEN" : "--token"
      })
      return ConnectClient.layer(resolved).pipe(Layer.provide(Layer.merge(TokenCache.layer(), FetchHttpClient.layer)))
    })
  ).pipe(Layer.catchAll((error) => Layer.effect(ConnectClient, report(error))))
