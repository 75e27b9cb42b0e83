import { FetchHttpClient } from "@effect/platform"
import { afterEach, describe, expect, it } from "@effect/vitest"
import { Effect, Layer, Redacted, TestClock } from "effect"
import { Authorizations } from "../src/Authorizations.js"
import { Cipher, generateKey } from "../src/Cipher.js"
import { Events } from "../src/Events.js"
import { ProviderClient } from "../src/ProviderClient.js"
import { PublicUrl } from "../src/PublicUrl.js"
import { Store } from "../src/Store.js"
import { Tokens } from "../src/Tokens.js"
import { layerOf, sqlite, type TestDatabase } from "./support/databases.js"

describe("the status of an authorization request", () => {
  const databases: Array<TestDatabase> = []
  afterEach(async () => {
    for (const database of databases.splice(0)) await database.drop()
  })

  const services = () => {
    const database = sqlite()
    databases.push(database)
    return Authorizations.layer.pipe(
      Layer.provideMerge(Tokens.layer),
      Layer.provideMerge(Events.layer),
      Layer.provideMerge(Store.layer),
      Layer.provideMerge(layerOf(database)),
      Layer.provide(Cipher.layer(Redacted.make(generateKey())).pipe(Layer.orDie)),
      Layer.provide(Layer.succeed(PublicUrl, "http://127.0.0.1:4100")),
      // Nothing here reaches a provider.
      Layer.provide(ProviderClient.layer.pipe(Layer.provide(FetchHttpClient.layer)))
    )
  }

  it.effect("a completion cut short (the broker stopped mid-exchange) reads failed once well past expiry", () =>
    Effect.gen(function* () {
      const store = yield* Store
      const authorizations = yield* Authorizations
      const connector = yield* store.putConnector({
        uid: "idp/users",
        name: "IdP",
        type: "oauth",
        service: "idp",
        clientId: "broker",
        clientSecret: Redacted.make("broker-secret"),
        settings: {
          tokenEndpoint: "https://idp.test/token",
          authorizationEndpoint: "https://idp.test/authorize",
          tokenEndpointAuthMethod: "client_secret_basic",
          defaultScopes: {},
          defaultTokenLifetimeSeconds: 3600,
          installationsRequired: false,
          crossInstallation: false,
          data: {}
        }
      })
      const caller = { projectId: "prj_web", environment: "production" }
      const started = yield* authorizations.start(caller, connector, {
        subject: { type: "user", id: "ada" },
        expiresInMs: 60_000
      })
      const status = () => authorizations.status(caller, started.request, started.verifier)
      expect(yield* status()).toEqual({ request: started.request, status: "pending" })
      // The callback took the request, and the broker went away before finishing it.
      expect(yield* store.claimAuthorizationRequest(started.request, 0)).toBe(true)
      yield* TestClock.adjust("2 minutes")
      expect((yield* status()).status).toBe("completing")
      yield* TestClock.adjust("5 minutes")
      expect(yield* status()).toEqual({ request: started.request, status: "failed", error: "interrupted" })
    }).pipe(Effect.provide(services()))
  )
})
