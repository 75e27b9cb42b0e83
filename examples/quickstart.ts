// `npm start`: the whole system on 127.0.0.1, in this process, with nothing to configure. A real OAuth provider
// (oidc-provider), the broker on an embedded SQLite database in a temporary folder, and the SDK asking the broker for
// tokens: an app token and its cache hit, a user who authorizes in their "browser", a revocation, and two failures.
import { Console, Effect, Redacted } from "effect"
import { freePort, sdkClient, startBroker } from "../packages/broker/test/support/broker.js"
import { sqlite } from "../packages/broker/test/support/databases.js"
import { startOAuthProvider } from "../packages/broker/test/support/oauthProvider.js"
import {
  type ConnectError,
  getToken,
  getTokenResponse,
  revokeToken,
  type TokenResponse,
  UserAuthorizationRequired
} from "../src/index.js"
import * as Logging from "../src/Logging.js"

// oidc-provider warns that its development login pages are not for production: true, and nothing to act on here.
const writeStderr = process.stderr.write.bind(process.stderr)
process.stderr.write = ((chunk: string | Uint8Array, ...rest: Array<never>) =>
  String(chunk).startsWith("oidc-provider WARNING") ? true : writeStderr(chunk, ...rest)) as typeof process.stderr.write

const CONNECTOR = "acme/api"
const PROJECT = "prj_quickstart"
const RESOURCE = "https://api.test/orders"
const RETURN_URL = "http://localhost:3000/connected"
// Caller keys of the project: generated for this run, never printed.
const PRODUCTION_KEY = `ck_${crypto.randomUUID().replaceAll("-", "")}`
const PREVIEW_KEY = `ck_${crypto.randomUUID().replaceAll("-", "")}`

const short = (token: Redacted.Redacted<string>): string => `${Redacted.value(token).slice(0, 10)}…`
const ms = (start: number): string => `${(performance.now() - start).toFixed(2)} ms`
const step = (title: string) => Console.log(`\n== ${title}`)
const shown = (response: TokenResponse): string => `${short(response.token)} (tokenId ${response.tokenId ?? "none"})`
const failure = (error: ConnectError): string =>
  `${error._tag} (${("code" in error ? error.code : undefined) ?? "no wire code"}): ${error.message}`
const check = (ok: boolean, what: string) => (ok ? Effect.void : Effect.dieMessage(what))

/** What a browser does with one link: the answer, its redirect not followed. */
/** The words of a small HTML page, without its markup. */
const pageText = (html: string): string =>
  html
    .replace(/<title>[\s\S]*?<\/title>/, "")
    .replace(/<[^>]+>/g, " ")
    .replace(/\s+/g, " ")
    .trim()

const visit = async (url: string) => {
  const response = await fetch(url, { redirect: "manual" })
  return { status: response.status, location: response.headers.get("location") ?? "", text: await response.text() }
}

const port = await freePort()
const brokerUrl = `http://127.0.0.1:${port}`
const provider = await startOAuthProvider({ redirectUris: [`${brokerUrl}/v1/connect/callback`] })
const database = sqlite()
const broker = await startBroker({
  database,
  port,
  config: {
    connectors: [
      {
        uid: CONNECTOR,
        name: "Acme API",
        type: "oauth",
        clientId: provider.clients.broker.clientId,
        clientSecret: provider.clients.broker.clientSecret,
        tokenEndpoint: provider.tokenEndpoint,
        authorizationEndpoint: provider.authorizationEndpoint,
        revocationEndpoint: provider.revocationEndpoint,
        defaultScopes: { app: ["api:read"], user: ["openid", "offline_access", "api:read"] }
      }
    ],
    projects: [
      {
        id: PROJECT,
        keys: [
          { environment: "production", secret: PRODUCTION_KEY },
          { environment: "preview", secret: PREVIEW_KEY }
        ],
        returnUrls: [RETURN_URL]
      }
    ],
    links: [{ connector: CONNECTOR, project: PROJECT, environments: ["production"] }]
  }
})

const program = Effect.gen(function* () {
  yield* Console.log("effect-connect: an OAuth provider, the broker and the SDK, all on 127.0.0.1 in this process.")
  yield* Console.log(`The OAuth provider (oidc-provider) is listening on ${provider.issuer}.`)
  yield* Console.log(`The broker is listening on ${broker.url}, on an embedded SQLite database in a temporary folder.`)
  yield* Console.log(
    `Its configuration file declares the connector ${CONNECTOR} (token, authorization and revocation endpoints at the`
  )
  yield* Console.log(
    `provider), the project ${PROJECT} with a key for production and one for preview, and a link of ${CONNECTOR}`
  )
  yield* Console.log(`to ${PROJECT} for production only. The SDK uses the production key (not shown).`)

  yield* step("1. An app token, then the same token from the cache")
  const params = { subject: { type: "app" }, scopes: ["api:read"], resources: [RESOURCE] } as const
  let start = performance.now()
  const first = yield* getTokenResponse(CONNECTOR, params)
  yield* Console.log(`first call:  ${shown(first)} in ${ms(start)}: the broker asked the provider`)
  yield* Console.log(`             (client credentials, scope api:read, resource ${RESOURCE})`)
  start = performance.now()
  const second = yield* getTokenResponse(CONNECTOR, params)
  yield* Console.log(`second call: ${shown(second)} in ${ms(start)}: from the SDK's cache, the same tokenId`)
  yield* check(second.tokenId === first.tokenId && provider.tokenRequests.total === 1, "no cache hit")

  yield* step("2. A user token: ada authorizes the connector, then the SDK gets her token")
  const ada = { subject: { type: "user", id: "ada" } } as const
  const needed = yield* Effect.flip(getToken(CONNECTOR, ada))
  if (!(needed instanceof UserAuthorizationRequired) || needed.authorizeUrl === undefined) {
    return yield* Effect.dieMessage(`expected user_authorization_required, got ${needed._tag}`)
  }
  yield* Console.log(`asking for ada's token: ${needed._tag} (${needed.code}), with a URL to send her to:`)
  yield* Console.log(`  ${needed.authorizeUrl}`)
  // The user opens the link from the error, as an app would show it to her.
  const toProvider = yield* Effect.promise(() => visit(needed.authorizeUrl ?? ""))
  const providerUrl = new URL(toProvider.location)
  yield* Console.log(
    `opening the link: the broker redirects (HTTP ${toProvider.status}) to the provider's ${providerUrl.origin}${providerUrl.pathname},`
  )
  yield* Console.log(
    `  with PKCE (code_challenge_method=${providerUrl.searchParams.get("code_challenge_method")}), scope "${providerUrl.searchParams.get("scope")}", prompt=${providerUrl.searchParams.get("prompt")}`
  )
  yield* Console.log("signing in as ada on the provider's login form")
  yield* Console.log("consenting on the provider's consent form")
  const callback = yield* Effect.promise(() =>
    provider.completeAuthorization(toProvider.location, { accountId: "ada" })
  )
  const landed = yield* Effect.promise(() => visit(callback.toString()))
  yield* Console.log(
    `the provider sends ada back to the broker's ${callback.pathname}, which shows her (HTTP ${landed.status}): "${pageText(landed.text)}"`
  )
  yield* check(landed.status === 200, "the authorization did not complete")
  const adaToken = yield* getTokenResponse(CONNECTOR, ada)
  yield* Console.log(`asking again: ada's token ${shown(adaToken)}`)
  const introspected = yield* Effect.promise(() => provider.introspect(Redacted.value(adaToken.token)))
  yield* Console.log(`the provider says it is active, for ${introspected.sub}, scope "${introspected.scope}"`)
  yield* check(introspected.active && introspected.sub === "ada", "ada's token is not hers")

  yield* step("3. Revoking ada's tokens")
  const summary = yield* revokeToken(CONNECTOR, ada)
  yield* Console.log(
    `summary: tokensFound=${summary.tokensFound}, deleted=${summary.deleted}, providerRevoked=${summary.providerRevoked}, providerSkipped=${summary.providerSkipped}, providerFailed=${summary.providerFailed}`
  )
  const revoked = yield* Effect.promise(() => provider.introspect(Redacted.value(adaToken.token)))
  yield* Console.log(`the provider now says the revoked token is active=${revoked.active}`)
  yield* check(summary.providerRevoked >= 1 && !revoked.active, "the provider did not revoke the token")
  const renewed = yield* getTokenResponse(CONNECTOR, ada)
  yield* Console.log(`the next request: ${shown(renewed)}, a new token from ada's grant (it stays)`)
  yield* check(renewed.tokenId !== adaToken.tokenId, "the revoked token was handed out again")

  yield* step("4. Failures a caller meets, each a tagged error that says what to do")
  const unknown = yield* Effect.flip(getToken("acme/nope", { subject: { type: "app" } }))
  yield* Console.log(`an unknown connector: ${failure(unknown)}`)
  const unlinked = yield* Effect.flip(
    getToken(CONNECTOR, { subject: { type: "app" } }).pipe(Effect.provide(sdkClient(broker, PREVIEW_KEY)))
  )
  yield* Console.log(`the preview key, an environment the link does not include: ${failure(unlinked)}`)

  yield* Console.log("\nEvery step behaved as described (exit 0).")
}).pipe(
  Effect.provide(sdkClient(broker, PRODUCTION_KEY)),
  // Logs as the broker writes them: CONNECT_LOG_FORMAT, on stderr.
  Effect.provide(Logging.layerConfig)
)

const exit = await Effect.runPromiseExit(program)
await broker.close()
await provider.close()
await database.drop()
if (exit._tag === "Failure") {
  console.error("The walkthrough failed:", exit.cause.toString())
  process.exit(1)
}
