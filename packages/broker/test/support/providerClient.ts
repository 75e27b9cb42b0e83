import { HttpClient } from "@effect/platform"
import { Effect, Layer } from "effect"
import { type Lookup, make, ProviderClient } from "../../src/ProviderClient.js"

/** A resolver for made-up provider hosts (`idp.test`): every name is a documentation address, nothing is asked of DNS. */
export const publicLookup: Lookup = () => Effect.succeed(["192.0.2.1"])

/** The provider client over a scripted `HttpClient`, resolving host names with `lookup`. */
export const providerClientOver = (
  client: HttpClient.HttpClient,
  lookup: Lookup = publicLookup
): Layer.Layer<ProviderClient> =>
  Layer.effect(ProviderClient, make({ lookup })).pipe(Layer.provide(Layer.succeed(HttpClient.HttpClient, client)))

/** The provider's operations, as effects that need the `ProviderClient`. */
export const { requestDeviceAuthorization, requestToken, revokeToken } = Effect.serviceFunctions(ProviderClient)
