import { HttpClient, type HttpClientRequest, HttpClientResponse } from "@effect/platform"
import { describe, expect, it } from "@effect/vitest"
import { ConfigProvider, Duration, Effect, Layer, Redacted } from "effect"
import { optionsFromConfig } from "../src/ConnectClient.js"
import {
  ConfigurationError,
  ConnectClient,
  type ConnectClientOptions,
  getToken,
  TokenCache,
  VERCEL_API_URL
} from "../src/index.js"

const CONNECTOR = "slack/acme"
const BROKER_TOKEN = "broker-secret-7c41"
const OIDC_TOKEN = "oidc-secret-e09a"

interface Sent {
  readonly url: string
  readonly authorization: string | undefined
}

/**
 * An HttpClient that records each request and answers with a valid token
 * response: the seam to see what the configured client actually sends.
 */
const recordingClient = (sent: Array<Sent>) =>
  HttpClient.make((request: HttpClientRequest.HttpClientRequest, url) =>
    Effect.sync(() => {
      sent.push({ url: url.href, authorization: request.headers.authorization })
      const body = {
        token: "provider-token",
        tokenId: "stk_1",
        expiresAt: 4_102_444_800_000,
        connector: { id: "conn_1", uid: CONNECTOR, type: "oauth" }
      }
      return HttpClientResponse.fromWeb(
        request,
        new Response(JSON.stringify(body), { status: 200, headers: { "content-type": "application/json" } })
      )
    })
  )

/** An HttpClient that refuses every credential, as a Connect server does an unknown one. */
const refusingClient = HttpClient.make((request: HttpClientRequest.HttpClientRequest) =>
  Effect.succeed(
    HttpClientResponse.fromWeb(
      request,
      new Response(JSON.stringify({ error: { code: "unauthorized", message: "unknown caller key" } }), {
        status: 401,
        headers: { "content-type": "application/json" }
      })
    )
  )
)

/** The error of one token request through `layer` over a server that refuses every credential. */
const refusedWith = (layer: Layer.Layer<ConnectClient, ConfigurationError, HttpClient.HttpClient | TokenCache>) =>
  Effect.flip(getToken(CONNECTOR, { subject: { type: "app" } })).pipe(
    Effect.provide(
      layer.pipe(Layer.provide(Layer.merge(Layer.succeed(HttpClient.HttpClient, refusingClient), TokenCache.layer())))
    )
  )

const environment = (vars: Readonly<Record<string, string>>) => ConfigProvider.fromMap(new Map(Object.entries(vars)))

/** Builds `ConnectClient.layerConfig` from `vars`, asks for one token, and returns what was sent. */
const clientFrom = (vars: Readonly<Record<string, string>>) =>
  Effect.gen(function* () {
    const sent: Array<Sent> = []
    const layer = ConnectClient.layerConfig.pipe(
      Layer.provide(Layer.merge(Layer.succeed(HttpClient.HttpClient, recordingClient(sent)), TokenCache.layer()))
    )
    const result = yield* Effect.gen(function* () {
      const client = yield* ConnectClient
      const token = yield* getToken(CONNECTOR, { subject: { type: "app" } })
      return { baseUrl: client.baseUrl, token: Redacted.value(token) }
    }).pipe(Effect.provide(layer), Effect.withConfigProvider(environment(vars)))
    return { ...result, sent }
  })

/** The configuration error for `vars`, both from `optionsFromConfig` and from `layerConfig`. */
const configurationError = (vars: Readonly<Record<string, string>>) =>
  Effect.gen(function* () {
    const fromOptions = yield* Effect.flip(optionsFromConfig.pipe(Effect.withConfigProvider(environment(vars))))
    const fromLayer = yield* Effect.flip(clientFrom(vars))
    if (!(fromLayer instanceof ConfigurationError)) {
      return yield* Effect.dieMessage(`expected a ConfigurationError, got ${fromLayer._tag}`)
    }
    return [fromOptions, fromLayer] as const
  })

const optionsOf = (vars: Readonly<Record<string, string>>): Effect.Effect<ConnectClientOptions, ConfigurationError> =>
  optionsFromConfig.pipe(Effect.withConfigProvider(environment(vars)))

const expectNoCredential = (error: Error) => {
  for (const text of [error.message, String(error), JSON.stringify(error)]) {
    expect(text).not.toContain(BROKER_TOKEN)
    expect(text).not.toContain(OIDC_TOKEN)
  }
}

describe("choosing the server", () => {
  it.effect("CONNECT_URL and CONNECT_TOKEN: that broker, with that credential", () =>
    Effect.gen(function* () {
      const { baseUrl, token, sent } = yield* clientFrom({
        CONNECT_URL: "http://127.0.0.1:4100/",
        CONNECT_TOKEN: BROKER_TOKEN
      })
      expect(baseUrl).toBe("http://127.0.0.1:4100")
      expect(token).toBe("provider-token")
      expect(sent).toEqual([
        { url: "http://127.0.0.1:4100/v1/connect/token/slack%2Facme", authorization: `Bearer ${BROKER_TOKEN}` }
      ])
    })
  )

  it.effect("only VERCEL_OIDC_TOKEN: Vercel Connect", () =>
    Effect.gen(function* () {
      const { baseUrl, sent } = yield* clientFrom({ VERCEL_OIDC_TOKEN: OIDC_TOKEN })
      expect(baseUrl).toBe("https://api.vercel.com")
      expect(VERCEL_API_URL).toBe("https://api.vercel.com")
      expect(sent).toEqual([
        { url: "https://api.vercel.com/v1/connect/token/slack%2Facme", authorization: `Bearer ${OIDC_TOKEN}` }
      ])
    })
  )

  it.effect("CONNECT_URL and VERCEL_OIDC_TOKEN: CONNECT_URL, with the OIDC token", () =>
    Effect.gen(function* () {
      const { baseUrl, sent } = yield* clientFrom({
        CONNECT_URL: "https://connect.internal.example",
        VERCEL_OIDC_TOKEN: OIDC_TOKEN
      })
      expect(baseUrl).toBe("https://connect.internal.example")
      expect(sent[0]?.url).toBe("https://connect.internal.example/v1/connect/token/slack%2Facme")
      expect(sent[0]?.authorization).toBe(`Bearer ${OIDC_TOKEN}`)
    })
  )

  it.effect("CONNECT_TOKEN is preferred to VERCEL_OIDC_TOKEN", () =>
    Effect.gen(function* () {
      const { baseUrl, sent } = yield* clientFrom({
        CONNECT_URL: "https://broker.example",
        CONNECT_TOKEN: BROKER_TOKEN,
        VERCEL_OIDC_TOKEN: OIDC_TOKEN
      })
      expect(baseUrl).toBe("https://broker.example")
      expect(sent[0]?.authorization).toBe(`Bearer ${BROKER_TOKEN}`)
    })
  )

  it.effect("values are trimmed", () =>
    Effect.gen(function* () {
      const { baseUrl, sent } = yield* clientFrom({
        CONNECT_URL: "  https://broker.example/base/  ",
        CONNECT_TOKEN: ` ${BROKER_TOKEN}\n`
      })
      expect(baseUrl).toBe("https://broker.example/base")
      expect(sent[0]?.url).toBe("https://broker.example/base/v1/connect/token/slack%2Facme")
      expect(sent[0]?.authorization).toBe(`Bearer ${BROKER_TOKEN}`)
    })
  )

  it.effect("optionsFromConfig gives the credential Redacted", () =>
    Effect.gen(function* () {
      const options = yield* optionsOf({ CONNECT_URL: "https://broker.example", CONNECT_TOKEN: BROKER_TOKEN })
      expect(options.baseUrl).toBe("https://broker.example")
      expect(Redacted.isRedacted(options.token)).toBe(true)
      expect(Redacted.value(options.token)).toBe(BROKER_TOKEN)
      expect(String(options.token)).not.toContain(BROKER_TOKEN)
      expect(JSON.stringify(options)).not.toContain(BROKER_TOKEN)
    })
  )
})

describe("blank values count as unset", () => {
  it.effect("a blank CONNECT_URL falls back to Vercel Connect", () =>
    Effect.gen(function* () {
      const { baseUrl, sent } = yield* clientFrom({ CONNECT_URL: "   ", VERCEL_OIDC_TOKEN: OIDC_TOKEN })
      expect(baseUrl).toBe(VERCEL_API_URL)
      expect(sent[0]?.authorization).toBe(`Bearer ${OIDC_TOKEN}`)
    })
  )

  it.effect("a blank CONNECT_TOKEN falls back to VERCEL_OIDC_TOKEN", () =>
    Effect.gen(function* () {
      const { baseUrl, sent } = yield* clientFrom({
        CONNECT_URL: "https://broker.example",
        CONNECT_TOKEN: " \t",
        VERCEL_OIDC_TOKEN: OIDC_TOKEN
      })
      expect(baseUrl).toBe("https://broker.example")
      expect(sent[0]?.authorization).toBe(`Bearer ${OIDC_TOKEN}`)
    })
  )

  it.effect("all blank is the same as nothing", () =>
    Effect.gen(function* () {
      const [error] = yield* configurationError({ CONNECT_URL: "", CONNECT_TOKEN: "  ", VERCEL_OIDC_TOKEN: "\n" })
      expect(error.message).toContain("CONNECT_URL")
      expect(error.message).toContain("CONNECT_TOKEN")
      expect(error.message).toContain("VERCEL_OIDC_TOKEN")
    })
  )
})

describe("configuration errors", () => {
  it.effect("nothing set names the variables to set", () =>
    Effect.gen(function* () {
      for (const error of yield* configurationError({})) {
        expect(error).toBeInstanceOf(ConfigurationError)
        expect(error).toBeInstanceOf(Error)
        expect(error._tag).toBe("ConfigurationError")
        expect(error.message).toContain("set CONNECT_URL and CONNECT_TOKEN")
        expect(error.message).toContain("VERCEL_OIDC_TOKEN")
      }
    })
  )

  it.effect("CONNECT_TOKEN without CONNECT_URL asks for the URL", () =>
    Effect.gen(function* () {
      for (const error of yield* configurationError({ CONNECT_TOKEN: BROKER_TOKEN })) {
        expect(error.message).toContain("CONNECT_URL")
        expectNoCredential(error)
      }
    })
  )

  it.effect("CONNECT_URL without a credential asks for one", () =>
    Effect.gen(function* () {
      for (const error of yield* configurationError({ CONNECT_URL: "https://broker.example" })) {
        expect(error.message).toContain("CONNECT_TOKEN")
        expect(error.message).toContain("VERCEL_OIDC_TOKEN")
      }
    })
  )

  it.effect.each([
    "ftp://x",
    "not a url",
    "/relative/path",
    "https://broker.example/?tenant=a",
    "https://broker.example/#x"
  ])("an invalid CONNECT_URL %j is a ConfigurationError", (url) =>
    Effect.gen(function* () {
      for (const vars of [
        { CONNECT_URL: url, CONNECT_TOKEN: BROKER_TOKEN },
        { CONNECT_URL: url, VERCEL_OIDC_TOKEN: OIDC_TOKEN }
      ]) {
        const error = yield* Effect.flip(clientFrom(vars))
        expect(error).toBeInstanceOf(ConfigurationError)
        expect(error.message).toContain("server URL")
        // The configured value is never echoed whole: a URL can carry secrets.
        expect(error.message).not.toContain(url)
        expectNoCredential(error)
      }
    })
  )

  it.effect("a CONNECT_URL with credentials in it is refused without printing them", () =>
    Effect.gen(function* () {
      const error = yield* Effect.flip(
        clientFrom({ CONNECT_URL: "https://admin:hunter2-secret@broker.example", CONNECT_TOKEN: BROKER_TOKEN })
      )
      expect(error).toBeInstanceOf(ConfigurationError)
      expect(error.message).toContain("must not carry credentials")
      expect(error.message).not.toContain("hunter2-secret")
      expect(JSON.stringify(error)).not.toContain("hunter2-secret")
    })
  )

  it.effect("no request is sent by a misconfigured client", () =>
    Effect.gen(function* () {
      const sent: Array<Sent> = []
      const layer = ConnectClient.layerConfig.pipe(
        Layer.provide(Layer.merge(Layer.succeed(HttpClient.HttpClient, recordingClient(sent)), TokenCache.layer()))
      )
      const error = yield* Effect.flip(
        getToken(CONNECTOR, { subject: { type: "app" } }).pipe(
          Effect.provide(layer),
          Effect.withConfigProvider(environment({ CONNECT_URL: "ftp://x", CONNECT_TOKEN: BROKER_TOKEN }))
        )
      )
      expect(error._tag).toBe("ConfigurationError")
      expect(sent).toEqual([])
    })
  )
})

describe("CONNECT_REFRESH_AHEAD", () => {
  const broker = { CONNECT_URL: "http://127.0.0.1:4100", CONNECT_TOKEN: BROKER_TOKEN }

  it.effect("a duration, milliseconds, or false/off; unset leaves the default", () =>
    Effect.gen(function* () {
      const refreshAheadOf = (value: string | undefined) =>
        Effect.map(
          optionsOf(value === undefined ? broker : { ...broker, CONNECT_REFRESH_AHEAD: value }),
          (options) => options.refreshAhead
        )
      expect(yield* refreshAheadOf("2 minutes")).toEqual(Duration.minutes(2))
      expect(yield* refreshAheadOf("90000")).toEqual(Duration.millis(90_000))
      expect(yield* refreshAheadOf("false")).toBe(false)
      expect(yield* refreshAheadOf("OFF")).toBe(false)
      expect(yield* refreshAheadOf(undefined)).toBeUndefined()
      expect(yield* refreshAheadOf(" ")).toBeUndefined()
    })
  )

  it.effect("anything else is a ConfigurationError that names the variable", () =>
    Effect.gen(function* () {
      const [fromOptions, fromLayer] = yield* configurationError({ ...broker, CONNECT_REFRESH_AHEAD: "soon" })
      for (const error of [fromOptions, fromLayer]) {
        expect(error.message).toContain("CONNECT_REFRESH_AHEAD")
        expectNoCredential(error)
      }
    })
  )
})

describe("the credential's source", () => {
  it.effect("an unauthorized answer names where the credential came from, never the credential", () =>
    Effect.gen(function* () {
      const cases = [
        [{ CONNECT_URL: "https://broker.example", CONNECT_TOKEN: BROKER_TOKEN }, "given by CONNECT_TOKEN"],
        [{ VERCEL_OIDC_TOKEN: OIDC_TOKEN }, "given by VERCEL_OIDC_TOKEN"]
      ] as const
      for (const [vars, said] of cases) {
        const error = yield* refusedWith(ConnectClient.layerConfig).pipe(Effect.withConfigProvider(environment(vars)))
        expect(error._tag).toBe("Unauthorized")
        expect(error.message).toContain(said)
        expectNoCredential(error)
      }
      const inCode = yield* refusedWith(
        ConnectClient.layer({ baseUrl: "https://broker.example", token: Redacted.make(BROKER_TOKEN) })
      )
      expect(inCode.message).toContain("given by ConnectClient.layer")
      expect(inCode.message).not.toContain("CONNECT_TOKEN")
    })
  )
})
